//! Matching adjacent buckets of a table and computing the next table's entries.

// Casts: positions fit in u32 because a table has fewer than 2^32 entries (k ≤ 26); remainders are below
// BC and window indices below 2^16.
#![allow(clippy::cast_possible_truncation)]

use std::ops::Range;

use super::super::fx::{fx_input, fx_input_len, fx_output, match_targets};
use super::super::{PARAM_BC, PARAM_M};
use crate::hashing::lanes::{LANES, hash_short_lanes};

/// One entry of a table while the next one is built. Table 1 entries carry `x` as metadata and no parents.
#[derive(Clone, Copy, Default)]
pub(super) struct Entry {
    /// Metadata: `metadata_bits(k, table)` bits.
    pub(super) meta: u128,
    /// `f` of the entry (`k + 6` bits).
    pub(super) y: u32,
    /// Position of the left parent in the previous table.
    pub(super) left: u32,
    /// Position of the right parent in the previous table.
    pub(super) right: u32,
}

/// A table grouped by BC bucket.
pub(super) struct Level {
    pub(super) entries: Vec<Entry>,
    /// Bucket `b` holds entries `starts[b]..starts[b + 1]`.
    pub(super) starts: Vec<u32>,
}

impl Level {
    fn bucket(&self, bucket: usize) -> Range<usize> {
        self.starts[bucket] as usize..self.starts[bucket + 1] as usize
    }

    /// Number of adjacent bucket pairs.
    pub(super) fn bucket_pairs(&self) -> usize {
        self.starts.len().saturating_sub(2)
    }
}

/// The BC bucket of `y`.
pub(super) fn bucket_of(y: u32) -> usize {
    (y / u32::from(PARAM_BC)) as usize
}

/// The right bucket indexed by remainder: `present[r]` is non-zero when some entry has remainder `r` (15 KB
/// of it are ever touched, so the 64 probes per left entry stay in L1); `heads[r]` is 1 + the index of the
/// last such entry and `next` chains entries sharing a remainder.
pub(super) struct Rmap {
    present: Box<[u8; SLOTS]>,
    heads: Box<[u16; SLOTS]>,
    next: Vec<u16>,
    /// Remainders inserted since the last clear.
    inserted: Vec<u16>,
    /// Matches of the current bucket pair (positions in the previous table).
    pairs: Vec<(u32, u32)>,
}

/// Slots of the remainder maps: every `u16`, so a remainder indexes them without a bounds check.
const SLOTS: usize = 1 << 16;
/// Targets probed together before looking at them one by one (a group holds a match about 1 time in 8).
const PROBE_GROUP: usize = 8;

impl Rmap {
    /// Entries indexed at once: indices must fit in `u16` with 0 reserved.
    const WINDOW: usize = u16::MAX as usize - 1;

    pub(super) fn new() -> Self {
        Self {
            present: Box::new([0; SLOTS]),
            heads: Box::new([0; SLOTS]),
            next: Vec::new(),
            inserted: Vec::new(),
            pairs: Vec::new(),
        }
    }

    #[inline(always)]
    fn insert(&mut self, remainder: u16, index: usize) {
        let slot = usize::from(remainder);
        let previous = if self.present[slot] == 0 {
            0
        } else {
            self.heads[slot]
        };
        self.present[slot] = 1;
        self.next.push(previous);
        self.inserted.push(remainder);
        self.heads[slot] = index as u16 + 1;
    }

    /// Bit `m` is set when some right entry has remainder `targets[m]`. Most groups of targets hold no
    /// match, so a group is first tested as a whole with loads and ORs only.
    #[inline(always)]
    fn probe(&self, targets: &[u16; PARAM_M]) -> u64 {
        let present = &*self.present;
        let mut hits = 0u64;
        for (group, chunk) in targets.chunks_exact(PROBE_GROUP).enumerate() {
            let any = chunk
                .iter()
                .fold(0u8, |any, &target| any | present[usize::from(target)]);
            if any != 0 {
                for (offset, &target) in chunk.iter().enumerate() {
                    let hit = u64::from(present[usize::from(target)]);
                    hits |= hit << (group * PROBE_GROUP + offset);
                }
            }
        }
        hits
    }

    fn clear(&mut self) {
        for &remainder in &self.inserted {
            self.present[usize::from(remainder)] = 0;
        }
        self.inserted.clear();
        self.next.clear();
    }

    /// Finds every match between `bucket` and `bucket + 1` of `level` and appends the entries of table
    /// `T` they produce, in order: left entries in bucket order, then the 64 targets in order, then right
    /// entries sharing a remainder, last inserted first.
    pub(super) fn match_buckets<const K: u8, const T: u8>(
        &mut self,
        level: &Level,
        bucket: usize,
        out: &mut Vec<Entry>,
    ) {
        let left = level.bucket(bucket);
        let right = level.bucket(bucket + 1);
        if left.is_empty() || right.is_empty() {
            return;
        }
        let entries = &level.entries;
        let left_base = (bucket * usize::from(PARAM_BC)) as u32;
        let right_base = left_base + u32::from(PARAM_BC);
        let parity = bucket % 2;
        self.pairs.clear();
        for window_start in right.clone().step_by(Self::WINDOW) {
            let window = window_start..(window_start + Self::WINDOW).min(right.end);
            for (index, entry) in entries[window.clone()].iter().enumerate() {
                self.insert((entry.y - right_base) as u16, index);
            }
            for (entry, left_position) in entries[left.clone()].iter().zip(left.start..) {
                let targets = match_targets(entry.y - left_base, parity);
                let mut hits = self.probe(&targets);
                while hits != 0 {
                    let target = targets[hits.trailing_zeros() as usize];
                    hits &= hits - 1;
                    let mut link = self.heads[usize::from(target)];
                    while link != 0 {
                        let right_index = usize::from(link - 1);
                        let pair = (left_position as u32, (window.start + right_index) as u32);
                        self.pairs.push(pair);
                        link = self.next[right_index];
                    }
                }
            }
            self.clear();
        }
        // The pairs' hashes are independent: compute them [`LANES`] at a time. The last group's unused
        // lanes hash stale inputs whose results are dropped.
        let len = fx_input_len(K, T);
        let mut blocks = [[0u8; 64]; LANES];
        let mut hashes = [[0u8; 32]; LANES];
        for group in self.pairs.chunks(LANES) {
            for (block, &(left, right)) in blocks.iter_mut().zip(group) {
                let left_entry = &entries[left as usize];
                let right_meta = entries[right as usize].meta;
                fx_input::<K>(T, u64::from(left_entry.y), left_entry.meta, right_meta, block);
            }
            hash_short_lanes(&blocks, len, &mut hashes);
            for (hash, &(left, right)) in hashes.iter().zip(group) {
                let left_meta = entries[left as usize].meta;
                let right_meta = entries[right as usize].meta;
                let (y, meta) = fx_output::<K>(T, hash, left_meta, right_meta);
                out.push(Entry {
                    meta,
                    y: y as u32,
                    left,
                    right,
                });
            }
        }
    }
}
