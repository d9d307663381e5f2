//! revm's `Database` over state entries: revm asks for accounts, code and slots; the adapter answers
//! from the state tree (or a witness of it). It owns its entries so one revm instance runs a whole
//! block: after each transaction the block executor applies the diff through [`StateDb::entries`].

use alloy_primitives::{Address, B256, KECCAK256_EMPTY, U256};
use revm::database_interface::DBErrorMarker;
use revm::state::{AccountInfo, Bytecode};
use revm::{Database, DatabaseRef};

use super::state::{Entries, Entry, code_key, read_account, storage_key};
use crate::error::ExecutionError;

impl DBErrorMarker for ExecutionError {}

/// State entries as revm's database.
#[derive(Debug)]
pub(super) struct StateDb<E> {
    pub(super) entries: E,
}

impl<E: Entries> DatabaseRef for StateDb<E> {
    type Error = ExecutionError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, ExecutionError> {
        Ok(read_account(&self.entries, &address)?.map(|account| account.info()))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, ExecutionError> {
        if code_hash == KECCAK256_EMPTY {
            return Ok(Bytecode::default());
        }
        match self.entries.read(&code_key(&code_hash))? {
            Some(Entry::Code(code)) => Ok(Bytecode::new_raw(code.into())),
            _ => Err(ExecutionError::EvmStateCorrupt),
        }
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, ExecutionError> {
        match self.entries.read(&storage_key(&address, &index))? {
            None => Ok(U256::ZERO),
            Some(Entry::Storage(value)) => Ok(U256::from_le_bytes(value)),
            Some(_) => Err(ExecutionError::EvmStateCorrupt),
        }
    }

    /// The domain keeps no history of block hashes yet: `BLOCKHASH` gives zero (docs/decisions.md).
    fn block_hash_ref(&self, _number: u64) -> Result<B256, ExecutionError> {
        Ok(B256::ZERO)
    }
}

impl<E: Entries> Database for StateDb<E> {
    type Error = ExecutionError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, ExecutionError> {
        self.basic_ref(address)
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, ExecutionError> {
        self.code_by_hash_ref(code_hash)
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, ExecutionError> {
        self.storage_ref(address, index)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, ExecutionError> {
        self.block_hash_ref(number)
    }
}
