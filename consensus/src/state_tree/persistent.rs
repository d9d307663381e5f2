//! The state tree held incrementally, with structural sharing.
//!
//! [`StateTree`](super::StateTree) recomputes its root from all entries, which is the definition but costs
//! time linear in the number of entries on every change. [`PersistentStateTree`] keeps the same tree
//! (same compaction rules, same hashes, so the same roots, proofs and witnesses) as linked nodes that
//! cache their hash:
//!
//! - an update of k keys rebuilds only the nodes on their paths, O(k · depth) hashes with depth about
//!   log2(entries) for hashed keys, each node hashed once per batch however many of the k keys pass it;
//! - the root is read from the top node, O(1);
//! - nodes are shared through [`Arc`], so a clone is O(1) and an update of a clone copies only the paths
//!   it changes (path copying): a node can hold the state of every recent block on every fork, paying per
//!   block for the paths that block touched.
//!
//! Each leaf carries a payload `V` beside its value hash (the node keeps the account there, so one
//! structure is both its account map and its authenticated tree); `V = ()` is the bare tree.

use std::sync::Arc;

use super::witness::Witness;
use super::{ProofEnd, StateKey, StateProof, bit, leaf_hash, node_hash};
use crate::hashing::Blake3Hash;

/// A tree node. Invariant (the compact rule): a branch's subtree holds at least two entries, so a branch
/// never has two empty children nor an empty child beside a leaf.
#[derive(Debug)]
enum Node<V> {
    Leaf {
        key: StateKey,
        value_hash: Blake3Hash,
        value: V,
        /// `leaf_hash(key, value_hash)`.
        hash: Blake3Hash,
    },
    Branch {
        left: Link<V>,
        right: Link<V>,
        /// `node_hash(left, right)`.
        hash: Blake3Hash,
    },
}

/// A subtree: `None` is the empty subtree.
type Link<V> = Option<Arc<Node<V>>>;

/// One change of a batch: the key and its new value hash and payload (`None` removes it).
pub type Change<V> = (StateKey, Option<(Blake3Hash, V)>);

fn link_hash<V>(link: &Link<V>) -> Blake3Hash {
    match link.as_deref() {
        None => Blake3Hash::ZERO,
        Some(Node::Leaf { hash, .. } | Node::Branch { hash, .. }) => *hash,
    }
}

fn leaf<V>(key: StateKey, value_hash: Blake3Hash, value: V) -> Link<V> {
    Some(Arc::new(Node::Leaf {
        key,
        value_hash,
        value,
        hash: leaf_hash(&key, &value_hash),
    }))
}

/// The subtree over two children, compacted: at most one entry below makes it that entry.
fn branch<V>(left: Link<V>, right: Link<V>) -> Link<V> {
    match (left.as_deref(), right.as_deref()) {
        (None, None) => None,
        (None, Some(Node::Leaf { .. })) => right,
        (Some(Node::Leaf { .. }), None) => left,
        _ => {
            let hash = node_hash(&link_hash(&left), &link_hash(&right));
            Some(Arc::new(Node::Branch { left, right, hash }))
        }
    }
}

/// The compact sparse Merkle tree of spec section 8 with cached hashes and shared nodes.
#[derive(Debug)]
pub struct PersistentStateTree<V = ()> {
    root: Link<V>,
    len: usize,
}

impl<V> Clone for PersistentStateTree<V> {
    /// O(1): the clone shares every node.
    fn clone(&self) -> Self {
        Self {
            root: self.root.clone(),
            len: self.len,
        }
    }
}

impl<V> Default for PersistentStateTree<V> {
    fn default() -> Self {
        Self { root: None, len: 0 }
    }
}

impl<V: Clone> PersistentStateTree<V> {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the tree has no entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The root of the tree (cached: O(1)).
    pub fn root(&self) -> Blake3Hash {
        link_hash(&self.root)
    }

    /// The leaf at `key`: its value hash and payload.
    pub fn entry(&self, key: &StateKey) -> Option<(&Blake3Hash, &V)> {
        let mut current = self.root.as_deref();
        let mut depth = 0;
        loop {
            match current? {
                Node::Leaf {
                    key: leaf_key,
                    value_hash,
                    value,
                    ..
                } => return (leaf_key == key).then_some((value_hash, value)),
                Node::Branch { left, right, .. } => {
                    current = if bit(key, depth) { right } else { left }.as_deref();
                    depth += 1;
                }
            }
        }
    }

    /// The value hash at `key`.
    pub fn get(&self, key: &StateKey) -> Option<&Blake3Hash> {
        self.entry(key).map(|(value_hash, _)| value_hash)
    }

    /// The payload at `key`.
    pub fn value(&self, key: &StateKey) -> Option<&V> {
        self.entry(key).map(|(_, value)| value)
    }

    /// Sets `key` to the value with hash `value_hash` and payload `value`.
    pub fn insert(&mut self, key: StateKey, value_hash: Blake3Hash, value: V) {
        self.update(vec![(key, Some((value_hash, value)))]);
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &StateKey) {
        self.update(vec![(*key, None)]);
    }

    /// Applies a batch of changes; a key changed twice takes its last change. Each node on the changed
    /// paths is rebuilt and hashed once; nodes shared with clones are copied, not modified.
    pub fn update(&mut self, changes: impl IntoIterator<Item = Change<V>>) {
        let mut changes: Vec<Change<V>> = changes.into_iter().collect();
        if changes.is_empty() {
            return;
        }
        // Stable sort, then keep the last change of each key.
        changes.sort_by_key(|change| change.0);
        let mut last: Vec<Change<V>> = Vec::with_capacity(changes.len());
        for change in changes {
            match last.last_mut() {
                Some(previous) if previous.0 == change.0 => *previous = change,
                _ => last.push(change),
            }
        }
        let mut len = self.len;
        self.root = apply(self.root.take(), last, 0, &mut len);
        self.len = len;
    }

    /// A proof of `key`'s value or absence (the same proof [`StateTree::prove`](super::StateTree::prove)
    /// gives for the same entries).
    pub fn prove(&self, key: &StateKey) -> StateProof {
        let mut siblings = Vec::new();
        let mut current = self.root.as_deref();
        let end = loop {
            match current {
                None => break ProofEnd::Empty,
                Some(Node::Leaf { key, value_hash, .. }) => {
                    break ProofEnd::Leaf {
                        key: *key,
                        value_hash: *value_hash,
                    };
                }
                Some(Node::Branch { left, right, .. }) => {
                    let (own, other) = if bit(key, siblings.len()) {
                        (right, left)
                    } else {
                        (left, right)
                    };
                    siblings.push(link_hash(other));
                    current = own.as_deref();
                }
            }
        };
        StateProof { siblings, end }
    }

    /// The witness of `keys` (the same witness [`StateTree::witness`](super::StateTree::witness) gives).
    pub fn witness(&self, keys: &[StateKey]) -> Witness {
        let mut keys = keys.to_vec();
        keys.sort_unstable();
        keys.dedup();
        witness_of(&self.root, &keys, 0)
    }

    /// Up to `count` entries with key at or after `start`, in key order: key, value hash and payload.
    /// The walk descends `start`'s path and then reads leaves in order, stopping at the `count`th: it
    /// visits O(count + depth) nodes however large the tree is.
    pub(super) fn entries_from(&self, start: &StateKey, count: usize) -> Vec<(StateKey, Blake3Hash, &V)> {
        let mut found = Vec::with_capacity(count.min(self.len));
        collect_from(&self.root, start, true, 0, count, &mut found);
        found
    }

    /// How many nodes of this tree are not shared with `base` (at the same place): the nodes built, and
    /// hashed, since this tree was cloned from `base`. It measures the work of the updates in between.
    pub fn nodes_not_shared_with(&self, base: &Self) -> usize {
        fresh_nodes(&self.root, &base.root)
    }
}

fn fresh_nodes<V>(link: &Link<V>, base: &Link<V>) -> usize {
    let Some(node) = link else { return 0 };
    if let Some(base_node) = base
        && Arc::ptr_eq(node, base_node)
    {
        return 0;
    }
    match node.as_ref() {
        Node::Leaf { .. } => 1,
        Node::Branch { left, right, .. } => {
            let (base_left, base_right) = match base.as_deref() {
                Some(Node::Branch { left, right, .. }) => (left.clone(), right.clone()),
                _ => (None, None),
            };
            1 + fresh_nodes(left, &base_left) + fresh_nodes(right, &base_right)
        }
    }
}

/// Appends to `found`, in key order until it holds `count`, the entries of `link` (at `depth`) with key
/// at or after `start`. `on_start_path`: `link` lies on `start`'s path (its keys share `start`'s first
/// `depth` bits); otherwise all its keys are after `start`. Recursion is as deep as the tree, at most
/// 257 levels (a branch holds two distinct keys, which differ before bit 256).
fn collect_from<'a, V>(
    link: &'a Link<V>,
    start: &StateKey,
    on_start_path: bool,
    depth: usize,
    count: usize,
    found: &mut Vec<(StateKey, Blake3Hash, &'a V)>,
) {
    if found.len() >= count {
        return;
    }
    match link.as_deref() {
        Some(Node::Leaf {
            key,
            value_hash,
            value,
            ..
        }) if !on_start_path || key >= start => found.push((*key, *value_hash, value)),
        None | Some(Node::Leaf { .. }) => {}
        Some(Node::Branch { left, right, .. }) => {
            // If `start` goes right, the whole left subtree is before it.
            let start_goes_right = on_start_path && bit(start, depth);
            if !start_goes_right {
                collect_from(left, start, on_start_path, depth + 1, count, found);
            }
            collect_from(right, start, start_goes_right, depth + 1, count, found);
        }
    }
}

/// Applies sorted, deduplicated `changes` (all sharing their first `depth` bits with `link`'s entries)
/// to `link`, keeping `len` up to date.
fn apply<V: Clone>(link: Link<V>, changes: Vec<Change<V>>, depth: usize, len: &mut usize) -> Link<V> {
    if changes.is_empty() {
        return link;
    }
    let Some(node) = link else {
        return build(inserts(changes, len), depth);
    };
    // Take the node apart, without copying if no clone shares it.
    let (left, right) = match Arc::try_unwrap(node) {
        Ok(Node::Branch { left, right, .. }) => (left, right),
        Ok(Node::Leaf {
            key,
            value_hash,
            value,
            ..
        }) => return merge_leaf((key, value_hash, value), changes, depth, len),
        Err(shared) => match shared.as_ref() {
            Node::Branch { left, right, .. } => (left.clone(), right.clone()),
            Node::Leaf {
                key,
                value_hash,
                value,
                ..
            } => return merge_leaf((*key, *value_hash, value.clone()), changes, depth, len),
        },
    };
    let split = changes.partition_point(|(key, _)| !bit(key, depth));
    let mut left_changes = changes;
    let right_changes = left_changes.split_off(split);
    branch(
        apply(left, left_changes, depth + 1, len),
        apply(right, right_changes, depth + 1, len),
    )
}

/// The subtree holding the leaf `existing` changed by `changes`.
fn merge_leaf<V: Clone>(
    existing: (StateKey, Blake3Hash, V),
    mut changes: Vec<Change<V>>,
    depth: usize,
    len: &mut usize,
) -> Link<V> {
    let (key, value_hash, value) = existing;
    // The leaf goes back in with the changes (unless one of them replaces it), and is counted again.
    *len -= 1;
    if let Err(position) = changes.binary_search_by(|(change_key, _)| change_key.cmp(&key)) {
        changes.insert(position, (key, Some((value_hash, value))));
    }
    build(inserts(changes, len), depth)
}

/// The entries `changes` set (removals of absent keys drop out), counted into `len`.
fn inserts<V>(changes: Vec<Change<V>>, len: &mut usize) -> Vec<(StateKey, Blake3Hash, V)> {
    let entries: Vec<_> = changes
        .into_iter()
        .filter_map(|(key, change)| change.map(|(value_hash, value)| (key, value_hash, value)))
        .collect();
    *len += entries.len();
    entries
}

/// The subtree at `depth` over sorted, distinct `entries` (two distinct keys differ before bit 256, so
/// the recursion stops there).
fn build<V>(mut entries: Vec<(StateKey, Blake3Hash, V)>, depth: usize) -> Link<V> {
    match entries.len() {
        0 => None,
        1 => entries
            .pop()
            .and_then(|(key, value_hash, value)| leaf(key, value_hash, value)),
        _ => {
            let split = entries.partition_point(|(key, _, _)| !bit(key, depth));
            let right = entries.split_off(split);
            branch(build(entries, depth + 1), build(right, depth + 1))
        }
    }
}

fn witness_of<V>(link: &Link<V>, keys: &[StateKey], depth: usize) -> Witness {
    match link.as_deref() {
        None => Witness::Empty,
        Some(Node::Leaf { key, value_hash, .. }) => Witness::Leaf {
            key: *key,
            value_hash: *value_hash,
        },
        Some(Node::Branch { hash, .. }) if keys.is_empty() => Witness::Pruned(*hash),
        Some(Node::Branch { left, right, .. }) => {
            let split = keys.partition_point(|key| !bit(key, depth));
            let (left_keys, right_keys) = keys.split_at(split);
            Witness::Node(
                Box::new(witness_of(left, left_keys, depth + 1)),
                Box::new(witness_of(right, right_keys, depth + 1)),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::{StateTree, value_hash};
    use super::*;
    use crate::hashing::{self, HashContext};

    fn key(byte: u8) -> StateKey {
        *hashing::hash(HashContext::StateValue, &[byte]).as_bytes()
    }

    /// Keys sharing long prefixes, so chains of one-sided branches appear and collapse.
    fn close_key(byte: u8) -> StateKey {
        let mut key = [0u8; 32];
        key[31] = byte;
        key
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, rng_seed: proptest::test_runner::RngSeed::Fixed(41), failure_persistence: None, ..ProptestConfig::default() })]

        /// Any sequence of batches of inserts, updates and removals gives the root the full recomputation
        /// gives, and the same proofs and witnesses; a clone taken before a batch keeps its old root.
        #[test]
        fn incremental_roots_proofs_and_witnesses_match_the_recomputation(
            close in any::<bool>(),
            batches in prop::collection::vec(
                prop::collection::vec((0u8..48, prop::option::of(any::<u8>())), 0..24),
                1..8,
            ),
            probes in prop::collection::vec(0u8..48, 1..6),
        ) {
            let key_of = |i: u8| if close { close_key(i) } else { key(i) };
            let mut reference = StateTree::new();
            let mut tree = PersistentStateTree::<u8>::new();
            for batch in &batches {
                let before = tree.clone();
                let before_root = reference.root();
                let mut changes = Vec::new();
                for (i, value) in batch {
                    match value {
                        Some(v) => {
                            reference.insert(key_of(*i), value_hash(&[*v]));
                            changes.push((key_of(*i), Some((value_hash(&[*v]), *v))));
                        }
                        None => {
                            reference.remove(&key_of(*i));
                            changes.push((key_of(*i), None));
                        }
                    }
                }
                tree.update(changes);
                prop_assert_eq!(tree.root(), reference.root());
                prop_assert_eq!(before.root(), before_root);
                for i in 0u8..48 {
                    prop_assert_eq!(tree.get(&key_of(i)), reference.get(&key_of(i)));
                }
                prop_assert_eq!(tree.len(), (0u8..48).filter(|i| reference.get(&key_of(*i)).is_some()).count());
                for probe in &probes {
                    let proof = tree.prove(&key_of(*probe));
                    prop_assert_eq!(&proof, &reference.prove(&key_of(*probe)));
                    prop_assert_eq!(proof.verify(&tree.root(), &key_of(*probe)), Ok(reference.get(&key_of(*probe)).copied()));
                }
                let probe_keys: Vec<StateKey> = probes.iter().map(|i| key_of(*i)).collect();
                prop_assert_eq!(tree.witness(&probe_keys), reference.witness(&probe_keys));
            }
        }
    }

    #[test]
    fn single_inserts_and_removes_match_batches() {
        let mut one_by_one = PersistentStateTree::<()>::new();
        let mut reference = StateTree::new();
        for i in 0..200u8 {
            one_by_one.insert(key(i), value_hash(&[i]), ());
            reference.insert(key(i), value_hash(&[i]));
        }
        for i in (0..200u8).step_by(3) {
            one_by_one.remove(&key(i));
            reference.remove(&key(i));
        }
        one_by_one.remove(&key(250));
        assert_eq!(one_by_one.root(), reference.root());
        assert_eq!(one_by_one.len(), 200 - 67);
        for i in 0..200u8 {
            one_by_one.remove(&key(i));
        }
        assert!(one_by_one.is_empty());
        assert_eq!(one_by_one.root(), Blake3Hash::ZERO);
    }

    /// An update of a clone builds only the nodes on the changed paths: its cost does not grow with the
    /// entries it leaves alone.
    #[test]
    fn an_update_of_a_clone_copies_only_the_changed_paths() {
        let mut changed_nodes = Vec::new();
        for size in [1_000u32, 16_000] {
            let mut tree = PersistentStateTree::<()>::new();
            tree.update((0..size).map(|i| {
                let key = *hashing::hash(HashContext::StateValue, &i.to_le_bytes()).as_bytes();
                (key, Some((value_hash(&i.to_le_bytes()), ())))
            }));
            let mut next = tree.clone();
            assert_eq!(next.nodes_not_shared_with(&tree), 0);
            next.update((0..4u32).map(|i| {
                let key = *hashing::hash(HashContext::StateValue, &i.to_le_bytes()).as_bytes();
                (key, Some((value_hash(b"changed"), ())))
            }));
            assert_ne!(next.root(), tree.root());
            changed_nodes.push(next.nodes_not_shared_with(&tree));
        }
        // Four paths of depth about log2(size) + a few: at most 4 * (log2(16000) + 10) nodes.
        assert!(
            changed_nodes.iter().all(|&nodes| nodes <= 4 * 24),
            "{changed_nodes:?}"
        );
        // Sixteen times the entries adds about four levels per path, not sixteen times the work.
        assert!(changed_nodes[1] <= changed_nodes[0] + 4 * 8, "{changed_nodes:?}");
    }
}
