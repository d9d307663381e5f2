//! Archiving hot paths with the `mainnet` parameters (1 MiB records, 128 + 128 pieces per segment):
//! erasure coding of a segment, record commitments, whole-segment archiving, piece verification and
//! reconstruction. Each parallel step is measured single-threaded (a one-thread rayon pool) and with rayon.

use std::hint::black_box;
use std::time::Duration;

use acre_benches::{pool, random_bytes};
use acre_consensus::params::Chunk;
use acre_consensus::{BlockNumber, Piece, PiecePosition, ProtocolParams};
use acre_storage::commitment::source_records;
use acre_storage::merkle::chunks_root;
use acre_storage::record::commit_record;
use acre_storage::segment::ITEM_HEADER_SIZE;
use acre_storage::{ArchivedSegment, Archiver, erasure, rebuild_pieces, recover_segment, verify_piece};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

const THREADS: [usize; 2] = [1, 2];

/// A block that exactly fills one segment, so archiving it seals the segment.
fn segment_block(params: &ProtocolParams) -> Vec<u8> {
    random_bytes(1, params.segment_size() - ITEM_HEADER_SIZE)
}

fn archive_one(params: &ProtocolParams, block: &[u8]) -> ArchivedSegment {
    let mut archiver = Archiver::new(params.clone()).expect("valid params");
    archiver
        .add_block(BlockNumber(0), block)
        .expect("archives")
        .pop()
        .expect("the block fills a segment")
}

/// The segment's pieces with a random half removed.
fn random_half(segment: &ArchivedSegment, seed: u64) -> Vec<Option<Piece>> {
    let mut pieces: Vec<Option<Piece>> = segment.pieces.iter().cloned().map(Some).collect();
    let mut positions: Vec<usize> = (0..pieces.len()).collect();
    positions.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    for &position in &positions[..pieces.len() / 2] {
        pieces[position] = None;
    }
    pieces
}

fn benches(c: &mut Criterion) {
    let params = ProtocolParams::mainnet();
    let block = segment_block(&params);
    let mut segment_bytes = vec![0u8; params.segment_size()];
    segment_bytes[..block.len()].copy_from_slice(&block);
    let records = source_records(&params, &segment_bytes).expect("segment sized");
    let record_refs: Vec<&[Chunk]> = records.iter().map(Vec::as_slice).collect();

    let mut group = c.benchmark_group("archiving");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(2));

    group.throughput(Throughput::Bytes(params.record_size() as u64));
    group.bench_function("chunk-tree-root/chunks=32768", |b| {
        b.iter(|| chunks_root(black_box(&records[0])))
    });
    group.bench_function("record-commitment/chunks=32768", |b| {
        b.iter(|| commit_record(black_box(&records[0])))
    });

    group.throughput(Throughput::Bytes(params.segment_size() as u64));
    for threads in THREADS {
        let pool = pool(threads);
        group.bench_function(format!("erasure-code-segment/threads={threads}"), |b| {
            b.iter(|| pool.install(|| erasure::encode_records(black_box(&record_refs)).expect("encodes")))
        });
        let all_records: Vec<Vec<Chunk>> = {
            let mut all = records.clone();
            all.extend(erasure::encode_records(&record_refs).expect("encodes"));
            all
        };
        group.bench_function(format!("record-commitments/records=256/threads={threads}"), |b| {
            b.iter(|| {
                pool.install(|| {
                    all_records
                        .par_iter()
                        .map(|r| commit_record(r).expect("commits"))
                        .collect::<Vec<_>>()
                })
            })
        });
        group.bench_function(format!("segment/threads={threads}"), |b| {
            b.iter(|| pool.install(|| archive_one(&params, black_box(&block))))
        });
    }

    let segment = archive_one(&params, &block);
    group.throughput(Throughput::Bytes(params.record_size() as u64));
    group.bench_function("piece-verify", |b| {
        b.iter(|| {
            verify_piece(
                &params,
                &segment.pieces[200],
                &segment.header.segment_root,
                PiecePosition(200),
            )
            .expect("valid piece")
        })
    });
    group.bench_function("piece-verify/scalar-consensus-path", |b| {
        b.iter(|| {
            segment.pieces[200]
                .verify(&params, &segment.header.segment_root, PiecePosition(200))
                .expect("valid piece")
        })
    });

    group.throughput(Throughput::Bytes(params.segment_size() as u64));
    let half = random_half(&segment, 7);
    for threads in THREADS {
        let pool = pool(threads);
        group.bench_function(
            format!("recover-segment/from=random-half/threads={threads}"),
            |b| {
                b.iter(|| {
                    pool.install(|| {
                        recover_segment(&params, &segment.header, black_box(&half)).expect("recovers")
                    })
                })
            },
        );
        group.bench_function(
            format!("rebuild-pieces/from=random-half/threads={threads}"),
            |b| {
                b.iter(|| {
                    pool.install(|| {
                        rebuild_pieces(&params, &segment.header, black_box(&half)).expect("rebuilds")
                    })
                })
            },
        );
    }
    group.finish();
}

criterion_group!(archiving, benches);
criterion_main!(archiving);
