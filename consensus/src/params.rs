//! Protocol parameters.
//!
//! All protocol constants live in one [`ProtocolParams`] value carried by the chain spec; code never
//! hard-codes them. Two sets ship: [`ProtocolParams::mainnet`] (production sizes, for benches and release
//! runs) and [`ProtocolParams::dev`] (small, for tests and `acre dev`). Derived sizes (record, segment and
//! piece sizes, proof lengths) are methods so they can never disagree with the base values.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::hashing::HASH_SIZE;

/// Size of a chunk, the unit of records, audits and proofs.
pub const CHUNK_SIZE: usize = 32;

/// A chunk: 32 bytes of a record.
pub type Chunk = [u8; CHUNK_SIZE];

/// A rational number `numerator / denominator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Ratio {
    pub numerator: u64,
    pub denominator: u64,
}

/// The protocol's parameter set (spec section 1).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ProtocolParams {
    /// Source chunks per record (a power of two); a record is this many 32-byte chunks.
    pub record_chunks: u32,
    /// Source records per segment (a power of two); as many parity records are added.
    pub source_records_per_segment: u32,
    /// Proof-of-space table size parameter k.
    pub pos_k: u8,
    /// Maximum number of pieces in one sector.
    pub max_pieces_per_sector: u16,
    /// Expected fraction of slots with a block.
    pub slot_probability: Ratio,
    /// AES iterations of proof of time per slot (a multiple of `pot_checkpoints`).
    pub pot_iterations: u32,
    /// Checkpoints per slot.
    pub pot_checkpoints: u8,
    /// Proof-of-time slots ahead of authoring.
    pub block_authoring_delay: u64,
    /// Blocks between proof-of-time entropy injections.
    pub pot_entropy_injection_interval: u64,
    /// Injection intervals to look back for the entropy block.
    pub pot_entropy_injection_lookback: u8,
    /// Slots after the entropy block at which it is applied.
    pub pot_entropy_injection_delay: u64,
    /// Blocks per era (solution range retarget).
    pub era_duration: u64,
    /// Depth below the best block before a block is archived.
    pub confirmation_depth: u64,
    /// Blocks archived this many segments back are final.
    pub finality_segments: u64,
    /// Segments counted as "recent" for the sector piece-selection bias.
    pub recent_segments: u64,
    /// Fraction of a sector's offsets biased towards recent history.
    pub recent_history_fraction: Ratio,
    /// Minimum sector lifetime, in segments.
    pub min_sector_lifetime: u64,
    /// Votes expected per block: the voting range is the solution range times this plus one (spec 7).
    pub expected_votes_per_block: u32,
}

impl ProtocolParams {
    /// Production sizes: 1 MiB records, 128 + 128 pieces per segment, k = 20.
    pub fn mainnet() -> Self {
        Self {
            record_chunks: 1 << 15,
            source_records_per_segment: 128,
            pos_k: 20,
            max_pieces_per_sector: 1000,
            slot_probability: Ratio {
                numerator: 1,
                denominator: 6,
            },
            pot_iterations: 89_000_000,
            pot_checkpoints: 8,
            block_authoring_delay: 4,
            pot_entropy_injection_interval: 50,
            pot_entropy_injection_lookback: 2,
            pot_entropy_injection_delay: 15,
            era_duration: 2016,
            confirmation_depth: 100,
            finality_segments: 5,
            recent_segments: 5,
            recent_history_fraction: Ratio {
                numerator: 1,
                denominator: 10,
            },
            min_sector_lifetime: 4,
            expected_votes_per_block: 9,
        }
    }

    /// Small sizes for tests and `acre dev`: 4 KiB records, 16 + 16 pieces per segment, k = 16.
    pub fn dev() -> Self {
        Self {
            record_chunks: 1 << 7,
            source_records_per_segment: 16,
            // The spec's k = 12 gives proofs for only ~3 % of s-buckets (Chia's tables lose most matches
            // at tiny k); a record needs 50 %. k = 16 gives ~57 % (docs/decisions.md).
            pos_k: 16,
            max_pieces_per_sector: 16,
            pot_iterations: 44_500_000,
            pot_entropy_injection_interval: 20,
            era_duration: 100,
            confirmation_depth: 10,
            finality_segments: 2,
            recent_segments: 2,
            ..Self::mainnet()
        }
    }

    /// The parameter set called `name` (`mainnet` or `dev`).
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "mainnet" => Some(Self::mainnet()),
            "dev" => Some(Self::dev()),
            _ => None,
        }
    }

    /// Checks the invariants every other module relies on.
    pub fn validate(&self) -> Result<(), Error> {
        let power_of_two = |value: u32| value.is_power_of_two();
        if !power_of_two(self.record_chunks) || !(2..=1 << 15).contains(&self.record_chunks) {
            return Err(Error::InvalidParams(
                "record_chunks must be a power of two in 2..=2^15",
            ));
        }
        if !power_of_two(self.source_records_per_segment)
            || !(1..=1 << 14).contains(&self.source_records_per_segment)
        {
            return Err(Error::InvalidParams(
                "source_records_per_segment must be a power of two up to 2^14",
            ));
        }
        if usize::from(self.pot_checkpoints) != crate::pot::POT_CHECKPOINTS {
            return Err(Error::InvalidParams(
                "pot_checkpoints must be 8 (the proof-of-time format fixes it)",
            ));
        }
        if self.pot_checkpoints == 0
            || !self
                .pot_iterations
                .is_multiple_of(u32::from(self.pot_checkpoints))
        {
            return Err(Error::InvalidParams(
                "pot_iterations must be a non-zero multiple of pot_checkpoints",
            ));
        }
        for ratio in [self.slot_probability, self.recent_history_fraction] {
            if ratio.denominator == 0 || ratio.numerator > ratio.denominator {
                return Err(Error::InvalidParams(
                    "ratios must lie in [0, 1] with a non-zero denominator",
                ));
            }
        }
        if self.max_pieces_per_sector == 0 || self.era_duration == 0 {
            return Err(Error::InvalidParams(
                "max_pieces_per_sector and era_duration must be non-zero",
            ));
        }
        Ok(())
    }

    /// Bytes in a record.
    pub fn record_size(&self) -> usize {
        self.record_chunks as usize * CHUNK_SIZE
    }

    /// Chunks in an erasure-extended record (the number of s-buckets).
    pub fn s_buckets(&self) -> u32 {
        self.record_chunks * 2
    }

    /// Pieces (source and parity) per segment.
    pub fn pieces_per_segment(&self) -> u32 {
        self.source_records_per_segment * 2
    }

    /// Bytes of history in one segment.
    pub fn segment_size(&self) -> usize {
        self.record_size() * self.source_records_per_segment as usize
    }

    /// Hashes in a record's proof against its segment root.
    pub fn record_proof_len(&self) -> usize {
        self.pieces_per_segment().trailing_zeros() as usize
    }

    /// Hashes in a chunk's proof against its record root: the path in its half plus the other half's root.
    pub fn chunk_proof_len(&self) -> usize {
        self.record_chunks.trailing_zeros() as usize + 1
    }

    /// Bytes in an encoded piece: record ‖ record root ‖ parity-chunks root ‖ record proof.
    pub fn piece_size(&self) -> usize {
        self.record_size() + 2 * HASH_SIZE + self.record_proof_len() * HASH_SIZE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_sets_are_valid_and_sized_as_the_spec_says() {
        let mainnet = ProtocolParams::mainnet();
        mainnet.validate().expect("mainnet is valid");
        assert_eq!(mainnet.record_size(), 1 << 20);
        assert_eq!(mainnet.s_buckets(), 1 << 16);
        assert_eq!(mainnet.pieces_per_segment(), 256);
        assert_eq!(mainnet.segment_size(), 128 << 20);
        assert_eq!(mainnet.record_proof_len(), 8);

        let dev = ProtocolParams::dev();
        dev.validate().expect("dev is valid");
        assert_eq!(dev.record_size(), 4096);
        assert_eq!(dev.s_buckets(), 256);
        assert_eq!(dev.pieces_per_segment(), 32);
        assert_eq!(dev.segment_size(), 64 << 10);
        assert_eq!(dev.piece_size(), 4096 + 64 + 5 * 32);
    }

    #[test]
    fn rejects_broken_sets() {
        let mut params = ProtocolParams::dev();
        params.record_chunks = 100;
        assert!(params.validate().is_err());
        let mut params = ProtocolParams::dev();
        params.pot_iterations = 7;
        assert!(params.validate().is_err());
    }
}
