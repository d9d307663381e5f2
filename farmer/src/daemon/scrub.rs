//! The start-up scrub: every plotted sector's checksum checked once, damaged sectors freed for replotting.

use tokio::sync::watch;
use tracing::{info, warn};

use crate::daemon::farms::Farms;
use crate::daemon::recorder::Recorder;
use crate::error::Error;

/// Checks every plotted sector of every farm once (at start, in the background, while farming goes on)
/// and frees the damaged ones, so the plotter (woken through `wake`) plots just those again.
pub fn scrub_farms(
    farms: &Farms,
    recorder: &Recorder,
    wake: &tokio::sync::Notify,
    stop: &watch::Receiver<bool>,
) {
    for (index, shared) in farms.farms.iter().enumerate() {
        let sectors = shared.read().header().sector_count;
        let mut damaged = 0;
        for sector in (0..sectors).map(acre_consensus::SectorIndex) {
            if *stop.borrow() || shared.disabled().is_some() {
                return;
            }
            let checked = shared.read().check_sector(sector);
            match checked {
                Ok(None) => {}
                Ok(Some(Error::CorruptedSector { offset, end, .. })) => {
                    warn!(target: "acre::farm", farm = %shared.dir().display(), sector = sector.0, offset, end, "sector damaged on disk; plotting it again");
                    if let Err(error) = shared.write().free_sector(sector) {
                        let reason = format!("freeing damaged sector {} failed: {error}", sector.0);
                        if shared.disable(reason.clone()) {
                            recorder.disabled(index, &reason);
                        }
                        return;
                    }
                    recorder.damaged(index, sector.0, offset, end);
                    damaged += 1;
                    wake.notify_one();
                }
                Ok(Some(other)) | Err(other) => {
                    warn!(target: "acre::farm", farm = %shared.dir().display(), sector = sector.0, error = %other, "cannot check a sector");
                }
            }
        }
        info!(target: "acre::farm", farm = %shared.dir().display(), sectors, damaged, "farm scrubbed");
    }
}
