//! Merkle tree builders.
//!
//! The hashing rules and proof verification are consensus (`acre_consensus::merkle`); this module builds
//! trees fast and keeps them when proofs are needed. [`MerkleTree`] stores every level, so a proof is a
//! walk up the levels; [`chunks_root`] computes a chunk tree's root in a reusable scratch buffer, which is
//! the hot path of archiving and piece verification.

use std::cell::RefCell;

use acre_consensus::merkle::{self, Node};
use acre_consensus::params::Chunk;

/// A binary Merkle tree with all levels kept, for proof generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    /// `levels[0]` are the level-0 nodes; the last level holds the root alone.
    levels: Vec<Vec<Node>>,
}

impl MerkleTree {
    /// A tree over level-0 nodes given as they are (raw chunks of a chunk tree).
    pub fn from_nodes(nodes: Vec<Node>) -> Self {
        let mut levels = vec![nodes];
        while levels.last().is_some_and(|level| level.len() > 1) {
            let below = levels.last().expect("loop condition checked a level exists");
            let mut above = vec![[0u8; 32]; below.len().div_ceil(2)];
            merkle::hash_level(below, &mut above);
            levels.push(above);
        }
        Self { levels }
    }

    /// A tree over items hashed into leaves (`H(leaf_ctx, item)`).
    pub fn from_items<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Self {
        Self::from_nodes(items.into_iter().map(merkle::leaf).collect())
    }

    /// Number of level-0 nodes.
    pub fn leaf_count(&self) -> usize {
        self.levels[0].len()
    }

    /// The root (zero for an empty tree).
    pub fn root(&self) -> Node {
        match self.levels.last() {
            Some(level) if level.len() == 1 => level[0],
            _ => [0; 32],
        }
    }

    /// The sibling path of the node at `index`, or `None` if out of range.
    pub fn proof(&self, index: usize) -> Option<Vec<Node>> {
        if index >= self.leaf_count() {
            return None;
        }
        let mut position = index;
        let proof = self.levels[..self.levels.len() - 1]
            .iter()
            .map(|level| {
                let sibling = level.get(position ^ 1).copied().unwrap_or([0; 32]);
                position /= 2;
                sibling
            })
            .collect();
        Some(proof)
    }
}

/// Root of a chunk tree (raw chunks as level-0 nodes), computed in a per-thread scratch buffer.
pub fn chunks_root(chunks: &[Chunk]) -> Node {
    thread_local! {
        static SCRATCH: RefCell<Vec<Node>> = const { RefCell::new(Vec::new()) };
    }
    SCRATCH.with_borrow_mut(|scratch| {
        scratch.clear();
        scratch.extend_from_slice(chunks);
        merkle::root_in_place(scratch)
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn nodes(count: usize, salt: u8) -> Vec<Node> {
        (0..count)
            .map(|i| {
                let mut node = [salt; 32];
                node[..8].copy_from_slice(&(i as u64).to_le_bytes());
                node
            })
            .collect()
    }

    #[test]
    fn builders_agree_on_the_root() {
        for count in [1, 2, 3, 5, 8, 128, 1000] {
            let level = nodes(count, 1);
            let tree = MerkleTree::from_nodes(level.clone());
            assert_eq!(tree.root(), merkle::root(&level), "count {count}");
            assert_eq!(tree.root(), chunks_root(&level), "count {count}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, rng_seed: proptest::test_runner::RngSeed::Fixed(7), ..ProptestConfig::default() })]

        #[test]
        fn every_proof_verifies_only_where_it_belongs(count in 1usize..300, salt: u8, pick: prop::sample::Index) {
            let level = nodes(count, salt);
            let tree = MerkleTree::from_nodes(level.clone());
            let root = tree.root();
            let index = pick.index(count);
            let proof = tree.proof(index).expect("index in range");
            prop_assert!(merkle::verify(&root, &level[index], index, count, &proof));
            if count > 1 {
                let other = (index + 1) % count;
                prop_assert!(!merkle::verify(&root, &level[index], other, count, &proof));
                let mut tampered = level[index];
                tampered[31] ^= 1;
                prop_assert!(!merkle::verify(&root, &tampered, index, count, &proof));
            }
            prop_assert!(tree.proof(count).is_none());
        }
    }
}
