//! The node's two RPC servers, their method sets and their limits.
//!
//! - The **public** server (default `127.0.0.1:9944`) serves what users and tools need: `chain_*` reads,
//!   `chain_submitTransaction` and `chain_subscribeNewHeads`. A transaction is tiny, so requests are small.
//! - The **farmer** server (default `127.0.0.1:9945`) additionally serves every `farmer_*` method (slots,
//!   solutions, seals, segment headers, pieces), `chain_submitBlock` and `chain_submitBundle`: calls that cost the node real work
//!   or steer authoring. It is for trusted local farmers, so the node refuses to put it on a non-loopback
//!   address without an explicit opt-in ([`check_farmer_address`]). Requests may carry a whole block.
//!
//! Both servers speak WebSocket only (HTTP JSON-RPC is unused by Acre's clients and is the usual target of
//! DNS rebinding), refuse batches (one call per message keeps the per-message limits meaningful), bound
//! connections and subscriptions, and apply [`RpcAccess`]'s host and origin filters.

use std::net::SocketAddr;
use std::sync::Arc;

use acre_rpc_api::{ChainApiServer, FarmerApiServer, NodeApiServer};
use jsonrpsee::RpcModule;
use jsonrpsee::server::{BatchRequestConfig, RegisterMethodError, Server, ServerConfig, ServerHandle};

use super::Rpc;
use super::access::RpcAccess;
use crate::Error;
use crate::service::Shared;

/// `ChainApi` methods only the farmer server serves.
pub const FARMER_ONLY_CHAIN_METHODS: [&str; 2] = ["chain_submitBlock", "chain_submitBundle"];

/// A block travels as hex (twice its size) plus JSON framing.
const BLOCK_MESSAGE_SIZE: u32 =
    ((acre_consensus::blocks::MAX_HEADER_SIZE + acre_consensus::blocks::MAX_BODY_SIZE) * 2 + (64 << 10))
        as u32;

/// Which of the two servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    /// Chain reads, transactions and new heads, for anyone allowed to reach the port.
    Public,
    /// Everything, including farming and block submission: trusted local clients only.
    Farmer,
}

/// How much one server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections (more are refused until one closes).
    pub max_connections: u32,
    /// Active subscriptions per connection.
    pub max_subscriptions_per_connection: u32,
    /// Largest request message, bytes.
    pub max_request_size: u32,
    /// Largest response message, bytes.
    pub max_response_size: u32,
}

impl Exposure {
    /// The server's limits. The public server's requests hold at most a transaction (168 bytes, hex-encoded)
    /// or a hash, so 16 KiB is generous; its responses may hold a raw block. The farmer server's requests may
    /// hold a block; its connections are few (a farmer uses one, with three subscriptions).
    pub fn limits(self) -> Limits {
        match self {
            Self::Public => Limits {
                max_connections: 128,
                max_subscriptions_per_connection: 4,
                max_request_size: 16 << 10,
                max_response_size: BLOCK_MESSAGE_SIZE,
            },
            Self::Farmer => Limits {
                max_connections: 32,
                max_subscriptions_per_connection: 16,
                max_request_size: BLOCK_MESSAGE_SIZE,
                max_response_size: BLOCK_MESSAGE_SIZE,
            },
        }
    }

    /// The methods this server answers.
    pub fn module(self, rpc: Rpc) -> Result<RpcModule<()>, RegisterMethodError> {
        let mut module = RpcModule::new(());
        module.merge(ChainApiServer::into_rpc(rpc.clone()))?;
        module.merge(NodeApiServer::into_rpc(rpc.clone()))?;
        match self {
            Self::Public => {
                for method in FARMER_ONLY_CHAIN_METHODS {
                    module.remove_method(method);
                }
            }
            Self::Farmer => module.merge(FarmerApiServer::into_rpc(rpc))?,
        }
        Ok(module)
    }

    fn name(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Farmer => "farmer",
        }
    }
}

/// Refuses a non-loopback farmer server address unless `unsafe_external` (the operator vouches for the
/// network in between).
pub fn check_farmer_address(address: SocketAddr, unsafe_external: bool) -> Result<(), Error> {
    if address.ip().is_loopback() || unsafe_external {
        Ok(())
    } else {
        Err(Error::FarmerRpcExposed { address })
    }
}

fn io_error(exposure: Exposure, address: SocketAddr, source: std::io::Error) -> Error {
    Error::Io {
        context: format!("starting the {} RPC server on {address}", exposure.name()),
        source,
    }
}

/// Starts one RPC server over `shared` on `address`.
pub async fn start(
    shared: &Arc<Shared>,
    exposure: Exposure,
    address: SocketAddr,
    access: &RpcAccess,
) -> Result<(SocketAddr, ServerHandle), Error> {
    let module = exposure
        .module(Rpc(Arc::downgrade(shared)))
        .map_err(|error| io_error(exposure, address, std::io::Error::other(error)))?;
    start_module(module, exposure, exposure.limits(), address, access).await
}

/// Starts a server answering `module` with `limits` (separate from [`start`] so tests can shrink limits).
pub(crate) async fn start_module(
    module: RpcModule<()>,
    exposure: Exposure,
    limits: Limits,
    address: SocketAddr,
    access: &RpcAccess,
) -> Result<(SocketAddr, ServerHandle), Error> {
    // Bind first: the host filter needs the actual port when `address` asks for an ephemeral one.
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .and_then(tokio::net::TcpListener::into_std)
        .map_err(|source| io_error(exposure, address, source))?;
    let local = listener
        .local_addr()
        .map_err(|source| io_error(exposure, address, source))?;
    let config = ServerConfig::builder()
        .ws_only()
        .max_connections(limits.max_connections)
        .max_subscriptions_per_connection(limits.max_subscriptions_per_connection)
        .max_request_body_size(limits.max_request_size)
        .max_response_body_size(limits.max_response_size)
        .set_batch_request_config(BatchRequestConfig::Disabled)
        .build();
    let middleware = tower::ServiceBuilder::new()
        .layer(access.host_filter(local)?)
        .layer(access.origin_filter()?);
    let server = Server::builder()
        .set_config(config)
        .set_http_middleware(middleware)
        .build_from_tcp(listener)
        .map_err(|source| io_error(exposure, address, source))?;
    tracing::info!(target: "acre::rpc", address = %local, server = exposure.name(), "RPC server listening");
    Ok((local, server.start(module)))
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
