//! Votes (spec section 7): solutions that miss the solution range but fall within the wider voting range.
//!
//! A vote is `{parent hash, slot, solution}` signed by the farmer as a [`SigningContext::Vote`] message.
//! It is valid only in the body of a block whose parent is the vote's parent, for a slot after the
//! parent's and no later than the block's, and it is checked exactly like a block's solution (same proof of
//! time, same branch-local history), except against the voting range and with the requirement that it does
//! *not* win a block. Votes add no weight; each included vote pays the chain spec's vote reward.

use borsh::{BorshDeserialize, BorshSerialize};
use thiserror::Error;

use crate::audit::{SectorSlotChallenge, challenge_target, is_within_solution_range};
use crate::blocks::BlockHash;
use crate::codec;
use crate::error::DecodeError;
use crate::hashing::{self, Blake3Hash, HashContext};
use crate::params::ProtocolParams;
use crate::quantities::{SlotNumber, SolutionRange};
use crate::sectors::SectorId;
use crate::signing::{self, SigningContext};
use crate::solutions::{SegmentRoots, Solution, SolutionVerificationError, verify_solution};

/// Most votes one block may carry: four times the expected number, so a block is never short of room
/// for honest votes in a burst, while a body stays small.
pub fn max_votes_per_block(params: &ProtocolParams) -> usize {
    usize::try_from(params.expected_votes_per_block)
        .unwrap_or(usize::MAX)
        .saturating_add(1)
        .saturating_mul(4)
}

/// `solution_range × (expected_votes_per_block + 1)`, saturating.
pub fn voting_range(params: &ProtocolParams, solution_range: SolutionRange) -> SolutionRange {
    SolutionRange(
        solution_range
            .0
            .saturating_mul(u64::from(params.expected_votes_per_block).saturating_add(1)),
    )
}

/// What a farmer votes for.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Vote {
    /// The block the vote builds on; the vote is valid only in a child of it.
    pub parent_hash: BlockHash,
    /// The slot the solution answers.
    pub slot: SlotNumber,
    /// The solution (within the voting range, outside the solution range).
    pub solution: Solution,
}

impl Vote {
    /// The vote's hash: what its signature signs and its identity.
    pub fn hash(&self) -> Blake3Hash {
        hashing::hash(HashContext::Vote, &codec::encode(self))
    }

    /// Signs the vote with the farmer's key.
    pub fn sign(self, key: &ed25519_dalek::SigningKey) -> SignedVote {
        let signature = signing::sign(key, SigningContext::Vote, &self.hash());
        SignedVote {
            vote: self,
            signature,
        }
    }
}

/// A vote with the farmer's signature.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedVote {
    /// The vote.
    pub vote: Vote,
    /// ed25519 signature of the vote's hash as a [`SigningContext::Vote`] message.
    pub signature: [u8; 64],
}

/// Largest encoded vote accepted from anyone (a solution plus a little).
pub const MAX_VOTE_SIZE: usize = 1 << 16;

/// Why a vote is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VoteError {
    /// The signature does not verify for the solution's key.
    #[error("the vote's signature does not verify")]
    BadSignature,
    /// The vote is for another parent than the including block's.
    #[error("the vote builds on {vote_parent}, not on the block's parent")]
    WrongParent {
        /// The parent the vote names.
        vote_parent: BlockHash,
    },
    /// The slot is not after the parent's and at most the block's.
    #[error("vote slot {slot} is not after the parent's slot {parent} and at most the block's {block}")]
    SlotOutOfRange {
        /// The slot.
        slot: SlotNumber,
        /// The parent's slot.
        parent: SlotNumber,
        /// The block's slot.
        block: SlotNumber,
    },
    /// The solution does not verify within the voting range.
    #[error("invalid vote solution: {0}")]
    Solution(#[from] SolutionVerificationError),
    /// The solution wins a block: it must be a block, not a vote.
    #[error("the vote's solution is within the solution range: it is a block, not a vote")]
    WinsBlock,
    /// The same vote twice in one block, or a second vote of one key for one slot.
    #[error("duplicate vote of this key for slot {0}")]
    Duplicate(SlotNumber),
    /// More votes than a block may carry.
    #[error("{got} votes, at most {max} per block")]
    TooMany {
        /// What was found.
        got: usize,
        /// The most allowed.
        max: usize,
    },
}

impl SignedVote {
    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a vote from untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode_bounded("vote", bytes, MAX_VOTE_SIZE)
    }

    /// Checks the signature (stateless, cheap).
    pub fn verify_signature(&self) -> Result<(), VoteError> {
        signing::verify(
            &self.vote.solution.public_key.0,
            SigningContext::Vote,
            &self.vote.hash(),
            &self.signature,
        )
        .map_err(|_| VoteError::BadSignature)
    }
}

/// Verifies a vote's solution for a slot whose global challenge is `global_challenge`: within the voting
/// range of `solution_range`, and not within `solution_range` itself. The signature, parent and slot
/// window are the caller's (cheaper) checks.
pub fn verify_vote_solution(
    params: &ProtocolParams,
    solution: &Solution,
    global_challenge: &Blake3Hash,
    solution_range: SolutionRange,
    chain: &impl SegmentRoots,
) -> Result<(), VoteError> {
    verify_solution(
        params,
        solution,
        global_challenge,
        voting_range(params, solution_range),
        chain,
    )?;
    let sector_id = SectorId::new(
        &solution.public_key.hash(),
        solution.sector_index,
        solution.history_size,
    );
    let challenge = SectorSlotChallenge::new(&sector_id, global_challenge);
    if is_within_solution_range(
        challenge.audit_value(&solution.chunk),
        challenge_target(global_challenge),
        solution_range,
    ) {
        return Err(VoteError::WinsBlock);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_voting_range_is_the_solution_range_times_expected_votes_plus_one() {
        let params = ProtocolParams::dev();
        assert_eq!(voting_range(&params, SolutionRange(1000)), SolutionRange(10_000));
        assert_eq!(
            voting_range(&params, SolutionRange(u64::MAX / 3)),
            SolutionRange(u64::MAX),
            "saturates"
        );
        assert_eq!(max_votes_per_block(&params), 40);
    }
}
