//! Helpers shared by the farmer's binary tests.

use std::path::Path;

use acre_consensus::{BlockNumber, ProtocolParams};
use acre_storage::{Archiver, archive_dir};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Writes an archive directory of `blocks` dev segments of random history, as `acre archive` would.
pub(crate) fn archive(dir: &Path, blocks: u64) {
    let params = ProtocolParams::dev();
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let mut archiver = Archiver::new(params.clone()).expect("valid params");
    let mut headers = Vec::new();
    archive_dir::create(dir).expect("creates");
    for number in 0..blocks {
        let mut block = vec![0u8; params.segment_size()];
        rng.fill_bytes(&mut block);
        for segment in archiver.add_block(BlockNumber(number), &block).expect("archives") {
            headers.push(segment.header);
            archive_dir::write_segment(dir, &segment.pieces, &headers).expect("writes");
        }
    }
}
