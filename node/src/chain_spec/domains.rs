//! The `domains` section of a chain spec: the domain rules' numbers and the domains (with their first
//! operators) that exist from genesis.
//!
//! A chain without this section has no domain registry: its state root is its accounts' root and
//! domains calls are refused ([`acre_execution::ExecutionError::NoDomains`]). A chain with it carries the
//! registry in its state from genesis. Genesis domains and stakes are created with the chain (not taken
//! from endowments), and each genesis domain's first epoch ends at genesis, so its operators can be
//! elected from the first slot.

use acre_consensus::BlockNumber;
use acre_consensus::hashing::Blake3Hash;
use acre_execution::Address;
use acre_execution::domains::election::SlotProbability;
use acre_execution::domains::genesis_state_root;
use acre_execution::domains::module::ModuleId;
use acre_execution::domains::registry::{AllowList, DomainConfig, DomainParams, Domains};
use acre_execution::domains::{DomainBlockNumber, DomainId};
use acre_rpc_api::{Balance, Hex32, HexBytes};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Which numbers the domain rules use (DOMAINS.md 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DomainPreset {
    /// Short epochs and challenge period, for development and tests.
    Dev,
    /// Mainnet's numbers.
    Mainnet,
}

/// The domains of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainsSpec {
    /// The rules' numbers.
    pub params: DomainPreset,
    /// Domains that exist from genesis, given ids 0, 1, ... in order.
    #[serde(default)]
    pub genesis: Vec<GenesisDomain>,
}

/// A balance a genesis domain starts with, in its module's account encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainBalance {
    /// The account (32 bytes for the balances module, 20 for the EVM).
    pub account: HexBytes,
    /// Its balance.
    pub balance: Balance,
}

/// An operator registered at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisOperator {
    /// The consensus account that owns it.
    pub owner: Hex32,
    /// Its sr25519 public key (bundle signatures and the election VRF).
    pub signing_key: Hex32,
    /// Its stake.
    pub stake: Balance,
    /// Percent of rewards it keeps before sharing with nominators.
    pub nomination_tax: u8,
    /// The least a nominator may deposit with it.
    pub minimum_nominator_stake: Balance,
}

/// A domain that exists from genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisDomain {
    /// Its name (at most 32 bytes).
    pub name: String,
    /// The module it runs.
    pub module: ModuleId,
    /// Its owner on consensus.
    pub owner: Hex32,
    /// Expected bundles per slot.
    pub slot_probability: SlotProbability,
    /// The EVM chain id (EVM domains).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evm_chain_id: Option<u64>,
    /// Balances it starts with.
    #[serde(default)]
    pub balances: Vec<DomainBalance>,
    /// Its operators at genesis.
    #[serde(default)]
    pub operators: Vec<GenesisOperator>,
}

/// The dev chain's EVM domain's chain id: Anvil's and Hardhat's, so tools set up for a local
/// development chain work with `acre dev` unchanged.
pub const DEV_EVM_CHAIN_ID: u64 = 31_337;

/// Wei each development account holds on the dev chain's EVM domain (10,000 ETH, as Anvil gives).
pub const DEV_EVM_BALANCE: u128 = 10_000 * 1_000_000_000_000_000_000;

/// Stake of the dev EVM domain's genesis operator (alice's).
pub const DEV_OPERATOR_STAKE: u128 = 1_000 * acre_execution::staking::ACRE;

/// The dev chain's domains: one EVM domain (id 0, chain id [`DEV_EVM_CHAIN_ID`]) whose ten development
/// accounts of the `test … junk` mnemonic hold [`DEV_EVM_BALANCE`] each, with alice's operator (id 0)
/// registered at genesis, its key derived from alice's dev key as `acre operator register` derives it.
pub fn dev_domains() -> DomainsSpec {
    let alice = super::dev_key("alice");
    let owner = Hex32(Address::of(&alice).0);
    DomainsSpec {
        params: DomainPreset::Dev,
        genesis: vec![GenesisDomain {
            name: "evm".into(),
            module: ModuleId::Evm,
            owner,
            slot_probability: SlotProbability {
                numerator: 1,
                denominator: 1,
            },
            evm_chain_id: Some(DEV_EVM_CHAIN_ID),
            balances: crate::domain::dev_accounts()
                .into_iter()
                .map(|(address, _)| DomainBalance {
                    account: HexBytes(address.to_vec()),
                    balance: Balance(DEV_EVM_BALANCE),
                })
                .collect(),
            operators: vec![GenesisOperator {
                owner,
                signing_key: Hex32(
                    acre_execution::domains::election::operator_keypair(&alice.to_bytes())
                        .public
                        .to_bytes(),
                ),
                stake: Balance(DEV_OPERATOR_STAKE),
                nomination_tax: 5,
                minimum_nominator_stake: Balance(acre_execution::staking::ACRE),
            }],
        }],
    }
}

impl DomainsSpec {
    /// The rules' numbers.
    pub fn params(&self) -> DomainParams {
        match self.params {
            DomainPreset::Dev => DomainParams::dev(),
            DomainPreset::Mainnet => DomainParams::mainnet(),
        }
    }

    /// The registry at genesis: every domain instantiated (referring to block 0 with a zero hash, as
    /// genesis's own hash depends on this registry), its operators registered, its first epoch ended.
    pub fn registry(&self) -> Result<Domains, Error> {
        let mut domains = Domains::new(self.params());
        for (index, domain) in self.genesis.iter().enumerate() {
            let refused = |error: acre_execution::ExecutionError| {
                Error::ChainSpec(format!("genesis domain {index} ({}): {error}", domain.name))
            };
            let config = DomainConfig {
                name: domain.name.clone(),
                module: domain.module,
                slot_probability: domain.slot_probability,
                max_bundle_size: None,
                max_bundle_weight: None,
                allow_list: AllowList::Anyone,
                initial_balances: domain
                    .balances
                    .iter()
                    .map(|balance| (balance.account.0.clone(), balance.balance.0))
                    .collect(),
                evm_chain_id: domain.evm_chain_id,
            };
            let root = genesis_state_root(&config).map_err(refused)?;
            let (id, _) = domains
                .instantiate(
                    Address(domain.owner.0),
                    config,
                    BlockNumber(0),
                    Blake3Hash::ZERO,
                    root,
                )
                .map_err(refused)?;
            for operator in &domain.operators {
                domains
                    .register_operator(
                        id,
                        Address(operator.owner.0),
                        operator.signing_key.0,
                        operator.stake.0,
                        operator.nomination_tax,
                        operator.minimum_nominator_stake.0,
                    )
                    .map_err(refused)?;
            }
            end_first_epoch(&mut domains, id).map_err(refused)?;
        }
        Ok(domains)
    }
}

fn end_first_epoch(domains: &mut Domains, id: DomainId) -> Result<(), acre_execution::ExecutionError> {
    let domain = domains
        .domains
        .get_mut(&id)
        .ok_or(acre_execution::ExecutionError::UnknownDomain(id.0))?;
    domain.staking.end_epoch(DomainBlockNumber(0))
}
