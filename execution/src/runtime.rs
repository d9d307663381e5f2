//! The consensus chain's state transition (spec section 8).
//!
//! A block applies its transactions in order, each all-or-nothing, then credits the block reward and all
//! fees to the solution's reward address and `vote_reward` to each included vote's reward address. Any
//! failing transaction makes the block invalid (the transaction pool filters them before authoring), so
//! every node reaches the same state or rejects the block.
//!
//! Economic rules, each with its own [`ExecutionError`]:
//! - a transaction pays at least `min_fee + byte_fee × encoded size`;
//! - a transfer to an account with no balance must carry at least the existential deposit;
//! - when a sender's balance falls below the existential deposit, the remainder (dust) is burnt. The
//!   account keeps its nonce (see `docs/decisions.md`): forgetting it would let anyone replay the
//!   account's old transactions once it is funded again;
//! - a reward that would leave an account with no balance below the existential deposit is burnt rather
//!   than creating a dust account.
//!
//! So total issuance changes by exactly the rewards minted minus what is burnt ([`BlockOutcome`]).

use crate::config::RuntimeConfig;
use crate::error::ExecutionError;
use crate::state::AccountStore;
use crate::transaction::{Address, SignedTransaction};

/// What one transaction did besides moving its amount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransactionOutcome {
    /// Fee paid (credited to the block author with the block reward).
    pub fee: u128,
    /// Dust burnt from the sender's balance (below the existential deposit after the transfer).
    pub burnt: u128,
}

/// Checks everything about `tx` that does not depend on state, cheapest first: version, chain, fee,
/// then the signature.
pub fn check_transaction(config: &RuntimeConfig, tx: &SignedTransaction) -> Result<(), ExecutionError> {
    precheck_transaction(config, tx)?;
    tx.verify(&config.genesis_hash)
}

/// The cheap stateless checks of [`check_transaction`]: version, chain and fee, without the signature
/// (the transaction pool runs its state lookups between these and the signature check).
pub fn precheck_transaction(config: &RuntimeConfig, tx: &SignedTransaction) -> Result<(), ExecutionError> {
    if tx.version != SignedTransaction::VERSION {
        return Err(ExecutionError::UnsupportedVersion { version: tx.version });
    }
    if tx.genesis_hash != config.genesis_hash {
        return Err(ExecutionError::WrongChain {
            expected: config.genesis_hash,
            got: tx.genesis_hash,
        });
    }
    let minimum = config.minimum_fee(SignedTransaction::ENCODED_SIZE);
    if tx.transfer.fee < minimum {
        return Err(ExecutionError::FeeTooLow {
            fee: tx.transfer.fee,
            minimum,
        });
    }
    Ok(())
}

/// Applies one transaction. State is unchanged on error.
pub fn apply_transaction(
    state: &mut impl AccountStore,
    config: &RuntimeConfig,
    tx: &SignedTransaction,
) -> Result<TransactionOutcome, ExecutionError> {
    check_transaction(config, tx)?;
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
    let next_nonce = from
        .nonce
        .checked_add(1)
        .ok_or(ExecutionError::NonceExhausted(sender))?;
    let needed = transfer
        .amount
        .checked_add(transfer.fee)
        .ok_or(ExecutionError::Overflow(sender))?;
    let mut remaining = from
        .balance
        .checked_sub(needed)
        .ok_or(ExecutionError::InsufficientBalance {
            sender,
            balance: from.balance,
            needed,
        })?;
    // Every check happens before the first write, so a failing transaction changes nothing.
    let recipient = if transfer.to == sender {
        // A self-transfer only pays the fee; the amount cannot overflow what was just debited.
        remaining += transfer.amount;
        None
    } else {
        let mut to = state.account(&transfer.to);
        if !to.is_live() && transfer.amount < config.existential_deposit {
            return Err(ExecutionError::BelowExistentialDeposit {
                recipient: transfer.to,
                amount: transfer.amount,
                deposit: config.existential_deposit,
            });
        }
        to.balance = to
            .balance
            .checked_add(transfer.amount)
            .ok_or(ExecutionError::Overflow(transfer.to))?;
        Some(to)
    };
    let burnt = if remaining < config.existential_deposit {
        std::mem::take(&mut remaining)
    } else {
        0
    };
    from.balance = remaining;
    from.nonce = next_nonce;
    state.set_account(sender, from);
    if let Some(to) = recipient {
        state.set_account(transfer.to, to);
    }
    Ok(TransactionOutcome {
        fee: transfer.fee,
        burnt,
    })
}

/// What applying a block produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockOutcome {
    /// Fees paid by the block's transactions.
    pub fees: u128,
    /// Block reward plus fees credited to the author (0 if burnt: a reward below the existential deposit).
    pub credited: u128,
    /// Vote rewards credited to voters.
    pub votes_paid: u128,
    /// New balance created: the block reward plus one vote reward per vote.
    pub minted: u128,
    /// Balance destroyed: senders' dust and rewards too small to create an account.
    pub burnt: u128,
}

/// Applies a block's transactions, then credits `block_reward` plus fees to `author` and `vote_reward`
/// to each of `voters` (one entry per included vote; an address may appear more than once).
///
/// On error the state may hold the effects of earlier transactions: callers apply blocks to a scratch
/// copy (or a state transaction) and discard it when the block is invalid.
pub fn apply_block(
    state: &mut impl AccountStore,
    config: &RuntimeConfig,
    author: Address,
    voters: &[Address],
    transactions: &[SignedTransaction],
) -> Result<BlockOutcome, ExecutionError> {
    let mut outcome = BlockOutcome::default();
    for tx in transactions {
        let applied = apply_transaction(state, config, tx)?;
        outcome.fees = outcome
            .fees
            .checked_add(applied.fee)
            .ok_or(ExecutionError::Overflow(author))?;
        outcome.burnt = outcome
            .burnt
            .checked_add(applied.burnt)
            .ok_or(ExecutionError::Overflow(tx.transfer.from))?;
    }
    let author_credit = config
        .block_reward
        .checked_add(outcome.fees)
        .ok_or(ExecutionError::Overflow(author))?;
    outcome.minted = config.block_reward;
    if credit(state, config, author, author_credit)? {
        outcome.credited = author_credit;
    } else {
        outcome.burnt = outcome
            .burnt
            .checked_add(author_credit)
            .ok_or(ExecutionError::Overflow(author))?;
    }
    for voter in voters {
        outcome.minted = outcome
            .minted
            .checked_add(config.vote_reward)
            .ok_or(ExecutionError::Overflow(*voter))?;
        if credit(state, config, *voter, config.vote_reward)? {
            outcome.votes_paid = outcome
                .votes_paid
                .checked_add(config.vote_reward)
                .ok_or(ExecutionError::Overflow(*voter))?;
        } else {
            outcome.burnt = outcome
                .burnt
                .checked_add(config.vote_reward)
                .ok_or(ExecutionError::Overflow(*voter))?;
        }
    }
    Ok(outcome)
}

/// Credits `amount` to `address`; returns `false` (and changes nothing) when the account has no balance
/// and `amount` is below the existential deposit: the amount is burnt rather than creating dust.
fn credit(
    state: &mut impl AccountStore,
    config: &RuntimeConfig,
    address: Address,
    amount: u128,
) -> Result<bool, ExecutionError> {
    let mut account = state.account(&address);
    if amount == 0 {
        return Ok(true);
    }
    if !account.is_live() && amount < config.existential_deposit {
        return Ok(false);
    }
    account.balance = account
        .balance
        .checked_add(amount)
        .ok_or(ExecutionError::Overflow(address))?;
    state.set_account(address, account);
    Ok(true)
}

#[cfg(test)]
mod tests;
