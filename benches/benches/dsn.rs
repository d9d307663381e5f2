//! Piece retrieval over loopback with the DSN getter (`acre_network::dsn::PieceGetter`), mainnet pieces
//! (1 MiB records): 64 pieces per iteration, 8 requests in flight, from 1 and from 4 peers that serve
//! a whole segment from memory. Each piece is verified against its segment header, as in real use.
//!
//! The reference, measured in the same run, is verifying the same 64 pieces without any network
//! (`dsn/verify_only`): the difference is what transport, framing and decoding cost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use acre_benches::random_bytes;
use acre_consensus::{BlockNumber, PieceIndex, PiecePosition, ProtocolParams};
use acre_network::dsn::{NoLocalPieces, PieceGetter};
use acre_network::messages::{self, PieceRequest, PieceResponse};
use acre_network::{ChainId, NetworkConfig, NetworkEvent, NetworkHandle, PeerKey, Protocol, start};
use acre_storage::{ArchivedSegment, Archiver};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Pieces fetched per iteration.
const PIECES: usize = 64;

/// Requests in flight at once.
const IN_FLIGHT: usize = 8;

const CHAIN: ChainId = ChainId([3; 32]);

fn archive_one(params: &ProtocolParams) -> ArchivedSegment {
    let block = random_bytes(1, params.segment_size() - acre_storage::segment::ITEM_HEADER_SIZE);
    Archiver::new(params.clone())
        .expect("valid params")
        .add_block(BlockNumber(0), &block)
        .expect("archives")
        .pop()
        .expect("the block fills a segment")
}

fn network(seed: u8) -> (NetworkHandle, tokio::sync::mpsc::Receiver<NetworkEvent>) {
    let mut config = NetworkConfig::new(CHAIN, PeerKey::from_secret([seed; 32]));
    config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("address")];
    start(config).expect("the network starts")
}

/// A peer answering piece requests with the segment's pieces.
async fn server(seed: u8, pieces: Arc<Vec<Vec<u8>>>) -> NetworkHandle {
    let (handle, mut events) = network(seed);
    let responder = handle.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let NetworkEvent::Request(request) = event else {
                continue;
            };
            let Ok(asked) = messages::decode::<PieceRequest>("piece request", &request.data, 4096) else {
                continue;
            };
            let piece = pieces.get(asked.index as usize).cloned();
            let answer = if request.protocol == Protocol::CachedPiece {
                acre_network::dsn::cached_piece_answer(
                    &responder,
                    PieceIndex(asked.index),
                    piece,
                    request.peer,
                )
                .await
            } else {
                messages::encode(&PieceResponse { piece })
            };
            let _ = responder.respond(request.responder, answer).await;
        }
    });
    handle
}

/// A client connected to `peers` servers.
async fn client(servers: &[NetworkHandle]) -> NetworkHandle {
    let (handle, mut events) = network(100);
    for server in servers {
        let mut addresses = Vec::new();
        while addresses.is_empty() {
            addresses = server.listening().await.expect("running");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        handle.dial(addresses.remove(0)).await.expect("dials");
    }
    let mut identified = 0;
    while identified < servers.len() {
        if let Some(NetworkEvent::PeerIdentified { .. }) = events.recv().await {
            identified += 1;
        }
    }
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    handle
}

fn benches(c: &mut Criterion) {
    let params = ProtocolParams::mainnet();
    let started = Instant::now();
    let segment = archive_one(&params);
    eprintln!(
        "dsn bench: archived one mainnet segment in {:.1?}",
        started.elapsed()
    );
    let header = segment.header;
    let encoded: Arc<Vec<Vec<u8>>> = Arc::new(segment.pieces.iter().map(|piece| piece.encode()).collect());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let mut group = c.benchmark_group("dsn");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(PIECES as u64));
    group.bench_function(format!("verify_only/pieces={PIECES}"), |b| {
        b.iter(|| {
            for (position, piece) in segment.pieces.iter().take(PIECES).enumerate() {
                let decoded = acre_consensus::Piece::decode(&params, &encoded[position]).expect("decodes");
                decoded
                    .verify(&params, &header.segment_root, PiecePosition(position as u16))
                    .expect("valid");
                std::hint::black_box(piece);
            }
        })
    });
    for peers in [1usize, 4] {
        let getter = runtime.block_on(async {
            let mut servers = Vec::new();
            for seed in 0..peers {
                servers.push(server(seed as u8 + 1, Arc::clone(&encoded)).await);
            }
            let handle = client(&servers).await;
            // Keep the servers alive as long as the getter: their handles live in the tasks.
            std::mem::forget(servers);
            PieceGetter::new(handle, params.clone())
        });
        group.bench_function(format!("retrieve/peers={peers}/pieces={PIECES}"), |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let mut next = 0;
                    let mut tasks = tokio::task::JoinSet::new();
                    while next < PIECES || !tasks.is_empty() {
                        while next < PIECES && tasks.len() < IN_FLIGHT {
                            let getter = getter.clone();
                            let index = PieceIndex(next as u64);
                            tasks.spawn(async move {
                                getter
                                    .get(index, &header, &NoLocalPieces)
                                    .await
                                    .expect("retrieved")
                            });
                            next += 1;
                        }
                        if let Some(done) = tasks.join_next().await {
                            std::hint::black_box(done.expect("task"));
                        }
                    }
                })
            })
        });
    }
    group.finish();
}

criterion_group!(dsn, benches);
criterion_main!(dsn);
