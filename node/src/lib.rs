//! The Acre node: a standalone proof-of-archival-storage chain, assembled from the workspace's crates.
//!
//! - [`chain`]: the import pipeline (a shell over `acre-consensus`'s chain state machine: the segments a
//!   branch produced, execution, cross-branch equivocation, one write transaction per block, reorgs) and
//!   block proposal, over `acre-storage`'s redb database; [`state`] is the best branch's account state;
//! - [`chain_spec`]: a chain's parameters, genesis accounts and economics (`--chain dev` or a JSON file);
//! - [`timekeeper`]: proof of time on a dedicated thread, the chain's clock;
//! - [`service`]: slot announcements, farmers' solutions and seals, block authoring;
//! - [`archiving`]: confirmed blocks into segments and pieces, finality;
//! - [`operator`]: a domain run beside consensus (derive domain blocks, produce bundles when elected);
//! - [`txpool`] (with the bundle pool), [`rpc`] (jsonrpsee over WebSocket, the `acre-rpc-api` contract: a public server and a
//!   loopback farmer server) and [`metrics`]
//!   (Prometheus text on `/metrics`); [`error`] holds the node's error types.
//!
//! [`Node::start`] runs all of it inside the caller's tokio runtime, so `acre dev` can embed a node next to
//! a farmer; the `acre-node` binary is a thin command line around it.

pub mod archiving;
pub mod chain;
pub mod chain_spec;
pub mod dashboard;
pub mod domain;
pub mod error;
pub mod farmers;
pub mod http;
pub mod metrics;
pub mod operator;
pub mod p2p;
pub mod rpc;
pub mod service;
pub mod state;
pub mod timekeeper;
pub mod txpool;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use acre_consensus::SlotNumber;
use acre_consensus::pot_chain::PotStart;
use acre_rpc_api::BlockInfo;
use jsonrpsee::server::ServerHandle;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

pub use chain::Chain;
pub use chain_spec::ChainSpec;
pub use error::{Error, ImportError};

use crate::metrics::Metrics;
use crate::service::Shared;
use crate::timekeeper::Timekeeper;

/// Name of the database file inside the data directory.
pub const DATABASE_FILE: &str = "chain.redb";

/// How a node runs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The chain.
    pub spec: ChainSpec,
    /// Where the database lives (created if missing).
    pub data_dir: PathBuf,
    /// The public RPC server's address (chain reads, transactions, new heads).
    pub rpc_address: SocketAddr,
    /// The farmer RPC server's address (farming, block submission, and all public methods). Must be
    /// loopback unless `farmer_rpc_unsafe_external`.
    pub farmer_rpc_address: SocketAddr,
    /// Allow a non-loopback `farmer_rpc_address`.
    pub farmer_rpc_unsafe_external: bool,
    /// Extra hosts and browser origins both RPC servers accept.
    pub rpc_access: rpc::RpcAccess,
    /// The metrics server's address, if any.
    pub metrics_address: Option<SocketAddr>,
    /// The dashboard's address, if any.
    pub dashboard_address: Option<SocketAddr>,
    /// How long to wait for a farmer's seal.
    pub seal_timeout: Duration,
    /// Whether the node proves time itself; if not, it follows the proofs its peers gossip.
    pub timekeeper: bool,
    /// The peer-to-peer network, if the node joins one.
    pub network: Option<p2p::P2pConfig>,
    /// A domain to run beside consensus (an operator, or a domain node serving its JSON-RPC).
    pub domain: Option<operator::DomainNodeConfig>,
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    shared: Arc<Shared>,
    rpc_address: SocketAddr,
    farmer_rpc_address: SocketAddr,
    metrics_address: Option<SocketAddr>,
    dashboard_address: Option<SocketAddr>,
    rpc: ServerHandle,
    farmer_rpc: ServerHandle,
    domain: Option<operator::RunningDomain>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Node {
    /// Opens the chain, starts the timekeeper, the authoring loop and the RPC (and metrics) servers.
    pub async fn start(config: NodeConfig) -> Result<Self, Error> {
        rpc::check_farmer_address(config.farmer_rpc_address, config.farmer_rpc_unsafe_external)?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| Error::Io {
            context: format!("creating the data directory {}", config.data_dir.display()),
            source,
        })?;
        let path = config.data_dir.join(DATABASE_FILE);
        let chain = tokio::task::spawn_blocking(move || Chain::open(config.spec, Some(&path)))
            .await
            .map_err(|error| Error::Corrupt(format!("opening the chain: {error}")))??;

        let (best, context) = chain.best();
        let start = match context.child.pot_recent_outputs.last() {
            Some(output) => PotStart::After(context.child.pot_covered_slot, *output),
            None => PotStart::Genesis(chain.genesis_seed()),
        };
        let (timekeeper, newest) = if config.timekeeper {
            let started =
                Timekeeper::spawn(chain.params(), start, context.injections.clone()).map_err(|source| {
                    Error::Io {
                        context: "starting the timekeeper thread".into(),
                        source,
                    }
                })?;
            tracing::info!(best = %best.number, first_slot = %start.first_slot(), "timekeeper started");
            started
        } else {
            if config.network.is_none() {
                tracing::warn!("neither a timekeeper nor on a network: no slot will ever come");
            }
            tracing::info!(best = %best.number, "following the proof of time peers gossip (not a timekeeper)");
            Timekeeper::follower(chain.params(), start, context.injections.clone())
        };

        let metrics = Arc::new(Metrics::new());
        metrics.best_number.set(best.number.0);
        metrics.segments.set(chain.archive_progress().0);
        let shared = Arc::new(Shared::new(
            chain,
            timekeeper,
            Arc::clone(&metrics),
            config.seal_timeout,
        ));
        let (shutdown, shutdown_receiver) = watch::channel(false);

        // The dashboard's page talks to the public RPC from the browser: its origins must be allowed there.
        let dashboard = match config.dashboard_address {
            Some(address) => Some(metrics::bind(address).await.map_err(|source| Error::Io {
                context: format!("starting the dashboard on {address}"),
                source,
            })?),
            None => None,
        };
        let dashboard_address = dashboard.as_ref().and_then(|listener| listener.local_addr().ok());
        let mut public_access = config.rpc_access.clone();
        if let Some(local) = dashboard_address {
            public_access.allowed_origins.extend(dashboard::origins(local));
        }
        let (rpc_address, rpc) =
            rpc::start(&shared, rpc::Exposure::Public, config.rpc_address, &public_access).await?;
        let (farmer_rpc_address, farmer_rpc) = match rpc::start(
            &shared,
            rpc::Exposure::Farmer,
            config.farmer_rpc_address,
            &config.rpc_access,
        )
        .await
        {
            Ok(started) => started,
            Err(error) => {
                let _ = rpc.stop();
                return Err(error);
            }
        };

        let mut tasks = Vec::new();
        let mut metrics_address = None;
        if let Some(address) = config.metrics_address {
            let listener = metrics::bind(address).await.map_err(|source| Error::Io {
                context: format!("starting the metrics server on {address}"),
                source,
            })?;
            metrics_address = listener.local_addr().ok();
            tracing::info!(address = ?metrics_address, "metrics served on /metrics");
            tasks.push(tokio::spawn(metrics::serve(
                listener,
                metrics,
                shutdown_receiver.clone(),
            )));
        }
        if let Some(listener) = dashboard {
            tracing::info!(url = %format!("http://{}/", dashboard_address.map_or_else(String::new, |a| a.to_string())), "dashboard served");
            tasks.push(tokio::spawn(dashboard::serve(
                listener,
                rpc_address.port(),
                shutdown_receiver.clone(),
            )));
        }
        if let Some(network) = config.network {
            let started = p2p::start(
                &shared,
                network,
                &config.data_dir,
                newest.clone(),
                shutdown_receiver.clone(),
            )
            .await;
            let (p2p, p2p_tasks) = match started {
                Ok(started) => started,
                Err(error) => {
                    let _ = shutdown.send(true);
                    let _ = rpc.stop();
                    let _ = farmer_rpc.stop();
                    return Err(error);
                }
            };
            let _ = shared.p2p.set(p2p);
            tasks.extend(p2p_tasks);
        }
        let mut domain = None;
        if let Some(domain_config) = &config.domain {
            match operator::start(&shared, domain_config, shutdown_receiver.clone()).await {
                Ok((running, task)) => {
                    domain = Some(running);
                    tasks.push(task);
                }
                Err(error) => {
                    let _ = shutdown.send(true);
                    let _ = rpc.stop();
                    let _ = farmer_rpc.stop();
                    return Err(error);
                }
            }
        }
        tasks.push(tokio::spawn(service::authoring(
            Arc::clone(&shared),
            newest,
            shutdown_receiver,
        )));
        Ok(Self {
            domain,
            shared,
            rpc_address,
            farmer_rpc_address,
            metrics_address,
            dashboard_address,
            rpc,
            farmer_rpc,
            shutdown,
            tasks,
        })
    }

    /// The public RPC server's address.
    pub fn rpc_address(&self) -> SocketAddr {
        self.rpc_address
    }

    /// The farmer RPC server's address (serves every method).
    pub fn farmer_rpc_address(&self) -> SocketAddr {
        self.farmer_rpc_address
    }

    /// The domain this node runs, if any: its chain and its Ethereum JSON-RPC.
    pub fn domain(&self) -> Option<&operator::RunningDomain> {
        self.domain.as_ref()
    }

    /// The metrics server's address.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_address
    }

    /// The dashboard's address.
    pub fn dashboard_address(&self) -> Option<SocketAddr> {
        self.dashboard_address
    }

    /// The peer-to-peer addresses the node listens on, each with its peer id (what another node passes
    /// to `--bootstrap`); empty without a network.
    pub async fn peer_addresses(&self) -> Vec<acre_network::Address> {
        match self.shared.p2p.get() {
            Some(p2p) => p2p.handle.listening().await.unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// New best blocks.
    pub fn subscribe_new_heads(&self) -> broadcast::Receiver<BlockInfo> {
        self.shared.heads.subscribe()
    }

    /// The newest proved slot.
    pub fn current_slot(&self) -> SlotNumber {
        self.shared.timekeeper.newest_slot()
    }

    /// Resolves if the node cannot go on: its database's disk failed (full, read-only, gone). Nothing
    /// half-written is stored, but no block can be imported until the process reopens the database
    /// (restart it once the disk is fixed). The binary stops on it; embedders should too.
    pub async fn failed(&self) -> String {
        self.shared.failed().await
    }

    /// Stops everything: no new blocks are authored, the RPC server closes, the timekeeper finishes its
    /// slot. Every imported block is already durable, so stopping loses nothing.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.rpc.stop();
        let _ = self.farmer_rpc.stop();
        if let Some(domain) = &self.domain {
            let _ = domain.rpc.stop();
            domain.rpc.clone().stopped().await;
        }
        self.rpc.stopped().await;
        self.farmer_rpc.stopped().await;
        for task in self.tasks {
            let _ = task.await;
        }
        self.shared.timekeeper.stop();
        // Connection tasks of the RPC server let go of the shared state shortly after it stops; the last
        // reference joins the timekeeper thread and closes the database.
        let mut shared = self.shared;
        for _ in 0..100 {
            match Arc::try_unwrap(shared) {
                Ok(owned) => {
                    let _ = tokio::task::spawn_blocking(move || drop(owned)).await;
                    tracing::info!("node stopped");
                    return;
                }
                Err(still_shared) => shared = still_shared,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tracing::warn!("node state still referenced after shutdown; the database closes when it is released");
        tracing::info!("node stopped");
    }
}
