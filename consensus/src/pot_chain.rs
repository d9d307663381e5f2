//! The proof-of-time chain across slots and blocks (spec section 6).
//!
//! Slot 1 starts from the chain spec's genesis seed; every later slot's seed comes from the previous
//! slot's output, with entropy mixed in at injection slots. Injections are scheduled by blocks: at every
//! block whose number is a non-zero multiple of `pot_entropy_injection_interval`, the proof-of-time output
//! of the block `lookback` intervals earlier becomes entropy, injected `pot_entropy_injection_delay` slots
//! after the scheduling block's slot. The lookback makes the entropy hard to grind (it is buried under
//! many blocks); the delay puts the injection safely in the future of the block that announces it.

use thiserror::Error;

use crate::params::ProtocolParams;
use crate::pot::{self, PotCheckpoints, PotError, PotOutput, PotSeed};
use crate::quantities::{BlockNumber, SlotNumber};

/// Entropy mixed into the seed of `slot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct EntropyInjection {
    /// The slot whose seed takes the entropy.
    pub slot: SlotNumber,
    /// The entropy: a proof-of-time output carried by an earlier block.
    pub entropy: PotOutput,
}

/// Where a run of slots starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PotStart {
    /// Slot 1, from the genesis seed.
    Genesis(PotSeed),
    /// The slot after one whose output is known.
    After(SlotNumber, PotOutput),
}

impl PotStart {
    /// The first slot of the run.
    pub fn first_slot(&self) -> SlotNumber {
        match self {
            Self::Genesis(_) => SlotNumber(1),
            Self::After(slot, _) => SlotNumber(slot.0 + 1),
        }
    }
}

/// Why a run of slots does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PotChainError {
    /// One slot's checkpoints are wrong.
    #[error("proof of time of slot {slot}: {source}")]
    InvalidSlot {
        /// The slot.
        slot: SlotNumber,
        /// The underlying error.
        source: PotError,
    },
    /// One slot's checkpoints differ from the ones this node already proved for the same seed.
    #[error("proof of time of slot {slot} differs from the proof already known for its seed")]
    DiffersFromKnown {
        /// The slot.
        slot: SlotNumber,
    },
}

/// The seed of `slot` given the previous slot's output.
pub fn next_seed(previous: &PotOutput, slot: SlotNumber, injections: &[EntropyInjection]) -> PotSeed {
    match injections.iter().find(|injection| injection.slot == slot) {
        Some(injection) => previous.next_seed_with_entropy(&injection.entropy),
        None => previous.next_seed(),
    }
}

/// Verifies consecutive slots' checkpoints from `start`; returns the last slot's output (or the start's
/// output when `checkpoints` is empty: `None` from genesis).
pub fn verify_slots(
    params: &ProtocolParams,
    start: PotStart,
    checkpoints: &[PotCheckpoints],
    injections: &[EntropyInjection],
) -> Result<Option<PotOutput>, PotChainError> {
    verify_slots_cached(params, start, checkpoints, injections, &NoPotCache)
}

/// Slots whose proof of time is already known: a node's own timekeeper proved them. Verification skips a
/// slot whose claimed checkpoints match the known ones (re-verifying what the node computed itself would
/// only cost time) and rejects at once, with no AES work, a slot whose checkpoints differ from them (proof
/// of time is deterministic, so they cannot both be right).
pub trait PotCache {
    /// The checkpoints known for `slot` from `seed`, if any.
    fn known(&self, slot: SlotNumber, seed: &PotSeed) -> Option<PotCheckpoints>;
}

/// A cache that knows nothing: every slot is verified.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPotCache;

impl PotCache for NoPotCache {
    fn known(&self, _: SlotNumber, _: &PotSeed) -> Option<PotCheckpoints> {
        None
    }
}

/// The seed and output of every slot in `checkpoints`, chained from `start` without verifying anything.
fn chain_slots(
    start: PotStart,
    checkpoints: &[PotCheckpoints],
    injections: &[EntropyInjection],
) -> Vec<(SlotNumber, PotSeed)> {
    let mut state = start;
    let mut slots = Vec::with_capacity(checkpoints.len());
    for slot_checkpoints in checkpoints {
        let slot = state.first_slot();
        let seed = match state {
            PotStart::Genesis(seed) => seed,
            PotStart::After(_, output) => next_seed(&output, slot, injections),
        };
        slots.push((slot, seed));
        state = PotStart::After(slot, slot_checkpoints.output());
    }
    slots
}

/// As [`verify_slots`], skipping slots `cache` knows to be right. Cheapest first: every slot is compared
/// with the cache before any is verified, so a run with one slot contradicting a known proof costs no AES.
/// The first invalid slot (in slot order) is the one reported.
pub fn verify_slots_cached(
    params: &ProtocolParams,
    start: PotStart,
    checkpoints: &[PotCheckpoints],
    injections: &[EntropyInjection],
    cache: &impl PotCache,
) -> Result<Option<PotOutput>, PotChainError> {
    let slots = chain_slots(start, checkpoints, injections);
    let mut unknown = Vec::new();
    for ((slot, seed), slot_checkpoints) in slots.iter().zip(checkpoints) {
        match cache.known(*slot, seed) {
            Some(known) if known == *slot_checkpoints => {}
            Some(_) => return Err(PotChainError::DiffersFromKnown { slot: *slot }),
            None => unknown.push((*slot, *seed, slot_checkpoints)),
        }
    }
    // Each slot's seed is known from the previous slot's claimed output, so the slots verify
    // independently: in parallel with the `parallel` feature (a syncing node's blocks carry several).
    let keys: Vec<_> = unknown.iter().map(|(_, seed, _)| seed.key()).collect();
    let batch: Vec<pot::PotSlot<'_>> = unknown
        .iter()
        .zip(&keys)
        .map(|((_, seed, slot_checkpoints), key)| (seed, key, *slot_checkpoints))
        .collect();
    let verdicts = pot::verify_many(&batch, params.pot_iterations);
    for ((slot, _, _), verdict) in unknown.iter().zip(verdicts) {
        verdict.map_err(|source| PotChainError::InvalidSlot { slot: *slot, source })?;
    }
    Ok(match checkpoints.last() {
        Some(last) => Some(last.output()),
        None => match start {
            PotStart::Genesis(_) => None,
            PotStart::After(_, output) => Some(output),
        },
    })
}

/// The block whose proof-of-time output block `number` turns into entropy, if `number` schedules an
/// injection (a non-zero multiple of the interval, at least `lookback` intervals from genesis).
pub fn entropy_source(params: &ProtocolParams, number: BlockNumber) -> Option<BlockNumber> {
    let interval = params.pot_entropy_injection_interval;
    if interval == 0 || number.0 == 0 || !number.0.is_multiple_of(interval) {
        return None;
    }
    let back = interval.checked_mul(u64::from(params.pot_entropy_injection_lookback))?;
    number.0.checked_sub(back).map(BlockNumber)
}

/// The slot at which entropy scheduled by a block at `slot` is injected.
pub fn injection_slot(params: &ProtocolParams, slot: SlotNumber) -> SlotNumber {
    SlotNumber(slot.0.saturating_add(params.pot_entropy_injection_delay))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> ProtocolParams {
        ProtocolParams {
            pot_iterations: 800,
            ..ProtocolParams::dev()
        }
    }

    /// Proves `count` slots from `start` (the timekeeper's job, here for the test).
    fn prove_slots(
        params: &ProtocolParams,
        start: PotStart,
        count: usize,
        injections: &[EntropyInjection],
    ) -> Vec<PotCheckpoints> {
        let mut out: Vec<PotCheckpoints> = Vec::new();
        for offset in 0..count {
            let slot = SlotNumber(start.first_slot().0 + offset as u64);
            let seed = match (out.last(), start) {
                (Some(last), _) => next_seed(&last.output(), slot, injections),
                (None, PotStart::Genesis(seed)) => seed,
                (None, PotStart::After(_, output)) => next_seed(&output, slot, injections),
            };
            out.push(pot::prove(&seed, &seed.key(), params.pot_iterations).expect("valid iterations"));
        }
        out
    }

    #[test]
    fn slots_chain_and_entropy_changes_the_chain() {
        let params = params();
        let genesis = PotStart::Genesis(PotSeed([7; 16]));
        let plain = prove_slots(&params, genesis, 6, &[]);
        let last = verify_slots(&params, genesis, &plain, &[]).expect("valid");
        assert_eq!(last, Some(plain[5].output()));
        // Continuing from slot 3's output verifies slots 4..=6.
        let middle = PotStart::After(SlotNumber(3), plain[2].output());
        assert_eq!(
            verify_slots(&params, middle, &plain[3..], &[]),
            Ok(Some(plain[5].output()))
        );

        let injection = EntropyInjection {
            slot: SlotNumber(4),
            entropy: plain[0].output(),
        };
        let injected = prove_slots(&params, genesis, 6, &[injection]);
        assert_eq!(injected[..3], plain[..3]);
        assert_ne!(injected[3], plain[3]);
        assert!(verify_slots(&params, genesis, &injected, &[injection]).is_ok());
        assert!(matches!(
            verify_slots(&params, genesis, &injected, &[]),
            Err(PotChainError::InvalidSlot {
                slot: SlotNumber(4),
                ..
            })
        ));
    }

    #[test]
    fn injections_are_scheduled_every_interval_after_the_lookback() {
        let params = ProtocolParams::dev(); // interval 20, lookback 2, delay 15
        assert_eq!(entropy_source(&params, BlockNumber(0)), None);
        assert_eq!(entropy_source(&params, BlockNumber(20)), None);
        assert_eq!(entropy_source(&params, BlockNumber(39)), None);
        assert_eq!(entropy_source(&params, BlockNumber(40)), Some(BlockNumber(0)));
        assert_eq!(entropy_source(&params, BlockNumber(60)), Some(BlockNumber(20)));
        assert_eq!(injection_slot(&params, SlotNumber(100)), SlotNumber(115));
    }
}
