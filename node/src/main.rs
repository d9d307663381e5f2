//! `acre-node`: runs an Acre node.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use acre_network::Address;
use acre_node::operator::DomainNodeConfig;
use acre_node::p2p::P2pConfig;
use acre_node::rpc::RpcAccess;
use acre_node::{ChainSpec, Node, NodeConfig};
use acre_rpc_api::{DEFAULT_FARMER_RPC_PORT, DEFAULT_METRICS_PORT, DEFAULT_RPC_PORT};
use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use tracing_subscriber::EnvFilter;

/// How long a graceful shutdown may take before the process exits anyway.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// How an empty database catches up with the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SyncMode {
    /// Every block from genesis, from peers (or the DSN).
    Full,
    /// The state of a recent block with proofs, then every block after it.
    Snap,
}

#[derive(Debug, Parser)]
#[command(name = "acre-node", version, about = "The Acre node")]
struct Cli {
    /// Read settings from this TOML file: its keys are these flags' long names (`rpc-port = 9944`,
    /// `rpc-cors = ["http://localhost:3000"]`, `no-metrics = true`); flags given here win.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The chain: `dev` or a chain spec JSON file.
    #[arg(long, default_value = "dev")]
    chain: String,
    /// Where the chain's database lives [default: ~/.local/share/acre/<chain name>].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Port of the public JSON-RPC (WebSocket) server: chain reads, transactions, new heads.
    #[arg(long, default_value_t = DEFAULT_RPC_PORT)]
    rpc_port: u16,
    /// Address the public RPC and the metrics servers listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    rpc_listen: IpAddr,
    /// Peer-to-peer address to listen on (repeatable); `/ip4/127.0.0.1/tcp/0` picks a free port.
    #[arg(long, value_name = "MULTIADDR", default_value = "/ip4/0.0.0.0/tcp/30333")]
    listen: Vec<Address>,
    /// A peer to dial at start (repeatable), e.g. `/ip4/192.0.2.1/tcp/30333/p2p/12D3…`; an address without
    /// `/p2p/` is dialled as it is.
    #[arg(long, value_name = "MULTIADDR")]
    bootstrap: Vec<Address>,
    /// A peer to stay connected to (repeatable): dialled at start and again whenever it drops.
    #[arg(long, value_name = "MULTIADDR")]
    reserved_peer: Vec<Address>,
    /// Most inbound peer connections.
    #[arg(long, default_value_t = 32)]
    in_peers: u32,
    /// Most outbound peer connections.
    #[arg(long, default_value_t = 16)]
    out_peers: u32,
    /// Keep the pieces of only the newest N archived segments; farmers' requests for older pieces are
    /// served from the DSN (peers' stores, or rebuilt from half of their segment). All are kept by
    /// default.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    keep_piece_segments: Option<u64>,
    /// Start over: delete this node's chain database (its peer key is kept) and sync the network's chain
    /// again from peers. For a node on a fork below its archived history (`acre chain` says so).
    #[arg(long)]
    resync: bool,
    /// Run without the peer-to-peer network (a chain of one node).
    #[arg(long)]
    no_network: bool,
    /// Do not look for peers on the local network by multicast DNS (it finds nodes of this chain on the
    /// same LAN without a bootstrap list; peers of other chains it finds are refused at identify).
    #[arg(long)]
    no_mdns: bool,
    /// How an empty database catches up: `snap` starts from the state of a recent block (downloaded
    /// and verified against its header), then syncs block by block; `full` imports every block from
    /// genesis. A database that holds blocks always syncs block by block.
    #[arg(long, value_enum, default_value_t = SyncMode::Snap)]
    sync: SyncMode,
    /// Prove time (run the proof-of-time chain on a dedicated core) and gossip it. Without it the node
    /// follows the proofs its peers gossip, verifying each; a network needs at least one timekeeper.
    #[arg(long)]
    timekeeper: bool,
    /// Port of the farmer JSON-RPC server: farming, block submission and every public method.
    #[arg(long, default_value_t = DEFAULT_FARMER_RPC_PORT)]
    farmer_rpc_port: u16,
    /// Address the farmer RPC server listens on (loopback unless --farmer-rpc-unsafe-external).
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    farmer_rpc_listen: IpAddr,
    /// Allow a non-loopback --farmer-rpc-listen: anyone who reaches it can submit blocks and solutions.
    #[arg(long)]
    farmer_rpc_unsafe_external: bool,
    /// Also accept this Host header on both RPC servers (repeatable), e.g. `node.example.org` or
    /// `node.example.org:443`; loopback names are always accepted.
    #[arg(long = "rpc-allow-host", value_name = "HOST")]
    rpc_allow_hosts: Vec<String>,
    /// Accept WebSocket connections from this browser origin (repeatable), e.g. `http://localhost:3000`, or
    /// `all`; by default any request carrying an Origin header is refused.
    #[arg(long = "rpc-cors", value_name = "ORIGIN")]
    rpc_cors: Vec<String>,
    /// Port of the Prometheus metrics server (`GET /metrics`).
    #[arg(long, default_value_t = DEFAULT_METRICS_PORT)]
    metrics_port: u16,
    /// Do not serve metrics.
    #[arg(long)]
    no_metrics: bool,
    /// Serve the dashboard (a live web page of the chain and its farms) on this address; without a value
    /// on 127.0.0.1:9617. Off by default.
    #[arg(long, value_name = "ADDRESS", num_args = 0..=1, default_missing_value = "127.0.0.1:9617")]
    dashboard: Option<SocketAddr>,
    /// Seconds to wait for a farmer's block seal.
    #[arg(long, default_value_t = 4.0)]
    seal_timeout: f64,
    /// Run this domain beside consensus (it must be an EVM domain): derive its blocks from the bundles
    /// in consensus blocks and serve its Ethereum JSON-RPC (see --eth-rpc-port). With --operator-id and
    /// --operator-key, also produce bundles when the operator is elected.
    #[arg(long, value_name = "N")]
    domain_id: Option<u32>,
    /// The operator this node runs (needs --domain-id and --operator-key).
    #[arg(long, value_name = "N", requires_all = ["domain_id", "operator_key"])]
    operator_id: Option<u64>,
    /// The operator owner's key file (a hex secret, as `acre keys generate` writes it): the operator's
    /// signing key derives from it, as `acre operator register` derives it.
    #[arg(long, value_name = "FILE", requires = "operator_id")]
    operator_key: Option<PathBuf>,
    /// Port of the domain's Ethereum JSON-RPC (HTTP and WebSocket, on the --rpc-listen address).
    #[arg(long, default_value_t = 8545)]
    eth_rpc_port: u16,
    /// Print the chain spec as JSON and exit (a starting point for custom chains).
    #[arg(long)]
    print_spec: bool,
    /// How log lines are written to standard error.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (timestamp, level, target, fields, span), for log collectors.
    Json,
}

/// Installs the log subscriber: `RUST_LOG` if set, else `default_filter`, in `format`.
fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().with_current_span(true).with_span_list(false).init(),
    }
}

/// Reads a key file: a 32-byte secret in hex.
fn read_secret(path: &std::path::Path) -> Result<[u8; 32]> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let bytes =
        hex::decode(text.trim()).with_context(|| format!("{} is not a hex key file", path.display()))?;
    <[u8; 32]>::try_from(bytes)
        .map_err(|_| anyhow::anyhow!("{} must hold a 32-byte secret key", path.display()))
}

/// The default data directory of a chain.
fn default_data_dir(chain: &str) -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("acre").join(chain)
}

async fn run(cli: Cli) -> Result<()> {
    let spec = ChainSpec::load(&cli.chain).with_context(|| format!("loading chain {:?}", cli.chain))?;
    if cli.print_spec {
        println!("{}", serde_json::to_string_pretty(&spec)?);
        return Ok(());
    }
    let data_dir = cli.data_dir.unwrap_or_else(|| default_data_dir(&spec.name));
    if cli.resync {
        let database = data_dir.join(acre_node::DATABASE_FILE);
        match std::fs::remove_file(&database) {
            Ok(()) => tracing::warn!(database = %database.display(), "resync: the chain database is deleted"),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(error).with_context(|| format!("deleting {} to resync", database.display()));
            }
        }
    }
    let domain = match cli.domain_id {
        Some(domain_id) => {
            let operator = match (cli.operator_id, &cli.operator_key) {
                (Some(operator_id), Some(path)) => Some((
                    acre_execution::domains::OperatorId(operator_id),
                    read_secret(path)?,
                )),
                _ => None,
            };
            Some(DomainNodeConfig {
                domain_id: acre_execution::domains::DomainId(domain_id),
                operator,
                eth_rpc_address: SocketAddr::new(cli.rpc_listen, cli.eth_rpc_port),
                eth_rpc_access: RpcAccess {
                    allowed_hosts: cli.rpc_allow_hosts.clone(),
                    allowed_origins: cli.rpc_cors.clone(),
                },
            })
        }
        None => None,
    };
    let config = NodeConfig {
        domain,
        spec,
        data_dir: data_dir.clone(),
        rpc_address: SocketAddr::new(cli.rpc_listen, cli.rpc_port),
        farmer_rpc_address: SocketAddr::new(cli.farmer_rpc_listen, cli.farmer_rpc_port),
        farmer_rpc_unsafe_external: cli.farmer_rpc_unsafe_external,
        rpc_access: RpcAccess {
            allowed_hosts: cli.rpc_allow_hosts,
            allowed_origins: cli.rpc_cors,
        },
        metrics_address: (!cli.no_metrics).then_some(SocketAddr::new(cli.rpc_listen, cli.metrics_port)),
        dashboard_address: cli.dashboard,
        seal_timeout: Duration::from_secs_f64(cli.seal_timeout.max(0.1)),
        timekeeper: cli.timekeeper,
        network: (!cli.no_network).then_some(P2pConfig {
            listen: cli.listen,
            bootstrap: cli.bootstrap,
            reserved: cli.reserved_peer,
            in_peers: cli.in_peers,
            out_peers: cli.out_peers,
            keep_piece_segments: cli.keep_piece_segments,
            mdns: !cli.no_mdns,
            snap: cli.sync == SyncMode::Snap,
        }),
    };
    let node = Node::start(config)
        .await
        .with_context(|| format!("starting the node in {}", data_dir.display()))?;
    let failure = tokio::select! {
        interrupted = tokio::signal::ctrl_c() => {
            interrupted.context("waiting for Ctrl-C")?;
            tracing::info!("shutting down (Ctrl-C again to exit at once)");
            None
        }
        message = node.failed() => {
            tracing::error!("stopping: {message}");
            Some(message)
        }
    };
    tokio::select! {
        () = node.stop() => {}
        _ = tokio::time::sleep(SHUTDOWN_DEADLINE) => tracing::warn!("shutdown deadline passed; exiting"),
        _ = tokio::signal::ctrl_c() => tracing::warn!("exiting at once"),
    }
    if let Some(message) = failure {
        bail!(
            "{message} (data directory {}). The node stopped; every block it had imported is stored. \
             Free space or fix the disk, then start it again.",
            data_dir.display()
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli: Cli = acre_rpc_api::config_file::parse();
    init_logging(cli.log_format, "info");
    if let Some(config) = &cli.config {
        tracing::info!(config = %config.display(), "settings read from the config file (flags win)");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example in `docs/config/` is a valid config, and command-line flags win over it.
    #[test]
    fn the_example_config_file_parses_and_flags_win() {
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/config/acre-node.toml");
        let parse = |extra: &[&str]| -> Cli {
            let args = ["acre-node", "--config", example]
                .into_iter()
                .chain(extra.iter().copied());
            acre_rpc_api::config_file::try_parse_from(args).unwrap_or_else(|error| panic!("{error}"))
        };
        let cli = parse(&[]);
        assert_eq!(cli.data_dir, Some(PathBuf::from("/var/lib/acre/node")));
        assert!(matches!(cli.log_format, LogFormat::Json));
        assert_eq!((cli.rpc_port, cli.metrics_port), (9944, 9615));
        assert_eq!(cli.dashboard, Some("127.0.0.1:9617".parse().expect("address")));

        let cli = parse(&[
            "--rpc-port",
            "1234",
            "--dashboard",
            "127.0.0.1:80",
            "--log-format=text",
        ]);
        assert_eq!(cli.rpc_port, 1234);
        assert_eq!(cli.dashboard, Some("127.0.0.1:80".parse().expect("address")));
        assert!(matches!(cli.log_format, LogFormat::Text));
        assert_eq!(cli.data_dir, Some(PathBuf::from("/var/lib/acre/node")));
    }
}
