//! Counts what the farming loop does into the farm ledgers and the metrics at once, so `acre-farmer why`
//! and a Prometheus dashboard always tell the same story.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::daemon::ledger::{ClaimKind, Event, MAX_REASON, SkipReason, Snapshot, Tally, now_ms, truncate};
use crate::daemon::metrics::{FarmerMetrics, audited_now};

/// Per-farm tallies since the last flush, and the metrics.
#[derive(Debug)]
pub struct Recorder {
    tallies: Vec<Mutex<Tally>>,
    /// The metrics the same counts go to.
    pub metrics: Arc<FarmerMetrics>,
}

impl Recorder {
    /// A recorder for `farms` farms.
    pub fn new(farms: usize) -> Self {
        let now = now_ms();
        Self {
            tallies: (0..farms).map(|_| Mutex::new(Tally::starting(now))).collect(),
            metrics: Arc::new(FarmerMetrics::new(farms)),
        }
    }

    /// Farms counted.
    pub fn farms(&self) -> usize {
        self.tallies.len()
    }

    fn tally(&self, farm: usize) -> Option<MutexGuard<'_, Tally>> {
        self.tallies
            .get(farm)
            .map(|tally| tally.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// `farm` was audited for a slot and had `candidates` winning chunks.
    pub fn audited(&self, farm: usize, candidates: usize) {
        if let Some(mut tally) = self.tally(farm) {
            tally.audited += 1;
            tally.candidates += candidates as u64;
        }
        FarmerMetrics::farm(&self.metrics.slots_audited, farm).inc();
        FarmerMetrics::farm(&self.metrics.candidates, farm).inc_by(candidates as u64);
        audited_now(&self.metrics);
    }

    /// Every farm's audit of one slot took `took`.
    pub fn audit_time(&self, took: Duration) {
        self.metrics.audit_seconds.observe(took.as_secs_f64());
    }

    /// A slot was skipped for `farm`.
    pub fn skipped(&self, farm: usize, reason: SkipReason) {
        if let Some(mut tally) = self.tally(farm) {
            tally.skipped(reason);
        }
        self.metrics.skipped(farm, reason);
    }

    /// A slot was skipped for every farm.
    pub fn skipped_all(&self, reason: SkipReason) {
        for farm in 0..self.farms() {
            self.skipped(farm, reason);
        }
    }

    /// Reading `farm`'s plot failed.
    pub fn unreadable(&self, farm: usize, slot: u64, sector: u16, error: &str) {
        if let Some(mut tally) = self.tally(farm) {
            tally.skipped(SkipReason::Unreadable);
            tally.event(Event::Unreadable {
                slot,
                sector,
                error: truncate(error, MAX_REASON),
            });
        }
        self.metrics.skipped(farm, SkipReason::Unreadable);
    }

    /// A proof was made in `farm`, taking `took`.
    pub fn proved(&self, farm: usize, took: Duration) {
        if let Some(mut tally) = self.tally(farm) {
            tally.proofs += 1;
        }
        FarmerMetrics::farm(&self.metrics.proofs, farm).inc();
        self.metrics.prove_seconds.observe(took.as_secs_f64());
    }

    /// A proof of `farm` was ready too late (`missed` is an [`Event::Missed`]).
    pub fn missed(&self, farm: usize, missed: Event) {
        if let Some(mut tally) = self.tally(farm) {
            tally.missed += 1;
            tally.event(missed);
        }
        FarmerMetrics::farm(&self.metrics.proofs_missed, farm).inc();
    }

    /// A claim of `farm` was submitted; `verdict` is the node's answer.
    pub fn submitted(&self, farm: usize, slot: u64, kind: ClaimKind, verdict: Result<(), String>) {
        if let Some(mut tally) = self.tally(farm) {
            match kind {
                ClaimKind::Block => tally.solutions += 1,
                ClaimKind::Vote => tally.votes += 1,
            }
            match &verdict {
                Ok(()) => tally.accepted += 1,
                Err(reason) => {
                    tally.rejected += 1;
                    tally.event(Event::Rejected {
                        slot,
                        kind,
                        reason: truncate(reason, MAX_REASON),
                    });
                }
            }
        }
        FarmerMetrics::kind(&self.metrics.submitted, farm, kind).inc();
        if verdict.is_err() {
            FarmerMetrics::kind(&self.metrics.rejected, farm, kind).inc();
        }
    }

    /// A block was sealed with `farm`'s solution.
    pub fn sealed(&self, farm: usize) {
        if let Some(mut tally) = self.tally(farm) {
            tally.sealed += 1;
        }
        FarmerMetrics::farm(&self.metrics.sealed, farm).inc();
    }

    /// Sector `sector` of `farm` (bytes `offset..end`) was damaged and freed for plotting again.
    pub fn damaged(&self, farm: usize, sector: u16, offset: u64, end: u64) {
        if let Some(mut tally) = self.tally(farm) {
            tally.damaged += 1;
            tally.event(Event::Damaged { sector, offset, end });
        }
        FarmerMetrics::farm(&self.metrics.sectors_damaged, farm).inc();
    }

    /// `farm` was disabled.
    pub fn disabled(&self, farm: usize, reason: &str) {
        if let Some(mut tally) = self.tally(farm) {
            tally.event(Event::Disabled {
                reason: truncate(reason, MAX_REASON),
            });
        }
        FarmerMetrics::farm_gauge(&self.metrics.farm_disabled, farm).set(1);
    }

    /// Takes `farm`'s tally up to now (with `snapshot`) and starts the next one.
    pub fn take(&self, farm: usize, snapshot: Option<Snapshot>) -> Option<Tally> {
        let now = now_ms();
        let mut tally = self.tally(farm)?;
        let mut taken = std::mem::replace(&mut *tally, Tally::starting(now));
        taken.to_ms = now;
        taken.snapshot = snapshot;
        Some(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_reach_the_tally_and_the_metrics() {
        let recorder = Recorder::new(2);
        recorder.audited(1, 3);
        recorder.skipped_all(SkipReason::Busy);
        recorder.submitted(1, 9, ClaimKind::Vote, Err("x".repeat(1000)));
        recorder.submitted(1, 10, ClaimKind::Block, Ok(()));
        let tally = recorder.take(1, None).expect("farm 1");
        assert_eq!((tally.audited, tally.candidates, tally.skipped_busy), (1, 3, 1));
        assert_eq!(
            (tally.votes, tally.solutions, tally.accepted, tally.rejected),
            (1, 1, 1, 1)
        );
        assert!(matches!(&tally.events[0], Event::Rejected { reason, .. } if reason.len() == MAX_REASON));
        assert!(recorder.take(1, None).expect("farm 1").is_idle());
        let text = recorder.metrics.render();
        assert!(
            text.contains("acre_farmer_slots_audited_total{farm=\"1\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("acre_farmer_rejected_total{farm=\"1\",kind=\"vote\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("acre_farmer_slots_skipped_total{farm=\"0\",reason=\"busy\"} 1"),
            "{text}"
        );
        assert!(recorder.take(5, None).is_none());
    }
}
