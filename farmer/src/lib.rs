//! `acre-farmer`: the farmer's library.
//!
//! Farming is four plain functions over reader traits, composed by the daemon:
//! [`plotting::plot_sector`] turns pieces from a [`piece_source::PieceSource`] into a sector bound to the
//! farmer's key; [`auditing::audit_sector`] reads one s-bucket of a sector per slot and returns winning
//! chunks; [`proving::prove`] turns a win into a consensus `Solution`; [`reading::read_piece`] gets any
//! piece back out of a sector (the farmer is the chain's distributed storage). [`plot_file::Farm`] keeps
//! sectors on disk, crash-safely; [`sector`] is a sector's layout and metadata, [`pos_table`] the
//! proof-of-space tables plotting and proving build, and [`error`] the crate's error type.
//!
//! With the `daemon` feature (on by default), the [`daemon`] keeps farms plotted and farming against a node
//! over its JSON-RPC API (`acre-farmer farm`, and in-process in `acre dev`). Without it the crate is plain
//! synchronous code with no async runtime, for research tools and simulators.

pub mod auditing;
#[cfg(feature = "daemon")]
pub mod daemon;
pub mod error;
pub mod piece_source;
pub mod plot_file;
pub mod plotting;
pub mod pos_table;
pub mod proving;
pub mod reading;
pub mod sector;

pub use error::Error;
