//! Networks on loopback: peers of one chain identify each other and gossip; a peer of another chain is
//! banned on identify; a peer that forwards an invalid proof is banned by the receiver.

use std::time::Duration;

use acre_network::{
    Address, ChainId, NetworkConfig, NetworkEvent, NetworkHandle, PeerId, PeerKey, Protocol, Topic, Validity,
    start,
};
use tokio::sync::mpsc::Receiver;

const CHAIN: ChainId = ChainId([7; 32]);

fn network(chain: ChainId, seed: u8) -> (NetworkHandle, Receiver<NetworkEvent>) {
    let mut config = NetworkConfig::new(chain, PeerKey::from_secret([seed; 32]));
    config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("address")];
    config.gossip_heartbeat = Duration::from_millis(100);
    start(config).expect("the network starts")
}

async fn address(network: &NetworkHandle) -> Address {
    for _ in 0..100 {
        if let Some(address) = network.listening().await.expect("running").into_iter().next() {
            return address;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no listen address");
}

/// The next event `pick` wants, within 20 s (others are skipped).
async fn next<T>(events: &mut Receiver<NetworkEvent>, mut pick: impl FnMut(NetworkEvent) -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
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

async fn identified(events: &mut Receiver<NetworkEvent>, peer: PeerId) {
    next(events, |event| match event {
        NetworkEvent::PeerIdentified { peer: who, .. } if who == peer => Some(()),
        _ => None,
    })
    .await;
}

/// Publishes numbered messages until one arrives on the other side (gossipsub learns the other side's
/// subscriptions a moment after the connection), returning it.
async fn gossip_across(
    from: &NetworkHandle,
    to: &mut Receiver<NetworkEvent>,
    topic: Topic,
) -> acre_network::GossipMessage {
    for attempt in 0u32..100 {
        let payload = format!("message {attempt}").into_bytes();
        if from.publish(topic, payload).await.is_ok() {
            let received = tokio::time::timeout(Duration::from_millis(500), async {
                next(to, |event| match event {
                    NetworkEvent::Gossip(message) => Some(message),
                    _ => None,
                })
                .await
            })
            .await;
            if let Ok(message) = received {
                return message;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    panic!("no gossip arrived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_of_a_chain_identify_and_gossip_and_another_chain_is_banned() {
    let (a, mut a_events) = network(CHAIN, 1);
    let (b, mut b_events) = network(CHAIN, 2);
    let a_address = address(&a).await;
    assert_eq!(a_address.peer_id(), Some(a.peer_id()));
    b.dial(a_address.clone()).await.expect("dials");
    identified(&mut a_events, b.peer_id()).await;
    identified(&mut b_events, a.peer_id()).await;
    let peers = a.peers().await.expect("running");
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].peer, b.peer_id());
    assert!(peers[0].agent.starts_with("acre/"), "{peers:?}");

    let message = gossip_across(&a, &mut b_events, Topic::Blocks).await;
    assert_eq!(message.topic, Topic::Blocks);
    assert_eq!(message.from, a.peer_id());
    assert!(message.data.starts_with(b"message "));
    b.validate(message.reference, Validity::Accept)
        .await
        .expect("running");

    // A peer of another chain connects and identifies: whichever side reads the other's identify first
    // bans the other and closes the connection (so the other may never read it). Neither ever becomes
    // the other's peer.
    let (c, mut c_events) = network(ChainId([8; 32]), 3);
    c.dial(a_address).await.expect("dials");
    let (a_id, c_id) = (a.peer_id(), c.peer_id());
    let banned = |banner: PeerId, target: PeerId| {
        move |event| match event {
            NetworkEvent::PeerBanned { peer, reason } if peer == target => Some((banner, reason)),
            _ => None,
        }
    };
    let (banner, reason) = tokio::select! {
        found = next(&mut a_events, banned(a_id, c_id)) => found,
        found = next(&mut c_events, banned(c_id, a_id)) => found,
    };
    assert!(reason.contains("another chain"), "{banner}: {reason}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let peers = a.peers().await.expect("running");
    assert!(peers.iter().all(|info| info.peer != c_id), "{peers:?}");
    let peers = c.peers().await.expect("running");
    assert!(peers.is_empty(), "{peers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_an_invalid_proof_of_time_bans_the_sender() {
    let (a, mut a_events) = network(CHAIN, 4);
    let (b, mut b_events) = network(CHAIN, 5);
    b.dial(address(&a).await).await.expect("dials");
    identified(&mut a_events, b.peer_id()).await;
    identified(&mut b_events, a.peer_id()).await;
    let message = gossip_across(&a, &mut b_events, Topic::Pot).await;
    b.validate(
        message.reference,
        Validity::Reject(acre_network::Fault::InvalidPot),
    )
    .await
    .expect("running");
    let reason = next(&mut b_events, |event| match event {
        NetworkEvent::PeerBanned { peer, reason } if peer == a.peer_id() => Some(reason),
        _ => None,
    })
    .await;
    assert!(reason.contains("invalid proof of time"), "{reason}");
    next(&mut b_events, |event| match event {
        NetworkEvent::PeerDisconnected { peer } if peer == a.peer_id() => Some(()),
        _ => None,
    })
    .await;
    assert!(b.peers().await.expect("running").is_empty());
    // A banned peer cannot come back while the ban lasts.
    b.dial(address(&a).await)
        .await
        .expect_err("a banned peer is not dialled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_answered_within_each_protocols_limits() {
    let (a, mut a_events) = network(CHAIN, 6);
    let (b, mut b_events) = network(CHAIN, 7);
    b.dial(address(&a).await).await.expect("dials");
    identified(&mut a_events, b.peer_id()).await;
    identified(&mut b_events, a.peer_id()).await;

    // A answers segment-header requests with the request reversed, and piece requests with more bytes
    // than a piece response may hold.
    let server = a.clone();
    tokio::spawn(async move {
        while let Some(event) = a_events.recv().await {
            if let NetworkEvent::Request(request) = event {
                let answer = match request.protocol {
                    Protocol::SegmentHeaders => request.data.iter().rev().copied().collect(),
                    _ => vec![0; request.protocol.max_response() + 1],
                };
                let _ = server.respond(request.responder, answer).await;
            }
        }
    });
    let answer = b
        .request(a.peer_id(), Protocol::SegmentHeaders, vec![1, 2, 3])
        .await
        .expect("answered");
    assert_eq!(answer, [3, 2, 1]);

    // The responder's codec refuses to write an oversized answer, so the request fails for the asker.
    let error = b
        .request(a.peer_id(), Protocol::Piece, vec![9])
        .await
        .expect_err("no answer");
    assert!(
        matches!(
            error,
            acre_network::Error::Request {
                protocol: "piece",
                ..
            }
        ),
        "{error}"
    );
    // A request over the protocol's limit is refused before it leaves.
    let error = b
        .request(
            a.peer_id(),
            Protocol::Piece,
            vec![0; Protocol::Piece.max_request() + 1],
        )
        .await
        .expect_err("too large");
    assert!(error.to_string().contains("over the limit"), "{error}");
    // A peer nobody is connected to cannot be asked.
    let stranger = PeerKey::from_secret([99; 32]).peer_id();
    b.request(stranger, Protocol::State, vec![1])
        .await
        .expect_err("unreachable");
}
