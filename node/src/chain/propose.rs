//! Block proposal: what the node authors on its best block for a farmer's winning solution.
//!
//! A proposal follows exactly the rules import checks, so an honest node's own blocks always import: the
//! segment headers the branch must carry, the votes for the best block that are still valid, proofs of the
//! equivocations the node saw (once per key), and as many pool transactions as apply.

use std::collections::HashSet;

use acre_consensus::blocks::MAX_BODY_SIZE;
use acre_consensus::blocks::{Body, Header, UnsealedHeader};
use acre_consensus::branch::{archiving_target, expected_segment_headers};
use acre_consensus::equivocation::MAX_EQUIVOCATION_PROOFS_PER_BLOCK;
use acre_consensus::hashing::Blake3Hash;
use acre_consensus::solutions::Solution;
use acre_consensus::votes::{SignedVote, max_votes_per_block};
use acre_consensus::{BlockNumber, SlotNumber};
use acre_execution::domains::bundle::Bundle;
use acre_execution::{Address, SignedTransaction, apply_block, apply_transaction};

use super::{Chain, lock};
use crate::error::Error;

/// A block ready to be sealed.
#[derive(Debug, Clone)]
pub struct Proposal {
    /// The header to seal.
    pub header: UnsealedHeader,
    /// The body.
    pub body: Body,
    /// Hashes of candidate bundles that can never be included (stale, or failing a check that time
    /// cannot fix): the pool drops them.
    pub dropped_bundles: HashSet<Blake3Hash>,
}

impl Chain {
    /// Builds a block on the best block for `slot` with `solution`, `pot` checkpoints, the `votes` that
    /// are valid in it and as many of `candidates` as apply (in order; failing ones are left out).
    /// `None` when the block cannot be built (the slot is not after the best block's, its proof of time
    /// is not known yet).
    pub fn propose(
        &self,
        slot: SlotNumber,
        solution: Solution,
        pot: &crate::timekeeper::Timekeeper,
        candidates: &[SignedTransaction],
        votes: &[SignedVote],
        bundles: &[Bundle],
    ) -> Result<Option<Proposal>, Error> {
        let (best, context, base_state) = {
            let inner = self.lock();
            (inner.best, inner.best_context.clone(), inner.best_state.clone())
        };
        let parent = &context.child;
        // A block-listed farmer's block would fail import; the service refuses its solutions before
        // they get here.
        if slot <= parent.slot {
            return Ok(None);
        }
        let covered = SlotNumber(slot.0 + self.params.block_authoring_delay);
        let Some(pot_checkpoints) = pot.checkpoints(SlotNumber(parent.pot_covered_slot.0 + 1), covered)
        else {
            return Ok(None);
        };
        let number = BlockNumber(parent.number.0 + 1);
        let era = parent.era;
        let next_era = era.after_block(&self.params, number, slot);
        let produced = self
            .produced_up_to(&best, archiving_target(&self.params, best.number))
            .map_err(|error| Error::Corrupt(format!("segments of the best branch: {error}")))?;
        let segment_headers =
            expected_segment_headers(&self.params, best.number, context.next_segment_index, &produced);

        let mut vote_keys = HashSet::new();
        let included_votes: Vec<SignedVote> = votes
            .iter()
            .filter(|signed| {
                let vote = &signed.vote;
                let key = vote.solution.public_key;
                vote.parent_hash == best.hash
                    && vote.slot > parent.slot
                    && vote.slot <= slot
                    && !context.is_blocklisted(&key)
                    && !(key == solution.public_key && vote.slot == slot)
                    && vote_keys.insert((key, vote.slot))
            })
            .take(max_votes_per_block(&self.params))
            .cloned()
            .collect();
        let voters: Vec<Address> = included_votes
            .iter()
            .map(|vote| Address(vote.vote.solution.reward_address))
            .collect();

        let mut proven = HashSet::new();
        let equivocations: Vec<_> = lock(&self.evidence)
            .iter()
            .filter(|proof| match proof.verify() {
                Ok(key) => !context.is_blocklisted(&key) && proven.insert(key),
                Err(_) => false,
            })
            .take(MAX_EQUIVOCATION_PROOFS_PER_BLOCK)
            .cloned()
            .collect();

        let runtime = self.spec.runtime_config(self.genesis_hash);
        let mut base_state = base_state;
        base_state.begin_block(number, parent.hash);
        let mut scratch = base_state.clone();
        let mut included = Vec::new();
        let mut size = 0usize;
        for tx in candidates {
            let encoded = tx.encode();
            if size + encoded.len() > MAX_BODY_SIZE / 2 {
                break;
            }
            if apply_transaction(&mut scratch, &runtime, tx).is_ok() {
                size += encoded.len();
                included.push(tx.clone());
            }
        }
        let mut after = base_state;
        let author = Address(solution.reward_address);
        apply_block(&mut after, &runtime, author, &voters, &included)
            .map_err(|error| Error::Corrupt(format!("a checked transaction failed: {error}")))?;
        let mut header = UnsealedHeader {
            version: Header::VERSION,
            parent_hash: parent.hash,
            number,
            slot,
            pot_checkpoints,
            solution: Some(solution),
            solution_range: era.solution_range,
            next_solution_range: (next_era != era).then_some(next_era.solution_range),
            state_root: Blake3Hash::ZERO,
            body_root: Blake3Hash::ZERO,
        };
        let (included_bundles, dropped_bundles) =
            self.select_bundles(&after, &header, bundles, runtime.byte_fee, MAX_BODY_SIZE / 4)?;
        if !included_bundles.is_empty() {
            self.apply_block_bundles(&mut after, &runtime, author, &header, &included_bundles)
                .map_err(|error| Error::Corrupt(format!("a checked bundle failed: {error}")))?;
        }
        after.commit();
        let body = Body {
            transactions: included.iter().map(SignedTransaction::encode).collect(),
            segment_headers,
            votes: included_votes,
            equivocations,
            bundles: included_bundles.iter().map(Bundle::encode).collect(),
        };
        header.state_root = after.root();
        header.body_root = body.root();
        Ok(Some(Proposal {
            header,
            body,
            dropped_bundles,
        }))
    }
}
