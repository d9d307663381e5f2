//! Header validation against its parent (spec section 8).
//!
//! [`validate_header`] runs every check a header can have without executing its body: structure, seal,
//! the proof of time from the parent's last covered slot, the slot's challenge, the solution range of the
//! era, and the solution itself against the chain's segment roots. What it returns ([`ValidHeader`]) is what
//! the importer needs next: the slot's PoT output (entropy for later injections) and the child's parent
//! info. Executing the body (state root) and checking its segment headers are the importer's stateful
//! steps after this.

use thiserror::Error;

use crate::blocks::{BlockHash, Header, SealError};
use crate::chain_rules::Era;
use crate::params::ProtocolParams;
use crate::pot::{PotOutput, PotSeed, slot_challenge};
use crate::pot_chain::{
    EntropyInjection, NoPotCache, PotCache, PotChainError, PotStart, verify_slots_cached,
};
use crate::quantities::{BlockNumber, SlotNumber, SolutionRange};
use crate::solutions::{SegmentRoots, SolutionVerificationError, verify_solution};

/// What a child needs to know about its parent.
#[derive(Debug, Clone, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct ParentInfo {
    /// The parent's hash.
    pub hash: BlockHash,
    /// The parent's number.
    pub number: BlockNumber,
    /// The parent's slot.
    pub slot: SlotNumber,
    /// The last slot whose proof of time the chain up to the parent covers (0: none yet).
    pub pot_covered_slot: SlotNumber,
    /// Outputs of the last covered slots, oldest first, ending with `pot_covered_slot`'s (empty before
    /// slot 1; at most `block_authoring_delay + 1`): a child's slot may already be covered by its parent.
    pub pot_recent_outputs: Vec<PotOutput>,
    /// The era the child belongs to (after applying the parent).
    pub era: Era,
}

/// Why a header is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeaderError {
    /// Unknown encoding version.
    #[error("unsupported header version {0}")]
    Version(u8),
    /// The header does not extend the given parent.
    #[error("header does not extend its parent: {0}")]
    NotAChild(&'static str),
    /// The slot is not after the parent's.
    #[error("slot {slot} is not after the parent's slot {parent}")]
    SlotNotAfterParent {
        /// The slot.
        slot: SlotNumber,
        /// The parent's slot.
        parent: SlotNumber,
    },
    /// The proof of time does not cover exactly the slots it must.
    #[error("expected proof of time for {expected} slots, got {got}")]
    PotSlotCount {
        /// What the rule requires.
        expected: u64,
        /// What was found.
        got: usize,
    },
    /// A slot's checkpoints are wrong.
    #[error(transparent)]
    ProofOfTime(#[from] PotChainError),
    /// The seal is wrong.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The solution range is not the era's.
    #[error("solution range {got:?}, expected {expected:?}")]
    SolutionRange {
        /// What the rule requires.
        expected: SolutionRange,
        /// What was found.
        got: SolutionRange,
    },
    /// The announced next solution range is not the retarget rule's.
    #[error("next solution range {got:?}, expected {expected:?}")]
    NextSolutionRange {
        /// What the rule requires.
        expected: Option<SolutionRange>,
        /// What was found.
        got: Option<SolutionRange>,
    },
    /// The solution does not win this slot.
    #[error("invalid solution: {0}")]
    Solution(#[from] SolutionVerificationError),
}

/// A header that passed [`validate_header`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidHeader {
    /// The block hash.
    pub hash: BlockHash,
    /// The proof-of-time output of the block's slot (the block's entropy).
    pub slot_output: PotOutput,
    /// The outputs of every slot after the parent's up to the block's (what its votes answer).
    pub slot_outputs: Vec<(SlotNumber, PotOutput)>,
    /// What the block's children need.
    pub child_parent_info: ParentInfo,
}

/// Validates `header` as a child of `parent` on a chain that knows `chain`'s segment roots.
pub fn validate_header(
    params: &ProtocolParams,
    header: &Header,
    parent: &ParentInfo,
    genesis_seed: &PotSeed,
    injections: &[EntropyInjection],
    chain: &impl SegmentRoots,
) -> Result<ValidHeader, HeaderError> {
    validate_header_cached(
        params,
        header,
        parent,
        genesis_seed,
        injections,
        chain,
        &NoPotCache,
    )
}

/// As [`validate_header`], skipping proof-of-time slots `pot_cache` already knows to be right.
pub fn validate_header_cached(
    params: &ProtocolParams,
    header: &Header,
    parent: &ParentInfo,
    genesis_seed: &PotSeed,
    injections: &[EntropyInjection],
    chain: &impl SegmentRoots,
    pot_cache: &impl PotCache,
) -> Result<ValidHeader, HeaderError> {
    let unsealed = &header.unsealed;
    if unsealed.version != Header::VERSION {
        return Err(HeaderError::Version(unsealed.version));
    }
    if unsealed.parent_hash != parent.hash {
        return Err(HeaderError::NotAChild("wrong parent hash"));
    }
    if unsealed.number.0 != parent.number.0 + 1 {
        return Err(HeaderError::NotAChild("number is not the parent's plus one"));
    }
    if unsealed.slot <= parent.slot {
        return Err(HeaderError::SlotNotAfterParent {
            slot: unsealed.slot,
            parent: parent.slot,
        });
    }
    header.verify_seal()?;

    // Proof of time: every slot after the parent's coverage up to slot + authoring delay. The outputs are
    // taken from the claimed checkpoints now and verified last (spec 8: cheap checks first), so a block
    // with a bad solution costs no AES work, and one whose proof contradicts the node's own costs none.
    let covered = SlotNumber(unsealed.slot.0.saturating_add(params.block_authoring_delay));
    let expected = covered.0.saturating_sub(parent.pot_covered_slot.0);
    if expected != unsealed.pot_checkpoints.len() as u64 {
        return Err(HeaderError::PotSlotCount {
            expected,
            got: unsealed.pot_checkpoints.len(),
        });
    }
    let mut outputs = parent.pot_recent_outputs.clone();
    outputs.extend(
        unsealed
            .pot_checkpoints
            .iter()
            .map(|checkpoints| checkpoints.output()),
    );
    // `outputs` ends with `covered`'s output.
    let output_of = |slot: SlotNumber| {
        covered
            .0
            .checked_sub(slot.0)
            .and_then(|back| usize::try_from(back).ok())
            .and_then(|back| outputs.len().checked_sub(back.checked_add(1)?))
            .and_then(|index| outputs.get(index))
            .copied()
    };
    let slot_output = output_of(unsealed.slot).ok_or(HeaderError::NotAChild(
        "the slot's proof of time is not available",
    ))?;
    let slot_outputs = (parent.slot.0.saturating_add(1)..=unsealed.slot.0)
        .filter_map(|slot| Some((SlotNumber(slot), output_of(SlotNumber(slot))?)))
        .collect();

    if unsealed.solution_range != parent.era.solution_range {
        return Err(HeaderError::SolutionRange {
            expected: parent.era.solution_range,
            got: unsealed.solution_range,
        });
    }
    let next_era = parent.era.after_block(params, unsealed.number, unsealed.slot);
    let expected_next = (next_era != parent.era).then_some(next_era.solution_range);
    if unsealed.next_solution_range != expected_next {
        return Err(HeaderError::NextSolutionRange {
            expected: expected_next,
            got: unsealed.next_solution_range,
        });
    }

    let solution = unsealed
        .solution
        .as_ref()
        .ok_or(SealError::MissingSolution(unsealed.number))?;
    verify_solution(
        params,
        solution,
        &slot_challenge(&slot_output, unsealed.slot),
        unsealed.solution_range,
        chain,
    )?;

    let start = match parent.pot_recent_outputs.last() {
        Some(output) => PotStart::After(parent.pot_covered_slot, *output),
        None => PotStart::Genesis(*genesis_seed),
    };
    verify_slots_cached(params, start, &unsealed.pot_checkpoints, injections, pot_cache)?;
    let window = usize::try_from(params.block_authoring_delay)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let mut recent = outputs;
    recent.drain(..recent.len().saturating_sub(window));

    let hash = header.hash();
    Ok(ValidHeader {
        hash,
        slot_output,
        slot_outputs,
        child_parent_info: ParentInfo {
            hash,
            number: unsealed.number,
            slot: unsealed.slot,
            pot_covered_slot: covered,
            pot_recent_outputs: recent,
            era: next_era,
        },
    })
}
