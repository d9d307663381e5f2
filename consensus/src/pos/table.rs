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

// Casts: positions and x values fit in u32 because a table has fewer than 2^32 entries (k ≤ 26).
#![allow(clippy::cast_possible_truncation)]

mod grouping;
mod matching;

use std::ops::Range;

use self::grouping::{group_starts, scatter};
use self::matching::{Entry, Level, Rmap, bucket_of};
use super::f1::{f1_from_keystream, keystream, keystream_len};
use super::{ChallengeIndex, PARAM_BC, PARAM_EXT, PROOF_X_VALUES, PosSeed, Proof};

/// Chunks of bucket pairs handed to parallel workers (enough to balance two to a few dozen threads).
#[cfg(feature = "parallel")]
const PARALLEL_CHUNKS: usize = 64;

/// All seven tables of one seed, reduced to what finding proofs needs.
#[derive(Clone, PartialEq, Eq)]
pub struct Table<const K: u8> {
    /// Table 1's x values, in bucket order.
    xs: Vec<u32>,
    /// For tables 2..=7 (index `table − 2`), each entry's parent positions in the previous table. Table 7
    /// is ordered by its `k`-bit output.
    parents: [Vec<[u32; 2]>; 6],
    /// Table 7 entries with output `t` are `by_target[t]..by_target[t + 1]`.
    by_target: Vec<u32>,
}

impl<const K: u8> std::fmt::Debug for Table<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sizes = self.parents.each_ref().map(Vec::len);
        write!(f, "Table<{K}>(entries per table: {}, {sizes:?})", self.xs.len())
    }
}

/// Buffers reused from table to table, so building touches no fresh memory after table 2.
struct Buffers {
    /// Matches in discovery order, before they are grouped by bucket.
    pending: Vec<Entry>,
    /// The previous table's entries, recycled as the next table's.
    spare: Vec<Entry>,
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
        let level = Self::table_1(seed, parallel);
        let xs = level.entries.iter().map(|entry| entry.meta as u32).collect();
        let mut buffers = Buffers {
            pending: Vec::new(),
            spare: Vec::new(),
        };
        let (level, parents_2) = Self::next_table::<2>(level, parallel, &mut buffers);
        let (level, parents_3) = Self::next_table::<3>(level, parallel, &mut buffers);
        let (level, parents_4) = Self::next_table::<4>(level, parallel, &mut buffers);
        let (level, parents_5) = Self::next_table::<5>(level, parallel, &mut buffers);
        let (level, parents_6) = Self::next_table::<6>(level, parallel, &mut buffers);
        let chunks = Self::matches::<7>(&level, parallel, &mut buffers.pending);
        drop(level);
        let (parents_7, by_target) = Self::group_by_target(&chunks, parallel);
        Self {
            xs,
            parents: [parents_2, parents_3, parents_4, parents_5, parents_6, parents_7],
            by_target,
        }
    }

    /// Table 1: `f1` of every x, grouped by bucket (x ascending within a bucket), with x as metadata.
    fn table_1(seed: &PosSeed, parallel: bool) -> Level {
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

        let chunks = [ys.as_slice()];
        let key = |y: &u32| bucket_of(*y);
        let starts = group_starts(&chunks, Self::BUCKETS, key);
        let mut entries = vec![Entry::default(); count];
        let entry = |x: usize, &y: &u32| Entry {
            meta: x as u128,
            y,
            left: 0,
            right: 0,
        };
        scatter(&chunks, &starts, key, entry, &mut entries, parallel);
        Level { entries, starts }
    }

    /// Table `T` (2..=6) from the previous table: its level and each entry's parents.
    fn next_table<const T: u8>(
        previous: Level,
        parallel: bool,
        buffers: &mut Buffers,
    ) -> (Level, Vec<[u32; 2]>) {
        let chunks = Self::matches::<T>(&previous, parallel, &mut buffers.pending);
        let slices: Vec<&[Entry]> = chunks.iter().map(Vec::as_slice).collect();
        let key = |entry: &Entry| bucket_of(entry.y);
        let starts = group_starts(&slices, Self::BUCKETS, key);
        let mut entries = std::mem::take(&mut buffers.spare);
        // Every slot is written exactly once by the scatter; stale contents are overwritten or cut off.
        entries.resize(starts[Self::BUCKETS] as usize, Entry::default());
        scatter(&slices, &starts, key, |_, entry| *entry, &mut entries, parallel);
        let parents = Self::parents(&entries, parallel);
        buffers.spare = previous.entries;
        buffers.pending = chunks.into_iter().next().unwrap_or_default();
        (Level { entries, starts }, parents)
    }

    /// Each entry's parent positions.
    fn parents(entries: &[Entry], parallel: bool) -> Vec<[u32; 2]> {
        let parents = |entry: &Entry| [entry.left, entry.right];
        #[cfg(feature = "parallel")]
        if parallel {
            use rayon::prelude::*;
            return entries.par_iter().map(parents).collect();
        }
        let _ = parallel;
        entries.iter().map(parents).collect()
    }

    /// All matches between adjacent buckets of `previous`, with `f_T` computed, in bucket order: one vector
    /// per chunk of buckets (a single one, reusing `recycled`, when not parallel).
    fn matches<const T: u8>(previous: &Level, parallel: bool, recycled: &mut Vec<Entry>) -> Vec<Vec<Entry>> {
        let pairs = previous.bucket_pairs();
        let run = |buckets: Range<usize>, mut out: Vec<Entry>| {
            out.clear();
            // Tables hold about as many entries as the previous one; a little slack avoids regrowth.
            out.reserve(previous.entries.len() * buckets.len() / pairs.max(1) * 17 / 16);
            let mut rmap = Rmap::new();
            for bucket in buckets {
                rmap.match_buckets::<K, T>(previous, bucket, &mut out);
            }
            out
        };
        #[cfg(feature = "parallel")]
        if parallel {
            use rayon::prelude::*;
            let chunk = pairs.div_ceil(PARALLEL_CHUNKS).max(1);
            let ranges: Vec<_> = (0..pairs)
                .step_by(chunk)
                .map(|start| start..(start + chunk).min(pairs))
                .collect();
            return ranges
                .into_par_iter()
                .map(|buckets| {
                    let capacity = buckets.len() * 256;
                    run(buckets, Vec::with_capacity(capacity))
                })
                .collect();
        }
        let _ = parallel;
        vec![run(0..pairs, std::mem::take(recycled))]
    }

    /// Orders table 7 by its `k`-bit output (`y >> 6`).
    fn group_by_target(chunks: &[Vec<Entry>], parallel: bool) -> (Vec<[u32; 2]>, Vec<u32>) {
        let slices: Vec<&[Entry]> = chunks.iter().map(Vec::as_slice).collect();
        let key = |entry: &Entry| (entry.y >> PARAM_EXT) as usize;
        let by_target = group_starts(&slices, 1 << K, key);
        let mut parents = vec![[0u32; 2]; by_target[1 << K] as usize];
        let parent = |_, entry: &Entry| [entry.left, entry.right];
        scatter(&slices, &by_target, key, parent, &mut parents, parallel);
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

    /// [`Self::find_proof`] for each of `challenges`, in order. Faster than one call per challenge: the
    /// memory lookups of many proofs' trees overlap instead of waiting on each other.
    pub fn find_proofs(&self, challenges: &[ChallengeIndex]) -> Vec<Option<Proof<K>>> {
        const BATCH: usize = 32;
        let mut best: Vec<Option<[u32; PROOF_X_VALUES]>> = vec![None; challenges.len()];
        let candidates: Vec<(usize, usize)> = challenges
            .iter()
            .enumerate()
            .flat_map(|(index, &challenge)| self.entries(challenge).map(move |entry| (index, entry)))
            .collect();
        let mut nodes = [[0u32; PROOF_X_VALUES]; BATCH];
        for batch in candidates.chunks(BATCH) {
            for (slot, &(_, entry)) in nodes.iter_mut().zip(batch) {
                slot[0] = entry as u32;
            }
            let nodes = &mut nodes[..batch.len()];
            self.expand(nodes);
            for (xs, &(index, _)) in nodes.iter().zip(batch) {
                if best[index].is_none_or(|current| *xs < current) {
                    best[index] = Some(*xs);
                }
            }
        }
        best.iter()
            .map(|xs| xs.as_ref().map(Proof::from_x_values))
            .collect()
    }

    /// [`Self::find_proofs`] on the current rayon pool, in slices of the challenges; the result is the
    /// same.
    #[cfg(feature = "parallel")]
    pub fn find_proofs_parallel(&self, challenges: &[ChallengeIndex]) -> Vec<Option<Proof<K>>> {
        use rayon::prelude::*;
        let slice = challenges.len().div_ceil(4 * rayon::current_num_threads()).max(1);
        challenges
            .par_chunks(slice)
            .flat_map_iter(|challenges| self.find_proofs(challenges))
            .collect()
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
        let mut nodes = [[0u32; PROOF_X_VALUES]];
        nodes[0][0] = entry as u32;
        self.expand(&mut nodes);
        nodes[0]
    }

    /// Replaces each tree's table-7 position (slot 0) by its 64 x values in proof order, walking all
    /// trees level by level so their independent lookups overlap.
    fn expand(&self, trees: &mut [[u32; PROOF_X_VALUES]]) {
        let mut len = 1;
        for parents in self.parents.iter().rev() {
            for index in (0..len).rev() {
                for nodes in trees.iter_mut() {
                    let [left, right] = parents[nodes[index] as usize];
                    nodes[2 * index] = left;
                    nodes[2 * index + 1] = right;
                }
            }
            len *= 2;
        }
        for nodes in trees.iter_mut() {
            for node in nodes.iter_mut() {
                *node = self.xs[*node as usize];
            }
        }
    }
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
