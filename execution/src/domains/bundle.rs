//! Bundles (DOMAINS.md 5): an elected operator's batch of domain transactions, carried by a consensus
//! block.
//!
//! A bundle is a header, the operator's sr25519 signature over the header's hash, and a body of opaque
//! transactions that consensus never decodes. The header commits to the body (its size and the Merkle root
//! of the transactions' hashes), proves the election (slot, that slot's PoT output, the VRF) and carries
//! the operator's execution receipt for an earlier domain block. What consensus checks, and in which
//! order, is [`crate::domains::registry::Domains::check_bundle`]; this module holds the format.

use borsh::{BorshDeserialize, BorshSerialize};
use schnorrkel::{Keypair, PublicKey, Signature, signing_context};

use acre_consensus::codec;
use acre_consensus::hashing::{self, Blake3Hash, HashContext};
use acre_consensus::pot::PotOutput;
use acre_consensus::signing::SigningContext;
use acre_consensus::{SlotNumber, merkle};

use crate::domains::election::VrfProof;
use crate::domains::receipt::ExecutionReceipt;
use crate::domains::{DomainId, OperatorId};
use crate::error::ExecutionError;

/// Largest encoded bundle any domain accepts, whatever its configured limit (a decoding bound).
pub const MAX_BUNDLE_ENCODED_SIZE: usize = 4 * 1024 * 1024;

/// Most transactions one bundle holds (a decoding bound).
pub const MAX_BUNDLE_TRANSACTIONS: usize = 16_384;

/// A bundle's header.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BundleHeader {
    /// The bundle format ([`Bundle::VERSION`]).
    pub version: u8,
    /// The domain.
    pub domain_id: DomainId,
    /// The submitting operator.
    pub operator_id: OperatorId,
    /// The slot it was elected in.
    pub slot: SlotNumber,
    /// That slot's PoT output (whose challenge the VRF signs).
    pub pot_output: PotOutput,
    /// The election proof.
    pub vrf: VrfProof,
    /// The operator's receipt of an earlier domain block.
    pub receipt: ExecutionReceipt,
    /// Merkle root of the body's transaction hashes ([`extrinsics_root`]).
    pub extrinsics_root: Blake3Hash,
    /// The body's size: the sum of its transactions' lengths.
    pub size: u32,
    /// The body's declared weight.
    pub weight: u64,
}

impl BundleHeader {
    /// `H(bundle_header_ctx, encoding)`: what the operator signs.
    pub fn hash(&self) -> Blake3Hash {
        hashing::hash(HashContext::BundleHeader, &codec::encode(self))
    }
}

/// A signed bundle with its body.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Bundle {
    /// The header.
    pub header: BundleHeader,
    /// The operator's sr25519 signature over the header hash, in the bundle signing context.
    pub signature: [u8; 64],
    /// The transactions, opaque to consensus.
    pub body: Vec<Vec<u8>>,
}

/// The hash of a bundle from its canonical encoding (what a block body carries): [`Bundle::hash`]
/// without decoding.
pub fn encoded_hash(bytes: &[u8]) -> Blake3Hash {
    hashing::hash(HashContext::Bundle, bytes)
}

/// The hash of one domain transaction: `H(domain_tx_ctx, bytes)`.
pub fn transaction_hash(bytes: &[u8]) -> Blake3Hash {
    hashing::hash(HashContext::DomainTransaction, bytes)
}

/// The Merkle root of `transactions`' hashes (hashed leaves).
pub fn extrinsics_root<T: AsRef<[u8]>>(transactions: &[T]) -> Blake3Hash {
    let leaves: Vec<_> = transactions
        .iter()
        .map(|transaction| merkle::leaf(&transaction_hash(transaction.as_ref()).0))
        .collect();
    Blake3Hash(merkle::root(&leaves))
}

/// The body's size as a header declares it; `None` past `u32`.
pub fn body_size(body: &[Vec<u8>]) -> Option<u32> {
    body.iter()
        .try_fold(0u64, |total, transaction| {
            total.checked_add(u64::try_from(transaction.len()).ok()?)
        })
        .and_then(|total| u32::try_from(total).ok())
}

fn context() -> schnorrkel::context::SigningContext {
    signing_context(SigningContext::Bundle.prefix())
}

impl Bundle {
    /// The only bundle format consensus accepts.
    pub const VERSION: u8 = 1;

    /// Signs `header` with `keypair` and attaches `body`.
    pub fn sign(header: BundleHeader, body: Vec<Vec<u8>>, keypair: &Keypair) -> Self {
        let signature = keypair.sign(context().bytes(&header.hash().0)).to_bytes();
        Self {
            header,
            signature,
            body,
        }
    }

    /// `H(bundle_ctx, encoding)`.
    pub fn hash(&self) -> Blake3Hash {
        encoded_hash(&codec::encode(self))
    }

    /// The length of the canonical encoding, without encoding (what the storage fee is charged on).
    pub fn encoded_len(&self) -> usize {
        borsh::object_length(self).unwrap_or(usize::MAX)
    }

    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a bundle from untrusted bytes: the overall bound first, then the version byte, then the
    /// rest (borsh refuses truncation and trailing bytes).
    pub fn decode(bytes: &[u8]) -> Result<Self, ExecutionError> {
        if bytes.len() > MAX_BUNDLE_ENCODED_SIZE {
            return Err(acre_consensus::DecodeError::TooLong {
                what: "bundle",
                len: bytes.len(),
                max: MAX_BUNDLE_ENCODED_SIZE,
            }
            .into());
        }
        if let Some(&version) = bytes.first()
            && version != Self::VERSION
        {
            return Err(ExecutionError::UnsupportedBundleVersion { version });
        }
        let bundle: Self = codec::decode_bounded("bundle", bytes, MAX_BUNDLE_ENCODED_SIZE)?;
        if bundle.body.len() > MAX_BUNDLE_TRANSACTIONS {
            return Err(ExecutionError::BundleTooManyTransactions {
                count: bundle.body.len(),
                max: MAX_BUNDLE_TRANSACTIONS,
            });
        }
        Ok(bundle)
    }

    /// Checks the signature against the operator's sr25519 `public_key`.
    pub fn verify_signature(&self, public_key: &[u8; 32]) -> Result<(), ExecutionError> {
        let public = PublicKey::from_bytes(public_key).map_err(|_| ExecutionError::InvalidOperatorKey)?;
        let signature =
            Signature::from_bytes(&self.signature).map_err(|_| ExecutionError::BadBundleSignature)?;
        public
            .verify(context().bytes(&self.header.hash().0), &signature)
            .map_err(|_| ExecutionError::BadBundleSignature)
    }
}
