//! `acre-consensus`: the pure core of the Acre protocol.
//!
//! Everything a node, a farmer or a research tool must agree on bit for bit lives here: the protocol
//! parameters ([`params`]), the newtypes for protocol quantities ([`quantities`]), the domain-separated
//! BLAKE3 hashing rules ([`hashing`]), the Merkle hashing and proof-verification rules ([`merkle`]), the
//! canonical encodings of records, pieces and segment headers ([`pieces`], [`segments`]), the bounded
//! decoding helpers every untrusted byte string goes through ([`codec`]), the proof of space that masks
//! plotted chunks ([`pos`]) and the proof of time that paces slots and derives their challenges ([`pot`]).
//!
//! The crate is deliberately pure: no clock, no disk, no network, no global state and no async runtime.
//! Functions take `(&params, &state, input)` and return `Result`; heavy builders (fast Merkle trees, erasure
//! coding, archiving) live in `acre-storage`, which depends on this crate and on nothing above it.

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
