//! Full sync: block ranges from peers, imported through the ordinary import pipeline.
//!
//! One task runs it, so at most one range is in flight and imports happen in order. It is woken by
//! hints (a peer connected; a gossiped block whose parent is unknown) and polls a peer every
//! [`POLL`] in case gossip was missed. Each round asks a peer for its best-chain blocks after our best
//! block; a first block whose parent we lack means the peer's chain forked from ours, and the branch is
//! fetched newest first ([`BlockStart::Descending`]) until it meets a block we have, then imported
//! oldest first. Fork choice then decides as for any other block.
//!
//! A peer that answers with something undecodable, out of order, or with an invalid block is faulted
//! and sync moves on to the next peer. A node whose peers are all farmers (none has blocks) rebuilds
//! the archived history from the DSN instead (`dsn_sync`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use acre_consensus::BlockNumber;
use acre_consensus::blocks::{BlockHash, Body, Header};
use acre_network::messages::{
    self, BlockRangeRequest, BlockRangeResponse, BlockStart, MAX_BLOCKS_PER_RANGE, RawBlock,
};
use acre_network::{Fault, PeerId, Protocol};
use acre_rpc_api::SyncInfo;
use tokio::sync::{mpsc, watch};

use super::{P2p, import_fault};
use crate::error::ImportError;
use crate::service::Shared;

/// Hints waiting for the sync task; more are dropped (the next poll catches up).
pub const HINT_QUEUE: usize = 64;

/// How often sync asks a peer for news even without a hint.
const POLL: Duration = Duration::from_secs(5);

/// Rounds of descending requests spent looking for where a peer's branch meets ours.
const MAX_BRANCH_ROUNDS: usize = 4;

/// How long a DSN sync that found nothing new is not repeated by the poll.
const DSN_RECHECK: Duration = Duration::from_secs(30);

/// How long branch hints from a peer are ignored after its branch did not join ours.
const BRANCH_COOLDOWN: Duration = Duration::from_secs(60);

/// Failed snap-sync attempts before full sync takes over.
const MAX_SNAP_ATTEMPTS: u32 = 3;

/// Peers sync remembers (to poll in turn).
const MAX_PEERS: usize = 64;

/// Why sync should look at a peer.
#[derive(Debug, Clone, Copy)]
pub enum Hint {
    /// A peer connected.
    Peer(PeerId),
    /// A farmer connected: a node whose peers are all farmers starts DSN sync at once, not at the next
    /// poll.
    Farmer,
    /// A peer gossiped a block whose parent (this hash) we lack.
    Branch(PeerId, BlockHash),
}

/// Where sync stands, for `node_network`, `acre chain` and logs.
#[derive(Debug, Default)]
pub struct SyncStatus {
    /// The best block number peers reported.
    pub target: u64,
    /// When the current run of catching up started, and the best number then (none when caught up).
    run: Option<(Instant, u64)>,
    /// Set when this node found itself on a fork below its archived history (the peers' best then).
    forked: Option<u64>,
    /// Snap sync is downloading a snapshot.
    snapping: bool,
}

impl SyncStatus {
    /// Starts a run of catching up from `best` towards `target` (unless one is under way).
    pub(super) fn start_run(&mut self, target: u64, best: u64) {
        self.target = self.target.max(target);
        if self.run.is_none() {
            self.run = Some((Instant::now(), best));
        }
    }

    /// Starts a snap sync towards `target` (the last block the network's archived history completes).
    pub(super) fn start_snap(&mut self, target: u64) {
        self.snapping = true;
        self.start_run(target, 0);
    }

    /// The report: state, target, speed and time left.
    pub fn report(&self, shared: &Shared) -> SyncInfo {
        let best = shared.chain.best().0.number.0;
        let target = self.target.max(best);
        let (speed, eta) = match self.run {
            Some((started, from)) => {
                let elapsed = started.elapsed().as_secs_f64();
                let speed = if elapsed > 0.0 {
                    best.saturating_sub(from) as f64 / elapsed
                } else {
                    0.0
                };
                let eta = (speed > 0.0).then(|| (target.saturating_sub(best) as f64 / speed).ceil() as u64);
                (speed, eta)
            }
            None => (0.0, None),
        };
        let state = if self.forked.is_some() {
            "forked"
        } else if self.snapping {
            "snap"
        } else if self.run.is_some() {
            "syncing"
        } else {
            "idle"
        };
        SyncInfo {
            state: state.into(),
            best,
            target,
            blocks_per_second: speed,
            eta_seconds: eta,
        }
    }
}

/// The sync task.
pub(super) async fn run(
    shared: Arc<Shared>,
    p2p: Arc<P2p>,
    mut hints: mpsc::Receiver<Hint>,
    snap: bool,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut peers: VecDeque<PeerId> = VecDeque::new();
    let mut cooling: HashMap<PeerId, Instant> = HashMap::new();
    let mut poll = tokio::time::interval(POLL);
    let mut dsn_quiet = None;
    // Snap sync is for an empty database only; it is tried before any block comes by full sync.
    let mut snap = (snap && shared.chain.best().0.number.0 == 0).then_some(0u32);
    let sync = Sync { shared, p2p };
    loop {
        tokio::select! {
            hint = hints.recv() => match hint {
                Some(Hint::Peer(peer)) => {
                    if !peers.contains(&peer) {
                        if peers.len() >= MAX_PEERS {
                            peers.pop_front();
                        }
                        peers.push_back(peer);
                    }
                    if !sync.snap(&mut snap).await {
                        sync.catch_up_with(peer).await;
                    }
                }
                Some(Hint::Farmer) => {
                    sync.dsn_if_alone(&mut dsn_quiet, true).await;
                }
                Some(Hint::Branch(peer, hash)) => {
                    // A branch that did not join ours costs its peer a cooldown: gossiping blocks on
                    // unknown parents must not make this node fetch without end.
                    let now = Instant::now();
                    cooling.retain(|_, until| *until > now);
                    if cooling.contains_key(&peer) || sync.shared.chain.has_block(&hash) {
                        continue;
                    }
                    if sync.branch(peer, hash).await {
                        sync.catch_up_with(peer).await;
                    } else if cooling.len() < MAX_PEERS {
                        cooling.insert(peer, now + BRANCH_COOLDOWN);
                    }
                }
                None => return,
            },
            _ = poll.tick() => {
                if sync.dsn_if_alone(&mut dsn_quiet, false).await || sync.snap(&mut snap).await {
                    continue;
                }
                let connected = sync.p2p.handle.node_peer_ids().await;
                peers.retain(|peer| connected.contains(peer));
                for peer in connected {
                    if !peers.contains(&peer) && peers.len() < MAX_PEERS {
                        peers.push_back(peer);
                    }
                }
                if let Some(peer) = peers.pop_front() {
                    peers.push_back(peer);
                    sync.catch_up_with(peer).await;
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

struct Sync {
    shared: Arc<Shared>,
    p2p: Arc<P2p>,
}

impl Sync {
    fn status(&self) -> std::sync::MutexGuard<'_, SyncStatus> {
        self.p2p.sync.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn ask(&self, peer: PeerId, start: BlockStart) -> Option<BlockRangeResponse> {
        let request = messages::encode(&BlockRangeRequest {
            start,
            max_blocks: MAX_BLOCKS_PER_RANGE,
        });
        let bytes = match self.p2p.handle.request(peer, Protocol::BlockRange, request).await {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::debug!(%peer, %error, "block-range request failed");
                return None;
            }
        };
        match messages::decode::<BlockRangeResponse>(
            "block-range response",
            &bytes,
            Protocol::BlockRange.max_response(),
        ) {
            Ok(response) if response.blocks.len() <= MAX_BLOCKS_PER_RANGE as usize => {
                self.target(response.best_number);
                Some(response)
            }
            Ok(_) => {
                self.fault(peer, Fault::ProtocolViolation).await;
                None
            }
            Err(error) => {
                tracing::debug!(%peer, %error, "undecodable block range");
                self.fault(peer, Fault::Undecodable).await;
                None
            }
        }
    }

    fn target(&self, number: BlockNumber) {
        let best = self.shared.chain.best().0.number.0;
        let mut status = self.status();
        status.target = number.0.max(best);
        if status.target > best.saturating_add(1) && status.run.is_none() {
            status.run = Some((Instant::now(), best));
            tracing::info!(best, target = status.target, "syncing");
        }
        self.shared.metrics.sync_target.set(status.target);
    }

    fn caught_up(&self) {
        let report = {
            let mut status = self.status();
            let was = status.run.take();
            was.map(|(started, from)| (started.elapsed(), from))
        };
        if let Some((elapsed, from)) = report {
            let best = self.shared.chain.best().0.number.0;
            tracing::info!(
                best,
                blocks = best.saturating_sub(from),
                seconds = elapsed.as_secs_f64(),
                "sync caught up"
            );
        }
    }

    /// When every connected peer is a farmer (none has blocks), DSN sync rebuilds what the farmers'
    /// archived history holds; returns whether that is so. A run that found nothing new is not repeated
    /// for [`DSN_RECHECK`] (`quiet` holds when it ended) unless `now` asks: a farmer just connected. A
    /// node with its own farmer would otherwise ask it for segment headers every poll.
    async fn dsn_if_alone(&self, quiet: &mut Option<Instant>, now: bool) -> bool {
        let all = self.p2p.handle.peers().await.unwrap_or_default();
        if all.is_empty() || !all.iter().all(acre_network::PeerInfo::is_farmer) {
            return false;
        }
        if !now && quiet.is_some_and(|since| since.elapsed() < DSN_RECHECK) {
            return true;
        }
        *quiet = None;
        match super::dsn_sync::run(&self.shared, &self.p2p, &all).await {
            Ok(0) => *quiet = Some(Instant::now()),
            Ok(_) => self.caught_up(),
            Err(error) => tracing::warn!(%error, "DSN sync stopped"),
        }
        true
    }

    /// Snap sync while it is pending (`pending` counts its failed attempts); returns whether block
    /// sync must wait for it (it failed and is tried again at the next poll). After a snapshot, a
    /// history too short for one, or [`MAX_SNAP_ATTEMPTS`] failures, full sync takes over for good.
    async fn snap(&self, pending: &mut Option<u32>) -> bool {
        let Some(failures) = *pending else {
            return false;
        };
        if self.shared.chain.best().0.number.0 != 0 {
            *pending = None;
            return false;
        }
        let peers: Vec<acre_network::PeerInfo> = self
            .p2p
            .handle
            .peers()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|peer| !peer.is_farmer())
            .collect();
        if peers.is_empty() {
            return false;
        }
        let outcome = super::snap_sync::run(&self.shared, &self.p2p, &peers).await;
        self.status().snapping = false;
        match outcome {
            Ok(super::snap_sync::Outcome::Installed { base, imported }) => {
                tracing::debug!(base = base.0, imported, "snapshot installed");
                *pending = None;
                false
            }
            Ok(super::snap_sync::Outcome::TooYoung { segments }) => {
                tracing::info!(
                    segments,
                    "the network's history is too short for snap sync: full sync"
                );
                *pending = None;
                false
            }
            Err(error) => {
                let failures = failures + 1;
                if failures >= MAX_SNAP_ATTEMPTS {
                    tracing::warn!(%error, failures, "snap sync failed; falling back to full sync");
                    *pending = None;
                    false
                } else {
                    tracing::warn!(%error, failures, "snap sync failed; trying again");
                    *pending = Some(failures);
                    true
                }
            }
        }
    }

    /// The peer's chain does not join ours within what this node can reorganise. If the peer's chain is
    /// the longer one, this node is the one on a fork below its archived history: it says so plainly
    /// (and `node_network` reports `forked`) until it is resynced.
    fn diverged(&self, peer: PeerId, fetched: usize) {
        let best = self.shared.chain.best().0.number.0;
        let mut status = self.status();
        if status.target > best {
            if status.forked.is_none() {
                tracing::error!(
                    %peer,
                    best,
                    peers_best = status.target,
                    "this node is on a fork below its archived history: the network's chain is longer and \
                     forks from this node's below what it can reorganise. Restart it with --resync to drop \
                     its chain and sync the network's"
                );
            }
            status.forked = Some(status.target);
        } else {
            tracing::warn!(
                %peer,
                fetched,
                "the peer's chain forks from ours below what can be reorganised, and is not longer: the peer \
                 is the one on a fork"
            );
        }
    }

    async fn fault(&self, peer: PeerId, fault: Fault) {
        tracing::warn!(%peer, reason = fault.reason(), "sync: peer faulted");
        let _ = self.p2p.handle.report(peer, fault).await;
    }

    fn decode(raw: &RawBlock) -> Option<(Header, Body)> {
        raw.decode().ok()
    }

    /// Imports blocks in order; returns how it ended.
    async fn import(&self, peer: PeerId, blocks: Vec<(Header, Body)>) -> Imported {
        for (header, body) in blocks {
            let number = header.unsealed.number;
            match self.shared.import(header, body).await {
                Ok(_) => {
                    self.shared.metrics.blocks_synced.inc();
                }
                Err(ImportError::AlreadyKnown(_)) => {}
                Err(ImportError::UnknownParent(parent)) => return Imported::UnknownParent(parent),
                Err(error) => {
                    if let Some(fault) = import_fault(&error) {
                        self.fault(peer, fault).await;
                    } else if matches!(
                        error,
                        ImportError::TooOld { .. } | ImportError::ForksArchivedHistory { .. }
                    ) {
                        tracing::debug!(%peer, %number, %error, "a block of the peer's chain cannot join ours");
                        self.diverged(peer, 0);
                    }
                    return Imported::Stopped;
                }
            }
        }
        Imported::All
    }

    /// Pulls the peer's best chain after our best block until caught up with it.
    async fn catch_up_with(&self, peer: PeerId) {
        let mut forks = 0;
        loop {
            let best = self.shared.chain.best().0;
            let Some(response) = self
                .ask(peer, BlockStart::Ascending(BlockNumber(best.number.0 + 1)))
                .await
            else {
                break;
            };
            if response.blocks.is_empty() {
                // Nothing above our best: a heavier branch of the same height would be a fork.
                if response.best_hash != best.hash
                    && response.best_number.0 + self.shared.chain.params().confirmation_depth > best.number.0
                    && !self.shared.chain.has_block(&response.best_hash)
                    && forks == 0
                {
                    forks += 1;
                    if self.branch(peer, response.best_hash).await {
                        continue;
                    }
                }
                break;
            }
            let Some(blocks) = response
                .blocks
                .iter()
                .map(Self::decode)
                .collect::<Option<Vec<_>>>()
            else {
                self.fault(peer, Fault::Undecodable).await;
                break;
            };
            match self.import(peer, blocks).await {
                Imported::All => {}
                Imported::UnknownParent(parent) if forks < 2 => {
                    forks += 1;
                    if !self.branch(peer, parent).await {
                        break;
                    }
                }
                Imported::UnknownParent(_) | Imported::Stopped => break,
            }
            if self.shared.chain.best().0.number >= response.best_number {
                break;
            }
        }
        self.caught_up();
    }

    /// Fetches the peer's branch ending at `hash` down to a block we have, and imports it. Returns
    /// whether the branch joined ours.
    async fn branch(&self, peer: PeerId, hash: BlockHash) -> bool {
        let mut next = hash;
        let mut branch: Vec<(Header, Body)> = Vec::new();
        for _ in 0..MAX_BRANCH_ROUNDS {
            if self.shared.chain.has_block(&next) {
                break;
            }
            let Some(response) = self.ask(peer, BlockStart::Descending(next)).await else {
                return false;
            };
            if response.blocks.is_empty() {
                return false;
            }
            for raw in &response.blocks {
                let Some((header, body)) = Self::decode(raw) else {
                    self.fault(peer, Fault::Undecodable).await;
                    return false;
                };
                if header.hash() != next {
                    // Not the chain asked for, newest first.
                    self.fault(peer, Fault::ProtocolViolation).await;
                    return false;
                }
                next = header.unsealed.parent_hash;
                branch.push((header, body));
                if self.shared.chain.has_block(&next) {
                    break;
                }
            }
        }
        if !self.shared.chain.has_block(&next) {
            self.diverged(peer, branch.len());
            return false;
        }
        branch.reverse();
        matches!(self.import(peer, branch).await, Imported::All)
    }
}

/// How importing a batch ended.
enum Imported {
    /// Every block was imported or already known.
    All,
    /// A block's parent is unknown.
    UnknownParent(BlockHash),
    /// A block was refused.
    Stopped,
}
