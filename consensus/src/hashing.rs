//! Domain-separated BLAKE3 hashing.
//!
//! Every use of the hash function in the protocol names a [`HashContext`]. Each context is turned once into
//! a 32-byte key with BLAKE3's `derive_key` mode and then used in keyed mode, so hashing a 64-byte Merkle
//! node costs exactly one compression and no two uses can ever collide. Hashes keyed by protocol data (the
//! spec's `H_keyed(key, data)`) use [`keyed_hash`].

pub mod lanes;

use std::fmt;
use std::sync::LazyLock;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// Size of a BLAKE3-256 output.
pub const HASH_SIZE: usize = 32;

/// A BLAKE3-256 output.
#[derive(
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct Blake3Hash(pub [u8; HASH_SIZE]);

impl Blake3Hash {
    /// The all-zero hash: Merkle padding and "no previous header".
    pub const ZERO: Self = Self([0; HASH_SIZE]);

    /// The hash's bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_SIZE] {
        &self.0
    }
}

impl fmt::Debug for Blake3Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", hex::encode(self.0))
    }
}

impl fmt::Display for Blake3Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", hex::encode(self.0))
    }
}

impl From<blake3::Hash> for Blake3Hash {
    fn from(hash: blake3::Hash) -> Self {
        Self(*hash.as_bytes())
    }
}

impl From<[u8; HASH_SIZE]> for Blake3Hash {
    fn from(bytes: [u8; HASH_SIZE]) -> Self {
        Self(bytes)
    }
}

impl AsRef<[u8]> for Blake3Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Every purpose the protocol hashes for. Adding a variant is a protocol change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashContext {
    /// Interior Merkle node: `H(left ‖ right)`.
    MerkleNode,
    /// Merkle leaf of a hashed-leaf tree: `H(item)`.
    MerkleLeaf,
    /// Record root: `H(source-chunks root ‖ parity-chunks root)`.
    Record,
    /// Segment header hash (the header chain).
    SegmentHeader,
    /// Proof-of-space quality / mask: `H(proof bytes)`.
    PosQuality,
    /// Proof-of-time AES key: first 16 bytes of `H(seed)`.
    PotKey,
    /// Next proof-of-time seed: first 16 bytes of `H(output)` or `H(output ‖ entropy)`.
    PotSeed,
    /// Global slot challenge: `H(pot output ‖ slot number)`.
    SlotChallenge,
    /// A farmer's public key hash: `H(pk)`.
    PublicKey,
    /// A record's proof-of-space seed: `H(sector_id ‖ piece_offset)`.
    EvaluationSeed,
    /// Sector expiry: `H(sector_id ‖ root of the expiration check segment)`.
    SectorExpiry,
    /// What a transaction's signature signs: `H(transaction payload)`.
    Transaction,
    /// State tree leaf: `H(key ‖ value hash)`.
    StateLeaf,
    /// State tree interior node: `H(left ‖ right)`.
    StateNode,
    /// State value: `H(value bytes)`.
    StateValue,
    /// Block header hash: `H(unsealed header)`, what the seal signs.
    Header,
    /// Block body root: `H(transactions root ‖ segment headers root)`.
    Body,
    /// State keys of accounts: `H(account_key_ctx, address)`.
    AccountKey,
    /// A vote's hash: `H(vote)`, what the vote's signature signs.
    Vote,
    /// A piece's DSN key: `H(piece_key_ctx, piece index LE u64)`.
    PieceKey,
    /// A peer's DSN key: `H(dsn_peer_ctx, peer id bytes)`, XORed with piece keys for distance.
    DsnPeerKey,
    /// A key in a domain's state tree: `H(domain_key_ctx, kind byte ‖ data)` (each module its kinds).
    DomainStateKey,
    /// A domain transaction's hash: `H(domain_tx_ctx, encoded transaction)` (extrinsics roots, duplicates).
    DomainTransaction,
    /// A domain transaction signer's hash, for the bundle's transaction range: `H(signer_ctx, signer)`.
    DomainSigner,
    /// A bundle header's hash: what the operator signs.
    BundleHeader,
    /// A bundle's hash: `H(bundle_ctx, encoding)`.
    Bundle,
    /// A domain block header's hash.
    DomainBlock,
    /// An execution receipt's hash.
    Receipt,
    /// The seed of a domain block's transaction shuffle: `H(shuffle_ctx, PoT output)`.
    DomainShuffle,
    /// The consensus state root when domains exist: `H(state_ctx, accounts root ‖ H(value_ctx, registry))`.
    ConsensusState,
    /// A domain's chain identity, what its transactions sign for: `H(chain_ctx, genesis hash ‖ domain id)`.
    DomainChain,
}

impl HashContext {
    const ALL: [Self; 31] = [
        Self::MerkleNode,
        Self::MerkleLeaf,
        Self::Record,
        Self::SegmentHeader,
        Self::PosQuality,
        Self::PotKey,
        Self::PotSeed,
        Self::SlotChallenge,
        Self::PublicKey,
        Self::EvaluationSeed,
        Self::SectorExpiry,
        Self::Transaction,
        Self::StateLeaf,
        Self::StateNode,
        Self::StateValue,
        Self::Header,
        Self::Body,
        Self::AccountKey,
        Self::Vote,
        Self::PieceKey,
        Self::DsnPeerKey,
        Self::DomainStateKey,
        Self::DomainTransaction,
        Self::DomainSigner,
        Self::BundleHeader,
        Self::Bundle,
        Self::DomainBlock,
        Self::Receipt,
        Self::DomainShuffle,
        Self::ConsensusState,
        Self::DomainChain,
    ];

    /// The `derive_key` context string: globally unique, hard-coded, never reused for another purpose.
    pub const fn context_string(self) -> &'static str {
        match self {
            Self::MerkleNode => "acre 2026-11-25 merkle node v1",
            Self::MerkleLeaf => "acre 2026-11-25 merkle leaf v1",
            Self::Record => "acre 2026-11-25 record root v1",
            Self::SegmentHeader => "acre 2026-11-25 segment header v1",
            Self::PosQuality => "acre 2026-11-25 pos quality v1",
            Self::PotKey => "acre 2026-11-25 pot key v1",
            Self::PotSeed => "acre 2026-11-25 pot seed v1",
            Self::SlotChallenge => "acre 2026-11-25 slot challenge v1",
            Self::PublicKey => "acre 2026-11-25 public key v1",
            Self::EvaluationSeed => "acre 2026-11-25 evaluation seed v1",
            Self::SectorExpiry => "acre 2026-11-25 sector expiry v1",
            Self::Transaction => "acre 2026-11-25 transaction v1",
            Self::StateLeaf => "acre 2026-11-25 state leaf v1",
            Self::StateNode => "acre 2026-11-25 state node v1",
            Self::StateValue => "acre 2026-11-25 state value v1",
            Self::Header => "acre 2026-11-25 block header v1",
            Self::Body => "acre 2026-11-25 block body v1",
            Self::AccountKey => "acre 2026-11-25 account key v1",
            Self::Vote => "acre 2026-11-30 vote v1",
            Self::PieceKey => "acre 2026-11-30 piece key v1",
            Self::DsnPeerKey => "acre 2026-11-30 dsn peer key v1",
            Self::DomainStateKey => "acre 2026-12-01 domain state key v1",
            Self::DomainTransaction => "acre 2026-12-01 domain transaction v1",
            Self::DomainSigner => "acre 2026-12-01 domain signer v1",
            Self::BundleHeader => "acre 2026-12-01 bundle header v1",
            Self::Bundle => "acre 2026-12-01 bundle v1",
            Self::DomainBlock => "acre 2026-12-01 domain block v1",
            Self::Receipt => "acre 2026-12-01 execution receipt v1",
            Self::DomainShuffle => "acre 2026-12-01 domain shuffle v1",
            Self::ConsensusState => "acre 2026-12-01 consensus state v1",
            Self::DomainChain => "acre 2026-12-01 domain chain v1",
        }
    }

    fn key(self) -> &'static [u8; 32] {
        static KEYS: LazyLock<[[u8; 32]; HashContext::ALL.len()]> = LazyLock::new(|| {
            HashContext::ALL.map(|context| blake3::derive_key(context.context_string(), &[]))
        });
        &KEYS[self as usize]
    }
}

/// `H(context, data)`.
pub fn hash(context: HashContext, data: &[u8]) -> Blake3Hash {
    blake3::keyed_hash(context.key(), data).into()
}

/// `H(context, a ‖ b)` for two hashes: one BLAKE3 compression.
pub fn hash_pair(context: HashContext, a: &Blake3Hash, b: &Blake3Hash) -> Blake3Hash {
    let mut block = [0u8; 2 * HASH_SIZE];
    block[..HASH_SIZE].copy_from_slice(&a.0);
    block[HASH_SIZE..].copy_from_slice(&b.0);
    hash(context, &block)
}

/// The context's 32-byte key, for callers that hash many blocks in bulk with the same rule.
pub fn context_key(context: HashContext) -> &'static [u8; 32] {
    context.key()
}

/// `H_keyed(key, data)`: BLAKE3 keyed by protocol data (a sector id, a public key hash).
pub fn keyed_hash(key: &[u8; 32], data: &[u8]) -> Blake3Hash {
    blake3::keyed_hash(key, data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_context_in_discriminant_order() {
        for (index, context) in HashContext::ALL.iter().enumerate() {
            assert_eq!(*context as usize, index);
        }
    }

    #[test]
    fn contexts_are_distinct() {
        let outputs: Vec<_> = HashContext::ALL.iter().map(|&c| hash(c, b"same input")).collect();
        for (i, a) in outputs.iter().enumerate() {
            for b in &outputs[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn pair_is_hash_of_concatenation() {
        let a = Blake3Hash([1; 32]);
        let b = Blake3Hash([2; 32]);
        let mut both = [1u8; 64];
        both[32..].fill(2);
        assert_eq!(
            hash_pair(HashContext::MerkleNode, &a, &b),
            hash(HashContext::MerkleNode, &both)
        );
    }
}
