//! Branch-local history (spec section 3.6).
//!
//! Which segments exist is a property of a *branch*, not of the node checking it: the history size at a
//! block is the number of segment headers carried by the block and its ancestors (genesis' segment
//! included), and every rule that speaks of "the current history size" (solution validity, sector expiry,
//! piece selection) uses that value at the parent of the block being checked. A node that has archived
//! further than the branch therefore reaches the same verdict as one that has archived less.
//!
//! Segment-header inclusion is mandatory and exact: the child of block `n` carries precisely the headers
//! that archiving the branch up to block `n − confirmation_depth` produced and that no ancestor carried, in
//! order. Because the archiver only seals segments while a block is being added, the segments produced by
//! archiving up to block `m` are exactly those whose last archived block is numbered at most `m`; that is
//! what [`expected_segment_headers`] selects from the branch's produced headers.

use thiserror::Error;

use crate::params::ProtocolParams;
use crate::quantities::{BlockNumber, HistorySize, SegmentIndex};
use crate::segments::{SegmentHeader, SegmentRoot};
use crate::solutions::SegmentRoots;

/// Segment headers a branch's archiver produced, by index (all of them from segment 0 on).
pub trait SegmentHeaders {
    /// Header of segment `index`, if the branch's archiving produced it.
    fn segment_header(&self, index: SegmentIndex) -> Option<SegmentHeader>;
}

impl SegmentHeaders for [SegmentHeader] {
    fn segment_header(&self, index: SegmentIndex) -> Option<SegmentHeader> {
        self.get(usize::try_from(index.0).ok()?).copied()
    }
}

impl SegmentHeaders for Vec<SegmentHeader> {
    fn segment_header(&self, index: SegmentIndex) -> Option<SegmentHeader> {
        self.as_slice().segment_header(index)
    }
}

/// The history size of a branch whose blocks carried `carried` segment headers so far. Genesis' segment
/// counts from the start (block 1 carries its header, but genesis is archived at once), so the size is
/// never below one.
pub fn history_size(carried: u64) -> HistorySize {
    HistorySize::new(carried.max(1)).unwrap_or(HistorySize::ONE)
}

/// The block whose archiving the child of block `parent` reflects: `parent − confirmation_depth`, or
/// genesis (archived at once) while the chain is shorter than the depth.
pub fn archiving_target(params: &ProtocolParams, parent: BlockNumber) -> BlockNumber {
    BlockNumber(parent.0.saturating_sub(params.confirmation_depth))
}

/// The segment headers the child of block `parent` must carry, given that the branch up to `parent`
/// carried `carried` headers and that `produced` holds what archiving the branch produced (at least up to
/// the archiving target).
pub fn expected_segment_headers(
    params: &ProtocolParams,
    parent: BlockNumber,
    carried: u64,
    produced: &(impl SegmentHeaders + ?Sized),
) -> Vec<SegmentHeader> {
    let target = archiving_target(params, parent);
    (carried..)
        .map_while(|index| produced.segment_header(SegmentIndex(index)))
        .take_while(|header| header.last_archived_block.number <= target)
        .collect()
}

/// Why a body's segment headers are not the ones its branch requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SegmentInclusionError {
    /// A header the branch produced is missing.
    #[error("segment header {index} must be included in this block")]
    Missing {
        /// Which one (counting from zero).
        index: SegmentIndex,
    },
    /// The block carries a header the branch has not produced by its archiving target.
    #[error("segment header {index} is not due yet (or out of sequence)")]
    Unexpected {
        /// Which one (counting from zero).
        index: SegmentIndex,
    },
    /// The block carries a different header than the branch produced.
    #[error("segment header {index} differs from the one the branch's history produces")]
    Mismatch {
        /// Which one (counting from zero).
        index: SegmentIndex,
    },
}

/// Checks that `carried` is exactly `expected` (spec 3.6): no fewer, no more, none different, in order.
pub fn check_segment_headers(
    carried: &[SegmentHeader],
    expected: &[SegmentHeader],
) -> Result<(), SegmentInclusionError> {
    for (position, header) in carried.iter().enumerate() {
        match expected.get(position) {
            None => {
                return Err(SegmentInclusionError::Unexpected {
                    index: header.segment_index,
                });
            }
            Some(due) if due != header => {
                return Err(SegmentInclusionError::Mismatch {
                    index: due.segment_index,
                });
            }
            Some(_) => {}
        }
    }
    match expected.get(carried.len()) {
        Some(missing) => Err(SegmentInclusionError::Missing {
            index: missing.segment_index,
        }),
        None => Ok(()),
    }
}

/// A branch's view of history at one block: its history size and the roots of its segments. Segments the
/// branch has not carried yet do not exist for it, whatever the node has archived.
#[derive(Debug, Clone, Copy)]
pub struct BranchHistory<'a, S: ?Sized> {
    size: HistorySize,
    produced: &'a S,
}

impl<'a, S: SegmentHeaders + ?Sized> BranchHistory<'a, S> {
    /// The history of a branch that carried `carried` headers, whose segments are in `produced`.
    pub fn new(carried: u64, produced: &'a S) -> Self {
        Self {
            size: history_size(carried),
            produced,
        }
    }
}

impl<S: SegmentHeaders + ?Sized> SegmentRoots for BranchHistory<'_, S> {
    fn segment_root(&self, index: SegmentIndex) -> Option<SegmentRoot> {
        if index.0 >= self.size.get() {
            return None;
        }
        self.produced
            .segment_header(index)
            .map(|header| header.segment_root)
    }

    fn history_size(&self) -> HistorySize {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::hashing::Blake3Hash;
    use crate::segments::LastArchivedBlock;

    fn header(index: u64, last_block: u64) -> SegmentHeader {
        SegmentHeader {
            version: SegmentHeader::VERSION,
            segment_index: SegmentIndex(index),
            segment_root: SegmentRoot(Blake3Hash([index as u8; 32])),
            prev_segment_header_hash: Blake3Hash::ZERO,
            last_archived_block: LastArchivedBlock {
                number: BlockNumber(last_block),
                archived_progress: 0,
            },
        }
    }

    #[test]
    fn children_carry_exactly_what_archiving_to_the_target_produced() {
        let params = ProtocolParams::dev();
        let depth = params.confirmation_depth;
        // Genesis' segment, then segments sealed while archiving blocks 12, 12 (a split block) and 30.
        let produced = vec![header(0, 0), header(1, 12), header(2, 12), header(3, 30)];
        let due = |parent: u64, carried: u64| {
            expected_segment_headers(&params, BlockNumber(parent), carried, &produced)
        };
        assert_eq!(due(0, 0), vec![header(0, 0)], "block 1 carries genesis' segment");
        assert_eq!(due(1, 1), vec![]);
        assert_eq!(due(depth + 11, 1), vec![], "block 12 is not archived yet");
        assert_eq!(due(depth + 12, 1), vec![header(1, 12), header(2, 12)]);
        assert_eq!(due(depth + 40, 3), vec![header(3, 30)]);
        assert_eq!(due(depth + 40, 4), vec![]);
        // A branch that fell behind carries everything due at once.
        assert_eq!(due(depth + 40, 1), produced[1..].to_vec());
    }

    #[test]
    fn inclusion_is_exact() {
        let expected = [header(1, 12), header(2, 12)];
        assert_eq!(check_segment_headers(&expected, &expected), Ok(()));
        assert_eq!(
            check_segment_headers(&expected[..1], &expected),
            Err(SegmentInclusionError::Missing {
                index: SegmentIndex(2)
            })
        );
        assert_eq!(
            check_segment_headers(&[], &expected),
            Err(SegmentInclusionError::Missing {
                index: SegmentIndex(1)
            })
        );
        assert_eq!(
            check_segment_headers(&[header(1, 12), header(2, 12), header(3, 30)], &expected),
            Err(SegmentInclusionError::Unexpected {
                index: SegmentIndex(3)
            })
        );
        let mut forged = header(2, 12);
        forged.segment_root = SegmentRoot(Blake3Hash([9; 32]));
        assert_eq!(
            check_segment_headers(&[header(1, 12), forged], &expected),
            Err(SegmentInclusionError::Mismatch {
                index: SegmentIndex(2)
            })
        );
        assert_eq!(
            check_segment_headers(&[header(2, 12), header(1, 12)], &expected),
            Err(SegmentInclusionError::Mismatch {
                index: SegmentIndex(1)
            })
        );
    }

    #[test]
    fn a_branch_sees_only_the_segments_it_carried() {
        let produced = vec![header(0, 0), header(1, 12), header(2, 30)];
        let early = BranchHistory::new(0, produced.as_slice());
        assert_eq!(early.history_size(), HistorySize::ONE);
        assert!(early.segment_root(SegmentIndex(0)).is_some());
        assert_eq!(early.segment_root(SegmentIndex(1)), None);
        let later = BranchHistory::new(2, produced.as_slice());
        assert_eq!(later.history_size().get(), 2);
        assert_eq!(
            later.segment_root(SegmentIndex(1)),
            Some(produced[1].segment_root)
        );
        assert_eq!(
            later.segment_root(SegmentIndex(2)),
            None,
            "produced but not carried"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(31), failure_persistence: None, ..ProptestConfig::default() })]

        /// Two nodes that archived different amounts (because blocks reached them in different orders)
        /// judge a block with the same inputs: the segment headers it must carry and the history its
        /// solution and votes are checked against depend only on its branch, never on how far either
        /// node archived, as long as each node covers the block's archiving target (the node archives a
        /// branch speculatively when it does not).
        #[test]
        fn two_nodes_reach_the_same_verdict_whatever_their_archiving_progress(
            steps in prop::collection::vec(0u64..30, 1..12),
            ahead in 0u64..400,
            behind in 0u64..400,
            parent in 0u64..400,
        ) {
            let params = ProtocolParams::dev();
            // The branch's archiving produced segment 0 (genesis) then segments sealed at these blocks.
            let mut last = 0;
            let all: Vec<SegmentHeader> = std::iter::once(0)
                .chain(steps.iter().map(|step| { last += step; last }))
                .enumerate()
                .map(|(index, block)| header(index as u64, block))
                .collect();
            let archived_to = |progress: u64| -> Vec<SegmentHeader> {
                all.iter().copied().take_while(|h| h.last_archived_block.number.0 <= progress).collect()
            };
            let (p, q) = (archived_to(ahead.max(behind)), archived_to(ahead.min(behind)));
            let target = archiving_target(&params, BlockNumber(parent)).0;
            prop_assume!(target <= ahead.min(behind));
            // What the branch carried up to the parent: what was due at each earlier block.
            let carried = match parent.checked_sub(1) {
                None => 0,
                Some(grandparent) => {
                    let due = archiving_target(&params, BlockNumber(grandparent)).0;
                    all.iter().filter(|h| h.last_archived_block.number.0 <= due).count() as u64
                }
            };
            let expected_p = expected_segment_headers(&params, BlockNumber(parent), carried, &p);
            let expected_q = expected_segment_headers(&params, BlockNumber(parent), carried, &q);
            prop_assert_eq!(&expected_p, &expected_q);
            prop_assert!(expected_p.iter().all(|h| h.last_archived_block.number.0 <= target));
            let history_p = BranchHistory::new(carried, p.as_slice());
            let history_q = BranchHistory::new(carried, q.as_slice());
            prop_assert_eq!(history_p.history_size(), history_q.history_size());
            for index in 0..all.len() as u64 + 2 {
                prop_assert_eq!(
                    history_p.segment_root(SegmentIndex(index)),
                    history_q.segment_root(SegmentIndex(index))
                );
            }
        }
    }
}
