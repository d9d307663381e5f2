//! A consensus block's bundles (DOMAINS.md 5): decoded, checked and accepted into the domain registry
//! in block order, after the block's transactions; their storage fees go to the block's author.
//!
//! Consensus never runs a bundle's transactions: it checks the election, the signature, the limits and
//! the receipt, records the bundle in its domain's execution inbox and moves the storage fee from the
//! operator's storage fund to the author. One invalid bundle makes the whole block invalid (an honest
//! author checks each bundle against the state it builds on before including it).

use super::credit;
use crate::config::RuntimeConfig;
use crate::domains::bundle::Bundle;
use crate::domains::registry::{AcceptedBundle, BlockBundles, BundleContext};
use crate::error::ExecutionError;
use crate::state::AccountStore;
use crate::transaction::Address;

/// What applying a block's bundles did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundlesOutcome {
    /// Each bundle's acceptance, in block order.
    pub accepted: Vec<AcceptedBundle>,
    /// Storage fees taken from operators' funds.
    pub storage_fees: u128,
    /// The part of the fees credited to the author (the rest was burnt: below the existential deposit
    /// for an author without an account).
    pub credited: u128,
}

/// Accepts `bundles` (decoded, in block order) into the registry of `state` for the block `context`
/// describes and credits their storage fees to `author`. Errors name the bundle's index; on error the
/// state may hold the effects of earlier bundles (callers discard it, as for transactions).
pub fn apply_bundles(
    state: &mut impl AccountStore,
    config: &RuntimeConfig,
    author: Address,
    bundles: &[Bundle],
    context: &BundleContext<'_>,
) -> Result<BundlesOutcome, ExecutionError> {
    let mut outcome = BundlesOutcome::default();
    if bundles.is_empty() {
        return Ok(outcome);
    }
    let domains = state.domains_mut().ok_or(ExecutionError::NoDomains)?;
    let mut block = BlockBundles::default();
    for (index, bundle) in bundles.iter().enumerate() {
        let accepted = domains
            .accept_bundle(bundle, context, &mut block)
            .map_err(|source| ExecutionError::InvalidBundle {
                index,
                source: Box::new(source),
            })?;
        outcome.storage_fees = outcome
            .storage_fees
            .checked_add(accepted.storage_fee)
            .ok_or(ExecutionError::Overflow(author))?;
        outcome.accepted.push(accepted);
    }
    if credit(state, config, author, outcome.storage_fees)? {
        outcome.credited = outcome.storage_fees;
    }
    Ok(outcome)
}
