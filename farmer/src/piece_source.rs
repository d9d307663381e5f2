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

/// Pieces from an archive directory written by `acre archive`, rebuilding any missing or corrupted piece
/// from the rest of its segment.
#[derive(Debug, Clone)]
pub struct ArchiveDirSource {
    params: ProtocolParams,
    dir: std::path::PathBuf,
    headers: Vec<SegmentHeader>,
}

impl ArchiveDirSource {
    /// Opens the archive at `dir` (its headers file is read and checked now).
    pub fn open(params: ProtocolParams, dir: &std::path::Path) -> Result<Self, Error> {
        let headers = acre_storage::archive_dir::read_headers(dir)?;
        Ok(Self {
            params,
            dir: dir.to_owned(),
            headers,
        })
    }

    /// The archive's history size.
    pub fn history_size(&self) -> HistorySize {
        HistorySize::new(self.headers.len() as u64).expect("an archive has at least one segment")
    }

    /// The archive's segment headers.
    pub fn headers(&self) -> &[SegmentHeader] {
        &self.headers
    }
}

impl PieceSource for ArchiveDirSource {
    fn piece(&self, index: PieceIndex) -> Result<Piece, Error> {
        let segment_index = index.segment_index(&self.params);
        let position = index.position(&self.params);
        let header = usize::try_from(segment_index.0)
            .ok()
            .and_then(|i| self.headers.get(i))
            .ok_or(Error::UnknownSegment(segment_index))?;
        if let Some(Ok(piece)) =
            acre_storage::archive_dir::read_piece(&self.params, &self.dir, segment_index, position)?
            && acre_storage::verify_piece(&self.params, &piece, &header.segment_root, position).is_ok()
        {
            return Ok(piece);
        }
        tracing::warn!(target: "acre::plotting", piece = index.0, "piece missing or corrupted; rebuilding it from its segment");
        let found = acre_storage::archive_dir::read_pieces(&self.params, &self.dir, segment_index)?;
        Ok(acre_storage::rebuild_piece(
            &self.params,
            header,
            &found.pieces,
            position,
        )?)
    }

    fn segment_root(&self, index: SegmentIndex) -> Option<SegmentRoot> {
        usize::try_from(index.0)
            .ok()
            .and_then(|i| self.headers.get(i))
            .map(|header| header.segment_root)
    }
}
