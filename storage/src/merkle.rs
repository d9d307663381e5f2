//! Merkle tree builders.
//!
//! The hashing rules and proof verification are consensus (`acre_consensus::merkle`); this module builds
//! trees fast and keeps them when proofs are needed. [`MerkleTree`] stores every level, so a proof is a
//! walk up the levels; [`chunks_root`] computes a chunk tree's root in a reusable scratch buffer, which is
//! the hot path of archiving and piece verification. Both hash the independent nodes of a level
//! eight at a time with SIMD; the result is identical to the rules' scalar definition.

use std::cell::RefCell;

use acre_consensus::hashing::{HashContext, context_key};
use acre_consensus::merkle::{self, Node};
use acre_consensus::params::Chunk;

use acre_consensus::hashing::lanes::{LANES, keyed_hash_lanes as hash_lanes};

/// Hashes one level into the next: `output[i] = node(input[2i], input[2i + 1])`, a missing last right
/// sibling taken as zero. `output` must hold `input.len().div_ceil(2)` nodes.
pub fn hash_level(input: &[Node], output: &mut [Node]) {
    assert_eq!(
        output.len(),
        input.len().div_ceil(2),
        "output level has the wrong size"
    );
    let key = context_key(HashContext::MerkleNode);
    let (pairs, _) = input.as_flattened().as_chunks::<64>();
    let (batches, rest) = pairs.as_chunks::<LANES>();
    let (out_batched, out_rest) = output.split_at_mut(batches.len() * LANES);
    let (out_batches, _) = out_batched.as_chunks_mut::<LANES>();
    for (batch, out) in batches.iter().zip(out_batches.iter_mut()) {
        hash_lanes(key, batch, out);
    }
    for (pair, out) in rest.iter().zip(out_rest.iter_mut()) {
        let (left, right) = pair.split_at(32);
        *out = merkle::node(
            left.try_into().expect("32 bytes"),
            right.try_into().expect("32 bytes"),
        );
    }
    if !input.len().is_multiple_of(2) {
        let last = input.last().expect("odd length implies a last node");
        *output.last_mut().expect("non-empty output") = merkle::node(last, &[0; 32]);
    }
}

/// The root of `nodes`, computed in place (the buffer is overwritten level by level).
pub fn root_in_place(nodes: &mut [Node]) -> Node {
    let key = context_key(HashContext::MerkleNode);
    let mut len = nodes.len();
    if len == 0 {
        return [0; 32];
    }
    let mut blocks = [[0u8; 64]; LANES];
    let mut out = [[0u8; 32]; LANES];
    while len > 1 {
        let pairs = len / 2;
        let mut i = 0;
        while i + LANES <= pairs {
            for (lane, block) in blocks.iter_mut().enumerate() {
                block[..32].copy_from_slice(&nodes[2 * (i + lane)]);
                block[32..].copy_from_slice(&nodes[2 * (i + lane) + 1]);
            }
            hash_lanes(key, &blocks, &mut out);
            nodes[i..i + LANES].copy_from_slice(&out);
            i += LANES;
        }
        for i in i..pairs {
            nodes[i] = merkle::node(&nodes[2 * i], &nodes[2 * i + 1]);
        }
        if !len.is_multiple_of(2) {
            nodes[pairs] = merkle::node(&nodes[len - 1], &[0; 32]);
        }
        len = len.div_ceil(2);
    }
    nodes[0]
}

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
            hash_level(below, &mut above);
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
        root_in_place(scratch)
    })
}

/// Verifies a piece at `position` against `segment_root` with the fast chunk-tree builder (the result is
/// that of [`acre_consensus::Piece::verify`]).
pub fn verify_piece(
    params: &acre_consensus::ProtocolParams,
    piece: &acre_consensus::Piece,
    segment_root: &acre_consensus::SegmentRoot,
    position: acre_consensus::PiecePosition,
) -> Result<(), acre_consensus::pieces::PieceVerificationError> {
    let source_root = acre_consensus::Blake3Hash(chunks_root(piece.record.chunks()));
    piece.verify_with_source_root(params, segment_root, position, &source_root)
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
        for count in [1, 2, 3, 5, 8, 15, 16, 17, 33, 128, 1000, 4096] {
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
