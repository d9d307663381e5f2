//! Key-range proofs: a page of consecutive entries shown to be *all* the entries of its key range.
//!
//! Snap sync downloads a block's whole state from untrusted peers in pages of consecutive keys and checks
//! each page on its own against the block's state root. A page from `start` holds entries in ascending
//! key order, a flag `complete` (no entry follows the last one), and a [`Witness`] over the keys
//! `{start} ∪ {the entries' keys} ∪ {LAST_KEY if complete}`. It proves that the entries are exactly the
//! tree's entries in `[start, end]`, with `end` the last entry's key, or [`LAST_KEY`] when complete.
//!
//! Why this is sound, under the compact rule. Once the witness hashes to the root, each witness subtree
//! that is not `Pruned` is the tree's subtree at that place (hash contexts separate leaves from nodes,
//! and nothing hashes to [`Blake3Hash::ZERO`]): `Empty` holds no entry, `Leaf` exactly that one entry,
//! and `Node` exactly what its two children hold. So a witness in which no `Pruned` subtree's key
//! interval meets `[start, end]` shows every entry in the range, and [`verify_range`] compares those
//! with the page. A `Pruned` subtree could hide anything, so one meeting the range is refused.
//!
//! Why an honest page never needs to prune inside the range. A witness prunes only subtrees of two or
//! more entries off the paths of its keys. Take a subtree whose interval meets `[start, end]`: if the
//! interval holds `start` or `end`, that key's path runs through it; otherwise the interval lies inside
//! the range, so its entries are page entries whose paths run through it. Either way it is on a
//! witnessed path. This is why `start` and `end` are witness keys even when no entry sits there.
//!
//! Paging ends: a page that is not complete holds at least one entry, and the next page starts after
//! its last key, so a hostile peer can slow a sync but not loop it.

use super::persistent::PersistentStateTree;
use super::witness::Witness;
use super::{StateKey, StateTree};
use crate::hashing::Blake3Hash;

/// The greatest key: where a complete page's range ends.
pub const LAST_KEY: StateKey = [0xff; 32];

/// Most `Node` levels a witness can have: a node at depth `d` splits on key bit `d`.
const MAX_DEPTH: usize = 256;

/// The key after `key` as a 256-bit big-endian number (`None` after [`LAST_KEY`]).
pub fn next_key(key: &StateKey) -> Option<StateKey> {
    let mut next = *key;
    for byte in next.iter_mut().rev() {
        let (sum, carry) = byte.overflowing_add(1);
        *byte = sum;
        if !carry {
            return Some(next);
        }
    }
    None
}

/// A page of the tree: consecutive entries from a start key and the proof that they are all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange<'a, V = ()> {
    /// Entries with key at or after the start, ascending: key, value hash and payload.
    pub entries: Vec<(StateKey, Blake3Hash, &'a V)>,
    /// No entry of the tree follows the last one returned.
    pub complete: bool,
    /// The witness over the start, the entries' keys and, when complete, [`LAST_KEY`].
    pub proof: Witness,
}

impl<V> KeyRange<'_, V> {
    /// The entries as [`verify_range`] takes them.
    pub fn entry_hashes(&self) -> Vec<(StateKey, Blake3Hash)> {
        self.entries
            .iter()
            .map(|(key, value_hash, _)| (*key, *value_hash))
            .collect()
    }

    /// Where the next page starts: after the last key, or `None` when this page is the last.
    pub fn next_start(&self) -> Option<StateKey> {
        if self.complete {
            return None;
        }
        self.entries.last().and_then(|(key, _, _)| next_key(key))
    }
}

/// Builds the page from up to `limit + 1` entries found from `start` (the extra one only says whether
/// more follow), using `witness` to prove it.
fn page<'a, V>(
    start: &StateKey,
    limit: usize,
    mut found: Vec<(StateKey, Blake3Hash, &'a V)>,
    witness: impl FnOnce(&[StateKey]) -> Witness,
) -> KeyRange<'a, V> {
    let complete = found.len() <= limit;
    found.truncate(limit);
    let mut keys = Vec::with_capacity(found.len() + 2);
    keys.push(*start);
    keys.extend(found.iter().map(|(key, _, _)| *key));
    if complete {
        keys.push(LAST_KEY);
    }
    KeyRange {
        entries: found,
        complete,
        proof: witness(&keys),
    }
}

impl<V: Clone> PersistentStateTree<V> {
    /// Up to `limit` entries (at least one: 0 counts as 1) from `start` on, in key order, with the proof
    /// that they are every entry from `start` to the last of them (to [`LAST_KEY`] when `complete`).
    /// Visits O(limit + depth) nodes; the same page as [`StateTree::range`] gives.
    pub fn range(&self, start: &StateKey, limit: usize) -> KeyRange<'_, V> {
        let limit = limit.max(1);
        let found = self.entries_from(start, limit.saturating_add(1));
        page(start, limit, found, |keys| self.witness(keys))
    }
}

impl StateTree {
    /// The reference for [`PersistentStateTree::range`], from the sorted entries.
    pub fn range(&self, start: &StateKey, limit: usize) -> KeyRange<'static, ()> {
        let limit = limit.max(1);
        let found = self
            .entries
            .range(*start..)
            .take(limit.saturating_add(1))
            .map(|(key, value_hash)| (*key, *value_hash, &()))
            .collect();
        page(start, limit, found, |keys| self.witness(keys))
    }
}

/// Why a page does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// Entry `index` does not come strictly after the one before it.
    #[error("entry {index} is not after the one before it")]
    Unsorted {
        /// The entry out of order.
        index: usize,
    },
    /// The first entry is before the start of the range.
    #[error("the first entry is before the start")]
    BelowStart,
    /// A page that is not the last must hold an entry, or paging would not advance.
    #[error("an incomplete page with no entry")]
    EmptyIncomplete,
    /// The proof nests more `Node`s than a key has bits.
    #[error("the proof is deeper than 256 levels")]
    TooDeep,
    /// The proof does not hash to the root.
    #[error("the proof does not match the root")]
    WrongRoot,
    /// A leaf of the proof is off its path (its key does not share its subtree's prefix).
    #[error("malformed proof")]
    Malformed,
    /// The proof keeps a subtree meeting the range by hash, so it could hide entries there.
    #[error("the proof hides entries in the range")]
    HiddenEntries,
    /// The tree holds this key in the range but the page does not.
    #[error("entry {} is missing from the page", hex::encode(.key))]
    MissingEntry {
        /// The missing key.
        key: StateKey,
    },
    /// The page holds this key but the tree does not.
    #[error("entry {} is not in the tree", hex::encode(.key))]
    ExtraEntry {
        /// The extra key.
        key: StateKey,
    },
    /// The page gives this key another value hash than the tree.
    #[error("entry {} has the wrong value", hex::encode(.key))]
    WrongValue {
        /// The key.
        key: StateKey,
    },
}

/// Checks that `entries` are exactly the entries of the tree under `root` with key in `[start, end]`,
/// with their value hashes, where `end` is the last entry's key, or [`LAST_KEY`] when `complete`. The
/// cheap checks on the entries run first, then the proof's depth, its root, and one walk of it.
///
/// Never panics and recurses at most 257 levels, whatever `proof` holds (its depth is checked without
/// recursion first). It takes a witness already in memory, though: [`Witness`]'s borsh decoder recurses
/// once per `Node` tag, a single byte, so an n-byte hostile encoding nests n levels deep and can overflow
/// the decoding thread's stack (and later its drop) before this is called. Callers must bound the
/// encoded size well below that, or decode from a flat form with a depth limit.
pub fn verify_range(
    root: &Blake3Hash,
    start: &StateKey,
    entries: &[(StateKey, Blake3Hash)],
    complete: bool,
    proof: &Witness,
) -> Result<(), RangeError> {
    if let Some(index) = entries.windows(2).position(|pair| pair[0].0 >= pair[1].0) {
        return Err(RangeError::Unsorted { index: index + 1 });
    }
    if entries.first().is_some_and(|(key, _)| key < start) {
        return Err(RangeError::BelowStart);
    }
    let end = match (complete, entries.last()) {
        (true, _) => LAST_KEY,
        (false, Some((key, _))) => *key,
        (false, None) => return Err(RangeError::EmptyIncomplete),
    };
    if !within_max_depth(proof) {
        return Err(RangeError::TooDeep);
    }
    // Recursive, but now known to be at most 257 levels deep.
    if proof.root() != *root {
        return Err(RangeError::WrongRoot);
    }
    let mut walk = Walk {
        start,
        end: &end,
        entries,
        matched: 0,
    };
    walk.visit(proof, 0, [0; 32], LAST_KEY)?;
    match entries.get(walk.matched) {
        Some((key, _)) => Err(RangeError::ExtraEntry { key: *key }),
        None => Ok(()),
    }
}

/// Whether no `Node` of `proof` sits at depth [`MAX_DEPTH`] or below, checked with an explicit stack.
fn within_max_depth(proof: &Witness) -> bool {
    let mut pending = vec![(proof, 0)];
    while let Some((witness, depth)) = pending.pop() {
        if let Witness::Node(left, right) = witness {
            if depth >= MAX_DEPTH {
                return false;
            }
            pending.push((left, depth + 1));
            pending.push((right, depth + 1));
        }
    }
    true
}

/// The walk of a proof in key order, matching the leaves in `[start, end]` against `entries`.
struct Walk<'a> {
    start: &'a StateKey,
    end: &'a StateKey,
    entries: &'a [(StateKey, Blake3Hash)],
    /// How many entries the leaves so far have matched.
    matched: usize,
}

impl Walk<'_> {
    /// Visits the subtree at `depth` whose keys are `first..=last` (one prefix, then all 0s or all 1s).
    fn visit(
        &mut self,
        witness: &Witness,
        depth: usize,
        first: StateKey,
        last: StateKey,
    ) -> Result<(), RangeError> {
        let meets_range = first <= *self.end && last >= *self.start;
        match witness {
            Witness::Empty => Ok(()),
            Witness::Pruned(_) if meets_range => Err(RangeError::HiddenEntries),
            Witness::Pruned(_) => Ok(()),
            Witness::Leaf { key, .. } if *key < first || *key > last => Err(RangeError::Malformed),
            Witness::Leaf { key, value_hash } => {
                if key < self.start || key > self.end {
                    return Ok(());
                }
                match self.entries.get(self.matched) {
                    Some((entry_key, entry_value)) if entry_key == key => {
                        if entry_value != value_hash {
                            return Err(RangeError::WrongValue { key: *key });
                        }
                        self.matched += 1;
                        Ok(())
                    }
                    // Leaves come in key order, so an earlier page entry was not in the tree.
                    Some((entry_key, _)) if entry_key < key => {
                        Err(RangeError::ExtraEntry { key: *entry_key })
                    }
                    _ => Err(RangeError::MissingEntry { key: *key }),
                }
            }
            Witness::Node(left, right) => {
                if depth >= MAX_DEPTH {
                    return Err(RangeError::TooDeep);
                }
                let (byte, mask) = (depth / 8, 0x80 >> (depth % 8));
                let mut left_last = last;
                left_last[byte] &= !mask;
                let mut right_first = first;
                right_first[byte] |= mask;
                self.visit(left, depth + 1, first, left_last)?;
                self.visit(right, depth + 1, right_first, last)
            }
        }
    }
}

#[cfg(test)]
mod tests;
