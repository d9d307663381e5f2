//! The crate's error types.

use thiserror::Error;

/// Why a byte string could not be decoded into a consensus structure.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input is larger than any valid encoding of the type.
    #[error("{what}: {len} bytes exceeds the maximum of {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// The input has the wrong fixed size.
    #[error("{what}: expected exactly {expected} bytes, got {len}")]
    WrongSize {
        what: &'static str,
        expected: usize,
        len: usize,
    },
    /// Borsh rejected the input (truncated, trailing bytes, invalid tag or order).
    #[error("{what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    /// The structure decoded but carries an unknown version.
    #[error("{what}: unsupported version {version}")]
    UnsupportedVersion { what: &'static str, version: u8 },
}

/// Errors of the consensus core.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// Decoding untrusted bytes failed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A parameter set violates one of its invariants.
    #[error("invalid protocol parameters: {0}")]
    InvalidParams(#[from] crate::params::ParamsError),
    /// An index or count is outside the range the parameters allow.
    #[error("{what} {value} is out of range (must be below {bound})")]
    OutOfRange {
        what: &'static str,
        value: u64,
        bound: u64,
    },
}
