//! The `acre-node` binary as an operator runs it: metrics on `/metrics`, a clean exit on Ctrl-C (SIGINT)
//! within the shutdown deadline, and a database that reopens right after.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use acre_rpc_api::{ChainApiClient, FarmerApiClient};
use common::test_spec;
use jsonrpsee::core::ClientError;
use jsonrpsee::types::error::METHOD_NOT_FOUND_CODE;
use jsonrpsee::ws_client::WsClientBuilder;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn http_get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connects");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("writes");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("reads");
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_metrics_and_stops_cleanly_on_sigint() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = dir.path().join("spec.json");
    std::fs::write(&spec, serde_json::to_string(&test_spec()).expect("json")).expect("writes");
    for round in 0..2 {
        let (rpc, farmer_rpc, metrics) = (free_port(), free_port(), free_port());
        let mut node = Command::new(env!("CARGO_BIN_EXE_acre-node"))
            .arg("--chain")
            .arg(&spec)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args([
                "--rpc-port",
                &rpc.to_string(),
                "--farmer-rpc-port",
                &farmer_rpc.to_string(),
                "--metrics-port",
                &metrics.to_string(),
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("acre-node starts");
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
        assert!(http_get(metrics, "/elsewhere").starts_with("HTTP/1.1 404"));

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
