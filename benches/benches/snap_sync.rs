//! Snap sync over loopback: a node with an empty database catches up with a peer holding a chain of
//! `ACRE_BENCH_SNAP_SEGMENTS` archived segments after genesis's (default 5), by snap sync (segment
//! headers, the last two segments rebuilt from pieces, the base block's context and state in verified
//! pages, then the blocks after it) and, as the reference measured in the same run, by full sync (every
//! block from genesis, each proof of time verified). Both run through the real network, sync task and
//! import pipeline, in-process, and are timed from the empty node's start until its best block is the
//! source's.
//!
//! Setup (not measured) authors the chain as the node does ([`acre_benches::authoring`]) with
//! `ACRE_BENCH_SYNC_POT_ITERATIONS` iterations a slot (default 800,000, as the other sync benches) until
//! enough segments are sealed, and stores it in the source node's database.

use std::path::Path;
use std::time::Duration;

use acre_benches::authoring::{AuthoredChain, author};
use acre_benches::{env_number, store_chain, sync_from_node};
use acre_consensus::BlockNumber;
use acre_node::ChainSpec;
use acre_node::archiving::ArchiveState;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

/// Stores and archives the authored chain in a database under `dir`; returns the segment count.
fn store(authored: &AuthoredChain, dir: &Path) -> u64 {
    let chain = store_chain(authored, dir);
    let best = BlockNumber(authored.blocks.len() as u64);
    ArchiveState::restore(chain.db(), &authored.spec.params, best)
        .expect("archives")
        .segment_count()
}

fn benches(c: &mut Criterion) {
    let segments = env_number("ACRE_BENCH_SNAP_SEGMENTS", 5);
    let iterations = env_number("ACRE_BENCH_SYNC_POT_ITERATIONS", 800_000);
    let mut spec = ChainSpec::dev();
    spec.name = "snap-sync-bench".into();
    // Snapshots carry accounts, not a domain registry: a chain with domains syncs in full.
    spec.domains = None;
    spec.params.pot_iterations = u32::try_from(iterations).expect("iterations fit a u32");
    // The authoring farmer plots once, from genesis: its sectors must outlive the chain.
    spec.params.min_sector_lifetime = 1_000_000;
    let mut count = 60 * segments as usize;
    let (authored, source_dir) = loop {
        let authored = author(spec.clone(), count, "snap sync bench");
        let dir = tempfile::tempdir().expect("temp dir");
        if store(&authored, dir.path()) > segments {
            break (authored, dir);
        }
        count = count * 3 / 2;
    };
    let blocks = authored.blocks.len() as u64;
    eprintln!("snap sync bench: {blocks} blocks, at least {segments} segments after genesis's");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("snap_sync");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(40))
        .throughput(Throughput::Elements(blocks));
    let mut medians = Vec::new();
    for (label, snap) in [("full", false), ("snap", true)] {
        let mut runs = Vec::new();
        group.bench_function(format!("{label}/segments={segments}/blocks={blocks}"), |b| {
            b.iter_custom(|times| {
                (0..times)
                    .map(|_| {
                        let took = runtime.block_on(sync_from_node(&spec, source_dir.path(), blocks, snap));
                        runs.push(took);
                        took
                    })
                    .sum()
            })
        });
        runs.sort();
        medians.push(runs.get(runs.len() / 2).copied().unwrap_or_default());
    }
    group.finish();
    if let [full, snap] = medians[..] {
        eprintln!(
            "snap sync bench: {blocks} blocks, {segments}+ segments: snap median {snap:.2?}, full sync median \
             {full:.2?} (snap takes {:.2} × full sync's time)",
            snap.as_secs_f64() / full.as_secs_f64().max(f64::EPSILON)
        );
    }
}

criterion_group!(snap_sync, benches);
criterion_main!(snap_sync);
