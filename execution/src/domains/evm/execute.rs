//! Running transactions on revm over the domain state: one step (initialization or one transaction)
//! at a time, over any [`Entries`], so that a block over the full state, a step over a recording
//! state and a step over a witness run exactly the same code and give the same roots.

use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use revm::ExecuteEvm;
use revm::context::result::{EVMError, ExecResultAndState, ExecutionResult};
use revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
use revm::handler::{MainBuilder, MainContext, MainnetContext, MainnetEvm};

use super::db::StateDb;
use super::state::{Entries, Entry, EvmState, diff_changes, environment_key};
use super::transaction::EvmTransaction;
use super::{EvmModule, FEE_COLLECTOR, SPEC};
use crate::domains::module::{BlockContext, BlockExecution, Executed, Step};
use crate::error::ExecutionError;
use crate::staking::Balance;

/// revm over our database.
pub(super) type Evm<E> = MainnetEvm<MainnetContext<StateDb<E>>>;

/// A log emitted by a transaction (as in an Ethereum receipt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvmLog {
    /// The emitting contract.
    pub address: Address,
    /// Indexed topics (at most four).
    pub topics: Vec<B256>,
    /// Unindexed data.
    pub data: Bytes,
}

/// A transaction's receipt: what `eth_getTransactionReceipt` will serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvmReceipt {
    /// Whether it succeeded (EIP-658 status); a reverted, halted or not-executable transaction is not.
    pub success: bool,
    /// Gas used by the block up to and including this transaction.
    pub cumulative_gas_used: u64,
    /// Gas this transaction used (after refunds); 0 if it could not be executed at all.
    pub gas_used: u64,
    /// Its logs (empty unless it succeeded).
    pub logs: Vec<EvmLog>,
    /// The contract a successful creation deployed.
    pub contract_address: Option<Address>,
}

/// A block executed with its receipts.
#[derive(Debug, Clone)]
pub struct EvmBlockOutput<S> {
    /// The execution the module trait returns.
    pub execution: BlockExecution<S>,
    /// One receipt per transaction, in block order.
    pub receipts: Vec<EvmReceipt>,
    /// Gas used by the block.
    pub gas_used: u64,
}

/// A read-only call (`eth_call`, `eth_estimateGas`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallRequest {
    /// The caller (the zero address if absent).
    pub from: Option<Address>,
    /// The callee; `None` runs `data` as init code.
    pub to: Option<Address>,
    /// Value sent (the caller must hold it).
    pub value: U256,
    /// Call data or init code.
    pub data: Bytes,
    /// Gas limit (the block gas limit if absent or higher).
    pub gas: Option<u64>,
}

/// What a read-only call did (its state changes are discarded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOutcome {
    /// Whether it succeeded.
    pub success: bool,
    /// Gas used (after refunds).
    pub gas_used: u64,
    /// Return data (or revert data).
    pub output: Bytes,
    /// Logs it would emit.
    pub logs: Vec<EvmLog>,
    /// The contract a creation would deploy.
    pub contract_address: Option<Address>,
}

/// What one transaction did.
#[derive(Debug)]
pub(super) struct Applied {
    pub(super) executed: Executed,
    pub(super) receipt: EvmReceipt,
    pub(super) burned: Balance,
}

impl EvmModule {
    /// The base fee as revm's 64-bit block field.
    pub(super) fn base_fee_u64(&self) -> Result<u64, ExecutionError> {
        u64::try_from(self.base_fee).map_err(|_| ExecutionError::EvmBaseFeeTooLarge {
            base_fee: self.base_fee,
        })
    }

    /// The block environment revm sees: number, timestamp in seconds, the fee collector as
    /// beneficiary, the parent hash as `PREVRANDAO`.
    pub(super) fn block_env(&self, context: &BlockContext) -> Result<BlockEnv, ExecutionError> {
        Ok(BlockEnv {
            number: U256::from(context.number.0),
            beneficiary: FEE_COLLECTOR,
            timestamp: U256::from(context.timestamp_ms / 1_000),
            gas_limit: self.block_gas_limit,
            basefee: self.base_fee_u64()?,
            prevrandao: Some(B256::from(context.parent_hash.0)),
            ..BlockEnv::default()
        })
    }

    fn cfg(&self) -> CfgEnv {
        let mut cfg = CfgEnv::new_with_spec(SPEC);
        cfg.chain_id = self.chain_id;
        cfg
    }

    /// revm over `entries` for blocks like `context`.
    pub(super) fn evm<E: Entries>(
        &self,
        context: &BlockContext,
        entries: E,
    ) -> Result<Evm<E>, ExecutionError> {
        Ok(Context::mainnet()
            .with_db(StateDb::new(entries))
            .with_cfg(self.cfg())
            .with_block(self.block_env(context)?)
            .build_mainnet())
    }

    /// Runs one step over `entries` and returns them changed.
    pub(super) fn run_step<E: Entries>(
        &self,
        mut entries: E,
        step: Step<'_, EvmTransaction>,
    ) -> Result<E, ExecutionError> {
        match step {
            Step::Initialize(context) => {
                initialize(&mut entries, context)?;
                Ok(entries)
            }
            Step::Transaction {
                context, transaction, ..
            } => {
                let mut evm = self.evm(context, entries)?;
                apply_transaction(&mut evm, transaction, self.base_fee_u64()?, 0)?;
                Ok(evm.ctx.journaled_state.database.entries)
            }
            Step::Finalize(_) => Ok(entries),
        }
    }

    /// Executes a block from `parent` with its trace and receipts.
    pub(super) fn execute_with_receipts(
        &self,
        parent: &EvmState,
        context: &BlockContext,
        transactions: &[EvmTransaction],
    ) -> Result<EvmBlockOutput<EvmState>, ExecutionError> {
        let base_fee = self.base_fee_u64()?;
        let mut entries = parent.clone();
        let mut trace = Vec::with_capacity(transactions.len() + 2);
        initialize(&mut entries, context)?;
        trace.push(entries.root());
        let mut evm = self.evm(context, entries)?;
        let mut outcomes = Vec::with_capacity(transactions.len());
        let mut receipts = Vec::with_capacity(transactions.len());
        let (mut gas_used, mut execution_fee, mut burned) = (0u64, 0 as Balance, 0 as Balance);
        for transaction in transactions {
            let applied = apply_transaction(&mut evm, transaction, base_fee, gas_used)?;
            trace.push(evm.ctx.journaled_state.database.entries.root());
            gas_used = applied.receipt.cumulative_gas_used;
            execution_fee = execution_fee.saturating_add(applied.executed.fee);
            burned = burned.saturating_add(applied.burned);
            outcomes.push(applied.executed);
            receipts.push(applied.receipt);
        }
        let state = evm.ctx.journaled_state.database.entries;
        trace.push(state.root());
        Ok(EvmBlockOutput {
            execution: BlockExecution {
                state,
                trace,
                outcomes,
                execution_fee,
                burned,
            },
            receipts,
            gas_used,
        })
    }

    /// Runs `request` over `state` with gas limit `gas`, discarding its changes. Nonce checks are off
    /// and the base fee is zero (the call pays no gas), as `eth_call` does.
    pub(super) fn call_with_gas<E: Entries>(
        &self,
        state: E,
        context: &BlockContext,
        request: &CallRequest,
        gas: u64,
    ) -> Result<CallOutcome, ExecutionError> {
        let mut cfg = self.cfg();
        cfg.disable_nonce_check = true;
        let mut block = self.block_env(context)?;
        block.basefee = 0;
        let mut evm = Context::mainnet()
            .with_db(StateDb::new(state))
            .with_cfg(cfg)
            .with_block(block)
            .build_mainnet();
        let tx = TxEnv {
            tx_type: 0,
            caller: request.from.unwrap_or(Address::ZERO),
            gas_limit: gas,
            gas_price: 0,
            kind: request.to.map_or(TxKind::Create, TxKind::Call),
            value: request.value,
            data: request.data.clone(),
            chain_id: Some(self.chain_id),
            ..TxEnv::default()
        };
        match evm.transact(tx) {
            Ok(ExecResultAndState { result, .. }) => {
                let contract_address = result.created_address().filter(|_| result.is_success());
                Ok(CallOutcome {
                    success: result.is_success(),
                    gas_used: result.tx_gas_used(),
                    logs: logs_of(&result),
                    output: result.into_output().unwrap_or_default(),
                    contract_address,
                })
            }
            Err(EVMError::Database(error)) => Err(error),
            Err(error) => Err(ExecutionError::EvmInvalidCall {
                reason: error.to_string(),
            }),
        }
    }
}

/// Initialization: records the block environment, so each block's first trace entry differs from its
/// parent's root.
pub(super) fn initialize(entries: &mut impl Entries, context: &BlockContext) -> Result<(), ExecutionError> {
    entries.apply(vec![(
        environment_key(),
        Some(Entry::Environment {
            number: context.number.0,
            timestamp_ms: context.timestamp_ms,
        }),
    )])
}

fn logs_of(result: &ExecutionResult) -> Vec<EvmLog> {
    result
        .logs()
        .iter()
        .map(|log| EvmLog {
            address: log.address,
            topics: log.data.topics().to_vec(),
            data: log.data.data.clone(),
        })
        .collect()
}

/// Runs `transaction` and writes its diff into the evm's entries in one batch. A transaction revm
/// refuses before execution (wrong nonce, cannot pay, gas limit over the block's) is recorded as failed
/// with no gas and no fee and changes nothing; a reverting or halting one is charged (revm debits the
/// sender, pays the priority fee to the beneficiary, the base fee is burned).
pub(super) fn apply_transaction<E: Entries>(
    evm: &mut Evm<E>,
    transaction: &EvmTransaction,
    base_fee: u64,
    cumulative_before: u64,
) -> Result<Applied, ExecutionError> {
    match evm.transact(transaction.tx_env()) {
        Ok(ExecResultAndState { result, state }) => {
            let database = &mut evm.ctx.journaled_state.database;
            let changes = diff_changes(&database.entries, &mut database.keys, &state)?;
            database.entries.apply(changes)?;
            let gas_used = result.tx_gas_used();
            let price = transaction.effective_gas_price(base_fee);
            let gas = Balance::from(gas_used);
            let success = result.is_success();
            Ok(Applied {
                executed: Executed {
                    success,
                    weight_used: gas_used,
                    fee: gas.saturating_mul(price),
                },
                burned: gas.saturating_mul(Balance::from(base_fee)),
                receipt: EvmReceipt {
                    success,
                    cumulative_gas_used: cumulative_before.saturating_add(gas_used),
                    gas_used,
                    logs: logs_of(&result),
                    contract_address: result.created_address().filter(|_| success),
                },
            })
        }
        Err(EVMError::Transaction(_)) => Ok(Applied {
            executed: Executed {
                success: false,
                weight_used: 0,
                fee: 0,
            },
            burned: 0,
            receipt: EvmReceipt {
                success: false,
                cumulative_gas_used: cumulative_before,
                gas_used: 0,
                logs: Vec::new(),
                contract_address: None,
            },
        }),
        Err(EVMError::Database(error)) => Err(error),
        Err(error) => Err(ExecutionError::EvmInternal {
            reason: error.to_string(),
        }),
    }
}
