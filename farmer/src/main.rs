//! `acre-farmer`: the farming daemon's command line.
//!
//! `farm` runs the farming daemon against a node (`acre-farmer farm --node ws://…`): it plots the farms
//! from the node's archived history and answers slots and seal requests. `plot` plots offline from a local
//! archive directory (`acre archive` output); `info`, `why` and `scrub` inspect farms: what they hold, what
//! they did (from each farm's ledger) and whether their bytes are intact.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use acre_consensus::ProtocolParams;
use acre_consensus::hashing::Blake3Hash;
use acre_farmer::daemon::ledger::{LedgerFile, now_ms};
use acre_farmer::daemon::{self, DaemonConfig, LEDGER_INTERVAL, why};
use acre_farmer::piece_source::ArchiveDirSource;
use acre_farmer::plot_file::{Farm, FarmHeader, params_id};
use acre_farmer::plotting::plot_sector;
use acre_farmer::sector::SectorLayout;
use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use tracing_subscriber::EnvFilter;

use acre_farmer::daemon::farms::PLOT_FILE;

#[derive(Debug, Parser)]
#[command(name = "acre-farmer", version, about = "The Acre farmer")]
struct Cli {
    /// Protocol parameter set.
    #[arg(long, value_enum, default_value = "mainnet", global = true)]
    params: ParamsName,
    /// How log lines are written to standard error.
    #[arg(long, value_enum, default_value = "text", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (timestamp, level, target, fields, span), for log collectors.
    Json,
}

/// Installs the log subscriber: `RUST_LOG` if set, else `default_filter`, in `format`.
fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().with_current_span(true).with_span_list(false).init(),
    }
}

/// What `acre-farmer benchmark` measures.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum BenchmarkKind {
    /// Auditing every plotted sector for one slot (disk reads); must fit in half a slot.
    Audit,
    /// Proving one win (reading a record and building its proof-of-space table); must fit in the
    /// authoring delay.
    Prove,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ParamsName {
    Mainnet,
    Dev,
}

/// A farm: `path=DIR,size=SIZE` (SIZE in bytes, or with a K, M, G or T suffix).
#[derive(Debug, Clone)]
struct FarmSpec {
    path: PathBuf,
    size: u64,
}

fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let value: u64 = digits.parse().map_err(|_| format!("invalid size {text:?}"))?;
    let multiplier: u64 = match unit
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("unknown size unit in {text:?} (use K, M, G or T)")),
    };
    value
        .checked_mul(multiplier)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

fn parse_farm(text: &str) -> Result<FarmSpec, String> {
    let (mut path, mut size) = (None, None);
    for part in text.split(',') {
        match part.split_once('=') {
            Some(("path", value)) => path = Some(PathBuf::from(value)),
            Some(("size", value)) => size = Some(parse_size(value)?),
            _ => return Err(format!("expected path=DIR,size=SIZE, got {part:?}")),
        }
    }
    Ok(FarmSpec {
        path: path.ok_or("missing path=DIR")?,
        size: size.ok_or("missing size=SIZE")?,
    })
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Plot and farm against a node (parameters and history come from the node; Ctrl-C stops cleanly).
    Farm {
        /// Read settings from this TOML file: its keys are these flags' long names (`reward-address =
        /// "…"`, `plotting-threads = 2`, `no-metrics = true`) and `farms = ["path=DIR,size=SIZE", …]`;
        /// flags and farms given here win.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The node's farmer RPC address (its loopback-only farmer server, `--farmer-rpc-port`).
        #[arg(long, default_value = "ws://127.0.0.1:9945")]
        node: String,
        /// Where block rewards go: 32 bytes of hex.
        #[arg(long)]
        reward_address: String,
        /// The farmer key file (`acre key generate`); default: `identity.key` in the first farm, created
        /// if absent.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Threads to plot with (default: all cores). Plotting runs at the lowest CPU priority, but fewer
        /// threads leave proving more of the machine; `acre-farmer why` says when that matters.
        #[arg(long)]
        plotting_threads: Option<usize>,
        /// Where to serve Prometheus `/metrics` and `/health`.
        #[arg(long, default_value = daemon::metrics::DEFAULT_METRICS_ADDRESS)]
        metrics_address: SocketAddr,
        /// Serve no metrics.
        #[arg(long)]
        no_metrics: bool,
        /// Seconds between each farm's ledger lines (what `why` and `info` read).
        #[arg(long, default_value_t = LEDGER_INTERVAL.as_secs())]
        ledger_interval: u64,
        /// Where to listen for peers of the distributed storage network (repeatable). The peer key is
        /// `peer.key` in the first farm.
        #[arg(long, value_name = "MULTIADDR", default_value = "/ip4/0.0.0.0/tcp/30533")]
        listen: Vec<acre_network::Address>,
        /// Peers to dial besides the node's own peer-to-peer addresses, which the farmer learns from the
        /// node (repeatable; an address without `/p2p/` is dialled as it is).
        #[arg(long, value_name = "MULTIADDR")]
        bootstrap: Vec<acre_network::Address>,
        /// Stay off the distributed storage network: no peer port, no piece cache, pieces only from the
        /// node.
        #[arg(long)]
        no_network: bool,
        /// Share of each new farm kept for the piece cache, in percent (an existing farm keeps its sector
        /// count; its cache gets what the sectors leave, up to this share).
        #[arg(long, default_value_t = daemon::farms::DEFAULT_CACHE_PERCENTAGE,
              value_parser = clap::value_parser!(u8).range(0..=i64::from(daemon::farms::MAX_CACHE_PERCENTAGE)))]
        cache_percentage: u8,
        /// Farms, each `path=DIR,size=SIZE`.
        #[arg(required = true, value_parser = parse_farm)]
        farms: Vec<FarmSpec>,
    },
    /// Plot farms from an archive directory made by `acre archive` (resumes an interrupted plot).
    Plot {
        /// The archive directory to plot history from.
        #[arg(long)]
        archive: PathBuf,
        /// The farmer's ed25519 public key, hex (sectors are bound to it).
        #[arg(long)]
        public_key: String,
        /// Farms to plot, each `path=DIR,size=SIZE`.
        #[arg(required = true, value_parser = parse_farm)]
        farms: Vec<FarmSpec>,
    },
    /// Show what farms hold and what they did: size, plotted and expiring sectors, wins, misses, blocks.
    Info {
        /// The farm directories.
        #[arg(required = true)]
        farms: Vec<PathBuf>,
    },
    /// Measure how long this machine takes to audit a farm for one slot or to prove a win, with a verdict
    /// against the time the protocol allows.
    Benchmark {
        /// What to measure.
        #[arg(value_enum)]
        what: BenchmarkKind,
        /// The farm directory.
        farm: PathBuf,
        /// The chain's slot time in milliseconds (about 1000 on mainnet).
        #[arg(long, default_value_t = 1000)]
        slot_ms: u64,
        /// How many slots to audit, or wins to prove.
        #[arg(long, default_value_t = 20)]
        runs: u64,
        /// The farmer key file the farm was plotted with (proving needs it); default: `identity.key` in
        /// the farm.
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Explain in plain sentences what the farms did and what went wrong (from their ledgers).
    Why {
        /// How many hours back to look.
        #[arg(long, default_value_t = 1)]
        hours: u64,
        /// The farm directories.
        #[arg(required = true)]
        farms: Vec<PathBuf>,
    },
    /// Check every plotted sector's checksum and name the damaged ones with their byte ranges; exits with 1
    /// if any is damaged (and not repaired).
    Scrub {
        /// Free the damaged sectors so the farmer plots just those again from the node when it next runs
        /// with the farm (the farmer must be stopped; a running farmer scrubs its farms itself at start).
        #[arg(long)]
        repair: bool,
        /// The farm directories.
        #[arg(required = true)]
        farms: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli: Cli = acre_rpc_api::config_file::parse();
    init_logging(cli.log_format, "warn,acre=info");
    let params = match cli.params {
        ParamsName::Mainnet => ProtocolParams::mainnet(),
        ParamsName::Dev => ProtocolParams::dev(),
    };
    let result = match cli.command {
        Command::Farm {
            config,
            node,
            reward_address,
            key,
            plotting_threads,
            metrics_address,
            no_metrics,
            ledger_interval,
            listen,
            bootstrap,
            no_network,
            cache_percentage,
            farms,
        } => farm(FarmOptions {
            config,
            node,
            reward_address,
            key,
            plotting_threads,
            metrics_address: (!no_metrics).then_some(metrics_address),
            ledger_interval: Duration::from_secs(ledger_interval.max(1)),
            network: (!no_network).then_some(daemon::dsn::FarmerNetworkConfig { listen, bootstrap }),
            cache_percentage,
            farms,
        }),
        Command::Plot {
            archive,
            public_key,
            farms,
        } => plot(&params, &archive, &public_key, &farms),
        Command::Info { farms } => info(&params, &farms),
        Command::Why { hours, farms } => why_report(hours, &farms),
        Command::Benchmark {
            what,
            farm,
            slot_ms,
            runs,
            key,
        } => benchmark(&params, what, &farm, slot_ms, runs, key.as_deref()),
        Command::Scrub { repair, farms } => scrub(&params, repair, &farms),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn plot(params: &ProtocolParams, archive: &Path, public_key: &str, farms: &[FarmSpec]) -> Result<ExitCode> {
    let key: [u8; 32] = hex::decode(public_key)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .context("--public-key must be 32 bytes of hex")?;
    let public_key_hash = acre_consensus::sectors::PublicKey(key).hash();
    let source = ArchiveDirSource::open(params.clone(), archive)?;
    let history_size = source.history_size();
    let genesis_hash = source
        .headers()
        .first()
        .map_or(Blake3Hash::ZERO, |header| header.hash());
    let pieces = params.max_pieces_per_sector;
    let sector_size = SectorLayout::new(params, pieces).sector_size() as u64;

    for spec in farms {
        std::fs::create_dir_all(&spec.path).with_context(|| format!("creating {}", spec.path.display()))?;
        let path = spec.path.join(PLOT_FILE);
        let sectors = u16::try_from(spec.size / sector_size).unwrap_or(u16::MAX);
        if sectors == 0 {
            bail!(
                "{}: size {} is smaller than one sector ({sector_size} bytes)",
                spec.path.display(),
                spec.size
            );
        }
        let mut farm = if path.exists() {
            Farm::open(&path, params)?
        } else {
            let header = FarmHeader {
                params_id: params_id(params),
                public_key_hash,
                genesis_hash,
                sector_count: sectors,
                pieces_per_sector: pieces,
            };
            Farm::create(&path, params, header)?
        };
        if farm.header().public_key_hash != public_key_hash {
            bail!("{} belongs to another farmer key", path.display());
        }
        let total = u64::from(farm.header().sector_count);
        let progress = ProgressBar::new(total).with_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] [{bar:40}] {pos}/{len} sectors ({msg}, eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        progress.set_position(farm.plotted().count() as u64);
        let start = Instant::now();
        let mut plotted_bytes = 0u64;
        while let Some(index) = farm.first_unplotted() {
            let sector = plot_sector(params, &public_key_hash, index, history_size, pieces, &source)
                .with_context(|| format!("plotting sector {index} of {}", path.display()))?;
            farm.write_sector(&sector)?;
            plotted_bytes += sector_size;
            let rate = plotted_bytes as f64 / (1 << 20) as f64 / start.elapsed().as_secs_f64().max(1e-9);
            progress.set_message(format!("{rate:.1} MiB/s"));
            progress.inc(1);
        }
        progress.finish_and_clear();
        println!(
            "{}: {total} sectors plotted ({:.1} MiB) at history size {history_size} in {:.1} s",
            path.display(),
            (total * sector_size) as f64 / (1 << 20) as f64,
            start.elapsed().as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `acre-farmer farm`'s options.
struct FarmOptions {
    config: Option<PathBuf>,
    node: String,
    reward_address: String,
    key: Option<PathBuf>,
    plotting_threads: Option<usize>,
    metrics_address: Option<SocketAddr>,
    ledger_interval: Duration,
    network: Option<daemon::dsn::FarmerNetworkConfig>,
    cache_percentage: u8,
    farms: Vec<FarmSpec>,
}

fn farm(options: FarmOptions) -> Result<ExitCode> {
    let FarmOptions {
        config,
        node,
        reward_address,
        key,
        plotting_threads,
        metrics_address,
        ledger_interval,
        network,
        cache_percentage,
        farms,
    } = options;
    let reward_address: [u8; 32] = hex::decode(reward_address.trim_start_matches("0x"))
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .context("--reward-address must be 32 bytes of hex")?;
    let first = farms.first().context("at least one farm is required")?;
    if let Some(config) = &config {
        tracing::info!(config = %config.display(), "settings read from the config file (flags win)");
    }
    let key = match key {
        Some(path) => daemon::identity::read_key_file(&path)?,
        None => daemon::load_or_create_identity(&first.path)?,
    };
    eprintln!(
        "farmer public key: {}",
        hex::encode(key.verifying_key().to_bytes())
    );
    let config = DaemonConfig {
        node_url: node,
        reward_address,
        key,
        farms: farms.into_iter().map(|spec| (spec.path, spec.size)).collect(),
        plotting_threads,
        show_progress: std::io::stderr().is_terminal(),
        metrics_address,
        ledger_interval,
        network,
        cache_percentage,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(daemon::run(config, async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            eprintln!("cannot listen for Ctrl-C ({error}); stop with SIGKILL");
            std::future::pending::<()>().await;
        }
        eprintln!("shutting down");
    }))?;
    // A sector still being plotted when Ctrl-C came is abandoned; do not wait for its threads.
    runtime.shutdown_background();
    Ok(ExitCode::SUCCESS)
}

fn open_farm(params: &ProtocolParams, dir: &Path) -> Result<Farm> {
    Ok(Farm::open(&dir.join(PLOT_FILE), params)?)
}

fn info(params: &ProtocolParams, dirs: &[PathBuf]) -> Result<ExitCode> {
    let day_ago = now_ms().saturating_sub(24 * 3_600_000);
    for (position, dir) in dirs.iter().enumerate() {
        let farm = open_farm(params, dir)?;
        let header = farm.header();
        let sector_size = SectorLayout::new(params, header.pieces_per_sector).sector_size() as u64;
        let (tallies, _) = LedgerFile::in_farm(dir).read_since(0)?;
        let all = why::sum(&tallies);
        let recent: Vec<_> = tallies.iter().filter(|t| t.to_ms >= day_ago).cloned().collect();
        let day = why::sum(&recent);
        if position > 0 {
            println!();
        }
        println!("farm:              {}", farm.path().display());
        println!(
            "size:              {:.1} MiB ({} sectors of {:.1} MiB)",
            (u64::from(header.sector_count) * sector_size) as f64 / f64::from(1u32 << 20),
            header.sector_count,
            sector_size as f64 / f64::from(1u32 << 20)
        );
        println!(
            "sectors plotted:   {} of {}",
            farm.plotted().count(),
            header.sector_count
        );
        match &all.snapshot {
            Some(snapshot) => println!(
                "expiring:          {} expire with the next segment, {} expired (at history size {}, as last \
                 seen by the farmer)",
                snapshot.expiring, snapshot.expired, snapshot.history_size
            ),
            None => println!("expiring:          unknown (the farmer has not run with this farm yet)"),
        }
        println!("public key hash:   {}", header.public_key_hash);
        println!("genesis hash:      {}", header.genesis_hash);
        for (label, tally) in [("last 24 h", &day), ("all kept", &all)] {
            println!(
                "{label:<9}:         {} slots audited, {} wins ({} blocks, {} votes), {} rejected, {} missed \
                 deadlines, {} blocks sealed (rewards credited)",
                tally.audited,
                tally.solutions + tally.votes,
                tally.solutions,
                tally.votes,
                tally.rejected,
                tally.missed,
                tally.sealed
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn benchmark(
    params: &ProtocolParams,
    what: BenchmarkKind,
    dir: &Path,
    slot_ms: u64,
    runs: u64,
    key: Option<&Path>,
) -> Result<ExitCode> {
    use acre_farmer::daemon::benchmark;
    let farm = open_farm(params, dir)?;
    let slot = Duration::from_millis(slot_ms.max(1));
    let line = match what {
        BenchmarkKind::Audit => {
            let timings = benchmark::audit(params, &farm, runs.max(1))?;
            benchmark::verdict(
                &format!("auditing {} sectors", farm.plotted().count()),
                &timings,
                slot / 2,
            )
        }
        BenchmarkKind::Prove => {
            let key_path = key.map_or_else(|| dir.join("identity.key"), Path::to_path_buf);
            let key = daemon::identity::read_key_file(&key_path)
                .with_context(|| format!("reading the farmer key {}", key_path.display()))?;
            let public_key = acre_consensus::sectors::PublicKey(key.verifying_key().to_bytes());
            let timings = benchmark::prove_wins(params, &farm, &public_key, runs.max(1) as usize)?;
            let allowed = slot * u32::try_from(params.block_authoring_delay).unwrap_or(u32::MAX);
            benchmark::verdict("proving a win", &timings, allowed)
        }
    };
    println!("{}: {line}", dir.display());
    Ok(ExitCode::SUCCESS)
}

fn why_report(hours: u64, dirs: &[PathBuf]) -> Result<ExitCode> {
    let since = now_ms().saturating_sub(hours.saturating_mul(3_600_000));
    for dir in dirs {
        let ledger = LedgerFile::in_farm(dir);
        let (tallies, unreadable) = ledger
            .read_since(since)
            .with_context(|| format!("reading the ledger of {}", dir.display()))?;
        let total = why::sum(&tallies);
        for line in why::explain(&dir.display().to_string(), hours, &total, unreadable) {
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn scrub(params: &ProtocolParams, repair: bool, dirs: &[PathBuf]) -> Result<ExitCode> {
    let mut unrepaired = 0;
    for dir in dirs {
        let mut farm = open_farm(params, dir)?;
        if repair {
            farm.lock_exclusive()?;
        }
        let damaged = farm.scrub()?;
        for error in &damaged {
            println!("{error}");
        }
        let checked = farm.plotted().count();
        let mut freed = 0;
        if repair {
            for error in &damaged {
                if let acre_farmer::Error::CorruptedSector { sector_index, .. } = error {
                    farm.free_sector(*sector_index)?;
                    freed += 1;
                }
            }
        }
        unrepaired += damaged.len() - freed;
        print!(
            "{}: {checked} sectors checked, {} damaged",
            dir.display(),
            damaged.len()
        );
        if repair && freed > 0 {
            print!(", {freed} freed: `acre-farmer farm` plots just those again from the node");
        }
        println!();
    }
    Ok(if unrepaired == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_farm_specs_parse() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("2M"), Ok(2 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("5X").is_err());
        let spec = parse_farm("path=/tmp/farm,size=10M").expect("valid");
        assert_eq!((spec.path, spec.size), (PathBuf::from("/tmp/farm"), 10 << 20));
        assert!(parse_farm("path=/tmp/farm").is_err());
    }

    /// The example in `docs/config/` is a valid config, and command-line flags and farms win over it.
    #[test]
    fn the_example_config_file_parses_and_flags_win() {
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/config/acre-farmer.toml");
        let parse = |extra: &[&str]| -> Cli {
            let args = ["acre-farmer", "farm", "--config", example]
                .into_iter()
                .chain(extra.iter().copied());
            acre_rpc_api::config_file::try_parse_from(args).unwrap_or_else(|error| panic!("{error}"))
        };
        let cli = parse(&[]);
        assert!(matches!(cli.log_format, LogFormat::Json));
        let Command::Farm {
            node,
            metrics_address,
            ledger_interval,
            farms,
            ..
        } = cli.command
        else {
            panic!("not farm");
        };
        assert_eq!(node, "ws://127.0.0.1:9945");
        assert_eq!(metrics_address, "127.0.0.1:9616".parse().expect("address"));
        assert_eq!(ledger_interval, 10);
        let sizes: Vec<(PathBuf, u64)> = farms.into_iter().map(|farm| (farm.path, farm.size)).collect();
        assert_eq!(
            sizes,
            [
                (PathBuf::from("/srv/acre/farm-1"), 2 << 40),
                (PathBuf::from("/srv/acre/farm-2"), 2 << 40)
            ]
        );

        let cli = parse(&[
            "--log-format",
            "text",
            "--ledger-interval",
            "3",
            "path=/x,size=1M",
        ]);
        assert!(matches!(cli.log_format, LogFormat::Text));
        let Command::Farm {
            ledger_interval,
            farms,
            ..
        } = cli.command
        else {
            panic!("not farm");
        };
        assert_eq!(ledger_interval, 3);
        assert_eq!(farms.len(), 1, "farms on the command line replace the file's");
    }
}
