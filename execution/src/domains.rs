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
//!   [`balances`] is the smallest one, [`evm`] runs Ethereum transactions on revm.

pub mod balances;
pub mod bundle;
pub mod derive;
pub mod election;
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
