//! Signed, versioned transfers bound to one chain.
//!
//! A transaction is `version ‖ genesis hash ‖ transfer ‖ signature`. The signature is a context-prefixed
//! ed25519 signature ([`acre_consensus::signing`], [`SigningContext::Transaction`]) over
//! `H(transaction_ctx, version ‖ genesis hash ‖ borsh(transfer))`, checked with `verify_strict`, so:
//! - a transaction signed for one chain (a dev chain, a testnet) never verifies on another: the genesis hash
//!   is part of what is signed, and because it also travels in the clear, a node refuses a foreign
//!   transaction with a precise error ([`ExecutionError::WrongChain`]) before spending a signature check;
//! - a transaction signature can never pass as a block seal or a vote, nor the other way round;
//! - a transaction has exactly one valid encoding and one valid signature per key.
//!
//! The version byte comes first so a decoder refuses a format it does not know before parsing the rest.

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use acre_consensus::codec;
use acre_consensus::hashing::{self, Blake3Hash, HashContext};
use acre_consensus::signing::{self, SignatureError, SigningContext};

use crate::error::ExecutionError;

/// An account address: the owner's ed25519 public key.
#[derive(
    Clone,
    Copy,
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
pub struct Address(pub [u8; 32]);

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl Address {
    /// The address of a signing key.
    pub fn of(key: &SigningKey) -> Self {
        Self(key.verifying_key().to_bytes())
    }
}

/// Moves `amount` from `from` to `to`, paying `fee` to the block's author.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Transfer {
    /// The sender (and signer).
    pub from: Address,
    /// The recipient.
    pub to: Address,
    /// Amount moved.
    pub amount: u128,
    /// Fee paid to the block author.
    pub fee: u128,
    /// The sender's next nonce.
    pub nonce: u64,
}

/// What a transaction signature covers (borrowed, so signing does not clone the transfer).
#[derive(BorshSerialize)]
struct SignedPayload<'a> {
    version: u8,
    genesis_hash: &'a Blake3Hash,
    transfer: &'a Transfer,
}

/// A transfer for one chain, with its signature.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedTransaction {
    /// The transaction format ([`SignedTransaction::VERSION`]).
    pub version: u8,
    /// The genesis hash of the chain this transaction is for.
    pub genesis_hash: Blake3Hash,
    /// The transfer.
    pub transfer: Transfer,
    /// Context-prefixed ed25519 signature over [`SignedTransaction::signing_hash`].
    pub signature: [u8; 64],
}

impl SignedTransaction {
    /// The only transaction format this runtime accepts.
    pub const VERSION: u8 = 1;

    /// Size of the canonical encoding (every transaction has the same size).
    pub const ENCODED_SIZE: usize = 1 + 32 + (32 + 32 + 16 + 16 + 8) + 64;

    /// Signs `transfer` for the chain with `genesis_hash` with `key` (which must own `transfer.from`).
    pub fn sign(transfer: Transfer, genesis_hash: Blake3Hash, key: &SigningKey) -> Self {
        let digest = Self::digest(Self::VERSION, &genesis_hash, &transfer);
        let signature = signing::sign(key, SigningContext::Transaction, &digest);
        Self {
            version: Self::VERSION,
            genesis_hash,
            transfer,
            signature,
        }
    }

    fn digest(version: u8, genesis_hash: &Blake3Hash, transfer: &Transfer) -> Blake3Hash {
        let payload = SignedPayload {
            version,
            genesis_hash,
            transfer,
        };
        hashing::hash(HashContext::Transaction, &codec::encode(&payload))
    }

    /// The digest the signature signs: `H(transaction_ctx, version ‖ genesis hash ‖ borsh(transfer))`.
    pub fn signing_hash(&self) -> Blake3Hash {
        Self::digest(self.version, &self.genesis_hash, &self.transfer)
    }

    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes exactly one transaction from untrusted bytes: size bound, then the version byte, then the
    /// rest (borsh rejects truncation and trailing bytes).
    pub fn decode(bytes: &[u8]) -> Result<Self, ExecutionError> {
        if bytes.len() > Self::ENCODED_SIZE {
            return Err(acre_consensus::DecodeError::TooLong {
                what: "transaction",
                len: bytes.len(),
                max: Self::ENCODED_SIZE,
            }
            .into());
        }
        if let Some(&version) = bytes.first()
            && version != Self::VERSION
        {
            return Err(ExecutionError::UnsupportedVersion { version });
        }
        Ok(codec::decode_bounded("transaction", bytes, Self::ENCODED_SIZE)?)
    }

    /// The transaction's hash (its identity in the pool and in blocks).
    pub fn hash(&self) -> Blake3Hash {
        hashing::hash(HashContext::Transaction, &self.encode())
    }

    /// Checks that the transaction is for the chain with `genesis_hash` (cheap, so first), then the
    /// signature strictly against the sender.
    pub fn verify(&self, genesis_hash: &Blake3Hash) -> Result<(), ExecutionError> {
        if self.genesis_hash != *genesis_hash {
            return Err(ExecutionError::WrongChain {
                expected: *genesis_hash,
                got: self.genesis_hash,
            });
        }
        let sender = self.transfer.from;
        signing::verify(
            &sender.0,
            SigningContext::Transaction,
            &self.signing_hash(),
            &self.signature,
        )
        .map_err(|error| match error {
            SignatureError::InvalidPublicKey => ExecutionError::InvalidSender(sender),
            SignatureError::BadSignature => ExecutionError::BadSignature(sender),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENESIS: Blake3Hash = Blake3Hash([5; 32]);

    fn transfer(key: &SigningKey) -> Transfer {
        Transfer {
            from: Address::of(key),
            to: Address([2; 32]),
            amount: 10,
            fee: 1,
            nonce: 0,
        }
    }

    #[test]
    fn signatures_bind_every_field() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let signed = SignedTransaction::sign(transfer(&key), GENESIS, &key);
        assert_eq!(signed.verify(&GENESIS), Ok(()));
        let mut changed = signed.clone();
        changed.transfer.amount += 1;
        assert_eq!(
            changed.verify(&GENESIS),
            Err(ExecutionError::BadSignature(signed.transfer.from))
        );
        let mut changed = signed.clone();
        changed.version = 2;
        assert_eq!(
            changed.verify(&GENESIS),
            Err(ExecutionError::BadSignature(signed.transfer.from))
        );
        let other = SigningKey::from_bytes(&[8; 32]);
        let forged = SignedTransaction::sign(transfer(&key), GENESIS, &other);
        assert_eq!(
            forged.verify(&GENESIS),
            Err(ExecutionError::BadSignature(signed.transfer.from))
        );
    }

    #[test]
    fn a_transaction_signed_for_another_chain_is_refused() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let other_chain = Blake3Hash([6; 32]);
        let foreign = SignedTransaction::sign(transfer(&key), other_chain, &key);
        assert_eq!(
            foreign.verify(&GENESIS),
            Err(ExecutionError::WrongChain {
                expected: GENESIS,
                got: other_chain
            })
        );
        // Relabelling it with this chain's genesis hash breaks the signature, which covers the hash.
        let mut relabelled = foreign;
        relabelled.genesis_hash = GENESIS;
        assert_eq!(
            relabelled.verify(&GENESIS),
            Err(ExecutionError::BadSignature(Address::of(&key)))
        );
    }

    #[test]
    fn transaction_signatures_are_context_prefixed() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let signed = SignedTransaction::sign(transfer(&key), GENESIS, &key);
        let digest = signed.signing_hash();
        // The same digest signed as a seal (or bare) does not pass as a transaction signature.
        for context in [SigningContext::Seal, SigningContext::Vote] {
            let mut other = signed.clone();
            other.signature = signing::sign(&key, context, &digest);
            assert_eq!(
                other.verify(&GENESIS),
                Err(ExecutionError::BadSignature(signed.transfer.from))
            );
        }
        let mut bare = signed.clone();
        bare.signature = ed25519_dalek::Signer::sign(&key, &digest.0).to_bytes();
        assert!(bare.verify(&GENESIS).is_err());
    }

    #[test]
    fn unknown_versions_are_refused_at_decode() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut bytes = SignedTransaction::sign(transfer(&key), GENESIS, &key).encode();
        assert_eq!(bytes[0], SignedTransaction::VERSION);
        bytes[0] = 2;
        assert_eq!(
            SignedTransaction::decode(&bytes),
            Err(ExecutionError::UnsupportedVersion { version: 2 })
        );
    }

    #[test]
    fn decoding_is_exact() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let signed = SignedTransaction::sign(transfer(&key), GENESIS, &key);
        let bytes = signed.encode();
        assert_eq!(bytes.len(), SignedTransaction::ENCODED_SIZE);
        assert_eq!(SignedTransaction::decode(&bytes), Ok(signed));
        for len in 0..bytes.len() {
            assert!(matches!(
                SignedTransaction::decode(&bytes[..len]),
                Err(ExecutionError::Malformed(_))
            ));
        }
        let mut long = bytes;
        long.push(0);
        assert!(matches!(
            SignedTransaction::decode(&long),
            Err(ExecutionError::Malformed(
                acre_consensus::DecodeError::TooLong { .. }
            ))
        ));
    }

    #[test]
    fn the_layout_is_version_genesis_transfer_signature() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let signed = SignedTransaction::sign(transfer(&key), GENESIS, &key);
        assert_eq!(
            signed.signing_hash(),
            hashing::hash(
                HashContext::Transaction,
                &[&[1u8][..], &[5; 32], &codec::encode(&signed.transfer)].concat()
            )
        );
        let bytes = signed.encode();
        assert_eq!(bytes[..33], [&[1u8][..], &[5; 32]].concat()[..]);
        assert_eq!(bytes[33..137], codec::encode(&signed.transfer)[..]);
        assert_eq!(bytes[137..], signed.signature[..]);
    }
}
