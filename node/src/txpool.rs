//! The transaction pool: signed transfers waiting for a block, ordered by sender and nonce.
//!
//! Admission checks what can be checked cheaply against the best state (signature, nonce not stale, the
//! sender can pay for this one transaction); whether a sequence of transactions applies is decided when a
//! block is proposed, where each candidate is applied in turn and failures are left out. Included and
//! stale transactions are pruned whenever the best block changes.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use acre_consensus::hashing::Blake3Hash;
use acre_execution::{Account, Address, SignedTransaction};

use crate::error::PoolError;

/// Pending transactions.
#[derive(Debug)]
pub struct TxPool {
    pending: Mutex<BTreeMap<(Address, u64), SignedTransaction>>,
    capacity: usize,
}

impl TxPool {
    /// An empty pool holding at most `capacity` transactions.
    pub fn new(capacity: usize) -> Self {
        Self {
            pending: Mutex::new(BTreeMap::new()),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<(Address, u64), SignedTransaction>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits an encoded transaction given the sender's account in the best state; returns its hash.
    pub fn submit(
        &self,
        bytes: &[u8],
        sender: impl Fn(&Address) -> Account,
    ) -> Result<Blake3Hash, PoolError> {
        let tx = SignedTransaction::decode(bytes)?;
        tx.verify_signature()?;
        let transfer = &tx.transfer;
        let account = sender(&transfer.from);
        if transfer.nonce < account.nonce {
            return Err(PoolError::StaleNonce {
                expected: account.nonce,
                got: transfer.nonce,
            });
        }
        let needed = transfer.amount.saturating_add(transfer.fee);
        if needed > account.balance {
            return Err(PoolError::InsufficientBalance {
                balance: account.balance,
                needed,
            });
        }
        let mut pending = self.lock();
        let key = (transfer.from, transfer.nonce);
        if pending.contains_key(&key) {
            return Err(PoolError::Duplicate(transfer.nonce));
        }
        if pending.len() >= self.capacity {
            return Err(PoolError::Full(self.capacity));
        }
        let hash = tx.hash();
        pending.insert(key, tx);
        Ok(hash)
    }

    /// Candidates for the next block: each sender's run of consecutive nonces from its account's nonce.
    pub fn candidates(&self, account: impl Fn(&Address) -> Account) -> Vec<SignedTransaction> {
        let pending = self.lock();
        let mut chosen = Vec::new();
        let mut current: Option<(Address, u64)> = None;
        for ((sender, nonce), tx) in pending.iter() {
            let expected = match current {
                Some((address, next)) if address == *sender => next,
                _ => account(sender).nonce,
            };
            if *nonce == expected {
                chosen.push(tx.clone());
                current = Some((*sender, expected + 1));
            } else {
                current = Some((*sender, u64::MAX));
            }
        }
        chosen
    }

    /// Drops transactions whose nonce the best state has used.
    pub fn prune(&self, account: impl Fn(&Address) -> Account) {
        self.lock()
            .retain(|(sender, nonce), _| *nonce >= account(sender).nonce);
    }

    /// Number of pending transactions.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use acre_execution::Transfer;
    use ed25519_dalek::SigningKey;

    use super::*;

    fn tx(key: &SigningKey, nonce: u64) -> Vec<u8> {
        SignedTransaction::sign(
            Transfer {
                from: Address::of(key),
                to: Address([9; 32]),
                amount: 10,
                fee: 1,
                nonce,
            },
            key,
        )
        .encode()
    }

    #[test]
    fn admits_orders_and_prunes() {
        let alice = SigningKey::from_bytes(&[1; 32]);
        let funded = |_: &Address| Account {
            balance: 100,
            nonce: 1,
        };
        let pool = TxPool::new(3);
        assert!(matches!(
            pool.submit(&tx(&alice, 0), funded),
            Err(PoolError::StaleNonce { .. })
        ));
        pool.submit(&tx(&alice, 2), funded).expect("admitted");
        pool.submit(&tx(&alice, 1), funded).expect("admitted");
        assert!(matches!(
            pool.submit(&tx(&alice, 1), funded),
            Err(PoolError::Duplicate(1))
        ));
        pool.submit(&tx(&alice, 4), funded).expect("admitted");
        assert!(matches!(
            pool.submit(&tx(&alice, 5), funded),
            Err(PoolError::Full(3))
        ));
        let nonces: Vec<_> = pool
            .candidates(funded)
            .iter()
            .map(|tx| tx.transfer.nonce)
            .collect();
        assert_eq!(nonces, vec![1, 2], "the gap at 3 stops the run");
        pool.prune(|_| Account {
            balance: 100,
            nonce: 3,
        });
        assert_eq!(pool.len(), 1);
        let mut garbage = tx(&alice, 7);
        garbage[0] ^= 1;
        assert!(matches!(
            pool.submit(&garbage, funded),
            Err(PoolError::Invalid(_))
        ));
        assert!(matches!(
            pool.submit(b"short", funded),
            Err(PoolError::Invalid(_))
        ));
        let poor = |_: &Address| Account { balance: 5, nonce: 0 };
        assert!(matches!(
            pool.submit(&tx(&alice, 0), poor),
            Err(PoolError::InsufficientBalance { .. })
        ));
    }
}
