//! Issue 11, finding 12: archiving runs after a block's import has committed, so a failure there must not
//! make the stored block look invalid, nor leave the in-memory archiver ahead of the database. The store
//! of the first sealed segment is failed by a fault-injection point (`archiving-store`) twice: in the
//! import that seals it and in that import's immediate retry. The chain must accept every block, archive
//! the segment on the next import (rebuilding the archiver from the database first), end with the same
//! segments as a chain that never failed, and reopen from disk with them.
//!
//! Fault points are process-wide, so this file holds one test.

mod common;

use acre_consensus::SlotNumber;
use acre_node::chain::Imported;
use acre_node::{Chain, ChainSpec};
use common::authoring::{Farmer, fast_spec, timekeeper};

/// The dev chain with fast proof of time and no entropy injections within the test's reach (the
/// in-memory timekeeper does not follow the chain).
fn spec() -> ChainSpec {
    let mut spec = fast_spec("archiving-fault");
    spec.params.pot_entropy_injection_interval = 1 << 20;
    spec
}

#[test]
fn an_archiving_failure_after_commit_keeps_the_block_and_the_next_import_archives_it() {
    let spec = spec();
    let dir = tempfile::tempdir().expect("temp dir");
    let faulty = Chain::open(spec.clone(), Some(&dir.path().join("chain.redb"))).expect("opens");
    let timekeeper = timekeeper(&faulty);
    let farmer = Farmer::new(&spec, 1, [1; 32]);

    fail::cfg("archiving-store", "2*return").expect("fault point configured");
    let mut blocks = Vec::new();
    let mut after = SlotNumber(0);
    let mut faulty_segments_at = Vec::new();
    while faulty.segments().len() < 2 {
        assert!(blocks.len() < 400, "segment 1 sealed within 400 blocks");
        let (slot, proposal) = farmer.propose_after(&faulty, &timekeeper, after, &[]);
        after = slot;
        let header = proposal.header.seal(&farmer.key);
        let imported: Imported = faulty
            .import(&header, &proposal.body, &timekeeper)
            .expect("every block imports, whatever archiving does");
        assert!(imported.is_best);
        if !imported.new_segments.is_empty() {
            faulty_segments_at.push(imported.number);
        }
        blocks.push((header, proposal.body));
    }
    fail::remove("archiving-store");

    // The same blocks into a chain whose archiving never fails.
    let clean = Chain::open(spec.clone(), None).expect("opens");
    let mut clean_segments_at = Vec::new();
    for (header, body) in &blocks {
        let imported = clean
            .import(header, body, &timekeeper)
            .expect("imports into the clean chain");
        if !imported.new_segments.is_empty() {
            clean_segments_at.push(imported.number);
        }
    }
    let sealed_at = clean_segments_at[0];
    assert_eq!(
        faulty_segments_at,
        vec![acre_consensus::BlockNumber(sealed_at.0 + 1)],
        "the failed store is retried by the next import"
    );
    assert_eq!(faulty.segments(), clean.segments(), "the same segments");

    // The database holds what the chain published: a restart sees the same archive and best block.
    let best = faulty.best().0;
    drop(faulty);
    let reopened = Chain::open(spec, Some(&dir.path().join("chain.redb"))).expect("reopens after the fault");
    assert_eq!(reopened.best().0.hash, best.hash);
    assert_eq!(reopened.segments(), clean.segments());
    assert_eq!(reopened.archive_progress(), clean.archive_progress());
}
