//! The Acre node's JSON-RPC API: the contract between the node (server), the farmer and the `acre` client.
//!
//! This crate holds no logic, only the [`jsonrpsee`] traits (which generate both the server trait the node
//! implements and the typed client the farmer and the CLI call) and their wire types, so the three can never
//! disagree about a method name or a field.
//!
//! Wire conventions:
//! - Hashes, keys and addresses are lowercase hex strings ([`Hex32`]).
//! - Consensus objects (solutions, pieces, segment headers, headers, bodies, transactions) travel as hex of
//!   their canonical borsh encoding ([`HexBytes`]); the receiver decodes them with the consensus crate's
//!   bounded decoders, so the JSON layer never has to mirror consensus structures field by field.
//! - Balances are `u128` and travel as decimal strings ([`Balance`]), because JSON numbers above 2^53 are
//!   not safe in many clients.
//! - Errors carry one of the [`error_codes`] so clients can tell a rejected transaction from a bad request.

#[cfg(feature = "config-file")]
pub mod config_file;
mod domains;
mod types;

pub use domains::*;
pub use types::*;

use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::types::ErrorObjectOwned;

/// The default port of the public RPC server (`127.0.0.1:9944`): `chain_*` reads, transactions, new heads.
pub const DEFAULT_RPC_PORT: u16 = 9944;

/// The default port of the farmer RPC server (`127.0.0.1:9945`): every `farmer_*` method and
/// `chain_submitBlock` (besides all public methods). It is meant for trusted local farmers and tools only, so
/// the node refuses to listen on a non-loopback address for it unless told explicitly.
pub const DEFAULT_FARMER_RPC_PORT: u16 = 9945;

/// The default Prometheus metrics port (`127.0.0.1:9615`).
pub const DEFAULT_METRICS_PORT: u16 = 9615;

/// Application error codes (JSON-RPC reserves -32768..-32000 for the protocol itself).
pub mod error_codes {
    /// A parameter could not be decoded (bad hex, wrong length, malformed consensus encoding).
    pub const BAD_ENCODING: i32 = 1000;
    /// A transaction was rejected (signature, nonce, balance, pool full).
    pub const INVALID_TRANSACTION: i32 = 1001;
    /// A solution was rejected (unknown slot, failed verification, too late).
    pub const INVALID_SOLUTION: i32 = 1002;
    /// A block was rejected by import (the message names the failed check).
    pub const INVALID_BLOCK: i32 = 1003;
    /// A block seal was rejected (unknown header, bad signature).
    pub const INVALID_SEAL: i32 = 1004;
    /// A vote was rejected (failed verification, wrong parent, equivocation, too late).
    pub const INVALID_VOTE: i32 = 1005;
    /// The node failed internally (database error); the request may be retried.
    pub const INTERNAL: i32 = 1100;
}

/// Builds an error object with an application code.
pub fn error(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message.into(), None::<()>)
}

/// Methods farmers use: slots, solutions, seals and archived history. Served only on the farmer RPC server
/// ([`DEFAULT_FARMER_RPC_PORT`]), never on the public one.
#[rpc(client, server, namespace = "farmer")]
pub trait FarmerApi {
    /// The chain's parameters and identity.
    #[method(name = "info")]
    async fn info(&self) -> Result<FarmerInfo, ErrorObjectOwned>;

    /// A notification for every new slot, as soon as its proof of time is known.
    #[subscription(name = "subscribeSlotInfo" => "slotInfo", unsubscribe = "unsubscribeSlotInfo", item = SlotInfo)]
    async fn subscribe_slot_info(&self) -> SubscriptionResult;

    /// Submits a solution for an announced slot.
    #[method(name = "submitSolution")]
    async fn submit_solution(&self, solution: SolutionSubmission) -> Result<(), ErrorObjectOwned>;

    /// Submits a vote for an announced slot (spec 7).
    #[method(name = "submitVote")]
    async fn submit_vote(&self, vote: VoteSubmission) -> Result<(), ErrorObjectOwned>;

    /// Requests to seal blocks authored with a solution of the subscriber's key.
    #[subscription(name = "subscribeBlockSealing" => "blockSealing", unsubscribe = "unsubscribeBlockSealing", item = SealRequest)]
    async fn subscribe_block_sealing(&self) -> SubscriptionResult;

    /// Answers a [`SealRequest`] with the farmer's signature.
    #[method(name = "submitBlockSeal")]
    async fn submit_block_seal(&self, seal: BlockSeal) -> Result<(), ErrorObjectOwned>;

    /// A notification for every newly archived segment.
    #[subscription(name = "subscribeArchivedSegmentHeader" => "archivedSegmentHeader", unsubscribe = "unsubscribeArchivedSegmentHeader", item = HexBytes)]
    async fn subscribe_archived_segment_headers(&self) -> SubscriptionResult;

    /// Encoded segment headers by index (`null` for an index not archived yet).
    #[method(name = "segmentHeaders")]
    async fn segment_headers(&self, indices: Vec<u64>) -> Result<Vec<Option<HexBytes>>, ErrorObjectOwned>;

    /// The encoded piece at `index`, or `null` if the node does not hold it.
    #[method(name = "piece")]
    async fn piece(&self, index: u64) -> Result<Option<HexBytes>, ErrorObjectOwned>;

    /// Reports the farmer's farms (plotting progress, wins, misses), for the node's dashboard.
    #[method(name = "reportStatus")]
    async fn report_status(&self, status: FarmerStatus) -> Result<(), ErrorObjectOwned>;
}

/// Methods about the node itself, for its dashboard and monitoring.
#[rpc(client, server, namespace = "node")]
pub trait NodeApi {
    /// The latest status report of each farmer connected to this node (reports older than ten minutes
    /// are dropped).
    #[method(name = "farmers")]
    async fn farmers(&self) -> Result<Vec<FarmerReport>, ErrorObjectOwned>;

    /// The node's peer id, listen addresses, connected peers, and sync state (target, speed, time left).
    #[method(name = "network")]
    async fn network(&self) -> Result<NetworkInfo, ErrorObjectOwned>;
}

/// Methods for users and tools: the chain, accounts and transactions.
#[rpc(client, server, namespace = "chain")]
pub trait ChainApi {
    /// The best block, finality, archiving progress and the current slot.
    #[method(name = "head")]
    async fn head(&self) -> Result<ChainHead, ErrorObjectOwned>;

    /// A canonical block by number.
    #[method(name = "blockByNumber")]
    async fn block_by_number(&self, number: u64) -> Result<Option<BlockInfo>, ErrorObjectOwned>;

    /// A stored block by hash (canonical or not).
    #[method(name = "blockByHash")]
    async fn block_by_hash(&self, hash: Hex32) -> Result<Option<BlockInfo>, ErrorObjectOwned>;

    /// A stored block's encoded header and body.
    #[method(name = "rawBlock")]
    async fn raw_block(&self, hash: Hex32) -> Result<Option<RawBlock>, ErrorObjectOwned>;

    /// Imports a block (fully verified); returns its hash or why it was rejected. Served only on the farmer
    /// RPC server: import is expensive and, until blocks arrive over the network, a trusted tool's entry point.
    #[method(name = "submitBlock")]
    async fn submit_block(&self, block: RawBlock) -> Result<Hex32, ErrorObjectOwned>;

    /// The account at `address` in the best block's state.
    #[method(name = "account")]
    async fn account(&self, address: Hex32) -> Result<AccountInfo, ErrorObjectOwned>;

    /// The nonce the next transaction from `address` should carry: the account's next nonce in the best
    /// state, advanced past the sender's consecutive pending transactions in the node's pool, so several
    /// transfers can be submitted back to back without waiting for blocks.
    #[method(name = "nextNonce")]
    async fn next_nonce(&self, address: Hex32) -> Result<u64, ErrorObjectOwned>;

    /// Submits an encoded signed transaction to the pool; returns its hash.
    #[method(name = "submitTransaction")]
    async fn submit_transaction(&self, transaction: HexBytes) -> Result<Hex32, ErrorObjectOwned>;

    /// Submits an encoded signed domain bundle to the node's bundle pool; returns its hash. Served only
    /// by the farmer (trusted) RPC server, like `submitBlock`: a bundle may be megabytes, and operators
    /// normally run inside the node (`acre-node --operator-id`).
    #[method(name = "submitBundle")]
    async fn submit_bundle(&self, bundle: HexBytes) -> Result<Hex32, ErrorObjectOwned>;

    /// The domains, their operators and pools in the best state (`null` on a chain without domains).
    #[method(name = "domains")]
    async fn domains(&self) -> Result<Option<DomainsInfo>, ErrorObjectOwned>;

    /// `address`'s position with `operator` in the best state (`null` if it has none).
    #[method(name = "nominator")]
    async fn nominator(
        &self,
        operator: u64,
        address: Hex32,
    ) -> Result<Option<NominatorInfo>, ErrorObjectOwned>;

    /// A notification for every new best block.
    #[subscription(name = "subscribeNewHeads" => "newHead", unsubscribe = "unsubscribeNewHeads", item = BlockInfo)]
    async fn subscribe_new_heads(&self) -> SubscriptionResult;
}
