//! What a farmer agrees to sign (spec 8).
//!
//! A node asks its farmer to seal the blocks it authors, and a node may be malicious. So the farmer never
//! signs a hash it is handed: it decodes the header itself, recomputes its hash, and seals only a header
//! whose solution is one it submitted for that header's slot, at most once per slot (so a node cannot
//! collect two seals for one slot and get the farmer block-listed for equivocation). Signatures are
//! context-prefixed as block seals, so none can pass as a transaction or a vote either.

use std::collections::{BTreeMap, BTreeSet};

use acre_consensus::blocks::{MAX_HEADER_SIZE, UnsealedHeader};
use acre_consensus::hashing::Blake3Hash;
use acre_consensus::sectors::PublicKey;
use acre_consensus::solutions::Solution;
use acre_consensus::{SlotNumber, codec};
use thiserror::Error;

/// Slots remembered (solutions submitted, slots sealed): far more than a seal request can lag behind.
const REMEMBERED_SLOTS: usize = 256;

/// Why a seal request was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SealRefusal {
    /// The header does not decode.
    #[error("the header does not decode: {0}")]
    Malformed(String),
    /// The request's hash is not the header's.
    #[error("the request's hash is not the header's hash")]
    HashMismatch,
    /// The header has no solution, or another key's.
    #[error("the header's solution is not this farmer's")]
    NotOurs,
    /// The header's solution is not the one this farmer submitted for its slot.
    #[error("no such solution was submitted for slot {0}")]
    NotSubmitted(SlotNumber),
    /// A block for this slot was sealed already.
    #[error("a block for slot {0} was sealed already")]
    AlreadySealed(SlotNumber),
}

/// Solutions this farmer submitted and slots it sealed.
#[derive(Debug, Default)]
pub struct SealGuard {
    submitted: BTreeMap<SlotNumber, Vec<Solution>>,
    sealed: BTreeSet<SlotNumber>,
}

impl SealGuard {
    /// Remembers that `solution` was submitted for `slot`.
    pub fn submitted(&mut self, slot: SlotNumber, solution: Solution) {
        self.submitted.entry(slot).or_default().push(solution);
        while self.submitted.len() > REMEMBERED_SLOTS {
            self.submitted.pop_first();
        }
    }

    /// Decides whether to seal `header` (encoded) announced with `hash`; on success the slot counts as
    /// sealed and the hash to sign is returned.
    pub fn authorize(
        &mut self,
        public_key: &PublicKey,
        hash: &Blake3Hash,
        header: &[u8],
    ) -> Result<Blake3Hash, SealRefusal> {
        let header: UnsealedHeader = codec::decode_bounded("unsealed header", header, MAX_HEADER_SIZE)
            .map_err(|error| SealRefusal::Malformed(error.to_string()))?;
        if header.hash() != *hash {
            return Err(SealRefusal::HashMismatch);
        }
        let solution = header
            .solution
            .as_ref()
            .filter(|solution| solution.public_key == *public_key)
            .ok_or(SealRefusal::NotOurs)?;
        let slot = header.slot;
        if !self
            .submitted
            .get(&slot)
            .is_some_and(|solutions| solutions.contains(solution))
        {
            return Err(SealRefusal::NotSubmitted(slot));
        }
        if !self.sealed.insert(slot) {
            return Err(SealRefusal::AlreadySealed(slot));
        }
        while self.sealed.len() > REMEMBERED_SLOTS {
            self.sealed.pop_first();
        }
        Ok(*hash)
    }

    /// Whether a block or vote was signed for `slot` already.
    pub fn is_sealed(&self, slot: SlotNumber) -> bool {
        self.sealed.contains(&slot)
    }

    /// Marks `slot` as signed for (a vote), so no block for it is sealed afterwards.
    pub fn mark_voted(&mut self, slot: SlotNumber) -> bool {
        let fresh = self.sealed.insert(slot);
        while self.sealed.len() > REMEMBERED_SLOTS {
            self.sealed.pop_first();
        }
        fresh
    }
}

#[cfg(test)]
mod tests {
    use acre_consensus::blocks::Header;
    use acre_consensus::quantities::{BlockNumber, HistorySize, PieceOffset, SectorIndex, SolutionRange};

    use super::*;

    fn solution(key: PublicKey, reward: u8) -> Solution {
        Solution {
            public_key: key,
            reward_address: [reward; 32],
            sector_index: SectorIndex(1),
            history_size: HistorySize::ONE,
            piece_offset: PieceOffset(2),
            record_root: Default::default(),
            record_proof: vec![[5; 32]; 5],
            chunk: [6; 32],
            chunk_proof: vec![[7; 32]; 8],
            proof_of_space: vec![8; 128],
        }
    }

    fn header(solution: Solution, slot: u64, state_root: u8) -> UnsealedHeader {
        UnsealedHeader {
            version: Header::VERSION,
            parent_hash: Blake3Hash([1; 32]),
            number: BlockNumber(5),
            slot: SlotNumber(slot),
            pot_checkpoints: Vec::new(),
            solution: Some(solution),
            solution_range: SolutionRange(1000),
            next_solution_range: None,
            state_root: Blake3Hash([state_root; 32]),
            body_root: Blake3Hash([2; 32]),
        }
    }

    #[test]
    fn farmer_seals_only_decoded_headers_of_its_own_submitted_solution_once_per_slot() {
        let ours = PublicKey([3; 32]);
        let mut guard = SealGuard::default();
        let submitted = solution(ours, 4);
        guard.submitted(SlotNumber(40), submitted.clone());

        // A bare hash (say, a transfer's digest) under a made-up header never gets signed.
        let digest = Blake3Hash([9; 32]);
        assert!(matches!(
            guard.authorize(&ours, &digest, b"not a header"),
            Err(SealRefusal::Malformed(_))
        ));
        let honest = header(submitted.clone(), 40, 1);
        let bytes = codec::encode(&honest);
        assert_eq!(
            guard.authorize(&ours, &digest, &bytes),
            Err(SealRefusal::HashMismatch)
        );
        // A solution the farmer never submitted (another reward address), or for another slot.
        let other = header(solution(ours, 5), 40, 1);
        assert_eq!(
            guard.authorize(&ours, &other.hash(), &codec::encode(&other)),
            Err(SealRefusal::NotSubmitted(SlotNumber(40)))
        );
        let elsewhere = header(submitted.clone(), 41, 1);
        assert_eq!(
            guard.authorize(&ours, &elsewhere.hash(), &codec::encode(&elsewhere)),
            Err(SealRefusal::NotSubmitted(SlotNumber(41)))
        );
        let theirs = header(solution(PublicKey([7; 32]), 4), 40, 1);
        assert_eq!(
            guard.authorize(&ours, &theirs.hash(), &codec::encode(&theirs)),
            Err(SealRefusal::NotOurs)
        );
        // The honest header is sealed once; a sibling for the same slot never.
        assert_eq!(guard.authorize(&ours, &honest.hash(), &bytes), Ok(honest.hash()));
        let sibling = header(submitted, 40, 2);
        assert_eq!(
            guard.authorize(&ours, &sibling.hash(), &codec::encode(&sibling)),
            Err(SealRefusal::AlreadySealed(SlotNumber(40)))
        );
    }
}
