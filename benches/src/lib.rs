//! Shared helpers for Acre's criterion benchmarks (`cargo bench -p acre-benches --bench NAME`).
//!
//! Benchmarks are named `area/operation/param=value`. Single-threaded figures run inside a one-thread
//! rayon pool so the same code paths are measured with and without parallelism.

pub mod authoring;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Deterministic pseudo-random bytes for benchmark inputs.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut bytes);
    bytes
}

/// A rayon pool with `threads` threads (1 for single-threaded figures).
pub fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("building a rayon pool")
}

/// A positive number from the environment variable `name`, or `default` if it is unset.
pub fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .ok()
            .filter(|&number: &u64| number > 0)
            .unwrap_or_else(|| panic!("{name} must be a positive integer")),
        Err(_) => default,
    }
}

/// A node on loopback for in-process benches: ephemeral ports, no metrics or dashboard, no timekeeper,
/// and peers only from `bootstrap` (no multicast discovery).
pub fn loopback_node(
    spec: &acre_node::ChainSpec,
    dir: &std::path::Path,
    bootstrap: Vec<acre_network::Address>,
) -> acre_node::NodeConfig {
    let loopback = "127.0.0.1:0".parse().expect("address");
    acre_node::NodeConfig {
        spec: spec.clone(),
        data_dir: dir.to_path_buf(),
        rpc_address: loopback,
        farmer_rpc_address: loopback,
        farmer_rpc_unsafe_external: false,
        rpc_access: acre_node::rpc::RpcAccess::default(),
        metrics_address: None,
        dashboard_address: None,
        seal_timeout: std::time::Duration::from_secs(1),
        timekeeper: false,
        network: Some(acre_node::p2p::P2pConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("address")],
            bootstrap,
            reserved: Vec::new(),
            in_peers: 8,
            out_peers: 8,
            keep_piece_segments: None,
            mdns: false,
            snap: false,
        }),
        domain: None,
    }
}

/// Starts a node with an empty database bootstrapped to `peers` (snap-syncing if `snap`), waits until its
/// best block is at least `target`, stops it and returns the time from its start: what the sync benches
/// measure.
pub async fn sync_from(
    spec: &acre_node::ChainSpec,
    peers: Vec<acre_network::Address>,
    target: u64,
    snap: bool,
) -> std::time::Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let started = std::time::Instant::now();
    let mut config = loopback_node(spec, dir.path(), peers);
    if let Some(network) = &mut config.network {
        network.snap = snap;
    }
    let node = acre_node::Node::start(config)
        .await
        .expect("the syncing node starts");
    let mut heads = node.subscribe_new_heads();
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(120), heads.recv()).await {
            Ok(Ok(head)) if head.number >= target => break,
            Ok(Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(error)) => panic!("the syncing node stopped: {error}"),
            Err(_) => panic!("no new block for 120 s while syncing"),
        }
    }
    let elapsed = started.elapsed();
    node.stop().await;
    elapsed
}

/// Stores an authored chain in a fresh node database under `dir` (a source node's), importing every
/// block as the node does; returns the chain.
pub fn store_chain(authored: &authoring::AuthoredChain, dir: &std::path::Path) -> acre_node::Chain {
    let chain = acre_node::Chain::open(authored.spec.clone(), Some(&dir.join(acre_node::DATABASE_FILE)))
        .expect("opens the source database");
    for (header, body) in &authored.blocks {
        chain
            .import(header, body, &authored.timekeeper)
            .expect("an authored block imports");
    }
    chain
}

/// Starts a source node on the database in `source_dir`, syncs an empty node from it (snap-syncing if
/// `snap`) until its best block is at least `blocks`, stops both and returns the sync's time.
pub async fn sync_from_node(
    spec: &acre_node::ChainSpec,
    source_dir: &std::path::Path,
    blocks: u64,
    snap: bool,
) -> std::time::Duration {
    let source = acre_node::Node::start(loopback_node(spec, source_dir, Vec::new()))
        .await
        .expect("the source node starts");
    let mut address = Vec::new();
    while address.is_empty() {
        address = source.peer_addresses().await;
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let elapsed = sync_from(spec, address, blocks, snap).await;
    source.stop().await;
    elapsed
}
