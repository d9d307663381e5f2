//! The node's import pipeline on blocks of the real `dev` chain: header checks (seal, proof of time,
//! solution), body checks, execution of signed transfers, the database write and archiving, as
//! [`Chain::import`] does them for a block from a peer.
//!
//! Setup (not measured) authors a chain of `ACRE_BENCH_IMPORT_BLOCKS` blocks (default 20) the way the
//! node does ([`acre_benches::authoring`]; the dev chain's slots take about 0.5 s each to prove).
//! Each measured iteration then opens a fresh in-memory chain and imports the whole chain in order:
//!
//! - `import/dev/pot=verified/blocks=N`: with [`NoPotCache`], so every slot's proof of time is verified
//!   (a block from a peer);
//! - `import/dev/pot=cached/blocks=N`: with the timekeeper as the cache, so proof-of-time verification is
//!   skipped (a block whose slots the node proved itself); the difference is the proof-of-time cost.
//!
//! Opening the chain and dropping it are outside the measurement.

use std::hint::black_box;
use std::time::{Duration, Instant};

use acre_benches::authoring::author;
use acre_consensus::blocks::{Body, Header};
use acre_consensus::pot_chain::{NoPotCache, PotCache};
use acre_node::{Chain, ChainSpec};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

/// Blocks authored when `ACRE_BENCH_IMPORT_BLOCKS` is not set.
const DEFAULT_BLOCKS: usize = 20;

fn block_count() -> usize {
    match std::env::var("ACRE_BENCH_IMPORT_BLOCKS") {
        Ok(value) => value
            .parse()
            .ok()
            .filter(|&blocks: &usize| blocks > 0)
            .expect("ACRE_BENCH_IMPORT_BLOCKS must be a positive integer"),
        Err(_) => DEFAULT_BLOCKS,
    }
}

/// Imports every block into a fresh in-memory chain; returns the time the imports took.
fn import_all(spec: &ChainSpec, blocks: &[(Header, Body)], pot_cache: &impl PotCache) -> Duration {
    let chain = Chain::open(spec.clone(), None).expect("opens an in-memory dev chain");
    let start = Instant::now();
    for (header, body) in blocks {
        black_box(
            chain
                .import(black_box(header), black_box(body), pot_cache)
                .expect("an authored block imports"),
        );
    }
    let elapsed = start.elapsed();
    drop(chain);
    elapsed
}

fn benches(c: &mut Criterion) {
    let authored = author(ChainSpec::dev(), block_count(), "import bench");
    let count = authored.blocks.len();
    eprintln!(
        "import bench: {count} blocks, {} slots of proof of time, {} transactions per import run",
        authored.slots, authored.transactions
    );

    let mut group = c.benchmark_group("import");
    // One run imports the whole chain (seconds with proof of time): one run per sample, ten samples.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(count as u64));
    group.measurement_time(Duration::from_secs(40));
    group.bench_function(format!("dev/pot=verified/blocks={count}"), |b| {
        b.iter_custom(|iterations| {
            (0..iterations)
                .map(|_| import_all(&authored.spec, &authored.blocks, &NoPotCache))
                .sum()
        })
    });
    group.measurement_time(Duration::from_secs(10));
    group.bench_function(format!("dev/pot=cached/blocks={count}"), |b| {
        b.iter_custom(|iterations| {
            (0..iterations)
                .map(|_| import_all(&authored.spec, &authored.blocks, &authored.timekeeper))
                .sum()
        })
    });
    group.finish();
}

criterion_group!(import, benches);
criterion_main!(import);
