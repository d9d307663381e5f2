//! `acre-storage`: Acre's archival storage layer.
//!
//! Confirmed blocks flow through the [`archiver::Archiver`] into segments: an item stream
//! ([`segment`]) cut into records, erasure coded 2× ([`erasure`]) into source and parity records, each
//! record extended 2× and committed to with BLAKE3 Merkle trees ([`record`], [`merkle`]), and the segment
//! committed to by the root over all record roots ([`commitment`]). The resulting pieces are what farmers
//! plot and the network serves; [`reconstruction`] turns any half of a segment's pieces back into the
//! segment, and consecutive segments back into blocks.
//!
//! Everything here is pure computation over bytes; CPU-heavy steps run on the caller's rayon pool (use a
//! one-thread pool for single-threaded figures). [`archive_dir`] lays segments out as files (`acre archive`,
//! and a farmer plotting from them); [`error`] is the crate's error type.
//!
//! With the `db` feature (on by default), [`db`] is the node database, typed tables on redb, and
//! [`chain_index`] the block tree over it with fork choice and atomic reorgs. Without it the crate has no
//! storage engine at all, for tools that only archive and reconstruct.

pub mod archive_dir;
pub mod archiver;
#[cfg(feature = "db")]
pub mod chain_index;
pub mod commitment;
#[cfg(feature = "db")]
pub mod db;
pub mod erasure;
pub mod error;
pub mod merkle;
pub mod reconstruction;
pub mod record;
pub mod segment;

pub use archiver::{ArchivedSegment, Archiver};
pub use error::Error;
pub use merkle::verify_piece;
pub use reconstruction::{
    BlockReconstructor, RecoveredSegment, rebuild_piece, rebuild_pieces, recover_segment,
};
