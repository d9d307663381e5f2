//! Account state as the runtime sees it.
//!
//! The runtime reads and writes accounts through [`AccountStore`]; the node backs it with its
//! authenticated state (whose root goes into headers), tests with [`InMemoryAccounts`].

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::transaction::Address;

/// One account.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Account {
    /// Spendable balance.
    pub balance: u128,
    /// Number of transactions sent; the next one must carry this nonce.
    pub nonce: u64,
}

/// Reads and writes accounts. Missing accounts read as the default (zero balance, nonce 0).
pub trait AccountStore {
    /// The account at `address`.
    fn account(&self, address: &Address) -> Account;
    /// Replaces the account at `address`.
    fn set_account(&mut self, address: Address, account: Account);
}

/// Accounts in a sorted map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InMemoryAccounts(pub BTreeMap<Address, Account>);

impl AccountStore for InMemoryAccounts {
    fn account(&self, address: &Address) -> Account {
        self.0.get(address).copied().unwrap_or_default()
    }

    fn set_account(&mut self, address: Address, account: Account) {
        self.0.insert(address, account);
    }
}
