//! A local network of real `acre-node` and `acre-farmer` binaries on loopback, for multi-node tests.
//!
//! Every node gets its own data directory and free ports (public RPC, farmer RPC, metrics, peer to
//! peer); the first node is the timekeeper unless told otherwise, and later nodes bootstrap to it.
//! Farmers attach to a node's farmer RPC. Every process is killed when the cluster is dropped, and each
//! one's log goes to a file in the cluster's directory (printed by [`Cluster::dump_logs`] when a test
//! fails).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use acre_rpc_api::{ChainApiClient, ChainHead, NetworkInfo, NodeApiClient};
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};

use crate::{KillOnDrop, free_port};

/// A binary built next to this test (`cargo test --workspace` builds every binary of the workspace).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo test --workspace` (it builds acre-node and acre-farmer too)",
        path.display()
    );
    path
}

/// A running node of the cluster.
#[derive(Debug)]
pub struct ClusterNode {
    /// Its name (and its directory's).
    pub name: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Its public RPC port.
    pub rpc_port: u16,
    /// Its farmer RPC port.
    pub farmer_rpc_port: u16,
    /// Its metrics port.
    pub metrics_port: u16,
    /// Its peer-to-peer port.
    pub p2p_port: u16,
    /// Its log file.
    pub log: PathBuf,
    /// The address it listens on (loopback unless it runs in a network namespace).
    pub host: String,
    /// The network namespace it runs in, if any (see [`crate::netns`]).
    pub netns: Option<String>,
    process: Option<KillOnDrop>,
}

/// `binary` run in network namespace `netns` (through `ip netns exec`, which execs it: killing the
/// child kills the binary), or as it is.
fn command_in(netns: Option<&str>, binary: PathBuf) -> Command {
    match netns {
        Some(netns) => {
            let mut command = Command::new("ip");
            command.args(["netns", "exec", netns]).arg(binary);
            command
        }
        None => Command::new(binary),
    }
}

impl ClusterNode {
    /// The value of metric `name` (its full exposition name, `_total` included) from its `/metrics`.
    pub fn metric(&self, name: &str) -> f64 {
        let body = crate::http_get(self.metrics_port, "/metrics");
        body.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from the metrics"))
    }

    /// Its peer-to-peer address (without a peer id: dialled as it is).
    pub fn p2p_address(&self) -> String {
        format!("/ip4/{}/tcp/{}", self.host, self.p2p_port)
    }

    /// A client of its public RPC.
    pub async fn client(&self) -> WsClient {
        let url = format!("ws://{}:{}", self.host, self.rpc_port);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match WsClientBuilder::default().build(&url).await {
                Ok(client) => return client,
                Err(error) if Instant::now() > deadline => {
                    panic!("node {} never served RPC on {url}: {error}", self.name)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Its chain head.
    pub async fn head(&self) -> ChainHead {
        self.client().await.head().await.expect("chain_head")
    }

    /// Its network and sync state.
    pub async fn network(&self) -> NetworkInfo {
        self.client().await.network().await.expect("node_network")
    }

    /// Kills the process at once (`kill -9`).
    pub fn kill(&mut self) {
        self.process = None;
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        self.process
            .as_mut()
            .is_some_and(|process| matches!(process.try_wait(), Ok(None)))
    }
}

/// How a node of the cluster runs.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// Run the proof-of-time chain.
    pub timekeeper: bool,
    /// Addresses to bootstrap to.
    pub bootstrap: Vec<String>,
    /// Extra command-line arguments.
    pub extra: Vec<String>,
}

/// A local network of nodes and farmers.
#[derive(Debug)]
pub struct Cluster {
    dir: tempfile::TempDir,
    spec: PathBuf,
    /// The nodes, in start order.
    pub nodes: Vec<ClusterNode>,
    /// The farmers, in start order.
    pub farmers: Vec<ClusterFarmer>,
}

/// `text` without terminal colour codes (`ESC [ … m`), which the binaries' logs carry.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A farmer of the cluster.
#[derive(Debug)]
pub struct ClusterFarmer {
    /// Its farm directory (holding its identity, peer key, plot and piece cache).
    pub dir: PathBuf,
    /// Its log file (appended to across restarts).
    pub log: PathBuf,
    args: Vec<String>,
    process: Option<KillOnDrop>,
}

impl ClusterFarmer {
    /// Kills the process at once (`kill -9`).
    pub fn kill(&mut self) {
        self.process = None;
    }

    /// The peer-to-peer addresses it logged listening on (the latest start's last).
    pub fn listen_addresses(&self) -> Vec<String> {
        let text = strip_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default());
        text.lines()
            .filter(|line| line.contains("acre::network") && line.contains(" listening "))
            .filter_map(|line| {
                let rest = &line[line.find("address=")? + "address=".len()..];
                Some(rest.split_whitespace().next()?.to_owned())
            })
            .collect()
    }

    /// The peer ids it logged joining the DSN with, one per start.
    pub fn peer_ids(&self) -> Vec<String> {
        let text = strip_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default());
        text.lines()
            .filter(|line| line.contains("on the distributed storage network"))
            .filter_map(|line| {
                let rest = &line[line.find("peer_id=")? + "peer_id=".len()..];
                Some(rest.split_whitespace().next()?.to_owned())
            })
            .collect()
    }
}

impl Cluster {
    /// A cluster on the chain spec `spec` (JSON, as `acre-node --print-spec` prints it).
    pub fn new(spec: &serde_json::Value) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("spec.json");
        std::fs::write(&path, serde_json::to_vec_pretty(spec).expect("json")).expect("writes the spec");
        Self {
            dir,
            spec: path,
            nodes: Vec::new(),
            farmers: Vec::new(),
        }
    }

    /// The dev chain spec with `edit` applied to its JSON (say, fewer proof-of-time iterations).
    pub fn dev_spec(edit: impl FnOnce(&mut serde_json::Value)) -> serde_json::Value {
        let output = Command::new(binary("acre-node"))
            .args(["--print-spec"])
            .output()
            .expect("acre-node --print-spec");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut spec: serde_json::Value = serde_json::from_slice(&output.stdout).expect("spec JSON");
        edit(&mut spec);
        spec
    }

    /// The cluster's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts a node; returns its index.
    pub fn start_node(&mut self, name: &str, options: &NodeOptions) -> usize {
        self.start_node_at(name, options, None, "127.0.0.1")
    }

    /// Starts a node in network namespace `netns` (of a [`crate::netns::Lab`]) whose address there is
    /// `host`: it listens for peers, RPC and metrics on that address, and its farmers run in the same
    /// namespace. Returns its index.
    pub fn start_node_in(&mut self, name: &str, options: &NodeOptions, netns: &str, host: &str) -> usize {
        self.start_node_at(name, options, Some(netns), host)
    }

    fn start_node_at(&mut self, name: &str, options: &NodeOptions, netns: Option<&str>, host: &str) -> usize {
        let data_dir = self.dir.path().join(name);
        let node = ClusterNode {
            name: name.to_owned(),
            data_dir,
            rpc_port: free_port(),
            farmer_rpc_port: free_port(),
            metrics_port: free_port(),
            p2p_port: free_port(),
            log: self.dir.path().join(format!("{name}.log")),
            host: host.to_owned(),
            netns: netns.map(str::to_owned),
            process: None,
        };
        self.nodes.push(node);
        let index = self.nodes.len() - 1;
        self.restart_node(index, options);
        index
    }

    /// Starts node `index` again (same directory, ports and peer key).
    pub fn restart_node(&mut self, index: usize, options: &NodeOptions) {
        let spec = self.spec.clone();
        let node = &mut self.nodes[index];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("log file");
        let mut command = command_in(node.netns.as_deref(), binary("acre-node"));
        if node.host != "127.0.0.1" {
            command
                .args(["--rpc-listen", &node.host])
                .args(["--rpc-allow-host", &format!("{}:{}", node.host, node.rpc_port)]);
        }
        command
            .arg("--chain")
            .arg(&spec)
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args(["--rpc-port", &node.rpc_port.to_string()])
            .args(["--farmer-rpc-port", &node.farmer_rpc_port.to_string()])
            .args(["--metrics-port", &node.metrics_port.to_string()])
            .args(["--listen", &node.p2p_address()])
            // Test networks are wired by hand; multicast discovery would join concurrent tests' chains.
            .arg("--no-mdns");
        if options.timekeeper {
            command.arg("--timekeeper");
        }
        for address in &options.bootstrap {
            command.args(["--bootstrap", address]);
        }
        command.args(&options.extra);
        let process = command
            .env(
                "RUST_LOG",
                std::env::var("ACRE_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("acre-node starts");
        node.process = Some(KillOnDrop(process));
    }

    /// Starts a farmer on node `node` with a plot of `size` (e.g. `2M`), rewards to `reward` (hex);
    /// returns its index.
    pub fn start_farmer(&mut self, node: usize, size: &str, reward: &str) -> usize {
        self.start_farmer_with(node, size, reward, &[])
    }

    /// [`Cluster::start_farmer`] with `extra` arguments (`--bootstrap`, `--cache-percentage`).
    pub fn start_farmer_with(&mut self, node: usize, size: &str, reward: &str, extra: &[String]) -> usize {
        let index = self.farmers.len();
        let dir = self.dir.path().join(format!("farmer{index}"));
        let mut args: Vec<String> = [
            "farm",
            "--reward-address",
            reward,
            "--no-metrics",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
        ]
        .map(String::from)
        .into();
        args.extend(extra.iter().cloned());
        args.push(format!("path={},size={size}", dir.display()));
        self.farmers.push(ClusterFarmer {
            dir,
            log: self.dir.path().join(format!("farmer{index}.log")),
            args,
            process: None,
        });
        self.restart_farmer(index, node);
        index
    }

    /// Starts farmer `index` again (same farm, so the same identity and peer key), on node `node`.
    pub fn restart_farmer(&mut self, index: usize, node: usize) {
        let url = format!("ws://127.0.0.1:{}", self.nodes[node].farmer_rpc_port);
        let netns = self.nodes[node].netns.clone();
        let farmer = &mut self.farmers[index];
        farmer.process = None;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&farmer.log)
            .expect("log file");
        let process = command_in(netns.as_deref(), binary("acre-farmer"))
            .args(&farmer.args)
            .args(["--node", &url])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("acre-farmer starts");
        farmer.process = Some(KillOnDrop(process));
    }

    /// Prints the tail of every log (for a failing test).
    pub fn dump_logs(&self) {
        let logs = self
            .nodes
            .iter()
            .map(|node| node.log.clone())
            .chain(self.farmers.iter().map(|farmer| farmer.log.clone()));
        // Whole logs are kept for a closer look where `ACRE_TEST_KEEP_LOGS` names a directory.
        let keep = std::env::var_os("ACRE_TEST_KEEP_LOGS").map(PathBuf::from);
        for log in logs {
            if let (Some(dir), Some(name)) = (&keep, log.file_name()) {
                let _ = std::fs::create_dir_all(dir);
                let _ = std::fs::copy(&log, dir.join(name));
            }
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<_> = text.lines().collect();
            // Warnings and errors say what went wrong; the last lines say where it stood.
            let notable: Vec<_> = lines
                .iter()
                .filter(|line| line.contains("WARN") || line.contains("ERROR"))
                .collect();
            eprintln!(
                "==== {}: {} warnings and errors (last 30)",
                log.display(),
                notable.len()
            );
            for line in &notable[notable.len().saturating_sub(30)..] {
                eprintln!("{line}");
            }
            eprintln!("==== {}: last 15 lines", log.display());
            for line in &lines[lines.len().saturating_sub(15)..] {
                eprintln!("{line}");
            }
        }
    }

    /// Waits until `check` holds, polling; dumps the logs and panics with `what` after `timeout`.
    pub async fn wait_for<F, Fut>(&self, what: &str, timeout: Duration, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + timeout;
        while !check().await {
            if Instant::now() > deadline {
                self.dump_logs();
                panic!("timed out after {timeout:?} waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn colour_codes_are_stripped() {
        assert_eq!(
            super::strip_ansi("\u{1b}[3mpeer_id\u{1b}[0m\u{1b}[2m=\u{1b}[0m12D3 done"),
            "peer_id=12D3 done"
        );
    }
}
