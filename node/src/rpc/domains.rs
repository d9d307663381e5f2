//! The domains queries: the registry of the best state as wire types.

use acre_execution::Address;
use acre_execution::domains::registry::Domains;
use acre_execution::domains::{DomainId, OperatorId};
use acre_execution::staking::OperatorStatus;
use acre_rpc_api::{Balance, DomainInfo, DomainsInfo, Hex32, NominatorInfo, OperatorInfo};

/// Every domain with its operators.
pub(super) fn domains_info(domains: &Domains) -> DomainsInfo {
    DomainsInfo {
        epoch_length: domains.params.epoch_length,
        challenge_period: domains.params.challenge_period,
        domains: domains
            .domains
            .iter()
            .map(|(id, domain)| DomainInfo {
                id: id.0,
                name: domain.config.name.clone(),
                module: serde_json::to_value(domain.config.module)
                    .ok()
                    .and_then(|value| value.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                owner: Hex32(domain.owner.0),
                created_at: domain.created_at.0,
                head_domain_number: domain.head_domain_number.0,
                epoch: domain.staking.epoch.0,
                balance: Balance(domain.balance),
                frozen: domain.frozen,
                operators: domain
                    .staking
                    .operators
                    .iter()
                    .map(|(id, operator)| OperatorInfo {
                        id: id.0,
                        owner: Hex32(operator.owner.0),
                        signing_key: Hex32(operator.signing_key),
                        status: match operator.status {
                            OperatorStatus::Registered => "registered",
                            OperatorStatus::Deregistered { .. } => "deregistered",
                            OperatorStatus::Slashed => "slashed",
                        }
                        .into(),
                        stake: Balance(operator.total_stake),
                        shares: Balance(operator.total_shares),
                        pending_deposits: Balance(operator.pending_deposits),
                        storage_fund: Balance(operator.storage_fund),
                        nomination_tax: operator.nomination_tax,
                        minimum_nominator_stake: Balance(operator.minimum_nominator_stake),
                        nominators: operator.nominators.len() as u64,
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// `address`'s position with `operator`, if it has one (shares, deposits or funds unlocking).
pub(super) fn nominator_info(domains: &Domains, operator: u64, address: Address) -> Option<NominatorInfo> {
    let id = OperatorId(operator);
    let domain: DomainId = domains.operator_domain(id).ok()?;
    let domain = domains.domain(domain).ok()?;
    let position = domain
        .staking
        .operators
        .get(&id)
        .and_then(|pool| pool.nominators.get(&address))
        .copied();
    let unlocking: Vec<(Balance, u64)> = domain
        .staking
        .withdrawals
        .get(&(id, address))
        .map(|withdrawals| {
            withdrawals
                .iter()
                .map(|withdrawal| (Balance(withdrawal.amount), withdrawal.unlock_at.0))
                .collect()
        })
        .unwrap_or_default();
    if position.is_none() && unlocking.is_empty() {
        return None;
    }
    let position = position.unwrap_or_default();
    Some(NominatorInfo {
        operator,
        address: Hex32(address.0),
        shares: Balance(position.shares),
        withdrawing: Balance(position.withdrawing),
        pending_deposit: Balance(position.pending_deposit),
        unlocking,
        head_domain_number: domain.head_domain_number.0,
    })
}
