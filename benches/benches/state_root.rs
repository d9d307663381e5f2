//! State-root benchmarks: the per-block update of the state root after a block changes 1,000 accounts,
//! in our incremental tree ([`PersistentStateTree`], what the node runs), in the `jmt` crate (Jellyfish
//! Merkle tree, over its in-memory `MockTreeStore`, hashing with BLAKE3 through a `SimpleHasher` adapter),
//! and by the full recomputation the node did before ([`StateTree::root`]), to show the ratio.
//!
//! Each block clones the parent's tree (O(1) for ours), applies the changes and reads the root; the
//! clone and its dropped paths are part of the time. `jmt` computes the new version's nodes against the
//! base version with `put_value_set` (the batch is not written, so every iteration is the same block
//! height over the same base). Trees are built once per size; the resident memory they add is printed
//! per account (Linux `VmRSS`, approximate).

use std::hint::black_box;
use std::time::{Duration, Instant};

use acre_consensus::hashing::{self, HashContext};
use acre_consensus::state_tree::{PersistentStateTree, StateKey, StateTree, value_hash};
use acre_execution::Account;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use jmt::mock::MockTreeStore;
use jmt::{JellyfishMerkleTree, KeyHash, SimpleHasher};

/// Accounts changed per block.
const CHANGED: u32 = 1_000;

/// `jmt`'s hasher interface over BLAKE3 (the hash our tree uses), so both sides hash with the same
/// primitive.
struct Blake3Hasher(blake3::Hasher);

impl SimpleHasher for Blake3Hasher {
    fn new() -> Self {
        Self(blake3::Hasher::new())
    }

    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn finalize(self) -> [u8; 32] {
        *self.0.finalize().as_bytes()
    }
}

fn key(index: u32) -> StateKey {
    *hashing::hash(HashContext::AccountKey, &index.to_le_bytes()).as_bytes()
}

fn account(index: u32, block: u64) -> Account {
    Account {
        balance: u128::from(index) + u128::from(block) * 1_000_000,
        nonce: block,
    }
}

fn encode(account: &Account) -> Vec<u8> {
    acre_consensus::codec::encode(account)
}

/// The accounts block `block` changes: 90% existing accounts spread over the tree, 10% new ones.
fn block_changes(accounts: u32, block: u64) -> Vec<(StateKey, Account)> {
    let new = CHANGED / 10;
    let stride = accounts / (CHANGED - new);
    let offset = u32::try_from(block % u64::from(stride)).expect("stride is a u32");
    let existing = (0..CHANGED - new).map(|i| i * stride + offset);
    let fresh = (0..new).map(|i| accounts + u32::try_from(block).expect("few blocks") * new + i);
    existing
        .chain(fresh)
        .map(|index| (key(index), account(index, block)))
        .collect()
}

/// Resident memory of this process in bytes (0 where `/proc` is not available).
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

fn report_build(what: &str, accounts: u32, before: u64, started: Instant) {
    let added = resident_bytes().saturating_sub(before);
    eprintln!(
        "state/{what}/accounts={accounts}: built in {:.2} s, about {} bytes per account resident",
        started.elapsed().as_secs_f64(),
        added / u64::from(accounts)
    );
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("state");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));

    for accounts in [10_000u32, 1_000_000] {
        let id = format!("accounts={accounts},changed={CHANGED}");

        // Ours: the incremental tree with the account in its leaves, as the node holds it.
        let (before, started) = (resident_bytes(), Instant::now());
        let mut ours = PersistentStateTree::<Account>::new();
        ours.update((0..accounts).map(|index| {
            let account = account(index, 0);
            (key(index), Some((value_hash(&encode(&account)), account)))
        }));
        report_build("root_update", accounts, before, started);
        let mut block = 1u64;
        group.bench_function(format!("root_update/{id}"), |b| {
            b.iter_batched(
                || {
                    block += 1;
                    block_changes(accounts, block)
                },
                |changes| {
                    let mut next = ours.clone();
                    next.update(
                        changes
                            .into_iter()
                            .map(|(key, account)| (key, Some((value_hash(&encode(&account)), account)))),
                    );
                    black_box(next.root())
                },
                BatchSize::SmallInput,
            )
        });

        // The reference before: every account, recomputed.
        let mut reference = StateTree::new();
        for index in 0..accounts {
            reference.insert(key(index), value_hash(&encode(&account(index, 0))));
        }
        assert_eq!(
            reference.root(),
            ours.root(),
            "the incremental tree keeps the root"
        );
        let mut block = 1u64;
        group.bench_function(format!("root_recompute/{id}"), |b| {
            b.iter_batched(
                || {
                    block += 1;
                    block_changes(accounts, block)
                },
                |changes| {
                    for (key, account) in changes {
                        reference.insert(key, value_hash(&encode(&account)));
                    }
                    black_box(reference.root())
                },
                BatchSize::SmallInput,
            )
        });
        drop(reference);

        // jmt over its in-memory store, base version 0.
        let (before, started) = (resident_bytes(), Instant::now());
        let store = MockTreeStore::default();
        let tree = JellyfishMerkleTree::<_, Blake3Hasher>::new(&store);
        let (_, batch) = tree
            .put_value_set(
                (0..accounts).map(|index| (KeyHash(key(index)), Some(encode(&account(index, 0))))),
                0,
            )
            .expect("jmt builds the base version");
        store
            .write_tree_update_batch(batch)
            .expect("the mock store takes the base version");
        report_build("root_update_jmt", accounts, before, started);
        let mut block = 1u64;
        group.bench_function(format!("root_update_jmt/{id}"), |b| {
            b.iter_batched(
                || {
                    block += 1;
                    block_changes(accounts, block)
                },
                |changes| {
                    let (root, batch) = tree
                        .put_value_set(
                            changes
                                .into_iter()
                                .map(|(key, account)| (KeyHash(key), Some(encode(&account)))),
                            1,
                        )
                        .expect("jmt updates version 1 over version 0");
                    black_box((root, batch))
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(state_root, benches);
criterion_main!(state_root);
