//! Domains: decoupled execution (DOMAINS.md).
//!
//! The consensus chain orders domain transactions without running them: staked operators win per-slot
//! elections, submit bundles through consensus blocks, and every consensus block with bundles of a domain
//! defines exactly one domain block that every domain node derives the same way. Execution receipts tie
//! domain state back to consensus so that it can be challenged.
//!
//! - [`module`]: the [`ExecutionModule`](module::ExecutionModule) trait a domain runtime implements.

pub mod module;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// A domain's sequential id.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct DomainId(pub u32);

pub use crate::staking::{DomainBlockNumber, OperatorId};
