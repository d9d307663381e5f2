//! Consensus rules that only matter once more than one node exists (issue 11), each proven on in-memory
//! chains that import blocks farmers authored elsewhere: exact segment-header inclusion, the fork-point
//! rule, equivocation keyed on (key, slot) with proofs that block-list the farmer on its branch, proof of
//! time checked against the timekeeper before any AES work, and votes.

use crate::common::authoring::{Farmer, fast_spec, timekeeper};
use acre_consensus::SlotNumber;
use acre_consensus::blocks::{Body, Header};
use acre_consensus::branch::SegmentInclusionError;
use acre_consensus::chain_state::BlockError;
use acre_consensus::pot_chain::{NoPotCache, PotChainError};
use acre_consensus::validation::HeaderError;
use acre_consensus::votes::Vote;
use acre_consensus::{Blake3Hash, SegmentIndex, SegmentRoot};
use acre_execution::Address;
use acre_node::chain_spec::{DEV_BLOCK_REWARD, DEV_VOTE_REWARD};
use acre_node::{Chain, ChainSpec, ImportError};

fn spec() -> ChainSpec {
    fast_spec("branch-rules")
}

fn resealed(farmer: &Farmer, header: &acre_consensus::blocks::UnsealedHeader, body: &Body) -> Header {
    let mut header = header.clone();
    header.body_root = body.root();
    header.seal(&farmer.key)
}

#[test]
fn blocks_must_carry_exactly_the_segment_headers_their_branch_produced() {
    let spec = spec();
    let x = Chain::open(spec.clone(), None).expect("opens");
    let timekeeper = timekeeper(&x);
    let a = Farmer::new(&spec, 1, [1; 32]);
    let (_, proposal) = a.propose_after(&x, &timekeeper, SlotNumber(0), &[]);
    let genesis_segment = proposal.body.segment_headers.clone();
    assert_eq!(genesis_segment.len(), 1, "block 1 carries genesis' segment");

    let import = |body: Body| x.import(&resealed(&a, &proposal.header, &body), &body, &timekeeper);
    let mut missing = proposal.body.clone();
    missing.segment_headers.clear();
    assert!(matches!(
        import(missing),
        Err(ImportError::Block(BlockError::SegmentInclusion(
            SegmentInclusionError::Missing {
                index: SegmentIndex(0)
            }
        )))
    ));
    let mut extra = proposal.body.clone();
    extra.segment_headers.push(genesis_segment[0]);
    assert!(matches!(
        import(extra),
        Err(ImportError::Block(BlockError::SegmentInclusion(
            SegmentInclusionError::Unexpected { .. }
        )))
    ));
    let mut forged = proposal.body.clone();
    forged.segment_headers[0].segment_root = SegmentRoot(Blake3Hash([9; 32]));
    assert!(matches!(
        import(forged),
        Err(ImportError::Block(BlockError::SegmentInclusion(
            SegmentInclusionError::Mismatch {
                index: SegmentIndex(0)
            }
        )))
    ));
    import(proposal.body.clone()).expect("the honest block imports");
    timekeeper.stop();
}

#[test]
fn a_side_branch_forked_below_the_archiving_point_is_refused_even_above_it() {
    let spec = spec();
    let depth = spec.params.confirmation_depth;
    let x = Chain::open(spec.clone(), None).expect("opens X");
    let y = Chain::open(spec.clone(), None).expect("opens Y");
    let z = Chain::open(spec.clone(), None).expect("opens Z");
    let timekeeper = timekeeper(&x);
    let a = Farmer::new(&spec, 1, [1; 32]);
    let b = Farmer::new(&spec, 2, [2; 32]);
    // Branch B (five blocks) reaches X first, then branch A, long enough to archive its block 1.
    let branch_b: Vec<_> = (0..5).map(|_| b.author(&y, &timekeeper, &[])).collect();
    let branch_a: Vec<_> = (0..=depth).map(|_| a.author(&z, &timekeeper, &[])).collect();
    for (header, body) in branch_b.iter().chain(&branch_a) {
        x.import(header, body, &timekeeper).expect("imports");
    }
    assert_eq!(x.best().0.hash, branch_a[depth as usize].0.hash());
    assert_eq!(x.archive_progress().1, Some(acre_consensus::BlockNumber(1)));

    // Branch B grows on: its new block is far above the archiving point, but the branch forked at
    // genesis, below the archived block 1, so it can never become canonical.
    let (header, body) = b.author(&y, &timekeeper, &[]);
    assert!(matches!(
        x.import(&header, &body, &timekeeper),
        Err(ImportError::ForksArchivedHistory { .. })
    ));
    timekeeper.stop();
}

#[test]
fn equivocation_is_judged_per_key_and_slot_and_its_proof_blocklists_the_farmer_on_its_branch() {
    let spec = spec();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("chain.redb");
    let x = Chain::open(spec.clone(), Some(&path)).expect("opens");
    let timekeeper = timekeeper(&x);
    let a = Farmer::new(&spec, 1, [1; 32]);
    // The same key and plot, paying rewards elsewhere: the solution differs only in the reward address,
    // which it does not bind.
    let a_elsewhere = Farmer::new(&spec, 1, [3; 32]);
    let b = Farmer::new(&spec, 2, [2; 32]);

    let (slot, first) = a.propose_after(&x, &timekeeper, SlotNumber(0), &[]);
    let (twin_slot, twin) = a_elsewhere.propose_after(&x, &timekeeper, SlotNumber(0), &[]);
    assert_eq!(slot, twin_slot);
    x.import(&first.header.clone().seal(&a.key), &first.body, &timekeeper)
        .expect("the first block imports");
    assert!(matches!(
        x.import(&twin.header.clone().seal(&a.key), &twin.body, &timekeeper),
        Err(ImportError::Equivocation(key)) if key == a.public_key
    ));

    // The next block carries the proof, and from then on the farmer is block-listed on this branch.
    let (_, proof_body) = b.author(&x, &timekeeper, &[]);
    assert_eq!(proof_body.equivocations.len(), 1);
    assert!(x.best().1.is_blocklisted(&a.public_key));
    let (_, late) = a.propose_after(&x, &timekeeper, x.best().0.slot, &[]);
    assert!(matches!(
        x.import(&late.header.clone().seal(&a.key), &late.body, &timekeeper),
        Err(ImportError::Block(BlockError::Blocklisted(key))) if key == a.public_key
    ));
    timekeeper.stop();
    drop(x);
    let x = Chain::open(spec.clone(), Some(&path)).expect("reopens");
    assert!(
        x.best().1.is_blocklisted(&a.public_key),
        "the block-list is consensus state and survives a restart"
    );

    // The block-list belongs to the branch that carried the proof: a heavier branch from A's first block
    // that never saw the equivocation takes over, and on it A farms again.
    let timekeeper = crate::common::authoring::timekeeper(&x);
    let y = Chain::open(spec.clone(), None).expect("opens");
    y.import(&first.header.clone().seal(&a.key), &first.body, &timekeeper)
        .expect("A's first block imports on the other node");
    let c = Farmer::new(&spec, 4, [4; 32]);
    for _ in 0..2 {
        let (header, body) = c.author(&y, &timekeeper, &[]);
        x.import(&header, &body, &timekeeper)
            .expect("the other branch's blocks import");
    }
    assert_eq!(x.best().0.hash, y.best().0.hash, "the other branch is best");
    assert!(
        !x.best().1.is_blocklisted(&a.public_key),
        "the block-list follows the best branch"
    );
    let (_, again) = a.propose_after(&x, &timekeeper, x.best().0.slot, &[]);
    x.import(&again.header.clone().seal(&a.key), &again.body, &timekeeper)
        .expect("A's block imports on the branch without the proof");
    timekeeper.stop();
}

#[test]
fn proof_of_time_contradicting_the_timekeeper_is_rejected_before_any_verification() {
    let spec = spec();
    let x = Chain::open(spec.clone(), None).expect("opens");
    let timekeeper = timekeeper(&x);
    let a = Farmer::new(&spec, 1, [1; 32]);
    let (_, proposal) = a.propose_after(&x, &timekeeper, SlotNumber(0), &[]);
    // A checkpoint inside the first slot changes neither that slot's output nor any later seed.
    let mut bad_pot = proposal.header.clone();
    bad_pot.pot_checkpoints[0].0[3].0[0] ^= 1;
    let bad_pot = bad_pot.seal(&a.key);
    assert!(matches!(
        x.import(&bad_pot, &proposal.body, &timekeeper),
        Err(ImportError::Block(BlockError::Header(HeaderError::ProofOfTime(
            PotChainError::DiffersFromKnown { slot: SlotNumber(1) }
        ))))
    ));
    // Without the timekeeper's proof the same block costs a full verification to reject.
    assert!(matches!(
        x.import(&bad_pot, &proposal.body, &NoPotCache),
        Err(ImportError::Block(BlockError::Header(HeaderError::ProofOfTime(
            PotChainError::InvalidSlot { .. }
        ))))
    ));
    // The solution is checked before the proof of time: a block wrong in both is rejected for its
    // solution.
    let mut both = proposal.header.clone();
    both.pot_checkpoints[0].0[3].0[0] ^= 1;
    if let Some(solution) = both.solution.as_mut() {
        solution.chunk[0] ^= 1;
    }
    assert!(matches!(
        x.import(&both.seal(&a.key), &proposal.body, &NoPotCache),
        Err(ImportError::Block(BlockError::Header(HeaderError::Solution(_))))
    ));
    timekeeper.stop();
}

#[test]
fn votes_are_included_and_paid_and_an_equivocating_voter_is_blocklisted() {
    let spec = spec();
    let x = Chain::open(spec.clone(), None).expect("opens");
    let timekeeper = timekeeper(&x);
    let a = Farmer::new(&spec, 1, [1; 32]);
    let b = Farmer::new(&spec, 2, [2; 32]);
    a.author(&x, &timekeeper, &[]);

    // B votes at the first slot after the best block where its best win is only a vote; A's next block
    // (for a later slot) carries it.
    let parent = x.best().0;
    let (slot, vote_solution) = (parent.slot.0 + 1..parent.slot.0 + 200)
        .map(SlotNumber)
        .find_map(|slot| {
            crate::common::authoring::wait_until_proved(&timekeeper, slot);
            Some((slot, b.vote_solution(&x, &timekeeper, slot)?))
        })
        .expect("B votes within 200 slots");
    let vote = Vote {
        parent_hash: parent.hash,
        slot,
        solution: vote_solution,
    }
    .sign(&b.key);
    x.check_vote_equivocation(&vote)
        .expect("the first vote is no equivocation");
    let (_, mut proposal) = a.propose_after(&x, &timekeeper, SlotNumber(slot.0 - 1), &[]);
    let with_vote = x
        .propose(
            proposal.header.slot,
            proposal.header.solution.take().expect("solution"),
            &timekeeper,
            &[],
            std::slice::from_ref(&vote),
            &[],
        )
        .expect("proposes")
        .expect("proposal");
    assert_eq!(with_vote.body.votes, vec![vote.clone()]);
    let imported = x
        .import(
            &with_vote.header.clone().seal(&a.key),
            &with_vote.body,
            &timekeeper,
        )
        .expect("a block with a valid vote imports");
    assert!(imported.is_best);
    assert_eq!(x.account(&Address(b.reward_address)).balance, DEV_VOTE_REWARD);
    assert!(x.account(&Address(a.reward_address)).balance >= 2 * DEV_BLOCK_REWARD);

    // A second, different vote of B for the same slot is an equivocation; the next block proves it and
    // B is block-listed.
    let mut other = vote.vote.clone();
    other.solution.reward_address = [4; 32];
    let other = other.sign(&b.key);
    assert!(matches!(
        x.check_vote_equivocation(&other),
        Err(ImportError::Equivocation(key)) if key == b.public_key
    ));
    let (_, proof_body) = a.author(&x, &timekeeper, &[]);
    assert_eq!(proof_body.equivocations.len(), 1);
    assert!(x.best().1.is_blocklisted(&b.public_key));
    timekeeper.stop();
}
