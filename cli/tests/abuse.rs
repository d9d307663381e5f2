//! An abuse run against the real binaries on loopback (issue 11): while `acre-node` authors with an
//! `acre-farmer`, a client floods it with 10,000 zero-fee and future-nonce transactions from fresh keys,
//! resubmits a winning solution 1,000 times and submits 1,000 blocks whose proof of time is garbage.
//! Authoring must go on at its undisturbed rate (blocks per slot, compared with a two-sample Poisson
//! bound), an honest transfer sent in the middle must be included within 5 blocks, the node's memory must
//! stay bounded, and every rejection must be counted in `/metrics`.

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use acre_consensus::blocks::{Body, Header};
use acre_consensus::codec;
use acre_execution::{Address, SignedTransaction, Transfer};
use acre_node::ChainSpec;
use acre_node::chain_spec::dev_key;
use acre_rpc_api::{ChainApiClient, FarmerApiClient, HexBytes, RawBlock, SolutionSubmission};
use ed25519_dalek::SigningKey;
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};

mod common;

use common::{ACRE, free_port, spawn_farmer, spawn_node};

/// Blocks observed in each phase: enough for a meaningful rate, few enough for CI.
const BLOCKS_PER_PHASE: u64 = 18;

fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS")
}

fn metrics(port: u16) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("metrics server");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("response");
    text
}

fn counter(text: &str, prefix: &str) -> u64 {
    text.lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

async fn wait_for(client: &WsClient, number: u64) -> acre_rpc_api::ChainHead {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let head = client.head().await.expect("head");
        if head.best_number >= number {
            return head;
        }
        assert!(
            Instant::now() < deadline,
            "no block {number} in time (best {})",
            head.best_number
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn a_flooded_node_keeps_authoring_and_counts_every_rejection() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut spec = ChainSpec::dev();
    spec.name = "abuse".into();
    spec.params.pot_iterations = 20_000_000;
    let spec_path = dir.path().join("spec.json");
    std::fs::write(&spec_path, serde_json::to_string(&spec).expect("JSON")).expect("writes");
    let genesis_hash = spec.genesis().expect("genesis").header.hash();
    let (port, farmer_port, metrics_port) = (free_port(), free_port(), free_port());
    let node = spawn_node(
        &spec_path,
        &dir.path().join("node"),
        port,
        farmer_port,
        Some(metrics_port),
        "error",
    );
    let farm = dir.path().join("farm");
    let _farmer = spawn_farmer(farmer_port, &Address([0x5a; 32]), &farm, "512K", "error");
    let node_url = format!("ws://127.0.0.1:{port}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let connect = |url: String| async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Ok(client) = WsClientBuilder::default().build(&url).await {
                    return client;
                }
                assert!(Instant::now() < deadline, "cannot connect to {url}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        let public = connect(node_url.clone()).await;
        let farmer_rpc = connect(format!("ws://127.0.0.1:{farmer_port}")).await;

        // Undisturbed: blocks per slot over BLOCKS_PER_PHASE blocks.
        let start = wait_for(&public, 2).await;
        let calm_end = wait_for(&public, start.best_number + BLOCKS_PER_PHASE).await;
        let calm = (
            calm_end.best_number - start.best_number,
            calm_end.best_slot - start.best_slot,
        );
        let rss_before = resident_kib(node.0.id());

        // The flood. Transactions first: fresh keys, half without a fee, half far in the future.
        let flood_start = public.head().await.expect("head");
        let bob = Address::of(&dev_key("bob"));
        for i in 0u32..10_000 {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            seed[31] = 0xab;
            let key = SigningKey::from_bytes(&seed);
            let (fee, nonce) = if i % 2 == 0 { (0, 0) } else { (1_000_000, 1_000 + u64::from(i)) };
            let tx = SignedTransaction::sign(
                Transfer {
                    from: Address::of(&key),
                    to: bob,
                    amount: 1,
                    fee,
                    nonce,
                },
                genesis_hash,
                &key,
            );
            assert!(
                public.submit_transaction(HexBytes(tx.encode())).await.is_err(),
                "a never-includable transaction was admitted"
            );
        }

        // The honest transfer, in the middle of the flood.
        let alice_key = dir.path().join("alice.key");
        std::fs::write(&alice_key, format!("{}\n", hex::encode(dev_key("alice").to_bytes()))).expect("key");
        let submitted_at = public.head().await.expect("head").best_number;
        let honest = {
            let node_url = node_url.clone();
            let alice_key = alice_key.clone();
            std::thread::spawn(move || {
                Command::new(ACRE)
                    .args(["transfer", "--key"])
                    .arg(&alice_key)
                    .args(["--to", &bob.to_string(), "--amount", "1000", "--wait", "--node", &node_url])
                    .output()
                    .expect("acre runs")
            })
        };

        // A winning solution, resubmitted 1,000 times for an open slot.
        let best = public.head().await.expect("head");
        let raw = public
            .raw_block(best.best_hash)
            .await
            .expect("raw block")
            .expect("stored");
        let header = Header::decode(&raw.header.0).expect("header");
        let body = Body::decode(&raw.body.0).expect("body");
        let solution = header.unsealed.solution.clone().expect("solution");
        let open_slot = public.head().await.expect("head").current_slot;
        for _ in 0..1_000 {
            let _ = farmer_rpc
                .submit_solution(SolutionSubmission {
                    slot: open_slot,
                    solution: HexBytes(codec::encode(&solution)),
                })
                .await;
        }

        // 1,000 sealed blocks whose proof of time is garbage (the farmer's own key, so the seal and the
        // solution are fine: only the proof of time is wrong).
        let farmer_key = acre_farmer::daemon::identity::load_or_create_identity(&farm).expect("farmer key");
        for i in 0u32..1_000 {
            let mut unsealed = header.unsealed.clone();
            let last = unsealed.pot_checkpoints.len() - 1;
            for (byte, flip) in unsealed.pot_checkpoints[last].0[2].0.iter_mut().zip((i + 1).to_le_bytes()) {
                *byte ^= flip;
            }
            let forged = unsealed.seal(&farmer_key);
            let result = farmer_rpc
                .submit_block(RawBlock {
                    header: HexBytes(forged.encode()),
                    body: HexBytes(body.encode()),
                })
                .await;
            assert!(result.is_err(), "a block with garbage proof of time was imported");
        }

        // Authoring kept its rate through the flood.
        let flood_end = wait_for(&public, flood_start.best_number + BLOCKS_PER_PHASE).await;
        let flooded = (
            flood_end.best_number - flood_start.best_number,
            flood_end.best_slot - flood_start.best_slot,
        );
        let rate = |(blocks, slots): (u64, u64)| blocks as f64 / slots.max(1) as f64;
        let variance = |(blocks, slots): (u64, u64)| blocks as f64 / (slots.max(1) as f64).powi(2);
        let sigma = (variance(calm) + variance(flooded)).sqrt();
        eprintln!(
            "abuse: calm {calm:?} = {:.3} blocks/slot, flooded {flooded:?} = {:.3} blocks/slot (σ {sigma:.3})",
            rate(calm),
            rate(flooded)
        );
        assert!(
            rate(flooded) > rate(calm) - 4.0 * sigma,
            "authoring slowed under the flood: calm {calm:?}, flooded {flooded:?}"
        );

        let output = honest.join().expect("transfer thread");
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
        let included: u64 = stdout
            .split("included in block ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|number| number.parse().ok())
            .unwrap_or_else(|| panic!("no inclusion in {stdout:?}"));
        assert!(
            included <= submitted_at + 5,
            "the honest transfer waited from block {submitted_at} to {included}"
        );

        let rss_after = resident_kib(node.0.id());
        eprintln!("abuse: node RSS {rss_before} KiB before the flood, {rss_after} KiB after");
        assert!(
            rss_after < rss_before + 128 * 1024,
            "the node's memory grew from {rss_before} KiB to {rss_after} KiB"
        );

        let text = metrics(metrics_port);
        for (prefix, at_least) in [
            ("acre_txpool_rejected_total{", 10_000),
            ("acre_solutions_rejected_total{", 1_000),
            ("acre_blocks_rejected_by_reason_total{reason=\"proof_of_time\"}", 1_000),
        ] {
            let counted = counter(&text, prefix);
            assert!(counted >= at_least, "{prefix}: {counted} counted, expected at least {at_least}");
        }
    });
}
