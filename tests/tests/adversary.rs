//! Hostile peers against a real node: test peers built on `acre-network` send invalid blocks, invalid
//! proofs of time, oversized messages, or come from another chain. Each is banned with a logged reason,
//! while the node keeps serving an honest peer.

use std::time::Duration;

use acre_consensus::blocks::{Body, Header};
use acre_network::messages::{self, BlockRangeRequest, BlockRangeResponse, BlockStart, PotGossip, RawBlock};
use acre_network::{
    Address, ChainId, NetworkConfig, NetworkEvent, NetworkHandle, PeerId, PeerKey, Protocol, Topic, start,
};
use acre_tests::cluster::{Cluster, NodeOptions};
use tokio::sync::mpsc::Receiver;

const REWARD: &str = "3333333333333333333333333333333333333333333333333333333333333333";

/// A test peer of chain `chain` dialling `node`; returns once the node identified it (or, for another
/// chain, once it is connected).
async fn adversary(chain: ChainId, node: &str, seed: u8) -> (NetworkHandle, Receiver<NetworkEvent>) {
    let mut config = NetworkConfig::new(chain, PeerKey::from_secret([seed; 32]));
    config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("address")];
    config.gossip_heartbeat = Duration::from_millis(200);
    let (handle, events) = start(config).expect("the test peer's network starts");
    let address: Address = node.parse().expect("node address");
    handle.dial(address).await.expect("dials the node");
    (handle, events)
}

/// Waits for `pick` to find an event, within 30 s.
async fn next<T>(events: &mut Receiver<NetworkEvent>, mut pick: impl FnMut(NetworkEvent) -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("the event came in time")
            .expect("the network runs");
        if let Some(found) = pick(event) {
            return found;
        }
    }
}

async fn identified(events: &mut Receiver<NetworkEvent>) -> PeerId {
    next(events, |event| match event {
        NetworkEvent::PeerIdentified { peer, .. } => Some(peer),
        _ => None,
    })
    .await
}

/// Waits until the node's log names `peer` as banned with `reason`, and the node no longer lists it.
async fn banned(cluster: &Cluster, peer: PeerId, reason: &str) {
    let node = &cluster.nodes[0];
    cluster
        .wait_for(
            &format!("the node to ban {peer} ({reason})"),
            Duration::from_secs(30),
            || async {
                let log = std::fs::read_to_string(&node.log).unwrap_or_default();
                log.lines().any(|line| {
                    line.contains("peer banned") && line.contains(&peer.to_string()) && line.contains(reason)
                })
            },
        )
        .await;
    let listed = node.network().await.peers;
    assert!(
        listed.iter().all(|listed| listed.peer_id != peer.to_string()),
        "a banned peer is still connected: {listed:?}"
    );
}

/// The node's newest block, fetched over the block-range protocol.
async fn newest_block(network: &NetworkHandle, node: PeerId, best: [u8; 32]) -> (Header, Body) {
    let request = messages::encode(&BlockRangeRequest {
        start: BlockStart::Descending(acre_consensus::Blake3Hash(best)),
        max_blocks: 1,
    });
    let bytes = network
        .request(node, Protocol::BlockRange, request)
        .await
        .expect("the node answers");
    let response: BlockRangeResponse =
        messages::decode("response", &bytes, Protocol::BlockRange.max_response()).expect("decodes");
    assert_eq!(response.blocks.len(), 1);
    response.blocks[0].decode().expect("a valid block")
}

/// Publishes `payload` until the network takes it (gossipsub learns the node's subscriptions a moment
/// after connecting).
async fn publish(network: &NetworkHandle, topic: Topic, payload: Vec<u8>) {
    for _ in 0..100 {
        if network.publish(topic, payload.clone()).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("could not publish on {}", topic.name());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_are_banned_with_a_reason_while_honest_peers_are_served() {
    let spec = Cluster::dev_spec(|spec| {
        spec["name"] = "adversary-test".into();
        spec["params"]["pot_iterations"] = 12_000_000.into();
    });
    let mut cluster = Cluster::new(&spec);
    let node = cluster.start_node(
        "node0",
        &NodeOptions {
            timekeeper: true,
            ..NodeOptions::default()
        },
    );
    cluster.start_farmer(node, "1M", REWARD);
    let honest = cluster.start_node(
        "honest",
        &NodeOptions {
            bootstrap: vec![cluster.nodes[node].p2p_address()],
            ..NodeOptions::default()
        },
    );
    let target = &cluster.nodes[node];
    cluster
        .wait_for("5 blocks", Duration::from_secs(180), || async {
            target.head().await.best_number >= 5
        })
        .await;
    let head = target.head().await;
    let chain = ChainId(head.genesis_hash.0);
    let address = target.p2p_address();

    // An invalid proof of time: a real gossiped slot with one checkpoint changed. Fatal at once.
    let (pot_liar, mut events) = adversary(chain, &address, 1).await;
    let node_id = identified(&mut events).await;
    let real: PotGossip = next(&mut events, |event| match event {
        NetworkEvent::Gossip(message) if message.topic == Topic::Pot => {
            messages::decode("pot", &message.data, PotGossip::MAX_SIZE).ok()
        }
        _ => None,
    })
    .await;
    let mut forged = real.clone();
    let last = forged.slots.len() - 1;
    forged.slots[last].checkpoints.0[2].0[0] ^= 1;
    publish(&pot_liar, Topic::Pot, messages::encode(&forged)).await;
    banned(&cluster, pot_liar.peer_id(), "invalid proof of time").await;

    // An invalid block: the newest block with another state root (so another hash) keeps its old seal,
    // which no longer verifies. Fatal at once: an honest peer forwards only blocks it verified.
    let (block_liar, mut events) = adversary(chain, &address, 2).await;
    identified(&mut events).await;
    let best = target.head().await.best_hash.0;
    let (header, body) = newest_block(&block_liar, node_id, best).await;
    let mut forged = header.clone();
    forged.unsealed.state_root.0[0] ^= 1;
    publish(
        &block_liar,
        Topic::Blocks,
        messages::encode(&RawBlock::new(&forged, &body)),
    )
    .await;
    banned(&cluster, block_liar.peer_id(), "invalid block").await;

    // Oversized gossip: proof-of-time messages far over the topic's limit.
    let (flooder, mut events) = adversary(chain, &address, 3).await;
    identified(&mut events).await;
    for index in 0..6u8 {
        publish(&flooder, Topic::Pot, vec![index; 64 << 10]).await;
    }
    banned(&cluster, flooder.peer_id(), "over the size limit").await;

    // Another chain's peer is banned as soon as it identifies itself. Both sides check identify, so
    // whichever reads the other's first bans it and closes the connection, and the other may never read
    // it: the node bans the stranger by name, or the stranger (an `acre-network` peer too) bans the node.
    // Either way the stranger never becomes the node's peer.
    let (stranger, mut stranger_events) = adversary(ChainId([0x5a; 32]), &address, 4).await;
    let stranger_id = stranger.peer_id();
    let node_log = cluster.nodes[node].log.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let log = std::fs::read_to_string(&node_log).unwrap_or_default();
        let node_banned = log.lines().any(|line| {
            line.contains("peer banned")
                && line.contains(&stranger_id.to_string())
                && line.contains("another chain")
        });
        let stranger_banned = matches!(
            tokio::time::timeout(Duration::from_millis(200), stranger_events.recv()).await,
            Ok(Some(NetworkEvent::PeerBanned { peer, reason })) if peer == node_id && reason.contains("another chain")
        );
        if node_banned || stranger_banned {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            cluster.dump_logs();
            panic!("neither the node nor the stranger banned the other within 30 s");
        }
    }
    let listed = target.network().await.peers;
    assert!(
        listed.iter().all(|peer| peer.peer_id != stranger_id.to_string()),
        "another chain's peer is listed: {listed:?}"
    );

    // The honest follower still follows: it holds the node's best block of now, soon.
    let now = target.head().await;
    let honest = &cluster.nodes[honest];
    cluster
        .wait_for("the honest peer to keep up", Duration::from_secs(60), || async {
            honest.head().await.best_number >= now.best_number
        })
        .await;
    let peers = honest.network().await.peers;
    assert!(
        peers.iter().any(|peer| peer.peer_id == node_id.to_string()),
        "the honest peer is still connected to the node: {peers:?}"
    );
}
