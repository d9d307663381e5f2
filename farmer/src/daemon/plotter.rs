//! The plotting loop: keeps every farm full of live sectors.
//!
//! It plots one sector at a time, always the one [`next_sector`] names at the current history size:
//! expired or soon-to-expire sectors first, then free ones. Each sector's pieces are fetched from the node
//! (or, for pieces it lacks, from the DSN) up front, plotted on the rayon pool on a blocking thread, then written crash-safely. When nothing is
//! left to do it sleeps until the history grows. Failures (node gone, bad pieces) are retried with a
//! backoff; a failing disk write disables that farm (it can no longer be trusted), and the other farms
//! keep plotting and farming.
//!
//! On shutdown a sector being fetched or plotted is abandoned (nothing of it reached the disk); a write
//! in progress is finished first.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use acre_consensus::sectors::SectorId;
use acre_consensus::{HistorySize, SectorIndex};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::daemon::connection::Node;
use crate::daemon::farms::Farms;
use crate::daemon::metrics::FarmerMetrics;
use crate::daemon::node_source::fetch_sector_pieces;
use crate::daemon::progress::PlottingProgress;
use crate::daemon::recorder::Recorder;
use crate::daemon::state::{Backoff, ChainView, PlotReason, next_sector};
use crate::error::Error;
use crate::plotting::{PlottedSector, plot_sector};

/// What the plotting loop works with.
#[derive(Debug)]
pub struct Plotter {
    /// The farms to fill.
    pub farms: Arc<Farms>,
    /// The known history, updated by the connection loop.
    pub chain: watch::Receiver<Arc<ChainView>>,
    /// The current node connection, if any.
    pub node: watch::Receiver<Option<Node>>,
    /// Set once the daemon shuts down.
    pub stop: watch::Receiver<bool>,
    /// The pool sectors are plotted on.
    pub pool: Arc<rayon::ThreadPool>,
    /// Whether to draw progress bars.
    pub show_progress: bool,
    /// Where disabled farms and written sectors are counted.
    pub recorder: Arc<Recorder>,
    /// Set while a sector is being fetched or plotted.
    pub plotting: Arc<AtomicBool>,
    /// Notified when a farm's sectors change outside the plotter (a damaged sector freed).
    pub wake: Arc<tokio::sync::Notify>,
    /// Where pieces the node lacks come from (`None`: the farmer is not on the DSN).
    pub dsn: Option<Arc<crate::daemon::dsn::Dsn>>,
}

/// Clears the plotting flag however plotting a sector ends.
struct PlottingGuard(Arc<AtomicBool>);

impl Drop for PlottingGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// One unit of plotting work.
#[derive(Debug, Clone, Copy)]
struct Job {
    farm: usize,
    sector: SectorIndex,
    reason: PlotReason,
    history_size: HistorySize,
}

/// Resolves once `stop` is set (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

impl Plotter {
    /// Runs until shutdown; returns an error only if its own tasks fail.
    pub async fn run(mut self) -> Result<(), Error> {
        let counts: Vec<(u64, u64)> = self
            .farms
            .farms
            .iter()
            .map(|farm| {
                let farm = farm.read();
                (
                    farm.plotted().count() as u64,
                    u64::from(farm.header().sector_count),
                )
            })
            .collect();
        let mut progress = PlottingProgress::new(self.show_progress, &counts);
        let mut backoff = Backoff::new();
        loop {
            if *self.stop.borrow() {
                break;
            }
            let chain = self.chain.borrow_and_update().clone();
            let Some(job) = self.next_job(&chain) else {
                tokio::select! {
                    () = stopped(&mut self.stop) => break,
                    changed = self.chain.changed() => if changed.is_err() { break },
                    () = self.wake.notified() => {}
                }
                continue;
            };
            self.plotting.store(true, Ordering::Release);
            let guard = PlottingGuard(self.plotting.clone());
            let plotted = self.plot(&chain, job).await;
            drop(guard);
            let plotted = match plotted {
                Ok(Some(plotted)) => plotted,
                Ok(None) => break,
                Err(error) => {
                    let delay = backoff.next_delay();
                    warn!(target: "acre::plotting", farm = job.farm, sector = job.sector.0, %error, retry_in = ?delay, "plotting a sector failed");
                    tokio::select! {
                        () = stopped(&mut self.stop) => break,
                        () = tokio::time::sleep(delay) => continue,
                    }
                }
            };
            backoff.reset();
            let bytes = plotted.bytes.len() as u64;
            let farms = self.farms.clone();
            let written = tokio::task::spawn_blocking(move || {
                let mut farm = farms.farms[job.farm].write();
                farm.write_sector(&plotted)?;
                Ok::<_, Error>(farm.plotted().count() as u64)
            })
            .await
            .map_err(|error| Error::Task(error.to_string()))?;
            let plotted_count = match written {
                Ok(count) => count,
                Err(error) => {
                    let reason = format!("writing sector {} failed: {error}", job.sector.0);
                    if self.farms.farms[job.farm].disable(reason.clone()) {
                        self.recorder.disabled(job.farm, &reason);
                    }
                    continue;
                }
            };
            FarmerMetrics::farm(&self.recorder.metrics.sectors_written, job.farm).inc();
            FarmerMetrics::farm_gauge(&self.recorder.metrics.sectors_plotted, job.farm)
                .set(plotted_count as i64);
            progress.sector_done(
                job.farm,
                job.sector,
                job.history_size,
                job.reason,
                bytes,
                plotted_count,
            );
        }
        progress.finish();
        Ok(())
    }

    fn next_job(&self, chain: &ChainView) -> Option<Job> {
        let history_size = chain.history_size()?;
        let farms = &self.farms;
        farms.farms.iter().enumerate().find_map(|(index, shared)| {
            if shared.disabled().is_some() {
                return None;
            }
            let farm = shared.read();
            let sectors: Vec<_> = (0..farm.header().sector_count)
                .map(|sector| farm.sector(SectorIndex(sector)))
                .collect();
            next_sector(&farms.params, chain, &farms.public_key_hash, &sectors).map(|(sector, reason)| Job {
                farm: index,
                sector,
                reason,
                history_size,
            })
        })
    }

    /// Fetches and plots `job`'s sector; `None` if the daemon stopped meanwhile.
    async fn plot(&mut self, chain: &ChainView, job: Job) -> Result<Option<PlottedSector>, Error> {
        let node = tokio::select! {
            () = stopped(&mut self.stop) => return Ok(None),
            node = self.node.wait_for(|node| node.as_ref().is_some_and(Node::is_connected)) => {
                match node {
                    Ok(node) => node.clone(),
                    Err(_) => return Ok(None),
                }
            }
        };
        let Some(node) = node else { return Ok(None) };
        let farms = self.farms.clone();
        let pieces = farms.farms[job.farm].read().header().pieces_per_sector;
        let sector_id = SectorId::new(&farms.public_key_hash, job.sector, job.history_size);
        debug!(target: "acre::plotting", farm = job.farm, sector = job.sector.0, history_size = job.history_size.get(), ?job.reason, "plotting sector");
        let source = tokio::select! {
            () = stopped(&mut self.stop) => return Ok(None),
            source = fetch_sector_pieces(&node, self.dsn.as_ref(), &farms.params, chain, &sector_id, job.history_size, pieces) => source?,
        };
        let pool = self.pool.clone();
        let plotting = tokio::task::spawn_blocking(move || {
            pool.install(|| {
                plot_sector(
                    &farms.params,
                    &farms.public_key_hash,
                    job.sector,
                    job.history_size,
                    pieces,
                    &source,
                )
            })
        });
        tokio::select! {
            // The blocking task finishes in the background and its sector is dropped unwritten.
            () = stopped(&mut self.stop) => Ok(None),
            plotted = plotting => plotted.map_err(|error| Error::Task(error.to_string()))?.map(Some),
        }
    }
}
