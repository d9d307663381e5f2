//! The Ethereum JSON-RPC of an EVM domain (default `127.0.0.1:8545`): what wallets, alloy, ethers and
//! Foundry's `cast` call, answered from an [`EvmChain`] in the shapes they parse (alloy's wire types).
//!
//! The server speaks HTTP and WebSocket (Ethereum tools use both), accepts small batches, bounds
//! connections and message sizes, and applies the consensus RPC's host and origin filters
//! ([`RpcAccess`]). Handlers take the chain's read lock only to look things up or clone a state out
//! (states are persistent, so a clone is cheap); `eth_call` and `eth_estimateGas` execute on a blocking
//! thread without the lock, and only `eth_sendRawTransaction` takes the write lock, briefly.
//!
//! Errors follow what Ethereum clients expect: `-32602` for bad parameters, `-32000` for refused
//! transactions and unknown or pruned blocks (with a message saying which), `-32005` for a query over
//! the limits, and `3` with the revert data for a reverting `eth_call` or `eth_estimateGas`.

mod convert;
mod methods;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use jsonrpsee::RpcModule;
use jsonrpsee::server::{BatchRequestConfig, RegisterMethodError, Server, ServerConfig, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;

use crate::domain::evm_chain::EvmChain;
use crate::error::NodeError;
use crate::rpc::RpcAccess;

/// The Ethereum JSON-RPC's default address.
pub const DEFAULT_ETH_RPC_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8545);

/// Most open connections.
pub const MAX_CONNECTIONS: u32 = 64;

/// Largest request: a raw transaction at its size bound, hex-encoded, plus framing.
pub const MAX_REQUEST_SIZE: u32 = {
    let size = acre_execution::domains::evm::MAX_TRANSACTION_SIZE * 2 + (64 << 10);
    assert!(size <= u32::MAX as usize);
    size as u32
};

/// Largest response (a block with full transactions, a page of logs).
pub const MAX_RESPONSE_SIZE: u32 = 16 << 20;

/// Most calls in one batch.
pub const MAX_BATCH: u32 = 64;

/// Most blocks one `eth_getLogs` query spans.
pub const MAX_LOG_BLOCKS: u64 = 10_000;

/// Most logs one `eth_getLogs` query returns.
pub const MAX_LOGS: usize = 10_000;

/// Most blocks one `eth_feeHistory` query spans.
pub const MAX_FEE_HISTORY_BLOCKS: u64 = 1_024;

/// JSON-RPC error codes Ethereum clients expect.
pub mod codes {
    /// Invalid method parameters.
    pub const INVALID_PARAMS: i32 = -32602;
    /// Internal error.
    pub const INTERNAL: i32 = -32603;
    /// A server error: a refused transaction, an unknown or pruned block, a failing call.
    pub const SERVER: i32 = -32000;
    /// A query over the server's limits.
    pub const LIMIT_EXCEEDED: i32 = -32005;
    /// Execution reverted; the error's data is the revert data.
    pub const EXECUTION_REVERTED: i32 = 3;
}

/// The shared state of the server's handlers.
#[derive(Debug, Clone)]
pub struct EthRpc {
    chain: Arc<RwLock<EvmChain>>,
}

impl EthRpc {
    /// Handlers over `chain`.
    pub fn new(chain: Arc<RwLock<EvmChain>>) -> Self {
        Self { chain }
    }

    /// The chain's read guard (a handler that panicked while holding the write lock poisons it; the
    /// chain's own methods never leave it half-changed, so the data is still served).
    fn read(&self) -> std::sync::RwLockReadGuard<'_, EvmChain> {
        self.chain
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, EvmChain> {
        self.chain
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The RPC module with every method.
    pub fn into_module(self) -> Result<RpcModule<Self>, RegisterMethodError> {
        let mut module = RpcModule::new(self);
        methods::register(&mut module)?;
        Ok(module)
    }
}

/// An error object with `code` and `message`.
pub(crate) fn rpc_error(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message.into(), None::<()>)
}

/// How a node error reaches an Ethereum client.
pub(crate) fn node_error(error: &NodeError) -> ErrorObjectOwned {
    let code = match error {
        NodeError::DomainExecution(_) => codes::INTERNAL,
        _ => codes::SERVER,
    };
    rpc_error(code, error.to_string())
}

/// Starts the Ethereum JSON-RPC over `chain` on `address` with the default access rules (loopback hosts,
/// no browser origins). Returns the server's handle and the address it listens on.
pub async fn start_eth_rpc(
    address: SocketAddr,
    chain: Arc<RwLock<EvmChain>>,
) -> Result<(ServerHandle, SocketAddr), NodeError> {
    start_eth_rpc_with_access(address, chain, &RpcAccess::default()).await
}

/// [`start_eth_rpc`] with `access`'s extra hosts and browser origins (a wallet's web page needs its
/// origin listed).
pub async fn start_eth_rpc_with_access(
    address: SocketAddr,
    chain: Arc<RwLock<EvmChain>>,
    access: &RpcAccess,
) -> Result<(ServerHandle, SocketAddr), NodeError> {
    let io_error = |source| NodeError::Io {
        context: format!("starting the Ethereum JSON-RPC server on {address}"),
        source,
    };
    let module = EthRpc::new(chain)
        .into_module()
        .map_err(|error| io_error(std::io::Error::other(error)))?;
    // Bind first: the host filter needs the actual port when `address` asks for an ephemeral one.
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .and_then(tokio::net::TcpListener::into_std)
        .map_err(io_error)?;
    let local = listener.local_addr().map_err(io_error)?;
    let config = ServerConfig::builder()
        .max_connections(MAX_CONNECTIONS)
        .max_subscriptions_per_connection(0)
        .max_request_body_size(MAX_REQUEST_SIZE)
        .max_response_body_size(MAX_RESPONSE_SIZE)
        .set_batch_request_config(BatchRequestConfig::Limit(MAX_BATCH))
        .build();
    let middleware = tower::ServiceBuilder::new()
        .layer(access.host_filter(local)?)
        .layer(access.origin_filter()?);
    let server = Server::builder()
        .set_config(config)
        .set_http_middleware(middleware)
        .build_from_tcp(listener)
        .map_err(io_error)?;
    tracing::info!(target: "acre::eth_rpc", address = %local, "Ethereum JSON-RPC server listening");
    Ok((server.start(module), local))
}

#[cfg(test)]
mod tests;
