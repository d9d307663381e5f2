//! Decoders of untrusted bytes never panic and never accept trailing or truncated input.
//!
//! Random bytes rarely get past the first length prefix or version byte, so the main properties start from
//! *valid* encodings of generated headers, bodies, segment headers and solutions and mutate them (flip a
//! byte, truncate, extend, overwrite four bytes with a length-like value): that reaches the decoders' deep
//! paths (nested vectors, options, fixed arrays, trailing-byte checks).

use acre_consensus::blocks::{Body, Header, UnsealedHeader};
use acre_consensus::pieces::RecordRoot;
use acre_consensus::pot::{PotCheckpoints, PotOutput};
use acre_consensus::sectors::PublicKey;
use acre_consensus::segments::{LastArchivedBlock, SegmentHeader, SegmentRoot};
use acre_consensus::solutions::Solution;
use acre_consensus::{
    Blake3Hash, BlockNumber, HistorySize, PieceOffset, SectorIndex, SegmentIndex, SlotNumber, SolutionRange,
    codec,
};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

fn hash() -> impl Strategy<Value = Blake3Hash> {
    any::<[u8; 32]>().prop_map(Blake3Hash)
}

fn segment_header() -> impl Strategy<Value = SegmentHeader> {
    (any::<u64>(), hash(), hash(), any::<u64>(), any::<u32>()).prop_map(
        |(index, root, prev, number, progress)| SegmentHeader {
            version: SegmentHeader::VERSION,
            segment_index: SegmentIndex(index),
            segment_root: SegmentRoot(root),
            prev_segment_header_hash: prev,
            last_archived_block: LastArchivedBlock {
                number: BlockNumber(number),
                archived_progress: progress,
            },
        },
    )
}

fn solution() -> impl Strategy<Value = Solution> {
    (
        (
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
            any::<u16>(),
            1..u64::MAX,
            any::<u16>(),
        ),
        hash(),
        prop::collection::vec(any::<[u8; 32]>(), 0..10),
        any::<[u8; 32]>(),
        prop::collection::vec(any::<[u8; 32]>(), 0..10),
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(
            |((key, reward, sector, history, offset), root, record_proof, chunk, chunk_proof, pos)| {
                Solution {
                    public_key: PublicKey(key),
                    reward_address: reward,
                    sector_index: SectorIndex(sector),
                    history_size: HistorySize::new(history).expect("non-zero"),
                    piece_offset: PieceOffset(offset),
                    record_root: RecordRoot(root),
                    record_proof,
                    chunk,
                    chunk_proof,
                    proof_of_space: pos,
                }
            },
        )
}

fn header() -> impl Strategy<Value = Header> {
    (
        (hash(), any::<u64>(), any::<u64>()),
        prop::collection::vec(any::<[u8; 16]>(), 0..3),
        prop::option::of(solution()),
        (any::<u64>(), prop::option::of(any::<u64>())),
        (hash(), hash()),
        any::<[u8; 32]>(),
    )
        .prop_map(
            |((parent, number, slot), checkpoints, solution, (range, next), (state, body), seal_half)| {
                let mut seal = [0u8; 64];
                seal[..32].copy_from_slice(&seal_half);
                Header {
                    unsealed: UnsealedHeader {
                        version: Header::VERSION,
                        parent_hash: parent,
                        number: BlockNumber(number),
                        slot: SlotNumber(slot),
                        pot_checkpoints: checkpoints
                            .into_iter()
                            .map(|bytes| PotCheckpoints([PotOutput(bytes); 8]))
                            .collect(),
                        solution,
                        solution_range: SolutionRange(range),
                        next_solution_range: next.map(SolutionRange),
                        state_root: state,
                        body_root: body,
                    },
                    seal,
                }
            },
        )
}

fn body() -> impl Strategy<Value = Body> {
    (
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..6),
        prop::collection::vec(segment_header(), 0..3),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..3),
    )
        .prop_map(|(transactions, segment_headers, bundles)| Body {
            transactions,
            segment_headers,
            bundles,
            ..Body::default()
        })
}

/// One way of damaging an encoding.
#[derive(Debug, Clone)]
enum Mutation {
    /// XOR the byte at `at % len` with a non-zero mask.
    Flip { at: usize, mask: u8 },
    /// Keep only the first `at % len` bytes.
    Truncate { at: usize },
    /// Append bytes.
    Extend(Vec<u8>),
    /// Overwrite four bytes at `at % len` with a little-endian `u32` (length prefixes are `u32`).
    Length { at: usize, value: u32 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=u8::MAX).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        prop::collection::vec(any::<u8>(), 1..8).prop_map(Mutation::Extend),
        (
            any::<usize>(),
            prop_oneof![Just(0u32), Just(1), Just(64), Just(u32::MAX), any::<u32>()]
        )
            .prop_map(|(at, value)| Mutation::Length { at, value }),
    ]
}

/// Applies `mutation`; `None` if it changed nothing.
fn mutate(bytes: &[u8], mutation: &Mutation) -> Option<Vec<u8>> {
    let mut out = bytes.to_vec();
    let len = bytes.len().max(1);
    match mutation {
        Mutation::Flip { at, mask } => {
            let at = at % len;
            *out.get_mut(at)? ^= mask;
        }
        Mutation::Truncate { at } => out.truncate(at % len),
        Mutation::Extend(extra) => out.extend_from_slice(extra),
        Mutation::Length { at, value } => {
            let at = at % len;
            let end = (at + 4).min(out.len());
            out[at..end].copy_from_slice(&value.to_le_bytes()[..end - at]);
        }
    }
    (out != bytes).then_some(out)
}

/// A decoder fed a damaged encoding must not panic, and whatever it accepts must be canonical: its
/// re-encoding is exactly the input (so no two encodings decode to one value, and truncated or extended
/// input is never accepted as the original).
fn check_mutated<T: PartialEq + std::fmt::Debug>(
    value: &T,
    encode: impl Fn(&T) -> Vec<u8>,
    decode: impl Fn(&[u8]) -> Option<T>,
    mutation: &Mutation,
) -> Result<(), TestCaseError> {
    let bytes = encode(value);
    let round_trip = decode(&bytes);
    prop_assert_eq!(round_trip.as_ref(), Some(value));
    if let Some(damaged) = mutate(&bytes, mutation) {
        if let Some(decoded) = decode(&damaged) {
            prop_assert_eq!(&encode(&decoded), &damaged);
            prop_assert_ne!(&decoded, value);
        }
        if matches!(mutation, Mutation::Truncate { .. } | Mutation::Extend(_)) {
            prop_assert!(decode(&damaged).is_none(), "{:?} accepted", mutation);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, rng_seed: RngSeed::Fixed(37), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn damaged_headers_are_rejected_or_canonical(value in header(), mutation in mutation()) {
        check_mutated(&value, Header::encode, |bytes| Header::decode(bytes).ok(), &mutation)?;
    }

    #[test]
    fn damaged_bodies_are_rejected_or_canonical(value in body(), mutation in mutation()) {
        check_mutated(&value, Body::encode, |bytes| Body::decode(bytes).ok(), &mutation)?;
    }

    #[test]
    fn damaged_segment_headers_are_rejected_or_canonical(value in segment_header(), mutation in mutation()) {
        check_mutated(&value, SegmentHeader::encode, |bytes| SegmentHeader::decode(bytes).ok(), &mutation)?;
    }

    #[test]
    fn damaged_solutions_are_rejected_or_canonical(value in solution(), mutation in mutation()) {
        check_mutated(
            &value,
            codec::encode,
            |bytes| codec::decode_bounded::<Solution>("solution", bytes, 1 << 16).ok(),
            &mutation,
        )?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, rng_seed: RngSeed::Fixed(31), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Header::decode(&bytes);
        let _ = Body::decode(&bytes);
        let _ = SegmentHeader::decode(&bytes);
        let _ = acre_consensus::codec::decode_bounded::<Solution>("solution", &bytes, 4096);
    }

    #[test]
    fn bodies_round_trip_and_reject_truncation(
        transactions in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8),
        cut in 1usize..16,
    ) {
        let body = Body { transactions, ..Body::default() };
        let bytes = body.encode();
        prop_assert_eq!(Body::decode(&bytes), Ok(body));
        let mut long = bytes.clone();
        long.push(0);
        prop_assert!(Body::decode(&long).is_err());
        if cut <= bytes.len() {
            prop_assert!(Body::decode(&bytes[..bytes.len() - cut]).is_err());
        }
    }
}
