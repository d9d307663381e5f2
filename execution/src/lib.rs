//! `acre-execution`: state transitions of the consensus chain.
//!
//! The consensus chain's runtime is deliberately small: accounts keyed by ed25519 public keys, with
//! balances and nonces; signed, versioned transfers bound to one chain by its genesis hash and paying at
//! least a minimum fee; an existential deposit so accounts cannot be created for free; and a block reward
//! plus the block's fees credited to the solution's reward address, plus a vote reward per included vote.
//! Transactions arrive as bytes and are decoded with size limits and verified with context-prefixed
//! `verify_strict` signatures before they touch state ([`transaction`]); the transition itself
//! ([`runtime`]) is a pure function of a [`RuntimeConfig`] ([`config`]) over an [`state::AccountStore`]
//! ([`state`]; errors in [`error`]), so the node,
//! tests and fraud-proof tooling run exactly the same code. Domains start here with their operators'
//! staking pools ([`staking`]); their pluggable execution modules will join this crate.

pub mod config;
pub mod domains;
pub mod error;
pub mod runtime;
pub mod staking;
pub mod state;
pub mod transaction;

pub use config::RuntimeConfig;
pub use error::ExecutionError;
pub use runtime::{
    BlockOutcome, TransactionOutcome, apply_block, apply_transaction, check_transaction, precheck_transaction,
};
pub use state::{Account, AccountStore, InMemoryAccounts, InMemoryState, account_key, state_root};
pub use transaction::{Address, Call, DomainCall, SignedTransaction, Transaction, Transfer};
