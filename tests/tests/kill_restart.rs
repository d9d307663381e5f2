//! `kill -9` at random moments: a node and a farmer, killed while they plot, sync, import, archive or
//! serve, come back, rejoin, catch up and keep their peer ids.
//!
//! CI runs a few kills (`ACRE_KILLS`, default 4); `scripts/kill-soak` runs a hundred. The moments come
//! from a seeded generator (`ACRE_KILL_SEED`, printed), so a failing run can be replayed.

use std::time::{Duration, Instant};

use acre_rpc_api::ChainApiClient;
use acre_tests::cluster::{Cluster, NodeOptions};
use rand::{Rng, SeedableRng};

const REWARD_A: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const REWARD_B: &str = "2222222222222222222222222222222222222222222222222222222222222222";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_and_a_farmer_killed_at_random_moments_rejoin_catch_up_and_keep_their_peer_ids() {
    let kills = env_number("ACRE_KILLS", 4);
    let seed = env_number("ACRE_KILL_SEED", 12);
    eprintln!("{kills} kills, ACRE_KILL_SEED={seed}");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let started = Instant::now();

    let mut cluster = Cluster::new(&Cluster::dev_spec(|spec| {
        spec["name"] = "kill-test".into();
        spec["params"]["pot_iterations"] = 12_000_000.into();
    }));
    let timekeeper = NodeOptions {
        timekeeper: true,
        ..NodeOptions::default()
    };
    cluster.start_node("node0", &timekeeper);
    let victim_options = NodeOptions {
        bootstrap: vec![cluster.nodes[0].p2p_address()],
        ..NodeOptions::default()
    };
    let victim = cluster.start_node("node1", &victim_options);
    // A small farm beside the victim's: the chain moves while the victim is down, and the victim, once
    // back, wins most slots, so its rewards show it farming again within seconds.
    cluster.start_farmer(0, "256K", REWARD_A);
    let farmer = cluster.start_farmer(victim, "1M", REWARD_B);

    let node_id = {
        let node = &cluster.nodes[victim];
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(id) = node.network().await.peer_id {
                break id;
            }
            assert!(Instant::now() < deadline, "the node never reported its peer id");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };

    // Kills come once both farmers farm: the chain is moving, so each one lands amid import,
    // authoring, archiving, plotting of new history or serving.
    cluster
        .wait_for("the chain to start", Duration::from_secs(120), || async {
            cluster.nodes[0].head().await.best_number >= 3
        })
        .await;
    let mut farmer_starts = 1;
    for kill in 0..kills {
        // Anywhere from at once to a few blocks later: during start-up, plotting, sync or farming.
        let wait = Duration::from_millis(rng.random_range(0..4_000));
        tokio::time::sleep(wait).await;
        let kill_node = rng.random_bool(0.5);
        if kill_node {
            cluster.nodes[victim].kill();
            cluster.restart_node(victim, &victim_options);
        } else {
            cluster.farmers[farmer].kill();
            cluster.restart_farmer(farmer, victim);
            farmer_starts += 1;
        }
        eprintln!(
            "[{:.0?}] kill {}: the {} after {wait:?}",
            started.elapsed(),
            kill + 1,
            if kill_node { "node" } else { "farmer" }
        );
        // Back with the same peer id, and holding the timekeeper's chain again.
        let target = cluster.nodes[0].head().await.best_number;
        let node = &cluster.nodes[victim];
        cluster
            .wait_for(
                "the killed one to rejoin and catch up",
                Duration::from_secs(120),
                || async {
                    let network = node.network().await;
                    let head = node.head().await;
                    network.peer_id.as_ref() == Some(&node_id)
                        && !network.peers.is_empty()
                        && head.best_number >= target
                        && cluster.farmers[farmer].peer_ids().len() == farmer_starts
                },
            )
            .await;
    }

    // The farmer kept one identity through every start, and farms again: the victim's chain grows
    // with blocks it holds in agreement with the timekeeper.
    let farmer_ids = cluster.farmers[farmer].peer_ids();
    if let Some(first) = farmer_ids.first() {
        assert!(
            farmer_ids.iter().all(|id| id == first),
            "the farmer's peer id changed across restarts: {farmer_ids:?}"
        );
    }
    // It farms again: its rewards grow after the last kill, and the killed node holds the best block.
    let reward = REWARD_B.parse().expect("address");
    let balance = |node: usize| {
        let node = &cluster.nodes[node];
        async move {
            node.client()
                .await
                .account(reward)
                .await
                .expect("account")
                .balance
                .0
        }
    };
    let before = balance(0).await;
    cluster
        .wait_for(
            "the killed farmer to author again",
            Duration::from_secs(180),
            || async { balance(0).await > before },
        )
        .await;
    let head = cluster.nodes[0].head().await;
    let node = &cluster.nodes[victim];
    cluster
        .wait_for(
            "the node to hold the best block",
            Duration::from_secs(60),
            || async {
                matches!(
                    node.client().await.block_by_number(head.best_number).await,
                    Ok(Some(block)) if block.hash == head.best_hash
                )
            },
        )
        .await;
    eprintln!(
        "[{:.0?}] after {kills} kills: best #{}, the killed farmer's rewards {before} → {}",
        started.elapsed(),
        head.best_number,
        balance(victim).await
    );
}
