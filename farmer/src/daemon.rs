//! The farming daemon: the library pieces composed with a node connection and disks.
//!
//! ```text
//!            ┌──────── connection loop (this module) ────────┐
//!  node ws ──┤ info, segment headers ──▶ ChainView (watch) ──┼──▶ plotter: fetch pieces ▸ plot (rayon) ▸ write
//!            │ slot info ──▶ farming: audit ▸ prove ▸ submit │
//!            │ seal requests ──▶ sign ▸ submit               │
//!            └───────────────────────────────────────────────┘
//! ```
//!
//! [`run`] connects (retrying with a backoff of 0.5 s doubling to 30 s), opens the farms for the chain the
//! node serves on the first connection, then spawns the plotting loop and answers subscriptions until the
//! WebSocket drops, when it reconnects and resumes; the farms stay open throughout. The plotter learns the
//! current connection and history through `watch` channels, so a reconnect never interrupts a plotted
//! sector's write, and farming starts as soon as the first sector is on disk.

pub mod benchmark;
pub mod cache;
pub mod connection;
pub mod dsn;
pub mod farming;
pub mod farms;
pub mod identity;
pub mod ledger;
pub mod metrics;
pub mod node_source;
pub mod plotter;
pub mod progress;
pub mod recorder;
pub mod scrub;
pub mod sealing;
pub mod state;
pub mod why;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use acre_consensus::hashing::Blake3Hash;
use acre_consensus::sectors::PublicKey;
use acre_rpc_api::FarmerApiClient;
use ed25519_dalek::SigningKey;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

pub use identity::load_or_create_identity;

use crate::daemon::connection::{Node, decode_segment_header};
use crate::daemon::farming::{Farming, FarmingSetup};
use crate::daemon::farms::Farms;
use crate::daemon::ledger::{LedgerFile, Snapshot};
use crate::daemon::plotter::Plotter;
use crate::daemon::recorder::Recorder;
use crate::daemon::state::{Applied, Backoff, ChainView, SectorState, sector_state};
use crate::error::Error;

/// Most segments a node may claim beyond the farmer's known history. A node claiming more is lying or
/// broken: 2^20 segments are 128 TiB of mainnet history, far beyond any real chain, while syncing an
/// unbounded claim would hold an unbounded number of headers.
pub const MAX_SEGMENTS_AHEAD: u64 = 1 << 20;

/// What the daemon farms, for whom, against which node.
#[derive(Debug)]
pub struct DaemonConfig {
    /// The node's WebSocket RPC address, e.g. `ws://127.0.0.1:9945`.
    pub node_url: String,
    /// Where block rewards go.
    pub reward_address: [u8; 32],
    /// The farmer's key: sectors are bound to its public key, and it seals blocks.
    pub key: SigningKey,
    /// Farm directories and their sizes in bytes.
    pub farms: Vec<(PathBuf, u64)>,
    /// Threads to plot with (default: all cores).
    pub plotting_threads: Option<usize>,
    /// Whether to draw progress bars (otherwise progress is logged).
    pub show_progress: bool,
    /// Where to serve `/metrics` and `/health` (`None`: not at all).
    pub metrics_address: Option<SocketAddr>,
    /// How often each farm's ledger gets its activity line.
    pub ledger_interval: Duration,
    /// The farmer's place on the distributed storage network (`None`: not on it, and no piece cache).
    pub network: Option<dsn::FarmerNetworkConfig>,
    /// The share of each new farm kept for the piece cache, in percent (an existing farm keeps its size).
    pub cache_percentage: u8,
}

/// The default [`DaemonConfig::ledger_interval`].
pub const LEDGER_INTERVAL: Duration = Duration::from_secs(10);

/// How a session with one connection ended.
enum SessionEnd {
    Shutdown,
    Disconnected,
}

/// State that outlives connections.
struct Daemon {
    config: DaemonConfig,
    pool: Arc<rayon::ThreadPool>,
    farming_pool: Arc<rayon::ThreadPool>,
    recorder: Arc<Recorder>,
    plotting: Arc<AtomicBool>,
    chain: watch::Sender<Arc<ChainView>>,
    node: watch::Sender<Option<Node>>,
    stop: watch::Sender<bool>,
    /// Set on the first connection: the chain the farms are bound to, and the running loops.
    bound: Option<Bound>,
}

struct Bound {
    genesis_hash: Blake3Hash,
    params: acre_consensus::ProtocolParams,
    farming: Farming,
    farms: Arc<Farms>,
    plotter: JoinHandle<Result<(), Error>>,
    dsn: Option<Arc<dsn::Dsn>>,
}

/// Runs the daemon until `shutdown` resolves (then returns `Ok(())`) or a fatal error (a farm that belongs
/// to another chain or key, a node that switched chains, a failing disk).
pub async fn run(config: DaemonConfig, shutdown: impl Future<Output = ()> + Send) -> Result<(), Error> {
    if config.farms.is_empty() {
        return Err(Error::InvalidConfig("no farms given".into()));
    }
    let pool = plotting_pool(config.plotting_threads)?;
    let farming_pool = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("acre-farming-{i}"))
        .build()
        .map_err(|error| Error::InvalidConfig(format!("farming thread pool: {error}")))?;
    let recorder = Arc::new(Recorder::new(config.farms.len()));
    let metrics_server = match config.metrics_address {
        Some(address) => {
            let listener = metrics::bind(address)
                .await
                .map_err(Error::io(format!("listening for metrics on {address}")))?;
            info!(target: "acre::farmer", address = %listener.local_addr().unwrap_or(address), "serving /metrics and /health");
            Some(listener)
        }
        None => None,
    };
    let stop = watch::Sender::new(false);
    if let Some(listener) = metrics_server {
        tokio::spawn(metrics::serve(
            listener,
            recorder.metrics.clone(),
            config.farms.len(),
            stop.subscribe(),
        ));
    }
    let mut daemon = Daemon {
        config,
        pool: Arc::new(pool),
        farming_pool: Arc::new(farming_pool),
        recorder,
        plotting: Arc::new(AtomicBool::new(false)),
        chain: watch::Sender::new(Arc::new(ChainView::default())),
        node: watch::Sender::new(None),
        stop,
        bound: None,
    };
    let mut shutdown = std::pin::pin!(shutdown);
    let result = daemon.connection_loop(&mut shutdown).await;
    daemon.stop.send_replace(true);
    daemon.node.send_replace(None);
    daemon.flush_ledgers().await;
    if let Some(bound) = daemon.bound.take() {
        match bound.plotter.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) if result.is_ok() => return Err(error),
            Ok(Err(error)) => warn!(target: "acre::farmer", %error, "plotter failed during shutdown"),
            Err(error) => warn!(target: "acre::farmer", %error, "plotter task failed"),
        }
    }
    info!(target: "acre::farmer", "farmer stopped");
    result
}

impl Daemon {
    async fn connection_loop(
        &mut self,
        shutdown: &mut std::pin::Pin<&mut (impl Future<Output = ()> + Send)>,
    ) -> Result<(), Error> {
        let mut backoff = Backoff::new();
        let url = self.config.node_url.clone();
        let mut flush = tokio::time::interval(self.config.ledger_interval);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let attempt = tokio::select! {
                () = shutdown.as_mut() => return Ok(()),
                result = self.plotter_failed() => return result,
                node = Node::connect(&url) => node,
            };
            let outcome = match attempt {
                Ok(node) => {
                    info!(target: "acre::farmer", %url, "connected to the node");
                    metrics::set_connected(&self.recorder.metrics, true);
                    self.session(&node, shutdown, &mut backoff, &mut flush).await
                }
                Err(error) => Err(error),
            };
            metrics::set_connected(&self.recorder.metrics, false);
            self.node.send_replace(None);
            match outcome {
                Ok(SessionEnd::Shutdown) => return Ok(()),
                Ok(SessionEnd::Disconnected) => {
                    warn!(target: "acre::farmer", "connection to the node lost");
                }
                Err(error) if is_fatal(&error) => return Err(error),
                Err(error) => warn!(target: "acre::farmer", %error, "node connection failed"),
            }
            let delay = backoff.next_delay();
            info!(target: "acre::farmer", retry_in = ?delay, "reconnecting to the node");
            let retry = tokio::time::sleep(delay);
            tokio::pin!(retry);
            loop {
                tokio::select! {
                    () = shutdown.as_mut() => return Ok(()),
                    result = self.plotter_failed() => return result,
                    _ = flush.tick() => self.flush_ledgers().await,
                    () = &mut retry => break,
                }
            }
        }
    }

    /// Resolves if the plotting loop ended on its own (a fatal error); pending while it runs.
    async fn plotter_failed(&mut self) -> Result<(), Error> {
        let Some(bound) = self.bound.as_mut() else {
            return std::future::pending().await;
        };
        let result = (&mut bound.plotter)
            .await
            .map_err(|error| Error::Task(error.to_string()))
            .and_then(|result| result);
        self.bound = None;
        result.and(Err(Error::Task("the plotting loop ended unexpectedly".into())))
    }

    /// Appends each farm's activity since the last flush to its ledger (on a blocking thread: it syncs
    /// the file). A ledger that cannot be written is logged, never fatal: farming matters more.
    async fn flush_ledgers(&self) {
        let Some(bound) = &self.bound else { return };
        let farms = bound.farms.clone();
        let recorder = self.recorder.clone();
        let chain = self.chain.borrow().clone();
        let sizes: Vec<u64> = self.config.farms.iter().map(|(_, size)| *size).collect();
        let written = tokio::task::spawn_blocking(move || {
            let mut reports = Vec::new();
            for (index, shared) in farms.farms.iter().enumerate() {
                let snapshot = snapshot(&farms, &chain, index);
                if let Some(plotted) = snapshot.as_ref().map(|s| i64::from(s.plotted)) {
                    metrics::FarmerMetrics::farm_gauge(&recorder.metrics.sectors_plotted, index).set(plotted);
                }
                reports.push(farm_report(&recorder, index, snapshot.as_ref(), sizes.get(index), shared));
                let Some(tally) = recorder.take(index, snapshot) else { continue };
                if let Err(error) = LedgerFile::in_farm(shared.dir()).append(&tally) {
                    warn!(target: "acre::farmer", farm = %shared.dir().display(), %error, "cannot write the farm's ledger");
                }
            }
            reports
        })
        .await;
        let reports = match written {
            Ok(reports) => reports,
            Err(error) => {
                warn!(target: "acre::farmer", %error, "ledger task failed");
                return;
            }
        };
        let Some(node) = self.node.borrow().clone() else {
            return;
        };
        let status = acre_rpc_api::FarmerStatus {
            public_key: acre_rpc_api::Hex32(bound.farms.public_key.0),
            farms: reports,
        };
        // In the background: a slow node must not hold up farming.
        tokio::spawn(async move {
            if let Err(error) = node.report_status(status).await {
                tracing::debug!(target: "acre::farmer", %error, "status report not taken");
            }
        });
    }

    /// Binds the farms on first contact, or checks the node still serves the same chain.
    async fn bind(&mut self, info: &acre_rpc_api::FarmerInfo) -> Result<(), Error> {
        let genesis_hash = Blake3Hash(info.genesis_hash.0);
        if let Some(bound) = &self.bound {
            if bound.genesis_hash != genesis_hash {
                return Err(Error::ChainChanged { what: "genesis" });
            }
            if bound.params != info.params {
                return Err(Error::ChainChanged {
                    what: "protocol parameter set",
                });
            }
            if let Some(dsn) = &bound.dsn {
                dsn.set_node_addresses(&info.p2p_addresses);
            }
            return Ok(());
        }
        info.params.validate().map_err(|error| Error::BadNodeData {
            what: "protocol parameter set",
            reason: error.to_string(),
        })?;
        let public_key = PublicKey(self.config.key.verifying_key().to_bytes());
        // Creating a farm allocates its file, and opening one may wait for a previous writer's lock:
        // blocking work, off the async threads.
        let (params, specs) = (info.params.clone(), self.config.farms.clone());
        let cache_percentage = self.config.cache_percentage;
        let farms = tokio::task::spawn_blocking(move || {
            Farms::open(&params, genesis_hash, public_key, &specs, cache_percentage)
        })
        .await
        .map_err(|error| Error::Task(error.to_string()))?;
        let farms = Arc::new(farms?);
        let dsn = match &self.config.network {
            Some(network) => {
                let setup = dsn::DsnSetup {
                    genesis_hash: genesis_hash.0,
                    farms: farms.clone(),
                    sizes: self.config.farms.iter().map(|(_, size)| *size).collect(),
                    cache_percentage,
                    chain: self.chain.subscribe(),
                    node: self.node.subscribe(),
                    stop: self.stop.subscribe(),
                    metrics: self.recorder.metrics.clone(),
                };
                let dsn = dsn::start(network, setup).await?;
                dsn.set_node_addresses(&info.p2p_addresses);
                Some(dsn)
            }
            None => None,
        };
        for shared in &farms.farms {
            let farm = shared.read();
            info!(
                target: "acre::farmer",
                farm = %shared.dir().display(),
                plotted = farm.plotted().count(),
                sectors = farm.header().sector_count,
                "farm opened"
            );
        }
        for (index, shared) in farms.farms.iter().enumerate() {
            let farm = shared.read();
            let gauge = |family| metrics::FarmerMetrics::farm_gauge(family, index);
            gauge(&self.recorder.metrics.sectors).set(i64::from(farm.header().sector_count));
            gauge(&self.recorder.metrics.sectors_plotted).set(farm.plotted().count() as i64);
        }
        let wake = Arc::new(tokio::sync::Notify::new());
        let scrub = (
            farms.clone(),
            self.recorder.clone(),
            wake.clone(),
            self.stop.subscribe(),
        );
        tokio::task::spawn_blocking(move || scrub::scrub_farms(&scrub.0, &scrub.1, &scrub.2, &scrub.3));
        let plotter = Plotter {
            wake,
            farms: farms.clone(),
            chain: self.chain.subscribe(),
            node: self.node.subscribe(),
            stop: self.stop.subscribe(),
            pool: self.pool.clone(),
            show_progress: self.config.show_progress,
            recorder: self.recorder.clone(),
            plotting: self.plotting.clone(),
            dsn: dsn.clone(),
        };
        let setup = FarmingSetup {
            recorder: self.recorder.clone(),
            pool: self.farming_pool.clone(),
            plotting: self.plotting.clone(),
            plotting_threads: self.pool.current_num_threads() as u32,
        };
        self.bound = Some(Bound {
            genesis_hash,
            params: info.params.clone(),
            farming: Farming::new(
                farms.clone(),
                self.config.key.clone(),
                self.config.reward_address,
                self.chain.subscribe(),
                setup,
            ),
            farms,
            plotter: tokio::spawn(plotter.run()),
            dsn,
        });
        Ok(())
    }

    /// Fetches the headers the node has archived beyond the known history, one bounded batch at a time.
    async fn sync_headers(&self, node: &Node, segment_count: u64) -> Result<(), Error> {
        let known = self.chain.borrow().segment_count();
        if segment_count <= known {
            return Ok(());
        }
        if segment_count - known > MAX_SEGMENTS_AHEAD {
            return Err(Error::ImplausibleHistory {
                claimed: segment_count,
                known,
                max_ahead: MAX_SEGMENTS_AHEAD,
            });
        }
        let mut chain = ChainView::clone(&self.chain.borrow());
        while chain.segment_count() < segment_count {
            let batch = node.segment_headers(chain.segment_count(), segment_count).await?;
            if batch.is_empty() {
                return Err(Error::UnknownSegment(acre_consensus::SegmentIndex(
                    chain.segment_count(),
                )));
            }
            for header in batch {
                chain.apply(header).map_err(|conflict| Error::BadNodeData {
                    what: "segment header",
                    reason: format!("segment {} contradicts the known history", conflict.0),
                })?;
            }
        }
        info!(target: "acre::farmer", history_size = chain.segment_count(), "history synchronised");
        self.chain.send_replace(Arc::new(chain));
        Ok(())
    }

    async fn on_segment_header(&self, node: &Node, bytes: &acre_rpc_api::HexBytes) -> Result<(), Error> {
        let header = decode_segment_header(bytes)?;
        let mut chain = ChainView::clone(&self.chain.borrow());
        match chain.apply(header) {
            Ok(Applied::Extended) => {
                info!(target: "acre::farmer", segment = header.segment_index.0, "new archived segment");
                self.chain.send_replace(Arc::new(chain));
                Ok(())
            }
            Ok(Applied::Known) => Ok(()),
            Ok(Applied::Gap { .. }) => {
                let count = header
                    .segment_index
                    .0
                    .checked_add(1)
                    .ok_or(Error::SegmentIndexOverflow(header.segment_index))?;
                self.sync_headers(node, count).await
            }
            Err(conflict) => Err(Error::BadNodeData {
                what: "segment header",
                reason: format!("segment {} contradicts the known history", conflict.0),
            }),
        }
    }

    async fn session(
        &mut self,
        node: &Node,
        shutdown: &mut std::pin::Pin<&mut (impl Future<Output = ()> + Send)>,
        backoff: &mut Backoff,
        flush: &mut tokio::time::Interval,
    ) -> Result<SessionEnd, Error> {
        let info = node.info().await?;
        self.bind(&info).await?;
        // Subscribe before syncing so no segment archived in between is missed.
        let client = node.client();
        let mut segments = client.subscribe_archived_segment_headers().await?;
        let mut slots = client.subscribe_slot_info().await?;
        let mut seals = client.subscribe_block_sealing().await?;
        self.sync_headers(node, info.segment_count).await?;
        self.node.send_replace(Some(node.clone()));
        backoff.reset();
        let farming = match &self.bound {
            Some(bound) => bound.farming.clone(),
            None => return Err(Error::Task("farms are not open".into())),
        };
        loop {
            tokio::select! {
                () = shutdown.as_mut() => return Ok(SessionEnd::Shutdown),
                result = self.plotter_failed() => return result.map(|()| SessionEnd::Shutdown),
                _ = flush.tick() => self.flush_ledgers().await,
                slot = slots.next() => match slot {
                    Some(Ok(slot)) => farming.on_slot(node, slot),
                    Some(Err(error)) => warn!(target: "acre::farming", %error, "undecodable slot notification"),
                    None => return Ok(SessionEnd::Disconnected),
                },
                request = seals.next() => match request {
                    Some(Ok(request)) => farming.on_seal_request(node, request),
                    Some(Err(error)) => warn!(target: "acre::farming", %error, "undecodable seal request"),
                    None => return Ok(SessionEnd::Disconnected),
                },
                header = segments.next() => match header {
                    Some(Ok(bytes)) => {
                        if let Err(error) = self.on_segment_header(node, &bytes).await {
                            if is_fatal(&error) {
                                return Err(error);
                            }
                            error!(target: "acre::farmer", %error, "bad segment header from the node");
                        }
                    }
                    Some(Err(error)) => warn!(target: "acre::farmer", %error, "undecodable segment notification"),
                    None => return Ok(SessionEnd::Disconnected),
                },
            }
        }
    }
}

/// A farm's status for the node's dashboard: counts since the farmer started.
fn farm_report(
    recorder: &Recorder,
    index: usize,
    snapshot: Option<&Snapshot>,
    size: Option<&u64>,
    shared: &farms::SharedFarm,
) -> acre_rpc_api::FarmReport {
    use metrics::FarmerMetrics as M;
    let metrics = &recorder.metrics;
    let count = |family| M::farm(family, index).get();
    let kinds = |family| {
        [ledger::ClaimKind::Block, ledger::ClaimKind::Vote]
            .into_iter()
            .map(|kind| M::kind(family, index, kind).get())
            .sum::<u64>()
    };
    acre_rpc_api::FarmReport {
        index: index as u32,
        size_bytes: size.copied().unwrap_or(0),
        sectors_total: snapshot.map_or(0, |s| s.sectors),
        sectors_plotted: snapshot.map_or(0, |s| s.plotted),
        slots_audited: count(&metrics.slots_audited),
        slots_won: kinds(&metrics.submitted).saturating_sub(kinds(&metrics.rejected)),
        slots_missed: count(&metrics.proofs_missed),
        solutions_rejected: kinds(&metrics.rejected),
        disabled: shared.disabled(),
    }
}

/// A farm's state for its ledger: sectors, plotted, expiring and expired at the known history size.
fn snapshot(farms: &Farms, chain: &ChainView, index: usize) -> Option<Snapshot> {
    let farm = farms.farms.get(index)?.read();
    let mut snapshot = Snapshot {
        history_size: chain.history_size().map_or(0, |size| size.get()),
        sectors: u32::from(farm.header().sector_count),
        ..Snapshot::default()
    };
    for metadata in farm.plotted() {
        snapshot.plotted += 1;
        match sector_state(&farms.params, chain, &farms.public_key_hash, metadata) {
            SectorState::Expired => snapshot.expired += 1,
            SectorState::ExpiresNext => snapshot.expiring += 1,
            SectorState::Fresh => {}
        }
    }
    Some(snapshot)
}

/// The rayon pool sectors are plotted on (built outside `run`'s future, whose state must stay `Send`).
/// Its threads run at the lowest CPU priority, so audits and proofs (on their own pool) preempt them.
fn plotting_pool(threads: Option<usize>) -> Result<rayon::ThreadPool, Error> {
    let mut pool = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("acre-plotting-{i}"))
        .start_handler(|_| lowest_priority());
    if let Some(threads) = threads {
        if threads == 0 {
            return Err(Error::InvalidConfig("plotting threads must be at least 1".into()));
        }
        pool = pool.num_threads(threads);
    }
    pool.build()
        .map_err(|error| Error::InvalidConfig(format!("plotting thread pool: {error}")))
}

/// Lowers the calling thread's CPU priority to the lowest (nice 19). On Linux the priority is per thread.
fn lowest_priority() {
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::process::setpriority_process(None, 19) {
        tracing::debug!(target: "acre::plotting", %error, "cannot lower the plotting thread's priority");
    }
}

/// Errors that reconnecting cannot fix.
fn is_fatal(error: &Error) -> bool {
    matches!(
        error,
        Error::FarmMismatch { .. }
            | Error::FarmInUse { .. }
            | Error::FarmTooSmall { .. }
            | Error::InvalidFarm { .. }
            | Error::ChainChanged { .. }
            | Error::Io { .. }
            | Error::InvalidConfig(_)
            | Error::InvalidIdentity { .. }
            | Error::Task(_)
    )
}
