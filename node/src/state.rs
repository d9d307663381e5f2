//! The consensus chain's account state as the node stores it.
//!
//! The database holds the accounts of the best block (table [`Accounts`]) and, per block, the
//! [`AccountChange`]s the block made (table [`BlockDiffs`]). The state of any other stored block is reached
//! from the best state by reverting diffs down to the common ancestor and applying them up the other
//! branch, so forks cost their own diffs, not a copy of the state. When the best chain moves, the
//! [`Accounts`] table moves with it in the same write transaction as the import.
//!
//! The state root is the compact sparse Merkle tree of `acre_consensus::state_tree` over
//! `H(account_key_ctx, address) → H(value_ctx, borsh(account))`. Accounts equal to the default (zero balance,
//! nonce 0) are absent, so touching an account without changing it leaves the root alone. The root is
//! recomputed over every account per block: linear in the number of accounts, which is fine for the dev
//! chain and is the next thing to make incremental (see `docs/decisions.md`).

use acre_consensus::codec;
use acre_consensus::hashing::{self, Blake3Hash, HashContext};
use acre_consensus::state_tree::{StateTree, value_hash};
use acre_execution::{Account, Address, InMemoryAccounts};
use acre_storage::db::{ReadTx, WriteTx};
use borsh::{BorshDeserialize, BorshSerialize};

acre_storage::table!(
    /// Accounts of the best block, by address.
    Accounts: "accounts", Blake3Hash => Vec<u8>
);

acre_storage::table!(
    /// The account changes each block made, by block hash.
    BlockDiffs: "block-diffs", Blake3Hash => Vec<u8>
);

/// One account's change in one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct AccountChange {
    /// The account.
    pub address: Address,
    /// Before the block.
    pub before: Account,
    /// After the block.
    pub after: Account,
}

/// The state key of an account.
pub fn account_key(address: &Address) -> Blake3Hash {
    hashing::hash(HashContext::AccountKey, &address.0)
}

/// The state root of a set of accounts.
pub fn root(state: &InMemoryAccounts) -> Blake3Hash {
    let mut tree = StateTree::new();
    for (address, account) in &state.0 {
        if *account != Account::default() {
            tree.insert(account_key(address).0, value_hash(&codec::encode(account)));
        }
    }
    tree.root()
}

/// What changed between two states (accounts present in either).
pub fn diff(before: &InMemoryAccounts, after: &InMemoryAccounts) -> Vec<AccountChange> {
    let mut changes = Vec::new();
    for (address, account) in &after.0 {
        let old = before.0.get(address).copied().unwrap_or_default();
        if old != *account {
            changes.push(AccountChange {
                address: *address,
                before: old,
                after: *account,
            });
        }
    }
    for (address, account) in &before.0 {
        if !after.0.contains_key(address) && *account != Account::default() {
            changes.push(AccountChange {
                address: *address,
                before: *account,
                after: Account::default(),
            });
        }
    }
    changes
}

fn set(state: &mut InMemoryAccounts, address: Address, account: Account) {
    if account == Account::default() {
        state.0.remove(&address);
    } else {
        state.0.insert(address, account);
    }
}

/// Applies a block's changes.
pub fn apply(state: &mut InMemoryAccounts, changes: &[AccountChange]) {
    for change in changes {
        set(state, change.address, change.after);
    }
}

/// Reverts a block's changes.
pub fn revert(state: &mut InMemoryAccounts, changes: &[AccountChange]) {
    for change in changes.iter().rev() {
        set(state, change.address, change.before);
    }
}

/// Encodes a block's changes.
pub fn encode_diff(changes: &[AccountChange]) -> Vec<u8> {
    codec::encode(&changes.to_vec())
}

/// Reads a block's changes.
pub fn read_diff(read: &ReadTx, block: &Blake3Hash) -> Result<Vec<AccountChange>, crate::Error> {
    let bytes = read
        .get::<BlockDiffs>(block)?
        .ok_or_else(|| crate::Error::Corrupt(format!("no state diff for block {block}")))?;
    Ok(codec::decode_bounded("state diff", &bytes, usize::MAX)?)
}

/// Loads the best block's accounts.
pub fn load_best(read: &ReadTx) -> Result<InMemoryAccounts, crate::Error> {
    let mut state = InMemoryAccounts::default();
    for (_, bytes) in read.all::<Accounts>()? {
        let (address, account): (Address, Account) = codec::decode_bounded("account", &bytes, 128)?;
        state.0.insert(address, account);
    }
    Ok(state)
}

/// Moves the stored best state by `changes` (applied, or reverted when `forward` is false).
pub fn write_changes(
    tx: &WriteTx,
    changes: &[AccountChange],
    forward: bool,
) -> Result<(), acre_storage::Error> {
    let ordered: Box<dyn Iterator<Item = &AccountChange>> = if forward {
        Box::new(changes.iter())
    } else {
        Box::new(changes.iter().rev())
    };
    for change in ordered {
        let account = if forward { change.after } else { change.before };
        let key = Blake3Hash(change.address.0);
        if account == Account::default() {
            tx.delete::<Accounts>(&key)?;
        } else {
            tx.put::<Accounts>(&key, &codec::encode(&(change.address, account)))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_apply_and_revert_and_default_accounts_do_not_count() {
        let a = Address([1; 32]);
        let b = Address([2; 32]);
        let mut before = InMemoryAccounts::default();
        before.0.insert(
            a,
            Account {
                balance: 10,
                nonce: 0,
            },
        );
        let mut after = before.clone();
        after.0.insert(a, Account { balance: 4, nonce: 1 });
        after.0.insert(b, Account { balance: 6, nonce: 0 });
        let changes = diff(&before, &after);
        assert_eq!(changes.len(), 2);

        let mut state = before.clone();
        apply(&mut state, &changes);
        assert_eq!(root(&state), root(&after));
        revert(&mut state, &changes);
        assert_eq!(state, before);

        let mut touched = before.clone();
        touched.0.insert(Address([3; 32]), Account::default());
        assert_eq!(root(&touched), root(&before));
        assert_ne!(root(&after), root(&before));
    }
}
