//! DSN sync over loopback: a node with an empty database whose only peer is a farmer rebuilds a chain of
//! `ACRE_BENCH_DSN_SEGMENTS` archived segments (default 5) from pieces and imports its blocks, through
//! the real network, getter, erasure recovery, block reconstruction and import pipeline (spec 9).
//!
//! Setup (not measured) authors the chain as the node does ([`acre_benches::authoring`]), with
//! `ACRE_BENCH_SYNC_POT_ITERATIONS` iterations a slot (default 800,000, as the full-sync bench), until
//! the archiver has sealed enough segments, and stores it with its segments and pieces. The "farmer" is
//! an in-process peer with a farmer's agent that answers segment-header and piece requests from that
//! store, as a farmer's cache does. Each measured run starts an empty node bootstrapped to it and times
//! until its best block is the last one the archived history completes.
//!
//! The reference, measured in the same run, is importing the same blocks straight into a database with
//! every slot's proof of time verified, as the syncing node does (`dsn_sync/import_only`): the difference
//! is what starting the node, fetching and verifying pieces, recovering segments and decoding blocks
//! cost.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use acre_benches::authoring::{AuthoredChain, author};
use acre_benches::{env_number, store_chain, sync_from};
use acre_consensus::{BlockNumber, SegmentHeader};
use acre_network::messages::{
    self, CachedPieceResponse, PieceRequest, PieceResponse, SegmentHeadersRequest, SegmentHeadersResponse,
};
use acre_network::{ChainId, NetworkConfig, NetworkEvent, NetworkHandle, PeerKey, Protocol};
use acre_node::archiving::ArchiveState;
use acre_node::{Chain, ChainSpec};
use acre_storage::db::tables::{Pieces, SegmentHeaders};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

/// What the farmer serves: every segment header and piece of the archived history.
struct History {
    chain: ChainId,
    headers: Vec<SegmentHeader>,
    pieces: HashMap<u64, Vec<u8>>,
}

/// Imports the authored chain into a fresh database under `dir` and archives it as a node would.
fn archive(authored: &AuthoredChain, dir: &Path) -> History {
    let chain = store_chain(authored, dir);
    let best = BlockNumber(authored.blocks.len() as u64);
    ArchiveState::restore(chain.db(), &authored.spec.params, best).expect("archives");
    let read = chain.db().read().expect("reads");
    let headers: Vec<SegmentHeader> = read
        .all::<SegmentHeaders>()
        .expect("segment headers")
        .into_iter()
        .map(|(_, header)| header)
        .collect();
    let pieces = read
        .all::<Pieces>()
        .expect("pieces")
        .into_iter()
        .map(|(index, piece)| (index.0, piece))
        .collect();
    History {
        chain: ChainId(chain.genesis_hash().0),
        headers,
        pieces,
    }
}

/// The last block the archived history completes: what DSN sync reaches.
fn complete_through(header: &SegmentHeader) -> u64 {
    let last = header.last_archived_block;
    if last.is_complete() {
        last.number.0
    } else {
        last.number.0 - 1
    }
}

/// A peer with a farmer's agent answering segment-header and piece requests from `history`.
fn farmer(history: Arc<History>) -> NetworkHandle {
    let mut config = NetworkConfig::new(history.chain, PeerKey::generate());
    config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("address")];
    config.agent = format!("{}/bench", acre_network::FARMER_AGENT);
    config.gossip = false;
    let (handle, mut events) = acre_network::start(config).expect("the farmer's network starts");
    let responder = handle.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let NetworkEvent::Request(request) = event else {
                continue;
            };
            let limit = request.protocol.max_request();
            let answer = match request.protocol {
                Protocol::SegmentHeaders => {
                    let Ok(asked) =
                        messages::decode::<SegmentHeadersRequest>("request", &request.data, limit)
                    else {
                        continue;
                    };
                    let headers = match asked {
                        SegmentHeadersRequest::Indices(indices) => indices
                            .iter()
                            .filter_map(|index| history.headers.get(*index as usize).copied())
                            .collect(),
                        SegmentHeadersRequest::Last(count) => {
                            let count = (count as usize).min(history.headers.len());
                            history.headers[history.headers.len() - count..].to_vec()
                        }
                    };
                    messages::encode(&SegmentHeadersResponse { headers })
                }
                Protocol::Piece | Protocol::CachedPiece => {
                    let Ok(asked) = messages::decode::<PieceRequest>("request", &request.data, limit) else {
                        continue;
                    };
                    let piece = history.pieces.get(&asked.index).cloned();
                    if request.protocol == Protocol::CachedPiece {
                        messages::encode(&CachedPieceResponse {
                            piece,
                            closer: Vec::new(),
                        })
                    } else {
                        messages::encode(&PieceResponse { piece })
                    }
                }
                _ => continue,
            };
            let _ = responder.respond(request.responder, answer).await;
        }
    });
    handle
}

/// One DSN sync of the archived history into a fresh database; returns the time it took.
async fn sync_once(spec: &ChainSpec, farmer: &NetworkHandle, target: u64) -> Duration {
    let mut address = Vec::new();
    while address.is_empty() {
        address = farmer.listening().await.expect("running");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sync_from(spec, address, target, false).await
}

fn benches(c: &mut Criterion) {
    let segments = env_number("ACRE_BENCH_DSN_SEGMENTS", 5) as usize;
    let iterations = env_number("ACRE_BENCH_SYNC_POT_ITERATIONS", 800_000);
    let mut spec = ChainSpec::dev();
    spec.name = "dsn-sync-bench".into();
    spec.params.pot_iterations = u32::try_from(iterations).expect("iterations fit a u32");
    // The authoring farmer plots once, from genesis: its sectors must outlive the chain.
    spec.params.min_sector_lifetime = 1_000_000;
    // Author until the archiver has sealed enough segments (genesis is segment 0).
    let mut count = 100 * segments;
    let (authored, history) = loop {
        let authored = author(spec.clone(), count, "DSN sync bench");
        let source = tempfile::tempdir().expect("temp dir");
        let history = archive(&authored, source.path());
        if history.headers.len() > segments {
            break (authored, Arc::new(history));
        }
        count *= 2;
    };
    // The farmer serves exactly the segments measured (the authoring may have sealed more).
    let mut history = Arc::into_inner(history).expect("one owner");
    history.headers.truncate(segments + 1);
    let pieces_per_segment = u64::from(spec.params.pieces_per_segment());
    let served = (segments as u64 + 1) * pieces_per_segment;
    history.pieces.retain(|index, _| *index < served);
    let history = Arc::new(history);
    let target = complete_through(&history.headers[segments]);
    let bytes: usize = history.pieces.values().map(Vec::len).sum();
    eprintln!(
        "DSN sync bench: {count} blocks authored; serving {} segments ({:.1} MiB of pieces); syncing to #{target}",
        history.headers.len(),
        bytes as f64 / f64::from(1 << 20)
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let farmer = runtime.block_on(async { farmer(Arc::clone(&history)) });
    let mut group = c.benchmark_group("dsn_sync");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(60))
        .throughput(Throughput::Elements(target));
    group.bench_function(format!("import_only/blocks={target}"), |b| {
        b.iter_custom(|times| {
            (0..times)
                .map(|_| {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let chain = Chain::open(spec.clone(), Some(&dir.path().join(acre_node::DATABASE_FILE)))
                        .expect("opens");
                    let started = Instant::now();
                    // No proof-of-time cache, as the syncing node has none: every slot is verified.
                    for (header, body) in authored.blocks.iter().take(target as usize) {
                        chain
                            .import(header, body, &acre_consensus::pot_chain::NoPotCache)
                            .expect("imports");
                    }
                    started.elapsed()
                })
                .sum()
        })
    });
    let mut runs = Vec::new();
    group.bench_function(format!("dsn/segments={segments}/blocks={target}"), |b| {
        b.iter_custom(|times| {
            (0..times)
                .map(|_| {
                    let took = runtime.block_on(sync_once(&spec, &farmer, target));
                    runs.push(took);
                    took
                })
                .sum()
        })
    });
    group.finish();
    runs.sort();
    if let Some(median) = runs.get(runs.len() / 2) {
        eprintln!(
            "DSN sync bench: {segments} segments, {target} blocks: median {median:.2?} = {:.0} blocks/s \
             (from the node's start, through meeting the farmer, to the last block)",
            target as f64 / median.as_secs_f64()
        );
    }
}

criterion_group!(dsn_sync, benches);
criterion_main!(dsn_sync);
