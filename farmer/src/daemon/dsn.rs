//! The farmer on the distributed storage network (spec 9): its own peer identity and port, a piece cache
//! kept current as history grows, pieces served from the cache and read back from plots, and pieces
//! fetched from the DSN when the node lacks them.
//!
//! ```text
//!  peers ──▶ requests ──▶ Piece: cache, else plots (a read decodes a record: one at a time)
//!                        CachedPiece: cache, else the peers nearest the piece's key
//!  chain view ──▶ cache upkeep: nearest pieces of the history ─▶ node RPC, else DSN ─▶ verify ─▶ cache
//! ```
//!
//! The farmer subscribes to no gossip topic: it neither needs nor relays blocks, proofs of time or
//! transactions, so its network carries only requests. The network starts when the farms are bound (the
//! first node connection names the chain), and dials the node's own peer-to-peer addresses besides any
//! `--bootstrap` peers, redialling while it has no peer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use acre_consensus::sectors::SectorId;
use acre_consensus::{
    Piece, PieceIndex, PieceOffset, ProtocolParams, SectorIndex, SegmentHeader, SegmentIndex,
};
use acre_network::dsn::{LocalPieces, NoLocalPieces, PieceGetter, Source};
use acre_network::messages::{
    self, MAX_SEGMENT_HEADERS, PieceRequest, PieceResponse, SegmentHeadersRequest, SegmentHeadersResponse,
};
use acre_network::{
    Address, ChainId, Fault, InboundRequest, NetworkConfig, NetworkEvent, NetworkHandle, PeerKey, Protocol,
};
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::{debug, info, warn};

use crate::daemon::cache::{CacheDir, PieceCache, Wanted};
use crate::daemon::connection::Node;
use crate::daemon::farms::{Farms, cache_capacity};
use crate::daemon::metrics::FarmerMetrics;
use crate::daemon::state::ChainView;
use crate::error::Error;

/// How the farmer joins the DSN.
#[derive(Debug, Clone)]
pub struct FarmerNetworkConfig {
    /// Addresses to listen on (default `/ip4/0.0.0.0/tcp/30533`).
    pub listen: Vec<Address>,
    /// Peers to dial besides the node's own addresses.
    pub bootstrap: Vec<Address>,
}

/// Requests answered at once; more are dropped (failing at the requester, who asks someone else).
const CONCURRENT_REQUESTS: usize = 32;
/// Pieces fetched for the cache at once (each may make the node, or this farmer, rebuild a piece from
/// half its segment: filling the cache must not crowd out the requests it serves).
const CACHE_FETCHES: usize = 2;
/// Requests waiting to read a piece back out of the plots, beyond which the answer is "not here".
const PLOT_READ_QUEUE: usize = 12;
/// How often the cache is checked against what it should hold even without new history (a wiped or
/// damaged file is refetched).
const CACHE_RECHECK: Duration = Duration::from_secs(20);
/// How often a farmer without peers redials.
const REDIAL: Duration = Duration::from_secs(2);

/// The farmer's handle on the DSN.
#[derive(Debug)]
pub struct Dsn {
    /// The network.
    pub handle: NetworkHandle,
    /// Retrieves pieces from peers (or rebuilds them).
    pub getter: PieceGetter,
    /// The piece cache over all farms.
    pub cache: Arc<PieceCache>,
    /// The node's peer-to-peer addresses, as it last told them.
    node_addresses: Mutex<Vec<Address>>,
    bootstrap: Vec<Address>,
}

impl LocalPieces for PieceCache {
    fn local_piece(&self, index: PieceIndex) -> Option<Vec<u8>> {
        self.get(index)
    }
}

impl Dsn {
    /// Records the node's peer-to-peer addresses (from each connection's `farmer_info`).
    pub fn set_node_addresses(&self, addresses: &[String]) {
        let parsed = addresses
            .iter()
            .filter_map(|text| match text.parse::<Address>() {
                Ok(address) => Some(address),
                Err(error) => {
                    warn!(target: "acre::dsn", address = %text, %error, "the node gave an unusable peer-to-peer address");
                    None
                }
            })
            .collect();
        *self.node_addresses.lock().unwrap_or_else(PoisonError::into_inner) = parsed;
    }

    fn dial_targets(&self) -> Vec<Address> {
        let mut targets = self.bootstrap.clone();
        targets.extend(
            self.node_addresses
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .cloned(),
        );
        targets
    }

    /// Piece `index` of the history `header` belongs to, from the cache, peers, or rebuilt.
    pub async fn piece(&self, index: PieceIndex, header: &SegmentHeader) -> Result<(Piece, Source), Error> {
        Ok(self.getter.get(index, header, self.cache.as_ref()).await?)
    }
}

/// What the DSN tasks work with.
#[derive(Debug)]
pub struct DsnSetup {
    /// The chain.
    pub genesis_hash: [u8; 32],
    /// The farms (their first directory holds the peer key).
    pub farms: Arc<Farms>,
    /// Each farm's size, as configured.
    pub sizes: Vec<u64>,
    /// The share of each farm for the cache, in percent.
    pub cache_percentage: u8,
    /// The known history.
    pub chain: watch::Receiver<Arc<ChainView>>,
    /// The current node connection.
    pub node: watch::Receiver<Option<Node>>,
    /// Set on shutdown.
    pub stop: watch::Receiver<bool>,
    /// Where serving and caching are counted.
    pub metrics: Arc<FarmerMetrics>,
}

/// Starts the network and its tasks (serving, cache upkeep, redialling); they end on shutdown.
pub async fn start(config: &FarmerNetworkConfig, setup: DsnSetup) -> Result<Arc<Dsn>, Error> {
    let farms = setup.farms.clone();
    let first_farm = farms.farms[0].dir().to_owned();
    let dirs: Vec<CacheDir> = farms
        .farms
        .iter()
        .zip(&setup.sizes)
        .map(|(farm, size)| CacheDir {
            dir: farm.dir().join(crate::daemon::cache::CACHE_DIR),
            capacity: cache_capacity(
                &farms.params,
                *size,
                farm.read().header().sector_count,
                setup.cache_percentage,
            ),
        })
        .collect();
    let (key, cache) = tokio::task::spawn_blocking(move || {
        let key = PeerKey::load_or_create(&first_farm)?;
        Ok::<_, Error>((key, PieceCache::open(dirs)?))
    })
    .await
    .map_err(|error| Error::Task(error.to_string()))??;
    let mut network = NetworkConfig::new(ChainId(setup.genesis_hash), key);
    network.listen = config.listen.clone();
    network.gossip = false;
    network.agent = format!("{}/{}", acre_network::FARMER_AGENT, env!("CARGO_PKG_VERSION"));
    let (handle, events) = acre_network::start(network)?;
    let cache = Arc::new(cache);
    info!(
        target: "acre::dsn",
        peer_id = %handle.peer_id(),
        cache_pieces = cache.len(),
        cache_capacity = cache.capacity(),
        "on the distributed storage network"
    );
    let dsn = Arc::new(Dsn {
        getter: PieceGetter::new(handle.clone(), farms.params.clone()),
        handle,
        cache,
        node_addresses: Mutex::new(Vec::new()),
        bootstrap: config.bootstrap.clone(),
    });
    tokio::spawn(serve(
        dsn.clone(),
        farms.clone(),
        events,
        setup.metrics.clone(),
        setup.stop.clone(),
        setup.chain.clone(),
    ));
    tokio::spawn(keep_cache(
        dsn.clone(),
        farms.params.clone(),
        setup.chain,
        setup.node,
        setup.stop.clone(),
        setup.metrics,
    ));
    tokio::spawn(redial(dsn.clone(), setup.stop));
    Ok(dsn)
}

/// Resolves once `stop` is set (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

async fn redial(dsn: Arc<Dsn>, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(REDIAL);
    for tick in 0u64.. {
        tokio::select! {
            () = stopped(&mut stop) => return,
            _ = ticker.tick() => {}
        }
        // Every tick while alone, every fifth otherwise: the node's and the bootstrap peers' addresses
        // that reach no connected peer are dialled again.
        let peers = dsn.handle.peers().await.unwrap_or_default();
        if !peers.is_empty() && !tick.is_multiple_of(5) {
            continue;
        }
        for address in dsn.dial_targets() {
            if peers.iter().any(|peer| peer.reached_by(&address)) {
                continue;
            }
            if let Err(error) = dsn.handle.dial(address.clone()).await {
                debug!(target: "acre::dsn", %address, %error, "dial failed");
            }
        }
    }
}

/// Where a plotted piece is.
#[derive(Debug, Clone, Copy)]
struct Location {
    farm: usize,
    sector: SectorIndex,
    offset: PieceOffset,
}

/// Where each plotted piece is.
type Locations = Arc<HashMap<PieceIndex, Location>>;

/// Which plotted sector holds each piece, rebuilt when a farm changed (with the farms' generation it was
/// built for).
#[derive(Default)]
struct PlotIndex {
    built: Mutex<Option<(u64, Locations)>>,
}

impl PlotIndex {
    /// The index of the farms' current plots: the one built, or a new one if the plots changed since.
    /// The lock is held only to look and to store, never across the rebuild (which reads every farm's
    /// sector metadata): concurrent readers of an up-to-date index never wait for it.
    fn current(&self, farms: &Farms) -> Locations {
        let generation = farms.generation();
        if let Some((built, index)) = &*self.built.lock().unwrap_or_else(PoisonError::into_inner)
            && *built == generation
        {
            return index.clone();
        }
        let index = Arc::new(Self::build(farms));
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        // Two rebuilds may race: the newer generation stays.
        if built.as_ref().is_none_or(|(stored, _)| *stored <= generation) {
            *built = Some((generation, index.clone()));
        }
        index
    }

    fn build(farms: &Farms) -> HashMap<PieceIndex, Location> {
        let mut index = HashMap::new();
        for (farm_index, shared) in farms.farms.iter().enumerate() {
            if shared.disabled().is_some() {
                continue;
            }
            let farm = shared.read();
            for metadata in farm.plotted() {
                let sector_id = SectorId::new(
                    &farms.public_key_hash,
                    metadata.sector_index,
                    metadata.history_size,
                );
                for offset in 0..metadata.pieces_in_sector {
                    let offset = PieceOffset(offset);
                    let piece = sector_id.piece_index(&farms.params, offset, metadata.history_size);
                    index.entry(piece).or_insert(Location {
                        farm: farm_index,
                        sector: metadata.sector_index,
                        offset,
                    });
                }
            }
        }
        index
    }
}

/// Reads piece `index` back out of the plots, if a plotted sector holds it. Blocking (a record is decoded).
fn read_from_plots(farms: &Farms, plots: &PlotIndex, index: PieceIndex) -> Option<Piece> {
    let location = *plots.current(farms).get(&index)?;
    let farm = farms.farms[location.farm].read();
    let metadata = farm.sector(location.sector)?;
    let sector_id = SectorId::new(
        &farms.public_key_hash,
        metadata.sector_index,
        metadata.history_size,
    );
    // The sector may have been replotted since the index was built: only its own piece will do.
    if sector_id.piece_index(&farms.params, location.offset, metadata.history_size) != index {
        return None;
    }
    match crate::reading::read_piece(
        &farms.params,
        &sector_id,
        metadata,
        &farm.reader(location.sector),
        location.offset,
    ) {
        Ok(piece) => Some(piece),
        Err(error) => {
            warn!(target: "acre::dsn", piece = index.0, farm = location.farm, sector = location.sector.0, %error, "cannot read a piece back from the plot");
            None
        }
    }
}

async fn serve(
    dsn: Arc<Dsn>,
    farms: Arc<Farms>,
    mut events: mpsc::Receiver<NetworkEvent>,
    metrics: Arc<FarmerMetrics>,
    mut stop: watch::Receiver<bool>,
    chain: watch::Receiver<Arc<ChainView>>,
) {
    let permits = Arc::new(Semaphore::new(CONCURRENT_REQUESTS));
    // Reading from a plot builds a proof-of-space table: one at a time, on a blocking thread, with at
    // most `PLOT_READ_QUEUE` requests waiting for their turn.
    let plot_reads = Arc::new((Semaphore::new(PLOT_READ_QUEUE), Semaphore::new(1)));
    let plots = Arc::new(PlotIndex::default());
    loop {
        let event = tokio::select! {
            () = stopped(&mut stop) => return,
            event = events.recv() => match event {
                Some(event) => event,
                None => return,
            },
        };
        match event {
            NetworkEvent::Request(request) => {
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    debug!(target: "acre::dsn", peer = %request.peer, "too many requests at once; dropping one");
                    continue;
                };
                let (dsn, farms, plots, plot_reads, metrics) = (
                    dsn.clone(),
                    farms.clone(),
                    plots.clone(),
                    plot_reads.clone(),
                    metrics.clone(),
                );
                let view = chain.borrow().clone();
                tokio::spawn(async move {
                    answer(&dsn, farms, plots, &plot_reads, &metrics, &view, request).await;
                    drop(permit);
                });
            }
            NetworkEvent::PeerIdentified { peer, agent } => {
                debug!(target: "acre::dsn", %peer, %agent, "peer identified");
                metrics.set_peers(dsn.handle.peer_ids().await.len());
            }
            NetworkEvent::PeerBanned { peer, reason } => {
                warn!(target: "acre::dsn", %peer, %reason, "peer banned");
            }
            NetworkEvent::PeerDisconnected { .. } => {
                metrics.set_peers(dsn.handle.peer_ids().await.len());
            }
            NetworkEvent::Gossip(_) => {}
        }
    }
}

async fn answer(
    dsn: &Dsn,
    farms: Arc<Farms>,
    plots: Arc<PlotIndex>,
    plot_reads: &(Semaphore, Semaphore),
    metrics: &FarmerMetrics,
    chain: &ChainView,
    request: InboundRequest,
) {
    let InboundRequest {
        peer,
        protocol,
        data,
        responder,
    } = request;
    if protocol == Protocol::SegmentHeaders {
        match segment_headers(chain, &data) {
            Ok(response) => {
                let _ = dsn.handle.respond(responder, response).await;
            }
            Err(fault) => {
                let _ = dsn.handle.report(peer, fault).await;
            }
        }
        return;
    }
    if !matches!(protocol, Protocol::Piece | Protocol::CachedPiece) {
        // Blocks and state are the nodes' to serve; the request fails at the asker.
        return;
    }
    let index = match messages::decode::<PieceRequest>("piece request", &data, protocol.max_request()) {
        Ok(request) => PieceIndex(request.index),
        Err(_) => {
            let _ = dsn.handle.report(peer, Fault::Undecodable).await;
            return;
        }
    };
    let cache = dsn.cache.clone();
    let mut piece = tokio::task::spawn_blocking(move || cache.get(index))
        .await
        .ok()
        .flatten();
    if piece.is_some() {
        metrics.served("cache");
    } else if protocol == Protocol::Piece {
        let (queue, reading) = plot_reads;
        let lookup = (farms.clone(), plots.clone());
        let held = tokio::task::spawn_blocking(move || {
            let (farms, plots) = lookup;
            plots.current(&farms).contains_key(&index)
        })
        .await
        .unwrap_or(false);
        // Past the queue's bound the answer is "not here" at once: the asker moves on to another peer
        // (or rebuilds the piece) instead of waiting out its timeout.
        if held
            && let Ok(_queued) = queue.try_acquire()
            && let Ok(_reading) = reading.acquire().await
        {
            piece = tokio::task::spawn_blocking(move || read_from_plots(&farms, &plots, index))
                .await
                .ok()
                .flatten()
                .map(|piece| piece.encode());
            if piece.is_some() {
                metrics.served("plot");
            }
        }
    }
    debug!(target: "acre::dsn", %peer, piece = index.0, protocol = protocol.name(), found = piece.is_some(), "piece request");
    let answer = if protocol == Protocol::CachedPiece {
        // Not cached here: the answer names the peers this farmer knows nearest to the piece's key.
        acre_network::dsn::cached_piece_answer(&dsn.handle, index, piece, peer).await
    } else {
        messages::encode(&PieceResponse { piece })
    };
    let _ = dsn.handle.respond(responder, answer).await;
}

/// Answers a segment-headers request from the farmer's view of the history (what a node without peers
/// that have blocks starts DSN sync from).
fn segment_headers(chain: &ChainView, data: &[u8]) -> Result<Vec<u8>, Fault> {
    let request: SegmentHeadersRequest = messages::decode(
        "segment-headers request",
        data,
        Protocol::SegmentHeaders.max_request(),
    )
    .map_err(|_| Fault::Undecodable)?;
    let count = chain.segment_count();
    let headers: Vec<SegmentHeader> = match request {
        SegmentHeadersRequest::Indices(indices) => {
            if indices.len() > MAX_SEGMENT_HEADERS {
                return Err(Fault::ProtocolViolation);
            }
            indices
                .iter()
                .filter_map(|index| chain.header(SegmentIndex(*index)).copied())
                .collect()
        }
        SegmentHeadersRequest::Last(wanted) => {
            let wanted = u64::from(wanted).min(MAX_SEGMENT_HEADERS as u64).min(count);
            (count - wanted..count)
                .filter_map(|index| chain.header(SegmentIndex(index)).copied())
                .collect()
        }
    };
    Ok(messages::encode(&SegmentHeadersResponse { headers }))
}

/// Keeps the cache holding the pieces nearest the farmer's key: on every new segment and every
/// [`CACHE_RECHECK`], evicts what is no longer wanted and fetches what is missing, nearest first.
async fn keep_cache(
    dsn: Arc<Dsn>,
    params: ProtocolParams,
    mut chain: watch::Receiver<Arc<ChainView>>,
    node: watch::Receiver<Option<Node>>,
    mut stop: watch::Receiver<bool>,
    metrics: Arc<FarmerMetrics>,
) {
    let own_key = acre_network::dsn::peer_key(&dsn.handle.peer_id());
    let mut wanted = Wanted::new(own_key, dsn.cache.capacity());
    let mut reported_full = false;
    loop {
        let view = chain.borrow_and_update().clone();
        if view.segment_count() == 0 {
            // Not synchronised with the node yet: judging the cache now would evict all of it.
            tokio::select! {
                () = stopped(&mut stop) => return,
                changed = chain.changed() => if changed.is_err() { return },
            }
            continue;
        }
        let history_pieces = view.segment_count() * u64::from(params.pieces_per_segment());
        wanted.grow_to(history_pieces);
        let (missing, mut unwanted) = dsn.cache.plan(&wanted);
        // A piece past the history this farmer knows is from segments it has not heard of yet (it
        // restarted, say): whether it stays is decided once they are known.
        unwanted.retain(|index| index.0 < history_pieces);
        if !unwanted.is_empty() {
            let cache = dsn.cache.clone();
            let _ =
                tokio::task::spawn_blocking(move || unwanted.iter().for_each(|index| cache.evict(*index)))
                    .await;
        }
        let mut fetches = tokio::task::JoinSet::new();
        let mut pending = missing.into_iter();
        loop {
            while fetches.len() < CACHE_FETCHES
                && let Some(index) = pending.next()
            {
                let (dsn, params, view) = (dsn.clone(), params.clone(), view.clone());
                let node = node.borrow().clone();
                fetches.spawn(async move { (index, fill(&dsn, &params, &view, node, index).await) });
            }
            let joined = tokio::select! {
                () = stopped(&mut stop) => return,
                joined = fetches.join_next() => joined,
            };
            let Some(Ok((index, result))) = joined else {
                if fetches.is_empty() {
                    break;
                }
                continue;
            };
            if let Err(error) = result {
                debug!(target: "acre::dsn", piece = index.0, %error, "cannot cache a piece yet");
            }
        }
        metrics.set_cache(dsn.cache.len(), dsn.cache.capacity());
        let full = dsn.cache.len() >= wanted.len();
        if full && !reported_full && !wanted.is_empty() {
            info!(target: "acre::dsn", pieces = dsn.cache.len(), history_pieces = view.segment_count() * u64::from(params.pieces_per_segment()), "piece cache filled");
        }
        reported_full = full;
        tokio::select! {
            () = stopped(&mut stop) => return,
            changed = chain.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(CACHE_RECHECK) => {}
        }
    }
}

/// Fetches piece `index` for the cache: from the node if it has it, else from the DSN; verified either way.
async fn fill(
    dsn: &Dsn,
    params: &ProtocolParams,
    view: &ChainView,
    node: Option<Node>,
    index: PieceIndex,
) -> Result<(), Error> {
    let segment = index.segment_index(params);
    let header = *view.header(segment).ok_or(Error::UnknownSegment(segment))?;
    let from_node = match node {
        Some(node) => match node.piece(params, index).await {
            Ok(piece) => {
                let params = params.clone();
                tokio::task::spawn_blocking(move || {
                    piece
                        .verify(&params, &header.segment_root, index.position(&params))
                        .map(|()| piece)
                })
                .await
                .map_err(|error| Error::Task(error.to_string()))?
                .map_err(|reason| {
                    warn!(target: "acre::dsn", piece = index.0, %reason, "the node sent an invalid piece");
                })
                .ok()
            }
            Err(_) => None,
        },
        None => None,
    };
    let piece = match from_node {
        Some(piece) => piece,
        None => dsn.getter.get(index, &header, &NoLocalPieces).await?.0,
    };
    let cache = dsn.cache.clone();
    tokio::task::spawn_blocking(move || cache.insert(index, &piece.encode()))
        .await
        .map_err(|error| Error::Task(error.to_string()))??;
    Ok(())
}
