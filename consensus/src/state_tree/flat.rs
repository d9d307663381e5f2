//! A witness as a flat list, for the wire.
//!
//! [`Witness`] is a recursive enum, and a recursive decoder follows whatever nesting its input claims: a
//! peer's message of a few megabytes of `Node` tags would nest millions deep and overflow the decoding
//! thread's stack, which aborts the whole process. On the wire a witness is therefore its nodes in
//! pre-order ([`WitnessItem`]), decoded as a plain list and rebuilt here with an explicit stack that
//! refuses more nesting than a 256-bit key has bits.

use borsh::{BorshDeserialize, BorshSerialize};

use super::{StateKey, Witness, WitnessError};
use crate::hashing::Blake3Hash;

/// Most `Node`s on one path: a node at depth `d` splits on key bit `d`, and a key has 256 bits.
const MAX_DEPTH: usize = 256;

/// One node of a witness in pre-order (a `Node` is followed by its left subtree, then its right).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum WitnessItem {
    /// [`Witness::Empty`].
    Empty,
    /// [`Witness::Leaf`].
    Leaf {
        /// The key.
        key: StateKey,
        /// The hash of its value.
        value_hash: Blake3Hash,
    },
    /// [`Witness::Pruned`].
    Pruned(Blake3Hash),
    /// [`Witness::Node`]: its two subtrees follow.
    Node,
}

impl Witness {
    /// The witness in pre-order.
    pub fn to_items(&self) -> Vec<WitnessItem> {
        let mut items = Vec::new();
        let mut pending = vec![self];
        while let Some(witness) = pending.pop() {
            items.push(match witness {
                Self::Empty => WitnessItem::Empty,
                Self::Leaf { key, value_hash } => WitnessItem::Leaf {
                    key: *key,
                    value_hash: *value_hash,
                },
                Self::Pruned(hash) => WitnessItem::Pruned(*hash),
                Self::Node(left, right) => {
                    pending.push(right);
                    pending.push(left);
                    WitnessItem::Node
                }
            });
        }
        items
    }

    /// Rebuilds a witness from its pre-order items: [`WitnessError::Malformed`] if they do not form
    /// exactly one tree of at most 256 levels of `Node`s.
    pub fn from_items(items: &[WitnessItem]) -> Result<Self, WitnessError> {
        // Each entry is a `Node` still being built: its left subtree once that is complete.
        let mut open: Vec<Option<Witness>> = Vec::new();
        let mut items = items.iter();
        loop {
            let mut done = match items.next().ok_or(WitnessError::Malformed)? {
                WitnessItem::Node => {
                    if open.len() >= MAX_DEPTH {
                        return Err(WitnessError::Malformed);
                    }
                    open.push(None);
                    continue;
                }
                WitnessItem::Empty => Self::Empty,
                WitnessItem::Leaf { key, value_hash } => Self::Leaf {
                    key: *key,
                    value_hash: *value_hash,
                },
                WitnessItem::Pruned(hash) => Self::Pruned(*hash),
            };
            // Attach the finished subtree to the innermost open node, closing every node it completes.
            loop {
                match open.last_mut() {
                    None => {
                        return match items.next() {
                            None => Ok(done),
                            Some(_) => Err(WitnessError::Malformed),
                        };
                    }
                    Some(slot @ None) => {
                        *slot = Some(done);
                        break;
                    }
                    Some(Some(_)) => {
                        let left = open.pop().flatten().expect("a complete left subtree");
                        done = Self::Node(Box::new(left), Box::new(done));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::{self, HashContext};
    use crate::state_tree::{StateTree, value_hash};

    fn key(byte: u8) -> StateKey {
        *hashing::hash(HashContext::StateValue, &[byte]).as_bytes()
    }

    #[test]
    fn items_round_trip() {
        let mut tree = StateTree::new();
        for i in 0..50u8 {
            tree.insert(key(i), value_hash(&[i]));
        }
        for keys in [vec![], vec![key(1)], (0..20).map(key).collect::<Vec<_>>()] {
            let witness = tree.witness(&keys);
            let items = witness.to_items();
            assert_eq!(Witness::from_items(&items), Ok(witness));
        }
    }

    #[test]
    fn malformed_item_lists_are_refused() {
        let leaf = WitnessItem::Pruned(Blake3Hash([7; 32]));
        // Nothing; a node missing a subtree; a tree with trailing items.
        assert_eq!(Witness::from_items(&[]), Err(WitnessError::Malformed));
        assert_eq!(
            Witness::from_items(&[WitnessItem::Node, leaf.clone()]),
            Err(WitnessError::Malformed)
        );
        assert_eq!(
            Witness::from_items(&[leaf.clone(), WitnessItem::Empty]),
            Err(WitnessError::Malformed)
        );
        // 256 levels of nodes are a key's worth; 257 are refused without recursing.
        let nested = |depth: usize| {
            let mut items = vec![WitnessItem::Node; depth];
            items.extend(std::iter::repeat_n(WitnessItem::Empty, depth + 1));
            items
        };
        assert!(Witness::from_items(&nested(256)).is_ok());
        assert_eq!(Witness::from_items(&nested(257)), Err(WitnessError::Malformed));
        // A hostile list of a million nodes is refused as cheaply (no deep recursion anywhere).
        assert_eq!(
            Witness::from_items(&nested(1_000_000)),
            Err(WitnessError::Malformed)
        );
    }
}
