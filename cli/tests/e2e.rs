//! End to end with the real binaries on loopback: `acre-node` and `acre-farmer farm` author at least 20
//! blocks; `acre transfer` moves a balance; the farmer's votes are included at the rate its plot predicts;
//! the farmer's reward address is paid for every block and vote; `acre chain --json` reports the chain.
//!
//! The node and farmer binaries are found next to `acre` (`cargo test --workspace` builds all three).

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use acre_consensus::params::ProtocolParams;
use acre_execution::Address;
use acre_farmer::daemon::farms::PLOT_FILE;
use acre_farmer::plot_file::Farm;
use acre_node::ChainSpec;
use acre_node::chain_spec::{DEV_ENDOWMENT, dev_key};

mod common;

use common::{ACRE, free_port, spawn_farmer, spawn_node};

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

/// `acre block N --json` for blocks `1..=best`: (slot, solution range, vote slots) of each.
fn blocks(node: &str, best: u64) -> Vec<(u64, u64, Vec<u64>)> {
    (1..=best)
        .map(|number| {
            let output = acre(&["block", &number.to_string(), "--json", "--node", node]);
            assert!(output.status.success(), "acre block {number}");
            let block: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
            let votes = block["votes"].as_array().expect("votes");
            (
                block["slot"].as_u64().expect("slot"),
                block["solution_range"].as_u64().expect("range"),
                votes
                    .iter()
                    .map(|vote| vote["slot"].as_u64().expect("vote slot"))
                    .collect(),
            )
        })
        .collect()
}

/// Probability that a slot without a block for a farmer with these sectors still gives it a vote (spec 7).
///
/// A slot audits one s-bucket chosen uniformly; each of the `c` chunks there wins a block with probability
/// `q = range / 2^64` and a vote (or block) with `(expected_votes + 1) × q`, independently. So, averaged over
/// the s-buckets, `P(vote | no block) = 1 − Σ(1 − (e+1)q)^c / Σ(1 − q)^c`.
fn vote_probability(s_bucket_sizes: &[u16], range: u64, params: &ProtocolParams) -> f64 {
    let q = range as f64 / 2f64.powi(64);
    let vote_q = q * f64::from(params.expected_votes_per_block + 1);
    let no_block: f64 = s_bucket_sizes.iter().map(|&c| (1.0 - q).powi(c.into())).sum();
    let no_claim: f64 = s_bucket_sizes
        .iter()
        .map(|&c| (1.0 - vote_q).powi(c.into()))
        .sum();
    1.0 - no_claim / no_block
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

    let _node = spawn_node(
        &spec_path,
        &dir.path().join("node"),
        port,
        farmer_port,
        None,
        "warn",
    );
    let reward = Address([0x5a; 32]);
    let farm = dir.path().join("farm");
    // One sector: the vote statistics below know exactly which chunks it audits.
    let farmer = spawn_farmer(farmer_port, &reward, &farm, "80K", "warn");

    let alice_key = dir.path().join("alice.key");
    std::fs::write(
        &alice_key,
        format!("{}\n", hex::encode(dev_key("alice").to_bytes())),
    )
    .expect("key");
    let bob = Address::of(&dev_key("bob"));

    let deadline = Instant::now() + Duration::from_secs(420);
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
        // Enough slots without a block for the vote rate to mean something.
        let slot = head["best_slot"].as_u64().unwrap_or(0);
        if best >= 20 && transferred && slot >= best + 120 {
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

    // Votes: in every gap between two blocks, each slot without a block gives the farmer a vote with
    // probability `p`; every vote must be included in the next block (there is no other farmer whose block
    // could supersede its parent).
    // Stop the farmer first so that no block lands between the reads below.
    drop(farmer);
    std::thread::sleep(Duration::from_millis(500));
    let head = chain_json(&node_url).expect("the node answers");
    let best = head["best_number"].as_u64().expect("best_number");
    let blocks = blocks(&node_url, best);
    let rewards = balance(&node_url, &reward);
    let farm = Farm::open(&farm.join(PLOT_FILE), &spec.params).expect("the farm opens");
    let sectors: Vec<_> = farm.plotted().collect();
    assert_eq!(sectors.len(), 1, "one sector plotted");
    let range = blocks[0].1;
    assert!(
        blocks.iter().all(|block| block.1 == range),
        "one era: the solution range is the genesis one"
    );
    let p = vote_probability(&sectors[0].s_bucket_sizes, range, &spec.params);
    let mut empty_slots = 0u64;
    let mut votes = 0u64;
    for pair in blocks.windows(2) {
        let (previous, block) = (&pair[0], &pair[1]);
        empty_slots += block.0 - previous.0 - 1;
        for vote_slot in &block.2 {
            assert!(
                (previous.0 + 1..block.0).contains(vote_slot),
                "vote for slot {vote_slot} in the block at slot {}",
                block.0
            );
        }
        votes += block.2.len() as u64;
    }
    let expected = p * empty_slots as f64;
    let sigma = (empty_slots as f64 * p * (1.0 - p)).sqrt();
    eprintln!(
        "{votes} votes in {empty_slots} slots without a block; expected {expected:.1} ± {sigma:.1} (p = {p:.3})"
    );
    assert!(
        (votes as f64 - expected).abs() <= 4.0 * sigma,
        "{votes} votes in {empty_slots} slots without a block, expected {expected:.1} ± {sigma:.1}"
    );

    // Every block and every included vote is paid to the farmer's reward address, and the transfer's fee
    // to the block's author.
    let all_votes: u64 = blocks.iter().map(|block| block.2.len() as u64).sum();
    assert_eq!(
        rewards,
        u128::from(best) * spec.block_reward.0 + u128::from(all_votes) * spec.vote_reward.0 + 3_000,
        "{best} blocks and {all_votes} votes paid"
    );
}
