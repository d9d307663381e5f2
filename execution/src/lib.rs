//! `acre-execution`: state transitions of the consensus chain.
//!
//! The consensus chain's runtime is deliberately small: accounts keyed by ed25519 public keys, with
//! balances and nonces; signed transfers paying a fee; and a block reward plus the block's fees credited to
//! the solution's reward address. Transactions arrive as bytes and are decoded with size limits and
//! verified with `verify_strict` before they touch state ([`transaction`]); the transition itself
//! ([`runtime`]) is a pure function over an [`state::AccountStore`], so the node, tests and fraud-proof
//! tooling run exactly the same code. Domains' pluggable execution modules will join this crate.

pub mod error;
pub mod runtime;
pub mod state;
pub mod transaction;

pub use error::ExecutionError;
pub use runtime::{BlockOutcome, apply_block, apply_transaction};
pub use state::{Account, AccountStore, InMemoryAccounts};
pub use transaction::{Address, SignedTransaction, Transfer};
