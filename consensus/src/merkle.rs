//! Merkle hashing rules and proof verification (spec section 2).
//!
//! Trees are binary over BLAKE3: an interior node is `H(node_ctx, left ‖ right)`, a single compression of one
//! 64-byte block. Levels with an odd number of nodes are padded with [`Blake3Hash::ZERO`]. Chunk trees use
//! a record's raw 32-byte chunks as their level-0 nodes (their leaf count and proof length are fixed, so a
//! node can never pose as a leaf); every other tree hashes its items first with [`leaf`].
//!
//! This module holds what verifiers need: the hashing rules, a straightforward root computation and proof
//! verification. The fast builders that keep whole trees for proof generation live in `acre-storage`.

use crate::hashing::{self, Blake3Hash, HASH_SIZE, HashContext};

/// A node of a tree: a hash, or a raw chunk at level 0 of a chunk tree.
pub type Node = [u8; HASH_SIZE];

/// An interior node from its two children.
pub fn node(left: &Node, right: &Node) -> Node {
    hashing::hash_pair(HashContext::MerkleNode, &Blake3Hash(*left), &Blake3Hash(*right)).0
}

/// The level-0 node of a hashed-leaf tree.
pub fn leaf(item: &[u8]) -> Node {
    hashing::hash(HashContext::MerkleLeaf, item).0
}

/// Depth of a tree with `leaf_count` level-0 nodes (the length of its proofs).
pub fn depth(leaf_count: usize) -> usize {
    leaf_count.next_power_of_two().trailing_zeros() as usize
}

/// Root of the tree whose level-0 nodes are `nodes`. An empty tree has the zero root; a single node is its
/// own root.
pub fn root(nodes: &[Node]) -> Node {
    root_in_place(&mut nodes.to_vec())
}

/// [`root`] computed in the caller's buffer, which it overwrites: each level is written over the front of
/// the previous one, so building a root allocates nothing.
pub fn root_in_place(nodes: &mut [Node]) -> Node {
    let key = hashing::context_key(HashContext::MerkleNode);
    let mut len = nodes.len();
    if len == 0 {
        return Blake3Hash::ZERO.0;
    }
    let mut pair = [0u8; 2 * HASH_SIZE];
    while len > 1 {
        for i in 0..len / 2 {
            pair[..HASH_SIZE].copy_from_slice(&nodes[2 * i]);
            pair[HASH_SIZE..].copy_from_slice(&nodes[2 * i + 1]);
            nodes[i] = *blake3::keyed_hash(key, &pair).as_bytes();
        }
        if !len.is_multiple_of(2) {
            nodes[len / 2] = node(&nodes[len - 1], &Blake3Hash::ZERO.0);
        }
        len = len.div_ceil(2);
    }
    nodes[0]
}

/// Folds a sibling path upwards from `node` at `index`, returning the implied root, or `None` when the
/// proof has the wrong length for `leaf_count` or the index is out of range.
pub fn root_from_proof(node: &Node, index: usize, leaf_count: usize, proof: &[Node]) -> Option<Node> {
    if index >= leaf_count || proof.len() != depth(leaf_count) {
        return None;
    }
    let mut current = *node;
    let mut position = index;
    for sibling in proof {
        current = if position.is_multiple_of(2) {
            self::node(&current, sibling)
        } else {
            self::node(sibling, &current)
        };
        position /= 2;
    }
    Some(current)
}

/// Whether `proof` shows `node` at `index` of a `leaf_count`-node tree with root `root`.
pub fn verify(root: &Node, node: &Node, index: usize, leaf_count: usize, proof: &[Node]) -> bool {
    root_from_proof(node, index, leaf_count, proof).is_some_and(|computed| computed == *root)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(count: usize) -> Vec<Node> {
        (0..count).map(|i| leaf(&(i as u64).to_le_bytes())).collect()
    }

    #[test]
    fn small_roots_follow_the_rules() {
        let n = nodes(3);
        let left = node(&n[0], &n[1]);
        let right = node(&n[2], &[0; 32]);
        assert_eq!(root(&n), node(&left, &right));
        assert_eq!(root(&n[..1]), n[0]);
        assert_eq!(root(&[]), [0; 32]);
    }

    #[test]
    fn proof_of_last_odd_node_uses_zero_padding() {
        let n = nodes(3);
        let proof = [[0; 32], node(&n[0], &n[1])];
        assert!(verify(&root(&n), &n[2], 2, 3, &proof));
        assert!(!verify(&root(&n), &n[2], 3, 3, &proof));
        assert!(!verify(&root(&n), &n[2], 2, 3, &proof[..1]));
    }
}
