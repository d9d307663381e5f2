//! Full sync over loopback: a node with an empty database catches up with a peer holding a chain of
//! `ACRE_BENCH_SYNC_BLOCKS` blocks (default 2,000), through the real network, sync task and import
//! pipeline (every block's proof of time verified: the syncing node proved none of it).
//!
//! Setup (not measured) authors the chain as the node does ([`acre_benches::authoring`]) with
//! `ACRE_BENCH_SYNC_POT_ITERATIONS` iterations a slot (default 800,000: the dev chain's 44.5 million
//! would take most of an hour to author 2,000 blocks) and sectors that do not expire (the authoring farmer
//! plots once), and stores it in the source node's database.
//! Each measured run starts the source node and an empty node bootstrapped to it, both in-process
//! without a timekeeper, and times from the empty node's start until its best block is the last one.
//!
//! Besides blocks per second, the bench prints sync speed as a multiple of the chain's own pace: the
//! time the chain took to produce (its slots × one slot's proving time at the same iterations, measured
//! in this run) over the time sync took. Proving and verifying both scale with the iterations, while
//! the rest of import does not, so the multiple at fewer iterations is a lower bound for the dev chain's.

use std::time::{Duration, Instant};

use acre_benches::authoring::author;
use acre_benches::{env_number, store_chain, sync_from_node};
use acre_consensus::pot::{PotSeed, prove};
use acre_node::ChainSpec;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

fn benches(c: &mut Criterion) {
    let count = env_number("ACRE_BENCH_SYNC_BLOCKS", 2_000) as usize;
    let iterations = env_number("ACRE_BENCH_SYNC_POT_ITERATIONS", 800_000);
    let mut spec = ChainSpec::dev();
    spec.name = "sync-bench".into();
    spec.params.pot_iterations = u32::try_from(iterations).expect("iterations fit a u32");
    // The authoring farmer plots once, from genesis: its sectors must outlive the chain's 2,000 blocks.
    spec.params.min_sector_lifetime = 1_000_000;
    let authored = author(spec.clone(), count, "sync bench");
    let source_dir = tempfile::tempdir().expect("temp dir");
    store_chain(&authored, source_dir.path());

    // The chain's own pace: its slots at one slot's proving time, measured now.
    let seed = PotSeed([1; 16]);
    let proving = Instant::now();
    let proofs = 5;
    for _ in 0..proofs {
        std::hint::black_box(prove(&seed, &seed.key(), spec.params.pot_iterations).expect("proves"));
    }
    let slot_time = proving.elapsed() / proofs;
    let chain_time = slot_time * u32::try_from(authored.slots).expect("slots fit a u32");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("sync");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(60))
        .throughput(Throughput::Elements(count as u64));
    let mut runs = Vec::new();
    group.bench_function(format!("full/blocks={count}/pot_iterations={iterations}"), |b| {
        b.iter_custom(|times| {
            (0..times)
                .map(|_| {
                    let took =
                        runtime.block_on(sync_from_node(&spec, source_dir.path(), count as u64, false));
                    runs.push(took);
                    took
                })
                .sum()
        })
    });
    group.finish();
    if let Some(median) = {
        runs.sort();
        runs.get(runs.len() / 2).copied()
    } {
        eprintln!(
            "sync bench: {count} blocks over {} slots; one slot proves in {slot_time:.2?}, so the chain took \
             {chain_time:.1?} to produce; median sync {median:.2?} = {:.0} blocks/s = {:.1} × the chain's pace",
            authored.slots,
            count as f64 / median.as_secs_f64(),
            chain_time.as_secs_f64() / median.as_secs_f64()
        );
    }
}

criterion_group!(sync, benches);
criterion_main!(sync);
