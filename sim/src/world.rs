//! The blocks of a run and what the protocol says about each.
//!
//! A block's verdict, its context, its state and the segments its branch produced are pure functions of
//! the block and its ancestors: every honest node computes the same. The world therefore computes each
//! once, with the real code (`acre_consensus::chain_state::check_block`, `acre_execution::apply_block`,
//! `acre_storage::Archiver`), and every simulated node reads it; what differs between nodes (which blocks
//! they have, their best block, the claims they have seen) lives in [`crate::node`].

use std::collections::HashMap;

use acre_consensus::blocks::{BlockHash, Body, Header, UnsealedHeader};
use acre_consensus::chain_rules::block_weight;
use acre_consensus::chain_state::{BlockError, ChainContext, check_block, check_state_root};
use acre_consensus::pot::{self, PotCheckpoints, PotSeed};
use acre_consensus::pot_chain::{NoPotCache, next_seed};
use acre_consensus::{BlockNumber, ProtocolParams, SegmentHeader, SlotNumber, SolutionRange};
use acre_execution::{Address, InMemoryAccounts, RuntimeConfig, apply_block, state_root};
use acre_storage::{ArchivedSegment, Archiver};

use crate::SimError;

/// What the world knows about an accepted block.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The block's header.
    pub header: Header,
    /// Its body.
    pub body: Body,
    /// Its context (what its children are judged against).
    pub context: ChainContext,
    /// The state after it.
    pub state: InMemoryAccounts,
    /// Sum of block weights from genesis.
    pub weight: u128,
}

/// The archiver after a block and every segment header its branch produced up to it.
#[derive(Debug, Clone)]
struct Archived {
    archiver: Archiver,
    headers: Vec<SegmentHeader>,
}

/// Every block of the run, judged once.
#[derive(Debug)]
pub struct World {
    /// The protocol parameters.
    pub params: ProtocolParams,
    /// The runtime's economics.
    pub runtime: RuntimeConfig,
    /// The genesis block's hash.
    pub genesis: BlockHash,
    /// The proof-of-time seed of slot 1.
    pub genesis_seed: PotSeed,
    /// Every slot's proof of time, from slot 1 (index 0).
    slots: Vec<PotCheckpoints>,
    accepted: HashMap<BlockHash, Accepted>,
    refused: HashMap<BlockHash, BlockError>,
    archived: HashMap<BlockHash, Archived>,
}

/// Block bytes as archived: `header ‖ body` (as the node archives them).
pub fn block_bytes(header: &Header, body: &Body) -> Vec<u8> {
    let mut bytes = header.encode();
    bytes.extend(body.encode());
    bytes
}

impl World {
    /// A world whose genesis starts the first era at `solution_range`; returns it with genesis' segment.
    pub fn new(
        params: ProtocolParams,
        runtime: RuntimeConfig,
        genesis_seed: PotSeed,
        solution_range: SolutionRange,
    ) -> Result<(Self, ArchivedSegment), SimError> {
        let state = InMemoryAccounts::default();
        let body = Body::default();
        let header = UnsealedHeader {
            version: Header::VERSION,
            parent_hash: acre_consensus::Blake3Hash::ZERO,
            number: BlockNumber(0),
            slot: SlotNumber(0),
            pot_checkpoints: Vec::new(),
            solution: None,
            solution_range,
            next_solution_range: None,
            state_root: state_root(&state),
            body_root: body.root(),
        };
        let header = Header {
            unsealed: header,
            seal: [0; 64],
        };
        let hash = header.hash();
        let mut archiver = Archiver::new(params.clone())?;
        archiver.add_block(BlockNumber(0), &block_bytes(&header, &body))?;
        let segment = archiver
            .close_segment()?
            .ok_or(SimError::Setup("genesis made no segment"))?;
        let (archiver, _) = Archiver::resume(params.clone(), segment.header, None)?;
        let mut world = Self {
            params,
            runtime,
            genesis: hash,
            genesis_seed,
            slots: Vec::new(),
            accepted: HashMap::new(),
            refused: HashMap::new(),
            archived: HashMap::new(),
        };
        world.archived.insert(
            hash,
            Archived {
                archiver,
                headers: vec![segment.header],
            },
        );
        world.accepted.insert(
            hash,
            Accepted {
                context: ChainContext::genesis(hash, solution_range),
                header,
                body,
                state,
                weight: 0,
            },
        );
        Ok((world, segment))
    }

    /// Proves slots up to `slot` (the timekeeper of the run: one proof-of-time chain, no injections).
    pub fn prove_up_to(&mut self, slot: u64) -> Result<(), SimError> {
        while (self.slots.len() as u64) < slot {
            let number = SlotNumber(self.slots.len() as u64 + 1);
            let seed = self
                .slots
                .last()
                .map_or(self.genesis_seed, |last| next_seed(&last.output(), number, &[]));
            self.slots
                .push(pot::prove(&seed, &seed.key(), self.params.pot_iterations)?);
        }
        Ok(())
    }

    /// Checkpoints of slots `first..=last` (all proved).
    pub fn checkpoints(&self, first: u64, last: u64) -> Vec<PotCheckpoints> {
        self.slots[(first - 1) as usize..last as usize].to_vec()
    }

    /// The global challenge of `slot` (proved).
    pub fn challenge(&self, slot: u64) -> acre_consensus::Blake3Hash {
        pot::slot_challenge(&self.slots[(slot - 1) as usize].output(), SlotNumber(slot))
    }

    /// An accepted block.
    pub fn accepted(&self, hash: &BlockHash) -> Option<&Accepted> {
        self.accepted.get(hash)
    }

    /// An accepted block the caller knows is there (a node's best block, a known parent).
    pub fn block(&self, hash: &BlockHash) -> Result<&Accepted, SimError> {
        self.accepted.get(hash).ok_or(SimError::Unknown)
    }

    /// How many blocks were accepted (genesis included).
    pub fn accepted_count(&self) -> u64 {
        self.accepted.len() as u64
    }

    /// Every accepted block: hash, number and slot.
    pub fn all_accepted(&self) -> Vec<(BlockHash, BlockNumber, u64)> {
        self.accepted
            .iter()
            .map(|(hash, accepted)| {
                (
                    *hash,
                    accepted.header.unsealed.number,
                    accepted.header.unsealed.slot.0,
                )
            })
            .collect()
    }

    /// The segment headers the child of `parent` must be judged with: what archiving `parent`'s branch up
    /// to its archiving target produced.
    pub fn produced_for_child_of(&mut self, parent: &BlockHash) -> Result<Vec<SegmentHeader>, SimError> {
        let target = {
            let accepted = self.accepted.get(parent).ok_or(SimError::Unknown)?;
            accepted.context.archiving_target(&self.params)
        };
        let mut ancestor = *parent;
        loop {
            let accepted = &self.accepted[&ancestor];
            if accepted.header.unsealed.number <= target {
                break;
            }
            ancestor = accepted.header.unsealed.parent_hash;
        }
        self.archive(ancestor)?;
        Ok(self.archived[&ancestor].headers.clone())
    }

    /// Archives the branch up to accepted block `hash` (memoised per block).
    fn archive(&mut self, hash: BlockHash) -> Result<(), SimError> {
        let mut pending = Vec::new();
        let mut cursor = hash;
        while !self.archived.contains_key(&cursor) {
            pending.push(cursor);
            cursor = self.accepted[&cursor].header.unsealed.parent_hash;
        }
        for hash in pending.into_iter().rev() {
            let accepted = &self.accepted[&hash];
            let mut archived = self.archived[&accepted.header.unsealed.parent_hash].clone();
            let sealed = archived.archiver.add_block(
                accepted.header.unsealed.number,
                &block_bytes(&accepted.header, &accepted.body),
            )?;
            archived
                .headers
                .extend(sealed.iter().map(|segment| segment.header));
            self.archived.insert(hash, archived);
        }
        Ok(())
    }

    /// The verdict on a block whose parent is accepted, computed once.
    pub fn judge(&mut self, header: &Header, body: &Body) -> Result<Result<(), BlockError>, SimError> {
        let hash = header.hash();
        if self.accepted.contains_key(&hash) {
            return Ok(Ok(()));
        }
        if let Some(error) = self.refused.get(&hash) {
            return Ok(Err(error.clone()));
        }
        let parent_hash = header.unsealed.parent_hash;
        let produced = self.produced_for_child_of(&parent_hash)?;
        let parent = &self.accepted[&parent_hash];
        let verdict = check_block(
            &self.params,
            &self.genesis_seed,
            &parent.context,
            header,
            body,
            &produced,
            &NoPotCache,
        )
        .and_then(|verdict| {
            let mut state = parent.state.clone();
            let voters: Vec<Address> = verdict
                .voter_reward_addresses
                .iter()
                .copied()
                .map(Address)
                .collect();
            apply_block(
                &mut state,
                &self.runtime,
                Address(verdict.author_reward_address),
                &voters,
                &[],
            )
            .map_err(|_| BlockError::StateRoot {
                expected: acre_consensus::Blake3Hash::ZERO,
                got: header.unsealed.state_root,
            })?;
            check_state_root(header, state_root(&state))?;
            Ok(Accepted {
                header: header.clone(),
                body: body.clone(),
                context: verdict.context,
                state,
                weight: parent.weight + block_weight(header.unsealed.solution_range),
            })
        });
        Ok(match verdict {
            Ok(accepted) => {
                self.accepted.insert(hash, accepted);
                Ok(())
            }
            Err(error) => {
                self.refused.insert(hash, error.clone());
                Err(error)
            }
        })
    }

    /// The state root a child of `parent` paying `author` and `voters` has.
    pub fn child_state_root(
        &self,
        parent: &BlockHash,
        author: [u8; 32],
        voters: &[[u8; 32]],
    ) -> Result<acre_consensus::Blake3Hash, SimError> {
        let mut state = self.accepted[parent].state.clone();
        let voters: Vec<Address> = voters.iter().copied().map(Address).collect();
        apply_block(&mut state, &self.runtime, Address(author), &voters, &[])?;
        Ok(state_root(&state))
    }
}
