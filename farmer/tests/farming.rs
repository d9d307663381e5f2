//! End-to-end farming with the `dev` parameters: archive a random history, plot sectors for a random key,
//! audit many slots, prove and verify every win, and read every piece back.

use acre_consensus::audit::initial_solution_range;
use acre_consensus::hashing::Blake3Hash;
use acre_consensus::sectors::{PublicKey, SectorId};
use acre_consensus::solutions::{SegmentRoots, verify_solution};
use acre_consensus::{
    BlockNumber, HistorySize, PieceOffset, ProtocolParams, SectorIndex, SegmentIndex, SegmentRoot,
};
use acre_farmer::auditing::audit_sector;
use acre_farmer::piece_source::{InMemoryPieceSource, PieceSource};
use acre_farmer::plotting::{PlottedSector, plot_sector};
use acre_farmer::proving::prove;
use acre_farmer::reading::read_piece;
use acre_storage::Archiver;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Chain<'a>(&'a InMemoryPieceSource);

impl SegmentRoots for Chain<'_> {
    fn segment_root(&self, index: SegmentIndex) -> Option<SegmentRoot> {
        self.0.segment_root(index)
    }
    fn history_size(&self) -> HistorySize {
        self.0.history_size().expect("history is not empty")
    }
}

fn history(params: &ProtocolParams, seed: u64, segments: usize) -> InMemoryPieceSource {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut archiver = Archiver::new(params.clone()).expect("valid params");
    let mut archived = Vec::new();
    let mut number = 0;
    while archived.len() < segments {
        let mut block = vec![0u8; rng.random_range(1..params.segment_size() / 2)];
        rng.fill_bytes(&mut block);
        archived.extend(archiver.add_block(BlockNumber(number), &block).expect("archives"));
        number += 1;
    }
    archived.truncate(segments);
    InMemoryPieceSource::new(params.clone(), archived)
}

#[test]
fn farming_end_to_end() {
    let params = ProtocolParams::dev();
    let source = history(&params, 1, 4);
    let history_size = source.history_size().expect("four segments");
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let public_key = PublicKey(rng.random());
    let reward_address = [9u8; 32];
    let key_hash = public_key.hash();

    let sectors: Vec<PlottedSector> = (0..3)
        .map(|index| {
            plot_sector(
                &params,
                &key_hash,
                SectorIndex(index),
                history_size,
                params.max_pieces_per_sector,
                &source,
            )
            .expect("plots")
        })
        .collect();

    // Every piece reads back exactly.
    for sector in &sectors {
        let id = SectorId::new(&key_hash, sector.metadata.sector_index, history_size);
        for offset in 0..sector.metadata.pieces_in_sector {
            let piece = read_piece(&params, &id, &sector.metadata, &sector.bytes, PieceOffset(offset))
                .expect("reads");
            let index = id.piece_index(&params, PieceOffset(offset), history_size);
            assert_eq!(
                piece,
                source.piece(index).expect("archived"),
                "sector {} offset {offset}",
                sector.metadata.sector_index
            );
        }
    }

    // Audit many slots: the win count matches the solution range, and every win proves and verifies.
    let solution_range = initial_solution_range(&params);
    let probability = solution_range.0 as f64 / 2f64.powi(64);
    let chain = Chain(&source);
    let (mut wins, mut expected, mut verified, mut unprovable) = (0usize, 0f64, 0usize, 0usize);
    for slot in 0..200u64 {
        let global_challenge = Blake3Hash(*blake3::hash(&slot.to_le_bytes()).as_bytes());
        for sector in &sectors {
            let id = SectorId::new(&key_hash, sector.metadata.sector_index, history_size);
            let s_bucket =
                acre_consensus::audit::SectorSlotChallenge::new(&id, &global_challenge).s_bucket(&params);
            expected += f64::from(sector.metadata.s_bucket_sizes[usize::from(s_bucket.0)]) * probability;
            for win in audit_sector(
                &params,
                &id,
                &sector.metadata,
                &sector.bytes,
                &global_challenge,
                solution_range,
            )
            .expect("audits")
            {
                wins += 1;
                match prove(
                    &params,
                    &public_key,
                    reward_address,
                    &sector.metadata,
                    &sector.bytes,
                    &win,
                ) {
                    Ok(solution) => {
                        verify_solution(&params, &solution, &global_challenge, solution_range, &chain)
                            .expect("verifies");
                        verified += 1;
                    }
                    // A record with fewer proofs than chunks stores a few chunks unmasked; they cannot win.
                    Err(acre_farmer::Error::NoProofForSBucket(_)) => unprovable += 1,
                    Err(error) => panic!("proving failed: {error}"),
                }
            }
        }
    }
    let sigma = expected.sqrt();
    assert!(
        (wins as f64 - expected).abs() < 5.0 * sigma + 1.0,
        "{wins} wins, expected {expected:.1} ± {sigma:.1} over 200 slots × 3 sectors"
    );
    assert!(
        expected > 60.0,
        "the test must see enough wins to mean something ({expected:.1})"
    );
    assert_eq!(verified + unprovable, wins);
    assert!(
        unprovable * 20 <= wins,
        "{unprovable} of {wins} wins fell on unmasked chunks"
    );
}

/// A record damaged on disk (one stored chunk, or its stored parity-chunks root) reads back as a
/// corrupted record: never as a wrong piece, never a panic.
#[test]
fn a_damaged_record_reads_back_as_corrupted() {
    let params = ProtocolParams::dev();
    let source = history(&params, 3, 1);
    let history_size = source.history_size().expect("one segment");
    let key_hash = PublicKey([7; 32]).hash();
    let sector = plot_sector(&params, &key_hash, SectorIndex(0), history_size, 2, &source).expect("plots");
    let id = SectorId::new(&key_hash, SectorIndex(0), history_size);
    let layout = sector.metadata.layout(&params);
    let record_0 = PieceOffset(0);
    let read = |bytes: &Vec<u8>| read_piece(&params, &id, &sector.metadata, bytes, record_0);
    read(&sector.bytes).expect("the undamaged sector reads");
    let is_corrupted = |result: Result<_, acre_farmer::Error>| {
        matches!(
            result,
            Err(acre_farmer::Error::CorruptedRecord { sector_index: SectorIndex(0), offset }) if offset == record_0
        )
    };

    // Record 0 is first in every s-bucket it stores a chunk in: damage one of its chunks.
    let records = acre_farmer::reading::read_record_metadata(&params, &sector.metadata, &sector.bytes)
        .expect("record metadata");
    let s_bucket = (0..params.s_buckets() as usize)
        .find(|&s| records[0].has(s))
        .expect("record 0 stores chunks");
    let mut chunk_damaged = sector.bytes.clone();
    let start = sector
        .metadata
        .s_bucket_range(acre_consensus::SBucket(s_bucket as u16))
        .start;
    chunk_damaged[start] ^= 1;
    assert!(is_corrupted(read(&chunk_damaged)));

    // The stored parity-chunks root follows the bitmap and the record root.
    let mut root_damaged = sector.bytes.clone();
    root_damaged[layout.record_metadata_offset(record_0) + layout.bitmap_size() + 32] ^= 1;
    assert!(is_corrupted(read(&root_damaged)));
}
