//! `acre`: the Acre command-line client.
//!
//! It manages keys (`acre key`), turns files into archived history and back (`acre archive`,
//! `acre retrieve`), which exercises the whole archival storage layer from the outside (segments, erasure
//! coding, piece verification and reconstruction from any half of the pieces), and talks to a node over
//! JSON-RPC (`acre balance`, `acre transfer`, `acre chain`, `acre block`). Only the node commands start a
//! tokio runtime; the others are plain synchronous code.

mod archive;
mod client;
mod dev;
mod devnet;
mod keys;
mod sim;
mod sim_plot;

use std::path::PathBuf;
use std::process::ExitCode;

use acre_consensus::ProtocolParams;
use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(name = "acre", version, about = "The Acre command-line client")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// A shipped protocol parameter set.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum ParamsName {
    /// Production sizes: 1 MiB records, 128 + 128 pieces per segment (128 MiB of history per segment).
    Mainnet,
    /// Small sizes for tests: 4 KiB records, 16 + 16 pieces per segment (64 KiB per segment).
    Dev,
}

impl ParamsName {
    fn params(self) -> ProtocolParams {
        match self {
            Self::Mainnet => ProtocolParams::mainnet(),
            Self::Dev => ProtocolParams::dev(),
        }
    }
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Create a new ed25519 key in FILE (never overwrites) and print its public key.
    Generate {
        /// Where to write the secret key (created with owner-only permissions).
        file: PathBuf,
    },
    /// Print the public key of the key in FILE.
    Inspect {
        /// The key file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage keys: a key's public key is both an account address and a farmer identity.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Archive FILE into DIR as segments of erasure-coded, verifiable pieces.
    ///
    /// DIR receives `segment-headers` (the encoded segment headers, back to back) and
    /// `segment-<index>/piece-<position>` (one encoded piece each). Any half of each segment's pieces is
    /// enough to retrieve the file.
    Archive {
        /// The file to archive.
        file: PathBuf,
        /// The directory to create (it must not exist or be empty).
        dir: PathBuf,
        /// Protocol parameter set.
        #[arg(long, value_enum, default_value = "mainnet")]
        params: ParamsName,
        /// The file is archived as a chain of blocks of this many bytes.
        #[arg(long, default_value_t = 4 << 20, value_parser = clap::value_parser!(u32).range(1..))]
        block_size: u32,
    },
    /// Rebuild the file archived in DIR into FILE, verifying every piece against the segment headers.
    Retrieve {
        /// The archive directory.
        dir: PathBuf,
        /// Where to write the file (replaced atomically once complete).
        file: PathBuf,
        /// Protocol parameter set the archive was made with.
        #[arg(long, value_enum, default_value = "mainnet")]
        params: ParamsName,
    },
    #[command(flatten)]
    Client(client::Command),
    /// Run a development chain: a node and a farmer with a small plot, printing blocks as they come.
    Dev(dev::DevArgs),
    /// Run a local network on loopback: several nodes (the first one the timekeeper, the others
    /// bootstrapped to it) and farmers spread over them, with a live table per node; Ctrl-C stops all.
    Devnet(devnet::DevnetArgs),
    /// Simulate many farmers deterministically over the real protocol code and report chain growth, forks,
    /// rewards against space, finality and equivocations.
    Sim(sim::SimArgs),
}

/// Runs a node command on a single-threaded runtime: one connection, one request at a time.
fn run_client(command: client::Command) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(client::run(command))
}

/// Runs `acre dev` on a multi-threaded runtime (node, farmer and RPC share it).
fn run_dev(args: dev::DevArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(dev::run(args))
}

/// Runs `acre devnet` (it only polls its processes' RPC).
fn run_devnet(args: devnet::DevnetArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(devnet::run(args))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `acre dev` shows the farmer's plotting and the archiver's segments; blocks it prints itself.
    let default_filter = match cli.command {
        Command::Dev(_) => "warn,acre=info,acre_node::archiving=info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)))
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Archive {
            file,
            dir,
            params,
            block_size,
        } => archive::archive(&params.params(), &file, &dir, block_size as usize),
        Command::Retrieve { dir, file, params } => archive::retrieve(&params.params(), &dir, &file),
        Command::Key(KeyCommand::Generate { file }) => keys::generate(&file),
        Command::Key(KeyCommand::Inspect { file }) => keys::inspect(&file),
        Command::Client(command) => run_client(command),
        Command::Dev(args) => run_dev(args),
        Command::Devnet(args) => run_devnet(args),
        Command::Sim(args) => sim::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
