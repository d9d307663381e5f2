//! Snap sync on the chain's side: serving a block's state in key ranges with proofs, and starting an
//! empty database from a block whose state came so (spec 9).
//!
//! **Serving.** A block's state is reached from the best state along the block tree (its diffs), then
//! listed in key order with a witness over the range ([`BranchState::range`]). Only the last blocks of
//! the newest segments are served (the blocks snap sync starts from), and their states are kept (O(1)
//! clones of persistent trees), so a peer paging through a snapshot costs one walk down the diffs per
//! new segment, not one per page, and no peer can make the node walk back to a block it chose.
//!
//! **Starting from a snapshot.** [`Chain::install_snapshot`] writes, in one transaction, the base block
//! (header, body, consensus context, its accounts as the best state) as the canonical, best and
//! finalized block, and the segment headers up to the segment the base block ends. The archiver then
//! resumes after that segment exactly as after a restart, and the chain imports the base's children
//! through the ordinary pipeline. Blocks below the base are not stored: a snap-synced node serves
//! history from the base on (the DSN holds the rest), and no reorganisation can reach below it because
//! it is already below the archiving point.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, RwLock};

use acre_consensus::blocks::{BlockHash, Body, Header};
use acre_consensus::state_tree::{StateKey, Witness};
use acre_consensus::{SegmentHeader, SegmentIndex, codec};
use acre_execution::{Account, Address};
use acre_storage::chain_index::ChainIndex;
use acre_storage::db::tables::SegmentHeaders;

use super::{BlockContext, BlockContexts, Chain, lock};
use crate::archiving::ArchiveState;
use crate::error::Error;
use crate::state::{self, Accounts, BlockDiffs, BranchState};

/// A page of a block's state: accounts in state-key order, whether none follows, and the proof.
#[derive(Debug, Clone)]
pub struct StatePage {
    /// The accounts, in state-key order.
    pub accounts: Vec<(Address, Account)>,
    /// No account follows the last one.
    pub complete: bool,
    /// The witness over the page's key range.
    pub proof: Witness,
}

/// What snap sync downloaded: a block, its consensus context and state, and the segment headers up to
/// the segment that ends with the block.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The base block's header.
    pub header: Header,
    /// Its body.
    pub body: Body,
    /// Its consensus context.
    pub context: BlockContext,
    /// Its state: every non-default account.
    pub accounts: Vec<(Address, Account)>,
    /// Segment headers from index 0 to the one whose last archived block is the base block.
    pub segments: Vec<SegmentHeader>,
}

/// How many snap bases are served, and their states kept.
const SERVED_STATES: usize = 3;

/// The states served to snap-syncing peers, oldest first (at most [`SERVED_STATES`]; each an O(1) clone
/// of a persistent tree).
#[derive(Debug, Default)]
pub(super) struct ServedState(RwLock<Vec<(BlockHash, BranchState)>>);

impl Chain {
    /// The consensus context of a stored block.
    pub fn block_context(&self, hash: &BlockHash) -> Result<Option<BlockContext>, Error> {
        self.context(hash)
    }

    /// Up to `max` accounts of block `hash`'s state from state key `start` on, with their proof;
    /// `None` unless the block is a snap base this node serves ([`Chain::is_snap_base`]).
    pub fn state_page(
        &self,
        hash: &BlockHash,
        start: &StateKey,
        max: usize,
    ) -> Result<Option<StatePage>, Error> {
        if !self.is_snap_base(hash)? {
            return Ok(None);
        }
        let cached = self
            .served_state
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(served, _)| served == hash)
            .map(|(_, state)| state.clone());
        let state = match cached {
            Some(state) => state,
            None => {
                let state = self
                    .state_at(hash)
                    .map_err(|error| Error::Corrupt(format!("the state of block {hash}: {error}")))?;
                let mut served = self
                    .served_state
                    .0
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                if served.len() >= SERVED_STATES {
                    served.remove(0);
                }
                served.push((*hash, state.clone()));
                state
            }
        };
        let (accounts, complete, proof) = state.range(start, max);
        Ok(Some(StatePage {
            accounts,
            complete,
            proof,
        }))
    }

    /// Whether `hash` is the canonical last block of one of the newest [`SERVED_STATES`] segments: the
    /// blocks snap sync starts from (the last block of the next-to-last segment, give or take a segment
    /// sealed meanwhile). Only these are served, so a peer cannot make this node walk its diffs back to
    /// any old block it names, and every syncing peer shares the same few cached states.
    pub fn is_snap_base(&self, hash: &BlockHash) -> Result<bool, Error> {
        let segments = self.segments();
        for header in segments.iter().rev().take(SERVED_STATES) {
            let number = header.last_archived_block.number;
            if number.0 > 0 && self.canonical_hash(number)? == Some(*hash) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Starts this (empty) database from a snapshot, verifying that it holds together first: the
    /// accounts give the header's state root, the context is the block's, and the segment headers chain
    /// from this chain's own genesis segment to one that ends with the block.
    pub fn install_snapshot(&self, snapshot: &Snapshot) -> Result<(), Error> {
        let refuse = |reason: String| Err(Error::Snapshot(reason));
        let hash = snapshot.header.hash();
        let number = snapshot.header.unsealed.number;
        if self.best().0.number.0 != 0 {
            return refuse("the database already holds blocks past genesis".into());
        }
        if self.spec.domains.is_some() {
            return refuse("this chain has domains, whose registry snapshots do not carry yet".into());
        }
        if snapshot.context.hash() != hash || snapshot.context.number() != number {
            return refuse(format!("the context is not block {hash}'s"));
        }
        if snapshot.body.root() != snapshot.header.unsealed.body_root {
            return refuse("the body does not match the header".into());
        }
        let ours = self.segments();
        let Some(last) = snapshot.segments.last() else {
            return refuse("no segment headers".into());
        };
        if snapshot.segments.first() != ours.first()
            || snapshot
                .segments
                .iter()
                .enumerate()
                .any(|(index, header)| header.segment_index != SegmentIndex(index as u64))
            || snapshot
                .segments
                .windows(2)
                .any(|pair| pair[1].prev_segment_header_hash != pair[0].hash())
        {
            return refuse("the segment headers do not chain from this chain's genesis segment".into());
        }
        if last.last_archived_block.number != number {
            return refuse(format!(
                "the last segment ends with block {}, not the snapshot's block {number}",
                last.last_archived_block.number
            ));
        }
        let state = BranchState::from_accounts(snapshot.accounts.iter().copied());
        if state.root() != snapshot.header.unsealed.state_root {
            return refuse(format!(
                "the accounts give state root {}, the block says {}",
                state.root(),
                snapshot.header.unsealed.state_root
            ));
        }

        let context_bytes = codec::encode(&snapshot.context);
        // The stored best state is genesis's: replaced, not merged.
        let genesis_accounts: Vec<_> = self
            .db
            .read()?
            .all::<Accounts>()?
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        ChainIndex::open_existing(&self.db).install_base(&snapshot.header, &snapshot.body, |tx| {
            for key in &genesis_accounts {
                tx.delete::<Accounts>(key)?;
            }
            tx.put::<BlockContexts>(&hash, &context_bytes)?;
            // The base's own diff is never reverted (nothing reorganises below it): empty.
            tx.put::<BlockDiffs>(&hash, &state::encode_diff(&[]))?;
            for (address, account) in &snapshot.accounts {
                tx.put::<Accounts>(
                    &acre_consensus::Blake3Hash(address.0),
                    &codec::encode(&(*address, *account)),
                )?;
            }
            for header in &snapshot.segments[ours.len().min(snapshot.segments.len())..] {
                tx.put::<SegmentHeaders>(&header.segment_index, header)?;
            }
            Ok(())
        })?;

        // The in-memory chain follows the database: best block, state, and the archiver resumed after the
        // last segment as at a restart.
        let best = ChainIndex::open_existing(&self.db).best()?;
        let archive = ArchiveState::restore(&self.db, &self.params, best.number)?;
        {
            let mut inner = self.lock();
            inner.best = best;
            inner.best_context = snapshot.context.clone();
            inner.best_state = state;
        }
        self.archiving_point.store(
            archive.last_archived_block().map_or(0, |number| number.0),
            Ordering::Release,
        );
        self.archived_through
            .store(archive.next_block_number().0, Ordering::Release);
        *self.segments.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(archive.headers().to_vec());
        *lock(&self.archive) = archive;
        tracing::info!(
            number = %number,
            %hash,
            accounts = snapshot.accounts.len(),
            segments = snapshot.segments.len(),
            "started from a snapshot"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use acre_consensus::{BlockNumber, LastArchivedBlock};

    use super::*;
    use crate::ChainSpec;
    use crate::state::verify_page;

    const BASE: u64 = 5;

    /// The dev chain without its domains (snapshots carry no domain registry).
    fn spec() -> ChainSpec {
        ChainSpec {
            domains: None,
            ..ChainSpec::dev()
        }
    }

    /// A made-up base block of `accounts` numbered [`BASE`], with its context and segment headers
    /// chained from `chain`'s genesis segment: what snap sync would have downloaded.
    fn snapshot(chain: &Chain, accounts: Vec<(Address, Account)>) -> Snapshot {
        let genesis = chain.spec().genesis().expect("genesis");
        let mut header = genesis.header.clone();
        header.unsealed.number = BlockNumber(BASE);
        header.unsealed.parent_hash = acre_consensus::Blake3Hash([7; 32]);
        header.unsealed.state_root = BranchState::from_accounts(accounts.iter().copied()).root();
        let mut context = BlockContext::genesis(header.hash(), header.unsealed.solution_range);
        context.child.number = BlockNumber(BASE);
        let mut segments = chain.segments().to_vec();
        segments.push(SegmentHeader {
            segment_index: SegmentIndex(1),
            prev_segment_header_hash: segments[0].hash(),
            last_archived_block: LastArchivedBlock {
                number: BlockNumber(BASE),
                archived_progress: 0,
            },
            ..segments[0]
        });
        Snapshot {
            header,
            body: genesis.body,
            context,
            accounts,
            segments,
        }
    }

    fn accounts(count: u32) -> Vec<(Address, Account)> {
        (0..count)
            .map(|i| {
                let mut address = [0; 32];
                address[..4].copy_from_slice(&i.to_le_bytes());
                (
                    Address(address),
                    Account {
                        balance: u128::from(i) + 1,
                        nonce: u64::from(i % 3),
                    },
                )
            })
            .collect()
    }

    fn refused(chain: &Chain, snapshot: &Snapshot) -> String {
        match chain.install_snapshot(snapshot) {
            Err(Error::Snapshot(reason)) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_snapshot_that_contradicts_itself_is_refused() {
        let chain = Chain::open(spec(), None).expect("opens");
        let good = snapshot(&chain, accounts(10));

        let mut other_block = good.clone();
        other_block.context.child.hash = acre_consensus::Blake3Hash([1; 32]);
        assert!(refused(&chain, &other_block).contains("context"));

        let mut changed = good.clone();
        changed.accounts[3].1.balance += 1;
        assert!(refused(&chain, &changed).contains("state root"));

        let mut broken = good.clone();
        broken.segments[1].prev_segment_header_hash = acre_consensus::Blake3Hash([2; 32]);
        assert!(refused(&chain, &broken).contains("do not chain"));

        let mut elsewhere = good.clone();
        elsewhere.segments[1].last_archived_block.number = BlockNumber(BASE + 1);
        assert!(refused(&chain, &elsewhere).contains("ends with block"));

        let mut body = good.clone();
        body.body.transactions.push(vec![1]);
        assert!(refused(&chain, &body).contains("body"));

        // Nothing was written: the chain is still at genesis and takes the good snapshot.
        assert_eq!(chain.best().0.number, BlockNumber(0));
        chain.install_snapshot(&good).expect("installs");
        assert!(refused(&chain, &good).contains("already holds blocks"));
    }

    #[test]
    fn an_installed_snapshot_serves_its_state_in_verified_pages_and_survives_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("chain.redb");
        let all = accounts(5000);
        let snapshot = {
            let chain = Chain::open(spec(), Some(&path)).expect("opens");
            let snapshot = snapshot(&chain, all.clone());
            chain.install_snapshot(&snapshot).expect("installs");
            assert_eq!(chain.best().0.number, BlockNumber(BASE));
            assert_eq!(chain.account(&all[42].0), all[42].1);
            snapshot
        };
        let chain = Chain::open(spec(), Some(&path)).expect("reopens");
        let (best, context) = chain.best();
        assert_eq!(
            (best.number, context),
            (BlockNumber(BASE), snapshot.context.clone())
        );
        assert_eq!(chain.finalized().expect("finalized").number, BlockNumber(BASE));
        assert_eq!(chain.segments().len(), 2);

        // Paged out as a peer would ask, each page verifies against the header's state root alone.
        let root = snapshot.header.unsealed.state_root;
        let hash = snapshot.header.hash();
        let mut start = [0; 32];
        let mut served = Vec::new();
        let mut pages = 0;
        loop {
            let page = chain
                .state_page(&hash, &start, 2048)
                .expect("reads")
                .expect("stored");
            let values: Vec<Vec<u8>> = page.accounts.iter().map(codec::encode).collect();
            let verified = verify_page(&root, &start, &values, page.complete, &page.proof)
                .expect("a true page verifies");
            pages += 1;
            served.extend(verified);
            if page.complete {
                break;
            }
            let last = acre_execution::account_key(&page.accounts.last().expect("entries").0).0;
            start = acre_consensus::state_tree::next_key(&last).expect("a next key");
        }
        assert_eq!(pages, 3);
        let mut expected = all;
        served.sort_by_key(|(address, _)| address.0);
        expected.sort_by_key(|(address, _)| address.0);
        assert_eq!(served, expected);
        assert!(
            chain
                .state_page(&acre_consensus::Blake3Hash([9; 32]), &[0; 32], 10)
                .expect("reads")
                .is_none()
        );
    }
}
