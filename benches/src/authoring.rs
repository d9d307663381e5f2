//! Authoring a real chain for benchmarks, the way the node does: a [`Timekeeper`] proves the chain's
//! slots, an in-process farmer audits and proves from sectors plotted from the genesis segment, and every
//! win becomes a block (`propose` on the best block, seal, `import`). Some blocks carry transfers between
//! the dev accounts. Used by the `import` and `sync` benches.

use std::time::{Duration, Instant};

use acre_consensus::blocks::{Body, Header};
use acre_consensus::pot::slot_challenge;
use acre_consensus::pot_chain::PotStart;
use acre_consensus::sectors::{PublicKey, SectorId};
use acre_consensus::solutions::Solution;
use acre_consensus::{HistorySize, ProtocolParams, SlotNumber};
use acre_execution::{Address, SignedTransaction, Transfer};
use acre_farmer::piece_source::InMemoryPieceSource;
use acre_farmer::plotting::{PlottedSector, plot_sectors};
use acre_farmer::proving::first_solution;
use acre_node::chain_spec::dev_key;
use acre_node::timekeeper::Timekeeper;
use acre_node::{Chain, ChainSpec};
use ed25519_dalek::SigningKey;

/// Sectors the farmer plots: enough that most slots have a win at the initial solution range.
const SECTORS: u16 = 6;

/// Every `TRANSFER_EVERY`th block carries a transfer each way between alice and bob.
const TRANSFER_EVERY: usize = 2;

/// Where the farmer's rewards go.
const REWARD_ADDRESS: [u8; 32] = [7; 32];

/// An authored chain and what importing it needs.
#[derive(Debug)]
pub struct AuthoredChain {
    /// The chain's spec.
    pub spec: ChainSpec,
    /// The blocks, in order.
    pub blocks: Vec<(Header, Body)>,
    /// Stopped after setup; it keeps every slot it proved, so it still answers
    /// [`PotCache`](acre_consensus::pot_chain::PotCache) queries.
    pub timekeeper: Timekeeper,
    /// Slots the chain spans.
    pub slots: u64,
    /// Transactions in its blocks.
    pub transactions: usize,
}

/// Plots `SECTORS` sectors of the genesis segment (the whole history of a fresh chain).
fn plot(spec: &ChainSpec, public_key: &PublicKey) -> Vec<(SectorId, PlottedSector)> {
    let params = &spec.params;
    let genesis = spec.genesis().expect("the dev spec has a genesis");
    let segment = acre_node::archiving::genesis_segment(params, &genesis.header, &genesis.body)
        .expect("genesis archives");
    let source = InMemoryPieceSource::new(params.clone(), [segment]);
    plot_sectors(params, public_key, SECTORS, HistorySize::ONE, &source)
        .expect("plots from the genesis segment")
}

/// The first provable win of `slot`'s challenge in the plot, if any.
fn farm(
    params: &ProtocolParams,
    chain: &Chain,
    timekeeper: &Timekeeper,
    plot: &[(SectorId, PlottedSector)],
    public_key: &PublicKey,
    slot: SlotNumber,
) -> Option<Solution> {
    let output = timekeeper.output(slot).expect("the slot is proved");
    let challenge = slot_challenge(&output, slot);
    let solution_range = chain.best().1.child.era.solution_range;
    first_solution(
        params,
        public_key,
        REWARD_ADDRESS,
        plot,
        &challenge,
        solution_range,
    )
    .expect("audits an in-memory sector")
}

/// A transfer each way between alice and bob at their current nonces.
fn transfers(chain: &Chain) -> Vec<SignedTransaction> {
    let alice = dev_key("alice");
    let bob = dev_key("bob");
    let transfer = |from: &SigningKey, to: &SigningKey, amount: u128| {
        let from_address = Address::of(from);
        SignedTransaction::sign(
            Transfer {
                from: from_address,
                to: Address::of(to),
                amount,
                fee: 5_000,
                nonce: chain.account(&from_address).nonce,
            },
            chain.genesis_hash(),
            from,
        )
    };
    vec![transfer(&alice, &bob, 1_000), transfer(&bob, &alice, 500)]
}

fn wait_until_proved(timekeeper: &Timekeeper, slot: SlotNumber) {
    while timekeeper.newest_slot() < slot {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Authors `count` blocks of `spec`'s chain as the node does, with an in-process farmer; `label` prefixes
/// the progress lines.
pub fn author(spec: ChainSpec, count: usize, label: &str) -> AuthoredChain {
    let started = Instant::now();
    let params = spec.params.clone();
    let chain = Chain::open(spec.clone(), None).expect("opens an in-memory dev chain");
    let (timekeeper, _newest) =
        Timekeeper::spawn(&params, PotStart::Genesis(chain.genesis_seed()), Vec::new())
            .expect("starts the timekeeper thread");

    let key = SigningKey::from_bytes(&[42; 32]);
    let public_key = PublicKey(key.verifying_key().to_bytes());
    let plot = plot(&spec, &public_key);
    eprintln!(
        "{label}: plotted {SECTORS} sectors in {:.1?}; authoring {count} blocks \
         ({} proof-of-time iterations a slot)",
        started.elapsed(),
        params.pot_iterations
    );

    let mut blocks = Vec::with_capacity(count);
    let mut transactions = 0;
    let mut slot = SlotNumber(0);
    let max_slots = 20 * count as u64 + 20;
    while blocks.len() < count {
        slot = SlotNumber(slot.0 + 1);
        assert!(
            slot.0 <= max_slots,
            "only {} wins in {max_slots} slots: plot more sectors",
            blocks.len()
        );
        wait_until_proved(&timekeeper, slot);
        let Some(solution) = farm(&params, &chain, &timekeeper, &plot, &public_key, slot) else {
            continue;
        };
        // The block carries proof of time up to `slot + block_authoring_delay`.
        wait_until_proved(&timekeeper, SlotNumber(slot.0 + params.block_authoring_delay));
        let candidates = if blocks.len() % TRANSFER_EVERY == 1 {
            transfers(&chain)
        } else {
            Vec::new()
        };
        let proposal = chain
            .propose(slot, solution, &timekeeper, &candidates, &[], &[])
            .expect("proposes")
            .expect("the slot follows the best block and its proof of time is proved");
        let header = proposal.header.seal(&key);
        let imported = chain
            .import(&header, &proposal.body, &timekeeper)
            .expect("an authored block imports");
        assert!(imported.is_best, "every authored block extends the best chain");
        if let Some(context) = imported.best_context {
            timekeeper.follow_best(
                context.child.pot_covered_slot,
                context.child.pot_recent_outputs.last().copied(),
                context.injections,
            );
        }
        transactions += proposal.body.transactions.len();
        if imported.number.0.is_multiple_of(100) || blocks.len() < 20 {
            eprintln!(
                "{label}: block {} at slot {slot} ({} transactions) after {:.1?}",
                imported.number,
                proposal.body.transactions.len(),
                started.elapsed()
            );
        }
        blocks.push((header, proposal.body));
    }
    // The thread finishes the slot it is proving, then exits: wait for it so it does not share the
    // cores with the first measurements.
    timekeeper.stop();
    while !timekeeper.is_finished() {
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!(
        "{label}: setup authored {count} blocks over {} slots with {transactions} transactions in {:.1?}",
        slot.0,
        started.elapsed()
    );
    AuthoredChain {
        spec,
        blocks,
        timekeeper,
        slots: slot.0,
        transactions,
    }
}
