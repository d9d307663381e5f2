//! The daemon's decisions, free of I/O: what history the farmer knows, which sectors to (re)plot, which
//! sectors may still win, and how long to wait before reconnecting.

use std::time::Duration;

use acre_consensus::hashing::Blake3Hash;
use acre_consensus::sectors::SectorId;
use acre_consensus::solutions::SegmentRoots;
use acre_consensus::{HistorySize, ProtocolParams, SectorIndex, SegmentHeader, SegmentIndex, SegmentRoot};

use crate::sector::SectorMetadata;

/// The archived history as the farmer knows it: every segment header, in order and chained.
#[derive(Debug, Clone, Default)]
pub struct ChainView {
    headers: Vec<SegmentHeader>,
}

/// What [`ChainView::apply`] did with a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The header extended the history.
    Extended,
    /// The header was already known (and matches).
    Known,
    /// Headers between the known history and this one are missing; fetch them first.
    Gap {
        /// The first missing item.
        from: SegmentIndex,
    },
}

/// A header that contradicts the known history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict(pub SegmentIndex);

impl ChainView {
    /// Number of known segments.
    pub fn segment_count(&self) -> u64 {
        self.headers.len() as u64
    }

    /// The current history size (`None` before the genesis segment is known).
    pub fn history_size(&self) -> Option<HistorySize> {
        HistorySize::new(self.segment_count()).ok()
    }

    /// The root of segment `index`, if known.
    pub fn root(&self, index: SegmentIndex) -> Option<SegmentRoot> {
        usize::try_from(index.0)
            .ok()
            .and_then(|i| self.headers.get(i))
            .map(|header| header.segment_root)
    }

    /// The header of segment `index`, if known.
    pub fn header(&self, index: SegmentIndex) -> Option<&SegmentHeader> {
        usize::try_from(index.0).ok().and_then(|i| self.headers.get(i))
    }

    /// Adds `header` if it is the next one and chains to the last; archived history never changes, so a
    /// known index with a different header is a conflict.
    pub fn apply(&mut self, header: SegmentHeader) -> Result<Applied, Conflict> {
        let next = SegmentIndex(self.segment_count());
        if header.segment_index.0 < next.0 {
            let known = usize::try_from(header.segment_index.0)
                .ok()
                .and_then(|i| self.headers.get(i));
            return if known == Some(&header) {
                Ok(Applied::Known)
            } else {
                Err(Conflict(header.segment_index))
            };
        }
        if header.segment_index != next {
            return Ok(Applied::Gap { from: next });
        }
        let chained = match self.headers.last() {
            Some(last) => header.follows(last),
            None => header.prev_segment_header_hash == Blake3Hash::ZERO,
        };
        if !chained {
            return Err(Conflict(header.segment_index));
        }
        self.headers.push(header);
        Ok(Applied::Extended)
    }
}

impl SegmentRoots for ChainView {
    fn segment_root(&self, index: SegmentIndex) -> Option<SegmentRoot> {
        self.root(index)
    }

    fn history_size(&self) -> HistorySize {
        ChainView::history_size(self).unwrap_or(HistorySize::ONE)
    }
}

/// Where a plotted sector stands at the current history size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectorState {
    /// It farms, and will for at least another segment.
    Fresh,
    /// It still farms but expires with the next segment: replot now (one segment early).
    ExpiresNext,
    /// It expired: its solutions are invalid.
    Expired,
}

/// The state of a sector plotted at `metadata.history_size` by the farmer with `public_key_hash`.
pub fn sector_state(
    params: &ProtocolParams,
    chain: &ChainView,
    public_key_hash: &Blake3Hash,
    metadata: &SectorMetadata,
) -> SectorState {
    let Some(current) = chain.history_size() else {
        return SectorState::Fresh;
    };
    let plotted_at = metadata.history_size;
    let check_segment = SectorId::expiration_check_segment(params, plotted_at);
    let Some(check_root) = chain.root(check_segment) else {
        return SectorState::Fresh;
    };
    let sector_id = SectorId::new(public_key_hash, metadata.sector_index, plotted_at);
    let expires_at = sector_id.expires_at(params, plotted_at, &check_root).get();
    if expires_at <= current.get() {
        SectorState::Expired
    } else if expires_at <= current.get().saturating_add(1) {
        SectorState::ExpiresNext
    } else {
        SectorState::Fresh
    }
}

/// Why a sector is to be plotted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlotReason {
    /// It has never been plotted (or its write was interrupted).
    Free,
    /// It expired or expires with the next segment.
    Replot,
}

/// The next sector of a farm to plot: expired (or soon expiring) sectors first, because they win nothing,
/// then free ones, each in index order. `sectors[i]` is sector `i`'s metadata if plotted.
pub fn next_sector(
    params: &ProtocolParams,
    chain: &ChainView,
    public_key_hash: &Blake3Hash,
    sectors: &[Option<&SectorMetadata>],
) -> Option<(SectorIndex, PlotReason)> {
    let index = |i: usize| SectorIndex(u16::try_from(i).unwrap_or(u16::MAX));
    let expiring = sectors.iter().position(|sector| {
        sector.is_some_and(|metadata| {
            sector_state(params, chain, public_key_hash, metadata) != SectorState::Fresh
                && chain
                    .history_size()
                    .is_some_and(|current| current > metadata.history_size)
        })
    });
    if let Some(i) = expiring {
        return Some((index(i), PlotReason::Replot));
    }
    sectors
        .iter()
        .position(Option::is_none)
        .map(|i| (index(i), PlotReason::Free))
}

/// Reconnection delays: 0.5 s doubling up to 30 s, reset once a session is established.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    /// The first delay.
    pub const INITIAL: Duration = Duration::from_millis(500);
    /// The largest delay.
    pub const MAX: Duration = Duration::from_secs(30);

    /// A backoff at its first delay.
    pub fn new() -> Self {
        Self { next: Self::INITIAL }
    }

    /// The delay to wait now; the next one is twice as long (at most [`Backoff::MAX`]).
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        delay
    }

    /// Back to the first delay.
    pub fn reset(&mut self) {
        self.next = Self::INITIAL;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use acre_consensus::{BlockNumber, LastArchivedBlock};

    use super::*;

    fn headers(count: u64) -> Vec<SegmentHeader> {
        let mut headers: Vec<SegmentHeader> = Vec::new();
        for index in 0..count {
            headers.push(SegmentHeader {
                version: SegmentHeader::VERSION,
                segment_index: SegmentIndex(index),
                segment_root: SegmentRoot(acre_consensus::hashing::Blake3Hash([index as u8 + 1; 32])),
                prev_segment_header_hash: headers.last().map_or(Blake3Hash::ZERO, SegmentHeader::hash),
                last_archived_block: LastArchivedBlock {
                    number: BlockNumber(index),
                    archived_progress: 0,
                },
            });
        }
        headers
    }

    fn metadata(index: u16, history: u64) -> SectorMetadata {
        SectorMetadata {
            sector_index: SectorIndex(index),
            pieces_in_sector: 16,
            history_size: HistorySize::new(history).expect("non-zero"),
            s_bucket_sizes: Vec::new().into(),
        }
    }

    #[test]
    fn chain_view_extends_in_order_and_rejects_conflicts() {
        let all = headers(3);
        let mut chain = ChainView::default();
        assert_eq!(
            chain.apply(all[1]),
            Ok(Applied::Gap {
                from: SegmentIndex(0)
            })
        );
        assert_eq!(chain.apply(all[0]), Ok(Applied::Extended));
        assert_eq!(chain.apply(all[0]), Ok(Applied::Known));
        assert_eq!(chain.apply(all[1]), Ok(Applied::Extended));
        let mut forged = all[2];
        forged.prev_segment_header_hash = Blake3Hash([9; 32]);
        assert_eq!(chain.apply(forged), Err(Conflict(SegmentIndex(2))));
        let mut rewritten = all[1];
        rewritten.segment_root = SegmentRoot(Blake3Hash([0; 32]));
        assert_eq!(chain.apply(rewritten), Err(Conflict(SegmentIndex(1))));
        assert_eq!(chain.history_size().map(HistorySize::get), Some(2));
    }

    #[test]
    fn free_sectors_are_plotted_and_expired_ones_replotted_first() {
        let params = ProtocolParams::dev();
        let key = Blake3Hash([3; 32]);
        let mut chain = ChainView::default();
        for header in headers(2) {
            chain.apply(header).expect("chains");
        }
        let plotted = metadata(0, 1);
        // Young sectors never expire; the free one is next.
        assert_eq!(sector_state(&params, &chain, &key, &plotted), SectorState::Fresh);
        assert_eq!(
            next_sector(&params, &chain, &key, &[Some(&plotted), None]),
            Some((SectorIndex(1), PlotReason::Free))
        );
        assert_eq!(next_sector(&params, &chain, &key, &[Some(&plotted)]), None);

        // Grow history until the sector plotted at size 1 expires (at most 4 × (1 + lifetime) segments).
        let all = headers(4 * (1 + params.min_sector_lifetime) + 1);
        let mut replotted_at = None;
        for header in &all[2..] {
            chain.apply(*header).expect("chains");
            let state = sector_state(&params, &chain, &key, &plotted);
            if state != SectorState::Fresh {
                replotted_at = Some(chain.segment_count());
                assert_eq!(
                    next_sector(&params, &chain, &key, &[None, Some(&plotted)]),
                    Some((SectorIndex(1), PlotReason::Replot))
                );
                break;
            }
        }
        let at = replotted_at.expect("every sector expires");
        assert!(at > params.min_sector_lifetime);
    }

    #[test]
    fn backoff_doubles_to_thirty_seconds_and_resets() {
        let mut backoff = Backoff::new();
        let delays: Vec<u64> = (0..9).map(|_| backoff.next_delay().as_millis() as u64).collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(500));
    }
}
