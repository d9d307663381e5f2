//! The Ethereum JSON-RPC methods. Each parses its positional parameters (a missing or malformed one is
//! `-32602`), looks things up under the chain's read lock, and answers in alloy's wire types.

use alloy_eips::eip2718::Decodable2718;
use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{Address, B256, Bytes, TxKind, U64, U256};
use alloy_rpc_types_eth::{
    Block, FeeHistory, Filter, FilterBlockOption, Log, Transaction, TransactionReceipt, TransactionRequest,
};
use jsonrpsee::RpcModule;
use jsonrpsee::server::RegisterMethodError;
use jsonrpsee::types::{ErrorObjectOwned, Params};

use acre_execution::ExecutionError;
use acre_execution::domains::evm::{CallOutcome, CallRequest, EvmModule, EvmState, EvmTransaction};
use acre_execution::domains::module::BlockContext;

use super::convert::{self, CorruptBlock};
use super::{EthRpc, MAX_FEE_HISTORY_BLOCKS, MAX_LOG_BLOCKS, MAX_LOGS, codes, node_error, rpc_error};
use crate::domain::evm_chain::{EvmBlock, EvmChain};
use crate::error::NodeError;

type RpcResult<T> = Result<T, ErrorObjectOwned>;

/// Most reward percentiles one `eth_feeHistory` query asks for.
const MAX_PERCENTILES: usize = 100;

/// Registers every method on `module`.
pub(super) fn register(module: &mut RpcModule<EthRpc>) -> Result<(), RegisterMethodError> {
    module.register_method("web3_clientVersion", |_, _, _| {
        RpcResult::Ok(format!("acre/v{}", env!("CARGO_PKG_VERSION")))
    })?;
    module.register_method("net_version", |_, rpc, _| {
        RpcResult::Ok(rpc.read().module().chain_id.to_string())
    })?;
    module.register_method("net_listening", |_, _, _| RpcResult::Ok(true))?;
    module.register_method("eth_chainId", |_, rpc, _| {
        RpcResult::Ok(U64::from(rpc.read().module().chain_id))
    })?;
    module.register_method("eth_syncing", |_, _, _| RpcResult::Ok(false))?;
    module.register_method("eth_accounts", |_, _, _| RpcResult::Ok(Vec::<Address>::new()))?;
    module.register_method("eth_blockNumber", |_, rpc, _| {
        RpcResult::Ok(U64::from(rpc.read().head().number()))
    })?;
    module.register_method("eth_gasPrice", |_, rpc, _| {
        RpcResult::Ok(U256::from(rpc.read().module().base_fee))
    })?;
    // Tips go to the fee collector, not to whoever orders transactions: none is needed.
    module.register_method("eth_maxPriorityFeePerGas", |_, _, _| RpcResult::Ok(U256::ZERO))?;
    module.register_method("eth_getBlockByNumber", |params, rpc, _| {
        block_by_number(rpc, &params)
    })?;
    module.register_method("eth_getBlockByHash", |params, rpc, _| block_by_hash(rpc, &params))?;
    module.register_method("eth_getBalance", |params, rpc, _| balance(rpc, &params))?;
    module.register_method("eth_getCode", |params, rpc, _| code(rpc, &params))?;
    module.register_method("eth_getStorageAt", |params, rpc, _| storage_at(rpc, &params))?;
    module.register_method("eth_getTransactionCount", |params, rpc, _| {
        transaction_count(rpc, &params)
    })?;
    module.register_method("eth_feeHistory", |params, rpc, _| fee_history(rpc, &params))?;
    module.register_method("eth_sendRawTransaction", |params, rpc, _| send_raw(rpc, &params))?;
    module.register_method("eth_getTransactionByHash", |params, rpc, _| {
        transaction_by_hash(rpc, &params)
    })?;
    module.register_method("eth_getTransactionReceipt", |params, rpc, _| {
        receipt(rpc, &params)
    })?;
    module.register_method("eth_getLogs", |params, rpc, _| logs(rpc, &params))?;
    module.register_blocking_method("eth_call", |params, rpc, _| call(&rpc, &params))?;
    module.register_blocking_method("eth_estimateGas", |params, rpc, _| estimate_gas(&rpc, &params))?;
    Ok(())
}

fn invalid_params(message: impl Into<String>) -> ErrorObjectOwned {
    rpc_error(codes::INVALID_PARAMS, message)
}

fn corrupt(error: &CorruptBlock) -> ErrorObjectOwned {
    rpc_error(
        codes::INTERNAL,
        format!(
            "stored transaction {} of block {} does not decode",
            error.index, error.number
        ),
    )
}

/// The block `tag` names: the head for `latest`, `pending`, `safe` and `finalized` (the node does not
/// track receipt confirmation here; the head is the newest derived block).
fn block_for_tag(chain: &EvmChain, tag: BlockNumberOrTag) -> Option<&EvmBlock> {
    match tag {
        BlockNumberOrTag::Number(number) => chain.block(number),
        BlockNumberOrTag::Earliest => chain.block(0),
        BlockNumberOrTag::Latest
        | BlockNumberOrTag::Pending
        | BlockNumberOrTag::Safe
        | BlockNumberOrTag::Finalized => Some(chain.head()),
    }
}

/// The block `at` names (the head if absent), or a `-32000` error saying it is unknown.
fn block_for_id(chain: &EvmChain, at: Option<BlockId>) -> RpcResult<&EvmBlock> {
    match at.unwrap_or(BlockId::Number(BlockNumberOrTag::Latest)) {
        BlockId::Number(tag) => block_for_tag(chain, tag)
            .ok_or_else(|| rpc_error(codes::SERVER, format!("header not found: {tag}"))),
        BlockId::Hash(hash) => chain
            .block_by_hash(&hash.block_hash)
            .ok_or_else(|| rpc_error(codes::SERVER, format!("header not found: {}", hash.block_hash))),
    }
}

/// The state after the block `at` names.
fn state_for(chain: &EvmChain, at: Option<BlockId>) -> RpcResult<(&EvmBlock, &EvmState)> {
    let block = block_for_id(chain, at)?;
    let state = chain
        .state_at(block.number())
        .map_err(|error| node_error(&error))?;
    Ok((block, state))
}

fn block_by_number(rpc: &EthRpc, params: &Params<'_>) -> RpcResult<Option<Block>> {
    let mut sequence = params.sequence();
    let tag: BlockNumberOrTag = sequence.next()?;
    let full: bool = sequence.optional_next()?.unwrap_or(false);
    let chain = rpc.read();
    block_for_tag(&chain, tag)
        .map(|block| convert::rpc_block(chain.module(), block, full).map_err(|error| corrupt(&error)))
        .transpose()
}

fn block_by_hash(rpc: &EthRpc, params: &Params<'_>) -> RpcResult<Option<Block>> {
    let mut sequence = params.sequence();
    let hash: B256 = sequence.next()?;
    let full: bool = sequence.optional_next()?.unwrap_or(false);
    let chain = rpc.read();
    chain
        .block_by_hash(&hash)
        .map(|block| convert::rpc_block(chain.module(), block, full).map_err(|error| corrupt(&error)))
        .transpose()
}

/// An address and an optional block.
fn address_at(params: &Params<'_>) -> RpcResult<(Address, Option<BlockId>)> {
    let mut sequence = params.sequence();
    let address = sequence.next()?;
    let at = sequence.optional_next()?;
    Ok((address, at))
}

fn balance(rpc: &EthRpc, params: &Params<'_>) -> RpcResult<U256> {
    let (address, at) = address_at(params)?;
    let chain = rpc.read();
    let (_, state) = state_for(&chain, at)?;
    Ok(chain.module().balance_of(state, &address))
}

fn code(rpc: &EthRpc, params: &Params<'_>) -> RpcResult<Bytes> {
    let (address, at) = address_at(params)?;
    let chain = rpc.read();
    let (_, state) = state_for(&chain, at)?;
    Ok(Bytes::from(chain.module().code(state, &address)))
}

fn storage_at(rpc: &EthRpc, params: &Params<'_>) -> RpcResult<B256> {
    let mut sequence = params.sequence();
    let address: Address = sequence.next()?;
    let slot: U256 = sequence.next()?;
    let at: Option<BlockId> = sequence.optional_next()?;
    let chain = rpc.read();
    let (_, state) = state_for(&chain, at)?;
    Ok(B256::from(chain.module().storage(state, &address, &slot)))
}

fn transaction_count(rpc: &EthRpc, params: &Params<'_>) -> RpcResult<U64> {
    let (address, at) = address_at(params)?;
    let chain = rpc.read();
    if at == Some(BlockId::Number(BlockNumberOrTag::Pending)) {
        return chain
            .pending_nonce(&address)
            .map(U64::from)
            .map_err(|error| node_error(&error));
    }
    let (_, state) = state_for(&chain, at)?;
    Ok(U64::from(chain.module().nonce(state, &address)))
}

fn send_raw(rpc: &EthRpc, params: &Params<'_>) -> RpcResult<B256> {
    let raw: Bytes = params.sequence().next()?;
    // Decoding recovers the signer: done before taking the write lock.
    let chain_id = rpc.read().module().chain_id;
    let transaction = EvmTransaction::decode(&raw, chain_id)
        .map_err(|error| node_error(&NodeError::EvmTransactionRefused(error)))?;
    rpc.write()
        .submit_decoded(&transaction)
        .map_err(|error| node_error(&error))
}

fn transaction_by_hash(rpc: &EthRpc, params: &Params<'_>) -> RpcResult<Option<Transaction>> {
    let hash: B256 = params.sequence().next()?;
    let chain = rpc.read();
    if let Some((block, index)) = chain.transaction(&hash) {
        return convert::rpc_transaction(chain.module(), block, index)
            .map(Some)
            .map_err(|error| corrupt(&error));
    }
    let Some((sender, mut raw)) = chain.pending_transaction(&hash) else {
        return Ok(None);
    };
    let envelope = alloy_consensus::TxEnvelope::decode_2718(&mut raw)
        .map_err(|_| rpc_error(codes::INTERNAL, "a pending transaction does not decode"))?;
    Ok(Some(convert::rpc_pending_transaction(envelope, sender)))
}

fn receipt(rpc: &EthRpc, params: &Params<'_>) -> RpcResult<Option<TransactionReceipt>> {
    let hash: B256 = params.sequence().next()?;
    let chain = rpc.read();
    chain
        .transaction(&hash)
        .map(|(block, index)| {
            convert::rpc_receipt(chain.module(), block, index).map_err(|error| corrupt(&error))
        })
        .transpose()
}

/// The block number a log filter bound names (`None`: the head), not beyond the head.
fn filter_bound(chain: &EvmChain, bound: Option<&BlockNumberOrTag>) -> u64 {
    let head = chain.head().number();
    match bound {
        Some(BlockNumberOrTag::Number(number)) => *number,
        Some(BlockNumberOrTag::Earliest) => 0,
        _ => head,
    }
}

fn logs(rpc: &EthRpc, params: &Params<'_>) -> RpcResult<Vec<Log>> {
    let filter: Filter = params.sequence().next()?;
    let chain = rpc.read();
    let head = chain.head().number();
    let (from, to) = match filter.block_option {
        FilterBlockOption::AtBlockHash(hash) => {
            let block = chain
                .block_by_hash(&hash)
                .ok_or_else(|| rpc_error(codes::SERVER, format!("unknown block {hash}")))?;
            (block.number(), block.number())
        }
        FilterBlockOption::Range { from_block, to_block } => (
            filter_bound(&chain, from_block.as_ref()),
            filter_bound(&chain, to_block.as_ref()),
        ),
    };
    if from > to {
        return Err(invalid_params(format!(
            "invalid block range: from {from} is above to {to}"
        )));
    }
    if to - from >= MAX_LOG_BLOCKS {
        return Err(rpc_error(
            codes::LIMIT_EXCEEDED,
            format!(
                "query spans {} blocks, at most {MAX_LOG_BLOCKS} are allowed",
                to - from + 1
            ),
        ));
    }
    let mut out = Vec::new();
    for number in from..=to.min(head) {
        let Some(block) = chain.block(number) else { break };
        out.extend(convert::block_logs(block, |log| {
            filter.matches_address(log.address) && filter.matches_topics(&log.topics)
        }));
        if out.len() > MAX_LOGS {
            return Err(rpc_error(
                codes::LIMIT_EXCEEDED,
                format!("query returned more than {MAX_LOGS} results; narrow its block range"),
            ));
        }
    }
    Ok(out)
}

/// A quantity given as a JSON number, a hex string (`0x…`) or a decimal string.
fn quantity(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(number) => number.as_u64(),
        serde_json::Value::String(text) => match text.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => text.parse().ok(),
        },
        _ => None,
    }
}

fn fee_history(rpc: &EthRpc, params: &Params<'_>) -> RpcResult<FeeHistory> {
    let mut sequence = params.sequence();
    let count: serde_json::Value = sequence.next()?;
    let count = quantity(&count).ok_or_else(|| invalid_params("blockCount is not a quantity"))?;
    let newest: BlockNumberOrTag = sequence.next()?;
    let percentiles: Option<Vec<f64>> = sequence.optional_next()?;
    if count > MAX_FEE_HISTORY_BLOCKS {
        return Err(invalid_params(format!(
            "blockCount {count} is above the most allowed, {MAX_FEE_HISTORY_BLOCKS}"
        )));
    }
    if let Some(percentiles) = &percentiles {
        let in_range = percentiles.iter().all(|p| (0.0..=100.0).contains(p));
        let ordered = percentiles.windows(2).all(|pair| pair[0] <= pair[1]);
        if percentiles.len() > MAX_PERCENTILES || !in_range || !ordered {
            return Err(invalid_params(
                "rewardPercentiles must be at most 100 non-decreasing values in [0, 100]",
            ));
        }
    }
    let chain = rpc.read();
    let newest = block_for_tag(&chain, newest)
        .ok_or_else(|| rpc_error(codes::SERVER, "header not found"))?
        .number();
    let count = count.min(newest + 1);
    let oldest = newest + 1 - count;
    let module = chain.module();
    let mut history = FeeHistory {
        oldest_block: oldest,
        ..FeeHistory::default()
    };
    if count == 0 {
        return Ok(history);
    }
    let mut rewards = Vec::new();
    for number in oldest..=newest {
        let block = chain
            .block(number)
            .ok_or_else(|| rpc_error(codes::SERVER, "header not found"))?;
        history.base_fee_per_gas.push(module.base_fee);
        #[allow(clippy::cast_precision_loss, reason = "a ratio for display")]
        history
            .gas_used_ratio
            .push(block.gas_used as f64 / module.block_gas_limit as f64);
        if let Some(percentiles) = &percentiles {
            rewards.push(block_rewards(module, block, percentiles)?);
        }
    }
    // The base fee of the block after the newest.
    history.base_fee_per_gas.push(module.base_fee);
    history.reward = percentiles.map(|_| rewards);
    Ok(history)
}

/// The priority fees per gas at `percentiles` of `block`'s gas, transactions sorted by priority fee.
fn block_rewards(module: &EvmModule, block: &EvmBlock, percentiles: &[f64]) -> RpcResult<Vec<u128>> {
    let base_fee = u64::try_from(module.base_fee).ok();
    let mut tips = Vec::with_capacity(block.transactions.len());
    for (index, receipt) in block.receipts.iter().enumerate() {
        let envelope = convert::envelope(block, index).map_err(|error| corrupt(&error))?;
        let price = alloy_consensus::Transaction::effective_gas_price(&envelope, base_fee);
        tips.push((price.saturating_sub(module.base_fee), receipt.gas_used));
    }
    tips.sort_unstable();
    let total: u64 = tips.iter().map(|(_, gas)| gas).sum();
    Ok(percentiles
        .iter()
        .map(|percentile| {
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a gas threshold between 0 and the block's gas"
            )]
            let threshold = (total as f64 * percentile / 100.0) as u64;
            let mut cumulative = 0u64;
            tips.iter()
                .find(|(_, gas)| {
                    cumulative += gas;
                    cumulative >= threshold
                })
                .or(tips.last())
                .map_or(0, |(tip, _)| *tip)
        })
        .collect())
}

/// What a read-only call runs: the request, the state (cloned out of the lock) and the block context.
fn prepare_call(
    rpc: &EthRpc,
    params: &Params<'_>,
) -> RpcResult<(EvmModule, EvmState, BlockContext, CallRequest)> {
    let mut sequence = params.sequence();
    let request: TransactionRequest = sequence.next()?;
    let at: Option<BlockId> = sequence.optional_next()?;
    if sequence
        .optional_next::<serde_json::Value>()?
        .is_some_and(|value| !value.is_null())
    {
        return Err(invalid_params("state overrides are not supported"));
    }
    let data = request
        .input
        .try_into_unique_input()
        .map_err(|error| invalid_params(error.to_string()))?
        .unwrap_or_default();
    let request = CallRequest {
        from: request.from,
        to: match request.to {
            Some(TxKind::Call(to)) => Some(to),
            Some(TxKind::Create) | None => None,
        },
        value: request.value.unwrap_or_default(),
        data,
        gas: request.gas,
    };
    let chain = rpc.read();
    let (block, state) = state_for(&chain, at)?;
    Ok((
        chain.module().clone(),
        state.clone(),
        block.call_context(),
        request,
    ))
}

fn call_error(error: &ExecutionError) -> ErrorObjectOwned {
    match error {
        ExecutionError::EvmInvalidCall { reason } => rpc_error(codes::SERVER, reason.clone()),
        other => rpc_error(codes::INTERNAL, other.to_string()),
    }
}

fn reverted(outcome: CallOutcome) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        codes::EXECUTION_REVERTED,
        "execution reverted",
        Some(outcome.output),
    )
}

fn call(rpc: &EthRpc, params: &Params<'_>) -> RpcResult<Bytes> {
    let (module, state, context, request) = prepare_call(rpc, params)?;
    let outcome = module
        .call(&state, &context, &request)
        .map_err(|error| call_error(&error))?;
    if outcome.success {
        Ok(outcome.output)
    } else {
        Err(reverted(outcome))
    }
}

fn estimate_gas(rpc: &EthRpc, params: &Params<'_>) -> RpcResult<U64> {
    let (module, state, context, request) = prepare_call(rpc, params)?;
    // A run at the cap first: a call failing even then is reported with its revert data.
    let outcome = module
        .call(&state, &context, &request)
        .map_err(|error| call_error(&error))?;
    if !outcome.success {
        return Err(reverted(outcome));
    }
    module
        .estimate_gas(&state, &context, &request)
        .map(U64::from)
        .map_err(|error| call_error(&error))
}
