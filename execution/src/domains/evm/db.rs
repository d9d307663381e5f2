//! revm's `Database` over state entries: revm asks for accounts, code and slots; the adapter answers
//! from the state tree (or a witness of it). It owns its entries so one revm instance runs a whole
//! block: after each transaction the block executor applies the diff through [`StateDb::entries`].

use alloy_primitives::map::B256Map;
use alloy_primitives::{Address, B256, KECCAK256_EMPTY, U256};
use revm::Database;
use revm::database_interface::DBErrorMarker;
use revm::state::{AccountInfo, Bytecode};

use super::state::{Entries, Entry, KeyCache, code_key, read_account};
use crate::error::ExecutionError;

impl DBErrorMarker for ExecutionError {}

/// State entries as revm's database, with a memo of their keys and of analysed code. Both memos are
/// sound across a block's transactions: keys are pure functions, and code entries are content-addressed
/// and never change. A step's run starts with empty memos, so its witness still records every read.
#[derive(Debug)]
pub(super) struct StateDb<E> {
    pub(super) entries: E,
    pub(super) keys: KeyCache,
    codes: B256Map<Bytecode>,
}

impl<E> StateDb<E> {
    pub(super) fn new(entries: E) -> Self {
        Self {
            entries,
            keys: KeyCache::default(),
            codes: B256Map::default(),
        }
    }
}

impl<E: Entries> Database for StateDb<E> {
    type Error = ExecutionError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, ExecutionError> {
        let key = self.keys.account(&address);
        Ok(read_account(&self.entries, &key)?.map(|account| account.info()))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, ExecutionError> {
        if code_hash == KECCAK256_EMPTY {
            return Ok(Bytecode::default());
        }
        if let Some(code) = self.codes.get(&code_hash) {
            return Ok(code.clone());
        }
        let code = match self.entries.read(&code_key(&code_hash))? {
            Some(Entry::Code(code)) => Bytecode::new_raw(code.into()),
            _ => return Err(ExecutionError::EvmStateCorrupt),
        };
        self.codes.insert(code_hash, code.clone());
        Ok(code)
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, ExecutionError> {
        let key = self.keys.slot(&address, &index);
        match self.entries.read(&key)? {
            None => Ok(U256::ZERO),
            Some(Entry::Storage(value)) => Ok(U256::from_le_bytes(value)),
            Some(_) => Err(ExecutionError::EvmStateCorrupt),
        }
    }

    /// The domain keeps no history of block hashes yet: `BLOCKHASH` gives zero (docs/decisions.md).
    fn block_hash(&mut self, _number: u64) -> Result<B256, ExecutionError> {
        Ok(B256::ZERO)
    }
}
