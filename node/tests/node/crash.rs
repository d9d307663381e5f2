//! Crash safety: the `acre-node` binary is killed with SIGKILL at random moments while it authors (import,
//! archiving and finality all run while it does), ten times, or `ACRE_CRASH_KILLS` times
//! (`scripts/crash` runs 100). Every restart must open the database, still hold every block it had
//! acknowledged (reported as canonical over RPC before the kill), and resume authoring on top of them.

use acre_tests::free_port;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use acre_rpc_api::{ChainApiClient, Hex32};
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn spawn_node(spec: &std::path::Path, data: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_acre-node"))
        .arg("--chain")
        .arg(spec)
        .arg("--data-dir")
        .arg(data)
        // `port` is the farmer server's, which serves every method the test needs.
        .args([
            "--rpc-port",
            &free_port().to_string(),
            "--farmer-rpc-port",
            &port.to_string(),
            "--no-metrics",
            "--timekeeper",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("acre-node starts")
}

async fn connect(port: u16, node: &mut Child) -> WsClient {
    for _ in 0..200 {
        if let Ok(client) = WsClientBuilder::default()
            .build(format!("ws://127.0.0.1:{port}"))
            .await
        {
            return client;
        }
        if let Some(status) = node.try_wait().expect("waits") {
            panic!("acre-node exited with {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("acre-node did not open its RPC port");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_authoring_loses_no_acknowledged_block() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec_path = dir.path().join("spec.json");
    std::fs::write(&spec_path, serde_json::to_string(&test_spec()).expect("json")).expect("writes spec");
    let data = dir.path().join("data");
    let mut rng = ChaCha8Rng::seed_from_u64(0xac7e);
    let mut acknowledged: Vec<Hex32> = Vec::new();
    let mut plot = None;

    let kills: usize = std::env::var("ACRE_CRASH_KILLS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(10);
    let mut segments = 0;
    for round in 0..kills {
        let port = free_port();
        let mut node = spawn_node(&spec_path, &data, port);
        let client = Arc::new(connect(port, &mut node).await);
        for (number, hash) in acknowledged.iter().enumerate() {
            let block = client.block_by_number(number as u64).await.expect("block");
            assert_eq!(
                block.map(|block| block.hash),
                Some(*hash),
                "round {round}: acknowledged block {number} lost or changed"
            );
        }
        let plotted = match &plot {
            Some(plotted) => Arc::clone(plotted),
            None => plot.insert(crate::common::plot(&client, 6).await).clone(),
        };
        let _farmer = farm(Arc::clone(&client), plotted).await;
        let resumed_from = acknowledged.len() as u64;
        wait_for_block(&client, resumed_from, Duration::from_secs(90)).await;
        // Authoring resumed; kill at a random moment of it.
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..2_500))).await;
        let head = client.head().await.expect("head");
        segments = head.segment_count;
        let mut canonical = Vec::new();
        for number in 0..=head.best_number {
            match client.block_by_number(number).await {
                Ok(Some(block)) => canonical.push(block.hash),
                _ => break,
            }
        }
        node.kill().expect("SIGKILL");
        node.wait().expect("reaped");
        assert!(canonical.len() >= acknowledged.len());
        acknowledged = canonical;
    }
    assert!(acknowledged.len() > kills, "the chain grew across the crashes");
    println!(
        "kills: {kills}, acknowledged blocks: {}, lost: 0, segments archived: {segments}",
        acknowledged.len()
    );
}
