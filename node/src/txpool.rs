//! The transaction pool: signed transactions waiting for a block, bounded against hostile senders.
//!
//! Admission runs the cheap checks first, without the pool's lock: decode (size-bounded, version), chain,
//! fee floor, then state lookups in the best state (nonce not stale and within [`PoolLimits::nonce_window`]
//! of the account's next nonce, the sender can pay this one transaction, the transfer does not create a
//! dust account), and last the signature. Only then is the lock taken, for the checks that need the pool:
//! replacement, the sender's pending run being affordable, the per-sender cap and the global capacity.
//!
//! Bounds, so that no sender (or set of fresh keys) can lock others out:
//! - every admitted transaction paid at least the chain's minimum fee and comes from an account that can
//!   pay it, so filling the pool needs funded accounts;
//! - at most [`PoolLimits::per_sender`] transactions per sender, and nonces at most
//!   [`PoolLimits::nonce_window`] ahead, so one account cannot park unbounded future transactions;
//! - a full pool evicts its cheapest transaction (newest first among equal fees) for one that pays more,
//!   and refuses one that does not ([`PoolError::PoolFull`]); evicting a transaction also drops the same
//!   sender's later nonces, which could no longer be included;
//! - a pending (sender, nonce) is replaced only by a transaction paying at least
//!   [`PoolLimits::replacement_bump_percent`] more, so replacements cannot churn the pool for free.
//!
//! Whether a sequence of transactions applies is decided when a block is proposed, where each candidate is
//! applied in turn and failures are left out. Included and stale transactions are pruned whenever the best
//! block changes. The state lookups (`account` closures, which take the chain's lock) never run while the
//! pool's lock is held.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use acre_consensus::hashing::Blake3Hash;
use acre_execution::{
    Account, Address, Call, ExecutionError, RuntimeConfig, SignedTransaction, precheck_transaction,
};

use crate::error::PoolError;

/// The pool's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// Most transactions held in total.
    pub capacity: usize,
    /// Most transactions held per sender.
    pub per_sender: usize,
    /// Nonces from the account's next nonce up to (excluding) next + window are held.
    pub nonce_window: u64,
    /// A replacement for a pending (sender, nonce) pays at least this many percent more (and at least 1).
    pub replacement_bump_percent: u128,
}

impl Default for PoolLimits {
    fn default() -> Self {
        Self {
            capacity: 8192,
            per_sender: 16,
            nonce_window: 32,
            replacement_bump_percent: 10,
        }
    }
}

/// A pending transaction.
#[derive(Debug, Clone)]
struct Entry {
    tx: SignedTransaction,
    hash: Blake3Hash,
    /// Admission order, to evict the newest of equally cheap transactions.
    sequence: u64,
}

/// Eviction order: the first key is the cheapest transaction, the newest among equal fees.
type FeeKey = (u128, Reverse<u64>, Address, u64);

fn fee_key(entry: &Entry) -> FeeKey {
    let transaction = &entry.tx.transaction;
    (
        transaction.fee,
        Reverse(entry.sequence),
        transaction.from,
        transaction.nonce,
    )
}

#[derive(Debug, Default)]
struct Pending {
    by_sender: HashMap<Address, BTreeMap<u64, Entry>>,
    by_fee: BTreeSet<FeeKey>,
    len: usize,
    next_sequence: u64,
}

impl Pending {
    fn insert(&mut self, tx: SignedTransaction, hash: Blake3Hash) {
        let entry = Entry {
            tx,
            hash,
            sequence: self.next_sequence,
        };
        self.next_sequence += 1;
        let (sender, nonce) = (entry.tx.transaction.from, entry.tx.transaction.nonce);
        self.remove(&sender, nonce);
        self.by_fee.insert(fee_key(&entry));
        self.by_sender.entry(sender).or_default().insert(nonce, entry);
        self.len += 1;
    }

    fn remove(&mut self, sender: &Address, nonce: u64) -> Option<Entry> {
        let run = self.by_sender.get_mut(sender)?;
        let entry = run.remove(&nonce)?;
        if run.is_empty() {
            self.by_sender.remove(sender);
        }
        self.by_fee.remove(&fee_key(&entry));
        self.len -= 1;
        Some(entry)
    }

    /// Removes `sender`'s transactions with nonces in `nonces`.
    fn remove_range(&mut self, sender: &Address, nonces: impl std::ops::RangeBounds<u64>) {
        let doomed: Vec<u64> = self
            .by_sender
            .get(sender)
            .map(|run| run.range(nonces).map(|(nonce, _)| *nonce).collect())
            .unwrap_or_default();
        for nonce in doomed {
            self.remove(sender, nonce);
        }
    }

    /// `sender`'s pending transactions with consecutive nonces from `from`.
    fn run(&self, sender: &Address, from: u64) -> impl Iterator<Item = &Entry> {
        let mut expected = Some(from);
        self.by_sender
            .get(sender)
            .into_iter()
            .flat_map(move |run| run.range(from..))
            .map_while(move |(nonce, entry)| {
                (Some(*nonce) == expected).then(|| {
                    expected = nonce.checked_add(1);
                    entry
                })
            })
    }
}

/// Pending transactions.
#[derive(Debug)]
pub struct TxPool {
    pending: Mutex<Pending>,
    limits: PoolLimits,
}

impl TxPool {
    /// An empty pool holding at most `capacity` transactions, with the default per-sender bounds.
    pub fn new(capacity: usize) -> Self {
        Self::with_limits(PoolLimits {
            capacity,
            ..PoolLimits::default()
        })
    }

    /// An empty pool with `limits`.
    pub fn with_limits(limits: PoolLimits) -> Self {
        Self {
            pending: Mutex::new(Pending::default()),
            limits,
        }
    }

    /// The pool's bounds.
    pub fn limits(&self) -> &PoolLimits {
        &self.limits
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits an encoded transaction for the chain of `config`, given accounts in the best state;
    /// returns its hash.
    pub fn submit(
        &self,
        bytes: &[u8],
        config: &RuntimeConfig,
        account: impl Fn(&Address) -> Account,
    ) -> Result<Blake3Hash, PoolError> {
        self.submit_with(bytes, config, account, |_| Ok(()))
    }

    /// [`TxPool::submit`], with `check_call` run on a domains call once its signature verified: the
    /// node applies it to a copy of the best state, so a call the registry refuses (an unknown operator,
    /// a stake below the minimum, a deregistration by someone else) is refused at submission with its
    /// reason rather than silently left out of every block.
    pub fn submit_with(
        &self,
        bytes: &[u8],
        config: &RuntimeConfig,
        account: impl Fn(&Address) -> Account,
        check_call: impl FnOnce(&SignedTransaction) -> Result<(), ExecutionError>,
    ) -> Result<Blake3Hash, PoolError> {
        let tx = SignedTransaction::decode(bytes).map_err(PoolError::Undecodable)?;
        precheck_transaction(config, &tx).map_err(|error| match error {
            ExecutionError::WrongChain { expected, got } => PoolError::WrongChain { expected, got },
            ExecutionError::FeeTooLow { fee, minimum } => PoolError::FeeTooLow { fee, minimum },
            other => PoolError::Undecodable(other),
        })?;
        let transaction = &tx.transaction;
        let sender = account(&transaction.from);
        if transaction.nonce < sender.nonce {
            return Err(PoolError::StaleNonce {
                expected: sender.nonce,
                got: transaction.nonce,
            });
        }
        if transaction.nonce - sender.nonce >= self.limits.nonce_window {
            return Err(PoolError::NonceTooFarAhead {
                next: sender.nonce,
                window: self.limits.nonce_window,
                got: transaction.nonce,
            });
        }
        let needed = transaction.debit().saturating_add(transaction.fee);
        if needed > sender.balance {
            return Err(PoolError::InsufficientBalance {
                balance: sender.balance,
                needed,
            });
        }
        if let Some((to, amount)) = transaction.recipient()
            && to != transaction.from
            && amount < config.existential_deposit
            && !account(&to).is_live()
        {
            return Err(PoolError::BelowExistentialDeposit {
                amount,
                deposit: config.existential_deposit,
            });
        }
        tx.verify(&config.genesis_hash).map_err(PoolError::BadSignature)?;
        if matches!(transaction.call, Call::Domain(_)) {
            check_call(&tx).map_err(PoolError::Refused)?;
        }
        let hash = tx.hash();
        self.admit(tx, hash, sender.balance)?;
        Ok(hash)
    }

    /// The checks that need the pool, and the insertion, under one short hold of the lock.
    fn admit(&self, tx: SignedTransaction, hash: Blake3Hash, balance: u128) -> Result<(), PoolError> {
        let limits = &self.limits;
        let (from, nonce, fee) = (tx.transaction.from, tx.transaction.nonce, tx.transaction.fee);
        let mut pending = self.lock();
        let run = pending.by_sender.get(&from);
        let replacing = run.and_then(|run| run.get(&nonce));
        if let Some(existing) = replacing {
            if existing.hash == hash {
                return Err(PoolError::AlreadyPending(hash));
            }
            let pending_fee = existing.tx.transaction.fee;
            let bump = (pending_fee.saturating_mul(limits.replacement_bump_percent) / 100).max(1);
            let minimum = pending_fee.saturating_add(bump);
            if fee < minimum {
                return Err(PoolError::ReplacementUnderpriced { pending_fee, minimum });
            }
        }
        let earlier: u128 = run
            .into_iter()
            .flat_map(|run| run.range(..nonce))
            .map(|(_, entry)| {
                entry
                    .tx
                    .transaction
                    .debit()
                    .saturating_add(entry.tx.transaction.fee)
            })
            .fold(0, u128::saturating_add);
        let needed = earlier.saturating_add(tx.transaction.debit().saturating_add(fee));
        if needed > balance {
            return Err(PoolError::InsufficientBalance { balance, needed });
        }
        if replacing.is_none() {
            if run.is_some_and(|run| run.len() >= limits.per_sender) {
                return Err(PoolError::SenderLimit {
                    limit: limits.per_sender,
                });
            }
            if pending.len >= limits.capacity {
                let full = PoolError::PoolFull {
                    capacity: limits.capacity,
                    lowest_fee: pending.by_fee.first().map_or(0, |key| key.0),
                };
                let Some(&(lowest_fee, _, victim, victim_nonce)) = pending.by_fee.first() else {
                    // A zero-capacity pool holds nothing.
                    return Err(full);
                };
                // Evicting the sender's own earlier nonce would leave this one unincludable.
                if fee <= lowest_fee || (victim == from && victim_nonce < nonce) {
                    return Err(full);
                }
                pending.remove_range(&victim, victim_nonce..);
                tracing::debug!(target: "acre::txpool", %victim, nonce = victim_nonce, fee = lowest_fee, "evicted");
            }
        }
        pending.insert(tx, hash);
        Ok(())
    }

    /// Candidates for the next block: each sender's run of consecutive nonces from its account's nonce,
    /// interleaved so that the best-paying next transaction comes first (each sender's nonces stay in
    /// order).
    pub fn candidates(&self, account: impl Fn(&Address) -> Account) -> Vec<SignedTransaction> {
        let next_nonces = self.next_account_nonces(account);
        let runs: Vec<Vec<SignedTransaction>> = {
            let pending = self.lock();
            next_nonces
                .iter()
                .map(|(sender, nonce)| {
                    pending
                        .run(sender, *nonce)
                        .map(|entry| entry.tx.clone())
                        .collect()
                })
                .filter(|run: &Vec<_>| !run.is_empty())
                .collect()
        };
        let mut heap: BinaryHeap<(u128, Reverse<usize>, usize)> = runs
            .iter()
            .enumerate()
            .filter_map(|(index, run)| run.first().map(|tx| (tx.transaction.fee, Reverse(index), 0)))
            .collect();
        let mut chosen = Vec::with_capacity(runs.iter().map(Vec::len).sum());
        while let Some((_, Reverse(index), position)) = heap.pop() {
            let run = &runs[index];
            chosen.push(run[position].clone());
            if let Some(next) = run.get(position + 1) {
                heap.push((next.transaction.fee, Reverse(index), position + 1));
            }
        }
        chosen
    }

    /// Every pending sender's next nonce in the best state, looked up without holding the pool's lock.
    fn next_account_nonces(&self, account: impl Fn(&Address) -> Account) -> Vec<(Address, u64)> {
        let mut senders: Vec<Address> = self.lock().by_sender.keys().copied().collect();
        senders.sort_unstable();
        senders
            .into_iter()
            .map(|sender| (sender, account(&sender).nonce))
            .collect()
    }

    /// Drops transactions whose nonce the best state has used.
    pub fn prune(&self, account: impl Fn(&Address) -> Account) {
        let next_nonces = self.next_account_nonces(account);
        let mut pending = self.lock();
        for (sender, nonce) in next_nonces {
            pending.remove_range(&sender, ..nonce);
        }
    }

    /// The nonce a new transaction from `address` should carry: the first nonce after the consecutive
    /// run of pending transactions starting at `account_nonce` (the account's next nonce in the best
    /// state), so back-to-back submissions do not collide.
    pub fn next_nonce(&self, address: &Address, account_nonce: u64) -> u64 {
        let pending = self.lock();
        pending
            .run(address, account_nonce)
            .last()
            .map_or(account_nonce, |entry| {
                entry.tx.transaction.nonce.saturating_add(1)
            })
    }

    /// Number of pending transactions.
    pub fn len(&self) -> usize {
        self.lock().len
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub mod bundles;
#[cfg(test)]
mod tests;
