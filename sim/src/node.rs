//! One simulated node: the blocks it has, its best block, the claims it has seen, the votes and
//! equivocation evidence it will put into its next block. Verdicts come from the shared [`World`].

use std::collections::{BTreeMap, HashMap, HashSet};

use acre_consensus::blocks::{BlockHash, Body, Header};
use acre_consensus::chain_rules::{Tip, compare_tips};
use acre_consensus::chain_state::BlockError;
use acre_consensus::equivocation::{EquivocationProof, SignedClaim};
use acre_consensus::sectors::PublicKey;
use acre_consensus::votes::SignedVote;
use acre_consensus::{BlockNumber, SlotNumber};

use crate::SimError;
use crate::world::World;

/// Blocks waiting for their parent, at most.
const MAX_ORPHANS: usize = 1024;
/// Votes kept for the next block, at most.
const MAX_VOTES: usize = 256;

/// Why a node refused a block (counted in the report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The protocol says the block is invalid.
    Invalid(BlockError),
    /// The farmer already signed another block for the slot: an equivocation.
    Equivocation,
    /// The block forks off below the node's archiving point.
    BelowArchivingPoint,
}

/// A node's view of the chain.
#[derive(Debug)]
pub struct Node {
    /// Blocks this node imported, with their number.
    known: HashMap<BlockHash, BlockNumber>,
    /// The best block.
    pub best: Tip,
    /// Blocks whose parent has not arrived, by parent.
    orphans: HashMap<BlockHash, Vec<(Header, Body)>>,
    orphan_count: usize,
    /// Claims seen, by (key, slot): the signed claim.
    seen: HashMap<(PublicKey, SlotNumber), SignedClaim>,
    /// Equivocation proofs for the next block.
    pub evidence: Vec<EquivocationProof>,
    /// Votes for the next block, by (key, slot).
    pub votes: BTreeMap<(SlotNumber, PublicKey), SignedVote>,
    /// Refusals by kind.
    pub refusals: Vec<Refusal>,
}

impl Node {
    /// A node that knows only genesis.
    pub fn new(world: &World) -> Self {
        Self {
            known: HashMap::from([(world.genesis, BlockNumber(0))]),
            best: Tip {
                weight: 0,
                hash: world.genesis,
            },
            orphans: HashMap::new(),
            orphan_count: 0,
            seen: HashMap::new(),
            evidence: Vec::new(),
            votes: BTreeMap::new(),
            refusals: Vec::new(),
        }
    }

    /// Whether the node has block `hash`.
    pub fn knows(&self, hash: &BlockHash) -> bool {
        self.known.contains_key(hash)
    }

    /// Receives a block; imports it and any orphans it completes. Returns the hashes imported.
    pub fn receive(
        &mut self,
        world: &mut World,
        header: Header,
        body: Body,
    ) -> Result<Vec<BlockHash>, SimError> {
        let mut imported = Vec::new();
        let mut queue = vec![(header, body)];
        while let Some((header, body)) = queue.pop() {
            let hash = header.hash();
            if self.knows(&hash) {
                continue;
            }
            let parent = header.unsealed.parent_hash;
            if !self.knows(&parent) {
                if self.orphan_count < MAX_ORPHANS {
                    self.orphans.entry(parent).or_default().push((header, body));
                    self.orphan_count += 1;
                }
                continue;
            }
            if self.import(world, &header, &body)? {
                imported.push(hash);
                if let Some(children) = self.orphans.remove(&hash) {
                    self.orphan_count -= children.len();
                    queue.extend(children);
                }
            }
        }
        Ok(imported)
    }

    /// The node's ancestor of `hash` at `number` (both known).
    fn ancestor_at(world: &World, mut hash: BlockHash, number: BlockNumber) -> BlockHash {
        while let Some(accepted) = world.accepted(&hash) {
            if accepted.header.unsealed.number <= number {
                break;
            }
            hash = accepted.header.unsealed.parent_hash;
        }
        hash
    }

    /// The node's archiving point: `confirmation_depth` below its best block.
    fn archiving_point(&self, world: &World) -> BlockNumber {
        let best = self.known[&self.best.hash];
        BlockNumber(best.0.saturating_sub(world.params.confirmation_depth))
    }

    fn import(&mut self, world: &mut World, header: &Header, body: &Body) -> Result<bool, SimError> {
        let unsealed = &header.unsealed;
        // The fork-point rule (spec 8): the block's branch must hold this node's block at its archiving
        // point.
        let point = self.archiving_point(world);
        if unsealed.number <= point
            || Self::ancestor_at(world, unsealed.parent_hash, point)
                != Self::ancestor_at(world, self.best.hash, point)
        {
            self.refusals.push(Refusal::BelowArchivingPoint);
            return Ok(false);
        }
        // Equivocation: a second block for the same (key, slot) is refused and proven.
        let Some(solution) = unsealed.solution.as_ref() else {
            self.refusals.push(Refusal::Invalid(BlockError::Header(
                acre_consensus::validation::HeaderError::Seal(
                    acre_consensus::blocks::SealError::MissingSolution(unsealed.number),
                ),
            )));
            return Ok(false);
        };
        let key = (solution.public_key, unsealed.slot);
        if let Some(first) = self.seen.get(&key)
            && first.key().map(|(_, _, hash)| hash) != Some(header.hash())
        {
            let proof = EquivocationProof {
                first: first.clone(),
                second: SignedClaim::Block(header.clone()),
            };
            if proof.verify().is_ok() {
                self.evidence.push(proof);
            }
            self.refusals.push(Refusal::Equivocation);
            return Ok(false);
        }
        if let Err(error) = world.judge(header, body)? {
            self.refusals.push(Refusal::Invalid(error));
            return Ok(false);
        }
        self.seen.insert(key, SignedClaim::Block(header.clone()));
        for vote in &body.votes {
            let vote_key = (vote.vote.solution.public_key, vote.vote.slot);
            match self.seen.get(&vote_key) {
                Some(first) if first.key().map(|(_, _, hash)| hash) != Some(vote.vote.hash()) => {
                    self.evidence.push(EquivocationProof {
                        first: first.clone(),
                        second: SignedClaim::Vote(vote.clone()),
                    });
                }
                Some(_) => {}
                None => {
                    self.seen.insert(vote_key, SignedClaim::Vote(vote.clone()));
                }
            }
        }
        let accepted = world.block(&header.hash())?;
        self.known.insert(header.hash(), unsealed.number);
        let tip = Tip {
            weight: accepted.weight,
            hash: header.hash(),
        };
        if compare_tips(&tip, &self.best).is_gt() {
            self.best = tip;
            self.votes.retain(|_, vote| vote.vote.parent_hash == tip.hash);
            let blocklist = &accepted.context.blocklist;
            self.evidence.retain(|proof| {
                proof
                    .verify()
                    .is_ok_and(|key| blocklist.binary_search(&key).is_err())
            });
        }
        Ok(true)
    }

    /// Receives a vote: kept if it builds on the best block and is the voter's first claim for the slot.
    pub fn receive_vote(&mut self, vote: SignedVote) {
        if vote.vote.parent_hash != self.best.hash || self.votes.len() >= MAX_VOTES {
            return;
        }
        let key = (vote.vote.solution.public_key, vote.vote.slot);
        if let Some(first) = self.seen.get(&key) {
            if first.key().map(|(_, _, hash)| hash) != Some(vote.vote.hash()) {
                self.evidence.push(EquivocationProof {
                    first: first.clone(),
                    second: SignedClaim::Vote(vote),
                });
            }
            return;
        }
        self.seen.insert(key, SignedClaim::Vote(vote.clone()));
        self.votes
            .insert((vote.vote.slot, vote.vote.solution.public_key), vote);
    }

    /// Claims this node saw, for the report: how many distinct keys it holds evidence against.
    pub fn evidence_keys(&self) -> HashSet<PublicKey> {
        self.evidence
            .iter()
            .filter_map(|proof| proof.verify().ok())
            .collect()
    }
}
