//! Auditing maths (spec section 7): which s-bucket of a sector a slot audits, and whether a chunk wins.
//!
//! Every slot has a global challenge (from proof of time). Each sector turns it into its own
//! [`SectorSlotChallenge`], which picks one s-bucket to read; every encoded chunk in that s-bucket is hashed
//! into an audit value, and the chunk wins if that value is within half the solution range of the
//! challenge, so the solution range directly sets the expected number of winners per slot.

use crate::hashing::lanes::{LANES, keyed_hash_32_prefix_lanes};
use crate::hashing::{self, Blake3Hash};
use crate::params::{Chunk, ProtocolParams};
use crate::quantities::{SBucket, SolutionRange};
use crate::sectors::SectorId;

/// `sector_id XOR global_challenge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectorSlotChallenge(pub [u8; 32]);

impl SectorSlotChallenge {
    /// The sector's challenge for a slot with `global_challenge`.
    pub fn new(sector_id: &SectorId, global_challenge: &Blake3Hash) -> Self {
        Self(std::array::from_fn(|i| sector_id.0.0[i] ^ global_challenge.0[i]))
    }

    /// The audited s-bucket: the first two bytes (little-endian) modulo the number of s-buckets.
    pub fn s_bucket(&self, params: &ProtocolParams) -> SBucket {
        let value = u32::from(u16::from_le_bytes([self.0[0], self.0[1]]));
        SBucket(
            u16::try_from(value % params.s_buckets())
                .expect("s-bucket index is below a u16 modulus or 65536"),
        )
    }

    /// `audit_value`: the first 8 bytes (LE) of `H_keyed(sector_slot_challenge, chunk)`.
    pub fn audit_value(&self, chunk: &Chunk) -> u64 {
        let hash = hashing::keyed_hash(&self.0, chunk);
        u64::from_le_bytes(hash.0[..8].try_into().expect("eight bytes"))
    }

    /// The [`Self::audit_value`] of every chunk, in order, hashed [`LANES`] chunks at a time (the
    /// chunks of an s-bucket are independent, so one compression's latency is shared by eight).
    pub fn audit_values(&self, chunks: &[Chunk]) -> Vec<u64> {
        let mut values = Vec::with_capacity(chunks.len());
        let (groups, rest) = chunks.as_chunks::<LANES>();
        for group in groups {
            values.extend(keyed_hash_32_prefix_lanes(&self.0, group));
        }
        values.extend(rest.iter().map(|chunk| self.audit_value(chunk)));
        values
    }
}

/// The target audit values are compared with: the first 8 bytes (LE) of the global challenge.
pub fn challenge_target(global_challenge: &Blake3Hash) -> u64 {
    u64::from_le_bytes(global_challenge.0[..8].try_into().expect("eight bytes"))
}

/// Whether `audit_value` wins: its wrapping distance to `target` is below `solution_range / 2`.
pub fn is_within_solution_range(audit_value: u64, target: u64, solution_range: SolutionRange) -> bool {
    let distance = audit_value
        .wrapping_sub(target)
        .min(target.wrapping_sub(audit_value));
    distance < solution_range.0 / 2
}

/// The initial solution range, at which one full sector wins with probability `slot_probability` per
/// slot: `u64::MAX / prob_den × prob_num / (max_pieces_per_sector × source_chunks / s_buckets)`.
pub fn initial_solution_range(params: &ProtocolParams) -> SolutionRange {
    let probability = params.slot_probability;
    let chunks_per_s_bucket = u64::from(params.max_pieces_per_sector) * u64::from(params.record_chunks)
        / u64::from(params.s_buckets());
    SolutionRange(u64::MAX / probability.denominator * probability.numerator / chunks_per_s_bucket.max(1))
}

/// The space pledged to the chain, in bytes, that a solution range implies: the initial range is what one
/// full sector (of `max_pieces_per_sector` records) needs to win with the slot probability, and the range
/// shrinks in proportion as more sectors compete.
pub fn space_pledged(params: &ProtocolParams, solution_range: SolutionRange) -> u64 {
    let sectors = u128::from(initial_solution_range(params).0) / u128::from(solution_range.0.max(1));
    let sector_bytes = u128::from(params.max_pieces_per_sector) * params.record_size() as u128;
    u64::try_from(sectors.saturating_mul(sector_bytes)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mainnet_initial_range_is_the_spec_value() {
        assert_eq!(
            initial_solution_range(&ProtocolParams::mainnet()),
            SolutionRange(6_148_914_691_236_517)
        );
    }

    #[test]
    fn distance_wraps_around() {
        let range = SolutionRange(100);
        assert!(is_within_solution_range(10, 5, range));
        assert!(is_within_solution_range(5, 10, range));
        assert!(is_within_solution_range(u64::MAX - 10, 20, range));
        assert!(!is_within_solution_range(u64::MAX - 30, 20, range));
        assert!(!is_within_solution_range(60, 10, range));
    }

    #[test]
    fn s_bucket_is_in_range() {
        let params = ProtocolParams::dev();
        for byte in 0..=255u8 {
            let challenge = SectorSlotChallenge([byte; 32]);
            assert!(u32::from(challenge.s_bucket(&params).0) < params.s_buckets());
        }
    }

    proptest::proptest! {
        #[test]
        fn audit_values_are_the_audit_value_of_each_chunk(
            challenge in proptest::prelude::any::<[u8; 32]>(),
            chunks in proptest::collection::vec(proptest::prelude::any::<[u8; 32]>(), 0..40),
        ) {
            let challenge = SectorSlotChallenge(challenge);
            let one_at_a_time: Vec<u64> = chunks.iter().map(|chunk| challenge.audit_value(chunk)).collect();
            proptest::prop_assert_eq!(challenge.audit_values(&chunks), one_at_a_time);
        }
    }
}
