//! Signed transfers.
//!
//! A transfer's signature covers `H(transaction_ctx, borsh(payload))` and is checked with ed25519
//! `verify_strict` (rejecting small-order keys and non-canonical signatures), so a transaction has exactly
//! one valid encoding and one valid signature per key.

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use acre_consensus::codec;
use acre_consensus::hashing::{self, Blake3Hash, HashContext};

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

impl Transfer {
    /// What the signature signs.
    pub fn signing_hash(&self) -> Blake3Hash {
        hashing::hash(HashContext::Transaction, &codec::encode(self))
    }
}

/// A transfer with its signature.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedTransaction {
    /// The transfer.
    pub transfer: Transfer,
    /// ed25519 signature over [`Transfer::signing_hash`].
    pub signature: [u8; 64],
}

impl SignedTransaction {
    /// Size of the canonical encoding.
    pub const ENCODED_SIZE: usize = 32 + 32 + 16 + 16 + 8 + 64;

    /// Signs `transfer` with `key` (which must own `transfer.from`).
    pub fn sign(transfer: Transfer, key: &SigningKey) -> Self {
        let signature = key.sign(&transfer.signing_hash().0).to_bytes();
        Self { transfer, signature }
    }

    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes exactly one transaction from untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, ExecutionError> {
        Ok(codec::decode_bounded("transaction", bytes, Self::ENCODED_SIZE)?)
    }

    /// The transaction's hash (its identity in the pool and in blocks).
    pub fn hash(&self) -> Blake3Hash {
        hashing::hash(HashContext::Transaction, &self.encode())
    }

    /// Checks the signature strictly against the sender.
    pub fn verify_signature(&self) -> Result<(), ExecutionError> {
        let sender = self.transfer.from;
        let key = VerifyingKey::from_bytes(&sender.0).map_err(|_| ExecutionError::InvalidSender(sender))?;
        key.verify_strict(
            &self.transfer.signing_hash().0,
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| ExecutionError::BadSignature(sender))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let signed = SignedTransaction::sign(transfer(&key), &key);
        assert_eq!(signed.verify_signature(), Ok(()));
        let mut changed = signed.clone();
        changed.transfer.amount += 1;
        assert_eq!(
            changed.verify_signature(),
            Err(ExecutionError::BadSignature(signed.transfer.from))
        );
        let other = SigningKey::from_bytes(&[8; 32]);
        let forged = SignedTransaction::sign(transfer(&key), &other);
        assert!(forged.verify_signature().is_err());
    }

    #[test]
    fn decoding_is_exact() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let bytes = SignedTransaction::sign(transfer(&key), &key).encode();
        assert_eq!(bytes.len(), SignedTransaction::ENCODED_SIZE);
        assert!(SignedTransaction::decode(&bytes).is_ok());
        assert!(SignedTransaction::decode(&bytes[1..]).is_err());
        let mut long = bytes;
        long.push(0);
        assert!(SignedTransaction::decode(&long).is_err());
    }
}
