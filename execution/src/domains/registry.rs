//! The domains part of the consensus runtime: the registry of domains (DOMAINS.md 2), their operators'
//! pools (DOMAINS.md 3, [`crate::staking`]), the execution inbox and the block tree of receipts
//! (DOMAINS.md 5 and 7).
//!
//! [`Domains`] is pure state with methods for every state change, called by the consensus runtime as it
//! applies a block: a domain's instantiation, operator calls, and each bundle of the block in order
//! ([`Domains::check_bundle`] then [`Domains::accept_bundle`]). Balances stay with the caller: methods
//! that take or pay funds say how much, and the caller moves it between accounts, so the conservation
//! property (`accounts + pools + domain balances` changes only by what is minted and burned) is checked
//! where accounts live.

use std::collections::{BTreeMap, BTreeSet};

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use acre_consensus::hashing::Blake3Hash;
use acre_consensus::pot::PotOutput;
use acre_consensus::{BlockNumber, SlotNumber};

use crate::domains::election::SlotProbability;
use crate::domains::module::ModuleId;
use crate::domains::receipt::{BlockTree, ExecutionReceipt, TreeNode};
use crate::domains::{DomainBlockNumber, DomainId, OperatorId};
use crate::error::ExecutionError;
use crate::staking::{Balance, Staking, StakingParams};
use crate::transaction::Address;

/// The domain rules' numbers (DOMAINS.md 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct DomainParams {
    /// Domain blocks after which a receipt is confirmed (also the stake unlock delay).
    pub challenge_period: u64,
    /// Domain blocks per staking epoch.
    pub epoch_length: u64,
    /// Consensus blocks after which a bundle's slot is too old.
    pub bundle_longevity: u64,
    /// The largest domain block (bytes of transactions).
    pub max_block_size: u32,
    /// The largest domain block weight.
    pub max_block_weight: u64,
    /// Expected consensus slots per block (the inverse of the slot probability), to derive bundle
    /// limits from block limits.
    pub slots_per_block: u64,
    /// The staking numbers.
    pub staking: StakingParams,
}

impl DomainParams {
    /// Mainnet's numbers.
    pub fn mainnet() -> Self {
        Self {
            challenge_period: 14_400,
            epoch_length: 100,
            bundle_longevity: 5,
            max_block_size: 3_932_160,
            max_block_weight: 30_000_000,
            slots_per_block: 6,
            staking: StakingParams::mainnet(),
        }
    }

    /// The development chain's numbers.
    pub fn dev() -> Self {
        Self {
            challenge_period: 20,
            epoch_length: 10,
            bundle_longevity: 5,
            max_block_size: 64 * 1024,
            max_block_weight: 30_000_000,
            slots_per_block: 6,
            staking: StakingParams::dev(),
        }
    }
}

/// Who may register operators on a domain.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AllowList {
    /// Any account.
    Anyone,
    /// Only these owner accounts.
    Only(BTreeSet<Address>),
}

/// Longest domain name, in bytes.
pub const MAX_NAME_LEN: usize = 32;

/// Most initial balances a domain is created with.
pub const MAX_INITIAL_BALANCES: usize = 10;

/// Longest account encoding of a domain's module.
pub const MAX_ACCOUNT_LEN: usize = 32;

/// What a domain is created with (DOMAINS.md 2).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct DomainConfig {
    /// Its name (at most 32 bytes).
    pub name: String,
    /// The module it runs.
    pub module: ModuleId,
    /// Expected bundles per slot.
    pub slot_probability: SlotProbability,
    /// Largest bundle body; derived from the block limit when `None`.
    pub max_bundle_size: Option<u32>,
    /// Largest bundle weight; derived from the block limit when `None`.
    pub max_bundle_weight: Option<u64>,
    /// Who may register operators.
    pub allow_list: AllowList,
    /// Balances the domain starts with (module account encoding, amount), burned from the owner.
    pub initial_balances: Vec<(Vec<u8>, Balance)>,
    /// The EVM chain id (EVM domains).
    pub evm_chain_id: Option<u64>,
}

/// One domain on consensus.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Domain {
    /// What it was created with.
    pub config: DomainConfig,
    /// Who created it.
    pub owner: Address,
    /// The consensus block it was created in.
    pub created_at: BlockNumber,
    /// A frozen domain takes no bundles.
    pub frozen: bool,
    /// Bundle size and weight limits in force.
    pub bundle_limits: (u32, u64),
    /// Its operators' pools.
    pub staking: Staking,
    /// Its receipts.
    pub block_tree: BlockTree,
    /// The newest domain block number consensus has defined (by inboxing bundles).
    pub head_domain_number: DomainBlockNumber,
    /// The consensus block that defined the head domain block.
    pub head_consensus_number: BlockNumber,
    /// The newest slot each operator submitted a bundle in.
    pub last_slots: BTreeMap<OperatorId, SlotNumber>,
    /// Execution inbox: per unconfirmed domain block, the consensus block that defined it and the
    /// extrinsics roots of its bundles in order.
    pub inbox: BTreeMap<DomainBlockNumber, (BlockNumber, Vec<Blake3Hash>)>,
    /// The domain's balance on consensus: what entered it and has not left.
    pub balance: Balance,
}

/// What consensus knows around the block being applied, for bundle checks.
pub struct BundleContext<'a> {
    /// The consensus block being applied.
    pub number: BlockNumber,
    /// Its slot.
    pub slot: SlotNumber,
    /// Slots a bundle's slot may be ahead of the block's (the authoring delay).
    pub future_slots: u64,
    /// The slot of the consensus block `bundle_longevity` blocks back (or genesis): older bundle slots
    /// are stale.
    pub oldest_slot: SlotNumber,
    /// The storage fee of one byte (the consensus byte fee).
    pub byte_fee: Balance,
    /// The PoT output of a slot, where the chain knows it (verified).
    pub pot_output: &'a dyn Fn(SlotNumber) -> Option<PotOutput>,
    /// The hash of a consensus block of this branch by number, below the block being applied.
    pub consensus_hash: &'a dyn Fn(BlockNumber) -> Option<Blake3Hash>,
}

impl std::fmt::Debug for BundleContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleContext")
            .field("number", &self.number)
            .field("slot", &self.slot)
            .field("future_slots", &self.future_slots)
            .field("oldest_slot", &self.oldest_slot)
            .field("byte_fee", &self.byte_fee)
            .finish_non_exhaustive()
    }
}

/// Bundles already accepted in the block being applied (equivocation within a block, one new head).
#[derive(Debug, Default)]
pub struct BlockBundles {
    pub(crate) slots: BTreeSet<(OperatorId, SlotNumber)>,
    pub(crate) new_heads: BTreeMap<DomainId, Blake3Hash>,
    pub(crate) defined: BTreeSet<DomainId>,
    /// Each domain's receipt gap when the block's first bundle of it arrived (DOMAINS.md 5: above one,
    /// the block's bundles of the domain are singleton receipts).
    pub(crate) start_gaps: BTreeMap<DomainId, u64>,
}

impl Domain {
    /// How many domain blocks the head receipt trails the head domain block by.
    pub fn receipt_gap(&self) -> u64 {
        self.head_domain_number
            .0
            .saturating_sub(self.block_tree.head_receipt_number.0)
    }
}

/// What accepting a bundle did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedBundle {
    /// The storage fee taken from the operator's storage fund, credited to the block author.
    pub storage_fee: Balance,
    /// The bundle's verified VRF output (derivation measures the transaction range from it).
    pub vrf_output: [u8; 32],
    /// The domain block the bundle went into.
    pub domain_number: DomainBlockNumber,
    /// A receipt confirmed by this bundle's new head, with its submitters and endorsers (their rewards
    /// are already in the pools, taken from the domain's balance).
    pub confirmed: Option<TreeNode>,
    /// Whether this bundle ended a staking epoch.
    pub epoch_ended: bool,
    /// Whether it was a singleton receipt (the domain's receipt gap exceeded one at the start of the
    /// block): it carried a receipt only, and neither defined a domain block nor went into the inbox.
    pub singleton: bool,
}

/// Every domain on consensus.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Domains {
    /// The rules' numbers.
    pub params: DomainParams,
    /// The domains.
    pub domains: BTreeMap<DomainId, Domain>,
    /// Which domain each operator stakes on.
    pub operators: BTreeMap<OperatorId, DomainId>,
    /// The next domain's id.
    pub next_domain: u32,
    /// The next operator's id.
    pub next_operator: u64,
}

mod bundles;
#[cfg(test)]
pub(crate) mod tests;

impl Domains {
    /// No domain yet.
    pub fn new(params: DomainParams) -> Self {
        Self {
            params,
            domains: BTreeMap::new(),
            operators: BTreeMap::new(),
            next_domain: 0,
            next_operator: 0,
        }
    }

    /// The domain with `id`.
    pub fn domain(&self, id: DomainId) -> Result<&Domain, ExecutionError> {
        self.domains.get(&id).ok_or(ExecutionError::UnknownDomain(id.0))
    }

    fn domain_mut(&mut self, id: DomainId) -> Result<&mut Domain, ExecutionError> {
        self.domains
            .get_mut(&id)
            .ok_or(ExecutionError::UnknownDomain(id.0))
    }

    /// The domain operator `id` stakes on.
    pub fn operator_domain(&self, id: OperatorId) -> Result<DomainId, ExecutionError> {
        self.operators
            .get(&id)
            .copied()
            .ok_or(ExecutionError::UnknownOperator(id.0))
    }

    fn pools_of(&mut self, id: OperatorId) -> Result<&mut Domain, ExecutionError> {
        let domain = self.operator_domain(id)?;
        self.domain_mut(domain)
    }

    /// Creates a domain owned by `owner` in consensus block `created_at` (hash `created_hash`), whose
    /// module's genesis state (with the initial balances) has `genesis_state_root`. Returns its id and
    /// the sum of the initial balances, which the caller burns from the owner: it becomes the domain's
    /// balance on consensus.
    pub fn instantiate(
        &mut self,
        owner: Address,
        config: DomainConfig,
        created_at: BlockNumber,
        created_hash: Blake3Hash,
        genesis_state_root: Blake3Hash,
    ) -> Result<(DomainId, Balance), ExecutionError> {
        if config.name.is_empty() || config.name.len() > MAX_NAME_LEN {
            return Err(ExecutionError::DomainName {
                len: config.name.len(),
                max: MAX_NAME_LEN,
            });
        }
        let SlotProbability {
            numerator,
            denominator,
        } = config.slot_probability;
        if numerator == 0 || numerator > denominator {
            return Err(ExecutionError::SlotProbability {
                numerator,
                denominator,
            });
        }
        if config.initial_balances.len() > MAX_INITIAL_BALANCES {
            return Err(ExecutionError::TooManyInitialBalances {
                count: config.initial_balances.len(),
                max: MAX_INITIAL_BALANCES,
            });
        }
        if config.module == ModuleId::Evm && config.evm_chain_id.is_none() {
            return Err(ExecutionError::MissingChainId);
        }
        let mut total: Balance = 0;
        for (account, amount) in &config.initial_balances {
            if account.is_empty() || account.len() > MAX_ACCOUNT_LEN {
                return Err(ExecutionError::DomainAccount { len: account.len() });
            }
            total = total
                .checked_add(*amount)
                .ok_or(ExecutionError::Overflow(owner))?;
        }
        // Bundle limits: the block's, shared among the bundles expected per block (at least one).
        let per_block = numerator
            .saturating_mul(self.params.slots_per_block)
            .div_ceil(denominator)
            .max(1);
        let size = config
            .max_bundle_size
            .unwrap_or(self.params.max_block_size / u32::try_from(per_block).unwrap_or(u32::MAX));
        let weight = config
            .max_bundle_weight
            .unwrap_or(self.params.max_block_weight / per_block);
        if size > self.params.max_block_size || weight > self.params.max_block_weight {
            return Err(ExecutionError::BundleLimits { size, weight });
        }
        let id = DomainId(self.next_domain);
        self.next_domain = self
            .next_domain
            .checked_add(1)
            .ok_or(ExecutionError::UnknownDomain(u32::MAX))?;
        let genesis = ExecutionReceipt::genesis(genesis_state_root, created_at, created_hash);
        self.domains.insert(
            id,
            Domain {
                config,
                owner,
                created_at,
                frozen: false,
                bundle_limits: (size, weight),
                staking: Staking::new(StakingParams {
                    unlock_delay: self.params.challenge_period,
                    ..self.params.staking
                }),
                block_tree: BlockTree::new(genesis),
                head_domain_number: DomainBlockNumber(0),
                head_consensus_number: created_at,
                last_slots: BTreeMap::new(),
                inbox: BTreeMap::new(),
                balance: total,
            },
        );
        Ok((id, total))
    }

    /// Registers an operator on `domain` for `owner` with a first stake of `amount` (the caller takes it
    /// from the owner). Its stake counts from the end of the domain's epoch.
    pub fn register_operator(
        &mut self,
        domain: DomainId,
        owner: Address,
        signing_key: [u8; 32],
        amount: Balance,
        nomination_tax: u8,
        minimum_nominator_stake: Balance,
    ) -> Result<OperatorId, ExecutionError> {
        if schnorrkel::PublicKey::from_bytes(&signing_key).is_err() {
            return Err(ExecutionError::InvalidOperatorKey);
        }
        let id = OperatorId(self.next_operator);
        let entry = self.domain_mut(domain)?;
        if let AllowList::Only(allowed) = &entry.config.allow_list
            && !allowed.contains(&owner)
        {
            return Err(ExecutionError::NotAllowedToOperate(owner));
        }
        entry.staking.register(
            id,
            owner,
            signing_key,
            amount,
            nomination_tax,
            minimum_nominator_stake,
        )?;
        self.operators.insert(id, domain);
        self.next_operator += 1;
        Ok(id)
    }

    /// `who` deposits `amount` with operator `id` (the caller takes it from `who`).
    pub fn nominate(&mut self, id: OperatorId, who: Address, amount: Balance) -> Result<(), ExecutionError> {
        self.pools_of(id)?.staking.nominate(id, who, amount)
    }

    /// `who` asks to withdraw `shares` from operator `id` at the end of the epoch.
    pub fn withdraw(&mut self, id: OperatorId, who: Address, shares: u128) -> Result<(), ExecutionError> {
        self.pools_of(id)?.staking.withdraw(id, who, shares)
    }

    /// Pays `who` what it has unlocked with operator `id` at the domain's head (the caller credits it).
    pub fn unlock(&mut self, id: OperatorId, who: Address) -> Result<Balance, ExecutionError> {
        let domain = self.pools_of(id)?;
        let head = domain.head_domain_number;
        let paid = domain.staking.unlock(id, who, head)?;
        if paid == 0 {
            return Err(ExecutionError::NothingToUnlock(id.0));
        }
        Ok(paid)
    }

    /// Deregisters operator `id`, asked by `who` (its owner only).
    pub fn deregister(&mut self, id: OperatorId, who: Address) -> Result<(), ExecutionError> {
        let domain = self.pools_of(id)?;
        let owner = domain
            .staking
            .operators
            .get(&id)
            .map(|operator| operator.owner)
            .ok_or(ExecutionError::UnknownOperator(id.0))?;
        if owner != who {
            return Err(ExecutionError::NotOperatorOwner(id.0));
        }
        let head = domain.head_domain_number;
        domain.staking.deregister(id, head)
    }

    /// Everything the domains hold on consensus: pools, unlock queues and domain balances.
    pub fn held(&self) -> Balance {
        self.domains
            .values()
            .map(|domain| domain.staking.held().saturating_add(domain.balance))
            .fold(0, Balance::saturating_add)
    }
}
