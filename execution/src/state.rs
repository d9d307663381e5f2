//! Account state as the runtime sees it.
//!
//! The runtime reads and writes accounts through [`AccountStore`]; the node backs it with its
//! authenticated state (whose root goes into headers), tests with [`InMemoryAccounts`].

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use acre_consensus::BlockNumber;
use acre_consensus::hashing::Blake3Hash;

use crate::domains::registry::{DomainParams, Domains};
use crate::transaction::Address;

/// One account.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Account {
    /// Spendable balance: zero or at least the existential deposit.
    pub balance: u128,
    /// Number of transactions sent; the next one must carry this nonce.
    pub nonce: u64,
}

impl Account {
    /// Whether the account holds a balance. An account with a zero balance is treated as absent when it
    /// receives funds (the transfer must carry the existential deposit), whatever its nonce.
    pub fn is_live(&self) -> bool {
        self.balance > 0
    }
}

/// Reads and writes accounts. Missing accounts read as the default (zero balance, nonce 0).
pub trait AccountStore {
    /// The account at `address`.
    fn account(&self, address: &Address) -> Account;
    /// Replaces the account at `address`. Storing the default account removes the entry, so "absent"
    /// and "zero" have one representation (and one state root).
    fn set_account(&mut self, address: Address, account: Account);
    /// The domain registry, for domain calls; `None` where the chain has no domains (their calls fail
    /// with [`crate::ExecutionError::NoDomains`]).
    fn domains_mut(&mut self) -> Option<&mut Domains> {
        None
    }
    /// The block being applied: its number and its parent's hash (what a domain created in it refers
    /// to).
    fn current_block(&self) -> (BlockNumber, Blake3Hash) {
        (BlockNumber::new(0), Blake3Hash::ZERO)
    }
}

/// Accounts, the domain registry and the block being applied, in memory: the runtime's whole state for
/// tests and tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InMemoryState {
    /// The accounts.
    pub accounts: InMemoryAccounts,
    /// The domain registry.
    pub domains: Domains,
    /// The block being applied (number, parent hash).
    pub block: (BlockNumber, Blake3Hash),
}

impl InMemoryState {
    /// No accounts, no domains.
    pub fn new(params: DomainParams) -> Self {
        Self {
            accounts: InMemoryAccounts::default(),
            domains: Domains::new(params),
            block: (BlockNumber::new(0), Blake3Hash::ZERO),
        }
    }

    /// Every balance on consensus: accounts plus what the domains hold (pools, unlocks, domain
    /// balances).
    pub fn total_issuance(&self) -> u128 {
        self.accounts.total_issuance().saturating_add(self.domains.held())
    }
}

impl AccountStore for InMemoryState {
    fn account(&self, address: &Address) -> Account {
        self.accounts.account(address)
    }

    fn set_account(&mut self, address: Address, account: Account) {
        self.accounts.set_account(address, account);
    }

    fn domains_mut(&mut self) -> Option<&mut Domains> {
        Some(&mut self.domains)
    }

    fn current_block(&self) -> (BlockNumber, Blake3Hash) {
        self.block
    }
}

/// Accounts in a sorted map, holding no default (empty) entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InMemoryAccounts(pub BTreeMap<Address, Account>);

/// The state key of an account: `H(account_key_ctx, address)`.
pub fn account_key(address: &Address) -> acre_consensus::Blake3Hash {
    acre_consensus::hashing::hash(acre_consensus::hashing::HashContext::AccountKey, &address.0)
}

/// The state root of a set of accounts (spec 8), recomputed over all of them: the compact sparse Merkle tree
/// of `acre_consensus::state_tree` over `account_key(address) → H(value_ctx, borsh(account))`, without
/// default (empty) accounts. This is the definition; the node keeps the same root incrementally.
pub fn state_root(state: &InMemoryAccounts) -> acre_consensus::Blake3Hash {
    let mut tree = acre_consensus::state_tree::StateTree::new();
    for (address, account) in &state.0 {
        if *account != Account::default() {
            tree.insert(
                account_key(address).0,
                acre_consensus::state_tree::value_hash(&acre_consensus::codec::encode(account)),
            );
        }
    }
    tree.root()
}

impl InMemoryAccounts {
    /// Sum of all balances (total issuance), saturating.
    pub fn total_issuance(&self) -> u128 {
        self.0
            .values()
            .fold(0u128, |total, account| total.saturating_add(account.balance))
    }
}

impl AccountStore for InMemoryAccounts {
    fn account(&self, address: &Address) -> Account {
        self.0.get(address).copied().unwrap_or_default()
    }

    fn set_account(&mut self, address: Address, account: Account) {
        if account == Account::default() {
            self.0.remove(&address);
        } else {
            self.0.insert(address, account);
        }
    }
}
