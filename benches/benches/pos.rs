//! Proof-of-space benchmarks: building a k = 20 table (single-threaded and parallel), finding the proofs
//! of every s-bucket of a record, and verifying one proof.

use std::hint::black_box;
use std::time::Duration;

use acre_benches::pool;
use acre_consensus::pos::{ChallengeIndex, PosSeed, Table, verify};
use acre_consensus::{ProtocolParams, SBucket};
use criterion::{Criterion, criterion_group, criterion_main};

const K: u8 = 20;

fn seed() -> PosSeed {
    PosSeed([0x42; 32])
}

fn challenges(params: &ProtocolParams) -> Vec<ChallengeIndex> {
    (0..params.s_buckets())
        .map(|s_bucket| {
            let s_bucket = SBucket(u16::try_from(s_bucket).expect("s-buckets fit in u16"));
            ChallengeIndex::for_s_bucket(params, s_bucket).expect("in range")
        })
        .collect()
}

fn tables(c: &mut Criterion) {
    println!(
        "pos: table entries hashed on the 8-lane BLAKE3, AVX2 = {}",
        acre_consensus::hashing::lanes::lanes_accelerated()
    );
    let mut group = c.benchmark_group("pos");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    let single = pool(1);
    let double = pool(2);
    group.bench_function("generate/k=20,threads=1", |b| {
        b.iter(|| single.install(|| Table::<K>::generate(black_box(&seed()))))
    });
    group.bench_function("generate/k=20,threads=2", |b| {
        b.iter(|| double.install(|| Table::<K>::generate_parallel(black_box(&seed()))))
    });

    let params = ProtocolParams::mainnet();
    let challenges = challenges(&params);
    let table = Table::<K>::generate(&seed());
    group.bench_function("find_proofs/k=20,s_buckets=65536", |b| {
        b.iter(|| table.find_proofs(black_box(&challenges)))
    });
    group.bench_function("find_proof_each/k=20,s_buckets=65536", |b| {
        b.iter(|| {
            challenges
                .iter()
                .filter_map(|&challenge| table.find_proof(challenge))
                .count()
        })
    });
    group.bench_function("record/k=20,s_buckets=65536,threads=1", |b| {
        b.iter(|| {
            single.install(|| {
                let table = Table::<K>::generate(black_box(&seed()));
                table.find_proofs(&challenges)
            })
        })
    });

    let (challenge, proof) = challenges
        .iter()
        .find_map(|&challenge| Some((challenge, table.find_proof(challenge)?)))
        .expect("a proof exists");
    group.bench_function("verify/k=20", |b| {
        b.iter(|| verify(black_box(&seed()), challenge, black_box(&proof)))
    });
    group.finish();
}

criterion_group!(benches, tables);
criterion_main!(benches);
