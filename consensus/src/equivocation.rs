//! Equivocation (spec sections 7 and 8): a farmer signing two different things for one slot.
//!
//! A farmer may sign at most one block or one vote per slot with a key. Two different signed claims (two
//! blocks, two votes, or a block and a vote) by the same key for the same slot are an equivocation. The
//! claim is keyed on `(public key, slot)`, never on the solution: a solution does not bind the reward
//! address, so keying on it would let a farmer seal many siblings that differ only there.
//!
//! A node that sees an equivocation refuses the second claim, and puts an [`EquivocationProof`] in its
//! next block; the proof puts the key on the branch's block-list (part of the branch's consensus context,
//! so it survives restarts and follows reorgs), and the key's later blocks and votes are invalid on that
//! branch. Verifying a proof needs only the two signatures.

use borsh::{BorshDeserialize, BorshSerialize};
use thiserror::Error;

use crate::blocks::{Header, SealError};
use crate::hashing::Blake3Hash;
use crate::quantities::SlotNumber;
use crate::sectors::PublicKey;
use crate::votes::{SignedVote, VoteError};

/// Most equivocation proofs one block may carry.
pub const MAX_EQUIVOCATION_PROOFS_PER_BLOCK: usize = 8;

/// Something a farmer signed for a slot.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum SignedClaim {
    /// A sealed block header.
    Block(Header),
    /// A signed vote.
    Vote(SignedVote),
}

impl SignedClaim {
    /// The signer, the slot and the hash of what was signed.
    pub fn key(&self) -> Option<(PublicKey, SlotNumber, Blake3Hash)> {
        match self {
            Self::Block(header) => header
                .unsealed
                .solution
                .as_ref()
                .map(|solution| (solution.public_key, header.unsealed.slot, header.hash())),
            Self::Vote(vote) => Some((vote.vote.solution.public_key, vote.vote.slot, vote.vote.hash())),
        }
    }

    fn verify_signature(&self) -> Result<(), EquivocationError> {
        match self {
            Self::Block(header) => header.verify_seal().map_err(EquivocationError::Seal),
            Self::Vote(vote) => vote.verify_signature().map_err(EquivocationError::Vote),
        }
    }
}

/// Two claims proving that one key signed two different things for one slot.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct EquivocationProof {
    /// The first claim.
    pub first: SignedClaim,
    /// The second, different claim.
    pub second: SignedClaim,
}

/// Why an equivocation proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EquivocationError {
    /// A claim has no signer (a genesis header).
    #[error("a claim has no signer")]
    NoSigner,
    /// The claims are by different keys or for different slots.
    #[error("the claims are by different keys or for different slots")]
    NotTheSameSlot,
    /// The claims are the same thing.
    #[error("the claims are identical")]
    Identical,
    /// A block seal does not verify.
    #[error("a block claim's seal: {0}")]
    Seal(SealError),
    /// A vote signature does not verify.
    #[error("a vote claim: {0}")]
    Vote(VoteError),
}

impl EquivocationProof {
    /// Verifies the proof; returns the equivocating key.
    pub fn verify(&self) -> Result<PublicKey, EquivocationError> {
        let (first_key, first_slot, first_hash) = self.first.key().ok_or(EquivocationError::NoSigner)?;
        let (second_key, second_slot, second_hash) = self.second.key().ok_or(EquivocationError::NoSigner)?;
        if first_key != second_key || first_slot != second_slot {
            return Err(EquivocationError::NotTheSameSlot);
        }
        if first_hash == second_hash {
            return Err(EquivocationError::Identical);
        }
        self.first.verify_signature()?;
        self.second.verify_signature()?;
        Ok(first_key)
    }
}

/// What a node knows it has seen for one `(key, slot)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Nothing yet: the claim is recorded.
    First,
    /// This very claim again.
    Again,
    /// A different claim: an equivocation.
    Equivocation {
        /// The hash of the claim seen first.
        first: Blake3Hash,
    },
}

/// Judges a new claim `hash` against the one already seen for its `(key, slot)`, if any.
pub fn judge(seen: Option<Blake3Hash>, hash: Blake3Hash) -> Seen {
    match seen {
        None => Seen::First,
        Some(first) if first == hash => Seen::Again,
        Some(first) => Seen::Equivocation { first },
    }
}
