//! `acre transfer`: sign a transfer, submit it and optionally wait until a block includes it.

use std::path::PathBuf;
use std::time::Duration;

use acre_execution::{Address, SignedTransaction, Transaction, Transfer};
use acre_rpc_api::{BlockInfo, ChainApiClient, Hex32, HexBytes};
use anyhow::{Context, Result, bail};
use clap::Args;
use jsonrpsee::core::client::Subscription;

use super::{NodeArgs, connect, node_error, parse_address};
use crate::keys;

/// The default fee: above the dev chain's minimum (1,000 + 1 per byte × 202 bytes).
const DEFAULT_FEE: u128 = 10_000;

/// Arguments of `acre transfer`.
#[derive(Debug, Args)]
pub(crate) struct TransferArgs {
    /// The recipient: 64 hex characters (an ed25519 public key) or a key file.
    #[arg(long)]
    to: String,
    /// Amount to move (decimal, up to 2^128 - 1).
    #[arg(long)]
    amount: u128,
    #[command(flatten)]
    tx: TxArgs,
}

/// What every command that signs a transaction takes.
#[derive(Debug, Args)]
pub(crate) struct TxArgs {
    /// The sender's key file (the sender is its public key).
    #[arg(long)]
    pub(super) key: PathBuf,
    /// Fee paid to the block's author: at least the chain's `min_fee + byte_fee × 202` (the dev chain's
    /// minimum is 1202; the node names the minimum when it refuses a lower fee).
    #[arg(long, default_value_t = DEFAULT_FEE)]
    pub(super) fee: u128,
    /// The sender's nonce [default: the next nonce the node reports, counting the sender's transactions
    /// already waiting in its pool, so transfers can be sent back to back].
    #[arg(long)]
    pub(super) nonce: Option<u64>,
    /// Wait until a new best block includes the transaction and print its number.
    #[arg(long)]
    pub(super) wait: bool,
    /// With `--wait`, give up after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub(super) timeout: u64,
    #[command(flatten)]
    pub(super) node: NodeArgs,
}

/// Signs and submits the transfer; prints its hash (and with `--wait`, the including block).
pub(super) async fn transfer(args: TransferArgs) -> Result<()> {
    let to = parse_address(&args.to).context("the recipient")?;
    let amount = args.amount;
    submit(&args.tx, |from, nonce, fee| {
        Transfer {
            from,
            to,
            amount,
            fee,
            nonce,
        }
        .into()
    })
    .await
}

/// Signs the transaction `build` makes (from the sender, its nonce and the fee) for the node's chain,
/// submits it and prints its hash (and with `--wait`, the including block).
pub(super) async fn submit(
    args: &TxArgs,
    build: impl FnOnce(Address, u64, u128) -> Transaction,
) -> Result<()> {
    let node = args.node.node.as_str();
    let key = keys::read(&args.key)?;
    let from = Address::of(&key);
    let client = connect(node).await?;
    // The signature covers the chain's genesis hash: a transfer signed for this node's chain is invalid on
    // every other.
    let genesis_hash = client
        .head()
        .await
        .map_err(|error| node_error(node, "reading the chain's genesis hash", error))?
        .genesis_hash;
    let nonce = match args.nonce {
        Some(nonce) => nonce,
        None => client
            .next_nonce(Hex32(from.0))
            .await
            .map_err(|error| node_error(node, "reading the sender's next nonce", error))?,
    };
    let transaction = SignedTransaction::sign(
        build(from, nonce, args.fee),
        acre_consensus::Blake3Hash(genesis_hash.0),
        &key,
    );
    let hash = Hex32(transaction.hash().0);
    // Subscribe before submitting: the including block may be announced before the submission's answer.
    let heads = if args.wait {
        Some(
            client
                .subscribe_new_heads()
                .await
                .map_err(|error| node_error(node, "subscribing to new blocks", error))?,
        )
    } else {
        None
    };
    let accepted = client
        .submit_transaction(HexBytes(transaction.encode()))
        .await
        .map_err(|error| node_error(node, "submitting the transaction", error))?;
    if accepted != hash {
        bail!(
            "the node at {node} accepted the transaction as {accepted}, but its hash is {hash}: \
             the node encodes transactions differently (a different protocol version?)"
        );
    }
    println!("{hash}");
    if let Some(heads) = heads {
        let block = included(node, heads, hash, Duration::from_secs(args.timeout)).await?;
        println!("included in block {} ({})", block.number, block.hash);
    }
    Ok(())
}

/// Waits for the first new best block that lists `hash` among its transactions.
///
/// A block that a reorganisation later abandons still counts: this reports inclusion, not finality.
async fn included(
    node: &str,
    mut heads: Subscription<BlockInfo>,
    hash: Hex32,
    timeout: Duration,
) -> Result<BlockInfo> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, heads.next()).await {
            Err(_) => bail!(
                "transaction {hash} was not included in a block within {} s \
                 (it may still be in the node's pool)",
                timeout.as_secs()
            ),
            Ok(None) => bail!("the node at {node} ended the new-block subscription before including {hash}"),
            Ok(Some(Err(error))) => bail!("the node at {node} sent a block this client cannot read: {error}"),
            Ok(Some(Ok(block))) if block.transactions.contains(&hash) => return Ok(block),
            Ok(Some(Ok(_))) => {}
        }
    }
}
