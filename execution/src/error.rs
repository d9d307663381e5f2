//! The crate's error type.

use acre_consensus::DecodeError;
use thiserror::Error;

use crate::transaction::Address;

/// Why a transaction cannot be applied. A block containing one is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExecutionError {
    /// The transaction's bytes are malformed.
    #[error("malformed transaction: {0}")]
    Malformed(#[from] DecodeError),
    /// The sender is not a valid ed25519 public key.
    #[error("sender {0} is not a valid ed25519 public key")]
    InvalidSender(Address),
    /// The signature does not verify (strictly) against the sender.
    #[error("bad signature from {0}")]
    BadSignature(Address),
    /// The nonce is not the sender's next nonce (a replay or a double spend).
    #[error("sender {sender}: nonce {got}, expected {expected}")]
    BadNonce {
        sender: Address,
        expected: u64,
        got: u64,
    },
    /// The sender cannot pay the amount plus the fee.
    #[error("sender {sender} has {balance}, needs {needed}")]
    InsufficientBalance {
        sender: Address,
        balance: u128,
        needed: u128,
    },
    /// A balance would overflow.
    #[error("balance of {0} would overflow")]
    Overflow(Address),
}
