//! Tests of key-range proofs: paging, agreement with the reference tree, and refusal of tampered pages.

use proptest::prelude::*;

use super::*;
use crate::hashing::{self, HashContext};
use crate::state_tree::value_hash;

fn key(id: u16) -> StateKey {
    *hashing::hash(HashContext::StateValue, &id.to_le_bytes()).as_bytes()
}

fn value(id: u16) -> Blake3Hash {
    value_hash(&id.to_le_bytes())
}

/// The reference tree and the persistent one (each leaf's payload its id) over the same entries.
fn trees(ids: impl IntoIterator<Item = u16>) -> (StateTree, PersistentStateTree<u16>) {
    let mut reference = StateTree::new();
    let mut changes = Vec::new();
    for id in ids {
        reference.insert(key(id), value(id));
        changes.push((key(id), Some((value(id), id))));
    }
    let mut tree = PersistentStateTree::new();
    tree.update(changes);
    (reference, tree)
}

fn verify(root: &Blake3Hash, start: &StateKey, page: &KeyRange<'_, u16>) -> Result<(), RangeError> {
    verify_range(root, start, &page.entry_hashes(), page.complete, &page.proof)
}

/// Replaces the first subtree of `proof` that meets `[start, end]` and that `pick` accepts by
/// `Pruned(its hash)`, which leaves the root alone; whether one was found.
fn prune_in_range(proof: &mut Witness, start: &StateKey, end: &StateKey, pick: Pick) -> bool {
    fn visit(
        witness: &mut Witness,
        range: (&StateKey, &StateKey),
        depth: usize,
        (first, last): (StateKey, StateKey),
        pick: Pick,
    ) -> bool {
        if first > *range.1 || last < *range.0 {
            return false;
        }
        if pick(witness) {
            *witness = Witness::Pruned(witness.root());
            return true;
        }
        let Witness::Node(left, right) = witness else {
            return false;
        };
        let (byte, mask) = (depth / 8, 0x80 >> (depth % 8));
        let (mut left_last, mut right_first) = (last, first);
        left_last[byte] &= !mask;
        right_first[byte] |= mask;
        visit(left, range, depth + 1, (first, left_last), pick)
            || visit(right, range, depth + 1, (right_first, last), pick)
    }
    visit(proof, (start, end), 0, ([0; 32], LAST_KEY), pick)
}

/// Which kind of subtree [`prune_in_range`] replaces.
type Pick = fn(&Witness) -> bool;

fn size(witness: &Witness) -> usize {
    match witness {
        Witness::Node(left, right) => 1 + size(left) + size(right),
        _ => 1,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, rng_seed: proptest::test_runner::RngSeed::Fixed(53), failure_persistence: None, ..ProptestConfig::default() })]

    /// Paging from the first key by "last key + 1" yields every entry once, in order; every page
    /// verifies; the persistent and the reference tree give the same pages and proofs.
    #[test]
    fn paging_yields_every_entry_in_verified_pages(
        ids in prop::collection::btree_set(any::<u16>(), 0..200),
        limit in 0usize..24,
    ) {
        let (reference, tree) = trees(ids);
        let root = tree.root();
        let mut start = [0; 32];
        let mut seen = Vec::new();
        loop {
            let page = tree.range(&start, limit);
            let expected = reference.range(&start, limit);
            prop_assert_eq!(page.entry_hashes(), expected.entry_hashes());
            prop_assert_eq!(page.complete, expected.complete);
            prop_assert_eq!(&page.proof, &expected.proof);
            prop_assert!(page.complete || page.entries.len() == limit.max(1));
            prop_assert!(page.entries.iter().all(|(entry_key, _, id)| *entry_key == key(**id)));
            prop_assert_eq!(verify(&root, &start, &page), Ok(()));
            seen.extend(page.entry_hashes());
            match page.next_start() {
                Some(next) => start = next,
                None => break,
            }
        }
        let all: Vec<_> = reference.entries.iter().map(|(key, value)| (*key, *value)).collect();
        prop_assert_eq!(seen, all);
    }

    /// A page from any start is the next entries of the tree, and each way of tampering with it is
    /// refused with its own error.
    #[test]
    fn pages_from_any_start_hold_and_tampered_pages_do_not(
        ids in prop::collection::btree_set(any::<u16>(), 0..200),
        start in prop_oneof![any::<[u8; 32]>(), any::<u16>().prop_map(key)],
        limit in 0usize..24,
    ) {
        let (reference, tree) = trees(ids);
        let root = tree.root();
        let page = tree.range(&start, limit);
        let expected: Vec<_> = reference.entries.range(start..).map(|(key, value)| (*key, *value)).collect();
        let entries = page.entry_hashes();
        prop_assert_eq!(&entries[..], &expected[..entries.len()]);
        prop_assert_eq!(page.complete, entries.len() == expected.len());
        prop_assert_eq!(&page.proof, &reference.range(&start, limit).proof);
        prop_assert_eq!(verify(&root, &start, &page), Ok(()));
        let check = |entries: &[(StateKey, Blake3Hash)], complete: bool| {
            verify_range(&root, &start, entries, complete, &page.proof)
        };

        let wrong_root = Blake3Hash([root.0[0] ^ 1; 32]);
        prop_assert_eq!(
            verify_range(&wrong_root, &start, &entries, page.complete, &page.proof),
            Err(RangeError::WrongRoot)
        );
        for index in 0..entries.len() {
            // Dropping an entry hides it, unless it is the last of an incomplete page (then the
            // page is merely shorter, and still true).
            let mut dropped = entries.clone();
            let (gone, _) = dropped.remove(index);
            if page.complete || index + 1 < entries.len() {
                prop_assert_eq!(check(&dropped, page.complete), Err(RangeError::MissingEntry { key: gone }));
            }
            let mut changed = entries.clone();
            changed[index].1 = value_hash(b"another value");
            prop_assert_eq!(check(&changed, page.complete), Err(RangeError::WrongValue { key: entries[index].0 }));
        }
        // A key just after an entry, within the range, is not in the tree.
        if let Some(&(first, _)) = entries.first()
            && let Some(fake) = next_key(&first)
            && (page.complete || entries.len() > 1)
            && reference.get(&fake).is_none()
        {
            let mut added = entries.clone();
            added.insert(1, (fake, value_hash(b"fake")));
            prop_assert_eq!(check(&added, page.complete), Err(RangeError::ExtraEntry { key: fake }));
        }
        if entries.len() > 1 {
            let mut swapped = entries.clone();
            swapped.swap(0, 1);
            prop_assert_eq!(check(&swapped, page.complete), Err(RangeError::Unsorted { index: 1 }));
        }
        if !page.complete {
            // The rest of the tree is either pruned in the proof or a leaf left out of the page.
            let claimed = check(&entries, true);
            prop_assert!(
                matches!(claimed, Err(RangeError::HiddenEntries | RangeError::MissingEntry { .. })),
                "{claimed:?}"
            );
        }
    }
}

/// An honest proof keeps every subtree meeting the range; one swapped for its hash still matches the
/// root but could hide entries, whatever it was.
#[test]
fn in_range_subtrees_kept_by_hash_are_refused() {
    let (_, tree) = trees(0..200);
    let root = tree.root();
    let sorted: Vec<StateKey> = tree
        .entries_from(&[0; 32], usize::MAX)
        .iter()
        .map(|entry| entry.0)
        .collect();
    let picks: [(&str, Pick); 3] = [
        ("empty", |witness| matches!(witness, Witness::Empty)),
        ("leaf", |witness| matches!(witness, Witness::Leaf { .. })),
        ("node", |witness| matches!(witness, Witness::Node(..))),
    ];
    // The whole tree in one page, and a page in the middle.
    for (start, limit) in [([0; 32], 1000), (sorted[80], 30)] {
        let page = tree.range(&start, limit);
        let end = if page.complete { LAST_KEY } else { sorted[80 + 29] };
        assert_eq!(verify(&root, &start, &page), Ok(()));
        for (name, pick) in picks {
            let mut tampered = page.clone();
            assert!(
                prune_in_range(&mut tampered.proof, &start, &end, pick),
                "no {name} in range"
            );
            assert_eq!(tampered.proof.root(), root);
            assert_eq!(
                verify(&root, &start, &tampered),
                Err(RangeError::HiddenEntries),
                "{name}"
            );
        }
    }
}

#[test]
fn a_page_claiming_to_be_the_last_too_early_is_refused() {
    let (_, tree) = trees(0..200);
    let page = tree.range(&[0; 32], 10);
    assert!(!page.complete);
    // The first ten of 200 hashed keys end deep in the left of the tree; the right half is pruned.
    assert_eq!(
        verify_range(&tree.root(), &[0; 32], &page.entry_hashes(), true, &page.proof),
        Err(RangeError::HiddenEntries)
    );
}

#[test]
fn empty_single_and_exhausted_pages() {
    let (_, empty) = trees([]);
    let page = empty.range(&[0; 32], 5);
    assert!(page.complete && page.entries.is_empty());
    assert_eq!(page.proof, Witness::Empty);
    assert_eq!(verify(&Blake3Hash::ZERO, &[0; 32], &page), Ok(()));

    let (_, single) = trees([7]);
    let page = single.range(&[0; 32], 0);
    assert!(page.complete);
    assert_eq!(page.entry_hashes(), vec![(key(7), value(7))]);
    assert_eq!(verify(&single.root(), &[0; 32], &page), Ok(()));
    // Claiming the tree empty hides its one leaf.
    assert_eq!(
        verify_range(&single.root(), &[0; 32], &[], true, &page.proof),
        Err(RangeError::MissingEntry { key: key(7) })
    );

    let (reference, tree) = trees(0..50);
    let after_all = next_key(reference.entries.keys().last().expect("entries")).expect("not the last key");
    let page = tree.range(&after_all, 3);
    assert!(page.complete && page.entries.is_empty());
    assert_eq!(verify(&tree.root(), &after_all, &page), Ok(()));
    assert_eq!(
        verify_range(&tree.root(), &after_all, &[], false, &page.proof),
        Err(RangeError::EmptyIncomplete)
    );
}

#[test]
fn hostile_entries_and_proofs_are_refused_without_panicking() {
    let (_, tree) = trees(0..20);
    let root = tree.root();
    let page = tree.range(&key(3), 4);
    let entries = page.entry_hashes();
    let mut duplicated = entries.clone();
    duplicated.insert(1, entries[0]);
    assert_eq!(
        verify_range(&root, &key(3), &duplicated, false, &page.proof),
        Err(RangeError::Unsorted { index: 1 })
    );
    let later_start = next_key(&entries[0].0).expect("not the last key");
    assert_eq!(
        verify_range(&root, &later_start, &entries, false, &page.proof),
        Err(RangeError::BelowStart)
    );

    // 256 levels of nodes are a key's worth; 257 are refused before anything recurses.
    let nested = |depth: usize| {
        (0..depth).fold(Witness::Empty, |inner, _| {
            Witness::Node(Box::new(inner), Box::new(Witness::Empty))
        })
    };
    let deep = nested(256);
    assert_eq!(verify_range(&deep.root(), &[0; 32], &[], true, &deep), Ok(()));
    assert_eq!(
        verify_range(&root, &[0; 32], &[], true, &nested(257)),
        Err(RangeError::TooDeep)
    );

    // Two leaves each on the other's side: a root can commit to it, but no tree has it.
    let (low, high) = ([0; 32], LAST_KEY);
    let leaf = |key: StateKey| Witness::Leaf {
        key,
        value_hash: value(1),
    };
    let swapped = Witness::Node(Box::new(leaf(high)), Box::new(leaf(low)));
    assert_eq!(
        verify_range(
            &swapped.root(),
            &[0; 32],
            &[(low, value(1)), (high, value(1))],
            true,
            &swapped
        ),
        Err(RangeError::Malformed)
    );
}

/// A page's proof holds the paths of its own keys: its size follows the page, not the tree.
#[test]
fn a_page_proof_grows_with_the_page_not_the_tree() {
    let mut sizes = Vec::new();
    for count in [1_000u16, 16_000] {
        let (_, tree) = trees(0..count);
        let page = tree.range(&key(12_345 % count), 10);
        assert_eq!(page.entries.len(), 10);
        assert_eq!(verify(&tree.root(), &key(12_345 % count), &page), Ok(()));
        sizes.push(size(&page.proof));
    }
    // Eleven adjacent paths of depth about log2(count) + a few share their top; each level adds a
    // few nodes, not sixteen times as many.
    assert!(sizes.iter().all(|&size| size <= 2 * (10 + 2 * 24)), "{sizes:?}");
    assert!(sizes[1] <= sizes[0] + 2 * 2 * 8, "{sizes:?}");
}

#[test]
fn next_key_carries() {
    let mut key = [0; 32];
    key[31] = 0xff;
    key[30] = 0x01;
    let mut expected = [0; 32];
    expected[30] = 0x02;
    assert_eq!(next_key(&key), Some(expected));
    assert_eq!(next_key(&[0; 32]).map(|key| key[31]), Some(1));
    assert_eq!(next_key(&LAST_KEY), None);
}
