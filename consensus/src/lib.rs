//! `acre-consensus`: the pure core of the Acre protocol.
//!
//! Everything a node, a farmer or a research tool must agree on bit for bit lives here, so that embedding
//! this one crate is enough to reproduce any verdict the network reaches. By layer:
//!
//! - **Foundations**: the protocol parameters ([`params`]), newtypes for protocol quantities
//!   ([`quantities`]), domain-separated BLAKE3 hashing ([`hashing`]), Merkle hashing and proof verification
//!   ([`merkle`]), bounded decoding of untrusted bytes ([`codec`]), context-prefixed ed25519 signatures
//!   ([`signing`]) and the crate's error type ([`error`]).
//! - **History**: records and pieces ([`pieces`]) and segment headers ([`segments`]), the units archiving
//!   produces and farmers store.
//! - **Farming rules**: proof of space ([`pos`]), sectors and their expiry ([`sectors`]), the audit that
//!   decides whether a chunk wins ([`audit`]), and solutions with their verification ([`solutions`]).
//! - **Time**: proof of time ([`pot`]) and its chain across blocks with entropy injections
//!   ([`pot_chain`]).
//! - **Blocks and chains**: headers and bodies ([`blocks`]), header validation against a parent
//!   ([`validation`]), eras and fork choice ([`chain_rules`]), a branch's own history ([`branch`]), votes
//!   ([`votes`]), equivocation proofs ([`equivocation`]), and the chain state machine that ties them
//!   together: a block's verdict and its child's context from the parent's context alone
//!   ([`chain_state`]).
//! - **State**: the sparse Merkle state tree and its witnesses ([`state_tree`]).
//!
//! The crate is deliberately pure: no clock, no disk, no network, no global state and no async runtime.
//! Functions take `(&params, &state, input)` and return `Result`; heavy builders (fast Merkle trees,
//! erasure coding, archiving) live in `acre-storage`, which depends on this crate and on nothing above it.
//! It is single-threaded unless the `parallel` feature is on. `examples/walkthrough.rs` runs archive →
//! plot → audit → prove → seal → validate in one synchronous program.

pub mod audit;
pub mod blocks;
pub mod branch;
pub mod chain_rules;
pub mod chain_state;
pub mod codec;
pub mod equivocation;
pub mod error;
pub mod hashing;
pub mod merkle;
pub mod params;
pub mod pieces;
pub mod pos;
pub mod pot;
pub mod pot_chain;
pub mod quantities;
pub mod sectors;
pub mod segments;
pub mod signing;
pub mod solutions;
pub mod state_tree;
pub mod validation;
pub mod votes;

pub use error::{DecodeError, Error};
pub use hashing::Blake3Hash;
pub use params::{ProtocolParams, Ratio};
pub use pieces::{Piece, Record, RecordRoot};
pub use quantities::*;
pub use segments::{LastArchivedBlock, SegmentHeader, SegmentRoot};
