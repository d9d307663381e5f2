//! Snap sync with the real binaries: a node started with an empty database after three segments were
//! archived starts from the state of a recent block (downloaded in pages, each verified by its range
//! proof against that block's state root), imports the rest, follows the chain, and restarts from its
//! own database.

use std::time::{Duration, Instant};

use acre_rpc_api::ChainApiClient;
use acre_tests::cluster::{Cluster, NodeOptions};

const REWARD: &str = "1111111111111111111111111111111111111111111111111111111111111111";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_after_three_segments_snap_syncs() {
    let started = Instant::now();
    // Quick slots, and segments of 4 source records (16 KiB) instead of 16, so three segments take
    // about fifty blocks rather than a hundred and fifty.
    let mut cluster = Cluster::new(&Cluster::dev_spec(|spec| {
        spec["name"] = "snap-test".into();
        spec["params"]["pot_iterations"] = 12_000_000.into();
        spec["params"]["source_records_per_segment"] = 4.into();
        // Snapshots carry accounts, not a domain registry: a chain with domains syncs in full.
        spec["domains"] = serde_json::Value::Null;
    }));
    let source = cluster.start_node(
        "node0",
        &NodeOptions {
            timekeeper: true,
            ..NodeOptions::default()
        },
    );
    cluster.start_farmer(source, "1M", REWARD);
    let node0 = &cluster.nodes[source];
    cluster
        .wait_for(
            "three segments after genesis's",
            Duration::from_secs(240),
            || async { node0.head().await.segment_count >= 4 },
        )
        .await;
    let at_start = node0.head().await;
    eprintln!(
        "[{:.0?}] {} segments, best #{}",
        started.elapsed(),
        at_start.segment_count,
        at_start.best_number
    );

    let options = NodeOptions {
        bootstrap: vec![node0.p2p_address()],
        ..NodeOptions::default()
    };
    let snapped = cluster.start_node("snap", &options);
    let node = &cluster.nodes[snapped];
    let node0 = &cluster.nodes[source];
    cluster
        .wait_for("the new node to catch up", Duration::from_secs(120), || async {
            node.head().await.best_number >= at_start.best_number
        })
        .await;
    let log = acre_tests::cluster::strip_ansi(&std::fs::read_to_string(&node.log).expect("log"));
    assert!(
        log.contains("started from a snapshot"),
        "the node installed a snapshot"
    );
    assert!(log.contains("snap sync done"), "snap sync finished");
    assert!(
        node.metric("acre_snap_sync_accounts_total") >= 1.0,
        "the snapshot's accounts were counted"
    );
    // It holds no block below the snapshot: history that old is the DSN's.
    let client = node.client().await;
    assert!(
        client.block_by_number(1).await.expect("query").is_none(),
        "block 1 was never downloaded"
    );
    // Its best chain is the source's.
    let number = at_start.best_number;
    let ours = client
        .block_by_number(number)
        .await
        .expect("query")
        .expect("block");
    let theirs = node0
        .client()
        .await
        .block_by_number(number)
        .await
        .expect("query")
        .expect("block");
    assert_eq!(ours.hash, theirs.hash, "the snap-synced chain is the source's");
    eprintln!("[{:.0?}] snap-synced to #{number}", started.elapsed());

    // It keeps up, and a restart opens the snapshot's database and goes on.
    cluster.nodes[snapped].kill();
    cluster.restart_node(snapped, &options);
    let node = &cluster.nodes[snapped];
    let node0 = &cluster.nodes[source];
    let later = node0.head().await.best_number + 2;
    cluster
        .wait_for(
            "the restarted node to follow",
            Duration::from_secs(120),
            || async { node.head().await.best_number >= later },
        )
        .await;
    let log = acre_tests::cluster::strip_ansi(&std::fs::read_to_string(&node.log).expect("log"));
    assert_eq!(
        log.matches("started from a snapshot").count(),
        1,
        "the restart used its own database"
    );
    eprintln!("[{:.0?}] restarted and following at #{later}", started.elapsed());
}
