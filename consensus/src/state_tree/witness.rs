//! Multi-key witnesses: the part of the state tree a set of keys touches, enough for a verifier holding
//! only the root to read those keys and to recompute the root after changing them.
//!
//! A witness is the tree pruned to the paths of its keys. Off-path subtrees are kept as their hash, except
//! that empty subtrees and single-entry subtrees are kept as such: deleting a key may collapse its parent
//! into a sibling leaf (the tree's compact rule), and only a sibling known to be a single leaf can move up.

use borsh::{BorshDeserialize, BorshSerialize};

use super::{StateKey, bit, leaf_hash, node_hash};
use crate::hashing::Blake3Hash;

/// A pruned state tree.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Witness {
    /// A subtree with no entry.
    Empty,
    /// A subtree with exactly one entry.
    Leaf {
        /// The key in question.
        key: StateKey,
        /// The hash of the leaf value.
        value_hash: Blake3Hash,
    },
    /// A subtree of two or more entries outside the witness, by hash.
    Pruned(Blake3Hash),
    /// A subtree of two or more entries, split on the next key bit.
    Node(Box<Witness>, Box<Witness>),
}

/// Why a witness could not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    /// The key's path leads into a pruned subtree: the witness does not cover it.
    #[error("the witness does not cover this key")]
    NotCovered,
    /// The witness is deeper than any key (malformed).
    #[error("malformed witness")]
    Malformed,
}

impl Witness {
    /// The root this witness commits to.
    pub fn root(&self) -> Blake3Hash {
        match self {
            Self::Empty => Blake3Hash::ZERO,
            Self::Leaf { key, value_hash } => leaf_hash(key, value_hash),
            Self::Pruned(hash) => *hash,
            Self::Node(left, right) => node_hash(&left.root(), &right.root()),
        }
    }

    /// The value hash of `key` (`None`: absent). Trust it only after checking [`Witness::root`].
    pub fn get(&self, key: &StateKey) -> Result<Option<Blake3Hash>, WitnessError> {
        let mut current = self;
        for depth in 0..=256 {
            match current {
                Self::Empty => return Ok(None),
                Self::Leaf {
                    key: leaf_key,
                    value_hash,
                } => return Ok((leaf_key == key).then_some(*value_hash)),
                Self::Pruned(_) => return Err(WitnessError::NotCovered),
                Self::Node(left, right) => {
                    if depth == 256 {
                        break;
                    }
                    current = if bit(key, depth) { right } else { left };
                }
            }
        }
        Err(WitnessError::Malformed)
    }

    /// Sets `key` to `value_hash` (`None` deletes it), keeping the tree compact.
    pub fn set(&mut self, key: &StateKey, value_hash: Option<Blake3Hash>) -> Result<(), WitnessError> {
        self.set_at(key, value_hash, 0)
    }

    fn set_at(
        &mut self,
        key: &StateKey,
        value: Option<Blake3Hash>,
        depth: usize,
    ) -> Result<(), WitnessError> {
        match self {
            Self::Pruned(_) => return Err(WitnessError::NotCovered),
            Self::Empty => {
                if let Some(value_hash) = value {
                    *self = Self::Leaf {
                        key: *key,
                        value_hash,
                    };
                }
            }
            Self::Leaf {
                key: leaf_key,
                value_hash,
            } if leaf_key == key => match value {
                Some(value) => *value_hash = value,
                None => *self = Self::Empty,
            },
            Self::Leaf {
                key: leaf_key,
                value_hash,
            } => {
                if let Some(value) = value {
                    *self = split(*leaf_key, *value_hash, *key, value, depth)?;
                }
            }
            Self::Node(left, right) => {
                if depth >= 256 {
                    return Err(WitnessError::Malformed);
                }
                let child = if bit(key, depth) { right } else { left };
                child.set_at(key, value, depth + 1)?;
                self.collapse();
            }
        }
        Ok(())
    }

    /// A node left with at most one entry becomes that entry (or empty).
    fn collapse(&mut self) {
        if let Self::Node(left, right) = self {
            match (left.as_ref(), right.as_ref()) {
                (Self::Empty, Self::Empty) => *self = Self::Empty,
                (Self::Empty, leaf @ Self::Leaf { .. }) | (leaf @ Self::Leaf { .. }, Self::Empty) => {
                    *self = leaf.clone()
                }
                _ => {}
            }
        }
    }
}

/// The subtree at `depth` holding two distinct keys.
fn split(
    a: StateKey,
    a_value: Blake3Hash,
    b: StateKey,
    b_value: Blake3Hash,
    depth: usize,
) -> Result<Witness, WitnessError> {
    if depth >= 256 {
        return Err(WitnessError::Malformed);
    }
    let a_leaf = Witness::Leaf {
        key: a,
        value_hash: a_value,
    };
    let b_leaf = Witness::Leaf {
        key: b,
        value_hash: b_value,
    };
    Ok(match (bit(&a, depth), bit(&b, depth)) {
        (false, true) => Witness::Node(Box::new(a_leaf), Box::new(b_leaf)),
        (true, false) => Witness::Node(Box::new(b_leaf), Box::new(a_leaf)),
        (false, false) => Witness::Node(
            Box::new(split(a, a_value, b, b_value, depth + 1)?),
            Box::new(Witness::Empty),
        ),
        (true, true) => Witness::Node(
            Box::new(Witness::Empty),
            Box::new(split(a, a_value, b, b_value, depth + 1)?),
        ),
    })
}

/// Builds the witness of sorted `keys` over sorted `entries` at `depth`.
pub(super) fn build(entries: &[(&StateKey, &Blake3Hash)], keys: &[StateKey], depth: usize) -> Witness {
    match entries {
        [] => Witness::Empty,
        [(key, value_hash)] => Witness::Leaf {
            key: **key,
            value_hash: **value_hash,
        },
        _ if keys.is_empty() => Witness::Pruned(super::subtree_root(entries, depth)),
        _ => {
            let split = entries.partition_point(|(key, _)| !bit(key, depth));
            let (left, right) = entries.split_at(split);
            let key_split = keys.partition_point(|key| !bit(key, depth));
            let (left_keys, right_keys) = keys.split_at(key_split);
            Witness::Node(
                Box::new(build(left, left_keys, depth + 1)),
                Box::new(build(right, right_keys, depth + 1)),
            )
        }
    }
}
