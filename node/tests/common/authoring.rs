//! Authoring blocks in memory, without a node: farmers with their own keys and plots of the genesis
//! segment propose on a [`Chain`]'s best block at their first winning slot, sharing one timekeeper.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use acre_consensus::blocks::{Body, Header};
use acre_consensus::pot::slot_challenge;
use acre_consensus::sectors::{PublicKey, SectorId};
use acre_consensus::solutions::Solution;
use acre_consensus::{HistorySize, SlotNumber};
use acre_execution::SignedTransaction;
use acre_execution::domains::bundle::Bundle;
use acre_farmer::piece_source::InMemoryPieceSource;
use acre_farmer::plotting::{PlottedSector, plot_sectors};
use acre_farmer::proving::first_solution;
use acre_node::chain::Proposal;
use acre_node::timekeeper::Timekeeper;
use acre_node::{Chain, ChainSpec};
use ed25519_dalek::SigningKey;

/// The dev chain named `name` with fast proof of time (a few milliseconds a slot).
pub fn fast_spec(name: &str) -> ChainSpec {
    let mut spec = ChainSpec::dev();
    spec.name = name.into();
    spec.params.pot_iterations = 1_600_000;
    spec
}

/// A timekeeper proving `chain`'s slots from genesis (it does not follow the chain's injections).
pub fn timekeeper(chain: &Chain) -> Timekeeper {
    Timekeeper::spawn(
        chain.params(),
        acre_consensus::pot_chain::PotStart::Genesis(chain.genesis_seed()),
        Vec::new(),
    )
    .expect("timekeeper starts")
    .0
}

/// Sectors each farmer plots: enough that about half the slots have a win at the initial solution range,
/// few enough that plotting (most of the test's time) stays short.
pub const SECTORS: u16 = 4;

/// Slots a farmer may try before the test gives up on finding a win.
pub const MAX_SLOTS_PER_BLOCK: u64 = 40;

/// A farmer with its own key, reward address and plot of the genesis segment.
#[derive(Debug)]
pub struct Farmer {
    pub key: SigningKey,
    pub public_key: PublicKey,
    pub reward_address: [u8; 32],
    /// Shared by every farmer of the test binary with this spec and seed (plotting is most of the time).
    pub plot: Arc<Vec<(SectorId, PlottedSector)>>,
    /// Slots this farmer signed a block for: an honest farmer never signs two for one slot.
    pub signed: Mutex<BTreeSet<SlotNumber>>,
}

impl Farmer {
    pub fn new(spec: &ChainSpec, seed: u8, reward_address: [u8; 32]) -> Self {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let public_key = PublicKey(key.verifying_key().to_bytes());
        let plot = plot_of(spec, seed, &public_key);
        Self {
            key,
            public_key,
            reward_address,
            plot,
            signed: Mutex::new(BTreeSet::new()),
        }
    }

    /// The first provable win of `slot`'s challenge on `chain`'s best block, if any.
    pub fn farm(&self, chain: &Chain, timekeeper: &Timekeeper, slot: SlotNumber) -> Option<Solution> {
        let params = chain.params();
        let output = timekeeper.output(slot).expect("the slot is proved");
        let challenge = slot_challenge(&output, slot);
        let solution_range = chain.best().1.child.era.solution_range;
        first_solution(
            params,
            &self.public_key,
            self.reward_address,
            self.plot.iter(),
            &challenge,
            solution_range,
        )
        .expect("audits an in-memory sector")
    }

    /// A proposal on `chain`'s best block at this farmer's first winning slot after `after`, unsealed and
    /// not imported, with its slot.
    pub fn propose_after(
        &self,
        chain: &Chain,
        timekeeper: &Timekeeper,
        after: SlotNumber,
        candidates: &[SignedTransaction],
    ) -> (SlotNumber, Proposal) {
        self.propose_with_bundles(chain, timekeeper, after, candidates, &[])
    }

    /// [`Self::propose_after`] with candidate domain bundles.
    pub fn propose_with_bundles(
        &self,
        chain: &Chain,
        timekeeper: &Timekeeper,
        after: SlotNumber,
        candidates: &[SignedTransaction],
        bundles: &[Bundle],
    ) -> (SlotNumber, Proposal) {
        let params = chain.params().clone();
        let first = after.0.max(chain.best().0.slot.0) + 1;
        for slot in (first..first + MAX_SLOTS_PER_BLOCK).map(SlotNumber) {
            wait_until_proved(timekeeper, slot);
            if self.signed.lock().expect("lock").contains(&slot) {
                continue;
            }
            let Some(solution) = self.farm(chain, timekeeper, slot) else {
                continue;
            };
            wait_until_proved(timekeeper, SlotNumber(slot.0 + params.block_authoring_delay));
            let proposal = chain
                .propose(slot, solution, timekeeper, candidates, &[], bundles)
                .expect("proposes")
                .expect("the slot follows the best block and its proof of time is proved");
            return (slot, proposal);
        }
        panic!("no win in {MAX_SLOTS_PER_BLOCK} slots after slot {after}: plot more sectors");
    }

    /// Authors a block on `chain`'s best block at the first slot after the best block's where this
    /// farmer wins, with as many of `candidates` as apply, and imports it into `chain`.
    pub fn author(
        &self,
        chain: &Chain,
        timekeeper: &Timekeeper,
        candidates: &[SignedTransaction],
    ) -> (Header, Body) {
        assert!(
            chain.best().1.injections.is_empty(),
            "the branches are too short to schedule entropy injections"
        );
        let (slot, proposal) = self.propose_after(chain, timekeeper, SlotNumber(0), candidates);
        assert_eq!(
            proposal.body.transactions.len(),
            candidates.len(),
            "every candidate applies"
        );
        self.signed.lock().expect("lock").insert(slot);
        let header = proposal.header.seal(&self.key);
        let imported = chain
            .import(&header, &proposal.body, timekeeper)
            .expect("an authored block imports");
        assert!(imported.is_best, "an authored block extends the best chain");
        (header, proposal.body)
    }
}

/// The plot of the genesis segment for the key of `seed` on `spec`'s chain, plotted once per test binary:
/// tests running at the same time wait for the first to finish it rather than plot it again.
fn plot_of(spec: &ChainSpec, seed: u8, public_key: &PublicKey) -> Arc<Vec<(SectorId, PlottedSector)>> {
    type Slot = Arc<OnceLock<Arc<Vec<(SectorId, PlottedSector)>>>>;
    static PLOTS: Mutex<BTreeMap<(String, u8), Slot>> = Mutex::new(BTreeMap::new());
    let spec_key = serde_json::to_string(spec).expect("a spec serialises");
    let slot = Arc::clone(
        PLOTS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry((spec_key, seed))
            .or_default(),
    );
    Arc::clone(slot.get_or_init(|| {
        let params = &spec.params;
        let genesis = spec.genesis().expect("the spec has a genesis");
        let segment = acre_node::archiving::genesis_segment(params, &genesis.header, &genesis.body)
            .expect("genesis archives");
        let source = InMemoryPieceSource::new(params.clone(), [segment]);
        Arc::new(
            plot_sectors(params, public_key, SECTORS, HistorySize::ONE, &source)
                .expect("plots from the genesis segment"),
        )
    }))
}

pub fn wait_until_proved(timekeeper: &Timekeeper, slot: SlotNumber) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while timekeeper.newest_slot() < slot {
        assert!(
            Instant::now() < deadline,
            "the timekeeper did not reach slot {slot}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

impl Farmer {
    /// A solution of this farmer for `slot` on `chain`'s best block that makes a vote (within the
    /// voting range, outside the solution range), if any sector has one.
    pub fn vote_solution(
        &self,
        chain: &Chain,
        timekeeper: &Timekeeper,
        slot: SlotNumber,
    ) -> Option<Solution> {
        let params = chain.params();
        let output = timekeeper.output(slot).expect("the slot is proved");
        let challenge = slot_challenge(&output, slot);
        let solution_range = chain.best().1.child.era.solution_range;
        let voting_range = acre_consensus::votes::voting_range(params, solution_range);
        self.plot.iter().find_map(|sector| {
            let solution = first_solution(
                params,
                &self.public_key,
                self.reward_address,
                [sector],
                &challenge,
                voting_range,
            )
            .expect("audits an in-memory sector")?;
            chain
                .verify_vote_solution(&solution, &challenge, solution_range)
                .is_ok()
                .then_some(solution)
        })
    }
}
