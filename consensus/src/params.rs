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
use crate::segments::SegmentHeader;

/// Size of a chunk, the unit of records, audits and proofs.
pub const CHUNK_SIZE: usize = 32;

/// A chunk: 32 bytes of a record.
pub type Chunk = [u8; CHUNK_SIZE];

/// The proof-of-space `k` values this build has monomorphised tables and verifiers for (the dispatch in
/// `pos::verify_for_params` and the farmer's table builder).
pub const SUPPORTED_POS_K: [u8; 3] = [12, 16, 20];

/// Bytes of the archiver's item framing: a tag byte and a little-endian `u32` length (`acre-storage`'s
/// `ITEM_HEADER_SIZE` is this constant).
pub const SEGMENT_ITEM_HEADER_SIZE: usize = 1 + 4;

/// The smallest segment that can hold its own items: every segment after the first starts with its
/// parent's header as an item, and must then fit a block item's header and at least one byte of a block,
/// or archiving would never make progress.
pub const MIN_SEGMENT_SIZE: usize =
    SEGMENT_ITEM_HEADER_SIZE + SegmentHeader::ENCODED_SIZE + SEGMENT_ITEM_HEADER_SIZE + 1;

/// Why a parameter set is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// `record_chunks` is not a power of two in `2..=2^15`.
    #[error("record_chunks {0} must be a power of two in 2..=2^15")]
    RecordChunks(u32),
    /// `source_records_per_segment` is not a power of two in `1..=2^14`.
    #[error("source_records_per_segment {0} must be a power of two in 1..=2^14")]
    SourceRecordsPerSegment(u32),
    /// A segment cannot hold its parent's header item plus a block item.
    #[error("segments of {segment_size} bytes cannot hold their own items (at least {minimum} bytes)")]
    SegmentTooSmall {
        /// Bytes in a segment.
        segment_size: usize,
        /// The least allowed.
        minimum: usize,
    },
    /// No proof-of-space tables exist for this `k`.
    #[error("pos_k {0} is not supported (supported: 12, 16, 20)")]
    UnsupportedPosK(u8),
    /// `k` is too small to address every s-bucket of a record.
    #[error("pos_k {k} cannot address {s_buckets} s-buckets")]
    PosKTooSmall {
        /// The proof-of-space table size parameter.
        k: u8,
        /// S-buckets in a record.
        s_buckets: u32,
    },
    /// The proof-of-time format fixes the checkpoint count.
    #[error("pot_checkpoints {0} must be 8 (the proof-of-time format fixes it)")]
    PotCheckpoints(u8),
    /// Zero iterations, or not a multiple of the checkpoint count.
    #[error("pot_iterations {iterations} must be a non-zero multiple of pot_checkpoints ({checkpoints})")]
    PotIterations {
        /// The proof-of-time iterations.
        iterations: u32,
        /// Checkpoints per slot.
        checkpoints: u8,
    },
    /// A ratio lies outside `[0, 1]` or has a zero denominator.
    #[error("{0} must lie in [0, 1] with a non-zero denominator")]
    Ratio(&'static str),
    /// A value that must be positive is zero.
    #[error("{0} must be non-zero")]
    Zero(&'static str),
}

/// A rational number `numerator / denominator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Ratio {
    /// The numerator.
    pub numerator: u64,
    /// The denominator (never zero).
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

    /// Checks the invariants every other module relies on. A chain spec is untrusted input (an operator may
    /// load one from anywhere), so every value that could make a later division, shift or loop misbehave is
    /// refused here with its own [`ParamsError`].
    pub fn validate(&self) -> Result<(), Error> {
        Ok(self.check()?)
    }

    fn check(&self) -> Result<(), ParamsError> {
        if !self.record_chunks.is_power_of_two() || !(2..=1 << 15).contains(&self.record_chunks) {
            return Err(ParamsError::RecordChunks(self.record_chunks));
        }
        if !self.source_records_per_segment.is_power_of_two()
            || !(1..=1 << 14).contains(&self.source_records_per_segment)
        {
            return Err(ParamsError::SourceRecordsPerSegment(
                self.source_records_per_segment,
            ));
        }
        if self.segment_size() < MIN_SEGMENT_SIZE {
            return Err(ParamsError::SegmentTooSmall {
                segment_size: self.segment_size(),
                minimum: MIN_SEGMENT_SIZE,
            });
        }
        if !SUPPORTED_POS_K.contains(&self.pos_k) {
            return Err(ParamsError::UnsupportedPosK(self.pos_k));
        }
        // A challenge index is `s_bucket << (k − log2(s_buckets))`: the s-bucket must fit in k bits.
        if self.s_buckets().trailing_zeros() > u32::from(self.pos_k) {
            return Err(ParamsError::PosKTooSmall {
                k: self.pos_k,
                s_buckets: self.s_buckets(),
            });
        }
        if usize::from(self.pot_checkpoints) != crate::pot::POT_CHECKPOINTS {
            return Err(ParamsError::PotCheckpoints(self.pot_checkpoints));
        }
        // Zero iterations would make every slot's proof of time free (and is a multiple of anything).
        if self.pot_iterations == 0
            || !self
                .pot_iterations
                .is_multiple_of(u32::from(self.pot_checkpoints))
        {
            return Err(ParamsError::PotIterations {
                iterations: self.pot_iterations,
                checkpoints: self.pot_checkpoints,
            });
        }
        for (name, ratio) in [
            ("slot_probability", self.slot_probability),
            ("recent_history_fraction", self.recent_history_fraction),
        ] {
            if ratio.denominator == 0 || ratio.numerator > ratio.denominator {
                return Err(ParamsError::Ratio(name));
            }
        }
        // With probability zero no solution ever qualifies and the chain never grows.
        if self.slot_probability.numerator == 0 {
            return Err(ParamsError::Zero("slot_probability.numerator"));
        }
        for (name, value) in [
            ("max_pieces_per_sector", u64::from(self.max_pieces_per_sector)),
            ("era_duration", self.era_duration),
            (
                "pot_entropy_injection_interval",
                self.pot_entropy_injection_interval,
            ),
        ] {
            if value == 0 {
                return Err(ParamsError::Zero(name));
            }
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

    fn invalid(change: impl FnOnce(&mut ProtocolParams)) -> ParamsError {
        let mut params = ProtocolParams::dev();
        change(&mut params);
        match params.validate() {
            Err(Error::InvalidParams(error)) => error,
            other => panic!("expected invalid parameters, got {other:?}"),
        }
    }

    #[test]
    fn rejects_broken_sets() {
        assert_eq!(
            invalid(|params| params.record_chunks = 100),
            ParamsError::RecordChunks(100)
        );
        assert_eq!(
            invalid(|params| params.source_records_per_segment = 3),
            ParamsError::SourceRecordsPerSegment(3)
        );
        assert_eq!(
            invalid(|params| params.pot_iterations = 7),
            ParamsError::PotIterations {
                iterations: 7,
                checkpoints: 8
            }
        );
        assert_eq!(
            invalid(|params| params.recent_history_fraction.denominator = 0),
            ParamsError::Ratio("recent_history_fraction")
        );
        assert_eq!(
            invalid(|params| params.era_duration = 0),
            ParamsError::Zero("era_duration")
        );
    }

    #[test]
    fn zero_pot_iterations_are_rejected() {
        assert_eq!(
            invalid(|params| params.pot_iterations = 0),
            ParamsError::PotIterations {
                iterations: 0,
                checkpoints: 8
            }
        );
    }

    #[test]
    fn pos_k_without_tables_is_rejected() {
        for k in [0, 11, 13, 17, 21, 32, 255] {
            assert_eq!(
                invalid(|params| params.pos_k = k),
                ParamsError::UnsupportedPosK(k),
                "{k}"
            );
        }
        // k = 12 exists but cannot address mainnet's 2^16 s-buckets.
        let mut params = ProtocolParams::mainnet();
        params.pos_k = 12;
        assert_eq!(
            params.validate(),
            Err(Error::InvalidParams(ParamsError::PosKTooSmall {
                k: 12,
                s_buckets: 1 << 16
            }))
        );
    }

    #[test]
    fn supported_pos_k_matches_the_verifier_dispatch() {
        let seed = crate::pos::PosSeed([1; 32]);
        let bucket = crate::SBucket(0);
        for k in 0..=u8::MAX {
            let mut params = ProtocolParams::dev();
            params.record_chunks = 2;
            params.source_records_per_segment = 1 << 6;
            params.pos_k = k;
            let unsupported = matches!(
                crate::pos::verify_for_params(&params, &seed, bucket, &[]),
                Err(crate::pos::PosError::UnsupportedParams { .. })
            );
            assert_eq!(unsupported, !SUPPORTED_POS_K.contains(&k), "k = {k}");
        }
    }

    #[test]
    fn segments_too_small_for_their_own_items_are_rejected() {
        // 2 chunks × 32 bytes × 1 record = 64 bytes: not even the parent header item fits.
        assert_eq!(
            invalid(|params| {
                params.record_chunks = 2;
                params.source_records_per_segment = 1;
            }),
            ParamsError::SegmentTooSmall {
                segment_size: 64,
                minimum: MIN_SEGMENT_SIZE
            }
        );
        // The smallest segment that fits passes.
        let mut params = ProtocolParams::dev();
        params.record_chunks = 2;
        params.source_records_per_segment = 4;
        assert!(params.segment_size() >= MIN_SEGMENT_SIZE);
        params.validate().expect("128-byte segments hold their items");
    }

    #[test]
    fn zero_slot_probability_and_injection_interval_are_rejected() {
        assert_eq!(
            invalid(|params| params.slot_probability.numerator = 0),
            ParamsError::Zero("slot_probability.numerator")
        );
        assert_eq!(
            invalid(|params| params.pot_entropy_injection_interval = 0),
            ParamsError::Zero("pot_entropy_injection_interval")
        );
    }
}
