//! Domains: decoupled execution (DOMAINS.md).
//!
//! The consensus chain orders domain transactions without running them: staked operators win per-slot
//! elections, submit bundles through consensus blocks, and every consensus block with bundles of a domain
//! defines exactly one domain block that every domain node derives the same way. Execution receipts tie
//! domain state back to consensus so that it can be challenged.
//!
//! - [`registry`]: domains, operators and bundles on consensus: instantiation, operator calls, bundle
//!   checks in the spec's order, the execution inbox, receipts and their confirmation.
//! - [`election`]: who may submit a bundle in a slot (schnorrkel VRF, stake-weighted threshold).
//! - [`bundle`]: the bundle format.
//! - [`receipt`]: execution receipts and the block tree.
//! - [`derive`]: a domain block from a consensus block's bundles, the same on every domain node.
//! - [`module`]: the [`ExecutionModule`](module::ExecutionModule) trait a domain runtime implements;
//!   [`balances`] is the smallest one; `evm` (feature `evm`, on by default) runs Ethereum
//!   transactions on revm.

pub mod balances;
pub mod bundle;
pub mod derive;
pub mod election;
#[cfg(feature = "evm")]
pub mod evm;
pub mod module;
pub mod receipt;
pub mod registry;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// A domain's sequential id.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct DomainId(pub u32);

pub use crate::staking::{DomainBlockNumber, OperatorId};

use acre_consensus::hashing::{self, Blake3Hash, HashContext};

use crate::domains::balances::BalancesModule;
use crate::domains::module::{ExecutionModule, ModuleId};
use crate::domains::registry::DomainConfig;
use crate::error::ExecutionError;

/// A domain's chain identity, what its transactions sign for: `H(chain_ctx, consensus genesis hash ‖
/// domain id LE)`. A domain transaction never verifies on another domain or another network.
pub fn domain_chain(consensus_genesis: &Blake3Hash, id: DomainId) -> Blake3Hash {
    let mut data = [0u8; 36];
    data[..32].copy_from_slice(&consensus_genesis.0);
    data[32..].copy_from_slice(&id.0.to_le_bytes());
    hashing::hash(HashContext::DomainChain, &data)
}

/// The state root of a new domain's genesis (its module's genesis with the initial balances): what its
/// genesis receipt commits to. It does not depend on the consensus chain's genesis hash (a module's
/// chain identity only checks signatures), so a chain spec's genesis domains have roots before the
/// genesis block has a hash.
pub fn genesis_state_root(config: &DomainConfig) -> Result<Blake3Hash, ExecutionError> {
    match config.module {
        ModuleId::Balances => {
            let module = BalancesModule {
                chain: Blake3Hash::ZERO,
            };
            let state = module.genesis(&config.initial_balances)?;
            Ok(module.state_root(&state))
        }
        #[cfg(feature = "evm")]
        ModuleId::Evm => {
            let chain_id = config.evm_chain_id.ok_or(ExecutionError::MissingChainId)?;
            let module = evm::EvmModule::for_domain(chain_id);
            let state = module.genesis(&config.initial_balances)?;
            Ok(module.state_root(&state))
        }
        #[cfg(not(feature = "evm"))]
        ModuleId::Evm => Err(ExecutionError::ModuleUnavailable("evm")),
        ModuleId::AutoId => Err(ExecutionError::ModuleUnavailable("auto-id")),
    }
}
