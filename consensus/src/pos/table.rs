//! Building the seven tables of one seed and finding proofs in them.
//!
//! Each table is kept grouped by BC bucket (`y / 15113`) rather than fully sorted: matching only ever
//! compares adjacent buckets, so a stable counting sort by bucket is all the order it needs. Matching a
//! bucket pair indexes the right bucket by remainder (`rmap`) and looks up the 64 targets of each left
//! entry. Only what backtracking a proof needs outlives the build: the x values of table 1 and, for tables
//! 2 to 7, the positions of each entry's two parents; `y` values and metadata of a table are dropped as soon
//! as the next table is built. Table 7 is grouped by its `k`-bit output so a challenge finds its entries
//! directly.
//!
//! The layout is a deterministic function of the seed: the parallel build splits the bucket pairs into
//! ordered chunks and concatenates their results in order, so it produces exactly the serial tables.

// Casts: positions and x values fit in u32 because a table has fewer than 2^32 entries (k ≤ 26), remainders fit in u16.
#![allow(clippy::cast_possible_truncation)]

use std::ops::Range;

use super::f1::{f1_from_keystream, keystream, keystream_len};
use super::fx::{compute_fx, match_targets};
use super::{ChallengeIndex, PARAM_BC, PARAM_EXT, PROOF_X_VALUES, PosSeed, Proof};

/// Chunks of bucket pairs handed to parallel workers (enough to balance two to a few dozen threads).
#[cfg(feature = "parallel")]
const PARALLEL_CHUNKS: usize = 64;

/// One table while the next is built: `y` and metadata of every entry, grouped by bucket.
struct Level {
    ys: Vec<u32>,
    metas: Vec<u128>,
    /// Bucket `b` holds entries `starts[b]..starts[b + 1]`.
    starts: Vec<u32>,
}

impl Level {
    fn bucket(&self, bucket: usize) -> Range<usize> {
        self.starts[bucket] as usize..self.starts[bucket + 1] as usize
    }
}

/// A match waiting to be placed in its bucket.
#[derive(Clone, Copy)]
struct Pending {
    meta: u128,
    y: u32,
    left: u32,
    right: u32,
}

/// The right bucket indexed by remainder: `heads[r]` is 1 + the index of an entry with remainder `r` (0
/// when none), `next` chains entries sharing a remainder.
struct Rmap {
    heads: Vec<u16>,
    next: Vec<u16>,
}

impl Rmap {
    /// Entries indexed at once: indices must fit in `u16` with 0 reserved.
    const WINDOW: usize = u16::MAX as usize - 1;

    fn new() -> Self {
        Self {
            heads: vec![0; usize::from(PARAM_BC)],
            next: Vec::new(),
        }
    }
}

/// All seven tables of one seed, reduced to what finding proofs needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table<const K: u8> {
    /// Table 1's x values, in bucket order.
    xs: Vec<u32>,
    /// For tables 2..=7 (index `table − 2`), each entry's parent positions in the previous table. Table 7
    /// is ordered by its `k`-bit output.
    parents: [Vec<[u32; 2]>; 6],
    /// Table 7 entries with output `t` are `by_target[t]..by_target[t + 1]`.
    by_target: Vec<u32>,
}

impl<const K: u8> Table<K> {
    /// Buckets a `k + 6`-bit `y` can fall in.
    const BUCKETS: usize = {
        assert!(
            K >= 12 && K + PARAM_EXT <= 32,
            "tables are built for k in 12..=26"
        );
        (1usize << (K + PARAM_EXT)).div_ceil(PARAM_BC as usize)
    };

    /// Builds the tables of `seed` on the calling thread.
    pub fn generate(seed: &PosSeed) -> Self {
        Self::build(seed, false)
    }

    /// Builds the tables of `seed` using the current rayon pool; the result equals [`Self::generate`].
    #[cfg(feature = "parallel")]
    pub fn generate_parallel(seed: &PosSeed) -> Self {
        Self::build(seed, true)
    }

    fn build(seed: &PosSeed, parallel: bool) -> Self {
        let (level, xs) = Self::table_1(seed, parallel);
        let (level, parents_2) = Self::next_table::<2>(&level, parallel);
        let (level, parents_3) = Self::next_table::<3>(&level, parallel);
        let (level, parents_4) = Self::next_table::<4>(&level, parallel);
        let (level, parents_5) = Self::next_table::<5>(&level, parallel);
        let (level, parents_6) = Self::next_table::<6>(&level, parallel);
        let pending = Self::matches::<7>(&level, parallel);
        drop(level);
        let (parents_7, by_target) = Self::group_by_target(&pending);
        Self {
            xs,
            parents: [parents_2, parents_3, parents_4, parents_5, parents_6, parents_7],
            by_target,
        }
    }

    /// Table 1: `f1` of every x, grouped by bucket (x ascending within a bucket).
    fn table_1(seed: &PosSeed, parallel: bool) -> (Level, Vec<u32>) {
        let count = 1usize << K;
        let mut ys = vec![0u32; count];
        // Chunks of x whose keystream starts on a byte boundary (x·k bits is a multiple of 8 when 8 | x).
        const X_CHUNK: usize = 1 << 12;
        let fill = |(index, ys): (usize, &mut [u32])| {
            let first_x = index * X_CHUNK;
            let mut stream = vec![0u8; keystream_len(K, ys.len())];
            keystream(seed, (first_x * usize::from(K) / 8) as u64, &mut stream);
            for (offset, y) in ys.iter_mut().enumerate() {
                *y = f1_from_keystream::<K>(&stream, offset, (first_x + offset) as u32);
            }
        };
        run_chunks(&mut ys, X_CHUNK, parallel, fill);

        let mut counts = vec![0u32; Self::BUCKETS + 1];
        for &y in &ys {
            counts[bucket_of(y) + 1] += 1;
        }
        let starts = prefix_sums(counts);
        let mut cursor = starts.clone();
        let mut sorted_ys = vec![0u32; count];
        let mut xs = vec![0u32; count];
        for (x, &y) in ys.iter().enumerate() {
            let slot = &mut cursor[bucket_of(y)];
            sorted_ys[*slot as usize] = y;
            xs[*slot as usize] = x as u32;
            *slot += 1;
        }
        let metas = xs.iter().map(|&x| u128::from(x)).collect();
        (
            Level {
                ys: sorted_ys,
                metas,
                starts,
            },
            xs,
        )
    }

    /// Table `T` (2..=6) from the previous table: its level and each entry's parents.
    fn next_table<const T: u8>(previous: &Level, parallel: bool) -> (Level, Vec<[u32; 2]>) {
        let pending = Self::matches::<T>(previous, parallel);
        let total: usize = pending.iter().map(Vec::len).sum();
        let mut counts = vec![0u32; Self::BUCKETS + 1];
        for entry in pending.iter().flatten() {
            counts[bucket_of(entry.y) + 1] += 1;
        }
        let starts = prefix_sums(counts);
        let mut cursor = starts.clone();
        let mut ys = vec![0u32; total];
        let mut metas = vec![0u128; total];
        let mut parents = vec![[0u32; 2]; total];
        for entry in pending.iter().flatten() {
            let slot = &mut cursor[bucket_of(entry.y)];
            let index = *slot as usize;
            ys[index] = entry.y;
            metas[index] = entry.meta;
            parents[index] = [entry.left, entry.right];
            *slot += 1;
        }
        (Level { ys, metas, starts }, parents)
    }

    /// All matches between adjacent buckets of `previous`, with `f_T` computed, in bucket order (one
    /// vector per chunk of buckets).
    fn matches<const T: u8>(previous: &Level, parallel: bool) -> Vec<Vec<Pending>> {
        let pairs = previous.starts.len().saturating_sub(2);
        let work = |range: Range<usize>| {
            let mut rmap = Rmap::new();
            let mut pairs_found = Vec::new();
            let mut out = Vec::with_capacity(range.len() * 256);
            for bucket in range {
                Self::match_buckets::<T>(previous, bucket, &mut rmap, &mut pairs_found, &mut out);
            }
            out
        };
        split_work(pairs, parallel, work)
    }

    /// Matches bucket `bucket` with `bucket + 1` and appends the resulting entries.
    fn match_buckets<const T: u8>(
        previous: &Level,
        bucket: usize,
        rmap: &mut Rmap,
        pairs: &mut Vec<(u32, u32)>,
        out: &mut Vec<Pending>,
    ) {
        let left = previous.bucket(bucket);
        let right = previous.bucket(bucket + 1);
        if left.is_empty() || right.is_empty() {
            return;
        }
        let left_base = (bucket * usize::from(PARAM_BC)) as u32;
        let right_base = left_base + u32::from(PARAM_BC);
        let parity = bucket % 2;
        pairs.clear();
        for window_start in right.clone().step_by(Rmap::WINDOW) {
            let window = window_start..(window_start + Rmap::WINDOW).min(right.end);
            rmap.next.clear();
            for (index, &y) in previous.ys[window.clone()].iter().enumerate() {
                let head = &mut rmap.heads[(y - right_base) as usize];
                rmap.next.push(*head);
                *head = index as u16 + 1;
            }
            for (left_index, &y) in previous.ys[left.clone()].iter().enumerate() {
                for target in match_targets(y - left_base, parity) {
                    let mut link = rmap.heads[usize::from(target)];
                    while link != 0 {
                        let right_index = usize::from(link - 1);
                        pairs.push((
                            (left.start + left_index) as u32,
                            (window.start + right_index) as u32,
                        ));
                        link = rmap.next[right_index];
                    }
                }
            }
            for &y in &previous.ys[window] {
                rmap.heads[(y - right_base) as usize] = 0;
            }
        }
        out.extend(pairs.iter().map(|&(left, right)| {
            let (y, meta) = compute_fx::<K>(
                T,
                u64::from(previous.ys[left as usize]),
                previous.metas[left as usize],
                previous.metas[right as usize],
            );
            Pending {
                meta,
                y: y as u32,
                left,
                right,
            }
        }));
    }

    /// Orders table 7 by its `k`-bit output (`y >> 6`).
    fn group_by_target(pending: &[Vec<Pending>]) -> (Vec<[u32; 2]>, Vec<u32>) {
        let total: usize = pending.iter().map(Vec::len).sum();
        let mut counts = vec![0u32; (1usize << K) + 1];
        for entry in pending.iter().flatten() {
            counts[(entry.y >> PARAM_EXT) as usize + 1] += 1;
        }
        let by_target = prefix_sums(counts);
        let mut cursor = by_target.clone();
        let mut parents = vec![[0u32; 2]; total];
        for entry in pending.iter().flatten() {
            let slot = &mut cursor[(entry.y >> PARAM_EXT) as usize];
            parents[*slot as usize] = [entry.left, entry.right];
            *slot += 1;
        }
        (parents, by_target)
    }

    /// The canonical proof for `challenge`: among the table-7 entries whose output equals it, the one whose
    /// x values are smallest in lexicographic order. `None` when no entry has that output.
    pub fn find_proof(&self, challenge: ChallengeIndex) -> Option<Proof<K>> {
        self.entries(challenge)
            .map(|entry| self.x_values(entry))
            .min()
            .map(|xs| Proof::from_x_values(&xs))
    }

    /// Every proof for `challenge`, canonical (smallest) first.
    pub fn proofs(&self, challenge: ChallengeIndex) -> Vec<Proof<K>> {
        let mut all: Vec<_> = self
            .entries(challenge)
            .map(|entry| self.x_values(entry))
            .collect();
        all.sort_unstable();
        all.iter().map(Proof::from_x_values).collect()
    }

    /// Table-7 entries whose output is `challenge` (empty when it does not fit in `k` bits).
    fn entries(&self, challenge: ChallengeIndex) -> Range<usize> {
        let target = challenge.0 as usize;
        match (self.by_target.get(target), self.by_target.get(target + 1)) {
            (Some(&start), Some(&end)) => start as usize..end as usize,
            _ => 0..0,
        }
    }

    /// Number of proofs for `challenge`.
    pub fn proof_count(&self, challenge: ChallengeIndex) -> usize {
        self.entries(challenge).len()
    }

    /// The x values of table-7 entry `entry`, in proof order (left subtree first).
    fn x_values(&self, entry: usize) -> [u32; PROOF_X_VALUES] {
        let mut nodes = [0u32; PROOF_X_VALUES];
        nodes[0] = entry as u32;
        let mut len = 1;
        for parents in self.parents.iter().rev() {
            for index in (0..len).rev() {
                let [left, right] = parents[nodes[index] as usize];
                nodes[2 * index] = left;
                nodes[2 * index + 1] = right;
            }
            len *= 2;
        }
        nodes.map(|position| self.xs[position as usize])
    }
}

fn bucket_of(y: u32) -> usize {
    (y / u32::from(PARAM_BC)) as usize
}

/// Turns `counts[b + 1] = size of bucket b` into `starts[b] = first index of bucket b`.
fn prefix_sums(mut counts: Vec<u32>) -> Vec<u32> {
    for index in 1..counts.len() {
        counts[index] += counts[index - 1];
    }
    counts
}

/// Runs `work` on ordered chunks of `0..items`, in parallel when asked (and built with `parallel`).
fn split_work<T: Send>(
    items: usize,
    parallel: bool,
    work: impl Fn(Range<usize>) -> T + Sync + Send,
) -> Vec<T> {
    #[cfg(feature = "parallel")]
    if parallel {
        use rayon::prelude::*;
        let chunk = items.div_ceil(PARALLEL_CHUNKS).max(1);
        let ranges: Vec<_> = (0..items)
            .step_by(chunk)
            .map(|start| start..(start + chunk).min(items))
            .collect();
        return ranges.into_par_iter().map(work).collect();
    }
    let _ = parallel;
    vec![work(0..items)]
}

/// Runs `work` on `(index, chunk)` of `items` split into `chunk`-sized pieces, in parallel when asked.
fn run_chunks<T: Send>(
    items: &mut [T],
    chunk: usize,
    parallel: bool,
    work: impl Fn((usize, &mut [T])) + Sync + Send,
) {
    #[cfg(feature = "parallel")]
    if parallel {
        use rayon::prelude::*;
        items.par_chunks_mut(chunk).enumerate().for_each(work);
        return;
    }
    let _ = parallel;
    items.chunks_mut(chunk).enumerate().for_each(work);
}
