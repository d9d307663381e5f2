//! Following consensus: the domain blocks the best chain's bundles define, kept in step with reorgs.

use std::collections::BTreeMap;
use std::sync::RwLock;

use acre_consensus::BlockNumber;
use acre_consensus::pot::slot_challenge;
use acre_execution::domains::bundle::Bundle;
use acre_execution::domains::derive::{ConsensusFacts, InboxBundle};
use acre_execution::domains::receipt::ExecutionReceipt;
use acre_execution::domains::{DomainBlockNumber, DomainId};

use super::{ConsensusPoint, DomainExecutor, read, write};
use crate::chain::Chain;
use crate::error::Error;

/// Most consensus blocks scanned in one [`Follower::follow`] call, so one call stays short; the next
/// event scans on.
const MAX_SCAN: u64 = 512;

/// Milliseconds of one slot in a domain block's timestamp: a domain block's time is its consensus
/// block's slot times this (deterministic on every node, unlike a wall clock).
pub const SLOT_MILLIS: u64 = 1000;

/// Where the domain stands on the best consensus chain.
#[derive(Debug)]
pub struct Follower {
    domain_id: DomainId,
    /// The consensus block each derived domain block came from, by domain number (0: the domain's
    /// creation).
    defined: BTreeMap<u64, ConsensusPoint>,
    /// The last consensus block scanned.
    scanned: ConsensusPoint,
}

impl Follower {
    /// A follower of `domain_id` from its creation on the best chain.
    pub fn new(chain: &Chain, domain_id: DomainId) -> Result<Self, Error> {
        let domains = chain
            .domains()
            .ok_or_else(|| Error::Operator("this chain has no domains".into()))?;
        let domain = domains
            .domain(domain_id)
            .map_err(|error| Error::Operator(error.to_string()))?;
        let created = domain.created_at;
        let hash = chain
            .canonical_hash(created)?
            .ok_or_else(|| Error::Operator(format!("the domain's creation block {created} is unknown")))?;
        let point = ConsensusPoint {
            number: created,
            hash,
        };
        Ok(Self {
            domain_id,
            defined: BTreeMap::from([(0, point)]),
            scanned: point,
        })
    }

    /// The receipt of `domain_id`'s genesis (what an executor starts from), read from the registry of
    /// the block after its creation (or of its creation block), where the block tree still holds it.
    pub fn genesis_receipt(chain: &Chain, domain_id: DomainId) -> Result<ExecutionReceipt, Error> {
        let best = chain
            .domains()
            .ok_or_else(|| Error::Operator("this chain has no domains".into()))?;
        let created = best
            .domain(domain_id)
            .map_err(|error| Error::Operator(error.to_string()))?
            .created_at;
        for number in [BlockNumber(created.0 + 1), created] {
            let Some(hash) = chain.canonical_hash(number)? else {
                continue;
            };
            let Some(domains) = chain.domains_at(&hash)? else {
                continue;
            };
            let genesis = domains
                .domain(domain_id)
                .ok()
                .and_then(|domain| domain.block_tree.nodes.get(&DomainBlockNumber(0)))
                .and_then(|at| at.values().next());
            if let Some(node) = genesis {
                return Ok(node.receipt.clone());
            }
        }
        Err(Error::Operator(format!(
            "the genesis receipt of domain {} is no longer in the registry",
            domain_id.0
        )))
    }

    /// Brings `executor` up to the best consensus block (at most [`MAX_SCAN`] blocks per call).
    pub fn follow<E: DomainExecutor>(&mut self, chain: &Chain, executor: &RwLock<E>) -> Result<(), Error> {
        self.unwind(chain, executor)?;
        let best = chain.best().0;
        let last = best.number.0.min(self.scanned.number.0 + MAX_SCAN);
        for number in self.scanned.number.0 + 1..=last {
            let number = BlockNumber(number);
            let Some(hash) = chain.canonical_hash(number)? else {
                break;
            };
            self.block(chain, executor, number, hash)?;
            self.scanned = ConsensusPoint { number, hash };
        }
        Ok(())
    }

    /// After a consensus reorg: drops the domain blocks whose consensus blocks left the best chain.
    fn unwind<E: DomainExecutor>(&mut self, chain: &Chain, executor: &RwLock<E>) -> Result<(), Error> {
        if chain.canonical_hash(self.scanned.number)? == Some(self.scanned.hash) {
            return Ok(());
        }
        let mut keep = 0;
        for (&domain_number, point) in self.defined.iter().rev() {
            if chain.canonical_hash(point.number)? == Some(point.hash) {
                keep = domain_number;
                break;
            }
        }
        self.defined.split_off(&(keep + 1));
        let point = self
            .defined
            .get(&keep)
            .copied()
            .ok_or_else(|| Error::Operator("the domain's creation block left the best chain".into()))?;
        tracing::info!(
            domain = self.domain_id.0,
            domain_number = keep,
            consensus = %point.number,
            "consensus reorg: domain blocks above this one are derived again"
        );
        write(executor).revert_to(keep);
        self.scanned = point;
        Ok(())
    }

    /// Derives the domain block consensus block `number` (`hash`) defines, if it carries bundles of the
    /// domain.
    fn block<E: DomainExecutor>(
        &mut self,
        chain: &Chain,
        executor: &RwLock<E>,
        number: BlockNumber,
        hash: acre_consensus::blocks::BlockHash,
    ) -> Result<(), Error> {
        let (header, body) = chain
            .block(&hash)?
            .ok_or_else(|| Error::Corrupt(format!("canonical block {hash} is missing")))?;
        let bundles: Vec<Bundle> = body
            .bundles
            .iter()
            .map(|bytes| Bundle::decode(bytes))
            .filter(|bundle| {
                bundle
                    .as_ref()
                    .map_or(true, |bundle| bundle.header.domain_id == self.domain_id)
            })
            .collect::<Result<_, _>>()
            .map_err(|error| Error::Corrupt(format!("an imported bundle does not decode: {error}")))?;
        if bundles.is_empty() {
            return Ok(());
        }
        {
            let executor = read(executor);
            for bundle in &bundles {
                compare_receipt(&*executor, &bundle.header.receipt, bundle.header.operator_id.0);
            }
        }
        // While receipts trailed the domain by more than one block at the start of this block, its
        // bundles are singleton receipts: they define no domain block (DOMAINS.md 5).
        let gap = chain
            .domains_at(&header.unsealed.parent_hash)?
            .and_then(|domains| {
                domains
                    .domain(self.domain_id)
                    .ok()
                    .map(|domain| domain.receipt_gap())
            })
            .unwrap_or(0);
        if gap > 1 {
            return Ok(());
        }
        let domains = chain
            .domains_at(&hash)?
            .ok_or_else(|| Error::Corrupt(format!("block {hash} has no registry")))?;
        let domain = domains
            .domain(self.domain_id)
            .map_err(|error| Error::Corrupt(error.to_string()))?;
        let pot_output = chain
            .slot_output(&hash)?
            .ok_or_else(|| Error::Corrupt(format!("block {hash} has no slot output")))?;
        let byte_fee = chain.spec().runtime_config(chain.genesis_hash()).byte_fee;
        let mut inbox = Vec::with_capacity(bundles.len());
        let mut storage_fees = 0u128;
        for bundle in &bundles {
            let operator = domain
                .staking
                .operators
                .get(&bundle.header.operator_id)
                .ok_or_else(|| Error::Corrupt("an imported bundle's operator is unknown".into()))?;
            let challenge = slot_challenge(&bundle.header.pot_output, bundle.header.slot);
            let vrf_output = bundle
                .header
                .vrf
                .verify(&operator.signing_key, self.domain_id, &challenge)
                .map_err(|error| Error::Corrupt(format!("an imported bundle's VRF: {error}")))?;
            let size = u128::try_from(bundle.encoded_len()).unwrap_or(u128::MAX);
            storage_fees = storage_fees.saturating_add(byte_fee.saturating_mul(size));
            inbox.push(InboxBundle { bundle, vrf_output });
        }
        let facts = ConsensusFacts {
            number,
            hash,
            pot_output,
            timestamp_ms: header.unsealed.slot.0.saturating_mul(SLOT_MILLIS),
            byte_fee,
            storage_fees,
        };
        // The lock is held only to take the base: the block executes without it.
        let base = read(executor).derive_base()?;
        let derived = E::derive(&base, &facts, &inbox)?;
        let receipt = E::block_receipt(&derived);
        let domain_number = receipt.domain_number.0;
        tracing::debug!(
            domain = self.domain_id.0,
            domain_number,
            consensus = %number,
            bundles = bundles.len(),
            state_root = %receipt.final_state_root,
            "domain block derived"
        );
        write(executor).push(derived)?;
        self.defined
            .insert(domain_number, ConsensusPoint { number, hash });
        Ok(())
    }
}

/// Compares a receipt on chain with our own of the same domain block; a mismatch is loud.
fn compare_receipt<E: DomainExecutor>(executor: &E, theirs: &ExecutionReceipt, operator: u64) {
    let number = theirs.domain_number.0;
    let Some(ours) = executor.receipt(number) else {
        return;
    };
    if ours.hash() != theirs.hash() {
        tracing::error!(
            domain_number = number,
            operator,
            ours = %ours.final_state_root,
            theirs = %theirs.final_state_root,
            "RECEIPT MISMATCH: an operator's receipt on chain differs from the domain block this node derived"
        );
    }
}
