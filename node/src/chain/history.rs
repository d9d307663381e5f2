//! Branch-local history for the node: which segments a branch produced, the fork-point rule, and the
//! archiving step that feeds canonical blocks to the archiver.
//!
//! The canonical archiver runs `confirmation_depth` behind the best block. A block extending the best
//! chain (or any branch forking above the archiving point, which is every branch the node accepts) needs
//! only segments that archiver already produced. The one exception is a side branch *longer* than the best
//! chain (possible across retargets, where weight is not length): its archiving target lies beyond the
//! canonical archiver, so the branch's own blocks are archived speculatively on a copy of the archiver.
//! Either way the segments are the branch's, so the verdict does not depend on this node's progress.

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};

use acre_consensus::SegmentIndex;
use acre_consensus::blocks::BlockHash;
use acre_consensus::branch::SegmentHeaders;
use acre_consensus::{BlockNumber, SegmentHeader};
use acre_storage::chain_index::{BlockMeta, ChainIndex};

use super::seen::SeenKey;
use super::{Chain, lock};
use crate::archiving::{ArchiveState, read_block, read_block_by_hash};
use crate::error::{Error, ImportError};

/// The segments a branch produced: the canonical ones, then any archived speculatively for the branch.
#[derive(Debug, Clone)]
pub struct Produced {
    canonical: Arc<Vec<SegmentHeader>>,
    speculative: Vec<SegmentHeader>,
}

impl SegmentHeaders for Produced {
    fn segment_header(&self, index: SegmentIndex) -> Option<SegmentHeader> {
        let index = usize::try_from(index.0).ok()?;
        match self.canonical.get(index) {
            Some(header) => Some(*header),
            None => self.speculative.get(index - self.canonical.len()).copied(),
        }
    }
}

pub(super) fn internal(error: Error) -> ImportError {
    match error {
        Error::Storage(error) => ImportError::Storage(error),
        other => ImportError::Storage(acre_storage::Error::Database(other.to_string())),
    }
}

impl Chain {
    fn meta(&self, hash: &BlockHash) -> Result<BlockMeta, ImportError> {
        ChainIndex::open_existing(&self.db)
            .meta(hash)?
            .ok_or_else(|| internal(Error::Corrupt(format!("missing block metadata {hash}"))))
    }

    /// The highest block handed to the archiver.
    pub(super) fn archiving_point(&self) -> BlockNumber {
        BlockNumber(self.archiving_point.load(Ordering::Acquire))
    }

    /// Spec 8: a block that forks off at or below the archiving point is refused. The branch of a child
    /// of `parent` must hold the canonical block at the archiving point.
    pub(super) fn check_fork_point(&self, parent: &BlockMeta) -> Result<(), ImportError> {
        let archived = self.archiving_point();
        let number = BlockNumber(parent.number.0 + 1);
        let forks = ImportError::ForksArchivedHistory { number, archived };
        if number <= archived {
            return Err(forks);
        }
        let index = ChainIndex::open_existing(&self.db);
        if index.canonical_hash(parent.number)? == Some(parent.hash) {
            return Ok(());
        }
        let mut cursor = *parent;
        while cursor.number > archived {
            cursor = self.meta(&cursor.parent)?;
        }
        if index.canonical_hash(archived)? == Some(cursor.hash) {
            Ok(())
        } else {
            Err(forks)
        }
    }

    /// The segments the branch ending at `parent` produced by archiving up to block `target`.
    pub(super) fn produced_up_to(
        &self,
        parent: &BlockMeta,
        target: BlockNumber,
    ) -> Result<Produced, ImportError> {
        // The common case (the branch's target is archived and published) takes no lock: archiving a
        // segment must not hold up imports.
        if target.0 < self.archived_through.load(Ordering::Acquire) {
            return Ok(Produced {
                canonical: self.segments(),
                speculative: Vec::new(),
            });
        }
        let archive = self.archive_state().map_err(internal)?;
        let canonical = self.segments();
        let next = archive.next_block_number();
        if target.0 < next.0 {
            return Ok(Produced {
                canonical,
                speculative: Vec::new(),
            });
        }
        let mut archiver = archive.archiver();
        drop(archive);
        // The branch's blocks from the archiver's next one up to the target (the fork-point rule
        // guarantees the branch shares everything the archiver has seen).
        let mut blocks = Vec::new();
        let mut cursor = *parent;
        while cursor.number >= next {
            if cursor.number <= target {
                blocks.push(cursor.hash);
            }
            cursor = self.meta(&cursor.parent)?;
        }
        let mut speculative = Vec::new();
        for (offset, hash) in blocks.iter().rev().enumerate() {
            let bytes = read_block_by_hash(&self.db, hash).map_err(internal)?;
            let sealed = archiver
                .add_block(BlockNumber(next.0 + offset as u64), &bytes)
                .map_err(|error| internal(Error::Storage(error)))?;
            speculative.extend(sealed.into_iter().map(|segment| segment.header));
        }
        tracing::debug!(target: "acre::import", blocks = blocks.len(), segments = speculative.len(), "archived a side branch speculatively");
        Ok(Produced {
            canonical,
            speculative,
        })
    }

    /// The archiver, first rebuilt from the database if a failure left it ahead of what is stored.
    fn archive_state(&self) -> Result<MutexGuard<'_, ArchiveState>, Error> {
        let mut archive = lock(&self.archive);
        if self.archive_stale.load(Ordering::Acquire) {
            *archive = ArchiveState::stored(&self.db, &self.params)?;
            self.archive_stale.store(false, Ordering::Release);
        }
        Ok(archive)
    }

    /// Feeds canonical blocks up to `best − confirmation_depth` to the archiver, storing the segments they
    /// seal, and returns the headers of the segments newly stored. Each block's number is reserved as the
    /// archiving point under the chain lock first, so no import can fork below a block once the archiver
    /// may have seen it.
    ///
    /// A failure can leave the in-memory archiver ahead of the database (a segment sealed but not
    /// stored). The archiver is then rebuilt from the database, so that it never claims a segment that is
    /// not stored and published, and the same blocks are archived again at once (archiving is
    /// deterministic: the same segments). If that fails too, the next call tries again. The blocks
    /// themselves were committed before this runs and are never affected; an error is returned only when
    /// the database cannot be read to rebuild the archiver (it is then rebuilt before its next use).
    pub fn archive(&self) -> Result<Vec<SegmentHeader>, Error> {
        let mut archive = self.archive_state()?;
        let published = self.segments().len();
        for attempt in 1..=2 {
            let Err(error) = self.archive_locked(&mut archive) else {
                break;
            };
            tracing::error!(%error, attempt, "archiving failed; rebuilding the archiver from the database");
            self.archive_stale.store(true, Ordering::Release);
            *archive = ArchiveState::stored(&self.db, &self.params)?;
            self.archive_stale.store(false, Ordering::Release);
        }
        let new = archive.headers().get(published..).unwrap_or_default().to_vec();
        if !new.is_empty() {
            self.publish(&archive);
        }
        self.archived_through
            .store(archive.next_block_number().0, Ordering::Release);
        Ok(new)
    }

    /// Makes the archiver's segment headers the published ones (before `archived_through` moves).
    fn publish(&self, archive: &ArchiveState) {
        *self
            .segments
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(archive.headers().to_vec());
        self.archived_through
            .store(archive.next_block_number().0, Ordering::Release);
    }

    fn archive_locked(&self, archive: &mut ArchiveState) -> Result<(), Error> {
        let mut pruned_below = None;
        loop {
            let number = archive.next_block_number();
            {
                let inner = self.lock();
                let Some(target) = inner.best.number.0.checked_sub(self.params.confirmation_depth) else {
                    break;
                };
                if number.0 > target {
                    break;
                }
                self.archiving_point.fetch_max(number.0, Ordering::AcqRel);
            }
            let bytes = read_block(&self.db, number)?;
            archive.archive_block(&self.db, &self.params, number, &bytes)?;
            pruned_below = Some(number);
        }
        if let Some(number) = pruned_below {
            self.prune_seen(number)?;
        }
        Ok(())
    }

    /// Forgets seen claims for slots at or below the slot of archived block `number`: no block or vote
    /// for such a slot can be imported any more (spec 8).
    fn prune_seen(&self, number: BlockNumber) -> Result<(), Error> {
        let Some(hash) = self.canonical_hash(number)? else {
            return Ok(());
        };
        let Some(meta) = ChainIndex::open_existing(&self.db).meta(&hash)? else {
            return Ok(());
        };
        let tx = self.db.write()?;
        tx.delete_below::<super::SeenClaims>(&SeenKey::lowest(meta.slot))?;
        tx.commit()?;
        Ok(())
    }
}

impl Chain {
    /// The best branch's history size and its segments (the history a child of the best block is
    /// checked against). The best branch only carries canonical segments, so no speculation is needed.
    fn best_history(&self) -> (u64, Arc<Vec<SegmentHeader>>) {
        (self.best().1.next_segment_index, self.segments())
    }

    /// Verifies a solution for a child of the best block, against the best branch's history.
    pub fn verify_solution(
        &self,
        solution: &acre_consensus::solutions::Solution,
        challenge: &acre_consensus::Blake3Hash,
        solution_range: acre_consensus::SolutionRange,
    ) -> Result<(), acre_consensus::solutions::SolutionVerificationError> {
        let (carried, segments) = self.best_history();
        let history = acre_consensus::branch::BranchHistory::new(carried, &*segments);
        acre_consensus::solutions::verify_solution(
            &self.params,
            solution,
            challenge,
            solution_range,
            &history,
        )
        .map(|_| ())
    }

    /// Verifies a vote's solution for a child of the best block, against the best branch's history.
    pub fn verify_vote_solution(
        &self,
        solution: &acre_consensus::solutions::Solution,
        challenge: &acre_consensus::Blake3Hash,
        solution_range: acre_consensus::SolutionRange,
    ) -> Result<(), acre_consensus::votes::VoteError> {
        let (carried, segments) = self.best_history();
        let history = acre_consensus::branch::BranchHistory::new(carried, &*segments);
        acre_consensus::votes::verify_vote_solution(
            &self.params,
            solution,
            challenge,
            solution_range,
            &history,
        )
    }

    /// Judges a vote against the claims seen in imported blocks: an equivocation becomes evidence for the
    /// next authored block and an error.
    pub fn check_vote_equivocation(
        &self,
        vote: &acre_consensus::votes::SignedVote,
    ) -> Result<(), ImportError> {
        let key = SeenKey {
            slot: vote.vote.slot,
            public_key: vote.vote.solution.public_key,
        };
        let read = self.db.read()?;
        let claim = acre_consensus::equivocation::SignedClaim::Vote(vote.clone());
        match super::seen::check(&read, &key, &claim)? {
            Some(proof) => {
                self.record_evidence(proof);
                Err(ImportError::Equivocation(key.public_key))
            }
            None => Ok(()),
        }
    }

    /// Records evidence of an equivocation seen outside imported blocks (two votes submitted for one
    /// slot).
    pub fn report_equivocation(&self, proof: acre_consensus::equivocation::EquivocationProof) {
        if proof.verify().is_ok() {
            self.record_evidence(proof);
        }
    }
}
