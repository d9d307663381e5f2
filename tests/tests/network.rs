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
/// many slots that took (by the timekeeper's clock). A block the timekeeper itself reorganises away (two
/// farmers won one slot, and the other branch grew first) is not one the nodes must agree on: the
/// measure starts again from the timekeeper's new best block, at most a few times.
async fn slots_to_agree(cluster: &Cluster) -> u64 {
    let timekeeper = &cluster.nodes[0];
    let mut head = timekeeper.head().await;
    let mut hash = head.best_hash.to_string();
    let mut orphaned = 0;
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
        if orphaned < 5 && !has_canonical(timekeeper, head.best_number, &hash).await {
            orphaned += 1;
            head = timekeeper.head().await;
            hash = head.best_hash.to_string();
            continue;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_nodes_and_two_farmers_author_one_chain_a_late_node_full_syncs_and_a_killed_one_rejoins() {
    let started = std::time::Instant::now();
    let mut cluster = Cluster::new(&spec());
    cluster.start_node(
        "node0",
        &NodeOptions {
            timekeeper: true,
            ..NodeOptions::default()
        },
    );
    // The followers join more slots late than one gossip message carries: they fetch the slots in
    // between (`pot-slots`) before they can follow, or no farmer here ever gets a challenge.
    let late_by = acre_network::messages::MAX_POT_SLOTS as u64 + 4;
    let timekeeper = &cluster.nodes[0];
    cluster
        .wait_for(
            "the timekeeper to prove a few slots",
            Duration::from_secs(60),
            || async { timekeeper.head().await.current_slot > late_by },
        )
        .await;
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
    // Farmer A keeps a tenth of its farm as a piece cache; farmer B 40 % (with 1 MiB farms, that is what
    // holds most of the history for the DSN sync below: a real network has many farmers for it, and a
    // larger cache is fewer sectors, so a slower chain here). Farmer B also knows node 1 (farmer A finds
    // it through its own node's farmer RPC).
    let farmer_a =
        cluster.start_farmer_with(one, "1M", REWARD_A, &["--cache-percentage".into(), "10".into()]);
    let with_bootstrap = [
        "--cache-percentage".into(),
        "40".into(),
        "--bootstrap".into(),
        cluster.nodes[one].p2p_address(),
    ];
    let farmer_b = cluster.start_farmer_with(two, "1M", REWARD_B, &with_bootstrap);

    let timekeeper = &cluster.nodes[0];
    cluster
        .wait_for(
            "30 blocks on the timekeeper",
            Duration::from_secs(240),
            || async { timekeeper.head().await.best_number >= 30 },
        )
        .await;
    for follower in [one, two] {
        assert!(
            cluster.nodes[follower].metric("acre_pot_slots_fetched_total") >= 1.0,
            "follower {follower} caught up by fetching proof of time"
        );
    }

    // A node started late, bootstrapped to a follower, catches up by full sync (snap sync has its own
    // test, `snap.rs`).
    let target = cluster.nodes[0].head().await.best_number;
    let late = cluster.start_node(
        "node3",
        &NodeOptions {
            bootstrap: vec![cluster.nodes[one].p2p_address()],
            extra: vec!["--sync".into(), "full".into()],
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
        node3.metric("acre_blocks_synced_total") >= (target / 2) as f64,
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
                node1.metric("acre_dsn_pieces_total{source=\"peer\"}")
                    + node1.metric("acre_dsn_pieces_total{source=\"reconstructed\"}")
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

    eprintln!("[{:.0?}] chain, sync, agreement, restart done", started.elapsed());
    dsn_serves_history_without_the_nodes(&mut cluster, one, farmer_a, farmer_b).await;
    eprintln!("[{:.0?}] DSN done", started.elapsed());
}

/// With every node but node 1 stopped (and node 1 holding only its newest segment's pieces) and farmer
/// A's piece cache wiped, every piece of segment 0 still comes back through the DSN, verified: from
/// farmer B's cache, from either farmer's plots, or rebuilt from half the segment. A farmer killed with
/// -9 comes back with the same peer id.
async fn dsn_serves_history_without_the_nodes(
    cluster: &mut Cluster,
    one: usize,
    farmer_a: usize,
    farmer_b: usize,
) {
    use acre_consensus::{Piece, PiecePosition, ProtocolParams, SegmentHeader, SegmentIndex};

    let cached = |farmer: usize| {
        std::fs::read_dir(cluster.farmers[farmer].dir.join("cache"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".piece"))
                    .count()
            })
            .unwrap_or(0)
    };
    cluster
        .wait_for(
            "both farmers to cache pieces",
            Duration::from_secs(30),
            || async { cached(farmer_a) > 0 && cached(farmer_b) > 0 },
        )
        .await;
    let started = std::time::Instant::now();
    eprintln!(
        "pieces cached: farmer A {}, farmer B {}",
        cached(farmer_a),
        cached(farmer_b)
    );
    for index in (0..cluster.nodes.len()).filter(|index| *index != one) {
        cluster.nodes[index].kill();
    }
    for entry in std::fs::read_dir(cluster.farmers[farmer_a].dir.join("cache")).expect("cache dir") {
        std::fs::remove_file(entry.expect("entry").path()).expect("wiped");
    }
    let node1 = &cluster.nodes[one];
    let params = ProtocolParams::dev();
    let farmer_rpc = jsonrpsee::ws_client::WsClientBuilder::default()
        .request_timeout(Duration::from_secs(120))
        .build(format!("ws://127.0.0.1:{}", node1.farmer_rpc_port))
        .await
        .expect("connects to the farmer RPC");
    let header = FarmerApiClient::segment_headers(&farmer_rpc, vec![0])
        .await
        .expect("segment headers")[0]
        .clone()
        .expect("segment 0 is archived");
    let header = SegmentHeader::decode(&header.0).expect("a segment header");
    let before = node1.metric("acre_dsn_pieces_total{source=\"peer\"}")
        + node1.metric("acre_dsn_pieces_total{source=\"reconstructed\"}");
    for position in 0..params.pieces_per_segment() {
        let index = SegmentIndex(0).piece_index(
            &params,
            PiecePosition(u16::try_from(position).expect("a position")),
        );
        let bytes = FarmerApiClient::piece(&farmer_rpc, index.0)
            .await
            .expect("farmer_piece")
            .unwrap_or_else(|| {
                cluster.dump_logs();
                panic!("piece {index} of segment 0 was not found")
            });
        let piece = Piece::decode(&params, &bytes.0).expect("a piece");
        piece
            .verify(&params, &header.segment_root, index.position(&params))
            .unwrap_or_else(|error| panic!("piece {index} does not verify: {error}"));
    }
    let after = node1.metric("acre_dsn_pieces_total{source=\"peer\"}")
        + node1.metric("acre_dsn_pieces_total{source=\"reconstructed\"}");
    eprintln!(
        "segment 0 through the DSN: {} pieces from farmers or rebuilt; rebuilt in all: {}",
        after - before,
        node1.metric("acre_dsn_pieces_total{source=\"reconstructed\"}")
    );
    assert!(
        after - before >= f64::from(params.pieces_per_segment()),
        "every piece came from the farmers or was rebuilt ({before} → {after})"
    );

    eprintln!("[{:.0?}] segment 0 retrieved", started.elapsed());
    // kill -9 and back: the same peer id (the key is in the first farm).
    cluster.farmers[farmer_b].kill();
    cluster.restart_farmer(farmer_b, one);
    let farmer = &cluster.farmers[farmer_b];
    cluster
        .wait_for(
            "the restarted farmer to rejoin the DSN",
            Duration::from_secs(30),
            || async { farmer.peer_ids().len() == 2 },
        )
        .await;
    let ids = farmer.peer_ids();
    assert_eq!(ids[0], ids[1], "the farmer's peer id survives kill -9");

    eprintln!("[{:.0?}] farmer restarted", started.elapsed());
    // A new node whose only peers are the farmers (node 1, the last node, is stopped: no peer has
    // blocks) rebuilds the archived history from the DSN: segment headers by majority, segments from
    // pieces, blocks through ordinary import.
    let last = cluster.nodes[one].head().await.segment_count - 1;
    let header = FarmerApiClient::segment_headers(&farmer_rpc, vec![last])
        .await
        .expect("segment headers")[0]
        .clone()
        .expect("the last segment");
    let last_block = SegmentHeader::decode(&header.0)
        .expect("a segment header")
        .last_archived_block;
    let complete = if last_block.is_complete() {
        last_block.number.0
    } else {
        last_block.number.0 - 1
    };
    let reference = cluster.nodes[one]
        .client()
        .await
        .block_by_number(complete)
        .await
        .expect("block")
        .expect("node 1 has it");
    cluster.nodes[one].kill();
    let bootstrap: Vec<String> = [farmer_a, farmer_b]
        .iter()
        .filter_map(|farmer| cluster.farmers[*farmer].listen_addresses().pop())
        .collect();
    assert_eq!(bootstrap.len(), 2, "both farmers logged their addresses");
    let rebuilt = cluster.start_node(
        "node4",
        &NodeOptions {
            bootstrap,
            ..NodeOptions::default()
        },
    );
    let node4 = &cluster.nodes[rebuilt];
    cluster
        .wait_for(
            "the farmers-only node to rebuild history from the DSN",
            Duration::from_secs(120),
            || async { node4.head().await.best_number >= complete },
        )
        .await;
    assert!(
        has_canonical(node4, complete, &reference.hash.to_string()).await,
        "the rebuilt chain is node 1's"
    );
    let log = acre_tests::cluster::strip_ansi(&std::fs::read_to_string(&node4.log).expect("log"));
    assert!(log.contains("DSN sync done"), "the history came by DSN sync");
    eprintln!("DSN sync: block #{complete} (segment {last}) rebuilt from the farmers");
}
