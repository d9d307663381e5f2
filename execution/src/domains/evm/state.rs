//! The EVM domain's state in the protocol state tree, and how a transaction's revm state diff becomes
//! tree changes.
//!
//! Keys are `H(domain_key_ctx, kind ‖ data)`:
//!
//! | kind | data | entry |
//! |---|---|---|
//! | 0 | address (20 bytes) | [`Entry::Account`]: nonce, balance, code hash |
//! | 1 | code hash (32 bytes, keccak-256) | [`Entry::Code`]: the deployed bytecode |
//! | 2 | address ‖ slot (32 bytes, big-endian) | [`Entry::Storage`]: a non-zero slot value |
//! | 3 | nothing | [`Entry::Environment`]: block number and timestamp (written by initialization) |
//!
//! Empty accounts (EIP-161: nonce 0, balance 0, no code) and zero slots are absent from the tree, so
//! "absent" and "default" are one state and one root. Code is content-addressed and never deleted
//! (contracts sharing code share the entry).

use std::cell::RefCell;
use std::collections::BTreeSet;

use alloy_primitives::map::{AddressMap, HashMap};
use alloy_primitives::{Address, B256, KECCAK256_EMPTY, U256};
use borsh::{BorshDeserialize, BorshSerialize};
use revm::state::{AccountInfo, Bytecode};

use acre_consensus::codec;
use acre_consensus::hashing::{self, HashContext};
use acre_consensus::state_tree::{PersistentStateTree, StateKey, value_hash};

use crate::domains::module::StepWitness;
use crate::error::ExecutionError;

/// Largest encoded state entry a witness value may hold (deployed code is at most 24 KiB).
const MAX_ENTRY_SIZE: usize = 64 * 1024;

/// An account: what revm's `AccountInfo` holds besides the code itself.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct AccountEntry {
    /// The nonce.
    pub nonce: u64,
    /// The balance, a 256-bit little-endian integer (in wei).
    pub balance: [u8; 32],
    /// keccak-256 of the code (`KECCAK256_EMPTY` for an account without code).
    pub code_hash: [u8; 32],
}

impl AccountEntry {
    /// The balance.
    pub fn balance(&self) -> U256 {
        U256::from_le_bytes(self.balance)
    }

    /// The entry of revm's `info`.
    pub fn from_info(info: &AccountInfo) -> Self {
        Self {
            nonce: info.nonce,
            balance: info.balance.to_le_bytes(),
            code_hash: info.code_hash.0,
        }
    }

    /// revm's account info; the code is left for revm to ask by hash unless there is none.
    pub(super) fn info(&self) -> AccountInfo {
        let code_hash = B256::from(self.code_hash);
        AccountInfo {
            balance: self.balance(),
            nonce: self.nonce,
            code_hash,
            code: (code_hash == KECCAK256_EMPTY).then(Bytecode::default),
            ..AccountInfo::default()
        }
    }

    /// EIP-161 emptiness: such an account is not stored.
    pub fn is_empty(&self) -> bool {
        self.nonce == 0 && self.balance == [0; 32] && self.code_hash == KECCAK256_EMPTY.0
    }
}

/// One state entry.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Entry {
    /// An account.
    Account(AccountEntry),
    /// Deployed bytecode, by its hash.
    Code(Vec<u8>),
    /// A non-zero storage slot, a 256-bit little-endian integer.
    Storage([u8; 32]),
    /// The block environment: number and timestamp (milliseconds).
    Environment {
        /// The domain block number.
        number: u64,
        /// The block's timestamp in milliseconds.
        timestamp_ms: u64,
    },
}

/// An EVM domain's state: the persistent state tree with each leaf's entry as payload.
pub type EvmState = PersistentStateTree<Entry>;

fn key(kind: u8, parts: &[&[u8]]) -> StateKey {
    let mut data = Vec::with_capacity(1 + 20 + 32);
    data.push(kind);
    for part in parts {
        data.extend_from_slice(part);
    }
    hashing::hash(HashContext::DomainStateKey, &data).0
}

/// The state key of the account at `address`.
pub fn account_key(address: &Address) -> StateKey {
    key(0, &[address.as_slice()])
}

/// The state key of the code with hash `code_hash`.
pub fn code_key(code_hash: &B256) -> StateKey {
    key(1, &[code_hash.as_slice()])
}

/// The state key of storage slot `slot` of `address`.
pub fn storage_key(address: &Address, slot: &U256) -> StateKey {
    key(2, &[address.as_slice(), &slot.to_be_bytes::<32>()])
}

/// The state key of the block environment.
pub fn environment_key() -> StateKey {
    key(3, &[])
}

/// A memo of state keys for one revm instance (a block or a step): revm asks for the same accounts
/// (senders, the fee collector, a hot contract) and slots again and again, and the diff needs their
/// keys once more, while a key costs a BLAKE3 compression.
#[derive(Debug, Default)]
pub(super) struct KeyCache {
    accounts: AddressMap<StateKey>,
    slots: HashMap<(Address, U256), StateKey>,
}

impl KeyCache {
    /// [`account_key`], memoised.
    pub(super) fn account(&mut self, address: &Address) -> StateKey {
        *self
            .accounts
            .entry(*address)
            .or_insert_with(|| account_key(address))
    }

    /// [`storage_key`], memoised.
    pub(super) fn slot(&mut self, address: &Address, slot: &U256) -> StateKey {
        *self
            .slots
            .entry((*address, *slot))
            .or_insert_with(|| storage_key(address, slot))
    }
}

/// A change of one key: its new entry, `None` to remove it.
pub(super) type EntryChange = (StateKey, Option<Entry>);

/// Reads and writes entries: over a full state, a witness, or a full state recording what it touches.
pub(super) trait Entries {
    /// The entry at `key`.
    fn read(&self, key: &StateKey) -> Result<Option<Entry>, ExecutionError>;
    /// Applies a batch of changes (distinct keys) at once: the tree hashes each changed path once.
    fn apply(&mut self, changes: Vec<EntryChange>) -> Result<(), ExecutionError>;
}

impl Entries for EvmState {
    fn read(&self, key: &StateKey) -> Result<Option<Entry>, ExecutionError> {
        Ok(self.value(key).cloned())
    }

    fn apply(&mut self, changes: Vec<EntryChange>) -> Result<(), ExecutionError> {
        self.update(changes.into_iter().map(|(key, entry)| {
            (
                key,
                entry.map(|entry| (value_hash(&codec::encode(&entry)), entry)),
            )
        }));
        Ok(())
    }
}

/// A step's witness as a state: reads are checked against the witness's leaf hashes.
#[derive(Debug)]
pub(super) struct WitnessEntries {
    pub(super) witness: StepWitness,
}

impl Entries for WitnessEntries {
    fn read(&self, key: &StateKey) -> Result<Option<Entry>, ExecutionError> {
        let Some(bytes) = self.witness.value(key)? else {
            return Ok(None);
        };
        codec::decode_bounded("EVM state entry", bytes, MAX_ENTRY_SIZE)
            .map(Some)
            .map_err(|_| ExecutionError::WitnessValue)
    }

    fn apply(&mut self, changes: Vec<EntryChange>) -> Result<(), ExecutionError> {
        for (key, entry) in changes {
            let bytes = entry.as_ref().map(codec::encode);
            self.witness
                .tree
                .set(&key, bytes.as_deref().map(value_hash))
                .map_err(|_| ExecutionError::WitnessIncomplete)?;
            match bytes {
                Some(bytes) => self.witness.values.insert(key, bytes),
                None => self.witness.values.remove(&key),
            };
        }
        Ok(())
    }
}

/// A full state that records every key read or written: running a step over it gives the keys its
/// witness must cover.
#[derive(Debug)]
pub(super) struct RecordingEntries {
    pub(super) state: EvmState,
    pub(super) keys: RefCell<BTreeSet<StateKey>>,
}

impl Entries for RecordingEntries {
    fn read(&self, key: &StateKey) -> Result<Option<Entry>, ExecutionError> {
        self.keys.borrow_mut().insert(*key);
        self.state.read(key)
    }

    fn apply(&mut self, changes: Vec<EntryChange>) -> Result<(), ExecutionError> {
        self.keys.borrow_mut().extend(changes.iter().map(|(key, _)| *key));
        self.state.apply(changes)
    }
}

/// The account under `key` (`None`: empty).
pub(super) fn read_account(
    entries: &impl Entries,
    key: &StateKey,
) -> Result<Option<AccountEntry>, ExecutionError> {
    match entries.read(key)? {
        None => Ok(None),
        Some(Entry::Account(account)) => Ok(Some(account)),
        Some(_) => Err(ExecutionError::EvmStateCorrupt),
    }
}

/// The tree changes of a transaction's state diff, read against `entries` (the state before it) so
/// that unchanged accounts cost no hashing. Accounts revm only loaded are skipped; a self-destructed
/// account loses its entry and the slots the transaction touched (since Cancun only an account created
/// in the same transaction can self-destruct, so it has no other slots).
pub(super) fn diff_changes(
    entries: &impl Entries,
    keys: &mut KeyCache,
    diff: &revm::state::EvmState,
) -> Result<Vec<EntryChange>, ExecutionError> {
    let mut changes = Vec::new();
    for (address, account) in diff {
        if !account.is_touched() {
            continue;
        }
        let address_key = keys.account(address);
        if account.is_selfdestructed() {
            changes.push((address_key, None));
            changes.extend(
                account
                    .storage
                    .keys()
                    .map(|slot| (keys.slot(address, slot), None)),
            );
            continue;
        }
        for (slot, value) in &account.storage {
            if value.is_changed() {
                let present = value.present_value();
                changes.push((
                    keys.slot(address, slot),
                    (!present.is_zero()).then(|| Entry::Storage(present.to_le_bytes())),
                ));
            }
        }
        if account.is_created()
            && let Some(code) = &account.info.code
            && !code.is_empty()
        {
            let key = code_key(&account.info.code_hash);
            if entries.read(&key)?.is_none() {
                changes.push((key, Some(Entry::Code(code.original_bytes().to_vec()))));
            }
        }
        let entry = AccountEntry::from_info(&account.info);
        let new = (!entry.is_empty()).then_some(Entry::Account(entry));
        if entries.read(&address_key)? != new {
            changes.push((address_key, new));
        }
    }
    Ok(changes)
}
