//! Chain-level rules: solution range retargeting per era and fork choice (spec sections 7 and 8).
//!
//! Both are pure functions of what blocks carry, so every node computes the same expected solution range
//! for a child and picks the same best chain regardless of the order blocks arrived in.

use std::cmp::Ordering;

use crate::hashing::Blake3Hash;
use crate::params::ProtocolParams;
use crate::quantities::{BlockNumber, SlotNumber, SolutionRange};

/// Where the current era stands: the range blocks must use, and the slot the era started at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct Era {
    /// The solution range of blocks in this era.
    pub solution_range: SolutionRange,
    /// Slot of the block that started the era (slot 0 for the first era, which genesis starts).
    pub start_slot: SlotNumber,
}

impl Era {
    /// The era after block `number` at `slot` is applied: unchanged inside an era; at every block whose
    /// number is a non-zero multiple of `era_duration`, retargeted to
    /// `range × (slot − start_slot) × prob_num / (era × prob_den)` (in u128), clamped to
    /// `[range / 4, range × 4]`, with the era restarting at this block's slot.
    pub fn after_block(&self, params: &ProtocolParams, number: BlockNumber, slot: SlotNumber) -> Self {
        if number.0 == 0 || !number.0.is_multiple_of(params.era_duration) {
            return *self;
        }
        let range = u128::from(self.solution_range.0);
        let elapsed = u128::from(slot.0.saturating_sub(self.start_slot.0));
        let probability = params.slot_probability;
        let denominator = u128::from(params.era_duration) * u128::from(probability.denominator);
        let next = range * elapsed * u128::from(probability.numerator) / denominator.max(1);
        let clamped = next.clamp(range / 4, range.saturating_mul(4).min(u128::from(u64::MAX)));
        Self {
            solution_range: SolutionRange(u64::try_from(clamped).expect("clamped below u64::MAX")),
            start_slot: slot,
        }
    }
}

/// The weight of a block at `solution_range`: `u64::MAX − solution_range`. Smaller ranges (more space
/// pledged) weigh more; within an era every block weighs the same, so the heaviest chain is the longest.
pub fn block_weight(solution_range: SolutionRange) -> u128 {
    u128::from(u64::MAX - solution_range.0)
}

/// A chain tip as fork choice sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tip {
    /// Sum of the block weights from genesis (genesis weighs 0).
    pub weight: u128,
    /// The tip's hash.
    pub hash: Blake3Hash,
}

/// Orders tips by preference: heavier first, then the lower hash. `Ordering::Greater` means `a` is
/// preferred over `b`.
pub fn compare_tips(a: &Tip, b: &Tip) -> Ordering {
    a.weight.cmp(&b.weight).then_with(|| b.hash.cmp(&a.hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn era(range: u64) -> Era {
        Era {
            solution_range: SolutionRange(range),
            start_slot: SlotNumber(0),
        }
    }

    #[test]
    fn range_is_kept_inside_an_era() {
        let params = ProtocolParams::dev();
        let start = era(1_000_000);
        assert_eq!(start.after_block(&params, BlockNumber(0), SlotNumber(0)), start);
        assert_eq!(
            start.after_block(&params, BlockNumber(99), SlotNumber(10_000)),
            start
        );
    }

    #[test]
    fn retarget_tracks_the_block_rate_and_is_clamped() {
        let params = ProtocolParams::dev(); // era 100 blocks, probability 1/6: 600 slots expected
        let start = era(1_000_000);
        let on_time = start.after_block(&params, BlockNumber(100), SlotNumber(600));
        assert_eq!(
            on_time,
            Era {
                solution_range: SolutionRange(1_000_000),
                start_slot: SlotNumber(600)
            }
        );
        let twice_as_fast = start.after_block(&params, BlockNumber(100), SlotNumber(300));
        assert_eq!(twice_as_fast.solution_range, SolutionRange(500_000));
        let much_slower = start.after_block(&params, BlockNumber(100), SlotNumber(600 * 100));
        assert_eq!(much_slower.solution_range, SolutionRange(4_000_000));
        let much_faster = start.after_block(&params, BlockNumber(100), SlotNumber(1));
        assert_eq!(much_faster.solution_range, SolutionRange(250_000));
        let huge = era(u64::MAX / 2).after_block(&params, BlockNumber(200), SlotNumber(u64::MAX));
        assert_eq!(huge.solution_range, SolutionRange(u64::MAX));
    }

    #[test]
    fn heavier_wins_then_lower_hash() {
        let light = Tip {
            weight: 10,
            hash: Blake3Hash([0; 32]),
        };
        let heavy = Tip {
            weight: 11,
            hash: Blake3Hash([9; 32]),
        };
        assert_eq!(compare_tips(&heavy, &light), Ordering::Greater);
        let low = Tip {
            weight: 11,
            hash: Blake3Hash([1; 32]),
        };
        assert_eq!(compare_tips(&low, &heavy), Ordering::Greater);
        assert!(block_weight(SolutionRange(1)) > block_weight(SolutionRange(2)));
    }
}
