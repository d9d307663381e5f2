//! One run: set-up, the event loop, and the report.

use std::collections::{BTreeMap, HashSet};

use acre_consensus::audit::initial_solution_range;
use acre_consensus::blocks::{BlockHash, Body, Header, UnsealedHeader};
use acre_consensus::branch::expected_segment_headers;
use acre_consensus::equivocation::MAX_EQUIVOCATION_PROOFS_PER_BLOCK;
use acre_consensus::pot::PotSeed;
use acre_consensus::votes::{Vote, max_votes_per_block, voting_range};
use acre_consensus::{BlockNumber, ProtocolParams, SlotNumber, SolutionRange};
use acre_execution::{Address, RuntimeConfig};
use acre_farmer::auditing::AuditWin;
use acre_farmer::piece_source::InMemoryPieceSource;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::farmers::{Behaviour, Farmer};
use crate::network::{Event, Network};
use crate::node::{Node, Refusal};
use crate::report::{Report, SlotRow, SpaceClass};
use crate::world::World;
use crate::{Config, SimError};

/// Most farmers a run takes: the network keeps per-link state, quadratic in the farmers.
pub const MAX_FARMERS: usize = 1_000;

/// Milliseconds per slot of virtual time.
pub const SLOT_MS: u64 = 1_000;

/// The protocol parameters of a run: `dev`, with a tiny proof of time, no entropy injections, and
/// sectors that outlive any run (farmers plot once; replotting is not simulated).
pub fn params() -> ProtocolParams {
    ProtocolParams {
        pot_iterations: 1_600,
        pot_entropy_injection_interval: 1 << 40,
        min_sector_lifetime: 1 << 20,
        ..ProtocolParams::dev()
    }
}

/// A win a farmer will claim when the slot's block time comes.
#[derive(Debug, Clone)]
struct Claim {
    slot: u64,
    win: AuditWin,
    block: bool,
}

#[derive(Debug)]
struct Sim {
    params: ProtocolParams,
    world: World,
    farmers: Vec<Farmer>,
    nodes: Vec<Node>,
    network: Network,
    rng: ChaCha8Rng,
    pending: Vec<Vec<Claim>>,
    equivocations: u64,
    /// Farmers that sealed two blocks for a slot at least once.
    equivocated: HashSet<usize>,
    /// The last slot to simulate.
    slots: u64,
    /// The largest clock skew, which every tick is offset by.
    max_skew_ms: u64,
}

/// Runs `config` to the end and reports.
pub fn run(config: &Config) -> Result<Report, SimError> {
    Simulation::new(config)?.run()
}

/// A run that is set up (farmers plotted, slots scheduled) and not yet started.
#[derive(Debug)]
pub struct Simulation {
    sim: Sim,
    config: Config,
}

impl Simulation {
    /// Checks `config`, plots every farmer and schedules every farmer's first slot.
    pub fn new(config: &Config) -> Result<Self, SimError> {
        if !(2..=MAX_FARMERS).contains(&config.farmers)
            || config.slots == 0
            || !(0.0..=1.0).contains(&config.byzantine)
        {
            return Err(SimError::Config(format!(
                "2 to {MAX_FARMERS} farmers, at least 1 slot, and a byzantine fraction in [0, 1]"
            )));
        }
        if config.pieces.0 == 0
            || config.pieces.0 > config.pieces.1
            || config.pieces.1 > params().max_pieces_per_sector
        {
            return Err(SimError::Config(format!(
                "pieces per farmer must be within 1..={}",
                params().max_pieces_per_sector
            )));
        }
        let mut sim = Sim::set_up(config)?;
        for farmer in 0..sim.farmers.len() {
            sim.schedule_tick(farmer, 1);
        }
        Ok(Self {
            sim,
            config: config.clone(),
        })
    }

    /// Runs every slot, delivers every message still in flight, and reports.
    pub fn run(self) -> Result<Report, SimError> {
        let Self { mut sim, config } = self;
        let mut rows = Vec::new();
        let mut finality = FinalityTracker::default();
        let mut last_slot = 0;
        while let Some((time, event)) = sim.network.pop() {
            let slot = time / SLOT_MS;
            while last_slot < slot.min(config.slots) {
                last_slot += 1;
                rows.push(sim.row(last_slot, &mut finality)?);
            }
            match event {
                Event::Tick { farmer, slot } => {
                    sim.tick(farmer, slot, time)?;
                    sim.schedule_tick(farmer, slot + 1);
                }
                Event::Block { to, header, body } => {
                    sim.nodes[to].receive(&mut sim.world, *header, *body)?;
                }
                Event::Vote { to, vote } => sim.nodes[to].receive_vote(*vote),
            }
        }
        while last_slot < config.slots {
            last_slot += 1;
            rows.push(sim.row(last_slot, &mut finality)?);
        }
        sim.report(&config, rows, finality)
    }
}

/// Slots from a block's slot to its finalization, as node 0 saw it; and the expected growth.
#[derive(Debug, Default)]
struct FinalityTracker {
    finalized: u64,
    delays: Vec<u64>,
    /// Sum over slots of the probability that the farmers' space wins a block at node 0's range.
    expected_blocks: f64,
    /// That probability by solution range.
    by_range: std::collections::HashMap<u64, f64>,
}

impl Sim {
    fn set_up(config: &Config) -> Result<Self, SimError> {
        let params = params();
        params.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let byzantine = (config.farmers as f64 * config.byzantine).round() as usize;
        let specs: Vec<([u8; 32], u16, Behaviour, i64)> = (0..config.farmers)
            .map(|index| {
                let mut seed = [0u8; 32];
                rng.fill(&mut seed);
                let pieces = rng.random_range(config.pieces.0..=config.pieces.1);
                let skew = rng.random_range(-(config.max_skew_ms as i64)..=config.max_skew_ms as i64);
                // The last farmers are the byzantine ones (which ones does not matter: spaces are random).
                let behaviour = if index >= config.farmers - byzantine {
                    Behaviour::Equivocating
                } else {
                    Behaviour::Honest
                };
                (seed, pieces, behaviour, skew)
            })
            .collect();
        let total_pieces: u64 = specs.iter().map(|spec| u64::from(spec.1)).sum();
        // The genesis range that makes the farmers' space win a block in `slot probability` of slots.
        let range = SolutionRange(
            (u128::from(initial_solution_range(&params).0) * u128::from(params.max_pieces_per_sector)
                / u128::from(total_pieces)) as u64,
        );
        let mut genesis_seed = [0u8; 16];
        rng.fill(&mut genesis_seed);
        let runtime = RuntimeConfig {
            genesis_hash: acre_consensus::Blake3Hash::ZERO,
            min_fee: 0,
            byte_fee: 0,
            existential_deposit: 1,
            block_reward: 1_000_000,
            vote_reward: 100_000,
        };
        let (world, segment) = World::new(params.clone(), runtime, PotSeed(genesis_seed), range)?;
        let source = InMemoryPieceSource::new(params.clone(), [segment]);
        let farmers = Farmer::plot_all(&params, specs, &source)?;
        let partition = config
            .partition
            .as_ref()
            .map(|range| (range.start * SLOT_MS, range.end * SLOT_MS));
        let network = Network::new(
            config.farmers,
            config.latency_ms,
            config.loss,
            partition,
            &mut rng,
        );
        let nodes = (0..config.farmers).map(|_| Node::new(&world)).collect();
        Ok(Self {
            params,
            world,
            pending: vec![Vec::new(); farmers.len()],
            farmers,
            nodes,
            network,
            rng,
            equivocations: 0,
            equivocated: HashSet::new(),
            slots: config.slots,
            max_skew_ms: config.max_skew_ms,
        })
    }

    /// Schedules farmer `index`'s tick for `slot`, if the run reaches it. Each farmer has one tick in the
    /// queue at a time, so the queue holds farmers plus messages in flight, however long the run.
    fn schedule_tick(&mut self, farmer: usize, slot: u64) {
        if slot > self.slots {
            return;
        }
        // Every clock is `max_skew_ms` late at most, so no tick comes before its slot's proof.
        let time = (slot * SLOT_MS + self.max_skew_ms).saturating_add_signed(self.farmers[farmer].skew_ms);
        self.network.schedule(time, Event::Tick { farmer, slot });
    }

    /// Farmer `index`'s clock reaches `slot`: it audits the slot and claims what it won
    /// `block_authoring_delay` slots ago.
    fn tick(&mut self, index: usize, slot: u64, now: u64) -> Result<(), SimError> {
        self.world.prove_up_to(slot)?;
        let best = self.nodes[index].best.hash;
        let range = self.world.block(&best)?.context.child.era.solution_range;
        let challenge = self.world.challenge(slot);
        if let Some(win) =
            self.farmers[index].audit(&self.params, &challenge, voting_range(&self.params, range))?
        {
            let block = win.distance < range.0 / 2;
            self.pending[index].push(Claim { slot, win, block });
        }
        let Some(due) = slot.checked_sub(self.params.block_authoring_delay) else {
            return Ok(());
        };
        let claims: Vec<Claim> = self.pending[index]
            .iter()
            .filter(|claim| claim.slot == due)
            .cloned()
            .collect();
        self.pending[index].retain(|claim| claim.slot > due);
        for claim in claims {
            if claim.block {
                self.author(index, &claim, now)?;
            } else {
                self.vote(index, &claim, now)?;
            }
        }
        Ok(())
    }

    fn vote(&mut self, index: usize, claim: &Claim, now: u64) -> Result<(), SimError> {
        let parent = self.nodes[index].best.hash;
        let parent_slot = self.world.block(&parent)?.header.unsealed.slot;
        if SlotNumber(claim.slot) <= parent_slot {
            return Ok(());
        }
        let farmer = &mut self.farmers[index];
        let reward = farmer.reward_address;
        let Some(solution) = farmer.solution(&self.params, &claim.win, reward)? else {
            return Ok(());
        };
        let vote = Vote {
            parent_hash: parent,
            slot: SlotNumber(claim.slot),
            solution,
        }
        .sign(&farmer.key);
        self.nodes[index].receive_vote(vote.clone());
        self.network
            .broadcast(index, now, &mut self.rng, |to| Event::Vote {
                to,
                vote: Box::new(vote.clone()),
            });
        Ok(())
    }

    fn author(&mut self, index: usize, claim: &Claim, now: u64) -> Result<(), SimError> {
        let reward = self.farmers[index].reward_address;
        let Some(first) = self.build(index, claim, reward)? else {
            return Ok(());
        };
        let mut blocks = vec![first];
        if self.farmers[index].behaviour == Behaviour::Equivocating {
            // The same win paying elsewhere: another block for the same slot and key.
            let mut other = reward;
            other[0] ^= 1;
            if let Some(second) = self.build(index, claim, other)? {
                blocks.push(second);
                self.equivocations += 1;
                self.equivocated.insert(index);
            }
        }
        for (header, body) in blocks {
            self.nodes[index].receive(&mut self.world, header.clone(), body.clone())?;
            self.network
                .broadcast(index, now, &mut self.rng, |to| Event::Block {
                    to,
                    header: Box::new(header.clone()),
                    body: Box::new(body.clone()),
                });
        }
        Ok(())
    }

    /// The block farmer `index` seals for `claim` on its node's best block, paying `reward`.
    fn build(
        &mut self,
        index: usize,
        claim: &Claim,
        reward: [u8; 32],
    ) -> Result<Option<(Header, Body)>, SimError> {
        let node = &self.nodes[index];
        let parent_hash = node.best.hash;
        let parent = self.world.block(&parent_hash)?;
        let context = parent.context.clone();
        let info = &context.child;
        let slot = SlotNumber(claim.slot);
        if slot <= info.slot {
            return Ok(None);
        }
        let farmer = &mut self.farmers[index];
        let Some(solution) = farmer.solution(&self.params, &claim.win, reward)? else {
            return Ok(None);
        };
        let author_key = solution.public_key;
        let covered = claim.slot + self.params.block_authoring_delay;
        let number = BlockNumber(info.number.0 + 1);
        let era = info.era;
        let next_era = era.after_block(&self.params, number, slot);
        let produced = self.world.produced_for_child_of(&parent_hash)?;
        let segment_headers =
            expected_segment_headers(&self.params, info.number, context.next_segment_index, &produced);
        let mut keys = HashSet::new();
        let votes: Vec<_> = node
            .votes
            .values()
            .filter(|signed| {
                let vote = &signed.vote;
                let key = vote.solution.public_key;
                vote.parent_hash == parent_hash
                    && vote.slot > info.slot
                    && vote.slot <= slot
                    && !context.is_blocklisted(&key)
                    && !(key == author_key && vote.slot == slot)
                    && keys.insert((key, vote.slot))
            })
            .take(max_votes_per_block(&self.params))
            .cloned()
            .collect();
        let mut proven = HashSet::new();
        let equivocations: Vec<_> = node
            .evidence
            .iter()
            .filter(|proof| {
                proof
                    .verify()
                    .is_ok_and(|key| !context.is_blocklisted(&key) && proven.insert(key))
            })
            .take(MAX_EQUIVOCATION_PROOFS_PER_BLOCK)
            .cloned()
            .collect();
        let voters: Vec<[u8; 32]> = votes
            .iter()
            .map(|vote| vote.vote.solution.reward_address)
            .collect();
        let state_root = self.world.child_state_root(&parent_hash, reward, &voters)?;
        let body = Body {
            transactions: Vec::new(),
            segment_headers,
            votes,
            equivocations,
            bundles: Vec::new(),
        };
        let header = UnsealedHeader {
            version: Header::VERSION,
            parent_hash,
            number,
            slot,
            pot_checkpoints: self.world.checkpoints(info.pot_covered_slot.0 + 1, covered),
            solution: Some(solution),
            solution_range: era.solution_range,
            next_solution_range: (next_era != era).then_some(next_era.solution_range),
            state_root,
            body_root: body.root(),
        }
        .seal(&farmer.key);
        Ok(Some((header, body)))
    }

    /// Node 0's view at the end of `slot`, updating the finality delays.
    fn row(&mut self, slot: u64, finality: &mut FinalityTracker) -> Result<SlotRow, SimError> {
        let best = self.nodes[0].best.hash;
        let best_number = self.world.block(&best)?.header.unsealed.number.0;
        let range = self.world.block(&best)?.context.child.era.solution_range.0;
        let farmers = &self.farmers;
        finality.expected_blocks += *finality
            .by_range
            .entry(range)
            .or_insert_with(|| block_probability(farmers, range));
        let produced = self.world.produced_for_child_of(&best)?;
        let finalized = produced
            .len()
            .checked_sub(1 + self.params.finality_segments as usize)
            .and_then(|index| produced.get(index))
            .map_or(0, |header| {
                let last = header.last_archived_block;
                if last.is_complete() {
                    last.number.0
                } else {
                    last.number.0.saturating_sub(1)
                }
            });
        if finalized > finality.finalized {
            let mut cursor = best;
            while let Some(accepted) = self.world.accepted(&cursor) {
                let number = accepted.header.unsealed.number.0;
                if number <= finality.finalized {
                    break;
                }
                if number <= finalized {
                    finality
                        .delays
                        .push(slot.saturating_sub(accepted.header.unsealed.slot.0));
                }
                cursor = accepted.header.unsealed.parent_hash;
            }
            finality.finalized = finalized;
        }
        Ok(SlotRow {
            slot,
            best_number,
            authored: self.world.accepted_count().saturating_sub(1),
            finalized,
            expected: finality.expected_blocks,
        })
    }

    fn report(
        self,
        config: &Config,
        rows: Vec<SlotRow>,
        mut finality: FinalityTracker,
    ) -> Result<Report, SimError> {
        // The best block most nodes hold.
        let mut votes: BTreeMap<BlockHash, usize> = BTreeMap::new();
        for node in &self.nodes {
            *votes.entry(node.best.hash).or_default() += 1;
        }
        let (best, agreeing) = votes
            .iter()
            .max_by_key(|(hash, count)| (**count, std::cmp::Reverse(**hash)))
            .map(|(hash, count)| (*hash, *count))
            .ok_or(SimError::Unknown)?;
        let best_block = self.world.block(&best)?;
        let mut on_best = HashSet::new();
        let mut cursor = best;
        let mut votes_included = 0u64;
        while let Some(accepted) = self.world.accepted(&cursor) {
            on_best.insert(cursor);
            votes_included += accepted.body.votes.len() as u64;
            if accepted.header.unsealed.number.0 == 0 {
                break;
            }
            cursor = accepted.header.unsealed.parent_hash;
        }
        let all = self.world.all_accepted();
        let authored: Vec<_> = all.iter().filter(|(_, number, _)| number.0 > 0).collect();
        let orphaned = authored
            .iter()
            .filter(|(hash, _, _)| !on_best.contains(hash))
            .count() as u64;
        let slots_with_blocks = authored
            .iter()
            .map(|(_, _, slot)| *slot)
            .collect::<HashSet<_>>()
            .len() as u64;
        let max_fork_depth = authored
            .iter()
            .filter(|(hash, _, _)| !on_best.contains(hash))
            .map(|(hash, _, _)| {
                let mut depth = 0;
                let mut cursor = *hash;
                while !on_best.contains(&cursor) {
                    depth += 1;
                    cursor = self
                        .world
                        .accepted(&cursor)
                        .map_or(self.world.genesis, |a| a.header.unsealed.parent_hash);
                }
                depth
            })
            .max()
            .unwrap_or(0);

        let expected_blocks = finality.expected_blocks;

        let state = &best_block.state;
        let mut classes: BTreeMap<u16, (usize, u64, u128)> = BTreeMap::new();
        for farmer in self
            .farmers
            .iter()
            .filter(|farmer| farmer.behaviour == Behaviour::Honest)
        {
            let entry = classes.entry(farmer.pieces).or_default();
            entry.0 += 1;
            entry.1 += u64::from(farmer.pieces);
            entry.2 += acre_execution::AccountStore::account(state, &Address(farmer.reward_address)).balance;
        }
        let total_space: u64 = classes.values().map(|class| class.1).sum();
        let total_rewards: u128 = classes.values().map(|class| class.2).sum();
        let space_classes = classes
            .iter()
            .map(|(pieces, (farmers, space, rewards))| SpaceClass {
                pieces: *pieces,
                farmers: *farmers,
                space_share: *space as f64 / total_space.max(1) as f64,
                reward_share: *rewards as f64 / total_rewards.max(1) as f64,
            })
            .collect();

        let blocklist = &best_block.context.blocklist;
        let listed = |behaviour: Behaviour| {
            self.farmers
                .iter()
                .filter(|farmer| {
                    farmer.behaviour == behaviour && blocklist.binary_search(&farmer.public_key).is_ok()
                })
                .count()
        };
        let mut equivocations_refused = 0;
        let mut refused_below_archiving_point = 0;
        let mut invalid: BTreeMap<String, u64> = BTreeMap::new();
        for refusal in self.nodes.iter().flat_map(|node| &node.refusals) {
            match refusal {
                Refusal::Equivocation => equivocations_refused += 1,
                Refusal::BelowArchivingPoint => refused_below_archiving_point += 1,
                Refusal::Invalid(error) => *invalid.entry(error.to_string()).or_default() += 1,
            }
        }

        let mut claims: HashSet<(acre_consensus::sectors::PublicKey, u64)> = HashSet::new();
        let mut equivocations_accepted = 0;
        for (hash, _, slot) in &authored {
            let key = self
                .world
                .accepted(hash)
                .and_then(|accepted| accepted.header.unsealed.solution.as_ref())
                .map(|solution| solution.public_key)
                .ok_or(SimError::Unknown)?;
            if !claims.insert((key, *slot)) {
                equivocations_accepted += 1;
            }
        }
        let mut hasher = blake3::Hasher::new();
        for node in &self.nodes {
            hasher.update(&node.best.hash.0);
        }
        hasher.update(&best_block.header.unsealed.state_root.0);
        finality.delays.sort_unstable();
        Ok(Report {
            final_hash: hasher.finalize().to_hex().to_string(),
            farmers: config.farmers,
            slots: config.slots,
            seed: config.seed,
            best_number: best_block.header.unsealed.number.0,
            nodes_agreeing: agreeing,
            blocks_authored: authored.len() as u64,
            expected_blocks,
            slots_with_blocks,
            orphaned,
            fork_rate: orphaned as f64 / (authored.len().max(1)) as f64,
            max_fork_depth,
            votes_included,
            space_classes,
            median_slots_to_finality: finality.delays.get(finality.delays.len() / 2).copied(),
            equivocators: self
                .farmers
                .iter()
                .filter(|f| f.behaviour == Behaviour::Equivocating)
                .count(),
            equivocations: self.equivocations,
            equivocations_accepted,
            equivocations_refused,
            equivocators_blocklisted: listed(Behaviour::Equivocating),
            equivocated: self.equivocated.len(),
            honest_blocklisted: listed(Behaviour::Honest),
            refused_below_archiving_point,
            invalid,
            messages: self.network.messages,
            retransmitted: self.network.retransmitted,
            rows,
        })
    }
}

/// The probability that some farmer's space wins a block in a slot at solution range `range`: each
/// farmer audits one s-bucket chosen uniformly, and each of its `c` chunks there wins with probability
/// `q = range / 2^64`, so `1 − Π_farmers mean_s-bucket (1 − q)^c`.
fn block_probability(farmers: &[Farmer], range: u64) -> f64 {
    let q = range as f64 / 2f64.powi(64);
    let no_block: f64 = farmers
        .iter()
        .map(|farmer| {
            let sizes = farmer.s_bucket_sizes();
            sizes.iter().map(|&c| (1.0 - q).powi(i32::from(c))).sum::<f64>() / sizes.len().max(1) as f64
        })
        .product();
    1.0 - no_block
}
