//! The node on the peer-to-peer network: gossip in and out, requests answered, and sync.
//!
//! One task ([`run`]) takes the network's events and the node's own announcements. Gossip is verified
//! before it is passed on (the network re-gossips only what [`Validity::Accept`]s):
//! - a block goes through the ordinary import pipeline; an unknown parent sends sync to fetch the branch
//!   from the peer that gossiped it;
//! - proof of time extends a follower's timekeeper after verification ([`Timekeeper::accept`]); a
//!   timekeeper gossips each slot it proves, with the slots before it so a peer that missed one catches up;
//! - transactions enter the pool.
//!
//! Each message is handled on its own task, at most [`CONCURRENT_GOSSIP`] at once, so a slow import never
//! stalls the event loop while the bound keeps a flood from spawning without limit (the network's own
//! queue and byte budget then drop what does not fit). Requests are answered by [`serve`]; sync is its own
//! task ([`sync`]).
//!
//! [`Timekeeper::accept`]: crate::timekeeper::Timekeeper::accept

mod dsn_sync;
mod pot_catch_up;
mod serve;
mod snap_sync;
pub mod sync;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use acre_consensus::PieceIndex;
use acre_consensus::blocks::{Body, Header};
use acre_consensus::chain_state::BlockError;
use acre_consensus::validation::HeaderError;
use acre_network::dsn::{LocalPieces, PieceGetter, Source};
use acre_network::messages::{self, MAX_POT_SLOTS, PotGossip, PotSlotProof, RawBlock};
use acre_network::{
    Address, ChainId, Fault, GossipMessage, NetworkConfig, NetworkEvent, NetworkHandle, PeerKey, Topic,
    Validity,
};
use acre_rpc_api::{NetworkInfo, PeerSummary};
use acre_storage::db::tables::Pieces;
use tokio::sync::{Semaphore, broadcast, mpsc, watch};

use acre_execution::ExecutionError;

use crate::error::{BundlePoolError, Error, ImportError, PoolError};
use crate::metrics::GossipLabel;
use crate::service::Shared;
use crate::timekeeper::Followed;

/// Gossip messages handled at once.
const CONCURRENT_GOSSIP: usize = 8;

/// How often a node without peers dials its bootstrap and reserved peers again (they may have started
/// after it, or restarted).
const REDIAL: Duration = Duration::from_secs(2);

/// How often, in [`REDIAL`] ticks, reserved peers that are not connected are dialled again.
const RESERVED_REDIAL_TICKS: u64 = 5;

/// How the node joins the network.
#[derive(Debug, Clone)]
pub struct P2pConfig {
    /// Addresses to listen on.
    pub listen: Vec<Address>,
    /// Peers to dial at start.
    pub bootstrap: Vec<Address>,
    /// Peers to stay connected to (dialled again whenever the connection drops).
    pub reserved: Vec<Address>,
    /// Most inbound connections.
    pub in_peers: u32,
    /// Most outbound connections.
    pub out_peers: u32,
    /// Keep the pieces of only the newest this many segments; older ones are fetched from the DSN when
    /// needed (all are kept when `None`).
    pub keep_piece_segments: Option<u64>,
    /// Find peers on the local network by multicast DNS.
    pub mdns: bool,
    /// Start an empty database by snap sync (from a recent block's state) when the network's history
    /// is long enough; full sync otherwise.
    pub snap: bool,
}

/// What the node tells the network of its own accord.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A block this node authored or was handed over RPC, imported.
    Block(Arc<(Header, Body)>),
    /// A transaction admitted to the pool from RPC.
    Transaction(Arc<Vec<u8>>),
    /// A bundle this node's operator produced (or admitted from RPC).
    Bundle(Arc<Vec<u8>>),
}

/// The node's network side, shared with RPC.
#[derive(Debug)]
pub struct P2p {
    /// The network.
    pub handle: NetworkHandle,
    /// Where sync stands.
    pub sync: Mutex<sync::SyncStatus>,
    /// Pieces from the DSN (those this node does not keep).
    pub pieces: PieceGetter,
    /// See [`P2pConfig::keep_piece_segments`].
    pub keep_piece_segments: Option<u64>,
}

/// The node's database as the DSN getter's local store.
struct StoredPieces<'a>(&'a Shared);

impl LocalPieces for StoredPieces<'_> {
    fn local_piece(&self, index: PieceIndex) -> Option<Vec<u8>> {
        self.0.chain.db().read().ok()?.get::<Pieces>(&index).ok()?
    }
}

impl P2p {
    /// Piece `index`: the stored one, else from the DSN (verified against its segment header); `None`
    /// if the segment is not archived yet or no peer has (or can rebuild) the piece.
    pub async fn piece(&self, shared: &Shared, index: PieceIndex) -> Option<Vec<u8>> {
        let segment = index.segment_index(shared.chain.params());
        let header = shared.chain.segment_header(segment.0)?;
        match self.pieces.get(index, &header, &StoredPieces(shared)).await {
            Ok((piece, source)) => {
                let label = match source {
                    Source::Local => "local",
                    Source::Peer(_) => "peer",
                    Source::Reconstructed => "reconstructed",
                };
                shared.metrics.dsn_piece(label);
                Some(piece.encode())
            }
            Err(error) => {
                tracing::warn!(%error, "piece not retrieved from the DSN");
                shared.metrics.dsn_piece("failed");
                None
            }
        }
    }
}

impl P2p {
    /// What `node_network` answers.
    pub async fn info(&self, shared: &Shared) -> NetworkInfo {
        let peers = self.handle.peers().await.unwrap_or_default();
        let listening = self.handle.listening().await.unwrap_or_default();
        let sync = self
            .sync
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .report(shared);
        NetworkInfo {
            peer_id: Some(self.handle.peer_id().to_string()),
            listening: listening.iter().map(ToString::to_string).collect(),
            peers: peers
                .into_iter()
                .map(|peer| PeerSummary {
                    peer_id: peer.peer.to_string(),
                    agent: peer.agent,
                    score: peer.score,
                })
                .collect(),
            timekeeper: shared.timekeeper.is_proving(),
            sync,
        }
    }
}

/// Starts the network with the node's peer key (kept in `data_dir`) and spawns the tasks that serve it.
pub async fn start(
    shared: &Arc<Shared>,
    config: P2pConfig,
    data_dir: &std::path::Path,
    newest: watch::Receiver<acre_consensus::SlotNumber>,
    shutdown: watch::Receiver<bool>,
) -> Result<(Arc<P2p>, Vec<tokio::task::JoinHandle<()>>), Error> {
    let key = PeerKey::load_or_create(data_dir).map_err(|error| Error::Network(error.to_string()))?;
    let chain = ChainId(shared.chain.genesis_hash().0);
    let mut network = NetworkConfig::new(chain, key);
    network.listen = config.listen.clone();
    network.bootstrap = config.bootstrap.clone();
    network.bootstrap.extend(config.reserved.iter().cloned());
    network.in_peers = config.in_peers;
    network.out_peers = config.out_peers;
    network.mdns = config.mdns;
    let (handle, events) = acre_network::start(network).map_err(|error| Error::Network(error.to_string()))?;
    tracing::info!(peer_id = %handle.peer_id(), timekeeper = shared.timekeeper.is_proving(), "network started");
    let p2p = Arc::new(P2p {
        handle: handle.clone(),
        sync: Mutex::new(sync::SyncStatus::default()),
        pieces: PieceGetter::new(handle.clone(), shared.chain.params().clone()),
        keep_piece_segments: config.keep_piece_segments,
    });
    let (hints, hint_receiver) = mpsc::channel(sync::HINT_QUEUE);
    // A snapshot carries accounts, not the domain registry (part of the state root of a chain with
    // domains): such a chain syncs in full.
    let snap = config.snap && shared.chain.domains().is_none();
    if config.snap && !snap {
        tracing::info!("snap sync does not carry the domain registry yet: this chain syncs in full");
    }
    let tasks = vec![
        tokio::spawn(run(
            Arc::clone(shared),
            handle.clone(),
            events,
            hints.clone(),
            config,
            newest,
            shutdown.clone(),
        )),
        tokio::spawn(sync::run(
            Arc::clone(shared),
            Arc::clone(&p2p),
            hint_receiver,
            snap,
            shutdown,
        )),
    ];
    Ok((p2p, tasks))
}

/// The event loop.
async fn run(
    shared: Arc<Shared>,
    network: NetworkHandle,
    mut events: mpsc::Receiver<NetworkEvent>,
    hints: mpsc::Sender<sync::Hint>,
    peers: P2pConfig,
    mut newest: watch::Receiver<acre_consensus::SlotNumber>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut outbound = shared.outbound.subscribe();
    let permits = Arc::new(Semaphore::new(CONCURRENT_GOSSIP));
    let mut redial = tokio::time::interval(REDIAL);
    redial.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks = 0u64;
    let proving = shared.timekeeper.is_proving();
    let catch_up = Arc::new(pot_catch_up::CatchUp::default());
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => {
                    let Ok(permit) = Arc::clone(&permits).acquire_owned().await else { return };
                    let (shared, network, hints) = (Arc::clone(&shared), network.clone(), hints.clone());
                    let catch_up = Arc::clone(&catch_up);
                    tokio::spawn(async move {
                        on_event(&shared, &network, &hints, &catch_up, event).await;
                        drop(permit);
                    });
                }
                None => return,
            },
            announced = outbound.recv() => match announced {
                Ok(Outbound::Block(block)) => {
                    let bytes = messages::encode(&RawBlock::new(&block.0, &block.1));
                    publish(&network, Topic::Blocks, bytes).await;
                }
                Ok(Outbound::Transaction(bytes)) => publish(&network, Topic::Transactions, bytes.to_vec()).await,
                Ok(Outbound::Bundle(bytes)) => publish(&network, Topic::Bundles, bytes.to_vec()).await,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "announcements lagged behind");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            changed = newest.changed(), if proving => {
                if changed.is_err() {
                    return;
                }
                if !shared.timekeeper.proved_newest() {
                    continue;
                }
                let slots = shared
                    .timekeeper
                    .recent(MAX_POT_SLOTS)
                    .into_iter()
                    .map(|(slot, seed, checkpoints)| PotSlotProof { slot, seed, checkpoints })
                    .collect();
                publish(&network, Topic::Pot, messages::encode(&PotGossip { slots })).await;
            }
            _ = redial.tick() => {
                ticks += 1;
                redial_peers(&network, &peers, ticks).await;
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// Dials the bootstrap and reserved peers that are not connected: every tick while no node is
/// connected (farmers that dialled us do not link us to the chain), every [`RESERVED_REDIAL_TICKS`]
/// ticks otherwise. A node started a moment before its bootstrap peer listened, that met other nodes
/// meanwhile, must still reach it: it may be the only one with the chain's clock.
async fn redial_peers(network: &NetworkHandle, config: &P2pConfig, ticks: u64) {
    if config.bootstrap.is_empty() && config.reserved.is_empty() {
        return;
    }
    // The first tick comes at once, when start-up already dialled them.
    if ticks <= 1 {
        return;
    }
    let peers = network.peers().await.unwrap_or_default();
    let alone = peers.iter().all(acre_network::PeerInfo::is_farmer);
    if !alone && !ticks.is_multiple_of(RESERVED_REDIAL_TICKS) {
        return;
    }
    for address in config.bootstrap.iter().chain(&config.reserved) {
        if !peers.iter().any(|peer| peer.reached_by(address)) {
            let _ = network.dial(address.clone()).await;
        }
    }
}

async fn publish(network: &NetworkHandle, topic: Topic, bytes: Vec<u8>) {
    if let Err(error) = network.publish(topic, bytes).await {
        // No peer yet, or the same message again: normal for a node alone.
        tracing::trace!(%error, "not published");
    }
}

async fn on_event(
    shared: &Arc<Shared>,
    network: &NetworkHandle,
    hints: &mpsc::Sender<sync::Hint>,
    catch_up: &Arc<pot_catch_up::CatchUp>,
    event: NetworkEvent,
) {
    match event {
        NetworkEvent::PeerIdentified { peer, agent } => {
            tracing::info!(%peer, %agent, "peer connected");
            count_peers(shared, network).await;
            // A farmer has no blocks to sync from, but may hold the archived history.
            let hint = if acre_network::is_farmer_agent(&agent) {
                sync::Hint::Farmer
            } else {
                sync::Hint::Peer(peer)
            };
            let _ = hints.try_send(hint);
        }
        NetworkEvent::PeerDisconnected { peer } => {
            tracing::info!(%peer, "peer disconnected");
            count_peers(shared, network).await;
        }
        NetworkEvent::PeerBanned { peer, reason } => {
            tracing::warn!(%peer, %reason, "peer banned");
        }
        NetworkEvent::Request(request) => serve::answer(shared, network, request).await,
        NetworkEvent::Gossip(message) => {
            let topic = message.topic;
            let validity = match topic {
                Topic::Blocks => on_block(shared, hints, &message).await,
                Topic::Pot => on_pot(shared, network, catch_up, &message).await,
                Topic::Transactions => on_transaction(shared, &message),
                Topic::Bundles => on_bundle(shared, &message),
            };
            if let Validity::Reject(fault) = validity {
                tracing::warn!(peer = %message.from, topic = topic.name(), reason = fault.reason(), "gossip refused");
                shared
                    .metrics
                    .gossip_rejected
                    .get_or_create(&GossipLabel {
                        topic: topic.name(),
                        reason: fault.label(),
                    })
                    .inc();
            }
            let _ = network.validate(message.reference, validity).await;
        }
    }
}

async fn count_peers(shared: &Shared, network: &NetworkHandle) {
    if let Ok(peers) = network.peers().await {
        shared.metrics.peers.set(peers.len() as u64);
    }
}

/// The fault an import error is the sender's, if it is.
pub(crate) fn import_fault(error: &ImportError) -> Option<Fault> {
    match error {
        ImportError::AlreadyKnown(_)
        | ImportError::UnknownParent(_)
        | ImportError::TooOld { .. }
        | ImportError::ForksArchivedHistory { .. }
        | ImportError::Equivocation(_)
        | ImportError::Storage(_) => None,
        ImportError::Decode(_)
        | ImportError::TransactionEncoding { .. }
        | ImportError::BundleEncoding { .. } => Some(Fault::Undecodable),
        ImportError::Block(BlockError::Header(HeaderError::ProofOfTime(_))) => Some(Fault::InvalidPot),
        ImportError::Genesis | ImportError::Block(_) | ImportError::Execution(_) => Some(Fault::InvalidBlock),
    }
}

async fn on_block(
    shared: &Arc<Shared>,
    hints: &mpsc::Sender<sync::Hint>,
    message: &GossipMessage,
) -> Validity {
    let decoded = messages::decode::<RawBlock>("gossiped block", &message.data, Topic::Blocks.max_size())
        .and_then(|raw| raw.decode());
    let (header, body) = match decoded {
        Ok(block) => block,
        Err(error) => {
            tracing::debug!(%error, peer = %message.from, "undecodable block gossip");
            return Validity::Reject(Fault::Undecodable);
        }
    };
    let parent = header.unsealed.parent_hash;
    match shared.import(header, body).await {
        Ok(_) => Validity::Accept,
        Err(ImportError::UnknownParent(_)) => {
            let _ = hints.try_send(sync::Hint::Branch(message.from, parent));
            Validity::Ignore
        }
        Err(error) => import_fault(&error).map_or(Validity::Ignore, Validity::Reject),
    }
}

async fn on_pot(
    shared: &Arc<Shared>,
    network: &NetworkHandle,
    catch_up: &Arc<pot_catch_up::CatchUp>,
    message: &GossipMessage,
) -> Validity {
    let gossip =
        match messages::decode::<PotGossip>("proof-of-time gossip", &message.data, PotGossip::MAX_SIZE)
            .and_then(|gossip| gossip.check_shape().map(|()| gossip))
        {
            Ok(gossip) => gossip,
            Err(_) => return Validity::Reject(Fault::Undecodable),
        };
    match pot_catch_up::accept(shared, &gossip.slots).await {
        Some(Ok(Followed::Extended(_) | Followed::Current)) => Validity::Accept,
        Some(Ok(Followed::Behind(next))) => {
            catch_up.start(shared, network, message.from, next);
            Validity::Ignore
        }
        Some(Ok(Followed::Unusable)) | None => {
            tracing::trace!(peer = %message.from, newest = %shared.timekeeper.newest_slot(), "proof-of-time gossip not usable");
            Validity::Ignore
        }
        Some(Err(invalid)) => {
            tracing::warn!(peer = %message.from, %invalid, "invalid proof of time");
            Validity::Reject(Fault::InvalidPot)
        }
    }
}

fn on_bundle(shared: &Shared, message: &GossipMessage) -> Validity {
    match shared.bundles.submit(&message.data, |bundle| {
        shared.chain.check_bundle_submission(bundle)
    }) {
        Ok(_) => Validity::Accept,
        Err(BundlePoolError::Undecodable(_)) => Validity::Reject(Fault::Undecodable),
        Err(BundlePoolError::Refused(ExecutionError::BadBundleSignature)) => {
            Validity::Reject(Fault::InvalidTransaction)
        }
        // An unknown operator or domain (our state may be behind), a duplicate, a full pool.
        Err(_) => Validity::Ignore,
    }
}

fn on_transaction(shared: &Shared, message: &GossipMessage) -> Validity {
    let chain = &shared.chain;
    let config = chain.spec().runtime_config(chain.genesis_hash());
    match shared.pool.submit_with(
        &message.data,
        &config,
        |address| chain.account(address),
        |tx| chain.check_call(tx),
    ) {
        Ok(_) => {
            shared.metrics.txpool_size.set(shared.pool.len() as u64);
            Validity::Accept
        }
        Err(PoolError::Undecodable(_)) => Validity::Reject(Fault::Undecodable),
        Err(PoolError::BadSignature(_) | PoolError::WrongChain { .. }) => {
            Validity::Reject(Fault::InvalidTransaction)
        }
        // Stale, underpriced, a full pool: the sender may have known better state than ours.
        Err(error) => {
            shared.metrics.txpool_rejected(error.reason());
            Validity::Ignore
        }
    }
}
