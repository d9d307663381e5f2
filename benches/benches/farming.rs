//! Farming hot paths with the `mainnet` parameters: plotting a sector (limited to 8 pieces: a full
//! 1000-piece sector is 1000 records' worth of the same work), auditing one sector and a simulated 1 TiB
//! farm per slot, proving a win, and reading one piece back.

use std::hint::black_box;
use std::io::Write;
use std::time::Duration;

use acre_benches::{pool, random_bytes};
use acre_consensus::audit::initial_solution_range;
use acre_consensus::hashing::Blake3Hash;
use acre_consensus::params::CHUNK_SIZE;
use acre_consensus::sectors::{PublicKey, SectorId};
use acre_consensus::{BlockNumber, HistorySize, PieceOffset, ProtocolParams, SectorIndex, SolutionRange};
use acre_farmer::auditing::{AuditWin, audit_sector};
use acre_farmer::piece_source::InMemoryPieceSource;
use acre_farmer::plotting::plot_sector;
use acre_farmer::proving::prove;
use acre_farmer::reading::{FileSector, SectorReader, read_piece};
use acre_farmer::sector::SectorMetadata;
use acre_storage::Archiver;
use acre_storage::segment::ITEM_HEADER_SIZE;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rayon::prelude::*;

const PIECES: u16 = 8;

/// A simulated sector whose audited s-bucket lives at `region_start` of a shared file.
struct SimulatedSector<'a> {
    file: &'a std::fs::File,
    region_start: u64,
    s_bucket_start: usize,
}

impl SectorReader for SimulatedSector<'_> {
    fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), acre_farmer::Error> {
        let within = offset
            .checked_sub(self.s_bucket_start)
            .expect("audits read their s-bucket only");
        FileSector {
            file: self.file,
            path: std::path::Path::new("simulated"),
            base: self.region_start,
        }
        .read_at(within, buf)
    }
}

fn benches(c: &mut Criterion) {
    let params = ProtocolParams::mainnet();
    let mut archiver = Archiver::new(params.clone()).expect("valid params");
    let block = random_bytes(3, params.segment_size() - ITEM_HEADER_SIZE);
    let segments = archiver.add_block(BlockNumber(0), &block).expect("archives");
    let source = InMemoryPieceSource::new(params.clone(), segments);
    let history_size = HistorySize::ONE;
    let public_key = PublicKey([4; 32]);
    let key_hash = public_key.hash();

    let mut group = c.benchmark_group("farming");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30))
        .warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(u64::from(PIECES)));
    for threads in [1, 2] {
        let pool = pool(threads);
        group.bench_function(
            format!("plotting/sector/pieces={PIECES}/threads={threads}"),
            |b| {
                b.iter(|| {
                    pool.install(|| {
                        plot_sector(&params, &key_hash, SectorIndex(0), history_size, PIECES, &source)
                            .expect("plots")
                    })
                })
            },
        );
    }

    let sector =
        plot_sector(&params, &key_hash, SectorIndex(0), history_size, PIECES, &source).expect("plots");
    let id = SectorId::new(&key_hash, SectorIndex(0), history_size);
    group.throughput(Throughput::Elements(1));
    group.bench_function("reading/piece", |b| {
        b.iter(|| {
            read_piece(
                &params,
                &id,
                &sector.metadata,
                &sector.bytes,
                PieceOffset(black_box(5)),
            )
            .expect("reads")
        })
    });

    // A win: audit slots with a wide range until some chunk in the parity half wins and proves (the
    // slower case: its proof needs the record's parity recomputed).
    let half = params.record_chunks as u16;
    let wide = SolutionRange(u64::MAX);
    let (win, challenge): (AuditWin, Blake3Hash) = (0u64..)
        .find_map(|slot| {
            let challenge =
                Blake3Hash(*acre_consensus::hashing::keyed_hash(&[9; 32], &slot.to_le_bytes()).as_bytes());
            let wins = audit_sector(&params, &id, &sector.metadata, &sector.bytes, &challenge, wide)
                .expect("audits");
            wins.into_iter()
                .filter(|win| win.s_bucket.0 >= half)
                .find(|win| {
                    prove(
                        &params,
                        &public_key,
                        [0; 32],
                        &sector.metadata,
                        &sector.bytes,
                        win,
                    )
                    .is_ok()
                })
                .map(|win| (win, challenge))
        })
        .expect("some chunk wins");
    group.bench_function("proving/win", |b| {
        b.iter(|| {
            prove(
                &params,
                &public_key,
                [0; 32],
                &sector.metadata,
                &sector.bytes,
                black_box(&win),
            )
            .expect("proves")
        })
    });

    let range = initial_solution_range(&params);
    group.bench_function("auditing/sector/pieces=8", |b| {
        b.iter(|| {
            audit_sector(
                &params,
                &id,
                &sector.metadata,
                &sector.bytes,
                black_box(&challenge),
                range,
            )
            .expect("audits")
        })
    });

    // The hashing inside an audit: the audit values of one s-bucket's 500 chunks, one at a time (as
    // before the lanes) and eight lanes at a time.
    println!(
        "farming: 8-lane BLAKE3 on AVX2 = {}",
        acre_consensus::hashing::lanes::lanes_accelerated()
    );
    let chunks: Vec<[u8; CHUNK_SIZE]> = random_bytes(9, 500 * CHUNK_SIZE)
        .chunks_exact(CHUNK_SIZE)
        .map(|chunk| chunk.try_into().expect("32 bytes"))
        .collect();
    let slot_challenge = acre_consensus::audit::SectorSlotChallenge::new(&id, &challenge);
    group.throughput(Throughput::Elements(chunks.len() as u64));
    group.bench_function("auditing/chunks=500/one_at_a_time", |b| {
        b.iter(|| {
            black_box(&chunks)
                .iter()
                .map(|chunk| slot_challenge.audit_value(chunk))
                .fold(0u64, u64::wrapping_add)
        })
    });
    group.bench_function("auditing/chunks=500/lanes", |b| {
        b.iter(|| {
            slot_challenge
                .audit_values(black_box(&chunks))
                .into_iter()
                .fold(0u64, u64::wrapping_add)
        })
    });

    // A simulated 1 TiB farm: 1024 full sectors (1000 pieces ≈ 1 GiB each). Each audit reads its sector's
    // s-bucket (about half of 1000 records store a chunk in any s-bucket: 500 chunks, 16 KB) from a file
    // in the page cache, then hashes every chunk.
    let sectors = 1024usize;
    let chunks_per_s_bucket = 500usize;
    let region = chunks_per_s_bucket * CHUNK_SIZE;
    let dir = std::env::temp_dir().join(format!("acre-bench-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("farm");
    std::fs::File::create(&path)
        .and_then(|mut file| file.write_all(&random_bytes(5, sectors * region)))
        .expect("writing the simulated farm");
    let file = std::fs::File::open(&path).expect("opening the simulated farm");
    // Every s-bucket of a simulated sector holds 500 chunks; all sectors share the file's 16 KB regions.
    let s_buckets = params.s_buckets() as usize;
    let farm: Vec<(SectorId, SectorMetadata, u64)> = (0..sectors)
        .map(|i| {
            let id = SectorId::new(
                &key_hash,
                SectorIndex(u16::try_from(i).expect("fits")),
                history_size,
            );
            let metadata = SectorMetadata {
                sector_index: SectorIndex(u16::try_from(i).expect("fits")),
                pieces_in_sector: 1000,
                history_size,
                s_bucket_sizes: vec![u16::try_from(chunks_per_s_bucket).expect("fits"); s_buckets].into(),
            };
            (id, metadata, (i * region) as u64)
        })
        .collect();
    let audit_farm = |challenge: &Blake3Hash| {
        farm.par_iter()
            .map(|(id, metadata, region_start)| {
                let s_bucket =
                    acre_consensus::audit::SectorSlotChallenge::new(id, challenge).s_bucket(&params);
                let reader = SimulatedSector {
                    file: &file,
                    region_start: *region_start,
                    s_bucket_start: metadata.s_bucket_range(s_bucket).start,
                };
                audit_sector(&params, id, metadata, &reader, challenge, range)
                    .expect("audits")
                    .len()
            })
            .sum::<usize>()
    };
    group.throughput(Throughput::Bytes((sectors * region) as u64));
    for threads in [1, 2] {
        let pool = pool(threads);
        group.bench_function(format!("auditing/farm=1TiB/threads={threads}"), |b| {
            b.iter(|| pool.install(|| audit_farm(black_box(&challenge))))
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(farming, benches);
criterion_main!(farming);
