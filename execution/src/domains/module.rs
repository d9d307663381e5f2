//! What a domain runtime implements: the [`ExecutionModule`] trait.
//!
//! Consensus never runs domain transactions; it only orders them. Domain nodes derive each domain block
//! (DOMAINS.md 6) by asking the domain's module to decode and check transactions, then to execute a block
//! from the parent state, recording the state root after every step: the **execution trace**. Fraud
//! proofs (the next brick) re-run one step of that trace statelessly: a verifier holding only the
//! pre-state root and a witness of the keys the step touches recomputes the post-state root with
//! [`ExecutionModule::execute_step`], so the module must give the same root whether it runs over its full
//! state or over a witness.
//!
//! Modules keep their state in the protocol's state tree (`acre_consensus::state_tree`), keyed by
//! `H(domain_key_ctx, kind ‖ data)`, so every root in a trace can prove any key it commits to.

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use acre_consensus::hashing::Blake3Hash;
use acre_consensus::state_tree::{StateKey, Witness};

use crate::error::ExecutionError;
use crate::staking::{Balance, DomainBlockNumber};

/// The registered execution modules a domain can instantiate (DOMAINS.md 2).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ModuleId {
    /// Ethereum transactions on `revm`.
    Evm,
    /// Identities from X.509 certificates (a later issue).
    AutoId,
    /// Plain balances, for tests and as the smallest example of a module.
    Balances,
}

/// Everything a domain block's execution needs besides its transactions: what its inherents carry
/// (DOMAINS.md 6, step 5) and the header fields execution can observe.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BlockContext {
    /// The domain block's number.
    pub number: DomainBlockNumber,
    /// The parent domain block's hash.
    pub parent_hash: Blake3Hash,
    /// The consensus block's timestamp (milliseconds since the Unix epoch), the timestamp inherent.
    pub timestamp_ms: u64,
    /// The consensus chain's byte fee (its storage price), the byte-fee inherent.
    pub consensus_byte_fee: Balance,
}

/// One step of a block's execution: what one trace entry follows from.
#[derive(Debug)]
pub enum Step<'a, T> {
    /// The block's initialization (its inherents); its root is the trace's first entry.
    Initialize(&'a BlockContext),
    /// The transaction at `index` of the block's (shuffled) list.
    Transaction {
        /// The block being executed.
        context: &'a BlockContext,
        /// The transaction's position in the block.
        index: u32,
        /// The transaction.
        transaction: &'a T,
    },
    /// The block's finalization; its root is the trace's last entry and the block's state root.
    Finalize(&'a BlockContext),
}

// By hand: a derive would ask `T: Copy`, but a step only borrows its transaction.
impl<T> Clone for Step<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Step<'_, T> {}

/// What one transaction did in a block. A failing transaction is charged and recorded; it never aborts
/// the block.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Executed {
    /// Whether the transaction succeeded (its effects beyond its fee were kept).
    pub success: bool,
    /// Weight consumed (gas for the EVM).
    pub weight_used: u64,
    /// Execution fee charged.
    pub fee: Balance,
}

/// A block executed from its parent state.
#[derive(Debug, Clone)]
pub struct BlockExecution<S> {
    /// The state after the block.
    pub state: S,
    /// State roots: after initialization, after each transaction, after finalization
    /// (`transactions + 2` entries; the last is the block's state root).
    pub trace: Vec<Blake3Hash>,
    /// Each transaction's outcome, in block order.
    pub outcomes: Vec<Executed>,
    /// Execution fees charged in the block (what confirmed receipts pay operators).
    pub execution_fee: Balance,
    /// Balance destroyed in the block (the part of fees the module burns).
    pub burned: Balance,
}

/// A step's witness: the pruned state tree over every key the step reads or writes, and the value of
/// each covered key that has one (checked against its leaf hash by the executor).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct StepWitness {
    /// The pruned pre-state tree.
    pub tree: Witness,
    /// Values of the covered keys present in the pre-state.
    pub values: BTreeMap<StateKey, Vec<u8>>,
}

impl StepWitness {
    /// The pre-state value of `key`, checked against its leaf hash: `None` where the witness shows the
    /// key absent, an error where it does not cover the key or carries a value that does not match.
    pub fn value(&self, key: &StateKey) -> Result<Option<&[u8]>, ExecutionError> {
        let Some(hash) = self
            .tree
            .get(key)
            .map_err(|_| ExecutionError::WitnessIncomplete)?
        else {
            return Ok(None);
        };
        let bytes = self.values.get(key).ok_or(ExecutionError::WitnessIncomplete)?;
        if acre_consensus::state_tree::value_hash(bytes) != hash {
            return Err(ExecutionError::WitnessValue);
        }
        Ok(Some(bytes))
    }
}

/// A domain runtime. Implementations are pure: the same inputs give the same outputs on every machine.
pub trait ExecutionModule: Send + Sync {
    /// The module's registry id.
    const ID: ModuleId;
    /// A domain state: cheap to clone (persistent), so forks and traces share structure.
    type State: Clone + Send + Sync + std::fmt::Debug;
    /// A decoded (and signature-checked) transaction.
    type Transaction: Clone + Send + Sync + std::fmt::Debug;

    /// The domain's genesis state, with `balances` (account encoding per module) credited.
    fn genesis(&self, balances: &[(Vec<u8>, Balance)]) -> Result<Self::State, ExecutionError>;

    /// The state's root (its state tree's root).
    fn state_root(&self, state: &Self::State) -> Blake3Hash;

    /// Decodes one transaction from untrusted bytes (bounded) and checks its signature; stateless.
    fn decode_transaction(&self, bytes: &[u8]) -> Result<Self::Transaction, ExecutionError>;

    /// Who signed the transaction (the module's account encoding), or `None` for an unsigned one.
    fn signer(&self, transaction: &Self::Transaction) -> Option<Vec<u8>>;

    /// The weight the transaction declares (its gas limit for the EVM): what bundles add up.
    fn weight(&self, transaction: &Self::Transaction) -> u64;

    /// The pre-dispatch check over `transactions` in sequence against `state` (nonces follow on, each
    /// sender can pay its maximum fee): the index and reason of the first that fails.
    fn check_transactions(
        &self,
        state: &Self::State,
        transactions: &[Self::Transaction],
    ) -> Result<(), (usize, ExecutionError)>;

    /// Executes a block from `parent` with its trace.
    fn execute_block(
        &self,
        parent: &Self::State,
        context: &BlockContext,
        transactions: &[Self::Transaction],
    ) -> Result<BlockExecution<Self::State>, ExecutionError>;

    /// The witness of `step` over `pre` (the state before the step): what a fraud proof carries.
    fn step_witness(
        &self,
        pre: &Self::State,
        step: Step<'_, Self::Transaction>,
    ) -> Result<StepWitness, ExecutionError>;

    /// The stateless single-step executor: the state root after `step`, from a witness of the state
    /// before it. Gives exactly the trace entry [`ExecutionModule::execute_block`] records for the step.
    fn execute_step(
        &self,
        witness: &StepWitness,
        step: Step<'_, Self::Transaction>,
    ) -> Result<Blake3Hash, ExecutionError>;

    /// The balance of `account` (the module's account encoding) in `state`.
    fn balance(&self, state: &Self::State, account: &[u8]) -> Balance;
}
