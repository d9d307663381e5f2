//! The `acre-node` binary as an operator runs it: metrics on `/metrics`, a clean exit on Ctrl-C (SIGINT)
//! within the shutdown deadline, and a database that reopens right after.

use acre_tests::{KillOnDrop, free_port, http_get};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::test_spec;
use acre_rpc_api::{ChainApiClient, FarmerApiClient};
use jsonrpsee::core::ClientError;
use jsonrpsee::types::error::METHOD_NOT_FOUND_CODE;
use jsonrpsee::ws_client::WsClientBuilder;

/// `acre-node` on the test chain (its spec written into `dir` if not there yet) with its data in
/// `dir/data`, the given RPC ports and no standard output.
fn node_command(dir: &std::path::Path, rpc: u16, farmer_rpc: u16) -> Command {
    let spec = dir.join("spec.json");
    if !spec.exists() {
        std::fs::write(&spec, serde_json::to_string(&test_spec()).expect("json")).expect("writes");
    }
    let mut command = Command::new(env!("CARGO_BIN_EXE_acre-node"));
    command
        .arg("--chain")
        .arg(&spec)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--rpc-port", &rpc.to_string()])
        .args(["--farmer-rpc-port", &farmer_rpc.to_string()])
        .args(["--timekeeper", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"])
        .stdout(Stdio::null());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_metrics_and_stops_cleanly_on_sigint() {
    let dir = tempfile::tempdir().expect("temp dir");
    for round in 0..2 {
        let (rpc, farmer_rpc, metrics) = (free_port(), free_port(), free_port());
        let mut node = KillOnDrop(
            node_command(dir.path(), rpc, farmer_rpc)
                .args(["--metrics-port", &metrics.to_string()])
                .env("RUST_LOG", "warn")
                .spawn()
                .expect("acre-node starts"),
        );
        let client = loop {
            if let Ok(client) = WsClientBuilder::default()
                .build(format!("ws://127.0.0.1:{rpc}"))
                .await
            {
                break client;
            }
            assert!(
                node.try_wait().expect("waits").is_none(),
                "round {round}: acre-node exited early"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let head = client.head().await.expect("head");
        assert_eq!(head.chain, "test");
        // Farming is not served on the public port, only on the farmer port.
        assert!(matches!(
            client.info().await,
            Err(ClientError::Call(error)) if error.code() == METHOD_NOT_FOUND_CODE
        ));
        let farmer = WsClientBuilder::default()
            .build(format!("ws://127.0.0.1:{farmer_rpc}"))
            .await
            .expect("the farmer port is open");
        assert_eq!(farmer.info().await.expect("farmer info").chain, "test");

        let response = http_get(metrics, "/metrics");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.contains("acre_best_block_number"), "{response}");
        assert!(response.contains("acre_current_slot"), "{response}");
        assert!(
            response.contains("content-type: application/openmetrics-text"),
            "{response}"
        );
        let (_, body) = response.split_once("\r\n\r\n").expect("a body");
        acre_tests::metrics_docs::assert_metrics_match_docs("acre-node", body);
        assert!(http_get(metrics, "/elsewhere").starts_with("HTTP/1.1 404"));
        // No farmer: the node is not importing, and says so.
        let health = http_get(metrics, "/health");
        assert!(health.starts_with("HTTP/1.1 503"), "{health}");
        assert!(health.contains("unhealthy: "), "{health}");

        let status = Command::new("kill")
            .args(["-INT", &node.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let started = Instant::now();
        let exit = loop {
            if let Some(exit) = node.try_wait().expect("waits") {
                break exit;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "no exit after SIGINT"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(exit.success(), "round {round}: exit status {exit}");
    }
}

#[test]
fn refuses_an_external_farmer_rpc_address_without_the_opt_in() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_acre-node"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--farmer-rpc-listen", "0.0.0.0", "--no-metrics"])
        .args(["--rpc-port", &free_port().to_string()])
        .env("RUST_LOG", "error")
        .output()
        .expect("acre-node runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--farmer-rpc-unsafe-external"), "{stderr}");
    // Refused before anything was created.
    assert!(!dir.path().join(acre_node::DATABASE_FILE).exists());
}

#[test]
fn a_config_file_with_an_unknown_key_is_refused_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "rpc-prot = 9944\n").expect("writes");
    let output = Command::new(env!("CARGO_BIN_EXE_acre-node"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config)
        .output()
        .expect("acre-node runs");
    assert_eq!(output.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "config file {}: unknown key `rpc-prot`",
            config.display()
        )),
        "{stderr}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "refused before anything was created"
    );
}

/// Settings from `--config` (here the log format), as a service would run the node.
#[test]
fn writes_json_log_lines_with_log_format_json() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("temp dir");
    // The settings come from a config file (its keys are the flags' names).
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "log-format = \"json\"\nno-metrics = true\n").expect("writes");
    let mut node = KillOnDrop(
        node_command(dir.path(), free_port(), free_port())
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .expect("acre-node starts"),
    );
    let stderr = node.stderr.take().expect("piped stderr");
    // The node logs as it opens its database and starts its servers; a few lines are enough. They are
    // read on a thread so that a node that logs less fails the test instead of hanging it.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let lines: Vec<String> = (0..3)
        .map_while(|_| receiver.recv_timeout(Duration::from_secs(30)).ok())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for line in &lines {
        let entry: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|error| panic!("{line}: {error}"));
        assert!(entry["timestamp"].is_string(), "{line}");
        assert!(
            ["INFO", "WARN", "ERROR"].contains(&entry["level"].as_str().unwrap_or_default()),
            "{line}"
        );
        assert!(
            entry["target"]
                .as_str()
                .is_some_and(|target| target.starts_with("acre")),
            "{line}"
        );
        assert!(entry["fields"]["message"].is_string(), "{line}");
    }
}

#[test]
fn resync_drops_the_chain_database_and_keeps_the_peer_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("creates");
    let database = data.join(acre_node::DATABASE_FILE);
    std::fs::write(&database, b"not a database").expect("writes");
    let key = format!("{}\n", "17".repeat(32));
    std::fs::write(data.join("peer.key"), &key).expect("writes the key");

    // A broken database stops the node, and nothing is deleted without --resync.
    let refused = node_command(dir.path(), free_port(), free_port())
        .arg("--no-metrics")
        .stderr(Stdio::piped())
        .output()
        .expect("acre-node runs");
    assert!(!refused.status.success());
    assert_eq!(std::fs::read(&database).expect("still there"), b"not a database");

    // With --resync the database is dropped and made anew; the peer key (and so the peer id) stays.
    let metrics = free_port();
    let _node = KillOnDrop(
        node_command(dir.path(), free_port(), free_port())
            .args(["--resync", "--metrics-port", &metrics.to_string()])
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("acre-node starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while acre_tests::try_http_get(metrics, "/metrics").is_none() {
        assert!(
            Instant::now() < deadline,
            "the resynced node never served metrics"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_ne!(
        std::fs::read(&database).expect("a new database"),
        b"not a database"
    );
    assert_eq!(
        std::fs::read_to_string(data.join("peer.key")).expect("the key"),
        key
    );
}
