//! `acre devnet`: a local network of nodes and farmers on loopback in one command.
//!
//! It starts `acre-node` and `acre-farmer` processes (the binaries next to `acre`): node 0 is the
//! timekeeper, every other node bootstraps to it, and farmer `j` farms through node `j mod N`. Each
//! process has its own data directory under `--data-dir` and its own ports from `--base-port` (node `i`
//! uses `base + 10i` for peers, `+1` for RPC, `+2` for the farmer RPC and `+3` for metrics), and its own
//! log file next to its data. While they run, a table per node (peers, best and finalized block,
//! segments, sync state) is redrawn every second; Ctrl-C (or SIGTERM) stops every process cleanly
//! (SIGINT, then a kill after a deadline). A second run continues the same chain; delete the directory to start over.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use acre_execution::Address;
use acre_node::chain_spec::{DEV_ACCOUNTS, dev_key};
use acre_rpc_api::{ChainApiClient, ChainHead, NetworkInfo, NodeApiClient};
use anyhow::{Context, Result, bail};
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};

/// How long stopping may take before the remaining processes are killed.
const STOP_DEADLINE: Duration = Duration::from_secs(15);

/// Options of `acre devnet`.
#[derive(Debug, clap::Args)]
pub(crate) struct DevnetArgs {
    /// Nodes to run (node 0 is the timekeeper; the others bootstrap to it).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Farmers to run, spread over the nodes.
    #[arg(long, default_value_t = 2)]
    farmers: usize,
    /// Where the nodes' and farmers' data and logs live [default: ~/.local/share/acre/devnet].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// First port: node i uses base + 10i (peers), +1 (RPC), +2 (farmer RPC) and +3 (metrics).
    #[arg(long, default_value_t = 40000)]
    base_port: u16,
    /// Each farmer's plot size (as `acre-farmer` takes it, e.g. `16M`).
    #[arg(long, default_value = "16M")]
    plot_size: String,
    /// The chain: `dev` or a chain spec JSON file.
    #[arg(long, default_value = "dev")]
    chain: String,
}

/// The ports of node `index`.
#[derive(Debug, Clone, Copy)]
struct Ports {
    p2p: u16,
    rpc: u16,
    farmer_rpc: u16,
    metrics: u16,
}

impl Ports {
    fn of(base: u16, index: usize) -> Result<Self> {
        let first = u16::try_from(index * 10)
            .ok()
            .and_then(|offset| base.checked_add(offset))
            .filter(|first| first.checked_add(3).is_some())
            .with_context(|| format!("node {index}'s ports would pass 65535; lower --base-port"))?;
        Ok(Self {
            p2p: first,
            rpc: first + 1,
            farmer_rpc: first + 2,
            metrics: first + 3,
        })
    }
}

/// A process of the devnet, stopped with SIGINT and killed after the deadline.
struct Process {
    name: String,
    child: Child,
}

/// A binary next to this one.
fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding this program's path")?;
    let path = exe.with_file_name(name);
    if !path.exists() {
        bail!(
            "{} is missing: `acre devnet` runs the acre-node and acre-farmer built next to acre \
             (cargo build --release builds all three)",
            path.display()
        );
    }
    Ok(path)
}

fn spawn(name: String, command: &mut Command, log: &Path) -> Result<Process> {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let child = command
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    Ok(Process { name, child })
}

/// Runs the devnet until Ctrl-C.
pub(crate) async fn run(args: DevnetArgs) -> Result<()> {
    if args.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| crate::dev::default_data_dir("devnet"));
    std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let (node_binary, farmer_binary) = (sibling("acre-node")?, sibling("acre-farmer")?);
    let ports: Vec<Ports> = (0..args.nodes)
        .map(|index| Ports::of(args.base_port, index))
        .collect::<Result<_>>()?;

    let mut processes = Vec::new();
    let started = start_all(
        &args,
        &data_dir,
        &node_binary,
        &farmer_binary,
        &ports,
        &mut processes,
    );
    if let Err(error) = started {
        stop(processes).await;
        return Err(error);
    }
    println!(
        "Acre devnet: {} nodes, {} farmers, in {}",
        args.nodes,
        args.farmers,
        data_dir.display()
    );
    for (index, ports) in ports.iter().enumerate() {
        println!(
            "  node{index}  RPC ws://127.0.0.1:{}  peers /ip4/127.0.0.1/tcp/{}  metrics http://127.0.0.1:{}/metrics  log {}",
            ports.rpc,
            ports.p2p,
            ports.metrics,
            data_dir.join(format!("node{index}.log")).display()
        );
    }
    println!("  Ctrl-C stops them all");

    let outcome = watch(&mut processes, &ports).await;
    println!("stopping…");
    stop(processes).await;
    outcome
}

fn start_all(
    args: &DevnetArgs,
    data_dir: &Path,
    node_binary: &Path,
    farmer_binary: &Path,
    ports: &[Ports],
    processes: &mut Vec<Process>,
) -> Result<()> {
    for (index, ports) in ports.iter().enumerate() {
        let mut command = Command::new(node_binary);
        command
            .args(["--chain", &args.chain])
            .arg("--data-dir")
            .arg(data_dir.join(format!("node{index}")))
            .args(["--rpc-port", &ports.rpc.to_string()])
            .args(["--farmer-rpc-port", &ports.farmer_rpc.to_string()])
            .args(["--metrics-port", &ports.metrics.to_string()])
            .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{}", ports.p2p)])
            // A devnet is wired to its first node; it must not find other chains on the LAN.
            .arg("--no-mdns");
        if index == 0 {
            command.arg("--timekeeper");
        } else {
            command.args([
                "--bootstrap",
                &format!("/ip4/127.0.0.1/tcp/{}", ports_of_first(ports, index)),
            ]);
        }
        let log = data_dir.join(format!("node{index}.log"));
        processes.push(spawn(format!("node{index}"), &mut command, &log)?);
    }
    for farmer in 0..args.farmers {
        let node = farmer % ports.len();
        let reward = Address::of(&dev_key(DEV_ACCOUNTS[farmer % DEV_ACCOUNTS.len()]));
        let mut command = Command::new(farmer_binary);
        command
            .args([
                "farm",
                "--node",
                &format!("ws://127.0.0.1:{}", ports[node].farmer_rpc),
            ])
            .args(["--reward-address", &reward.to_string(), "--no-metrics"])
            .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
            .arg(format!(
                "path={},size={}",
                data_dir.join(format!("farmer{farmer}")).display(),
                args.plot_size
            ));
        let log = data_dir.join(format!("farmer{farmer}.log"));
        processes.push(spawn(format!("farmer{farmer}"), &mut command, &log)?);
    }
    Ok(())
}

/// Node 0's peer port, seen from node `index` (whose ports start 10 × index after it).
fn ports_of_first(ports: &Ports, index: usize) -> u16 {
    ports.p2p - (index * 10) as u16
}

/// One node's row of the table.
struct Row {
    head: Option<ChainHead>,
    network: Option<NetworkInfo>,
}

async fn row(client: &mut Option<WsClient>, port: u16) -> Row {
    if client.as_ref().is_none_or(|client| !client.is_connected()) {
        *client = WsClientBuilder::default()
            .connection_timeout(Duration::from_millis(500))
            .build(format!("ws://127.0.0.1:{port}"))
            .await
            .ok();
    }
    let Some(connected) = client.as_ref() else {
        return Row {
            head: None,
            network: None,
        };
    };
    Row {
        head: connected.head().await.ok(),
        network: NodeApiClient::network(connected).await.ok(),
    }
}

fn table(rows: &[Row]) -> Vec<String> {
    let mut lines = vec![format!(
        "{:<7} {:>5} {:>8} {:>10} {:>9} {:<30}",
        "node", "peers", "best", "finalized", "segments", "sync"
    )];
    for (index, row) in rows.iter().enumerate() {
        let line = match (&row.head, &row.network) {
            (Some(head), network) => {
                let peers = network.as_ref().map_or(0, |network| network.peers.len());
                let sync = network.as_ref().map_or_else(String::new, |network| {
                    let sync = &network.sync;
                    match sync.state.as_str() {
                        "syncing" => format!("syncing to #{} ({:.0}/s)", sync.target, sync.blocks_per_second),
                        "snap" => format!("snap sync to #{}", sync.target),
                        state => state.to_owned(),
                    }
                });
                format!(
                    "node{index:<3} {peers:>5} {:>8} {:>10} {:>9} {sync:<30}",
                    format!("#{}", head.best_number),
                    format!("#{}", head.finalized_number),
                    head.segment_count,
                )
            }
            (None, _) => format!(
                "node{index:<3} {:>5} {:>8} {:>10} {:>9} {:<30}",
                "-", "-", "-", "-", "starting"
            ),
        };
        lines.push(line);
    }
    lines
}

/// Redraws the table every second until Ctrl-C or a process exits.
async fn watch(processes: &mut [Process], ports: &[Ports]) -> Result<()> {
    let terminal = std::io::stdout().is_terminal();
    let mut clients: Vec<Option<WsClient>> = ports.iter().map(|_| None).collect();
    let mut drawn = 0;
    let mut last_print = Instant::now() - Duration::from_secs(60);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // SIGTERM (systemd, `kill`) stops the network as Ctrl-C does.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    loop {
        tokio::select! {
            signal = tokio::signal::ctrl_c() => return signal.context("waiting for Ctrl-C"),
            _ = terminate.recv() => return Ok(()),
            _ = tick.tick() => {}
        }
        for process in processes.iter_mut() {
            if let Ok(Some(status)) = process.child.try_wait() {
                bail!("{} exited ({status}); see its log", process.name);
            }
        }
        let mut rows = Vec::with_capacity(ports.len());
        for (client, ports) in clients.iter_mut().zip(ports) {
            rows.push(row(client, ports.rpc).await);
        }
        let lines = table(&rows);
        let mut out = std::io::stdout().lock();
        if terminal {
            if drawn > 0 {
                // Back to the table's first line, then overwrite it.
                let _ = write!(out, "\x1b[{drawn}A");
            }
            for line in &lines {
                let _ = writeln!(out, "\x1b[2K{line}");
            }
            drawn = lines.len();
        } else if last_print.elapsed() >= Duration::from_secs(5) {
            // Not a terminal (a log, a pipe): a snapshot every few seconds.
            for line in &lines {
                let _ = writeln!(out, "{line}");
            }
            last_print = Instant::now();
        }
        let _ = out.flush();
    }
}

/// Stops every process: SIGINT (as Ctrl-C would), then a kill for any still running at the deadline.
async fn stop(mut processes: Vec<Process>) {
    for process in &processes {
        let _ = Command::new("kill")
            .args(["-INT", &process.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let deadline = Instant::now() + STOP_DEADLINE;
    while Instant::now() < deadline {
        if processes
            .iter_mut()
            .all(|process| matches!(process.child.try_wait(), Ok(Some(_))))
        {
            println!("all stopped");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for process in &mut processes {
        if matches!(process.child.try_wait(), Ok(None)) {
            eprintln!("{} did not stop in time; killing it", process.name);
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_spread_by_ten_and_refused_past_the_last() {
        let third = Ports::of(40000, 2).expect("fits");
        assert_eq!(
            (third.p2p, third.rpc, third.farmer_rpc, third.metrics),
            (40020, 40021, 40022, 40023)
        );
        assert_eq!(ports_of_first(&third, 2), 40000);
        assert!(Ports::of(65532, 0).is_ok());
        assert!(Ports::of(65533, 0).is_err());
        assert!(Ports::of(65000, 100).is_err());
    }

    #[test]
    fn the_table_has_a_row_per_node() {
        let lines = table(&[
            Row {
                head: None,
                network: None,
            },
            Row {
                head: None,
                network: None,
            },
        ]);
        assert_eq!(lines.len(), 3);
        assert!(
            lines[1].starts_with("node0") && lines[1].contains("starting"),
            "{lines:?}"
        );
    }
}
