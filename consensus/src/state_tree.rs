//! The authenticated state map: a compact sparse Merkle tree over 256-bit keys (spec section 8).
//!
//! Keys are 256-bit (callers hash their own keys into them); values are committed to by their hash. The
//! tree is the binary trie of key bits with two compressions that keep it small and its proofs short:
//! an empty subtree is [`Blake3Hash::ZERO`], and a subtree holding exactly one entry is that entry's leaf
//! `H(leaf_ctx, key ‖ value_hash)`, wherever it sits. Every other subtree is `H(node_ctx, left ‖ right)`.
//! The root is therefore a function of the set of entries alone, not of insertion order.
//!
//! A [`StateProof`] for a key is the list of siblings from the root down to the first subtree with at
//! most one entry, plus what that subtree holds: nothing (the key is absent), the key's own leaf (present,
//! with its value hash), or another key's leaf (absent). One proof shape serves inclusion and exclusion.
//!
//! A [`Witness`] is the tree pruned to several keys' paths (read and update them without the tree), and
//! a [`KeyRange`] is a page of consecutive entries with the witness showing they are all the entries of
//! their key range, which [`verify_range`] checks against the root: how snap sync downloads a state.

mod flat;
mod persistent;
mod range;
mod witness;

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};

use crate::hashing::{self, Blake3Hash, HashContext};

pub use flat::WitnessItem;
pub use persistent::{Change, PersistentStateTree};
pub use range::{KeyRange, LAST_KEY, RangeError, next_key, verify_range};
pub use witness::{Witness, WitnessError};

/// A 256-bit state key.
pub type StateKey = [u8; 32];

/// `H(value_ctx, value)`: what the tree commits to for a value.
pub fn value_hash(value: &[u8]) -> Blake3Hash {
    hashing::hash(HashContext::StateValue, value)
}

fn leaf_hash(key: &StateKey, value_hash: &Blake3Hash) -> Blake3Hash {
    hashing::hash_pair(HashContext::StateLeaf, &Blake3Hash(*key), value_hash)
}

fn node_hash(left: &Blake3Hash, right: &Blake3Hash) -> Blake3Hash {
    hashing::hash_pair(HashContext::StateNode, left, right)
}

/// Bit `depth` of `key`, most significant bit first.
fn bit(key: &StateKey, depth: usize) -> bool {
    key[depth / 8] >> (7 - depth % 8) & 1 == 1
}

/// What the subtree where a proof ends holds.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum ProofEnd {
    /// Nothing: the key is absent.
    Empty,
    /// One entry (the key itself, or another key proving the key absent).
    Leaf {
        /// The key in question.
        key: StateKey,
        /// The hash of the leaf value.
        value_hash: Blake3Hash,
    },
}

/// Proof of a key's value, or of its absence.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct StateProof {
    /// Siblings from the root downwards.
    pub siblings: Vec<Blake3Hash>,
    /// The subtree at the end of the path.
    pub end: ProofEnd,
}

impl StateProof {
    /// The value hash this proof shows for `key` under `root` (`Ok(None)`: absent), or `Err(())` if the
    /// proof does not hold.
    #[allow(clippy::result_unit_err)]
    pub fn verify(&self, root: &Blake3Hash, key: &StateKey) -> Result<Option<Blake3Hash>, ()> {
        if self.siblings.len() > 256 {
            return Err(());
        }
        let (mut hash, value) = match &self.end {
            ProofEnd::Empty => (Blake3Hash::ZERO, None),
            ProofEnd::Leaf {
                key: leaf_key,
                value_hash,
            } => {
                // A leaf of another key must share the path so far (else it would not be where it is).
                if (0..self.siblings.len()).any(|depth| bit(leaf_key, depth) != bit(key, depth)) {
                    return Err(());
                }
                (
                    leaf_hash(leaf_key, value_hash),
                    (leaf_key == key).then_some(*value_hash),
                )
            }
        };
        for (depth, sibling) in self.siblings.iter().enumerate().rev() {
            hash = if bit(key, depth) {
                node_hash(sibling, &hash)
            } else {
                node_hash(&hash, sibling)
            };
        }
        if hash == *root { Ok(value) } else { Err(()) }
    }
}

/// The state map with its root, held in memory (entries sorted by key) and recomputed in full: the
/// reference definition. [`PersistentStateTree`] holds the same tree incrementally.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateTree {
    entries: BTreeMap<StateKey, Blake3Hash>,
}

impl StateTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to the value with hash `value_hash`.
    pub fn insert(&mut self, key: StateKey, value_hash: Blake3Hash) {
        self.entries.insert(key, value_hash);
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &StateKey) {
        self.entries.remove(key);
    }

    /// The value hash at `key`.
    pub fn get(&self, key: &StateKey) -> Option<&Blake3Hash> {
        self.entries.get(key)
    }

    /// The root of the tree.
    pub fn root(&self) -> Blake3Hash {
        let entries: Vec<_> = self.entries.iter().collect();
        subtree_root(&entries, 0)
    }

    /// The witness of `keys`: enough to read them and to recompute the root after changing them.
    pub fn witness(&self, keys: &[StateKey]) -> Witness {
        let entries: Vec<_> = self.entries.iter().collect();
        let mut keys = keys.to_vec();
        keys.sort_unstable();
        keys.dedup();
        witness::build(&entries, &keys, 0)
    }

    /// A proof of `key`'s value or absence.
    pub fn prove(&self, key: &StateKey) -> StateProof {
        let mut entries: Vec<_> = self.entries.iter().collect();
        let mut siblings = Vec::new();
        let mut depth = 0;
        while entries.len() > 1 {
            let split = entries.partition_point(|(entry_key, _)| !bit(entry_key, depth));
            let (left, right) = entries.split_at(split);
            let (own, other) = if bit(key, depth) {
                (right, left)
            } else {
                (left, right)
            };
            siblings.push(subtree_root(other, depth + 1));
            entries = own.to_vec();
            depth += 1;
        }
        let end = match entries.first() {
            None => ProofEnd::Empty,
            Some((key, value_hash)) => ProofEnd::Leaf {
                key: **key,
                value_hash: **value_hash,
            },
        };
        StateProof { siblings, end }
    }
}

/// Root of the subtree at `depth` holding `entries` (sorted, all sharing their first `depth` bits).
fn subtree_root(entries: &[(&StateKey, &Blake3Hash)], depth: usize) -> Blake3Hash {
    match entries {
        [] => Blake3Hash::ZERO,
        [(key, value_hash)] => leaf_hash(key, value_hash),
        _ => {
            let split = entries.partition_point(|(key, _)| !bit(key, depth));
            let (left, right) = entries.split_at(split);
            node_hash(&subtree_root(left, depth + 1), &subtree_root(right, depth + 1))
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key(byte: u8) -> StateKey {
        *hashing::hash(HashContext::StateValue, &[byte]).as_bytes()
    }

    #[test]
    fn root_depends_on_contents_only() {
        let mut a = StateTree::new();
        let mut b = StateTree::new();
        for i in 0..20u8 {
            a.insert(key(i), value_hash(&[i]));
        }
        for i in (0..20u8).rev() {
            b.insert(key(i), value_hash(&[i]));
        }
        assert_eq!(a.root(), b.root());
        b.insert(key(3), value_hash(b"changed"));
        assert_ne!(a.root(), b.root());
        b.insert(key(3), value_hash(&[3]));
        b.insert(key(99), value_hash(b"extra"));
        b.remove(&key(99));
        assert_eq!(a.root(), b.root());
        assert_eq!(StateTree::new().root(), Blake3Hash::ZERO);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, rng_seed: proptest::test_runner::RngSeed::Fixed(23), failure_persistence: None, ..ProptestConfig::default() })]

        /// A verifier holding only a witness reads the keys and computes the same new root as the full
        /// tree after any inserts, updates and deletes of those keys.
        #[test]
        fn witnesses_recompute_the_root_after_updates(
            present in prop::collection::btree_set(0u8..64, 0..40),
            changes in prop::collection::vec((0u8..64, prop::option::of(any::<u8>())), 1..12),
        ) {
            let mut tree = StateTree::new();
            for &i in &present {
                tree.insert(key(i), value_hash(&[i]));
            }
            let touched: Vec<StateKey> = changes.iter().map(|(i, _)| key(*i)).collect();
            let mut witness = tree.witness(&touched);
            prop_assert_eq!(witness.root(), tree.root());
            for (i, value) in &changes {
                let expected = tree.get(&key(*i)).copied();
                prop_assert_eq!(witness.get(&key(*i)), Ok(expected));
                let value = value.map(|v| value_hash(&[v, 0xff]));
                match value {
                    Some(v) => tree.insert(key(*i), v),
                    None => tree.remove(&key(*i)),
                }
                witness.set(&key(*i), value).expect("covered key");
                prop_assert_eq!(witness.root(), tree.root());
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, rng_seed: proptest::test_runner::RngSeed::Fixed(17), failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn proofs_show_presence_and_absence_and_nothing_else(present in prop::collection::btree_set(any::<u8>(), 0..40), probe: u8) {
            let mut tree = StateTree::new();
            for &i in &present {
                tree.insert(key(i), value_hash(&[i]));
            }
            let root = tree.root();
            let probe_key = key(probe);
            let proof = tree.prove(&probe_key);
            let expected = present.contains(&probe).then(|| value_hash(&[probe]));
            prop_assert_eq!(proof.verify(&root, &probe_key), Ok(expected));
            // The same proof does not hold under another root, and a tampered proof fails.
            let mut other = tree.clone();
            other.insert(key(probe.wrapping_add(1)), value_hash(b"x"));
            if other.root() != root {
                prop_assert!(proof.verify(&other.root(), &probe_key).is_err());
            }
            if let Some(first) = proof.siblings.first() {
                let mut tampered = proof.clone();
                tampered.siblings[0] = Blake3Hash([first.0[0] ^ 1; 32]);
                prop_assert!(tampered.verify(&root, &probe_key).is_err());
            }
            // A proof of presence cannot be turned into one of absence.
            if expected.is_some() {
                let mut absent = proof.clone();
                absent.end = ProofEnd::Empty;
                prop_assert!(absent.verify(&root, &probe_key).is_err());
            }
        }
    }
}
