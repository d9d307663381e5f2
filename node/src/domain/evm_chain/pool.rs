//! The EVM domain's pending transactions: per sender, by nonce, bounded in total and per sender.
//!
//! The pool only holds what [`super::EvmChain::submit`] admitted against the head state; which of them
//! may go into a bundle (nonces following on from the head state, funds for each in turn) is decided
//! when bundles are built, because the head moves.

use std::collections::{BTreeMap, HashMap};

use alloy_primitives::{Address, B256, U256};

use acre_execution::domains::evm::EvmTransaction;

use crate::error::NodeError;

/// Most transactions the pool holds.
pub const MAX_POOL_TRANSACTIONS: usize = 4096;

/// Most pending transactions of one sender (also how far ahead of its next nonce a nonce may be).
pub const MAX_SENDER_TRANSACTIONS: usize = 64;

/// A replacement (same sender and nonce) pays at least this percentage of the pending one's fees.
pub const REPLACEMENT_PERCENT: u128 = 110;

/// A pending transaction.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    /// The raw EIP-2718 bytes.
    pub(super) raw: Vec<u8>,
    /// The Ethereum transaction hash.
    pub(super) hash: B256,
    /// The maximum fee per gas.
    pub(super) max_fee: u128,
    /// The maximum priority fee per gas (the gas price for legacy transactions).
    pub(super) priority_fee: u128,
    /// The gas limit.
    pub(super) gas_limit: u64,
    /// `gas_limit × max_fee + value`.
    pub(super) max_cost: U256,
}

impl Pending {
    pub(super) fn new(transaction: &EvmTransaction, max_cost: U256) -> Self {
        Self {
            raw: transaction.raw().to_vec(),
            hash: transaction.hash(),
            max_fee: transaction.max_fee_per_gas(),
            priority_fee: transaction
                .max_priority_fee_per_gas()
                .unwrap_or_else(|| transaction.max_fee_per_gas()),
            gas_limit: transaction.gas_limit(),
            max_cost,
        }
    }
}

/// The pending transactions.
#[derive(Debug, Default)]
pub(super) struct Pool {
    senders: BTreeMap<Address, BTreeMap<u64, Pending>>,
    hashes: HashMap<B256, (Address, u64)>,
}

impl Pool {
    /// How many transactions are pending.
    pub(super) fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether the transaction with `hash` is pending.
    pub(super) fn contains(&self, hash: &B256) -> bool {
        self.hashes.contains_key(hash)
    }

    /// The pending transaction with `hash`, with its sender and nonce.
    pub(super) fn get(&self, hash: &B256) -> Option<(Address, u64, &Pending)> {
        let (sender, nonce) = self.hashes.get(hash)?;
        let pending = self.senders.get(sender)?.get(nonce)?;
        Some((*sender, *nonce, pending))
    }

    /// Each sender's pending transactions by nonce.
    pub(super) fn senders(&self) -> impl Iterator<Item = (&Address, &BTreeMap<u64, Pending>)> {
        self.senders.iter()
    }

    /// `sender`'s pending transactions by nonce.
    pub(super) fn of(&self, sender: &Address) -> Option<&BTreeMap<u64, Pending>> {
        self.senders.get(sender)
    }

    /// Admits `pending` from `sender` with `nonce`, whose next nonce in the head state is `next`
    /// (the caller checked `nonce >= next`): refuses duplicates, nonces too far ahead, an underpriced
    /// replacement and anything over the limits.
    pub(super) fn insert(
        &mut self,
        sender: Address,
        nonce: u64,
        next: u64,
        pending: Pending,
    ) -> Result<B256, NodeError> {
        if self.contains(&pending.hash) {
            return Err(NodeError::EvmAlreadyKnown(pending.hash));
        }
        let window = MAX_SENDER_TRANSACTIONS as u64;
        if nonce - next >= window {
            return Err(NodeError::EvmNonceTooHigh {
                next,
                window,
                got: nonce,
            });
        }
        let queue = self.senders.get(&sender);
        if let Some(old) = queue.and_then(|queue| queue.get(&nonce)) {
            let minimum = old.max_fee.saturating_mul(REPLACEMENT_PERCENT) / 100;
            let minimum_priority = old.priority_fee.saturating_mul(REPLACEMENT_PERCENT) / 100;
            if pending.max_fee < minimum || pending.priority_fee < minimum_priority {
                return Err(NodeError::EvmReplacementUnderpriced {
                    nonce,
                    pending: old.max_fee,
                    minimum,
                });
            }
            let old_hash = old.hash;
            self.hashes.remove(&old_hash);
        } else {
            if queue.is_some_and(|queue| queue.len() >= MAX_SENDER_TRANSACTIONS) {
                return Err(NodeError::EvmSenderLimit {
                    limit: MAX_SENDER_TRANSACTIONS,
                });
            }
            if self.len() >= MAX_POOL_TRANSACTIONS {
                return Err(NodeError::EvmPoolFull {
                    capacity: MAX_POOL_TRANSACTIONS,
                });
            }
        }
        let hash = pending.hash;
        self.hashes.insert(hash, (sender, nonce));
        self.senders.entry(sender).or_default().insert(nonce, pending);
        Ok(hash)
    }

    /// Drops `sender`'s transactions with nonces below `next` (included or made stale).
    pub(super) fn remove_below(&mut self, sender: &Address, next: u64) {
        let Some(queue) = self.senders.get_mut(sender) else {
            return;
        };
        let kept = queue.split_off(&next);
        for pending in queue.values() {
            self.hashes.remove(&pending.hash);
        }
        if kept.is_empty() {
            self.senders.remove(sender);
        } else {
            *queue = kept;
        }
    }
}
