//! The chain index: fork choice, reorgs, finality and persistence.

use acre_consensus::blocks::{BlockHash, Body, Header, UnsealedHeader};
use acre_consensus::hashing::Blake3Hash;
use acre_consensus::{BlockNumber, SlotNumber, SolutionRange};
use acre_storage::chain_index::ChainIndex;
use acre_storage::db::Database;

fn header(parent: BlockHash, number: u64, slot: u64, range: u64, salt: u8) -> Header {
    Header {
        unsealed: UnsealedHeader {
            version: Header::VERSION,
            parent_hash: parent,
            number: BlockNumber(number),
            slot: SlotNumber(slot),
            pot_checkpoints: Vec::new(),
            solution: None,
            solution_range: SolutionRange(range),
            next_solution_range: None,
            state_root: Blake3Hash([salt; 32]),
            body_root: Body::default().root(),
        },
        seal: [0; 64],
    }
}

/// Ranges near `u64::MAX` make block weights (`u64::MAX − range`) small and easy to compare.
const RANGE: u64 = u64::MAX - 1000;

/// Imports a branch of `len` blocks on `parent`; returns their headers.
fn branch(index: &ChainIndex<'_>, parent: &Header, len: u64, range: u64, salt: u8) -> Vec<Header> {
    let mut headers: Vec<Header> = Vec::new();
    for _ in 0..len {
        let last = headers.last().unwrap_or(parent);
        let next = header(
            last.hash(),
            last.unsealed.number.0 + 1,
            last.unsealed.slot.0 + 1,
            range,
            salt,
        );
        index.import(&next, &Body::default()).expect("imports");
        headers.push(next);
    }
    headers
}

#[test]
fn longest_chain_wins_then_heavier_and_reorgs_are_reported() {
    let db = Database::in_memory().expect("db");
    let genesis = header(BlockHash::ZERO, 0, 0, RANGE, 0);
    let index = ChainIndex::open(&db, &genesis, &Body::default()).expect("opens");
    let main = branch(&index, &genesis, 3, RANGE, 1);
    assert_eq!(index.best().expect("best").hash, main[2].hash());

    // A shorter fork of equal per-block weight does not win.
    let fork = branch(&index, &main[0], 1, RANGE, 2);
    assert_eq!(index.best().expect("best").hash, main[2].hash());
    // Extending it past the main chain reorgs onto it.
    // (At equal length the lower hash wins, so the switch may already happen at the fork's third block.)
    let fork_tip = header(fork[0].hash(), 3, 9, RANGE, 2);
    let first = index.import(&fork_tip, &Body::default()).expect("imports");
    let longer = header(fork_tip.hash(), 4, 10, RANGE, 2);
    let second = index.import(&longer, &Body::default()).expect("imports");
    assert!(second.is_best);
    let retracted: Vec<_> = first.retracted.into_iter().chain(second.retracted).collect();
    assert_eq!(retracted, vec![main[2].hash(), main[1].hash()]);
    assert_eq!(
        index.canonical_hash(BlockNumber(1)).expect("read"),
        Some(main[0].hash())
    );
    assert_eq!(
        index.canonical_hash(BlockNumber(2)).expect("read"),
        Some(fork[0].hash())
    );
    assert_eq!(
        index.canonical_hash(BlockNumber(4)).expect("read"),
        Some(longer.hash())
    );

    // A shorter chain backed by more space (a smaller range) can be heavier.
    let heavy = header(main[0].hash(), 2, 20, u64::MAX - 10_000, 3);
    let heavy_tip = header(heavy.hash(), 3, 21, u64::MAX - 10_000, 3);
    index.import(&heavy, &Body::default()).expect("imports");
    let outcome = index.import(&heavy_tip, &Body::default()).expect("imports");
    assert!(
        outcome.is_best,
        "u64::MAX - range sums: smaller ranges weigh more"
    );
    assert_eq!(
        index.canonical_hash(BlockNumber(4)).expect("read"),
        None,
        "stale canonical entries are removed"
    );
}

#[test]
fn equal_weights_pick_the_lower_hash_whatever_the_arrival_order() {
    let genesis = header(BlockHash::ZERO, 0, 0, RANGE, 0);
    let a = header(genesis.hash(), 1, 1, RANGE, 10);
    let b = header(genesis.hash(), 1, 1, RANGE, 11);
    let lower = a.hash().min(b.hash());
    for order in [[&a, &b], [&b, &a]] {
        let db = Database::in_memory().expect("db");
        let index = ChainIndex::open(&db, &genesis, &Body::default()).expect("opens");
        for block in order {
            index.import(block, &Body::default()).expect("imports");
        }
        assert_eq!(index.best().expect("best").hash, lower);
    }
}

#[test]
fn finality_stops_reorgs_and_the_index_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("chain.redb");
    let genesis = header(BlockHash::ZERO, 0, 0, RANGE, 0);
    let main_tip;
    {
        let db = Database::open(&path).expect("db");
        let index = ChainIndex::open(&db, &genesis, &Body::default()).expect("opens");
        let main = branch(&index, &genesis, 4, RANGE, 1);
        index.finalize(BlockNumber(2)).expect("finalizes");
        // A heavier fork from block 1 (below the finalized block 2) never becomes canonical.
        let fork = branch(&index, &main[0], 6, RANGE, 2);
        assert!(index.meta(&fork[5].hash()).expect("stored").is_some());
        assert_eq!(index.best().expect("best").hash, main[3].hash());
        main_tip = main[3].hash();
    }
    let db = Database::open(&path).expect("reopens");
    let index = ChainIndex::open(&db, &genesis, &Body::default()).expect("opens");
    assert_eq!(index.best().expect("best").hash, main_tip);
    assert_eq!(index.finalized().expect("finalized").number, BlockNumber(2));
    assert_eq!(
        index.header(&main_tip).expect("read").map(|h| h.hash()),
        Some(main_tip)
    );
}
