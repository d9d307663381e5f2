//! `acre balance`, `acre transfer`, `acre operator`, `acre domain`, `acre chain`, `acre block`: the chain
//! client.
//!
//! Each command opens one WebSocket connection to a node (`--node`, default `ws://127.0.0.1:9944`, or
//! `ACRE_NODE`), calls the typed `chain_*` methods of [`acre_rpc_api::ChainApiClient`] and prints the answer
//! for people or, with `--json`, as one line of the API's own JSON. Transactions are built and signed here,
//! with the same code the node verifies them with ([`acre_execution`]), so the node only ever sees
//! canonical bytes. Every failure names the node's URL; a refusal shows the node's own message and code.

mod display;
mod operator;
mod transfer;

use std::path::Path;
use std::time::Duration;

use acre_execution::Address;
use acre_rpc_api::{ChainApiClient, Hex32, NodeApiClient, error_codes};
use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use jsonrpsee::core::ClientError;
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use serde::Serialize;

use crate::keys;

/// How long to wait for the WebSocket handshake before calling the node unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the node is.
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    /// The node's RPC endpoint (`ws://` or `wss://`).
    #[arg(long, env = "ACRE_NODE", default_value = "ws://127.0.0.1:9944")]
    node: String,
}

/// The commands that talk to a node.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print an account's balance and nonce.
    Balance {
        /// The account: 64 hex characters (an ed25519 public key) or a key file.
        address: String,
        /// Print the node's `AccountInfo` JSON on one line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Sign a transfer with a key file, submit it and print its hash.
    Transfer(transfer::TransferArgs),
    /// Print the node's view of the chain: best and final blocks, archiving, slot, space pledged.
    Chain {
        /// Print the node's `ChainHead` JSON on one line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Stake on domains: register an operator, nominate, withdraw, unlock, deregister, status.
    #[command(subcommand)]
    Operator(operator::OperatorCommand),
    /// Domains on the chain.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Print a block by number (canonical chain) or by hash (any stored block).
    Block {
        /// A block number (decimal) or a block hash (64 hex characters).
        #[arg(value_parser = parse_block_id)]
        block: BlockId,
        /// Print the node's `BlockInfo` JSON on one line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        node: NodeArgs,
    },
}

/// `acre domain ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum DomainCommand {
    /// Print every domain with its operators and pools.
    Status {
        /// Print the node's `DomainsInfo` JSON on one line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        node: NodeArgs,
    },
}

/// Runs a client command; the caller provides the tokio runtime.
pub(crate) async fn run(command: Command) -> Result<()> {
    match command {
        Command::Balance { address, json, node } => balance(&node.node, &address, json).await,
        Command::Transfer(args) => transfer::transfer(args).await,
        Command::Chain { json, node } => chain(&node.node, json).await,
        Command::Operator(command) => operator::run(command).await,
        Command::Domain(DomainCommand::Status { json, node }) => operator::domains(&node.node, json).await,
        Command::Block { block, json, node } => block_info(&node.node, block, json).await,
    }
}

async fn balance(node: &str, address: &str, json: bool) -> Result<()> {
    let address = parse_address(address)?;
    let client = connect(node).await?;
    let account = client
        .account(Hex32(address.0))
        .await
        .map_err(|error| node_error(node, "reading the account", error))?;
    if json {
        print_json(&account)?;
    } else {
        println!("address  {address}");
        println!("balance  {}", account.balance);
        println!("nonce    {}", account.nonce);
    }
    Ok(())
}

async fn chain(node: &str, json: bool) -> Result<()> {
    let client = connect(node).await?;
    let head = client
        .head()
        .await
        .map_err(|error| node_error(node, "reading the chain head", error))?;
    // A node without the method (older) still shows its head.
    let network = NodeApiClient::network(&client).await.ok();
    if json {
        let mut value = serde_json::to_value(&head)?;
        if let (Some(object), Some(network)) = (value.as_object_mut(), &network) {
            object.insert("network".into(), serde_json::to_value(network)?);
        }
        print_json(&value)?;
    } else {
        print!("{}", display::head(&head));
        if let Some(network) = &network {
            print!("{}", display::network(network));
        }
    }
    Ok(())
}

async fn block_info(node: &str, block: BlockId, json: bool) -> Result<()> {
    let client = connect(node).await?;
    let found = match block {
        BlockId::Number(number) => client.block_by_number(number).await,
        BlockId::Hash(hash) => client.block_by_hash(hash).await,
    }
    .map_err(|error| node_error(node, "reading the block", error))?;
    let Some(info) = found else {
        bail!("the node at {node} has no block {block}");
    };
    if json {
        print_json(&info)?;
    } else {
        print!("{}", display::block(&info));
    }
    Ok(())
}

/// Opens the WebSocket connection to `node`.
async fn connect(node: &str) -> Result<WsClient> {
    WsClientBuilder::default()
        .connection_timeout(CONNECT_TIMEOUT)
        .build(node)
        .await
        .with_context(|| format!("cannot reach the node at {node}"))
}

/// Explains a failed call: the node's refusal with its message and code, or what happened to the connection.
fn node_error(node: &str, doing: &str, error: ClientError) -> anyhow::Error {
    match error {
        ClientError::Call(refusal) => anyhow!(
            "{doing}: the node at {node} refused: {} (error {}{})",
            refusal.message(),
            refusal.code(),
            code_name(refusal.code())
                .map(|name| format!(", {name}"))
                .unwrap_or_default()
        ),
        ClientError::RequestTimeout => anyhow!("{doing}: the node at {node} did not answer in time"),
        ClientError::ParseError(error) => {
            anyhow!("{doing}: the node at {node} sent an answer this client cannot read: {error}")
        }
        other => anyhow!("{doing}: lost the connection to the node at {node}: {other}"),
    }
}

/// Names the API's application error codes and the JSON-RPC protocol codes a client may meet.
fn code_name(code: i32) -> Option<&'static str> {
    Some(match code {
        error_codes::BAD_ENCODING => "bad encoding",
        error_codes::INVALID_TRANSACTION => "invalid transaction",
        error_codes::INVALID_SOLUTION => "invalid solution",
        error_codes::INVALID_BLOCK => "invalid block",
        error_codes::INVALID_SEAL => "invalid seal",
        error_codes::INTERNAL => "node internal error",
        -32601 => "method not found: is the node a different version?",
        -32602 => "invalid parameters",
        _ => return None,
    })
}

/// Prints `value` as one line of JSON.
fn print_json(value: &impl Serialize) -> Result<()> {
    println!(
        "{}",
        serde_json::to_string(value).context("serialising the answer")?
    );
    Ok(())
}

/// Reads an account address: 64 hex characters (optionally `0x`-prefixed), or a key file whose public key
/// is the address.
fn parse_address(text: &str) -> Result<Address> {
    let hex_error = match text.parse::<Hex32>() {
        Ok(address) => return Ok(Address(address.0)),
        Err(error) => error,
    };
    let path = Path::new(text);
    if path.is_file() {
        return Ok(Address::of(&keys::read(path)?));
    }
    bail!("{text:?} is not an account address ({hex_error}) nor a key file")
}

/// A block, named by number or by hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockId {
    /// A canonical block number.
    Number(u64),
    /// A block hash.
    Hash(Hex32),
}

impl std::fmt::Display for BlockId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(number) => write!(f, "#{number}"),
            Self::Hash(hash) => write!(f, "{hash}"),
        }
    }
}

/// Parses a block number (decimal) or a hash (64 hex characters, optionally `0x`-prefixed).
fn parse_block_id(text: &str) -> Result<BlockId, String> {
    if !text.is_empty() && text.len() < 64 && text.bytes().all(|byte| byte.is_ascii_digit()) {
        return text
            .parse()
            .map(BlockId::Number)
            .map_err(|error| format!("block number {text}: {error}"));
    }
    text.parse::<Hex32>()
        .map(BlockId::Hash)
        .map_err(|error| format!("neither a block number nor a block hash: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_ids_are_numbers_or_hashes() {
        assert_eq!(parse_block_id("0"), Ok(BlockId::Number(0)));
        assert_eq!(
            parse_block_id("18446744073709551615"),
            Ok(BlockId::Number(u64::MAX))
        );
        assert!(parse_block_id("18446744073709551616").is_err());
        let hash = "ab".repeat(32);
        assert_eq!(parse_block_id(&hash), Ok(BlockId::Hash(Hex32([0xab; 32]))));
        assert_eq!(
            parse_block_id(&format!("0x{hash}")),
            Ok(BlockId::Hash(Hex32([0xab; 32])))
        );
        // 64 decimal digits is a hash, not an overflowing number.
        assert_eq!(
            parse_block_id(&"1".repeat(64)),
            Ok(BlockId::Hash(Hex32([0x11; 32])))
        );
        assert!(parse_block_id("").is_err());
        assert!(parse_block_id("-1").is_err());
        assert!(parse_block_id("abc").is_err());
    }

    #[test]
    fn addresses_are_hex_or_key_files() {
        let hex = "07".repeat(32);
        assert_eq!(parse_address(&hex).expect("hex address"), Address([7; 32]));
        assert_eq!(
            parse_address(&format!("0x{hex}")).expect("prefixed"),
            Address([7; 32])
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("alice.key");
        std::fs::write(&path, format!("{}\n", "01".repeat(32))).expect("writes");
        let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        assert_eq!(
            parse_address(path.to_str().expect("utf-8")).expect("key file"),
            Address::of(&key)
        );
        let error = parse_address("abcd").expect_err("short").to_string();
        assert!(
            error.contains("not an account address") && error.contains("64 hex"),
            "{error}"
        );
    }

    #[test]
    fn refusals_show_the_node_message_and_code() {
        let refusal = acre_rpc_api::error(error_codes::INVALID_TRANSACTION, "nonce 5, expected 0");
        let message = node_error("ws://node:1", "submitting", ClientError::Call(refusal)).to_string();
        assert_eq!(
            message,
            "submitting: the node at ws://node:1 refused: nonce 5, expected 0 (error 1001, invalid transaction)"
        );
    }
}
