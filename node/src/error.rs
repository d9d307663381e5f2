//! The node's errors: why a block, transaction or solution was rejected, and what failed underneath.

use acre_consensus::blocks::BlockHash;
use acre_consensus::sectors::PublicKey;
use acre_consensus::validation::HeaderError;
use acre_consensus::{BlockNumber, DecodeError, SegmentIndex};
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
    TooOld { number: BlockNumber, best: BlockNumber },
    /// The block forks off the chain below archived history, which cannot change.
    #[error("block {number} forks off below the archived block {archived}")]
    ForksArchivedHistory {
        number: BlockNumber,
        archived: BlockNumber,
    },
    /// The header fails validation against its parent (seal, proof of time, solution range, solution).
    #[error("invalid header: {0}")]
    Header(#[from] HeaderError),
    /// The body does not match the header's body root.
    #[error("the body does not match the header's body root")]
    BodyRoot,
    /// The segment headers are not the next ones the local archiver produced.
    #[error("segment header {index}: {reason}")]
    SegmentHeader {
        index: SegmentIndex,
        reason: &'static str,
    },
    /// A transaction does not decode.
    #[error("transaction {index}: {source}")]
    TransactionEncoding { index: usize, source: ExecutionError },
    /// The state transition fails (bad signature, nonce, balance: a double spend lands here).
    #[error("state transition: {0}")]
    Execution(#[from] ExecutionError),
    /// The header's state root is not the state after the block.
    #[error("state root {got} in the header, {expected} after executing the block")]
    StateRoot { expected: BlockHash, got: BlockHash },
    /// The block reuses a solution another block already used: its farmer equivocated.
    #[error("equivocation: farmer {0:?} sealed two blocks with the same solution")]
    Equivocation(PublicKey),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] acre_storage::Error),
}

/// Errors of the node's machinery (opening the chain, archiving, RPC).
#[derive(Debug, Error)]
pub enum Error {
    /// The chain spec is invalid.
    #[error("chain spec: {0}")]
    ChainSpec(String),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] acre_storage::Error),
    /// The database does not belong to this chain.
    #[error("the database at {path} holds genesis {found}, not this chain's {expected}")]
    WrongChain {
        path: String,
        found: BlockHash,
        expected: BlockHash,
    },
    /// Stored data is inconsistent.
    #[error("corrupt database: {0}")]
    Corrupt(String),
    /// A stored block failed to decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// I/O failed (data directory, sockets).
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    /// The farmer RPC server (block submission, seals, solutions) was asked to listen beyond loopback
    /// without the explicit opt-in.
    #[error(
        "refusing to serve the farmer RPC on non-loopback address {address}: it accepts blocks, solutions and \
         seals; pass --farmer-rpc-unsafe-external if the network in between is trusted"
    )]
    FarmerRpcExposed { address: std::net::SocketAddr },
    /// An `--rpc-allow-host` or `--rpc-cors` entry is malformed.
    #[error("RPC access list entry {entry:?}: {reason}")]
    RpcAccess { entry: String, reason: String },
}

/// Why the transaction pool refused a transaction.
#[derive(Debug, Error)]
pub enum PoolError {
    /// The transaction does not decode or its signature does not verify.
    #[error(transparent)]
    Invalid(#[from] ExecutionError),
    /// Its nonce is already used by the best state.
    #[error("nonce {got} is stale: the account's next nonce is {expected}")]
    StaleNonce { expected: u64, got: u64 },
    /// The sender cannot pay amount plus fee even before earlier pending transactions.
    #[error("balance {balance} cannot pay {needed}")]
    InsufficientBalance { balance: u128, needed: u128 },
    /// A transaction with this sender and nonce is already pending.
    #[error("a transaction with nonce {0} from this sender is already pending")]
    Duplicate(u64),
    /// The pool is full.
    #[error("the transaction pool is full ({0} transactions)")]
    Full(usize),
}
