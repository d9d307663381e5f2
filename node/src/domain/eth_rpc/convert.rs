//! Domain blocks, transactions, receipts and logs as alloy's Ethereum JSON-RPC types.
//!
//! Field choices where a domain block has no Ethereum counterpart: the block hash is the domain header's
//! hash, `stateRoot` and `transactionsRoot` are the domain header's (BLAKE3) state and extrinsics roots,
//! `receiptsRoot` is the execution receipt's hash, `mixHash` is the parent hash (what `PREVRANDAO`
//! returns), the beneficiary is the fee collector, and difficulty and nonce are zero (post-merge shape).

use alloy_consensus::transaction::Recovered;
use alloy_consensus::{
    Eip658Value, Receipt, ReceiptEnvelope, ReceiptWithBloom, Transaction as _, TxEnvelope, TxType,
};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{B256, Bloom, Bytes, Log as PrimitiveLog, LogData, U256};
use alloy_rpc_types_eth::{Block, BlockTransactions, Header, Log, Transaction, TransactionReceipt};

use acre_execution::domains::evm::{EvmLog, EvmModule, FEE_COLLECTOR};

use crate::domain::evm_chain::EvmBlock;

/// Why a stored block cannot be served: its bytes no longer decode (never for blocks this node derived).
#[derive(Debug)]
pub(super) struct CorruptBlock {
    /// The block number.
    pub(super) number: u64,
    /// The transaction index.
    pub(super) index: usize,
}

/// The primitive log of `log`.
pub(super) fn primitive_log(log: &EvmLog) -> PrimitiveLog {
    PrimitiveLog {
        address: log.address,
        data: LogData::new_unchecked(log.topics.clone(), log.data.clone()),
    }
}

/// The logs bloom of `logs`.
pub(super) fn bloom<'a>(logs: impl IntoIterator<Item = &'a EvmLog>) -> Bloom {
    let mut bloom = Bloom::ZERO;
    for log in logs {
        bloom.accrue_log(&primitive_log(log));
    }
    bloom
}

/// The envelope of transaction `index` of `block`.
pub(super) fn envelope(block: &EvmBlock, index: usize) -> Result<TxEnvelope, CorruptBlock> {
    let corrupt = CorruptBlock {
        number: block.number(),
        index,
    };
    let raw = block.transactions.get(index).ok_or(CorruptBlock {
        number: block.number(),
        index,
    })?;
    TxEnvelope::decode_2718(&mut raw.as_slice()).map_err(|_| corrupt)
}

/// The index in `block` of the first log of transaction `index`.
fn first_log_index(block: &EvmBlock, index: usize) -> usize {
    block
        .receipts
        .iter()
        .take(index)
        .map(|receipt| receipt.logs.len())
        .sum()
}

/// The RPC log of `log`, the `position`-th of transaction `index` of `block`, whose first log has index
/// `first` in the block.
fn rpc_log(block: &EvmBlock, index: usize, block_log_index: usize, log: &EvmLog) -> Log {
    Log {
        inner: primitive_log(log),
        block_hash: Some(block.hash()),
        block_number: Some(block.number()),
        block_timestamp: Some(block.timestamp_ms / 1_000),
        transaction_hash: block.hashes.get(index).copied(),
        transaction_index: u64::try_from(index).ok(),
        log_index: u64::try_from(block_log_index).ok(),
        removed: false,
    }
}

/// Every log of `block` that `keep` accepts, in block order, with its block, transaction and index.
pub(super) fn block_logs(block: &EvmBlock, mut keep: impl FnMut(&EvmLog) -> bool) -> Vec<Log> {
    let mut out = Vec::new();
    let mut log_index = 0;
    for (index, receipt) in block.receipts.iter().enumerate() {
        for log in &receipt.logs {
            if keep(log) {
                out.push(rpc_log(block, index, log_index, log));
            }
            log_index += 1;
        }
    }
    out
}

/// Transaction `index` of `block` as the RPC serves it.
pub(super) fn rpc_transaction(
    module: &EvmModule,
    block: &EvmBlock,
    index: usize,
) -> Result<Transaction, CorruptBlock> {
    let envelope = envelope(block, index)?;
    let sender = block.senders.get(index).copied().ok_or(CorruptBlock {
        number: block.number(),
        index,
    })?;
    let price = envelope.effective_gas_price(u64::try_from(module.base_fee).ok());
    Ok(Transaction {
        inner: Recovered::new_unchecked(envelope, sender),
        block_hash: Some(block.hash()),
        block_number: Some(block.number()),
        transaction_index: u64::try_from(index).ok(),
        effective_gas_price: Some(price),
        block_timestamp: Some(block.timestamp_ms / 1_000),
    })
}

/// A pending transaction as the RPC serves it (no block fields).
pub(super) fn rpc_pending_transaction(
    envelope: TxEnvelope,
    sender: alloy_primitives::Address,
) -> Transaction {
    Transaction {
        inner: Recovered::new_unchecked(envelope, sender),
        block_hash: None,
        block_number: None,
        transaction_index: None,
        effective_gas_price: None,
        block_timestamp: None,
    }
}

/// The receipt of transaction `index` of `block`.
pub(super) fn rpc_receipt(
    module: &EvmModule,
    block: &EvmBlock,
    index: usize,
) -> Result<TransactionReceipt, CorruptBlock> {
    let corrupt = || CorruptBlock {
        number: block.number(),
        index,
    };
    let envelope = envelope(block, index)?;
    let receipt = block.receipts.get(index).ok_or_else(corrupt)?;
    let sender = block.senders.get(index).copied().ok_or_else(corrupt)?;
    let hash = block.hashes.get(index).copied().ok_or_else(corrupt)?;
    let first = first_log_index(block, index);
    let logs: Vec<Log> = receipt
        .logs
        .iter()
        .enumerate()
        .map(|(position, log)| rpc_log(block, index, first + position, log))
        .collect();
    let with_bloom = ReceiptWithBloom {
        logs_bloom: bloom(&receipt.logs),
        receipt: Receipt {
            status: Eip658Value::Eip658(receipt.success),
            cumulative_gas_used: receipt.cumulative_gas_used,
            logs,
        },
    };
    let inner = match envelope.tx_type() {
        TxType::Legacy => ReceiptEnvelope::Legacy(with_bloom),
        TxType::Eip2930 => ReceiptEnvelope::Eip2930(with_bloom),
        // Decoding admits only legacy, EIP-2930 and EIP-1559 transactions.
        _ => ReceiptEnvelope::Eip1559(with_bloom),
    };
    Ok(TransactionReceipt {
        inner,
        transaction_hash: hash,
        transaction_index: u64::try_from(index).ok(),
        block_hash: Some(block.hash()),
        block_number: Some(block.number()),
        gas_used: receipt.gas_used,
        effective_gas_price: envelope.effective_gas_price(u64::try_from(module.base_fee).ok()),
        blob_gas_used: None,
        blob_gas_price: None,
        from: sender,
        to: envelope.to(),
        contract_address: receipt.contract_address,
    })
}

/// `block` as the RPC serves it, with full transactions or their hashes.
pub(super) fn rpc_block(module: &EvmModule, block: &EvmBlock, full: bool) -> Result<Block, CorruptBlock> {
    let size: usize = block.transactions.iter().map(Vec::len).sum();
    let header = alloy_consensus::Header {
        parent_hash: block.parent_hash(),
        ommers_hash: alloy_consensus::EMPTY_OMMER_ROOT_HASH,
        beneficiary: FEE_COLLECTOR,
        state_root: B256::from(block.header.state_root.0),
        transactions_root: B256::from(block.header.extrinsics_root.0),
        receipts_root: B256::from(block.receipt.hash().0),
        logs_bloom: bloom(block.receipts.iter().flat_map(|receipt| &receipt.logs)),
        difficulty: U256::ZERO,
        number: block.number(),
        gas_limit: module.block_gas_limit,
        gas_used: block.gas_used,
        timestamp: block.timestamp_ms / 1_000,
        extra_data: Bytes::new(),
        mix_hash: block.parent_hash(),
        base_fee_per_gas: u64::try_from(module.base_fee).ok(),
        ..alloy_consensus::Header::default()
    };
    let transactions = if full {
        let transactions = (0..block.transactions.len())
            .map(|index| rpc_transaction(module, block, index))
            .collect::<Result<Vec<_>, _>>()?;
        BlockTransactions::Full(transactions)
    } else {
        BlockTransactions::Hashes(block.hashes.clone())
    };
    let header = Header {
        hash: block.hash(),
        inner: header,
        total_difficulty: Some(U256::ZERO),
        size: Some(U256::from(size)),
    };
    Ok(Block::new(header, transactions))
}
