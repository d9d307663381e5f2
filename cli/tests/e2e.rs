//! End to end with the real binaries on loopback: `acre-node` and `acre-farmer farm` author at least 20
//! blocks; `acre transfer` moves a balance; the farmer's reward address is paid; `acre chain --json`
//! reports the chain.
//!
//! The node and farmer binaries are found next to `acre` (`cargo test --workspace` builds all three).

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use acre_execution::Address;
use acre_node::ChainSpec;
use acre_node::chain_spec::{DEV_ENDOWMENT, dev_key};

mod common;

use common::{ACRE, Guard, free_port, sibling};

fn acre(args: &[&str]) -> Output {
    Command::new(ACRE).args(args).output().expect("acre runs")
}

fn chain_json(node: &str) -> Option<serde_json::Value> {
    let output = acre(&["chain", "--json", "--node", node]);
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).expect("utf-8");
    assert_eq!(
        text.trim().lines().count(),
        1,
        "one JSON object on one line: {text}"
    );
    Some(serde_json::from_str(text.trim()).expect("valid JSON"))
}

fn balance(node: &str, address: &Address) -> u128 {
    let output = acre(&["balance", &address.to_string(), "--json", "--node", node]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    json["balance"]
        .as_str()
        .expect("balance string")
        .parse()
        .expect("u128")
}

#[test]
fn node_and_farmer_binaries_author_blocks_and_acre_transfers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut spec = ChainSpec::dev();
    spec.name = "e2e".into();
    spec.params.pot_iterations = 20_000_000;
    let spec_path = dir.path().join("spec.json");
    std::fs::write(&spec_path, serde_json::to_string(&spec).expect("JSON")).expect("writes");
    let port = free_port();
    let node_url = format!("ws://127.0.0.1:{port}");
    let farmer_port = free_port();
    let farmer_url = format!("ws://127.0.0.1:{farmer_port}");

    let _node = Guard(
        Command::new(sibling("acre-node"))
            .arg("--chain")
            .arg(&spec_path)
            .arg("--data-dir")
            .arg(dir.path().join("node"))
            .args([
                "--rpc-port",
                &port.to_string(),
                "--farmer-rpc-port",
                &farmer_port.to_string(),
                "--no-metrics",
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("acre-node starts"),
    );
    let reward = Address([0x5a; 32]);
    let farm = dir.path().join("farm");
    let _farmer = Guard(
        Command::new(sibling("acre-farmer"))
            .args([
                "farm",
                "--node",
                &farmer_url,
                "--reward-address",
                &reward.to_string(),
            ])
            .arg(format!("path={},size=512K", farm.display()))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("acre-farmer starts"),
    );

    let alice_key = dir.path().join("alice.key");
    std::fs::write(
        &alice_key,
        format!("{}\n", hex::encode(dev_key("alice").to_bytes())),
    )
    .expect("key");
    let bob = Address::of(&dev_key("bob"));

    let deadline = Instant::now() + Duration::from_secs(240);
    let mut transferred = false;
    let head = loop {
        assert!(Instant::now() < deadline, "fewer than 20 blocks in time");
        std::thread::sleep(Duration::from_millis(300));
        let Some(head) = chain_json(&node_url) else {
            continue;
        };
        let best = head["best_number"].as_u64().expect("best_number");
        if best >= 2 && !transferred {
            let output = acre(&[
                "transfer",
                "--key",
                alice_key.to_str().expect("utf-8 path"),
                "--to",
                &bob.to_string(),
                "--amount",
                "1000",
                "--fee",
                "3000",
                "--wait",
                "--node",
                &node_url,
            ]);
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "acre transfer failed: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(stdout.contains("included in block"), "{stdout}");
            transferred = true;
        }
        if best >= 20 && transferred {
            break head;
        }
    };
    for field in ["best_hash", "finalized_or_archived_number", "segment_count"] {
        assert!(
            head.get(field).is_some(),
            "acre chain --json lacks {field}: {head}"
        );
    }
    assert!(head["segment_count"].as_u64().expect("count") >= 1);
    assert_eq!(balance(&node_url, &bob), DEV_ENDOWMENT + 1_000);
    assert_eq!(
        balance(&node_url, &Address::of(&dev_key("alice"))),
        DEV_ENDOWMENT - 4_000
    );
    let rewards = balance(&node_url, &reward);
    assert!(rewards >= 20 * spec.block_reward.0, "rewards {rewards}");
}
