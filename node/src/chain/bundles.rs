//! Bundles in consensus blocks: what their checks need to know about the branch below a block.
//!
//! [`Domains::check_bundle`](acre_execution::domains::registry::Domains::check_bundle) asks two things
//! of the branch: the proof-of-time output of a bundle's slot (which the headers' checkpoints carry:
//! a header at slot `s` ends with the output of `s + authoring delay`), and the hash of the consensus
//! block a receipt names. Both are gathered here before the checks run, so a database error fails the
//! import as an internal error rather than as an invalid bundle, and the walk is bounded: headers back to
//! the oldest slot a bundle may use, then the canonical index below the branch's fork point.

use std::collections::{BTreeMap, HashSet};

use acre_consensus::blocks::BlockHash;
use acre_consensus::hashing::Blake3Hash;
use acre_consensus::pot::{PotCheckpoints, PotOutput};
use acre_consensus::{BlockNumber, SlotNumber};
use acre_execution::domains::bundle::Bundle;
use acre_execution::domains::registry::{BlockBundles, BundleContext, Domains};
use acre_storage::chain_index::ChainIndex;

use std::sync::Arc;

use acre_consensus::blocks::UnsealedHeader;
use acre_execution::runtime::{BundlesOutcome, apply_bundles};
use acre_execution::{Address, ExecutionError, RuntimeConfig};

use super::Chain;
use super::history::internal;
use crate::error::{Error, ImportError};
use crate::state::BranchState;

/// Most headers walked below a block for one import (the deepest fork import accepts is far less).
const MAX_WALK: u64 = 4096;

/// The branch below a block, as bundle checks see it.
#[derive(Debug, Default)]
pub(crate) struct BranchFacts {
    /// PoT outputs by slot, from the block's checkpoints and its ancestors'.
    outputs: BTreeMap<SlotNumber, PotOutput>,
    /// Hashes by number of the blocks the bundles' receipts name, where the branch has them.
    hashes: BTreeMap<BlockNumber, BlockHash>,
    /// The slot of the block `bundle_longevity` blocks back (or genesis).
    oldest_slot: SlotNumber,
}

impl BranchFacts {
    /// The output of `slot`, where known.
    pub(crate) fn output(&self, slot: SlotNumber) -> Option<PotOutput> {
        self.outputs.get(&slot).copied()
    }

    /// The branch's block hash at `number`, where gathered.
    pub(crate) fn hash(&self, number: BlockNumber) -> Option<BlockHash> {
        self.hashes.get(&number).copied()
    }
}

/// Adds the outputs of `checkpoints`, the proof of time of a header at `slot`, to `outputs`.
fn add_outputs(
    outputs: &mut BTreeMap<SlotNumber, PotOutput>,
    slot: SlotNumber,
    delay: u64,
    checkpoints: &[PotCheckpoints],
) -> SlotNumber {
    let covered = slot.0.saturating_add(delay);
    let mut lowest = covered.saturating_add(1);
    for (back, checkpoints) in (0u64..).zip(checkpoints.iter().rev()) {
        let Some(slot) = covered.checked_sub(back) else {
            break;
        };
        outputs.insert(SlotNumber(slot), checkpoints.output());
        lowest = slot;
    }
    SlotNumber(lowest)
}

/// Whether a bundle refused with `error` may pass in a later block (it is kept in the pool).
fn may_pass_later(error: &ExecutionError) -> bool {
    matches!(
        error,
        ExecutionError::BundleFromFuture { .. }
            | ExecutionError::ReceiptInFuture { .. }
            | ExecutionError::StorageFeeUnpayable { .. }
            | ExecutionError::ReceiptConflictsInBlock { .. }
    )
}

impl Chain {
    /// The bundle pool's admission check: the bundle's domain and operator exist in the best registry
    /// and the operator's signature verifies.
    pub fn check_bundle_submission(&self, bundle: &Bundle) -> Result<(), ExecutionError> {
        let domains = self.domains().ok_or(ExecutionError::NoDomains)?;
        let header = &bundle.header;
        let domain = domains.domain(header.domain_id)?;
        let operator =
            domain
                .staking
                .operators
                .get(&header.operator_id)
                .ok_or(ExecutionError::OperatorNotOnDomain {
                    operator: header.operator_id.0,
                    domain: header.domain_id.0,
                })?;
        bundle.verify_signature(&operator.signing_key)
    }

    /// The `candidates` a block being built with `header` over `state` (its transactions applied)
    /// includes, in order, within `max_bytes`; and the hashes of those that never will be.
    pub(crate) fn select_bundles(
        &self,
        state: &BranchState,
        header: &UnsealedHeader,
        candidates: &[Bundle],
        byte_fee: u128,
        max_bytes: usize,
    ) -> Result<(Vec<Bundle>, HashSet<Blake3Hash>), Error> {
        let mut included = Vec::new();
        let mut dropped = HashSet::new();
        if candidates.is_empty() {
            return Ok((included, dropped));
        }
        let Some(domains) = state.domains() else {
            return Ok((included, candidates.iter().map(Bundle::hash).collect()));
        };
        self.with_bundle_context(header, candidates, domains, byte_fee, |context| {
            let mut scratch = Domains::clone(domains);
            let mut block = BlockBundles::default();
            let mut size = 0usize;
            for bundle in candidates {
                let len = bundle.encoded_len();
                if size + len > max_bytes {
                    continue;
                }
                match scratch.accept_bundle(bundle, context, &mut block) {
                    Ok(_) => {
                        size += len;
                        included.push(bundle.clone());
                    }
                    Err(error) if may_pass_later(&error) => {
                        tracing::debug!(%error, bundle = %bundle.hash(), "bundle left for a later block");
                    }
                    Err(error) => {
                        tracing::debug!(%error, bundle = %bundle.hash(), "bundle dropped");
                        dropped.insert(bundle.hash());
                    }
                }
            }
        })?;
        Ok((included, dropped))
    }

    /// Applies a block's decoded `bundles` to `state` (its transactions already applied): the storage
    /// fees go to `author`. Errors are the first invalid bundle's.
    pub(crate) fn apply_block_bundles(
        &self,
        state: &mut BranchState,
        runtime: &RuntimeConfig,
        author: Address,
        header: &UnsealedHeader,
        bundles: &[Bundle],
    ) -> Result<BundlesOutcome, ImportError> {
        let domains = Arc::clone(state.domains().ok_or(ExecutionError::NoDomains)?);
        let applied = self
            .with_bundle_context(header, bundles, &domains, runtime.byte_fee, |context| {
                apply_bundles(state, runtime, author, bundles, context)
            })
            .map_err(internal)?;
        Ok(applied?)
    }

    /// Runs `check` with the bundle context of the block `header` describes, for `bundles` under its
    /// parent's registry `domains` (the branch facts gathered first, see the module docs).
    fn with_bundle_context<T>(
        &self,
        header: &UnsealedHeader,
        bundles: &[Bundle],
        domains: &Domains,
        byte_fee: u128,
        check: impl FnOnce(&BundleContext<'_>) -> T,
    ) -> Result<T, Error> {
        let facts = self.branch_facts(
            header.parent_hash,
            header.number,
            header.slot,
            &header.pot_checkpoints,
            bundles,
            domains,
        )?;
        let output = |slot| facts.output(slot);
        let hash = |number| facts.hash(number);
        Ok(check(&BundleContext {
            number: header.number,
            slot: header.slot,
            future_slots: self.params.block_authoring_delay,
            oldest_slot: facts.oldest_slot,
            byte_fee,
            pot_output: &output,
            consensus_hash: &hash,
        }))
    }

    /// Gathers the facts bundle checks need for a block at `number` and `slot` with proof of time
    /// `checkpoints` on `parent`, for `bundles` under the parent's registry `domains`.
    fn branch_facts(
        &self,
        parent: BlockHash,
        number: BlockNumber,
        slot: SlotNumber,
        checkpoints: &[PotCheckpoints],
        bundles: &[Bundle],
        domains: &Domains,
    ) -> Result<BranchFacts, Error> {
        let delay = self.params.block_authoring_delay;
        let longevity = domains.params.bundle_longevity;
        let mut facts = BranchFacts::default();
        let mut lowest_covered = add_outputs(&mut facts.outputs, slot, delay, checkpoints);
        let oldest_number = number.0.saturating_sub(longevity);
        let mut wanted: Vec<BlockNumber> = bundles
            .iter()
            .map(|bundle| bundle.header.receipt.consensus_number)
            .filter(|wanted| *wanted < number)
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let lowest_wanted = wanted.first().map_or(number.0, |lowest| lowest.0);
        let index = ChainIndex::open_existing(&self.db);
        let read = self.db.read()?;
        let mut hash = parent;
        let mut walked = 0u64;
        // Walk headers down the branch while a slot or a wanted hash may still be above the fork point.
        let fork_point = loop {
            let header = index
                .header(&hash)?
                .ok_or_else(|| Error::Corrupt(format!("missing header {hash}")))?;
            let unsealed = &header.unsealed;
            facts.hashes.insert(unsealed.number, hash);
            if unsealed.number.0 == oldest_number {
                facts.oldest_slot = unsealed.slot;
            }
            if unsealed.number.0 >= oldest_number || lowest_covered > facts.oldest_slot {
                lowest_covered = add_outputs(
                    &mut facts.outputs,
                    unsealed.slot,
                    delay,
                    &unsealed.pot_checkpoints,
                )
                .min(lowest_covered);
            }
            let pot_done = unsealed.number.0 <= oldest_number && lowest_covered <= facts.oldest_slot;
            let canonical = index.canonical_hash(unsealed.number)? == Some(hash);
            if unsealed.number.0 == 0
                || walked >= MAX_WALK
                || (pot_done && (canonical || unsealed.number.0 <= lowest_wanted))
            {
                break canonical.then_some(unsealed.number);
            }
            hash = unsealed.parent_hash;
            walked += 1;
        };
        drop(read);
        // Below a canonical block the branch is the canonical chain.
        if let Some(fork_point) = fork_point {
            for wanted in wanted.into_iter().filter(|wanted| *wanted < fork_point) {
                if let Some(hash) = index.canonical_hash(wanted)? {
                    facts.hashes.insert(wanted, hash);
                }
            }
        }
        Ok(facts)
    }
}

#[cfg(test)]
mod tests {
    use acre_consensus::pot::POT_CHECKPOINTS;

    use super::*;

    #[test]
    fn checkpoints_map_to_the_slots_they_end() {
        let checkpoints: Vec<_> = (1u8..=3)
            .map(|i| PotCheckpoints([PotOutput([i; 16]); POT_CHECKPOINTS]))
            .collect();
        let mut outputs = BTreeMap::new();
        // A header at slot 10 with delay 4 covers through slot 14: its three checkpoints end 12, 13, 14.
        let lowest = add_outputs(&mut outputs, SlotNumber(10), 4, &checkpoints);
        assert_eq!(lowest, SlotNumber(12));
        assert_eq!(outputs.get(&SlotNumber(12)), Some(&PotOutput([1; 16])));
        assert_eq!(outputs.get(&SlotNumber(14)), Some(&PotOutput([3; 16])));
        assert_eq!(outputs.len(), 3);
    }
}
