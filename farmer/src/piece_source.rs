//! Where plotting gets its pieces from.
//!
//! A [`PieceSource`] hands out pieces by index together with the segment roots they verify against. The
//! in-memory source serves tests and benches; the node's RPC and the DSN are further sources. Plotting
//! verifies every piece it receives, so a source is never trusted.

use std::collections::BTreeMap;

use acre_consensus::{
    HistorySize, Piece, PieceIndex, ProtocolParams, SegmentHeader, SegmentIndex, SegmentRoot,
};
use acre_storage::ArchivedSegment;

use crate::error::Error;

/// A source of archived pieces.
pub trait PieceSource: Sync {
    /// The piece at `index`.
    fn piece(&self, index: PieceIndex) -> Result<Piece, Error>;
    /// The root of segment `index`, if known.
    fn segment_root(&self, index: SegmentIndex) -> Option<SegmentRoot>;
}

/// Archived segments held in memory.
#[derive(Debug, Clone)]
pub struct InMemoryPieceSource {
    params: ProtocolParams,
    segments: BTreeMap<SegmentIndex, (SegmentHeader, Vec<Piece>)>,
}

impl InMemoryPieceSource {
    /// A source over `segments`.
    pub fn new(params: ProtocolParams, segments: impl IntoIterator<Item = ArchivedSegment>) -> Self {
        let segments = segments
            .into_iter()
            .map(|s| (s.header.segment_index, (s.header, s.pieces)))
            .collect();
        Self { params, segments }
    }

    /// Number of segments held, as a history size (`None` when empty).
    pub fn history_size(&self) -> Option<HistorySize> {
        HistorySize::new(self.segments.len() as u64).ok()
    }

    /// The segment headers, in order.
    pub fn headers(&self) -> impl Iterator<Item = &SegmentHeader> {
        self.segments.values().map(|(header, _)| header)
    }
}

impl PieceSource for InMemoryPieceSource {
    fn piece(&self, index: PieceIndex) -> Result<Piece, Error> {
        let (_, pieces) = self
            .segments
            .get(&index.segment_index(&self.params))
            .ok_or(Error::PieceUnavailable(index))?;
        pieces
            .get(usize::from(index.position(&self.params).0))
            .cloned()
            .ok_or(Error::PieceUnavailable(index))
    }

    fn segment_root(&self, index: SegmentIndex) -> Option<SegmentRoot> {
        self.segments.get(&index).map(|(header, _)| header.segment_root)
    }
}
