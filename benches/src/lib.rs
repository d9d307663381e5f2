//! Shared helpers for Acre's criterion benchmarks (`cargo bench -p acre-benches --bench NAME`).
//!
//! Benchmarks are named `area/operation/param=value`. Single-threaded figures run inside a one-thread
//! rayon pool so the same code paths are measured with and without parallelism.

pub mod authoring;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Deterministic pseudo-random bytes for benchmark inputs.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut bytes);
    bytes
}

/// A rayon pool with `threads` threads (1 for single-threaded figures).
pub fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("building a rayon pool")
}
