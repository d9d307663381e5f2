//! `acre sim`: the deterministic many-farmer simulator (`acre-sim`) from the command line.
//!
//! A run is a pure function of its options: the same `--seed` prints the same report and the same
//! `final hash`. `--json` prints the report as one JSON object; `--csv FILE` writes node 0's chain per
//! slot (best block, blocks authored, finalized block, expected growth) for plotting elsewhere, and
//! `--plot FILE.png` draws chain growth and reward share itself.

use std::ops::Range;
use std::path::PathBuf;

use acre_sim::Config;
use anyhow::{Context, Result, bail};

/// Options of `acre sim`.
#[derive(Debug, clap::Args)]
pub(crate) struct SimArgs {
    /// Farmers, each with its own node and a one-sector plot of 1 to 4 pieces.
    #[arg(long, default_value_t = 100)]
    farmers: usize,
    /// Slots to simulate (one second of virtual time each).
    #[arg(long, default_value_t = 2_000)]
    slots: u64,
    /// The seed every random choice derives from.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Split the network in two halves from slot FROM to slot TO (exclusive), e.g. `1000..1030`.
    #[arg(long, value_name = "FROM..TO", value_parser = parse_range)]
    partition: Option<Range<u64>>,
    /// Fraction of farmers that equivocate (seal two blocks for every slot they win).
    #[arg(long, default_value_t = 0.0, value_name = "FRACTION")]
    byzantine: f64,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// Write node 0's chain per slot as CSV to FILE.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Draw chain growth (against the space's expectation) and reward share (against space share) as
    /// a PNG at FILE.
    #[arg(long, value_name = "FILE.png")]
    plot: Option<PathBuf>,
}

fn parse_range(text: &str) -> Result<Range<u64>, String> {
    let (from, to) = text
        .split_once("..")
        .ok_or_else(|| format!("expected FROM..TO, got {text:?}"))?;
    let from: u64 = from.trim().parse().map_err(|error| format!("FROM: {error}"))?;
    let to: u64 = to.trim().parse().map_err(|error| format!("TO: {error}"))?;
    if from >= to {
        return Err(format!("FROM must be below TO, got {text:?}"));
    }
    Ok(from..to)
}

/// Runs the simulation and prints its report.
pub(crate) fn run(args: SimArgs) -> Result<()> {
    if !(0.0..=1.0).contains(&args.byzantine) {
        bail!(
            "--byzantine must be a fraction between 0 and 1, got {}",
            args.byzantine
        );
    }
    if let Some(path) = &args.plot {
        crate::sim_plot::check_path(path)?;
    }
    let config = Config {
        farmers: args.farmers,
        slots: args.slots,
        seed: args.seed,
        partition: args.partition.clone(),
        byzantine: args.byzantine,
        ..Config::default()
    };
    if !args.json {
        eprintln!(
            "simulating {} farmers for {} slots (seed {}); plotting first…",
            config.farmers, config.slots, config.seed
        );
    }
    let started = std::time::Instant::now();
    let report = acre_sim::run(&config).context("simulation failed")?;
    if let Some(path) = &args.csv {
        std::fs::write(path, report.csv()).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        crate::sim_plot::draw(&report, args.partition.as_ref(), path)?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", report.summary());
        eprintln!(
            "({:.1} s, {:.0} simulated slots per second)",
            started.elapsed().as_secs_f64(),
            config.slots as f64 / started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
