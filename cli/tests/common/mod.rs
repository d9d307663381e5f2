//! What the tests that run the real binaries share: finding them, cleaning up after them, free ports.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use acre_execution::Address;

/// The `acre` binary under test.
pub const ACRE: &str = env!("CARGO_BIN_EXE_acre");

/// A binary built next to `acre` (`cargo test --workspace` builds `acre-node` and `acre-farmer` too).
pub fn sibling(name: &str) -> PathBuf {
    let path = Path::new(ACRE).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo test --workspace` (it builds acre-node and acre-farmer too)",
        path.display()
    );
    path
}

pub use acre_tests::KillOnDrop;

// Not every test file that includes this module picks ports.
#[allow(unused_imports)]
pub use acre_tests::free_port;

/// Starts `acre-node` on the chain spec at `spec` with its data in `data`, its public RPC on `rpc_port`,
/// its farmer RPC on `farmer_port`, metrics on `metrics_port` (none: `--no-metrics`), logging at `log`.
pub fn spawn_node(
    spec: &Path,
    data: &Path,
    rpc_port: u16,
    farmer_port: u16,
    metrics_port: Option<u16>,
    log: &str,
) -> KillOnDrop {
    spawn_node_with(spec, data, rpc_port, farmer_port, metrics_port, log, &[])
}

/// [`spawn_node`] with `extra` arguments.
pub fn spawn_node_with(
    spec: &Path,
    data: &Path,
    rpc_port: u16,
    farmer_port: u16,
    metrics_port: Option<u16>,
    log: &str,
    extra: &[&str],
) -> KillOnDrop {
    let mut command = Command::new(sibling("acre-node"));
    command.args(extra);
    command
        .arg("--chain")
        .arg(spec)
        .arg("--data-dir")
        .arg(data)
        .args([
            "--rpc-port",
            &rpc_port.to_string(),
            "--farmer-rpc-port",
            &farmer_port.to_string(),
            "--timekeeper",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
        ]);
    match metrics_port {
        Some(port) => command.args(["--metrics-port", &port.to_string()]),
        None => command.arg("--no-metrics"),
    };
    KillOnDrop(
        command
            .env("RUST_LOG", log)
            .stdout(Stdio::null())
            .spawn()
            .expect("acre-node starts"),
    )
}

/// Starts `acre-farmer farm` against the node's farmer RPC on `farmer_port`, paying `reward`, with the
/// farm at `farm` of `size` (as the farm argument takes it, e.g. `512K`), logging at `log`.
pub fn spawn_farmer(farmer_port: u16, reward: &Address, farm: &Path, size: &str, log: &str) -> KillOnDrop {
    KillOnDrop(
        Command::new(sibling("acre-farmer"))
            .args([
                "farm",
                "--node",
                &format!("ws://127.0.0.1:{farmer_port}"),
                "--reward-address",
                &reward.to_string(),
                "--no-metrics",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
            ])
            .arg(format!("path={},size={size}", farm.display()))
            .env("RUST_LOG", log)
            .stdout(Stdio::null())
            .spawn()
            .expect("acre-farmer starts"),
    )
}
