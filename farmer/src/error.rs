//! The crate's error type.

use std::path::PathBuf;

use acre_consensus::pieces::PieceVerificationError;
use acre_consensus::pos::PosError;
use acre_consensus::{DecodeError, PieceIndex, PieceOffset, SBucket, SectorIndex, SegmentIndex};
use thiserror::Error;

/// Errors of the farmer library.
#[derive(Debug, Error)]
pub enum Error {
    /// Disk I/O failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Decoding stored data failed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The archival storage layer failed (erasure coding).
    #[error(transparent)]
    Storage(#[from] acre_storage::Error),
    /// Proof of space failed for parameters this build does not support.
    #[error(transparent)]
    ProofOfSpace(#[from] PosError),
    /// The peer-to-peer network failed (to start, or a piece the DSN could not provide).
    #[cfg(feature = "daemon")]
    #[error("network: {0}")]
    Network(#[from] acre_network::Error),
    /// The piece source does not have a piece the sector needs.
    #[error("piece {0} is not available")]
    PieceUnavailable(PieceIndex),
    /// The segment root of a piece is unknown.
    #[error("segment {0} is unknown")]
    UnknownSegment(SegmentIndex),
    /// A piece from the source failed verification.
    #[error("piece {index} is invalid: {reason}")]
    InvalidPiece {
        /// Which one (counting from zero).
        index: PieceIndex,
        /// Why.
        reason: PieceVerificationError,
    },
    /// A sector's bytes do not match their checksum.
    #[error("{path}: sector {sector_index} is corrupted (checksum mismatch in bytes {offset}..{end})")]
    CorruptedSector {
        /// The file or directory.
        path: PathBuf,
        /// The sector's index.
        sector_index: SectorIndex,
        /// The byte offset.
        offset: u64,
        /// The end (exclusive).
        end: u64,
    },
    /// Another process (a running farmer) has the farm open for writing.
    #[error("{path} is in use by another process (a running acre-farmer?); stop it first")]
    FarmInUse {
        /// The plot file.
        path: PathBuf,
    },
    /// A record read back from a sector does not match its record root.
    #[error("sector {sector_index} record {offset}: decoded record does not match its root")]
    CorruptedRecord {
        /// The sector's index.
        sector_index: SectorIndex,
        /// The byte offset.
        offset: PieceOffset,
    },
    /// The winning chunk has no proof of space (it was stored unmasked).
    #[error("s-bucket {0} has no proof of space for this record")]
    NoProofForSBucket(SBucket),
    /// A sector index or offset beyond what the sector or farm holds.
    #[error("{what} {value} is out of range (at most {max})")]
    OutOfRange {
        /// Which kind of thing it is.
        what: &'static str,
        /// The value given.
        value: u64,
        /// The most allowed.
        max: u64,
    },
    /// The plot file is not a farm of this kind.
    #[error("{path}: {reason}")]
    InvalidFarm {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A farm file whose creation was interrupted before its header was durable (no sector can have been
    /// written): safe to delete and create again.
    #[error("{path}: the farm's creation was interrupted (no header)")]
    UnfinishedFarm {
        /// The file or directory.
        path: PathBuf,
    },
    /// A farm belongs to another chain or farmer than the daemon serves.
    #[error("{path}: the farm was plotted for another {what}; use a fresh directory for this chain or key")]
    FarmMismatch {
        /// The file or directory.
        path: PathBuf,
        /// Which kind of thing it is.
        what: &'static str,
    },
    /// A farm is too small for one sector.
    #[error("{path}: size {size} is smaller than one sector ({sector_size} bytes)")]
    FarmTooSmall {
        /// The file or directory.
        path: PathBuf,
        /// The size asked for, in bytes.
        size: u64,
        /// Bytes of one sector.
        sector_size: u64,
    },
    /// The farmer identity file is unusable.
    #[error("{path}: {reason}")]
    InvalidIdentity {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The JSON-RPC connection to the node failed.
    #[cfg(feature = "daemon")]
    #[error("node RPC: {0}")]
    Rpc(#[from] jsonrpsee::core::ClientError),
    /// The node sent data that does not decode or verify.
    #[error("the node sent a bad {what}: {reason}")]
    BadNodeData {
        /// Which kind of thing it is.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The node claims far more archived history than the farmer knows (a lying or broken node): syncing
    /// it would mean fetching and holding an unbounded number of headers.
    #[error("the node claims {claimed} segments, more than {max_ahead} beyond the {known} known")]
    ImplausibleHistory {
        /// What the other side claimed.
        claimed: u64,
        /// How many the farmer knows.
        known: u64,
        /// How far ahead is plausible.
        max_ahead: u64,
    },
    /// The node announced a segment whose successor index does not exist.
    #[error("the node announced segment {0}, which has no successor index")]
    SegmentIndexOverflow(SegmentIndex),
    /// The node serves another chain than the one the farms were plotted for.
    #[error("the node switched to another {what} while the daemon was running")]
    ChainChanged {
        /// Which kind of thing it is.
        what: &'static str,
    },
    /// The daemon's configuration cannot work (no farms, no threads).
    #[error("invalid daemon configuration: {0}")]
    InvalidConfig(String),
    /// A background task of the daemon failed.
    #[error("daemon task failed: {0}")]
    Task(String),
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}
