//! The crate's error type.

use acre_consensus::DecodeError;
use acre_consensus::hashing::Blake3Hash;
use thiserror::Error;

use crate::transaction::Address;

/// Why a transaction cannot be applied. A block containing one is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExecutionError {
    /// The transaction's bytes are malformed.
    #[error("malformed transaction: {0}")]
    Malformed(#[from] DecodeError),
    /// The transaction's format version is not one this runtime knows.
    #[error("unsupported transaction version {version}")]
    UnsupportedVersion {
        /// The version found.
        version: u8,
    },
    /// The transaction was signed for another chain.
    #[error("transaction is for the chain with genesis {got}, this chain's genesis is {expected}")]
    WrongChain {
        /// What the rule requires.
        expected: Blake3Hash,
        /// What was found.
        got: Blake3Hash,
    },
    /// The fee is below `min_fee + byte_fee × size`.
    #[error("fee {fee} is below the minimum of {minimum}")]
    FeeTooLow {
        /// The fee offered.
        fee: u128,
        /// The least allowed.
        minimum: u128,
    },
    /// The sender is not a valid ed25519 public key.
    #[error("sender {0} is not a valid ed25519 public key")]
    InvalidSender(Address),
    /// The signature does not verify (strictly) against the sender.
    #[error("bad signature from {0}")]
    BadSignature(Address),
    /// The nonce is not the sender's next nonce (a replay or a double spend).
    #[error("sender {sender}: nonce {got}, expected {expected}")]
    BadNonce {
        /// The sender's address.
        sender: Address,
        /// What the rule requires.
        expected: u64,
        /// What was found.
        got: u64,
    },
    /// The sender has used every nonce.
    #[error("sender {0} has no nonce left")]
    NonceExhausted(Address),
    /// The sender cannot pay the amount plus the fee.
    #[error("sender {sender} has {balance}, needs {needed}")]
    InsufficientBalance {
        /// The sender's address.
        sender: Address,
        /// The account's balance.
        balance: u128,
        /// What the transaction needs.
        needed: u128,
    },
    /// The transfer would create an account with less than the existential deposit.
    #[error("transfer of {amount} would create account {recipient} below the existential deposit {deposit}")]
    BelowExistentialDeposit {
        /// The recipient's address.
        recipient: Address,
        /// The amount.
        amount: u128,
        /// The existential deposit.
        deposit: u128,
    },
    /// A balance would overflow.
    #[error("balance of {0} would overflow")]
    Overflow(Address),
    /// No operator has this id.
    #[error("no operator {0}")]
    UnknownOperator(u64),
    /// The operator is deregistered or slashed: it takes no deposits, withdrawals or rewards.
    #[error("operator {0} is not registered")]
    OperatorNotRegistered(u64),
    /// A nomination tax over 100 percent.
    #[error("a nomination tax of {0} % is over 100 %")]
    NominationTax(u8),
    /// A stake below the minimum (an operator's, a new nominator's, or what an owner would keep).
    #[error("a stake of {amount} is below the minimum of {minimum}")]
    StakeTooLow {
        /// The stake.
        amount: u128,
        /// The least allowed.
        minimum: u128,
    },
    /// The account holds nothing with this operator.
    #[error("not a nominator of operator {0}")]
    NotANominator(u64),
    /// A withdrawal of more shares than are held and not already being withdrawn (or of none).
    #[error("cannot withdraw {asked} shares of the {held} free")]
    InsufficientShares {
        /// Shares held and not being withdrawn.
        held: u128,
        /// Shares asked for.
        asked: u128,
    },
    /// A pool's amount would overflow.
    #[error("a staking amount would overflow")]
    StakeOverflow,
}
