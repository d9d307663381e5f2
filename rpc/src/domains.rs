//! Wire types of the domains queries (`chain_domains`, `chain_nominator`).

use serde::{Deserialize, Serialize};

use crate::{Balance, Hex32};

/// Every domain on the consensus chain, in the best state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainsInfo {
    /// Domain blocks per staking epoch.
    pub epoch_length: u64,
    /// Domain blocks after which a receipt is confirmed and withdrawn stake unlocks.
    pub challenge_period: u64,
    /// The domains, by id.
    pub domains: Vec<DomainInfo>,
}

/// One domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainInfo {
    /// Its id.
    pub id: u32,
    /// Its name.
    pub name: String,
    /// The module it runs (`evm`, `balances`, ...).
    pub module: String,
    /// Its owner.
    pub owner: Hex32,
    /// The consensus block it was created in (genesis domains: 0).
    pub created_at: u64,
    /// The newest domain block consensus has defined.
    pub head_domain_number: u64,
    /// The current staking epoch.
    pub epoch: u64,
    /// What the domain holds on consensus.
    pub balance: Balance,
    /// Whether it takes no bundles.
    pub frozen: bool,
    /// Its operators.
    pub operators: Vec<OperatorInfo>,
}

/// One operator's pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorInfo {
    /// Its id.
    pub id: u64,
    /// Its owner.
    pub owner: Hex32,
    /// Its sr25519 signing key.
    pub signing_key: Hex32,
    /// `registered`, `deregistered` or `slashed`.
    pub status: String,
    /// Stake owned by its shares.
    pub stake: Balance,
    /// Shares issued.
    pub shares: Balance,
    /// Deposits waiting for the end of the epoch.
    pub pending_deposits: Balance,
    /// Its storage fund.
    pub storage_fund: Balance,
    /// Percent of rewards it keeps.
    pub nomination_tax: u8,
    /// The least a nominator deposits with it.
    pub minimum_nominator_stake: Balance,
    /// How many hold shares or deposits with it.
    pub nominators: u64,
}

/// One holder's position with one operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NominatorInfo {
    /// The operator.
    pub operator: u64,
    /// The holder.
    pub address: Hex32,
    /// Shares held.
    pub shares: Balance,
    /// Shares being withdrawn at the end of this epoch.
    pub withdrawing: Balance,
    /// Stake deposited this epoch (shares at its end).
    pub pending_deposit: Balance,
    /// Withdrawn funds waiting for their unlock: (amount, domain block they unlock at).
    pub unlocking: Vec<(Balance, u64)>,
    /// The domain's newest domain block (unlocks at or below it can be claimed).
    pub head_domain_number: u64,
}
