//! Negative tests of solution verification: every way a solution can be wrong is rejected with the
//! variant naming the broken link.

use acre_consensus::audit::{SectorSlotChallenge, initial_solution_range};
use acre_consensus::hashing::Blake3Hash;
use acre_consensus::sectors::{PublicKey, SectorId};
use acre_consensus::solutions::{SegmentRoots, Solution, SolutionVerificationError as E, verify_solution};
use acre_consensus::{
    BlockNumber, HistorySize, ProtocolParams, SectorIndex, SegmentIndex, SegmentRoot, SolutionRange,
};
use acre_farmer::auditing::audit_sector;
use acre_farmer::piece_source::{InMemoryPieceSource, PieceSource};
use acre_farmer::plotting::plot_sector;
use acre_farmer::proving::prove;
use acre_storage::Archiver;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Chain<'a> {
    source: &'a InMemoryPieceSource,
    history_size: HistorySize,
    extra_root: Option<(SegmentIndex, SegmentRoot)>,
}

impl SegmentRoots for Chain<'_> {
    fn segment_root(&self, index: SegmentIndex) -> Option<SegmentRoot> {
        match self.extra_root {
            Some((extra, root)) if extra == index => Some(root),
            _ => self.source.segment_root(index),
        }
    }
    fn history_size(&self) -> HistorySize {
        self.history_size
    }
}

/// A valid solution with its slot challenge and range, found by auditing slots until one wins.
fn valid_solution() -> (
    ProtocolParams,
    InMemoryPieceSource,
    Solution,
    Blake3Hash,
    SolutionRange,
) {
    let params = ProtocolParams::dev();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut archiver = Archiver::new(params.clone()).expect("valid params");
    let mut segments = Vec::new();
    for number in 0..3 {
        let mut block = vec![0u8; params.segment_size()];
        rng.fill_bytes(&mut block);
        segments.extend(archiver.add_block(BlockNumber(number), &block).expect("archives"));
    }
    let source = InMemoryPieceSource::new(params.clone(), segments);
    let history_size = source.history_size().expect("segments");
    let public_key = PublicKey([5; 32]);
    let sector = plot_sector(
        &params,
        &public_key.hash(),
        SectorIndex(0),
        history_size,
        16,
        &source,
    )
    .expect("plots");
    let id = SectorId::new(&public_key.hash(), SectorIndex(0), history_size);
    // A generous range so a win comes quickly.
    let range = SolutionRange(initial_solution_range(&params).0.saturating_mul(8));
    for slot in 0u64.. {
        let challenge = Blake3Hash(*blake3::hash(&slot.to_le_bytes()).as_bytes());
        let wins =
            audit_sector(&params, &id, &sector.metadata, &sector.bytes, &challenge, range).expect("audits");
        for win in wins {
            if let Ok(solution) = prove(
                &params,
                &public_key,
                [1; 32],
                &sector.metadata,
                &sector.bytes,
                &win,
            ) {
                return (params, source, solution, challenge, range);
            }
        }
    }
    unreachable!("some slot wins")
}

#[test]
fn each_broken_link_has_its_own_error() {
    let (params, source, solution, challenge, range) = valid_solution();
    let history_size = source.history_size().expect("segments");
    let chain = Chain {
        source: &source,
        history_size,
        extra_root: None,
    };
    assert!(verify_solution(&params, &solution, &challenge, range, &chain).is_ok());
    let check = |solution: &Solution, challenge: &Blake3Hash| {
        verify_solution(&params, solution, challenge, range, &chain)
    };

    // Another farmer's key: the sector id, hence the piece at this offset, changes.
    let mut other_key = solution.clone();
    other_key.public_key = PublicKey([6; 32]);
    assert!(matches!(
        check(&other_key, &challenge),
        Err(E::RecordNotInSegment { .. })
    ));

    // Another sector index selects other pieces too.
    let mut other_index = solution.clone();
    other_index.sector_index = SectorIndex(1);
    assert!(matches!(
        check(&other_index, &challenge),
        Err(E::RecordNotInSegment { .. })
    ));

    // A larger history than exists.
    let mut future = solution.clone();
    future.history_size = HistorySize::new(history_size.get() + 1).expect("non-zero");
    assert!(matches!(
        check(&future, &challenge),
        Err(E::FutureHistorySize { .. })
    ));

    // Another slot: its challenge audits another s-bucket, which this proof of space does not answer.
    let other_slot = Blake3Hash([0xee; 32]);
    assert_ne!(
        SectorSlotChallenge::new(
            &SectorId::new(
                &solution.public_key.hash(),
                solution.sector_index,
                solution.history_size
            ),
            &other_slot
        )
        .s_bucket(&params),
        SectorSlotChallenge::new(
            &SectorId::new(
                &solution.public_key.hash(),
                solution.sector_index,
                solution.history_size
            ),
            &challenge
        )
        .s_bucket(&params),
    );
    assert!(matches!(
        check(&solution, &other_slot),
        Err(E::InvalidProofOfSpace { .. })
    ));

    // A flipped bit in the chunk: it no longer unmasks to the record's chunk.
    let mut flipped = solution.clone();
    flipped.chunk[3] ^= 0x20;
    assert!(matches!(check(&flipped, &challenge), Err(E::InvalidChunk { .. })));

    // A wrong proof of space.
    let mut wrong_pos = solution.clone();
    wrong_pos.proof_of_space[10] ^= 1;
    assert!(matches!(
        check(&wrong_pos, &challenge),
        Err(E::InvalidProofOfSpace { .. })
    ));
    wrong_pos.proof_of_space.pop();
    assert!(matches!(
        check(&wrong_pos, &challenge),
        Err(E::InvalidProofOfSpace { .. })
    ));

    // A record root that is not in the segment root.
    let mut wrong_root = solution.clone();
    wrong_root.record_root.0.0[0] ^= 1;
    assert!(matches!(
        check(&wrong_root, &challenge),
        Err(E::RecordNotInSegment { .. })
    ));

    // Outside the solution range.
    assert!(matches!(
        verify_solution(&params, &solution, &challenge, SolutionRange(0), &chain),
        Err(E::OutsideSolutionRange)
    ));

    // An expired sector: once its expiration check segment exists and history has grown past its expiry.
    let check_segment = SectorId::expiration_check_segment(&params, solution.history_size);
    let late =
        HistorySize::new(4 * (solution.history_size.get() + params.min_sector_lifetime)).expect("non-zero");
    let old_chain = Chain {
        source: &source,
        history_size: late,
        extra_root: Some((check_segment, SegmentRoot::default())),
    };
    assert!(matches!(
        verify_solution(&params, &solution, &challenge, range, &old_chain),
        Err(E::SectorExpired { .. })
    ));

    // Garbage never panics.
    let mut garbage = solution;
    garbage.record_proof.clear();
    garbage.chunk_proof = vec![[0xff; 32]; 1000];
    garbage.proof_of_space = vec![0xff; 7];
    assert!(check(&garbage, &challenge).is_err());
}
