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
    UnexpectedBlockNumber { expected: BlockNumber, got: BlockNumber },
    /// A block whose length does not fit the segment item encoding.
    #[error("block {number} is {len} bytes; at most {max} can be archived")]
    BlockTooLarge {
        number: BlockNumber,
        len: usize,
        max: usize,
    },
    /// Restarting from a partially archived block needs that block's bytes.
    #[error(
        "block {number} is partially archived ({archived_progress} bytes); its bytes are needed to resume"
    )]
    MissingPartialBlock {
        number: BlockNumber,
        archived_progress: u32,
    },
    /// The encoded segment is not a valid item stream.
    #[error("segment {segment_index} is malformed at byte {offset}: {reason}")]
    MalformedSegment {
        segment_index: SegmentIndex,
        offset: usize,
        reason: &'static str,
    },
    /// Fewer valid pieces than needed to reconstruct a segment.
    #[error(
        "segment {segment_index}: {valid} valid pieces, {required} needed ({missing} missing, {rejected} rejected)"
    )]
    NotEnoughPieces {
        segment_index: SegmentIndex,
        valid: usize,
        required: usize,
        missing: usize,
        rejected: usize,
    },
    /// A piece failed verification against its segment root.
    #[error("segment {segment_index} piece {position}: {reason}")]
    InvalidPiece {
        segment_index: SegmentIndex,
        position: PiecePosition,
        reason: PieceVerificationError,
    },
    /// Segments handed to the reconstructor must follow each other.
    #[error("segment {got} does not follow segment {expected_after}")]
    SegmentOutOfOrder {
        expected_after: SegmentIndex,
        got: SegmentIndex,
    },
    /// A file operation failed.
    #[error("{context}: {reason}")]
    Io { context: String, reason: String },
    /// An archive directory is missing parts or corrupted.
    #[error("{0}")]
    InvalidArchive(String),
    /// The database failed or holds data this version cannot read.
    #[error("database: {0}")]
    Database(String),
    /// A count of pieces or records that does not match the parameters.
    #[error("expected {expected} {what}, got {got}")]
    WrongCount {
        what: &'static str,
        expected: usize,
        got: usize,
    },
}

impl From<reed_solomon_simd::Error> for Error {
    fn from(error: reed_solomon_simd::Error) -> Self {
        Self::ErasureCoding(error.to_string())
    }
}
