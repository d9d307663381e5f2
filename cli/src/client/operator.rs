//! `acre operator ...` and `acre domain status`: staking on domains through consensus transactions.
//!
//! Every staking action is a signed consensus transaction (a domains call) built and signed here and
//! submitted like a transfer. The node checks a call against its best state when it is submitted, so a
//! call the registry refuses (an unknown operator, a stake below the minimum, a deregistration by someone
//! else) is refused at once with the reason.

use acre_execution::domains::election::operator_keypair;
use acre_execution::domains::{DomainId, OperatorId};
use acre_execution::{Call, DomainCall, Transaction};
use acre_rpc_api::{ChainApiClient, DomainsInfo, Hex32};
use anyhow::{Result, bail};
use clap::Subcommand;

use super::transfer::{TxArgs, submit};
use super::{NodeArgs, connect, node_error, parse_address, print_json};
use crate::keys;

/// `acre operator ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum OperatorCommand {
    /// Register an operator on a domain, owned by the key's account, staking from it. Its signing key
    /// is derived from the same key file (`acre key inspect FILE --operator` prints it).
    Register {
        /// The domain to operate.
        #[arg(long)]
        domain: u32,
        /// The first stake (at least the domain's minimum operator stake).
        #[arg(long)]
        stake: u128,
        /// Percent of rewards the operator keeps before sharing with nominators.
        #[arg(long, default_value_t = 5)]
        nomination_tax: u8,
        /// The least a nominator may deposit with this operator.
        #[arg(long, default_value_t = acre_execution::staking::ACRE)]
        minimum_nominator_stake: u128,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// Deposit stake with an operator (shares are issued at the end of the domain's epoch).
    Nominate {
        /// The operator.
        #[arg(long)]
        operator: u64,
        /// The deposit.
        #[arg(long)]
        amount: u128,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// Withdraw shares from an operator at the end of the epoch; the funds unlock after the
    /// challenge period (`acre operator unlock`).
    Withdraw {
        /// The operator.
        #[arg(long)]
        operator: u64,
        /// Shares to withdraw (`acre operator status` shows the account's shares).
        #[arg(long)]
        shares: u128,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// Claim withdrawn funds whose unlock has come.
    Unlock {
        /// The operator.
        #[arg(long)]
        operator: u64,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// Deregister an operator (its owner only); every holder's stake unlocks after the challenge period.
    Deregister {
        /// The operator.
        #[arg(long)]
        operator: u64,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// Print an account's position with an operator.
    Status {
        /// The operator.
        #[arg(long)]
        operator: u64,
        /// The account: 64 hex characters or a key file.
        address: String,
        /// Print the node's `NominatorInfo` JSON on one line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        node: NodeArgs,
    },
}

/// Runs an operator command.
pub(super) async fn run(command: OperatorCommand) -> Result<()> {
    let (tx, call) = match command {
        OperatorCommand::Register {
            domain,
            stake,
            nomination_tax,
            minimum_nominator_stake,
            tx,
        } => {
            let secret = keys::read(&tx.key)?.to_bytes();
            let signing_key = operator_keypair(&secret).public.to_bytes();
            eprintln!("operator signing key {}", Hex32(signing_key));
            let call = DomainCall::RegisterOperator {
                domain: DomainId(domain),
                signing_key,
                amount: stake,
                nomination_tax,
                minimum_nominator_stake,
            };
            (tx, call)
        }
        OperatorCommand::Nominate { operator, amount, tx } => (
            tx,
            DomainCall::Nominate {
                operator: OperatorId(operator),
                amount,
            },
        ),
        OperatorCommand::Withdraw { operator, shares, tx } => (
            tx,
            DomainCall::Withdraw {
                operator: OperatorId(operator),
                shares,
            },
        ),
        OperatorCommand::Unlock { operator, tx } => (
            tx,
            DomainCall::Unlock {
                operator: OperatorId(operator),
            },
        ),
        OperatorCommand::Deregister { operator, tx } => (
            tx,
            DomainCall::Deregister {
                operator: OperatorId(operator),
            },
        ),
        OperatorCommand::Status {
            operator,
            address,
            json,
            node,
        } => return status(&node.node, operator, &address, json).await,
    };
    submit(&tx, |from, nonce, fee| Transaction {
        from,
        nonce,
        fee,
        call: Call::Domain(call),
    })
    .await
}

async fn status(node: &str, operator: u64, address: &str, json: bool) -> Result<()> {
    let address = parse_address(address)?;
    let client = connect(node).await?;
    let info = client
        .nominator(operator, Hex32(address.0))
        .await
        .map_err(|error| node_error(node, "reading the position", error))?;
    if json {
        return print_json(&info);
    }
    let Some(info) = info else {
        bail!("{address} holds nothing with operator {operator}");
    };
    println!("operator          {}", info.operator);
    println!("account           {address}");
    println!("shares            {}", info.shares);
    println!("withdrawing       {}", info.withdrawing);
    println!("pending deposit   {}", info.pending_deposit);
    for (amount, at) in &info.unlocking {
        let state = if *at <= info.head_domain_number {
            "claimable"
        } else {
            "locked"
        };
        println!("unlocking         {amount} at domain block {at} ({state})");
    }
    Ok(())
}

/// `acre domain status`: every domain with its operators.
pub(super) async fn domains(node: &str, json: bool) -> Result<()> {
    let client = connect(node).await?;
    let info: Option<DomainsInfo> = client
        .domains()
        .await
        .map_err(|error| node_error(node, "reading the domains", error))?;
    if json {
        return print_json(&info);
    }
    let Some(info) = info else {
        println!("this chain has no domains");
        return Ok(());
    };
    println!(
        "epoch length {} domain blocks, challenge period {} domain blocks",
        info.epoch_length, info.challenge_period
    );
    for domain in &info.domains {
        println!(
            "domain {} {:?} ({}): head domain block {}, epoch {}, balance {}{}",
            domain.id,
            domain.name,
            domain.module,
            domain.head_domain_number,
            domain.epoch,
            domain.balance,
            if domain.frozen { ", frozen" } else { "" }
        );
        for operator in &domain.operators {
            println!(
                "  operator {} {}: stake {}, shares {}, pending {}, tax {} %, {} nominators, owner {}",
                operator.id,
                operator.status,
                operator.stake,
                operator.shares,
                operator.pending_deposits,
                operator.nomination_tax,
                operator.nominators,
                operator.owner
            );
        }
    }
    Ok(())
}
