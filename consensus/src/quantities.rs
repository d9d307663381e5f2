//! Newtypes for every protocol quantity, so no bare integer crosses an API.
//!
//! All encode as fixed-size little-endian integers (borsh) and as plain numbers in JSON.

use std::fmt;
use std::num::NonZeroU64;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::params::ProtocolParams;

macro_rules! quantity {
    ($(#[$meta:meta])* $name:ident($inner:ty)) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash,
            BorshSerialize, BorshDeserialize, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl $name {
            /// The zero value.
            pub const ZERO: Self = Self(0);

            /// Wraps a raw value.
            pub const fn new(value: $inner) -> Self {
                Self(value)
            }

            /// The raw value.
            pub const fn get(self) -> $inner {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl From<$inner> for $name {
            fn from(value: $inner) -> Self {
                Self(value)
            }
        }

        impl From<$name> for $inner {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}

quantity!(
    /// Height of a block; genesis is 0.
    BlockNumber(u64)
);
quantity!(
    /// A proof-of-time slot.
    SlotNumber(u64)
);
quantity!(
    /// Index of an archived segment; the genesis segment is 0.
    SegmentIndex(u64)
);
quantity!(
    /// Global index of a piece: `segment index × pieces per segment + position`.
    PieceIndex(u64)
);
quantity!(
    /// Position of a piece within its segment (source pieces first, then parity).
    PiecePosition(u16)
);
quantity!(
    /// Index of a sector within a farm.
    SectorIndex(u16)
);
quantity!(
    /// Offset of a piece within a sector.
    PieceOffset(u16)
);
quantity!(
    /// An s-bucket: the index of a chunk in an erasure-extended record.
    SBucket(u16)
);
quantity!(
    /// The distance below which an audited chunk wins a slot.
    SolutionRange(u64)
);

impl SegmentIndex {
    /// The next segment's index.
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }

    /// Index of the piece at `position` of this segment.
    pub fn piece_index(self, params: &ProtocolParams, position: PiecePosition) -> PieceIndex {
        PieceIndex(self.0 * u64::from(params.pieces_per_segment()) + u64::from(position.0))
    }
}

impl PieceIndex {
    /// The segment this piece belongs to.
    pub fn segment_index(self, params: &ProtocolParams) -> SegmentIndex {
        SegmentIndex(self.0 / u64::from(params.pieces_per_segment()))
    }

    /// The piece's position within its segment.
    pub fn position(self, params: &ProtocolParams) -> PiecePosition {
        let position = self.0 % u64::from(params.pieces_per_segment());
        PiecePosition(u16::try_from(position).expect("pieces per segment fits in u16 (checked by params)"))
    }
}

impl PiecePosition {
    /// Whether this position holds a source piece (as opposed to a parity piece).
    pub fn is_source(self, params: &ProtocolParams) -> bool {
        u32::from(self.0) < params.source_records_per_segment
    }
}

/// Size of the archived history, in segments. Never zero: the genesis segment always exists.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(transparent)]
pub struct HistorySize(pub NonZeroU64);

impl HistorySize {
    /// History consisting of the genesis segment only.
    pub const ONE: Self = Self(NonZeroU64::MIN);

    /// History size from a segment count; errors on zero.
    pub fn new(segments: u64) -> Result<Self, Error> {
        NonZeroU64::new(segments).map(Self).ok_or(Error::OutOfRange {
            what: "history size",
            value: 0,
            bound: 1,
        })
    }

    /// Number of segments.
    pub const fn get(self) -> u64 {
        self.0.get()
    }

    /// History size once segment `index` exists.
    pub fn from_segment_index(index: SegmentIndex) -> Self {
        Self(NonZeroU64::MIN.saturating_add(index.0))
    }

    /// The newest segment in this history.
    pub fn last_segment_index(self) -> SegmentIndex {
        SegmentIndex(self.0.get() - 1)
    }

    /// Number of pieces in this history.
    pub fn in_pieces(self, params: &ProtocolParams) -> u64 {
        self.0
            .get()
            .saturating_mul(u64::from(params.pieces_per_segment()))
    }
}

impl fmt::Display for HistorySize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_index_round_trips_through_segment_and_position() {
        let params = ProtocolParams::dev();
        let index = SegmentIndex(5).piece_index(&params, PiecePosition(17));
        assert_eq!(index, PieceIndex(5 * 32 + 17));
        assert_eq!(index.segment_index(&params), SegmentIndex(5));
        assert_eq!(index.position(&params), PiecePosition(17));
        assert!(PiecePosition(15).is_source(&params));
        assert!(!PiecePosition(16).is_source(&params));
    }

    #[test]
    fn history_size_is_never_zero() {
        assert!(HistorySize::new(0).is_err());
        assert_eq!(HistorySize::from_segment_index(SegmentIndex(0)), HistorySize::ONE);
        assert_eq!(
            HistorySize::new(3).map(HistorySize::last_segment_index),
            Ok(SegmentIndex(2))
        );
        assert!(borsh::from_slice::<HistorySize>(&0u64.to_le_bytes()).is_err());
    }
}
