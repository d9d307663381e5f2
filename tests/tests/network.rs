//! Many machines on loopback: real `acre-node` and `acre-farmer` binaries joined by the P2P network.

use std::time::Duration;

use acre_rpc_api::{ChainApiClient, FarmerApiClient};
use acre_tests::cluster::{Cluster, ClusterNode, NodeOptions};

const REWARD_A: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const REWARD_B: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const RECIPIENT: &str = "4444444444444444444444444444444444444444444444444444444444444444";

/// The dev chain with quicker slots, as the node's own tests use.
fn spec() -> serde_json::Value {
    Cluster::dev_spec(|spec| {
        spec["name"] = "network-test".into();
        spec["params"]["pot_iterations"] = 12_000_000.into();
    })
}

/// Whether `node`'s best chain holds block `hash` at `number`.
async fn has_canonical(node: &ClusterNode, number: u64, hash: &str) -> bool {
    match node.client().await.block_by_number(number).await {
        Ok(Some(block)) => block.hash.to_string() == hash,
        _ => false,
    }
}

/// Takes the timekeeper's best block and waits until every node's best chain holds it; returns how
/// many slots that took (by the timekeeper's clock).
async fn slots_to_agree(cluster: &Cluster) -> u64 {
    let timekeeper = &cluster.nodes[0];
    let head = timekeeper.head().await;
    let hash = head.best_hash.to_string();
    loop {
        let mut all = true;
        for node in &cluster.nodes {
            if !has_canonical(node, head.best_number, &hash).await {
                all = false;
                break;
            }
        }
        let now = timekeeper.head().await.current_slot;
        if all {
            return now.saturating_sub(head.current_slot);
        }
        if now > head.current_slot + 30 {
            cluster.dump_logs();
            panic!(
                "block #{} {hash} did not reach every node within 30 slots",
                head.best_number
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn metric(node: &ClusterNode, name: &str) -> f64 {
    let body = acre_tests::http_get(node.metrics_port, "/metrics");
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from the metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_nodes_and_two_farmers_author_one_chain_a_late_node_full_syncs_and_a_killed_one_rejoins() {
    let mut cluster = Cluster::new(&spec());
    cluster.start_node(
        "node0",
        &NodeOptions {
            timekeeper: true,
            ..NodeOptions::default()
        },
    );
    let followers = NodeOptions {
        bootstrap: vec![cluster.nodes[0].p2p_address()],
        ..NodeOptions::default()
    };
    // Node 1 keeps the pieces of its newest segment only: older ones come from the DSN.
    let pruning = NodeOptions {
        extra: vec!["--keep-piece-segments".into(), "1".into()],
        ..followers.clone()
    };
    let one = cluster.start_node("node1", &pruning);
    let two = cluster.start_node("node2", &followers);
    // Both farmers farm through followers: their slots come from gossiped, verified proof of time.
    cluster.start_farmer(one, "1M", REWARD_A);
    cluster.start_farmer(two, "1M", REWARD_B);

    let timekeeper = &cluster.nodes[0];
    cluster
        .wait_for(
            "30 blocks on the timekeeper",
            Duration::from_secs(240),
            || async { timekeeper.head().await.best_number >= 30 },
        )
        .await;

    // A node started late, bootstrapped to a follower, catches up by full sync.
    let target = cluster.nodes[0].head().await.best_number;
    let late = cluster.start_node(
        "node3",
        &NodeOptions {
            bootstrap: vec![cluster.nodes[one].p2p_address()],
            ..NodeOptions::default()
        },
    );
    let node3 = &cluster.nodes[late];
    cluster
        .wait_for("the late node to sync", Duration::from_secs(120), || async {
            node3.head().await.best_number >= target
        })
        .await;
    assert!(
        metric(node3, "acre_blocks_synced_total") >= (target / 2) as f64,
        "the late node's blocks came by sync"
    );
    let network = node3.network().await;
    assert!(!network.peers.is_empty(), "{network:?}");
    assert!(!network.timekeeper);

    // Every node agrees on the best block within 3 slots, for several blocks in a row.
    let mut slots = Vec::new();
    for _ in 0..5 {
        slots.push(slots_to_agree(&cluster).await);
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    eprintln!("slots for all four nodes to hold the timekeeper's best block: {slots:?}");
    if slots.iter().any(|&taken| taken > 3) {
        cluster.dump_logs();
        panic!("a block took more than 3 slots to reach every node: {slots:?}");
    }

    // A transfer sent to the late node (which has no farmer) travels by gossip to the farmers' nodes,
    // is included, and every node sees its effect.
    let key = cluster.dir().join("alice.key");
    let secret = blake3::derive_key("acre dev account v1", b"alice");
    std::fs::write(&key, format!("{}\n", hex::encode(secret))).expect("writes the key");
    let sent = std::process::Command::new(acre_tests::cluster::binary("acre"))
        .args(["transfer", "--key"])
        .arg(&key)
        .args(["--to", RECIPIENT, "--amount", "50000", "--wait"])
        .args([
            "--node",
            &format!("ws://127.0.0.1:{}", cluster.nodes[late].rpc_port),
        ])
        .output()
        .expect("acre runs");
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    for node in &cluster.nodes {
        cluster
            .wait_for(
                &format!("{} to see the transfer", node.name),
                Duration::from_secs(30),
                || async {
                    let account = node
                        .client()
                        .await
                        .account(RECIPIENT.parse().expect("address"))
                        .await;
                    account.is_ok_and(|account| account.balance.0 == 50_000)
                },
            )
            .await;
    }

    // Once node 1 archived a second segment it dropped segment 0's pieces; a farmer asking it for one
    // gets it from a peer through the DSN, verified.
    let node1 = &cluster.nodes[one];
    cluster
        .wait_for("a second segment on node 1", Duration::from_secs(120), || async {
            node1.head().await.segment_count >= 2
        })
        .await;
    let farmer_rpc = jsonrpsee::ws_client::WsClientBuilder::default()
        .build(format!("ws://127.0.0.1:{}", node1.farmer_rpc_port))
        .await
        .expect("connects to the farmer RPC");
    // (Pruning follows the import that archived the segment, on its own thread: ask until it is done.)
    cluster
        .wait_for(
            "a piece of segment 0 from the DSN",
            Duration::from_secs(20),
            || async {
                let piece = FarmerApiClient::piece(&farmer_rpc, 1)
                    .await
                    .expect("farmer_piece");
                assert!(piece.is_some(), "piece 1 of segment 0 was found");
                metric(node1, "acre_dsn_pieces_total{source=\"peer\"}")
                    + metric(node1, "acre_dsn_pieces_total{source=\"reconstructed\"}")
                    >= 1.0
            },
        )
        .await;

    // A node killed with -9 and started again keeps its peer id, rejoins and catches up; its farmer
    // reconnects and keeps farming.
    let peer_id = cluster.nodes[one].network().await.peer_id;
    cluster.nodes[one].kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = cluster.nodes[0].head().await.best_number;
    cluster.restart_node(one, &pruning);
    let restarted = &cluster.nodes[one];
    assert_eq!(
        restarted.network().await.peer_id,
        peer_id,
        "the peer id survives a restart"
    );
    cluster
        .wait_for(
            "the restarted node to catch up",
            Duration::from_secs(90),
            || async { restarted.head().await.best_number > before },
        )
        .await;
    let listed = cluster.nodes[0].network().await.peers;
    assert!(
        listed.iter().any(|peer| Some(&peer.peer_id) == peer_id.as_ref()),
        "the timekeeper lists the restarted node again: {listed:?}"
    );
    assert!(slots_to_agree(&cluster).await <= 3);

    // Both farmers' nodes authored: rewards went to both addresses.
    for reward in [REWARD_A, REWARD_B] {
        let account = cluster.nodes[0]
            .client()
            .await
            .account(reward.parse().expect("address"))
            .await
            .expect("account");
        assert!(account.balance.0 > 0, "no reward for {reward}");
    }
}
