//! Proof-of-time benchmarks: the raw AES round latency (the bound proving can reach), proving throughput
//! and the time to verify one slot's checkpoints.

use std::hint::black_box;
use std::time::Duration;

use acre_benches::pool;
use acre_consensus::ProtocolParams;
use acre_consensus::pot::{self, PotKernel, PotSeed};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Iterations per measured proof: 2^23 (about 0.1 s), a multiple of 8.
const ITERATIONS: u32 = 1 << 23;

/// Runs `rounds` dependent AES rounds: the latency bound of one AES chain.
#[cfg(target_arch = "x86_64")]
mod latency {
    use std::arch::x86_64::{__m128i, _mm_aesenc_si128, _mm_set1_epi32};

    #[target_feature(enable = "aes")]
    fn chain(seed: i32, iterations: u64) -> __m128i {
        let key = _mm_set1_epi32(0x5a5a_5a5a);
        let mut block = _mm_set1_epi32(seed);
        for _ in 0..iterations {
            // Ten dependent rounds: the latency of one AES-128 encryption, with no whitening XOR.
            for _ in 0..10 {
                block = _mm_aesenc_si128(block, key);
            }
        }
        block
    }

    /// `iterations` × 10 dependent `aesenc` rounds; `None` without AES-NI.
    #[allow(unsafe_code)]
    pub(crate) fn rounds(seed: i32, iterations: u64) -> Option<__m128i> {
        if !std::arch::is_x86_feature_detected!("aes") {
            return None;
        }
        // SAFETY: the CPU supports AES-NI (checked just above), the only feature `chain` enables.
        Some(unsafe { chain(seed, iterations) })
    }
}

fn aes_latency(c: &mut Criterion) {
    let mut group = c.benchmark_group("pot");
    group.throughput(Throughput::Elements(u64::from(ITERATIONS)));
    group.sample_size(20).measurement_time(Duration::from_secs(10));
    #[cfg(target_arch = "x86_64")]
    if latency::rounds(1, 1).is_some() {
        group.bench_function("aes_latency/rounds_per_iteration=10", |b| {
            b.iter(|| latency::rounds(black_box(7), u64::from(ITERATIONS)))
        });
    }

    let seed = PotSeed([0x11; 16]);
    let key = seed.key();
    println!(
        "pot: detected kernel = {} (available: {}); aes crate hardware AES = {}",
        PotKernel::detected().name(),
        PotKernel::available()
            .iter()
            .map(|kernel| kernel.name())
            .collect::<Vec<_>>()
            .join(", "),
        pot::hardware_accelerated()
    );
    let checkpoints = pot::prove(&seed, &key, ITERATIONS).expect("valid iterations");
    // Every kernel this CPU runs, the portable one (the `aes` crate: the previous implementation) first,
    // so one run gives the before and after.
    for kernel in PotKernel::available() {
        let name = kernel.name();
        group.bench_function(format!("prove/kernel={name},iterations=8388608"), |b| {
            b.iter(|| pot::prove_with_kernel(kernel, black_box(&seed), &key, ITERATIONS))
        });
        group.bench_function(
            format!("verify/kernel={name},iterations=8388608,threads=1"),
            |b| b.iter(|| pot::verify_with_kernel(kernel, black_box(&seed), &key, ITERATIONS, &checkpoints)),
        );
    }
    group.finish();

    // A syncing node's backlog: slots verified side by side, one per thread (throughput per slot).
    let double = pool(2);
    let mut group = c.benchmark_group("pot");
    group.throughput(Throughput::Elements(2 * u64::from(ITERATIONS)));
    group.sample_size(20).measurement_time(Duration::from_secs(10));
    let slots = [(&seed, &key, &checkpoints), (&seed, &key, &checkpoints)];
    group.bench_function("verify_many/slots=2,iterations=8388608,threads=2", |b| {
        b.iter(|| double.install(|| pot::verify_many(black_box(&slots), ITERATIONS)))
    });
    group.finish();

    // One slot's checkpoints at the shipped parameters, as a node verifies them.
    let mut group = c.benchmark_group("pot");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    for (name, params) in [
        ("dev", ProtocolParams::dev()),
        ("mainnet", ProtocolParams::mainnet()),
    ] {
        let iterations = params.pot_iterations;
        let checkpoints = pot::prove(&seed, &key, iterations).expect("valid iterations");
        group.bench_function(format!("verify_slot/params={name},threads=2"), |b| {
            b.iter(|| double.install(|| pot::verify(black_box(&seed), &key, iterations, &checkpoints)))
        });
    }
    group.finish();
}

criterion_group!(benches, aes_latency);
criterion_main!(benches);
