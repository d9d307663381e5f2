//! `acre dev`: a whole development chain in one command.
//!
//! It runs an `acre-node` (the built-in `dev` chain) and an `acre-farmer` daemon in this process: the farmer
//! reaches the node over the node's own RPC on loopback, exactly as separate processes would, so what works
//! here works split apart. Blocks are printed as they are authored. State lives in the data directory
//! (`chain.redb`, `farm/`, and the dev accounts' well-known keys in `keys/`), so a second run continues the
//! same chain; delete the directory to start over.
//!
//! The dev chain has an EVM domain (chain id 31337) whose bundles the embedded node's operator (alice's)
//! produces, with its Ethereum JSON-RPC on `127.0.0.1:8545` and the ten well-known development accounts
//! funded, so the same command is also a local Ethereum development chain.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use acre_execution::Address;
use acre_execution::domains::{DomainId, OperatorId};
use acre_farmer::daemon::{self, DaemonConfig};
use acre_node::chain_spec::{DEV_ACCOUNTS, DEV_EVM_BALANCE, DEV_EVM_CHAIN_ID, dev_key};
use acre_node::domain::{DEV_MNEMONIC, dev_accounts};
use acre_node::operator::DomainNodeConfig;
use acre_node::rpc::RpcAccess;
use acre_node::{ChainSpec, Node, NodeConfig};
use acre_rpc_api::{DEFAULT_FARMER_RPC_PORT, DEFAULT_METRICS_PORT, DEFAULT_RPC_PORT};
use anyhow::{Context, Result};
use tokio::sync::{broadcast, oneshot};

/// Options of `acre dev`.
#[derive(Debug, clap::Args)]
pub(crate) struct DevArgs {
    /// Where the chain and the plot live [default: ~/.local/share/acre/dev].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Port of the node's public JSON-RPC server.
    #[arg(long, default_value_t = DEFAULT_RPC_PORT)]
    rpc_port: u16,
    /// Port of the node's farmer JSON-RPC server (loopback only; the embedded farmer uses it).
    #[arg(long, default_value_t = DEFAULT_FARMER_RPC_PORT)]
    farmer_rpc_port: u16,
    /// Port of the EVM domain's Ethereum JSON-RPC (HTTP and WebSocket): point Foundry, a wallet or a web3
    /// library at `http://127.0.0.1:<port>`.
    #[arg(long, default_value_t = 8545)]
    eth_rpc_port: u16,
    /// Port of the node's Prometheus metrics (`GET /metrics`); 0 picks a free one.
    #[arg(long, default_value_t = DEFAULT_METRICS_PORT)]
    metrics_port: u16,
    /// Port of the node's dashboard (a live web page of the chain and the farm); 0 picks a free one.
    #[arg(long, default_value_t = acre_node::dashboard::DEFAULT_DASHBOARD_PORT)]
    dashboard_port: u16,
    /// Peer-to-peer address to listen on: another node joins this chain with `--bootstrap
    /// /ip4/127.0.0.1/tcp/30333`.
    #[arg(long, value_name = "MULTIADDR", default_value = "/ip4/127.0.0.1/tcp/30333")]
    listen: Vec<acre_network::Address>,
    /// The farmer's peer-to-peer address on the distributed storage network, where it serves pieces from
    /// its cache and plot.
    #[arg(long, value_name = "MULTIADDR", default_value = "/ip4/127.0.0.1/tcp/30533")]
    farmer_listen: Vec<acre_network::Address>,
    /// Size of the farmer's plot (bytes, or with a K, M or G suffix).
    #[arg(long, default_value = "16M")]
    plot_size: String,
    /// Threads the farmer plots with (the rest of the machine keeps proof of time on time).
    #[arg(long, default_value_t = 1)]
    plotting_threads: usize,
}

/// `~/.local/share/acre/<name>` (or under `$XDG_DATA_HOME`): where `acre dev` and `acre devnet` keep
/// their data by default.
pub(crate) fn default_data_dir(name: &str) -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("acre")
        .join(name)
}

fn parse_size(text: &str) -> Result<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits.parse().with_context(|| format!("invalid size {text:?}"))?;
    let shift = match unit
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        other => anyhow::bail!("unknown size unit {other:?} in {text:?}"),
    };
    value
        .checked_mul(1 << shift)
        .with_context(|| format!("size {text:?} is too large"))
}

/// Writes the dev accounts' key files (once) so `acre transfer --key` can use them.
fn write_dev_keys(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for name in DEV_ACCOUNTS {
        let path = dir.join(format!("{name}.key"));
        if !path.exists() {
            let contents = format!("{}\n", hex::encode(dev_key(name).to_bytes()));
            let temporary = dir.join(format!(".{name}.key.tmp"));
            std::fs::write(&temporary, contents)
                .and_then(|()| std::fs::rename(&temporary, &path))
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}

/// Prints the EVM domain's funded development accounts and their keys, as Anvil does.
fn print_evm_accounts() {
    let accounts = dev_accounts();
    let ether = DEV_EVM_BALANCE / 1_000_000_000_000_000_000;
    println!();
    println!("EVM accounts (mnemonic \"{DEV_MNEMONIC}\", {ether} ETH each)");
    for (index, (address, _)) in accounts.iter().enumerate() {
        println!("  ({index}) {address}");
    }
    println!("EVM private keys");
    for (index, (_, key)) in accounts.iter().enumerate() {
        println!("  ({index}) 0x{}", hex::encode(key));
    }
    println!();
}

/// Runs the dev chain until Ctrl-C.
pub(crate) async fn run(args: DevArgs) -> Result<()> {
    let data_dir = args.data_dir.unwrap_or_else(|| default_data_dir("dev"));
    let plot_size = parse_size(&args.plot_size)?;
    write_dev_keys(&data_dir.join("keys"))?;
    let localhost = Ipv4Addr::LOCALHOST.into();
    let node = Node::start(NodeConfig {
        spec: ChainSpec::dev(),
        data_dir: data_dir.clone(),
        rpc_address: SocketAddr::new(localhost, args.rpc_port),
        farmer_rpc_address: SocketAddr::new(localhost, args.farmer_rpc_port),
        farmer_rpc_unsafe_external: false,
        rpc_access: RpcAccess::default(),
        metrics_address: Some(SocketAddr::new(localhost, args.metrics_port)),
        dashboard_address: Some(SocketAddr::new(localhost, args.dashboard_port)),
        seal_timeout: Duration::from_secs(4),
        timekeeper: true,
        network: Some(acre_node::p2p::P2pConfig {
            listen: args.listen,
            bootstrap: Vec::new(),
            reserved: Vec::new(),
            in_peers: 32,
            out_peers: 16,
            keep_piece_segments: None,
            // Every dev chain has the same genesis: two developers' `acre dev` on one LAN must not
            // find each other and fight over one chain.
            mdns: false,
            snap: false,
        }),
        // The dev chain's EVM domain, with alice's genesis operator producing its bundles.
        domain: Some(DomainNodeConfig {
            domain_id: DomainId(0),
            operator: Some((OperatorId(0), dev_key("alice").to_bytes())),
            eth_rpc_address: SocketAddr::new(localhost, args.eth_rpc_port),
            eth_rpc_access: RpcAccess::default(),
        }),
    })
    .await
    .with_context(|| format!("starting the dev node in {}", data_dir.display()))?;
    let rpc = node.rpc_address();
    let farmer_rpc = node.farmer_rpc_address();

    let alice = Address::of(&dev_key("alice"));
    println!("Acre dev chain");
    println!("  data dir   {}", data_dir.display());
    println!("  RPC        ws://{rpc}");
    println!("  farmer RPC ws://{farmer_rpc}");
    if let Some(dashboard) = node.dashboard_address() {
        println!("  dashboard  http://{dashboard}/");
    }
    if let Some(metrics) = node.metrics_address() {
        println!("  metrics    http://{metrics}/metrics");
    }
    for address in node.peer_addresses().await {
        println!("  peers join --bootstrap {address}");
    }
    if let Some(domain) = node.domain() {
        println!(
            "  EVM domain http://{} (chain id {DEV_EVM_CHAIN_ID}; operator alice)",
            domain.rpc_address
        );
    }
    println!("  rewards to alice {alice}");
    println!(
        "  try: acre transfer --key {} --to <ADDRESS> --amount 1000 --wait",
        data_dir.join("keys/alice.key").display()
    );

    print_evm_accounts();

    let farm_dir = data_dir.join("farm");
    std::fs::create_dir_all(&farm_dir).with_context(|| format!("creating {}", farm_dir.display()))?;
    let key = daemon::load_or_create_identity(&farm_dir).context("loading the farmer's identity")?;
    let (stop_farmer, farmer_stopped) = oneshot::channel::<()>();
    let farmer = tokio::spawn(daemon::run(
        DaemonConfig {
            node_url: format!("ws://{farmer_rpc}"),
            reward_address: alice.0,
            key,
            farms: vec![(farm_dir, plot_size)],
            plotting_threads: Some(args.plotting_threads.max(1)),
            show_progress: false,
            metrics_address: None,
            ledger_interval: daemon::LEDGER_INTERVAL,
            network: Some(daemon::dsn::FarmerNetworkConfig {
                listen: args.farmer_listen,
                bootstrap: Vec::new(),
            }),
            cache_percentage: daemon::farms::DEFAULT_CACHE_PERCENTAGE,
        },
        async move {
            let _ = farmer_stopped.await;
        },
    ));

    let mut heads = node.subscribe_new_heads();
    let outcome = loop {
        tokio::select! {
            head = heads.recv() => match head {
                Ok(block) => println!(
                    "block #{:<6} {}  slot {:<7} {} tx  {} votes  {} bundles  {}",
                    block.number,
                    block.hash,
                    block.slot,
                    block.transactions.len(),
                    block.votes.len(),
                    block.bundles.len(),
                    if block.segment_headers.is_empty() {
                        String::new()
                    } else {
                        format!("segment headers {:?}", block.segment_headers)
                    },
                ),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break Ok(()),
            },
            signal = tokio::signal::ctrl_c() => break signal.context("waiting for Ctrl-C"),
        }
    };
    println!("stopping…");
    let _ = stop_farmer.send(());
    let stopping = async {
        match farmer.await {
            Ok(Err(error)) => eprintln!("farmer: {error}"),
            Err(error) => eprintln!("farmer task: {error}"),
            Ok(Ok(())) => {}
        }
        node.stop().await;
    };
    if tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .is_err()
    {
        eprintln!("shutdown took too long; exiting");
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("16M").expect("parses"), 16 << 20);
        assert_eq!(parse_size("1GiB").expect("parses"), 1 << 30);
        assert_eq!(parse_size("4096").expect("parses"), 4096);
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("M").is_err());
    }
}
