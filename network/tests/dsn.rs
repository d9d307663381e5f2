//! The DSN piece getter against peers on loopback: pieces from the local store, from peers, rebuilt from
//! half of their segment, and a peer that serves an invalid piece banned.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acre_consensus::{BlockNumber, PieceIndex, ProtocolParams};
use acre_network::dsn::{
    LocalPieces, NoLocalPieces, PieceGetter, Source, cached_piece_answer, distance, peer_key, piece_key,
};
use acre_network::messages::{self, PieceRequest, PieceResponse};
use acre_network::{ChainId, NetworkConfig, NetworkEvent, NetworkHandle, PeerKey, Protocol, start};
use acre_storage::archiver::{ArchivedSegment, Archiver};
use tokio::sync::mpsc::Receiver;

const CHAIN: ChainId = ChainId([9; 32]);

fn network(seed: u8) -> (NetworkHandle, Receiver<NetworkEvent>) {
    let mut config = NetworkConfig::new(CHAIN, PeerKey::from_secret([seed; 32]));
    config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("address")];
    start(config).expect("the network starts")
}

/// One segment of the dev parameters, archived from a block of pseudo-random bytes.
fn segment(params: &ProtocolParams) -> ArchivedSegment {
    let mut archiver = Archiver::new(params.clone()).expect("archiver");
    let bytes: Vec<u8> = (0..40_000u32)
        .map(|index| (index * 7 + index / 13) as u8)
        .collect();
    let mut sealed = archiver.add_block(BlockNumber(0), &bytes).expect("archives");
    if sealed.is_empty() {
        sealed.extend(archiver.close_segment().expect("closes"));
    }
    sealed.remove(0)
}

/// What a serving peer does with piece requests.
#[derive(Clone, Default)]
struct Serving {
    /// Positions it does not have.
    missing: Arc<Mutex<HashSet<u64>>>,
    /// Positions it answers with a damaged piece.
    damaged: Arc<Mutex<HashSet<u64>>>,
}

/// Serves `segment`'s pieces on `network` as `serving` says.
fn serve(
    network: NetworkHandle,
    mut events: Receiver<NetworkEvent>,
    segment: Arc<ArchivedSegment>,
    serving: Serving,
) {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let NetworkEvent::Request(request) = event else {
                continue;
            };
            let index = messages::decode::<PieceRequest>("piece request", &request.data, 4096)
                .expect("a piece request")
                .index;
            let piece = if serving.missing.lock().expect("lock").contains(&index) {
                None
            } else {
                let mut bytes = segment.pieces[index as usize].encode();
                if serving.damaged.lock().expect("lock").contains(&index) {
                    bytes[100] ^= 1;
                }
                Some(bytes)
            };
            let answer = if request.protocol == Protocol::CachedPiece {
                cached_piece_answer(&network, PieceIndex(index), piece, request.peer).await
            } else {
                messages::encode(&PieceResponse { piece })
            };
            let _ = network.respond(request.responder, answer).await;
        }
    });
}

struct Store(Vec<Option<Vec<u8>>>);

impl LocalPieces for Store {
    fn local_piece(&self, index: PieceIndex) -> Option<Vec<u8>> {
        self.0.get(index.0 as usize).cloned().flatten()
    }
}

async fn connect(from: &NetworkHandle, from_events: &mut Receiver<NetworkEvent>, to: &NetworkHandle) {
    let mut address = Vec::new();
    while address.is_empty() {
        address = to.listening().await.expect("running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    from.dial(address.remove(0)).await.expect("dials");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let event = tokio::time::timeout_at(deadline, from_events.recv())
            .await
            .expect("identified in time")
            .expect("running");
        if matches!(event, NetworkEvent::PeerIdentified { peer, .. } if peer == to.peer_id()) {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pieces_come_from_the_store_from_peers_or_from_half_their_segment_and_liars_are_banned() {
    let params = ProtocolParams::dev();
    let segment = Arc::new(segment(&params));
    let header = segment.header;
    let (getter_network, mut getter_events) = network(1);
    let (server, server_events) = network(2);
    let serving = Serving::default();
    serve(
        server.clone(),
        server_events,
        Arc::clone(&segment),
        serving.clone(),
    );
    connect(&getter_network, &mut getter_events, &server).await;
    // The getter's own events (none it must answer) are drained.
    tokio::spawn(async move { while getter_events.recv().await.is_some() {} });
    let getter = PieceGetter::new(getter_network.clone(), params.clone());
    let index = |position: u64| {
        header
            .segment_index
            .piece_index(&params, acre_consensus::PiecePosition(position as u16))
    };

    // From the local store first; a damaged local copy is passed over for a peer's.
    let mut local = Store(vec![None; segment.pieces.len()]);
    local.0[3] = Some(segment.pieces[3].encode());
    let (piece, source) = getter.get(index(3), &header, &local).await.expect("found");
    assert_eq!(
        (piece.encode(), source),
        (segment.pieces[3].encode(), Source::Local)
    );
    let mut damaged = segment.pieces[4].encode();
    damaged[7] ^= 1;
    local.0[4] = Some(damaged);
    let (piece, source) = getter.get(index(4), &header, &local).await.expect("found");
    assert_eq!(
        (piece.encode(), source),
        (segment.pieces[4].encode(), Source::Peer(server.peer_id()))
    );

    // A piece no one holds is rebuilt from half of its segment.
    serving.missing.lock().expect("lock").insert(5);
    let (piece, source) = getter
        .get(index(5), &header, &NoLocalPieces)
        .await
        .expect("rebuilt");
    assert_eq!(
        (piece.encode(), source),
        (segment.pieces[5].encode(), Source::Reconstructed)
    );

    // With more than half missing everywhere, it cannot be found, and the error says why.
    serving.missing.lock().expect("lock").extend(0..20);
    let error = getter
        .get(index(5), &header, &NoLocalPieces)
        .await
        .expect_err("too few");
    assert!(error.to_string().contains("needed to rebuild it"), "{error}");

    // The wrong segment's header is refused before anything is asked.
    let mut other = header;
    other.segment_index = other.segment_index.next();
    let error = getter
        .get(index(6), &other, &NoLocalPieces)
        .await
        .expect_err("wrong header");
    assert!(error.to_string().contains("segment 1's"), "{error}");

    // A peer that serves an invalid piece is banned: it is no longer a peer.
    serving.missing.lock().expect("lock").clear();
    serving.damaged.lock().expect("lock").insert(8);
    let _ = getter.get(index(8), &header, &NoLocalPieces).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !getter_network.peers().await.expect("running").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the liar is still a peer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A getter connected only to a peer without the piece walks on to the peer that peer names, nearer the
/// piece's key, dials it, and gets the piece from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_walk_reaches_a_holder_the_getter_was_not_connected_to() {
    let params = ProtocolParams::dev();
    let segment = Arc::new(segment(&params));
    let header = segment.header;
    let (getter_network, mut getter_events) = network(11);
    let (relay, mut relay_events) = network(12);
    let (holder, holder_events) = network(13);
    // The relay knows the holder (it is in the relay's routing table once identified) but has no piece.
    connect(&relay, &mut relay_events, &holder).await;
    let nothing = Serving::default();
    nothing.missing.lock().expect("lock").extend(0..64);
    serve(relay.clone(), relay_events, Arc::clone(&segment), nothing);
    serve(
        holder.clone(),
        holder_events,
        Arc::clone(&segment),
        Serving::default(),
    );
    connect(&getter_network, &mut getter_events, &relay).await;
    tokio::spawn(async move { while getter_events.recv().await.is_some() {} });

    // A piece whose key the holder is nearer than the relay (the walk only goes nearer).
    let index = (0..params.pieces_per_segment())
        .map(|position| {
            header
                .segment_index
                .piece_index(&params, acre_consensus::PiecePosition(position as u16))
        })
        .find(|index| {
            let key = piece_key(*index);
            distance(&peer_key(&holder.peer_id()), &key) < distance(&peer_key(&relay.peer_id()), &key)
        })
        .expect("some piece is nearer the holder");
    let getter = PieceGetter::new(getter_network.clone(), params.clone());
    let (piece, source) = getter.get(index, &header, &NoLocalPieces).await.expect("found");
    assert_eq!(
        source,
        Source::Peer(holder.peer_id()),
        "the piece came from the holder, by the walk"
    );
    assert_eq!(
        piece.encode(),
        segment.pieces[index.position(&params).0 as usize].encode()
    );
    assert!(
        getter_network.peer_ids().await.contains(&holder.peer_id()),
        "the getter dialled the holder it learned of"
    );
}
