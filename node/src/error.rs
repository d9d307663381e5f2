//! The node's errors: why a block, transaction or solution was rejected, and what failed underneath.

use acre_consensus::blocks::BlockHash;
use acre_consensus::chain_state::BlockError;
use acre_consensus::sectors::PublicKey;
use acre_consensus::validation::HeaderError;
use acre_consensus::{BlockNumber, DecodeError};
use acre_execution::ExecutionError;
use thiserror::Error;

/// Why a block was not imported. Every variant names the failed check, so a peer's (or a test's) bad
/// block is reported precisely while the node carries on.
#[derive(Debug, Error)]
pub enum ImportError {
    /// The header or body bytes do not decode.
    #[error("malformed block: {0}")]
    Decode(#[from] DecodeError),
    /// The block is already stored.
    #[error("block {0} is already imported")]
    AlreadyKnown(BlockHash),
    /// The parent is not stored.
    #[error("unknown parent {0}")]
    UnknownParent(BlockHash),
    /// Genesis is built from the chain spec, never imported.
    #[error("a block numbered 0 cannot be imported")]
    Genesis,
    /// The block is too far below the best block to be imported (spec 8: confirmation depth).
    #[error("block {number} is more than the confirmation depth below the best block {best}")]
    TooOld {
        /// The block number.
        number: BlockNumber,
        /// The best block number.
        best: BlockNumber,
    },
    /// The block forks off the chain below archived history, which cannot change.
    #[error("block {number} forks off below the archived block {archived}")]
    ForksArchivedHistory {
        /// The block number.
        number: BlockNumber,
        /// The archiving point.
        archived: BlockNumber,
    },
    /// The block breaks a rule of its branch (`acre_consensus::chain_state`): header, body root, segment
    /// headers, block-list, votes, equivocation proofs or state root.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// A transaction does not decode.
    #[error("transaction {index}: {source}")]
    TransactionEncoding {
        /// Which one (counting from zero).
        index: usize,
        /// The underlying error.
        source: ExecutionError,
    },
    /// A bundle does not decode.
    #[error("bundle {index}: {source}")]
    BundleEncoding {
        /// Which one (counting from zero).
        index: usize,
        /// The underlying error.
        source: ExecutionError,
    },
    /// The state transition fails (bad signature, nonce, balance: a double spend lands here).
    #[error("state transition: {0}")]
    Execution(#[from] ExecutionError),
    /// The block's farmer already signed another block or vote for this slot: it equivocated.
    #[error("equivocation: farmer {0} signed two different blocks or votes for one slot")]
    Equivocation(PublicKey),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] acre_storage::Error),
}

impl ImportError {
    /// Every [`Self::reason`], so metrics can expose each at zero before the first rejection.
    pub const REASONS: &[&str] = &[
        "decode",
        "already_known",
        "unknown_parent",
        "genesis",
        "too_old",
        "forks_archived_history",
        "proof_of_time",
        "seal",
        "solution",
        "header",
        "body_root",
        "segment_headers",
        "blocklisted",
        "vote",
        "equivocation_proof",
        "state_root",
        "transaction_encoding",
        "execution",
        "equivocation",
        "storage",
        "bundle",
    ];

    /// A short, stable name for metrics (`acre_blocks_rejected_by_reason_total{reason}`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Decode(_) => "decode",
            Self::AlreadyKnown(_) => "already_known",
            Self::UnknownParent(_) => "unknown_parent",
            Self::Genesis => "genesis",
            Self::TooOld { .. } => "too_old",
            Self::ForksArchivedHistory { .. } => "forks_archived_history",
            Self::Block(error) => match error {
                BlockError::Header(HeaderError::ProofOfTime(_)) => "proof_of_time",
                BlockError::Header(HeaderError::Seal(_)) => "seal",
                BlockError::Header(HeaderError::Solution(_)) => "solution",
                BlockError::Header(_) => "header",
                BlockError::BodyRoot => "body_root",
                BlockError::SegmentInclusion(_) => "segment_headers",
                BlockError::Blocklisted(_) => "blocklisted",
                BlockError::Vote { .. } => "vote",
                BlockError::TooManyEquivocationProofs(_)
                | BlockError::EquivocationProof { .. }
                | BlockError::AlreadyBlocklisted { .. } => "equivocation_proof",
                BlockError::StateRoot { .. } => "state_root",
            },
            Self::TransactionEncoding { .. } => "transaction_encoding",
            Self::BundleEncoding { .. } | Self::Execution(ExecutionError::InvalidBundle { .. }) => "bundle",
            Self::Execution(_) => "execution",
            Self::Equivocation(_) => "equivocation",
            Self::Storage(_) => "storage",
        }
    }
}

/// Errors of the node's machinery (opening the chain, archiving, RPC).
#[derive(Debug, Error)]
pub enum Error {
    /// The chain spec is invalid.
    #[error("chain spec: {0}")]
    ChainSpec(String),
    /// The domain operator cannot do its work (a wrong key, an unknown domain, ...).
    #[error("operator: {0}")]
    Operator(String),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] acre_storage::Error),
    /// The database does not belong to this chain.
    #[error("the database at {path} holds genesis {found}, not this chain's {expected}")]
    WrongChain {
        /// The file or directory.
        path: String,
        /// What was found.
        found: BlockHash,
        /// What the rule requires.
        expected: BlockHash,
    },
    /// Stored data is inconsistent.
    #[error("corrupt database: {0}")]
    Corrupt(String),
    /// The network could not start (a bad peer key file, an address it cannot listen on).
    #[error("network: {0}")]
    Network(String),
    /// A stored block failed to decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A snap-sync snapshot cannot start this database: it is not empty, or the snapshot contradicts
    /// itself (its state root, context or segment headers do not match its block).
    #[error("snapshot refused: {0}")]
    Snapshot(String),
    /// I/O failed (data directory, sockets).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The farmer RPC server (block submission, seals, solutions) was asked to listen beyond loopback
    /// without the explicit opt-in.
    #[error(
        "refusing to serve the farmer RPC on non-loopback address {address}: it accepts blocks, solutions and \
         seals; pass --farmer-rpc-unsafe-external if the network in between is trusted"
    )]
    FarmerRpcExposed {
        /// The address asked for.
        address: std::net::SocketAddr,
    },
    /// An `--rpc-allow-host` or `--rpc-cors` entry is malformed.
    #[error("RPC access list entry {entry:?}: {reason}")]
    RpcAccess {
        /// The entry as given.
        entry: String,
        /// Why.
        reason: String,
    },
    /// Deriving or executing an EVM domain block failed (a state inconsistency, never a bad transaction:
    /// those are recorded as failed in the block).
    #[error("EVM domain execution: {0}")]
    DomainExecution(ExecutionError),
    /// A domain block does not extend the head it was pushed onto.
    #[error("domain block {number} (parent {parent}) does not extend the head {head_number} ({head})")]
    DomainNotNext {
        /// The head's number.
        head_number: u64,
        /// The head's hash.
        head: acre_consensus::Blake3Hash,
        /// The block's number.
        number: u64,
        /// The block's parent hash.
        parent: acre_consensus::Blake3Hash,
    },
    /// The state of an EVM domain block is no longer kept (only the newest blocks' states are).
    #[error("the state of domain block {number} is pruned (states are kept from block {oldest})")]
    DomainStatePruned {
        /// The block asked for.
        number: u64,
        /// The oldest block whose state is kept.
        oldest: u64,
    },
    /// An EVM transaction is refused: it does not decode, is for another chain, has a bad signature, or
    /// breaks a fee, gas or funds rule against the head state.
    #[error("{0}")]
    EvmTransactionRefused(ExecutionError),
    /// An EVM transaction's nonce is below its sender's next nonce.
    #[error("nonce too low: the sender's next nonce is {next}, the transaction's is {got}")]
    EvmNonceTooLow {
        /// The sender's next nonce.
        next: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// An EVM transaction's nonce is too far ahead of its sender's next nonce for the pool.
    #[error(
        "nonce too high: the sender's next nonce is {next}, the pool holds at most {window} ahead, got {got}"
    )]
    EvmNonceTooHigh {
        /// The sender's next nonce.
        next: u64,
        /// How far ahead the pool accepts.
        window: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// This EVM transaction is already pending or included.
    #[error("already known: transaction {0}")]
    EvmAlreadyKnown(alloy_primitives::B256),
    /// A pending transaction has the same sender and nonce and this one does not pay 10% more.
    #[error(
        "replacement transaction underpriced: a pending transaction with nonce {nonce} pays {pending}, a replacement at least {minimum} per gas"
    )]
    EvmReplacementUnderpriced {
        /// The nonce.
        nonce: u64,
        /// The pending transaction's maximum fee per gas.
        pending: u128,
        /// The least maximum fee per gas a replacement offers.
        minimum: u128,
    },
    /// The sender already has the most pending EVM transactions the pool holds per sender.
    #[error("the sender already has {limit} pending transactions")]
    EvmSenderLimit {
        /// The per-sender limit.
        limit: usize,
    },
    /// The EVM transaction pool is full.
    #[error("transaction pool is full ({capacity} transactions)")]
    EvmPoolFull {
        /// The pool's capacity.
        capacity: usize,
    },
}

/// The node crate's error, under the name domain code (the EVM chain store, the Ethereum JSON-RPC, the
/// operator) uses.
pub type NodeError = Error;

/// Why the transaction pool refused a transaction. Each reason is its own variant (and its own
/// `acre_txpool_rejected_total{reason}` label, see [`PoolError::reason`]).
#[derive(Debug, Error)]
pub enum PoolError {
    /// The bytes are not a transaction this node can decode (malformed or an unknown version).
    #[error(transparent)]
    Undecodable(ExecutionError),
    /// The transaction was signed for another chain.
    #[error("the transaction is for the chain with genesis {got}, this chain's genesis is {expected}")]
    WrongChain {
        /// What the rule requires.
        expected: acre_consensus::Blake3Hash,
        /// What was found.
        got: acre_consensus::Blake3Hash,
    },
    /// The fee is below `min_fee + byte_fee × size`.
    #[error("fee {fee} is below the minimum of {minimum}")]
    FeeTooLow {
        /// The fee offered.
        fee: u128,
        /// The least allowed.
        minimum: u128,
    },
    /// The signature (or the sender's public key) does not verify.
    #[error(transparent)]
    BadSignature(ExecutionError),
    /// Its nonce is already used by the best state.
    #[error("nonce {got} is stale: the account's next nonce is {expected}")]
    StaleNonce {
        /// What the rule requires.
        expected: u64,
        /// What was found.
        got: u64,
    },
    /// Its nonce is too far ahead of the account's next nonce to be held.
    #[error(
        "nonce {got} is too far ahead: the account's next nonce is {next}, the pool holds at most {window} ahead"
    )]
    NonceTooFarAhead {
        /// The next nonce the account can use.
        next: u64,
        /// How far ahead of the next nonce the pool accepts.
        window: u64,
        /// What was found.
        got: u64,
    },
    /// The sender cannot pay amount plus fee on top of its earlier pending transactions.
    #[error("balance {balance} cannot pay {needed} (this transaction and the sender's earlier pending ones)")]
    InsufficientBalance {
        /// The account's balance.
        balance: u128,
        /// What the transaction needs.
        needed: u128,
    },
    /// The transfer would create an account below the existential deposit.
    #[error("the recipient has no balance and {amount} is below the existential deposit {deposit}")]
    BelowExistentialDeposit {
        /// The amount.
        amount: u128,
        /// The existential deposit.
        deposit: u128,
    },
    /// This exact transaction is already pending.
    #[error("transaction {0} is already pending")]
    AlreadyPending(acre_consensus::Blake3Hash),
    /// Another transaction with this sender and nonce is pending and this one does not pay enough more.
    #[error(
        "a transaction with this nonce is pending with fee {pending_fee}; a replacement pays at least {minimum}"
    )]
    ReplacementUnderpriced {
        /// The fee of the transaction in the pool.
        pending_fee: u128,
        /// The least allowed.
        minimum: u128,
    },
    /// The sender already has the most pending transactions the pool holds per sender.
    #[error("the sender already has {limit} pending transactions")]
    SenderLimit {
        /// The per-sender limit.
        limit: usize,
    },
    /// The pool is full and this transaction pays no more than the cheapest pending one.
    #[error("the transaction pool is full ({capacity} transactions); pay more than {lowest_fee} to enter")]
    PoolFull {
        /// The pool's capacity.
        capacity: usize,
        /// The lowest fee in the full pool.
        lowest_fee: u128,
    },
    /// A domains call the best state refuses (an unknown operator, a stake below the minimum, a
    /// deregistration by someone else, ...).
    #[error("refused: {0}")]
    Refused(ExecutionError),
}

/// Why the bundle pool refused a bundle.
#[derive(Debug, Error)]
pub enum BundlePoolError {
    /// The bytes are not a bundle (malformed, oversize or an unknown version).
    #[error("undecodable bundle: {0}")]
    Undecodable(ExecutionError),
    /// The best registry refuses it: unknown domain or operator, or a bad signature.
    #[error("refused: {0}")]
    Refused(ExecutionError),
    /// This exact bundle is already pending.
    #[error("bundle {0} is already pending")]
    AlreadyPending(acre_consensus::Blake3Hash),
    /// The pool is full.
    #[error("the bundle pool is full ({capacity} bundles)")]
    Full {
        /// The pool's capacity.
        capacity: usize,
    },
}

impl PoolError {
    /// Every [`Self::reason`], so metrics can expose each at zero before the first rejection.
    pub const REASONS: &[&str] = &[
        "undecodable",
        "wrong_chain",
        "fee_too_low",
        "bad_signature",
        "stale_nonce",
        "nonce_too_far_ahead",
        "insufficient_balance",
        "below_existential_deposit",
        "already_pending",
        "replacement_underpriced",
        "sender_limit",
        "pool_full",
        "refused",
    ];

    /// A short, stable name of the reason (the metrics label).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Undecodable(_) => "undecodable",
            Self::WrongChain { .. } => "wrong_chain",
            Self::FeeTooLow { .. } => "fee_too_low",
            Self::BadSignature(_) => "bad_signature",
            Self::StaleNonce { .. } => "stale_nonce",
            Self::NonceTooFarAhead { .. } => "nonce_too_far_ahead",
            Self::InsufficientBalance { .. } => "insufficient_balance",
            Self::BelowExistentialDeposit { .. } => "below_existential_deposit",
            Self::AlreadyPending(_) => "already_pending",
            Self::ReplacementUnderpriced { .. } => "replacement_underpriced",
            Self::SenderLimit { .. } => "sender_limit",
            Self::PoolFull { .. } => "pool_full",
            Self::Refused(_) => "refused",
        }
    }
}
