//! Plotting progress: indicatif bars on a terminal, `tracing` events otherwise.

use std::time::Instant;

use acre_consensus::{HistorySize, SectorIndex};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tracing::info;

use crate::daemon::state::PlotReason;

/// Progress of every farm's plotting.
#[derive(Debug)]
pub struct PlottingProgress {
    bars: Option<(MultiProgress, Vec<ProgressBar>)>,
    started: Instant,
    bytes: u64,
}

impl PlottingProgress {
    /// Progress for farms whose `(plotted, total)` sector counts are given; bars if `show` is set.
    pub fn new(show: bool, farms: &[(u64, u64)]) -> Self {
        let bars = show.then(|| {
            let multi = MultiProgress::new();
            let style = ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] [{bar:30}] {pos}/{len} sectors ({msg}, eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            let bars = farms
                .iter()
                .enumerate()
                .map(|(farm, &(plotted, total))| {
                    let bar = multi.add(ProgressBar::new(total).with_style(style.clone()));
                    bar.set_prefix(format!("farm {farm}"));
                    bar.set_position(plotted);
                    bar.set_message("0.0 MiB/s");
                    bar
                })
                .collect();
            (multi, bars)
        });
        Self {
            bars,
            started: Instant::now(),
            bytes: 0,
        }
    }

    /// Records a written sector of `bytes` bytes; `plotted` is the farm's plotted sector count now.
    pub fn sector_done(
        &mut self,
        farm: usize,
        sector: SectorIndex,
        history_size: HistorySize,
        reason: PlotReason,
        bytes: u64,
        plotted: u64,
    ) {
        self.bytes = self.bytes.saturating_add(bytes);
        let rate = self.bytes as f64 / f64::from(1u32 << 20) / self.started.elapsed().as_secs_f64().max(1e-9);
        match &self.bars {
            Some((_, bars)) => {
                if let Some(bar) = bars.get(farm) {
                    bar.set_position(plotted);
                    bar.set_message(format!("{rate:.1} MiB/s"));
                }
            }
            None => info!(
                target: "acre::plotting",
                farm,
                sector = sector.0,
                history_size = history_size.get(),
                ?reason,
                plotted,
                mib_per_second = format!("{rate:.1}"),
                "sector plotted"
            ),
        }
    }

    /// Removes the bars (at shutdown).
    pub fn finish(&self) {
        if let Some((_, bars)) = &self.bars {
            for bar in bars {
                bar.abandon();
            }
        }
    }
}
