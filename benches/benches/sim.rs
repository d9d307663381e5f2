//! The simulator's speed: simulated slots per second with 100 farmers (issue 14).
//!
//! Each measured iteration runs a set-up [`Simulation`] (farmers plotted, slots scheduled; the set-up is
//! outside the measurement) of 100 farmers for `SLOTS` slots: auditing every farmer every slot, proving
//! wins, authoring, judging every block once, gossiping to every node, and fork choice at every node.
//! The reference is real time: a slot lasts one second, so the throughput in slots per second is how many
//! times faster than the chain itself the simulator runs.

use acre_sim::{Config, Simulation};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

/// Slots per measured run.
const SLOTS: u64 = 300;

fn simulate(c: &mut Criterion) {
    let config = Config {
        farmers: 100,
        slots: SLOTS,
        seed: 11,
        ..Config::default()
    };
    let mut group = c.benchmark_group("sim");
    group.sample_size(10);
    group.throughput(Throughput::Elements(SLOTS));
    group.bench_function("farmers=100/slots", |b| {
        b.iter_batched(
            || Simulation::new(&config).expect("sets up"),
            |simulation| simulation.run().expect("runs"),
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, simulate);
criterion_main!(benches);
