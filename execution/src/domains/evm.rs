//! The EVM module: Ethereum transactions on [revm](revm), as a domain's [`ExecutionModule`].
//!
//! Why revm over our own state rather than revm's in-memory database: a domain's state must be the
//! protocol state tree (`acre_consensus::state_tree`) so that every root of an execution trace can
//! prove any key it commits to, and so that a fraud proof can re-run one transaction from a witness.
//! revm therefore reads through a `Database` adapter over tree entries ([`state`]), and after each
//! transaction the block executor turns revm's state diff into one batch of tree changes (one path
//! rehash per changed key, untouched and unchanged accounts skipped) and records the root.
//!
//! Data flow: raw EIP-2718 bytes → [`EvmTransaction::decode`] (size bound, type, chain id, signer) →
//! [`EvmModule::check_transactions`] (nonces, funds, gas and fee rules, in sequence) →
//! [`EvmModule::execute_block`] (trace: initialization root, one root per transaction, finalization
//! root) or [`EvmModule::execute_block_with_receipts`] for the future JSON-RPC. A fraud proof's
//! verifier calls [`ExecutionModule::execute_step`] with a witness from
//! [`ExecutionModule::step_witness`]: the step runs the same code over the witness.
//!
//! Fees follow London: revm charges `gas_used × effective price`; the base fee part is burned
//! (reported as `burned`), the priority part is paid to [`FEE_COLLECTOR`]; the block's execution fee
//! is the total paid. A reverting transaction is charged and recorded; one revm refuses outright
//! (its nonce or funds no longer fit when it runs) is recorded as failed, uncharged, and changes
//! nothing. Neither aborts the block.
//!
//! Not done yet (docs/decisions.md): a receipts root (the node's Ethereum JSON-RPC computes logs
//! blooms), EIP-2935 and EIP-4788 system calls, `BLOCKHASH` history (it returns zero), blob and set-code
//! transactions.

pub mod contracts;
mod db;
mod execute;
pub mod state;
pub mod transaction;

use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::{Address, U256, address};
use revm::primitives::hardfork::SpecId;

use acre_consensus::codec;
use acre_consensus::hashing::Blake3Hash;

use crate::domains::module::{BlockContext, BlockExecution, ExecutionModule, ModuleId, Step, StepWitness};
use crate::error::ExecutionError;
use crate::staking::Balance;

pub use execute::{CallOutcome, CallRequest, EvmBlockOutput, EvmLog, EvmReceipt};
pub use state::{AccountEntry, Entry, EvmState};
pub use transaction::{EvmTransaction, MAX_TRANSACTION_SIZE, address_of};

use state::{Entries, Entry as StateEntry, RecordingEntries, WitnessEntries, account_key, code_key};

/// Where priority fees go: revm's block beneficiary. The domain has no block author of its own
/// (operators are paid on consensus from the execution fee when the receipt is confirmed), so the
/// tips accumulate in this well-known account (`0x…fee`), whose use is left to a later governance
/// decision.
pub const FEE_COLLECTOR: Address = address!("0x0000000000000000000000000000000000000fee");

/// The Ethereum hard fork revm runs: Prague (Cancun's opcodes and transient storage, no EIP-7825
/// per-transaction gas cap, which Osaka would add).
pub const SPEC: SpecId = SpecId::PRAGUE;

/// The block gas limit of every EVM domain (Ethereum mainnet's long-standing 30M).
pub const BLOCK_GAS_LIMIT: u64 = 30_000_000;

/// The base fee per gas of every EVM domain: 1 gwei, fixed (no EIP-1559 adjustment yet).
pub const BASE_FEE: u128 = 1_000_000_000;

/// An EVM domain's module: its chain id and block parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvmModule {
    /// The EIP-155 chain id transactions must carry.
    pub chain_id: u64,
    /// The block gas limit (also the largest gas limit of one transaction).
    pub block_gas_limit: u64,
    /// The base fee per gas (wei), fixed for now; must fit in 64 bits.
    pub base_fee: u128,
}

impl EvmModule {
    /// The module of an EVM domain with `chain_id`: the protocol's block gas limit and base fee.
    pub fn for_domain(chain_id: u64) -> Self {
        Self {
            chain_id,
            block_gas_limit: BLOCK_GAS_LIMIT,
            base_fee: BASE_FEE,
        }
    }

    /// Executes a block with one receipt per transaction (what the module trait's
    /// [`execute_block`](ExecutionModule::execute_block) returns, plus receipts and gas used).
    pub fn execute_block_with_receipts(
        &self,
        parent: &EvmState,
        context: &BlockContext,
        transactions: &[EvmTransaction],
    ) -> Result<EvmBlockOutput<EvmState>, ExecutionError> {
        self.execute_with_receipts(parent, context, transactions)
    }

    /// The account at `address` (`None` for an empty account).
    pub fn account(&self, state: &EvmState, address: &Address) -> Option<AccountEntry> {
        match state.value(&account_key(address)) {
            Some(StateEntry::Account(account)) => Some(account.clone()),
            _ => None,
        }
    }

    /// The balance of `address` in wei.
    pub fn balance_of(&self, state: &EvmState, address: &Address) -> U256 {
        self.account(state, address)
            .map_or(U256::ZERO, |account| account.balance())
    }

    /// The next nonce of `address`.
    pub fn nonce(&self, state: &EvmState, address: &Address) -> u64 {
        self.account(state, address).map_or(0, |account| account.nonce)
    }

    /// The code deployed at `address` (empty for none).
    pub fn code(&self, state: &EvmState, address: &Address) -> Vec<u8> {
        let Some(account) = self.account(state, address) else {
            return Vec::new();
        };
        match state.value(&code_key(&account.code_hash.into())) {
            Some(StateEntry::Code(code)) => code.clone(),
            _ => Vec::new(),
        }
    }

    /// Storage slot `slot` of `address`.
    pub fn storage(&self, state: &EvmState, address: &Address, slot: &U256) -> U256 {
        match state.value(&state::storage_key(address, slot)) {
            Some(StateEntry::Storage(value)) => U256::from_le_bytes(*value),
            _ => U256::ZERO,
        }
    }

    /// Runs `request` over `state` as if in a block like `context`, without changing anything
    /// (`eth_call`): no fee, no nonce check; the gas limit is the request's, capped at the block's.
    pub fn call(
        &self,
        state: &EvmState,
        context: &BlockContext,
        request: &CallRequest,
    ) -> Result<CallOutcome, ExecutionError> {
        let gas = request
            .gas
            .map_or(self.block_gas_limit, |gas| gas.min(self.block_gas_limit));
        self.call_with_gas(state.clone(), context, request, gas)
    }

    /// The least gas limit with which `request` succeeds (`eth_estimateGas`), by binary search: a run
    /// at the cap (the request's gas or the block's) gives `gas_used`, a lower bound (the limit must
    /// cover the gas used before refunds), then each probe halves the interval. Exact where a margin
    /// would be a guess (the 63/64 rule, refunds), at about log2(cap − gas_used) runs.
    pub fn estimate_gas(
        &self,
        state: &EvmState,
        context: &BlockContext,
        request: &CallRequest,
    ) -> Result<u64, ExecutionError> {
        let cap = request
            .gas
            .map_or(self.block_gas_limit, |gas| gas.min(self.block_gas_limit));
        let first = self.call_with_gas(state.clone(), context, request, cap)?;
        if !first.success {
            return Err(ExecutionError::EvmInvalidCall {
                reason: format!("the call fails with the largest gas limit {cap}"),
            });
        }
        let succeeds = |gas: u64| -> Result<bool, ExecutionError> {
            match self.call_with_gas(state.clone(), context, request, gas) {
                Ok(outcome) => Ok(outcome.success),
                // Below the intrinsic gas revm refuses the call: too little gas.
                Err(ExecutionError::EvmInvalidCall { .. }) => Ok(false),
                Err(error) => Err(error),
            }
        };
        if succeeds(first.gas_used)? {
            return Ok(first.gas_used);
        }
        // `low` fails, `high` succeeds.
        let (mut low, mut high) = (first.gas_used, cap);
        while high - low > 1 {
            let middle = low + (high - low) / 2;
            if succeeds(middle)? {
                high = middle;
            } else {
                low = middle;
            }
        }
        Ok(high)
    }
}

impl ExecutionModule for EvmModule {
    const ID: ModuleId = ModuleId::Evm;
    type State = EvmState;
    type Transaction = EvmTransaction;

    /// Genesis accounts are 20-byte addresses; amounts are in wei.
    fn genesis(&self, balances: &[(Vec<u8>, Balance)]) -> Result<EvmState, ExecutionError> {
        let mut totals: BTreeMap<Address, U256> = BTreeMap::new();
        for (who, amount) in balances {
            let address = Address::try_from(who.as_slice())
                .map_err(|_| ExecutionError::DomainAccount { len: who.len() })?;
            let total = totals.entry(address).or_default();
            *total = total.saturating_add(U256::from(*amount));
        }
        let mut state = EvmState::new();
        let changes = totals
            .into_iter()
            .filter(|(_, balance)| !balance.is_zero())
            .map(|(address, balance)| {
                let account = AccountEntry {
                    nonce: 0,
                    balance: balance.to_le_bytes(),
                    code_hash: alloy_primitives::KECCAK256_EMPTY.0,
                };
                (account_key(&address), Some(StateEntry::Account(account)))
            })
            .collect();
        state.apply(changes)?;
        Ok(state)
    }

    fn state_root(&self, state: &EvmState) -> Blake3Hash {
        state.root()
    }

    fn decode_transaction(&self, bytes: &[u8]) -> Result<EvmTransaction, ExecutionError> {
        EvmTransaction::decode(bytes, self.chain_id)
    }

    fn signer(&self, transaction: &EvmTransaction) -> Option<Vec<u8>> {
        Some(transaction.signer().to_vec())
    }

    fn weight(&self, transaction: &EvmTransaction) -> u64 {
        transaction.gas_limit()
    }

    /// In order, per transaction: gas limit within the block's; max fee at least the base fee and not
    /// below the priority fee; nonce the sender's next (counting earlier transactions of the
    /// sequence); the sender holds `gas_limit × max_fee + value` (each earlier transaction's maximum
    /// cost deducted).
    fn check_transactions(
        &self,
        state: &EvmState,
        transactions: &[EvmTransaction],
    ) -> Result<(), (usize, ExecutionError)> {
        let mut running: BTreeMap<Address, (u64, U256)> = BTreeMap::new();
        for (index, transaction) in transactions.iter().enumerate() {
            let fail = |error| Err((index, error));
            if transaction.gas_limit() > self.block_gas_limit {
                return fail(ExecutionError::EvmGasLimitAboveBlock {
                    gas_limit: transaction.gas_limit(),
                    block_gas_limit: self.block_gas_limit,
                });
            }
            let max_fee = transaction.max_fee_per_gas();
            if max_fee < self.base_fee {
                return fail(ExecutionError::EvmFeeBelowBaseFee {
                    max_fee,
                    base_fee: self.base_fee,
                });
            }
            if let Some(priority_fee) = transaction.max_priority_fee_per_gas()
                && priority_fee > max_fee
            {
                return fail(ExecutionError::EvmPriorityFeeAboveMaxFee {
                    priority_fee,
                    max_fee,
                });
            }
            let sender = transaction.signer();
            let (nonce, balance) = *running.entry(sender).or_insert_with(|| {
                self.account(state, &sender)
                    .map_or((0, U256::ZERO), |account| (account.nonce, account.balance()))
            });
            if transaction.nonce() != nonce {
                return fail(ExecutionError::EvmNonce {
                    expected: nonce,
                    got: transaction.nonce(),
                });
            }
            let needed = transaction.max_cost().map_err(|error| (index, error))?;
            let Some(left) = balance.checked_sub(needed) else {
                return fail(ExecutionError::EvmInsufficientFunds { balance, needed });
            };
            running.insert(sender, (nonce.saturating_add(1), left));
        }
        Ok(())
    }

    fn execute_block(
        &self,
        parent: &EvmState,
        context: &BlockContext,
        transactions: &[EvmTransaction],
    ) -> Result<BlockExecution<EvmState>, ExecutionError> {
        self.execute_with_receipts(parent, context, transactions)
            .map(|output| output.execution)
    }

    /// Runs the step over the pre-state while recording every key read or written: the witness
    /// covers exactly those keys, with the values of those present.
    fn step_witness(
        &self,
        pre: &EvmState,
        step: Step<'_, EvmTransaction>,
    ) -> Result<StepWitness, ExecutionError> {
        let recording = RecordingEntries {
            state: pre.clone(),
            keys: Default::default(),
        };
        let keys: BTreeSet<_> = self.run_step(recording, step)?.keys.into_inner();
        let values = keys
            .iter()
            .filter_map(|key| pre.value(key).map(|entry| (*key, codec::encode(entry))))
            .collect();
        let keys: Vec<_> = keys.into_iter().collect();
        Ok(StepWitness {
            tree: pre.witness(&keys),
            values,
        })
    }

    fn execute_step(
        &self,
        witness: &StepWitness,
        step: Step<'_, EvmTransaction>,
    ) -> Result<Blake3Hash, ExecutionError> {
        let entries = WitnessEntries {
            witness: witness.clone(),
        };
        Ok(self.run_step(entries, step)?.witness.tree.root())
    }

    /// The balance in wei, saturated to 128 bits.
    fn balance(&self, state: &EvmState, account: &[u8]) -> Balance {
        Address::try_from(account).map_or(0, |address| {
            u128::try_from(self.balance_of(state, &address)).unwrap_or(u128::MAX)
        })
    }
}

#[cfg(test)]
mod tests;
