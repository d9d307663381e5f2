//! Proof of space (spec section 4): Chia's seven tables, with Acre's mapping from s-buckets to challenges.
//!
//! A farmer plotting a record derives the record's evaluation seed, builds a [`Table`] from it (all seven
//! Chia tables over the `2^k` x values), and asks it for the proof of every s-bucket it encodes
//! ([`Table::find_proof`]). The proof's [`ProofQuality`] masks the s-bucket's chunk on disk. A verifier
//! receives only the seed, the s-bucket and the 64 x values, and re-evaluates the tree of matches
//! ([`verify`]); that costs 64 `f1` evaluations and 63 hashes and never needs the table.
//!
//! The functions `f1` ([`compute_f1`]), the matching condition ([`is_match`]) and `f2..f7`
//! ([`compute_fx`]) are bit for bit those of chiapos, so its published known-answer values hold here. Acre
//! only changes how a challenge selects a proof:
//!
//! - the challenge of s-bucket `s` is the `k`-bit target `t(s) = s << (k − log2(s-buckets))`
//!   ([`ChallengeIndex::for_s_bucket`]);
//! - a proof answers target `t` when its table-7 value `y7` (`k + 6` bits) satisfies `y7 >> 6 == t`, i.e.
//!   the top `k` bits of `y7` are the target — the same comparison chiapos makes against the first `k`
//!   bits of its challenge;
//! - when several table-7 entries answer a target, the proof whose 64 x values are smallest in
//!   lexicographic order (equivalently, whose proof bytes are smallest) is canonical, so every
//!   implementation picks the same one however it orders its tables;
//! - a proof lists its x values in the order of the leaves of its tree, left to right (chiapos's "proof
//!   ordering": positions `2i` and `2i + 1` are the left and right entries of a match), packed as `k`-bit
//!   big-endian fields into `8·k` bytes.
//!
//! Tables are monomorphised over `K` (mainnet 20, dev 12); [`verify_for_params`] dispatches on
//! `ProtocolParams::pos_k` for callers that only hold the parameters.
//!
//! The share of targets with a proof is about 1 − 1/e only for large `k`. The first and last BC buckets
//! have a neighbour on one side only, so every table loses about `1 / buckets` of its matches, and because
//! matches grow with the square of a table's density the loss roughly doubles at each table. With the
//! 4441 buckets of k = 20 that costs about 1.4 % of table 7 (63 % of targets have a proof); with the 17
//! buckets of k = 12 table 7 keeps under 5 % of its entries and only about 3 % of targets have a proof
//! (measured: k = 15 ≈ 47 %, 16 ≈ 56 %, 17 ≈ 60 %, 18 ≈ 61 %).

mod f1;
mod fx;
mod proof;
mod table;

use thiserror::Error;

use crate::hashing::{self, Blake3Hash, HashContext};
use crate::params::ProtocolParams;
use crate::quantities::SBucket;

pub use f1::compute_f1;
pub use fx::{compute_fx, is_match};
pub use proof::{Proof, evaluate_proof, verify};
pub use table::Table;

/// Extra bits of `y` beyond `k` (chiapos `kExtraBits`).
pub const PARAM_EXT: u8 = 6;
/// Number of match patterns (`2^PARAM_EXT`).
pub const PARAM_M: usize = 64;
/// Chia's B group size.
pub const PARAM_B: u16 = 119;
/// Chia's C group size.
pub const PARAM_C: u16 = 127;
/// Size of a BC bucket: entries can only match across adjacent buckets.
pub const PARAM_BC: u16 = PARAM_B * PARAM_C;
/// Number of x values in a proof.
pub const PROOF_X_VALUES: usize = 64;

/// The 32-byte evaluation seed a table is built from (the ChaCha8 key of `f1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PosSeed(pub [u8; 32]);

impl From<Blake3Hash> for PosSeed {
    fn from(hash: Blake3Hash) -> Self {
        Self(hash.0)
    }
}

/// The `k`-bit target a proof's table-7 output must equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChallengeIndex(pub u32);

impl ChallengeIndex {
    /// The target of s-bucket `s`: `s << (k − log2(s-buckets))`.
    pub fn for_s_bucket(params: &ProtocolParams, s_bucket: SBucket) -> Result<Self, PosError> {
        let s_buckets = params.s_buckets();
        let bucket_bits = s_buckets.trailing_zeros();
        // A target is a k-bit `u32`: k above 32 would overflow the shift below.
        if !s_buckets.is_power_of_two() || bucket_bits > u32::from(params.pos_k) || params.pos_k > 32 {
            return Err(PosError::UnsupportedParams {
                k: params.pos_k,
                s_buckets,
            });
        }
        if u32::from(s_bucket.get()) >= s_buckets {
            return Err(PosError::SBucketOutOfRange {
                s_bucket: s_bucket.get(),
                s_buckets,
            });
        }
        Ok(Self(
            u32::from(s_bucket.get()) << (u32::from(params.pos_k) - bucket_bits),
        ))
    }
}

/// A proof's quality, also the mask of its s-bucket's chunk: `H(pos_ctx, proof bytes)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProofQuality(pub Blake3Hash);

impl ProofQuality {
    /// The quality of the proof with these bytes.
    pub fn of_proof_bytes(bytes: &[u8]) -> Self {
        Self(hashing::hash(HashContext::PosQuality, bytes))
    }
}

/// Why a proof of space was rejected or could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PosError {
    /// The proof does not have exactly `8·k` bytes.
    #[error("proof of space must be {expected} bytes, got {len}")]
    WrongProofSize {
        /// What the rule requires.
        expected: usize,
        /// Its length in bytes.
        len: usize,
    },
    /// Two entries that must match at some table do not.
    #[error("proof of space entries {pair} of table {table} do not match")]
    NoMatch {
        /// The proof-of-space table (1 to 7).
        table: u8,
        /// The pair of proof values.
        pair: usize,
    },
    /// The proof is internally consistent but answers another challenge.
    #[error("proof of space answers target {found}, not {expected}")]
    WrongTarget {
        /// What the rule requires.
        expected: u32,
        /// What was found.
        found: u32,
    },
    /// The challenge index does not fit in `k` bits.
    #[error("challenge index {index} does not fit in {k} bits")]
    ChallengeOutOfRange {
        /// Which one (counting from zero).
        index: u32,
        /// The proof-of-space table size parameter.
        k: u8,
    },
    /// The s-bucket is outside the record.
    #[error("s-bucket {s_bucket} is out of range (record has {s_buckets})")]
    SBucketOutOfRange {
        /// The s-bucket.
        s_bucket: u16,
        /// S-buckets in a record.
        s_buckets: u32,
    },
    /// This build has no monomorphised tables for these parameters.
    #[error("proof of space with k = {k} and {s_buckets} s-buckets is not supported")]
    UnsupportedParams {
        /// The proof-of-space table size parameter.
        k: u8,
        /// S-buckets in a record.
        s_buckets: u32,
    },
}

/// Verifies the proof for `s_bucket` under `params` (dispatching on `pos_k`: 12, 16 or 20); see [`verify`].
pub fn verify_for_params(
    params: &ProtocolParams,
    seed: &PosSeed,
    s_bucket: SBucket,
    proof_bytes: &[u8],
) -> Result<ProofQuality, PosError> {
    let challenge = ChallengeIndex::for_s_bucket(params, s_bucket)?;
    match params.pos_k {
        12 => verify::<12>(seed, challenge, &Proof::from_bytes(proof_bytes)?),
        16 => verify::<16>(seed, challenge, &Proof::from_bytes(proof_bytes)?),
        20 => verify::<20>(seed, challenge, &Proof::from_bytes(proof_bytes)?),
        k => Err(PosError::UnsupportedParams {
            k,
            s_buckets: params.s_buckets(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s_bucket_targets_follow_the_spec() {
        let mainnet = ProtocolParams::mainnet();
        assert_eq!(
            ChallengeIndex::for_s_bucket(&mainnet, SBucket(3)),
            Ok(ChallengeIndex(3 << 4))
        );
        let dev = ProtocolParams::dev();
        assert_eq!(
            ChallengeIndex::for_s_bucket(&dev, SBucket(255)),
            Ok(ChallengeIndex(255 << 8))
        );
        assert!(ChallengeIndex::for_s_bucket(&dev, SBucket(256)).is_err());
    }
}
