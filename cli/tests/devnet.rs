//! `acre devnet`: a local network in one command, its table, and a clean stop on Ctrl-C.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use acre_node::ChainSpec;
use common::{ACRE, KillOnDrop};

/// A base port with its next 20 ports free a moment ago.
fn free_base() -> u16 {
    loop {
        let base = acre_tests::free_port();
        if base > 65000 {
            continue;
        }
        let free = (0..20).all(|offset| std::net::TcpListener::bind(("127.0.0.1", base + offset)).is_ok());
        if free {
            return base;
        }
    }
}

#[test]
fn devnet_runs_nodes_that_agree_shows_them_and_stops_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut spec = ChainSpec::dev();
    spec.name = "devnet-test".into();
    spec.params.pot_iterations = 12_000_000;
    let spec_path = dir.path().join("spec.json");
    std::fs::write(&spec_path, serde_json::to_string(&spec).expect("JSON")).expect("writes");
    let base = free_base();
    let mut devnet = KillOnDrop(
        Command::new(ACRE)
            .args(["devnet", "--nodes", "2", "--farmers", "1", "--plot-size", "1M"])
            .args(["--base-port", &base.to_string()])
            .arg("--chain")
            .arg(&spec_path)
            .arg("--data-dir")
            .arg(dir.path().join("net"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("acre devnet starts"),
    );
    let (lines, received) = mpsc::channel();
    let stdout = devnet.0.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });

    // Not a terminal: a snapshot of the table every few seconds. Wait for both nodes at block 3 or more
    // with a peer each.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut synced = [false, false];
    while synced != [true, true] {
        let line = received
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| {
                panic!(
                    "the table never showed both nodes past block 3:\n{}",
                    seen.join("\n")
                )
            });
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [name, peers, best, ..] = fields[..]
            && let Some(index) = name
                .strip_prefix("node")
                .and_then(|index| index.parse::<usize>().ok())
            && index < 2
            && let Some(best) = best.strip_prefix('#').and_then(|best| best.parse::<u64>().ok())
        {
            // Its peers are the other node and, for one of them, the farmer.
            synced[index] = peers.parse::<u32>().is_ok_and(|peers| peers >= 1) && best >= 3;
        }
        seen.push(line);
    }
    let header = seen.join("\n");
    assert!(
        header.contains(&format!("RPC ws://127.0.0.1:{}", base + 1)),
        "{header}"
    );
    assert!(
        header.contains(&format!("peers /ip4/127.0.0.1/tcp/{}", base + 10)),
        "{header}"
    );

    // Ctrl-C stops everything and exits cleanly.
    let status = Command::new("kill")
        .args(["-INT", &devnet.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let stopping = Instant::now();
    let exit = loop {
        if let Some(exit) = devnet.0.try_wait().expect("waits") {
            break exit;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(20),
            "acre devnet did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "{exit}");
    let rest: Vec<String> = received.iter().collect();
    assert!(rest.iter().any(|line| line == "all stopped"), "{rest:?}");
    // Each process wrote its log, and the timekeeper's names both of its peers' arrival.
    let log = std::fs::read_to_string(dir.path().join("net/node0.log")).expect("node0's log");
    assert!(log.contains("peer connected"), "{log}");
    assert!(dir.path().join("net/farmer0.log").exists());
}
