//! The crate's error type.

use acre_consensus::pieces::PieceVerificationError;
use acre_consensus::{BlockNumber, DecodeError, PiecePosition, SegmentIndex};
use thiserror::Error;

/// Errors of the archival storage layer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// Decoding a consensus structure failed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The erasure coder refused its input (a bug or a broken parameter set, never bad data).
    #[error("erasure coding failed: {0}")]
    ErasureCoding(String),
    /// Blocks must be archived in order, one per number.
    #[error("expected block {expected} next, got block {got}")]
    UnexpectedBlockNumber {
        /// What the rule requires.
        expected: BlockNumber,
        /// What was found.
        got: BlockNumber,
    },
    /// A block whose length does not fit the segment item encoding.
    #[error("block {number} is {len} bytes; at most {max} can be archived")]
    BlockTooLarge {
        /// The block number.
        number: BlockNumber,
        /// Its length in bytes.
        len: usize,
        /// The most allowed.
        max: usize,
    },
    /// Restarting from a partially archived block needs that block's bytes.
    #[error(
        "block {number} is partially archived ({archived_progress} bytes); its bytes are needed to resume"
    )]
    MissingPartialBlock {
        /// The block number.
        number: BlockNumber,
        /// Bytes of it archived so far.
        archived_progress: u32,
    },
    /// The encoded segment is not a valid item stream.
    #[error("segment {segment_index} is malformed at byte {offset}: {reason}")]
    MalformedSegment {
        /// The segment's index.
        segment_index: SegmentIndex,
        /// The byte offset.
        offset: usize,
        /// Why.
        reason: &'static str,
    },
    /// Fewer valid pieces than needed to reconstruct a segment.
    #[error(
        "segment {segment_index}: {valid} valid pieces, {required} needed ({missing} missing, {rejected} rejected)"
    )]
    NotEnoughPieces {
        /// The segment's index.
        segment_index: SegmentIndex,
        /// Valid pieces found.
        valid: usize,
        /// Pieces needed.
        required: usize,
        /// Pieces missing.
        missing: usize,
        /// Pieces that failed verification.
        rejected: usize,
    },
    /// A piece failed verification against its segment root.
    #[error("segment {segment_index} piece {position}: {reason}")]
    InvalidPiece {
        /// The segment's index.
        segment_index: SegmentIndex,
        /// The piece's position in its segment.
        position: PiecePosition,
        /// Why.
        reason: PieceVerificationError,
    },
    /// Segments handed to the reconstructor must follow each other.
    #[error("segment {got} does not follow segment {expected_after}")]
    SegmentOutOfOrder {
        /// The segment it should follow.
        expected_after: SegmentIndex,
        /// What was found.
        got: SegmentIndex,
    },
    /// A file operation failed.
    #[error("{context}: {reason}")]
    Io {
        /// What was being done.
        context: String,
        /// Why.
        reason: String,
    },
    /// An archive directory is missing parts or corrupted.
    #[error("{0}")]
    InvalidArchive(String),
    /// The database failed or holds data this version cannot read.
    #[error("database: {0}")]
    Database(String),
    /// The disk under the database failed (full, read-only, gone). Nothing half-written is visible, but
    /// the open database accepts no more writes: the process must reopen it once the disk is fixed.
    #[error("database I/O failed while {context}: {message}")]
    DatabaseIo {
        /// What the database was doing.
        context: &'static str,
        /// The kind of the operating system's error (`StorageFull` for a full disk).
        kind: std::io::ErrorKind,
        /// The operating system's error, as it words it.
        message: String,
    },
    /// A count of pieces or records that does not match the parameters.
    #[error("expected {expected} {what}, got {got}")]
    WrongCount {
        /// Which kind of thing it is.
        what: &'static str,
        /// What the rule requires.
        expected: usize,
        /// What was found.
        got: usize,
    },
}

impl From<reed_solomon_simd::Error> for Error {
    fn from(error: reed_solomon_simd::Error) -> Self {
        Self::ErasureCoding(error.to_string())
    }
}
