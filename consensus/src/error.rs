//! The crate's error types.

use thiserror::Error;

/// Why a byte string could not be decoded into a consensus structure.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input is larger than any valid encoding of the type.
    #[error("{what}: {len} bytes exceeds the maximum of {max}")]
    TooLong {
        /// Which kind of thing it is.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The most allowed.
        max: usize,
    },
    /// The input has the wrong fixed size.
    #[error("{what}: expected exactly {expected} bytes, got {len}")]
    WrongSize {
        /// Which kind of thing it is.
        what: &'static str,
        /// What the rule requires.
        expected: usize,
        /// Its length in bytes.
        len: usize,
    },
    /// Borsh rejected the input (truncated, trailing bytes, invalid tag or order).
    #[error("{what}: {reason}")]
    Malformed {
        /// Which kind of thing it is.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The structure decoded but carries an unknown version.
    #[error("{what}: unsupported version {version}")]
    UnsupportedVersion {
        /// Which kind of thing it is.
        what: &'static str,
        /// The version found.
        version: u8,
    },
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
        /// Which kind of thing it is.
        what: &'static str,
        /// The value given.
        value: u64,
        /// The bound it breaks.
        bound: u64,
    },
}
