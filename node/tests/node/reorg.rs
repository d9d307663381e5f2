//! Reorgs at the node level: two farmers author competing branches of one chain, and a third chain
//! imports them in turn. Every switch of the best block must move the node's state with it (a transfer on
//! the losing branch is reverted, rewards follow the winning branch's authors), fork choice must agree
//! with `compare_tips` (heavier first, ties to the lower hash), the reorged state must survive reopening
//! the database, and the finalized block must never move backwards.
//!
//! Chains `Z` (farmer A, branch A) and `Y` (farmer B, branch B) are authored in memory from the same spec,
//! so they share genesis; chain `X` sits in a file database and only imports. One timekeeper serves all
//! three: no branch is long enough to schedule an entropy injection (the first is at block
//! `pot_entropy_injection_interval`), so every branch has the same proof of time.

use std::cmp::Ordering;
use std::time::Instant;

use crate::common::authoring::{Farmer, SECTORS};
use acre_consensus::BlockNumber;
use acre_consensus::blocks::{Body, Header};
use acre_consensus::chain_rules::{Tip, block_weight, compare_tips};
use acre_consensus::pot_chain::PotStart;
use acre_execution::{Address, SignedTransaction, Transfer};
use acre_node::chain::Imported;
use acre_node::chain_spec::{DEV_BLOCK_REWARD, DEV_ENDOWMENT, dev_key};
use acre_node::timekeeper::Timekeeper;
use acre_node::{Chain, ChainSpec};
use acre_storage::chain_index::BlockMeta;

const TRANSFER_AMOUNT: u128 = 1_000;
const TRANSFER_FEE: u128 = 7_000;

/// The dev chain with fast proof of time (a few milliseconds a slot).
fn spec() -> ChainSpec {
    let mut spec = ChainSpec::dev();
    spec.name = "reorg".into();
    spec.params.pot_iterations = 1_600_000;
    spec
}

fn alice_to_bob(nonce: u64) -> SignedTransaction {
    let alice = dev_key("alice");
    SignedTransaction::sign(
        Transfer {
            from: Address::of(&alice),
            to: Address::of(&dev_key("bob")),
            amount: TRANSFER_AMOUNT,
            fee: TRANSFER_FEE,
            nonce,
        },
        spec().genesis_hash().expect("the spec has a genesis"),
        &alice,
    )
}

/// The accounts the test watches: alice, bob and both reward addresses.
fn watched(farmers: &[&Farmer]) -> Vec<Address> {
    let mut addresses = vec![Address::of(&dev_key("alice")), Address::of(&dev_key("bob"))];
    addresses.extend(farmers.iter().map(|farmer| Address(farmer.reward_address)));
    addresses
}

/// Asserts that `chain` and `reference` agree on the best block and on every watched account.
fn assert_same_best_state(chain: &Chain, reference: &Chain, addresses: &[Address], what: &str) {
    assert_eq!(chain.best().0, reference.best().0, "{what}: best block");
    assert_eq!(chain.best().1, reference.best().1, "{what}: best block context");
    for address in addresses {
        assert_eq!(
            chain.account(address),
            reference.account(address),
            "{what}: account {address}"
        );
    }
}

/// Tracks the finalized block of a chain: it must never move backwards and stay canonical.
struct FinalityWatch {
    last: BlockMeta,
}

impl FinalityWatch {
    fn new(chain: &Chain) -> Self {
        Self {
            last: chain.finalized().expect("reads the finalized block"),
        }
    }

    fn check(&mut self, chain: &Chain) {
        let finalized = chain.finalized().expect("reads the finalized block");
        assert!(
            finalized.number >= self.last.number,
            "finality moved back from {} to {}",
            self.last.number,
            finalized.number
        );
        if finalized.number == self.last.number {
            assert_eq!(finalized.hash, self.last.hash, "the finalized block changed");
        }
        assert_eq!(
            chain.canonical_hash(finalized.number).expect("reads"),
            Some(finalized.hash),
            "the finalized block is canonical"
        );
        self.last = finalized;
    }
}

/// Imports `block` into `chain` and checks the outcome against fork choice on the previous best block.
fn import(
    chain: &Chain,
    block: &(Header, Body),
    timekeeper: &Timekeeper,
    finality: &mut FinalityWatch,
) -> Imported {
    let (previous, _) = chain.best();
    let (header, body) = block;
    let parent = chain
        .block(&header.unsealed.parent_hash)
        .expect("reads")
        .expect("the parent is known");
    assert_eq!(parent.0.hash(), header.unsealed.parent_hash);
    let imported = chain
        .import(header, body, timekeeper)
        .expect("a valid block imports");
    assert_eq!(imported.hash, header.hash());
    let (best, best_context) = chain.best();
    if imported.is_best {
        assert_eq!(best.hash, imported.hash);
        assert!(best.weight >= previous.weight);
        assert_eq!(imported.best_context.as_ref(), Some(&best_context));
        let tip = Tip {
            weight: best.weight,
            hash: best.hash,
        };
        let old = Tip {
            weight: previous.weight,
            hash: previous.hash,
        };
        assert_eq!(compare_tips(&tip, &old), Ordering::Greater);
    } else {
        assert_eq!(
            best, previous,
            "a block that loses fork choice leaves the best block"
        );
        assert!(imported.best_context.is_none());
    }
    // The canonical chain runs from the best block down to genesis.
    let mut cursor = best.hash;
    loop {
        let (header, _) = chain.block(&cursor).expect("reads").expect("stored");
        assert_eq!(
            chain.canonical_hash(header.unsealed.number).expect("reads"),
            Some(cursor),
            "block {} is canonical",
            header.unsealed.number
        );
        if header.unsealed.number.0 == 0 {
            break;
        }
        cursor = header.unsealed.parent_hash;
    }
    assert_eq!(cursor, chain.genesis_hash());
    assert_eq!(
        chain
            .canonical_hash(BlockNumber(best.number.0 + 1))
            .expect("reads"),
        None,
        "nothing canonical above the best block"
    );
    finality.check(chain);
    imported
}

/// Whether a block of `weight` and `hash` beats the tip `best` (what the import must decide).
fn wins(weight: u128, hash: &acre_consensus::blocks::BlockHash, best: &BlockMeta) -> bool {
    compare_tips(
        &Tip { weight, hash: *hash },
        &Tip {
            weight: best.weight,
            hash: best.hash,
        },
    ) == Ordering::Greater
}

#[test]
fn competing_branches_move_the_best_state_and_survive_a_reopen() {
    let started = Instant::now();
    let spec = spec();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("chain.redb");

    // Plotting dominates the test's time: the two farmers plot side by side.
    let (farmer_a, farmer_b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| Farmer::new(&spec, 0xa1, [0xaa; 32]));
        let b = Farmer::new(&spec, 0xb2, [0xbb; 32]);
        (a.join().expect("farmer A plots"), b)
    });
    let addresses = watched(&[&farmer_a, &farmer_b]);
    let [alice, bob, reward_a, reward_b] = addresses[..] else {
        unreachable!("four watched addresses")
    };
    eprintln!(
        "reorg: plotted 2 × {SECTORS} sectors in {:.1?}",
        started.elapsed()
    );

    let x = Chain::open(spec.clone(), Some(&path)).expect("opens X in a file");
    let y = Chain::open(spec.clone(), None).expect("opens Y in memory");
    let z = Chain::open(spec.clone(), None).expect("opens Z in memory");
    assert_eq!(x.genesis_hash(), y.genesis_hash());
    assert_eq!(x.genesis_hash(), z.genesis_hash());
    let (timekeeper, _newest) =
        Timekeeper::spawn(&spec.params, PotStart::Genesis(x.genesis_seed()), Vec::new())
            .expect("starts the timekeeper thread");
    let mut finality = FinalityWatch::new(&x);
    // Every block weighs the same in the first era.
    let weight = block_weight(x.best().1.child.era.solution_range);

    // Branch A on Z: A1 carries alice → bob; A2 and A3 are empty.
    let a1 = farmer_a.author(&z, &timekeeper, &[alice_to_bob(0)]);
    let a2 = farmer_a.author(&z, &timekeeper, &[]);
    let a3 = farmer_a.author(&z, &timekeeper, &[]);
    // Branch B on Y: two empty blocks by farmer B (B3 and B4 come later).
    let b1 = farmer_b.author(&y, &timekeeper, &[]);
    let b2 = farmer_b.author(&y, &timekeeper, &[]);
    eprintln!("reorg: authored A1..A3, B1..B2 after {:.1?}", started.elapsed());
    assert_eq!(z.account(&alice).nonce, 1);
    assert_eq!(z.account(&reward_a).balance, 3 * DEV_BLOCK_REWARD + TRANSFER_FEE);

    // 1. X takes A1: the transfer applies and farmer A is paid.
    let imported = import(&x, &a1, &timekeeper, &mut finality);
    assert!(imported.is_best, "A1 extends genesis");
    assert_eq!(x.best().0.weight, weight);
    assert_eq!(x.account(&alice).nonce, 1);
    assert_eq!(
        x.account(&alice).balance,
        DEV_ENDOWMENT - TRANSFER_AMOUNT - TRANSFER_FEE
    );
    assert_eq!(x.account(&bob).balance, DEV_ENDOWMENT + TRANSFER_AMOUNT);
    assert_eq!(x.account(&reward_a).balance, DEV_BLOCK_REWARD + TRANSFER_FEE);

    // B1 weighs as much as A1: the lower hash wins.
    let b1_wins = wins(weight, &b1.0.hash(), &x.best().0);
    eprintln!(
        "reorg: B1 {} the tie with A1",
        if b1_wins { "wins" } else { "loses" }
    );
    let imported = import(&x, &b1, &timekeeper, &mut finality);
    assert_eq!(
        imported.is_best, b1_wins,
        "an equal-weight tie goes to the lower hash"
    );
    if b1_wins {
        // Already reorged to B at one block: A1's transfer is undone.
        assert_eq!(x.account(&alice).nonce, 0);
        assert_eq!(x.account(&reward_a).balance, 0);
        assert_eq!(x.account(&reward_b).balance, DEV_BLOCK_REWARD);
    } else {
        assert_eq!(x.best().0.hash, a1.0.hash());
        assert_eq!(x.account(&alice).nonce, 1);
        assert_eq!(x.account(&reward_b).balance, 0);
    }

    // B2 is heavier than A1: reorg to B (from A1, unless the tie already moved X there).
    let imported = import(&x, &b2, &timekeeper, &mut finality);
    assert!(imported.is_best, "B2 outweighs A1");
    assert_eq!(x.best().0.weight, 2 * weight);
    assert_same_best_state(&x, &y, &addresses, "after the reorg to B2");
    assert_eq!(x.account(&alice).nonce, 0, "A1's transfer is reverted");
    assert_eq!(x.account(&alice).balance, DEV_ENDOWMENT);
    assert_eq!(x.account(&bob).balance, DEV_ENDOWMENT);
    assert_eq!(x.account(&reward_a).balance, 0, "farmer A's reward is reverted");
    assert_eq!(x.account(&reward_b).balance, 2 * DEV_BLOCK_REWARD);

    // 2. Back to A: A2 ties with B2, A3 outweighs it.
    let a2_wins = wins(2 * weight, &a2.0.hash(), &x.best().0);
    eprintln!(
        "reorg: A2 {} the tie with B2",
        if a2_wins { "wins" } else { "loses" }
    );
    let imported = import(&x, &a2, &timekeeper, &mut finality);
    assert_eq!(
        imported.is_best, a2_wins,
        "an equal-weight tie goes to the lower hash"
    );
    let imported = import(&x, &a3, &timekeeper, &mut finality);
    assert!(imported.is_best, "A3 outweighs B2");
    assert_same_best_state(&x, &z, &addresses, "after the reorg back to A3");
    assert_eq!(x.account(&alice).nonce, 1, "A1's transfer is applied again");
    assert_eq!(
        x.account(&alice).balance,
        DEV_ENDOWMENT - TRANSFER_AMOUNT - TRANSFER_FEE
    );
    assert_eq!(x.account(&bob).balance, DEV_ENDOWMENT + TRANSFER_AMOUNT);
    assert_eq!(x.account(&reward_a).balance, 3 * DEV_BLOCK_REWARD + TRANSFER_FEE);
    assert_eq!(x.account(&reward_b).balance, 0, "farmer B's rewards are reverted");

    // And to B once more: B3 ties with A3, B4 outweighs it (a reorg three blocks deep).
    let b3 = farmer_b.author(&y, &timekeeper, &[]);
    let b4 = farmer_b.author(&y, &timekeeper, &[]);
    let b3_wins = wins(3 * weight, &b3.0.hash(), &x.best().0);
    eprintln!(
        "reorg: B3 {} the tie with A3",
        if b3_wins { "wins" } else { "loses" }
    );
    let imported = import(&x, &b3, &timekeeper, &mut finality);
    assert_eq!(
        imported.is_best, b3_wins,
        "an equal-weight tie goes to the lower hash"
    );
    let imported = import(&x, &b4, &timekeeper, &mut finality);
    assert!(imported.is_best, "B4 outweighs A3");
    assert_same_best_state(&x, &y, &addresses, "after the reorg to B4");
    assert_eq!(x.account(&alice).nonce, 0);
    assert_eq!(x.account(&alice).balance, DEV_ENDOWMENT);
    assert_eq!(x.account(&reward_a).balance, 0);
    assert_eq!(x.account(&reward_b).balance, 4 * DEV_BLOCK_REWARD);
    for block in [&a1, &a2, &a3, &b1, &b2, &b3, &b4] {
        assert!(
            x.block(&block.0.hash()).expect("reads").is_some(),
            "every branch is kept"
        );
    }

    // 3. The reorged state survives reopening the database.
    let best = x.best();
    let accounts: Vec<_> = addresses.iter().map(|address| x.account(address)).collect();
    let finalized = x.finalized().expect("reads");
    drop(x);
    let x = Chain::open(spec.clone(), Some(&path)).expect("reopens X");
    assert_eq!(x.best(), best, "the best block survives a reopen");
    let reopened: Vec<_> = addresses.iter().map(|address| x.account(address)).collect();
    assert_eq!(reopened, accounts, "the best state survives a reopen");
    assert_same_best_state(&x, &y, &addresses, "after reopening");
    let mut finality = FinalityWatch { last: finalized };
    finality.check(&x);

    // The reopened node authors on the reorged state (alice's nonce is 0 again), and Y accepts it.
    let b5 = farmer_a.author(&x, &timekeeper, &[alice_to_bob(0)]);
    finality.check(&x);
    let imported = import(&y, &b5, &timekeeper, &mut FinalityWatch::new(&y));
    assert!(imported.is_best);
    assert_same_best_state(&x, &y, &addresses, "after authoring on the reorged chain");
    assert_eq!(x.account(&alice).nonce, 1);
    assert_eq!(x.account(&reward_a).balance, DEV_BLOCK_REWARD + TRANSFER_FEE);

    timekeeper.stop();
    eprintln!("reorg: done in {:.1?}", started.elapsed());
}
