//! The balances module: the smallest [`ExecutionModule`], transfers between ed25519 accounts inside a
//! domain. Tests use it to exercise derivation, receipts and fraud-proof steps without an EVM; it is
//! also the reference for what a module must do.
//!
//! State keys (`H(domain_key_ctx, kind ‖ data)`): kind 0 an account by its 32-byte public key (value:
//! borsh `Account`), kind 1 the block environment (value: block number and timestamp), which
//! initialization writes so every block's first trace entry differs from its parent's root.
//! A transaction pays `fee` to the block's execution fees (the domain burns it; consensus pays operators
//! from the domain's balance when the receipt is confirmed).

use std::collections::{BTreeMap, BTreeSet};

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::SigningKey;

use acre_consensus::codec;
use acre_consensus::hashing::{self, Blake3Hash, HashContext};
use acre_consensus::signing::{self, SigningContext};
use acre_consensus::state_tree::{PersistentStateTree, StateKey, value_hash};

use crate::domains::module::{
    BlockContext, BlockExecution, Executed, ExecutionModule, ModuleId, Step, StepWitness,
};
use crate::error::ExecutionError;
use crate::staking::Balance;
use crate::state::Account;

/// Largest encoded balances transaction.
pub const MAX_TRANSACTION_SIZE: usize = 256;

/// Weight of every balances transaction.
pub const TRANSFER_WEIGHT: u64 = 1;

/// A transfer inside a balances domain.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct DomainTransfer {
    /// The chain it is for (see [`BalancesModule::chain`]).
    pub chain: Blake3Hash,
    /// Sender and signer (ed25519 public key).
    pub from: [u8; 32],
    /// Recipient.
    pub to: [u8; 32],
    /// Amount.
    pub amount: Balance,
    /// Execution fee.
    pub fee: Balance,
    /// The sender's nonce.
    pub nonce: u64,
}

/// A signed transfer.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedTransfer {
    /// The transfer.
    pub transfer: DomainTransfer,
    /// Context-prefixed ed25519 signature over `H(domain_tx_ctx, borsh(transfer))`.
    pub signature: [u8; 64],
}

impl SignedTransfer {
    /// Signs `transfer` with `key`.
    pub fn sign(transfer: DomainTransfer, key: &SigningKey) -> Self {
        let digest = hashing::hash(HashContext::DomainTransaction, &codec::encode(&transfer));
        Self {
            signature: signing::sign(key, SigningContext::Transaction, &digest),
            transfer,
        }
    }

    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }
}

/// The balances module of one domain.
#[derive(Debug, Clone)]
pub struct BalancesModule {
    /// The identity transactions sign for (for instance `H(consensus genesis ‖ domain id)`).
    pub chain: Blake3Hash,
}

/// One state entry.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Entry {
    /// An account.
    Account(Account),
    /// The block environment: number and timestamp.
    Environment(u64, u64),
}

/// A balances domain's state.
pub type BalancesState = PersistentStateTree<Entry>;

/// The state key of account `who`.
pub fn account_key(who: &[u8; 32]) -> StateKey {
    let mut data = [0u8; 33];
    data[1..].copy_from_slice(who);
    hashing::hash(HashContext::DomainStateKey, &data).0
}

fn environment_key() -> StateKey {
    hashing::hash(HashContext::DomainStateKey, &[1]).0
}

/// Reads and writes entries: over a full state or over a witness.
trait Entries {
    fn read(&self, key: &StateKey) -> Result<Option<Entry>, ExecutionError>;
    fn write(&mut self, key: StateKey, entry: Option<Entry>) -> Result<(), ExecutionError>;
}

impl Entries for BalancesState {
    fn read(&self, key: &StateKey) -> Result<Option<Entry>, ExecutionError> {
        Ok(self.value(key).cloned())
    }

    fn write(&mut self, key: StateKey, entry: Option<Entry>) -> Result<(), ExecutionError> {
        match entry {
            Some(entry) => self.insert(key, value_hash(&codec::encode(&entry)), entry),
            None => self.remove(&key),
        }
        Ok(())
    }
}

/// A witness with its values, as a state.
struct WitnessEntries {
    witness: StepWitness,
}

impl Entries for WitnessEntries {
    fn read(&self, key: &StateKey) -> Result<Option<Entry>, ExecutionError> {
        let Some(bytes) = self.witness.value(key)? else {
            return Ok(None);
        };
        codec::decode_bounded("balances entry", bytes, MAX_TRANSACTION_SIZE)
            .map(Some)
            .map_err(|_| ExecutionError::WitnessValue)
    }

    fn write(&mut self, key: StateKey, entry: Option<Entry>) -> Result<(), ExecutionError> {
        let hash = entry.as_ref().map(|entry| value_hash(&codec::encode(entry)));
        self.witness
            .tree
            .set(&key, hash)
            .map_err(|_| ExecutionError::WitnessIncomplete)?;
        match entry {
            Some(entry) => self.witness.values.insert(key, codec::encode(&entry)),
            None => self.witness.values.remove(&key),
        };
        Ok(())
    }
}

fn account(entries: &impl Entries, who: &[u8; 32]) -> Result<Account, ExecutionError> {
    Ok(match entries.read(&account_key(who))? {
        Some(Entry::Account(account)) => account,
        _ => Account::default(),
    })
}

fn set_account(entries: &mut impl Entries, who: &[u8; 32], account: Account) -> Result<(), ExecutionError> {
    let entry = (account != Account::default()).then_some(Entry::Account(account));
    entries.write(account_key(who), entry)
}

fn initialize(entries: &mut impl Entries, context: &BlockContext) -> Result<(), ExecutionError> {
    entries.write(
        environment_key(),
        Some(Entry::Environment(context.number.0, context.timestamp_ms)),
    )
}

/// Applies one transfer; returns its outcome. A transfer that cannot apply (nonce, funds) is recorded
/// as failed and changes nothing.
fn apply(entries: &mut impl Entries, transfer: &DomainTransfer) -> Result<Executed, ExecutionError> {
    let failed = Executed {
        success: false,
        weight_used: TRANSFER_WEIGHT,
        fee: 0,
    };
    let mut from = account(entries, &transfer.from)?;
    let Some(needed) = transfer.amount.checked_add(transfer.fee) else {
        return Ok(failed);
    };
    if from.nonce != transfer.nonce || from.balance < needed {
        return Ok(failed);
    }
    from.balance -= needed;
    from.nonce += 1;
    set_account(entries, &transfer.from, from)?;
    let mut to = account(entries, &transfer.to)?;
    to.balance = to.balance.saturating_add(transfer.amount);
    set_account(entries, &transfer.to, to)?;
    Ok(Executed {
        success: true,
        weight_used: TRANSFER_WEIGHT,
        fee: transfer.fee,
    })
}

/// The keys a step touches.
fn step_keys(step: &Step<'_, SignedTransfer>) -> Vec<StateKey> {
    match step {
        Step::Initialize(_) => vec![environment_key()],
        Step::Transaction { transaction, .. } => vec![
            account_key(&transaction.transfer.from),
            account_key(&transaction.transfer.to),
        ],
        Step::Finalize(_) => Vec::new(),
    }
}

impl ExecutionModule for BalancesModule {
    const ID: ModuleId = ModuleId::Balances;
    type State = BalancesState;
    type Transaction = SignedTransfer;

    fn genesis(&self, balances: &[(Vec<u8>, Balance)]) -> Result<BalancesState, ExecutionError> {
        let mut state = BalancesState::new();
        for (who, amount) in balances {
            let who: [u8; 32] = who
                .as_slice()
                .try_into()
                .map_err(|_| ExecutionError::DomainAccount { len: who.len() })?;
            let mut entry = account(&state, &who)?;
            entry.balance = entry
                .balance
                .checked_add(*amount)
                .ok_or(ExecutionError::DomainAccount { len: 32 })?;
            set_account(&mut state, &who, entry)?;
        }
        Ok(state)
    }

    fn state_root(&self, state: &BalancesState) -> Blake3Hash {
        state.root()
    }

    fn decode_transaction(&self, bytes: &[u8]) -> Result<SignedTransfer, ExecutionError> {
        let signed: SignedTransfer = codec::decode_bounded("domain transfer", bytes, MAX_TRANSACTION_SIZE)?;
        if signed.transfer.chain != self.chain {
            return Err(ExecutionError::WrongDomainChain);
        }
        let digest = hashing::hash(HashContext::DomainTransaction, &codec::encode(&signed.transfer));
        signing::verify(
            &signed.transfer.from,
            SigningContext::Transaction,
            &digest,
            &signed.signature,
        )
        .map_err(|_| ExecutionError::BadDomainSignature)?;
        Ok(signed)
    }

    fn signer(&self, transaction: &SignedTransfer) -> Option<Vec<u8>> {
        Some(transaction.transfer.from.to_vec())
    }

    fn weight(&self, _transaction: &SignedTransfer) -> u64 {
        TRANSFER_WEIGHT
    }

    fn check_transactions(
        &self,
        state: &BalancesState,
        transactions: &[SignedTransfer],
    ) -> Result<(), (usize, ExecutionError)> {
        let mut running: BTreeMap<[u8; 32], Account> = BTreeMap::new();
        for (index, signed) in transactions.iter().enumerate() {
            let transfer = &signed.transfer;
            let sender = match running.get(&transfer.from) {
                Some(account) => *account,
                None => account(state, &transfer.from).map_err(|error| (index, error))?,
            };
            if transfer.nonce != sender.nonce {
                return Err((
                    index,
                    ExecutionError::DomainNonce {
                        expected: sender.nonce,
                        got: transfer.nonce,
                    },
                ));
            }
            let needed = transfer.amount.checked_add(transfer.fee);
            let Some(left) = needed.and_then(|needed| sender.balance.checked_sub(needed)) else {
                return Err((index, ExecutionError::DomainFunds));
            };
            running.insert(
                transfer.from,
                Account {
                    balance: left,
                    nonce: sender.nonce + 1,
                },
            );
        }
        Ok(())
    }

    fn execute_block(
        &self,
        parent: &BalancesState,
        context: &BlockContext,
        transactions: &[SignedTransfer],
    ) -> Result<BlockExecution<BalancesState>, ExecutionError> {
        let mut state = parent.clone();
        let mut trace = Vec::with_capacity(transactions.len() + 2);
        initialize(&mut state, context)?;
        trace.push(state.root());
        let mut outcomes = Vec::with_capacity(transactions.len());
        let mut execution_fee: Balance = 0;
        for signed in transactions {
            let outcome = apply(&mut state, &signed.transfer)?;
            execution_fee = execution_fee.saturating_add(outcome.fee);
            outcomes.push(outcome);
            trace.push(state.root());
        }
        trace.push(state.root());
        Ok(BlockExecution {
            state,
            trace,
            outcomes,
            execution_fee,
            burned: 0,
        })
    }

    fn step_witness(
        &self,
        pre: &BalancesState,
        step: Step<'_, SignedTransfer>,
    ) -> Result<StepWitness, ExecutionError> {
        let keys = step_keys(&step);
        let values = keys
            .iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter_map(|key| pre.value(key).map(|entry| (*key, codec::encode(entry))))
            .collect();
        Ok(StepWitness {
            tree: pre.witness(&keys),
            values,
        })
    }

    fn execute_step(
        &self,
        witness: &StepWitness,
        step: Step<'_, SignedTransfer>,
    ) -> Result<Blake3Hash, ExecutionError> {
        let mut entries = WitnessEntries {
            witness: witness.clone(),
        };
        match step {
            Step::Initialize(context) => initialize(&mut entries, context)?,
            Step::Transaction { transaction, .. } => {
                apply(&mut entries, &transaction.transfer)?;
            }
            Step::Finalize(_) => {}
        }
        Ok(entries.witness.tree.root())
    }

    fn balance(&self, state: &BalancesState, who: &[u8]) -> Balance {
        <[u8; 32]>::try_from(who)
            .ok()
            .and_then(|who| account(state, &who).ok())
            .map_or(0, |account| account.balance)
    }
}

#[cfg(test)]
pub(crate) mod tests;
