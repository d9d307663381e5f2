//! The consensus chain's state transition.
//!
//! A block applies its transactions in order, each all-or-nothing, then credits the block reward and all
//! fees to the solution's reward address. Any failing transaction makes the block invalid (the transaction
//! pool filters them before authoring), so every node reaches the same state or rejects the block.

use crate::error::ExecutionError;
use crate::state::AccountStore;
use crate::transaction::{Address, SignedTransaction};

/// Applies one transaction; returns the fee it pays. State is unchanged on error.
pub fn apply_transaction(
    state: &mut impl AccountStore,
    tx: &SignedTransaction,
) -> Result<u128, ExecutionError> {
    tx.verify_signature()?;
    let transfer = &tx.transfer;
    let sender = transfer.from;
    let mut from = state.account(&sender);
    if transfer.nonce != from.nonce {
        return Err(ExecutionError::BadNonce {
            sender,
            expected: from.nonce,
            got: transfer.nonce,
        });
    }
    let needed = transfer
        .amount
        .checked_add(transfer.fee)
        .ok_or(ExecutionError::Overflow(sender))?;
    from.balance = from
        .balance
        .checked_sub(needed)
        .ok_or(ExecutionError::InsufficientBalance {
            sender,
            balance: from.balance,
            needed,
        })?;
    from.nonce += 1;
    if transfer.to == sender {
        // A self-transfer only pays the fee; the amount cannot overflow what was just debited.
        from.balance += transfer.amount;
        state.set_account(sender, from);
    } else {
        // Every check happens before the first write, so a failing transaction changes nothing.
        let mut to = state.account(&transfer.to);
        to.balance = to
            .balance
            .checked_add(transfer.amount)
            .ok_or(ExecutionError::Overflow(transfer.to))?;
        state.set_account(sender, from);
        state.set_account(transfer.to, to);
    }
    Ok(transfer.fee)
}

/// What applying a block's transactions produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockOutcome {
    /// Fees paid by the block's transactions.
    pub fees: u128,
    /// Reward plus fees credited to the author.
    pub credited: u128,
}

/// Applies a block's transactions and credits `block_reward` plus fees to `reward_address`.
///
/// On error the state may hold the effects of earlier transactions: callers apply blocks to a scratch
/// copy (or a state transaction) and discard it when the block is invalid.
pub fn apply_block(
    state: &mut impl AccountStore,
    reward_address: Address,
    block_reward: u128,
    transactions: &[SignedTransaction],
) -> Result<BlockOutcome, ExecutionError> {
    let mut fees = 0u128;
    for tx in transactions {
        fees = fees
            .checked_add(apply_transaction(state, tx)?)
            .ok_or(ExecutionError::Overflow(reward_address))?;
    }
    let credited = block_reward
        .checked_add(fees)
        .ok_or(ExecutionError::Overflow(reward_address))?;
    let mut author = state.account(&reward_address);
    author.balance = author
        .balance
        .checked_add(credited)
        .ok_or(ExecutionError::Overflow(reward_address))?;
    state.set_account(reward_address, author);
    Ok(BlockOutcome { fees, credited })
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::state::{Account, InMemoryAccounts};
    use crate::transaction::Transfer;

    fn funded(key: &SigningKey, balance: u128) -> InMemoryAccounts {
        let mut state = InMemoryAccounts::default();
        state.set_account(Address::of(key), Account { balance, nonce: 0 });
        state
    }

    fn pay(key: &SigningKey, to: Address, amount: u128, fee: u128, nonce: u64) -> SignedTransaction {
        SignedTransaction::sign(
            Transfer {
                from: Address::of(key),
                to,
                amount,
                fee,
                nonce,
            },
            key,
        )
    }

    #[test]
    fn transfers_move_balances_and_fees_reach_the_author() {
        let alice = SigningKey::from_bytes(&[1; 32]);
        let bob = Address([2; 32]);
        let author = Address([3; 32]);
        let mut state = funded(&alice, 100);
        let txs = [pay(&alice, bob, 30, 2, 0), pay(&alice, bob, 10, 1, 1)];
        let outcome = apply_block(&mut state, author, 50, &txs).expect("valid block");
        assert_eq!(
            outcome,
            BlockOutcome {
                fees: 3,
                credited: 53
            }
        );
        assert_eq!(
            state.account(&Address::of(&alice)),
            Account {
                balance: 57,
                nonce: 2
            }
        );
        assert_eq!(state.account(&bob).balance, 40);
        assert_eq!(state.account(&author).balance, 53);
    }

    #[test]
    fn double_spends_and_overdrafts_are_rejected_without_effect() {
        let alice = SigningKey::from_bytes(&[1; 32]);
        let bob = Address([2; 32]);
        let mut state = funded(&alice, 100);
        let tx = pay(&alice, bob, 60, 0, 0);
        apply_transaction(&mut state, &tx).expect("first spend");
        let before = state.clone();
        assert!(matches!(
            apply_transaction(&mut state, &tx),
            Err(ExecutionError::BadNonce {
                expected: 1,
                got: 0,
                ..
            })
        ));
        let overdraft = pay(&alice, bob, 60, 0, 1);
        assert!(matches!(
            apply_transaction(&mut state, &overdraft),
            Err(ExecutionError::InsufficientBalance { .. })
        ));
        let overflow = pay(&alice, bob, u128::MAX, 1, 1);
        assert!(matches!(
            apply_transaction(&mut state, &overflow),
            Err(ExecutionError::Overflow(_))
        ));
        assert_eq!(state, before);
    }
}
