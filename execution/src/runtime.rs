//! The consensus chain's state transition (spec section 8).
//!
//! A transaction is a transfer or a domains call (registering a domain or an operator, nominating,
//! withdrawing, unlocking; DOMAINS.md 2 and 3), applied to the domain registry the state carries.
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

use acre_consensus::BlockNumber;

pub use bundles::{BundlesOutcome, apply_bundles};

use crate::config::RuntimeConfig;
use crate::domains::genesis_state_root;
use crate::error::ExecutionError;
use crate::state::{Account, AccountStore};
use crate::transaction::{Address, Call, DomainCall, SignedTransaction};

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
    let minimum = config.minimum_fee(tx.encoded_len());
    if tx.transaction.fee < minimum {
        return Err(ExecutionError::FeeTooLow {
            fee: tx.transaction.fee,
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
    let transaction = &tx.transaction;
    let sender = transaction.from;
    let from = state.account(&sender);
    if transaction.nonce != from.nonce {
        return Err(ExecutionError::BadNonce {
            sender,
            expected: from.nonce,
            got: transaction.nonce,
        });
    }
    let debit = Debit {
        sender,
        from,
        next_nonce: from
            .nonce
            .checked_add(1)
            .ok_or(ExecutionError::NonceExhausted(sender))?,
        fee: transaction.fee,
    };
    match &transaction.call {
        Call::Transfer { to, amount } => apply_transfer(state, config, debit, *to, *amount),
        Call::Domain(call) => apply_domain_call(state, config, debit, transaction.debit(), call),
    }
}

/// The sender's side of a transaction whose nonce checked out.
#[derive(Debug, Clone, Copy)]
struct Debit {
    sender: Address,
    from: Account,
    next_nonce: u64,
    fee: u128,
}

impl Debit {
    /// The sender's balance after paying the fee and `amount`.
    fn remaining(&self, amount: u128) -> Result<u128, ExecutionError> {
        let needed = amount
            .checked_add(self.fee)
            .ok_or(ExecutionError::Overflow(self.sender))?;
        self.from
            .balance
            .checked_sub(needed)
            .ok_or(ExecutionError::InsufficientBalance {
                sender: self.sender,
                balance: self.from.balance,
                needed,
            })
    }

    /// Writes the sender back with `remaining` (burning it as dust below the existential deposit) and
    /// the next nonce.
    fn settle(
        mut self,
        state: &mut impl AccountStore,
        config: &RuntimeConfig,
        mut remaining: u128,
    ) -> TransactionOutcome {
        let burnt = if remaining < config.existential_deposit {
            std::mem::take(&mut remaining)
        } else {
            0
        };
        self.from.balance = remaining;
        self.from.nonce = self.next_nonce;
        state.set_account(self.sender, self.from);
        TransactionOutcome { fee: self.fee, burnt }
    }
}

fn apply_transfer(
    state: &mut impl AccountStore,
    config: &RuntimeConfig,
    debit: Debit,
    to: Address,
    amount: u128,
) -> Result<TransactionOutcome, ExecutionError> {
    let mut remaining = debit.remaining(amount)?;
    // Every check happens before the first write, so a failing transaction changes nothing.
    let recipient = if to == debit.sender {
        // A self-transfer only pays the fee; the amount cannot overflow what was just debited.
        remaining += amount;
        None
    } else {
        let mut account = state.account(&to);
        if !account.is_live() && amount < config.existential_deposit {
            return Err(ExecutionError::BelowExistentialDeposit {
                recipient: to,
                amount,
                deposit: config.existential_deposit,
            });
        }
        account.balance = account
            .balance
            .checked_add(amount)
            .ok_or(ExecutionError::Overflow(to))?;
        Some(account)
    };
    let outcome = debit.settle(state, config, remaining);
    if let Some(account) = recipient {
        state.set_account(to, account);
    }
    Ok(outcome)
}

/// A domains call: the sender pays the fee and what the call takes (a stake, a domain's initial
/// balances), the registry changes, and an unlock pays the sender. The registry change is made on a copy
/// and kept only when the whole call succeeds, so a failing call changes nothing.
fn apply_domain_call(
    state: &mut impl AccountStore,
    config: &RuntimeConfig,
    debit: Debit,
    taken: u128,
    call: &DomainCall,
) -> Result<TransactionOutcome, ExecutionError> {
    let mut remaining = debit.remaining(taken)?;
    let (number, parent) = state.current_block();
    let sender = debit.sender;
    let domains = state.domains_mut().ok_or(ExecutionError::NoDomains)?;
    let mut registry = domains.clone();
    let paid = match call {
        DomainCall::Instantiate(domain) => {
            let root = genesis_state_root(domain)?;
            // A domain refers to the newest consensus block whose hash is known: the parent of the
            // block creating it (docs/decisions.md).
            let created_at = BlockNumber::new(number.get().saturating_sub(1));
            registry.instantiate(sender, domain.clone(), created_at, parent, root)?;
            0
        }
        DomainCall::RegisterOperator {
            domain,
            signing_key,
            amount,
            nomination_tax,
            minimum_nominator_stake,
        } => {
            registry.register_operator(
                *domain,
                sender,
                *signing_key,
                *amount,
                *nomination_tax,
                *minimum_nominator_stake,
            )?;
            0
        }
        DomainCall::Nominate { operator, amount } => {
            registry.nominate(*operator, sender, *amount)?;
            0
        }
        DomainCall::Withdraw { operator, shares } => {
            registry.withdraw(*operator, sender, *shares)?;
            0
        }
        DomainCall::Unlock { operator } => registry.unlock(*operator, sender)?,
        DomainCall::Deregister { operator } => {
            registry.deregister(*operator, sender)?;
            0
        }
    };
    remaining = remaining
        .checked_add(paid)
        .ok_or(ExecutionError::Overflow(sender))?;
    *domains = registry;
    Ok(debit.settle(state, config, remaining))
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
            .ok_or(ExecutionError::Overflow(tx.transaction.from))?;
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

mod bundles;
#[cfg(test)]
mod domain_tests;
#[cfg(test)]
mod tests;
