//! Bundle checks and acceptance on consensus (DOMAINS.md 5 and 7).

use acre_consensus::pot::slot_challenge;

use super::{AcceptedBundle, BlockBundles, BundleContext, Domains};
use crate::domains::bundle::{Bundle, body_size, extrinsics_root};
use crate::domains::election::{is_elected, threshold};
use crate::domains::receipt::ReceiptClass;
use crate::domains::{DomainBlockNumber, DomainId};
use crate::error::ExecutionError;
use crate::staking::{Balance, OperatorStatus};

impl Domains {
    /// Checks `bundle` for inclusion in the block `context` describes, after the bundles of `block`
    /// accepted before it; each failure has its own error. The order is the spec's (cheap and
    /// state-light first, signature and VRF late), except that the domain and the operator are looked
    /// up first, as everything after needs them.
    pub fn check_bundle(
        &self,
        bundle: &Bundle,
        context: &BundleContext<'_>,
        block: &BlockBundles,
    ) -> Result<Balance, ExecutionError> {
        self.check_bundle_with_output(bundle, context, block)
            .map(|(storage_fee, _)| storage_fee)
    }

    /// [`Domains::check_bundle`], also returning the verified VRF output (what derivation's transaction
    /// range is measured from).
    fn check_bundle_with_output(
        &self,
        bundle: &Bundle,
        context: &BundleContext<'_>,
        block: &BlockBundles,
    ) -> Result<(Balance, [u8; 32]), ExecutionError> {
        let header = &bundle.header;
        if header.version != Bundle::VERSION {
            return Err(ExecutionError::UnsupportedBundleVersion {
                version: header.version,
            });
        }
        let domain_id = header.domain_id;
        let domain = self.domain(domain_id)?;
        let operator_id = header.operator_id;
        let operator =
            domain
                .staking
                .operators
                .get(&operator_id)
                .ok_or(ExecutionError::OperatorNotOnDomain {
                    operator: operator_id.0,
                    domain: domain_id.0,
                })?;
        // Receipt gap (at the start of the block): while receipts trail the domain by more than one
        // block, bundles are singleton receipts, which catch receipts up without defining blocks.
        let gap = block
            .start_gaps
            .get(&domain_id)
            .copied()
            .unwrap_or_else(|| domain.receipt_gap());
        if gap > 1 && !bundle.body.is_empty() {
            return Err(ExecutionError::ReceiptGap { gap });
        }
        let encoded = u128::try_from(bundle.encoded_len()).unwrap_or(u128::MAX);
        let storage_fee = context.byte_fee.saturating_mul(encoded);
        if operator.storage_fund < storage_fee {
            return Err(ExecutionError::StorageFeeUnpayable {
                fee: storage_fee,
                fund: operator.storage_fund,
            });
        }
        if domain.frozen {
            return Err(ExecutionError::DomainFrozen(domain_id.0));
        }
        let (max_size, max_weight) = domain.bundle_limits;
        let size = body_size(&bundle.body).ok_or(ExecutionError::BundleTooLarge {
            size: u32::MAX,
            max: max_size,
        })?;
        if size != header.size {
            return Err(ExecutionError::BundleSizeMismatch {
                declared: header.size,
                actual: size,
            });
        }
        if size > max_size {
            return Err(ExecutionError::BundleTooLarge { size, max: max_size });
        }
        if header.weight > max_weight {
            return Err(ExecutionError::BundleTooHeavy {
                weight: header.weight,
                max: max_weight,
            });
        }
        if extrinsics_root(&bundle.body) != header.extrinsics_root {
            return Err(ExecutionError::ExtrinsicsRootMismatch);
        }
        let stakes = domain.staking.election_stakes();
        let stake = stakes.get(&operator_id).copied().unwrap_or(0);
        if operator.status != OperatorStatus::Registered || stake == 0 {
            return Err(ExecutionError::OperatorNotElectable(operator_id.0));
        }
        bundle.verify_signature(&operator.signing_key)?;
        if block.slots.contains(&(operator_id, header.slot)) {
            return Err(ExecutionError::BundleEquivocation {
                operator: operator_id.0,
                slot: header.slot.get(),
            });
        }
        if let Some(last) = domain.last_slots.get(&operator_id)
            && header.slot <= *last
        {
            return Err(ExecutionError::BundleSlotReused {
                slot: header.slot.get(),
                last: last.get(),
            });
        }
        if header.slot.get() > context.slot.get().saturating_add(context.future_slots) {
            return Err(ExecutionError::BundleFromFuture {
                slot: header.slot.get(),
                block_slot: context.slot.get(),
            });
        }
        if header.slot < context.oldest_slot {
            return Err(ExecutionError::BundleTooOld {
                slot: header.slot.get(),
                oldest: context.oldest_slot.get(),
            });
        }
        if (context.pot_output)(header.slot) != Some(header.pot_output) {
            return Err(ExecutionError::BundlePot {
                slot: header.slot.get(),
            });
        }
        let challenge = slot_challenge(&header.pot_output, header.slot);
        let output = header.vrf.verify(&operator.signing_key, domain_id, &challenge)?;
        let total: Balance = stakes.values().fold(0, |sum, stake| sum.saturating_add(*stake));
        if !is_elected(&output, threshold(domain.config.slot_probability, total, stake)) {
            return Err(ExecutionError::BundleThreshold(operator_id.0));
        }
        self.check_receipt(domain_id, bundle, context, block)?;
        Ok((storage_fee, output))
    }

    /// The receipt checks of DOMAINS.md 7 for a bundle's receipt.
    fn check_receipt(
        &self,
        domain_id: DomainId,
        bundle: &Bundle,
        context: &BundleContext<'_>,
        block: &BlockBundles,
    ) -> Result<(), ExecutionError> {
        let domain = self.domain(domain_id)?;
        let receipt = &bundle.header.receipt;
        let hash = receipt.hash();
        let number = receipt.domain_number.0;
        match domain.block_tree.classify(receipt, &hash) {
            ReceiptClass::InFuture => Err(ExecutionError::ReceiptInFuture { number }),
            ReceiptClass::Pruned => Err(ExecutionError::ReceiptPruned { number }),
            ReceiptClass::NewBranch => Err(ExecutionError::ReceiptNewBranch { number }),
            ReceiptClass::Stale => Err(ExecutionError::ReceiptStale { number }),
            ReceiptClass::CurrentHead => Ok(()),
            ReceiptClass::NewHead => {
                if let Some(other) = block.new_heads.get(&domain_id)
                    && *other != hash
                {
                    return Err(ExecutionError::ReceiptConflictsInBlock { number });
                }
                if (context.consensus_hash)(receipt.consensus_number) != Some(receipt.consensus_hash) {
                    return Err(ExecutionError::ReceiptConsensusHash { number });
                }
                let inboxed = domain.inbox.get(&receipt.domain_number);
                let matches = inboxed.is_some_and(|(consensus_number, roots)| {
                    *consensus_number == receipt.consensus_number
                        && roots.len() == receipt.bundles.len()
                        && roots
                            .iter()
                            .zip(&receipt.bundles)
                            .all(|(root, inboxed)| *root == inboxed.extrinsics_root)
                });
                if !matches {
                    return Err(ExecutionError::ReceiptInbox { number });
                }
                receipt.check_self()?;
                let parent = DomainBlockNumber(number.saturating_sub(1));
                if domain.block_tree.get(parent, &receipt.parent_receipt).is_none() {
                    return Err(ExecutionError::ReceiptUnknownParent { number });
                }
                Ok(())
            }
        }
    }

    /// Checks and accepts `bundle` into the block `context` describes: takes the storage fee from the
    /// operator's fund (for the block author), defines the domain block on the block's first bundle
    /// of the domain (ending an epoch when its number is a multiple of the epoch length), inboxes the
    /// bundle, and adds or endorses its receipt, confirming and rewarding the receipt
    /// `challenge_period` below a new head. Nothing changes on error.
    pub fn accept_bundle(
        &mut self,
        bundle: &Bundle,
        context: &BundleContext<'_>,
        block: &mut BlockBundles,
    ) -> Result<AcceptedBundle, ExecutionError> {
        let (storage_fee, vrf_output) = self.check_bundle_with_output(bundle, context, block)?;
        let header = &bundle.header;
        let (domain_id, operator_id) = (header.domain_id, header.operator_id);
        let (challenge_period, epoch_length) = (self.params.challenge_period, self.params.epoch_length);
        let domain = self.domain_mut(domain_id)?;
        let singleton = *block
            .start_gaps
            .entry(domain_id)
            .or_insert_with(|| domain.receipt_gap())
            > 1;
        domain.staking.charge_storage_fee(operator_id, storage_fee)?;
        domain.last_slots.insert(operator_id, header.slot);
        block.slots.insert((operator_id, header.slot));
        let mut epoch_ended = false;
        if !singleton && block.defined.insert(domain_id) {
            domain.head_domain_number = DomainBlockNumber(domain.head_domain_number.0 + 1);
            domain.head_consensus_number = context.number;
            domain
                .inbox
                .insert(domain.head_domain_number, (context.number, Vec::new()));
            if epoch_length > 0 && domain.head_domain_number.0.is_multiple_of(epoch_length) {
                domain.staking.end_epoch(domain.head_domain_number)?;
                epoch_ended = true;
            }
        }
        let head = domain.head_domain_number;
        if !singleton && let Some((_, roots)) = domain.inbox.get_mut(&head) {
            roots.push(header.extrinsics_root);
        }
        let receipt = &header.receipt;
        let hash = receipt.hash();
        let mut confirmed = None;
        if receipt.domain_number.0 == domain.block_tree.head_receipt_number.0 + 1 {
            block.new_heads.insert(domain_id, hash);
            confirmed = domain
                .block_tree
                .add_head(receipt.clone(), operator_id, challenge_period);
        } else {
            domain
                .block_tree
                .endorse(receipt.domain_number, &hash, operator_id);
        }
        if let Some(node) = &confirmed {
            let number = node.receipt.domain_number;
            domain.inbox = domain.inbox.split_off(&DomainBlockNumber(number.0 + 1));
            // Execution fees, equally to each submitter and endorser still registered; the remainder
            // (and shares of the others) stays in the domain's balance.
            let fee = node.receipt.fees.execution_fee.min(domain.balance);
            let registered: Vec<_> = node
                .operators
                .iter()
                .filter(|id| {
                    domain
                        .staking
                        .operators
                        .get(id)
                        .is_some_and(|operator| operator.status == OperatorStatus::Registered)
                })
                .copied()
                .collect();
            if let Ok(count) = Balance::try_from(registered.len())
                && count > 0
            {
                let share = fee / count;
                for id in registered {
                    domain.staking.reward(id, share)?;
                    domain.balance -= share;
                }
            }
        }
        Ok(AcceptedBundle {
            storage_fee,
            vrf_output,
            domain_number: head,
            confirmed,
            epoch_ended,
            singleton,
        })
    }
}
