//! Producing bundles: the election in each new slot, and the bundle an elected operator submits.

use std::sync::RwLock;

use acre_consensus::SlotNumber;
use acre_consensus::hashing::Blake3Hash;
use acre_consensus::pot::slot_challenge;
use acre_execution::domains::bundle::{Bundle, BundleHeader, body_size, extrinsics_root};
use acre_execution::domains::derive::INITIAL_TX_RANGE;
use acre_execution::domains::election::{VrfProof, is_elected, threshold};
use acre_execution::staking::OperatorStatus;

use super::{DomainExecutor, OperatorConfig, read};
use crate::error::Error;
use crate::service::Shared;

/// Runs the election for `slot` and, when won, builds, signs and submits a bundle; returns its hash.
/// `Ok(None)`: not elected, not electable (not registered, no stake yet), or the domain is not derived
/// far enough to carry the receipt consensus expects.
pub(super) fn bundle_for_slot<E: DomainExecutor>(
    shared: &Shared,
    config: &OperatorConfig,
    executor: &RwLock<E>,
    slot: SlotNumber,
) -> Result<Option<Blake3Hash>, Error> {
    let Some(domains) = shared.chain.domains() else {
        return Ok(None);
    };
    let domain = domains
        .domain(config.domain_id)
        .map_err(|error| Error::Operator(error.to_string()))?;
    let Some(operator) = domain.staking.operators.get(&config.operator_id) else {
        return Ok(None);
    };
    if operator.status != OperatorStatus::Registered {
        return Ok(None);
    }
    if operator.signing_key != config.keypair.public.to_bytes() {
        return Err(Error::Operator(format!(
            "the key given is not operator {}'s signing key",
            config.operator_id.0
        )));
    }
    let stakes = domain.staking.election_stakes();
    let stake = stakes.get(&config.operator_id).copied().unwrap_or(0);
    let total = stakes
        .values()
        .fold(0u128, |sum, stake| sum.saturating_add(*stake));
    if stake == 0 {
        return Ok(None);
    }
    let Some(pot_output) = shared.timekeeper.output(slot) else {
        return Ok(None);
    };
    let challenge = slot_challenge(&pot_output, slot);
    let (vrf, vrf_output) = VrfProof::prove(&config.keypair, config.domain_id, &challenge);
    if !is_elected(
        &vrf_output,
        threshold(domain.config.slot_probability, total, stake),
    ) {
        return Ok(None);
    }

    let tree = &domain.block_tree;
    let head = tree.head_receipt_number.0;
    let (receipt, body) = {
        let executor = read(executor);
        // A new head when we derived the next block, else an endorsement of the current head.
        let receipt = match executor.receipt(head + 1) {
            Some(next) => next.clone(),
            None => match executor.receipt(head) {
                Some(current) if tree.get(current.domain_number, &current.hash()).is_some() => {
                    current.clone()
                }
                Some(_) => {
                    return Err(Error::Operator(format!(
                        "our receipt of domain block {head} is not the one on chain; no bundle"
                    )));
                }
                None => return Ok(None),
            },
        };
        // An operator more than one block behind may only catch up with receipt-only bundles.
        let gap = domain.head_domain_number.0.saturating_sub(head);
        let (max_size, max_weight) = domain.bundle_limits;
        let body = if gap > 1 {
            (Vec::new(), 0)
        } else {
            executor.bundle_body(&vrf_output, INITIAL_TX_RANGE, max_size, max_weight)
        };
        (receipt, body)
    };
    let (body, weight) = body;
    let size = body_size(&body).ok_or_else(|| Error::Operator("bundle body too large".into()))?;
    let header = BundleHeader {
        version: Bundle::VERSION,
        domain_id: config.domain_id,
        operator_id: config.operator_id,
        slot,
        pot_output,
        vrf,
        receipt,
        extrinsics_root: extrinsics_root(&body),
        size,
        weight,
    };
    let bundle = Bundle::sign(header, body, &config.keypair);
    let bytes = bundle.encode();
    let hash = shared
        .bundles
        .submit(&bytes, |bundle| shared.chain.check_bundle_submission(bundle))
        .map_err(|error| Error::Operator(format!("our own bundle was refused: {error}")))?;
    let _ = shared
        .outbound
        .send(crate::p2p::Outbound::Bundle(std::sync::Arc::new(bytes)));
    Ok(Some(hash))
}
