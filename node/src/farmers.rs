//! The farmers' latest status reports (`farmer_reportStatus`), for the dashboard (`node_farmers`).
//!
//! Reports come over the trusted farmer RPC, but are still bounded: at most [`MAX_FARMERS`] farmers are
//! kept (the longest silent is dropped for a new one), a report carries at most
//! `acre_rpc_api::MAX_REPORTED_FARMS` farms, reasons are cut to [`MAX_REASON`] bytes, and a report older
//! than [`REPORT_TTL`] is no longer shown.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use acre_rpc_api::{FarmerReport, FarmerStatus, Hex32, MAX_REPORTED_FARMS};

/// Most farmers whose reports are kept.
pub const MAX_FARMERS: usize = 64;
/// How long a report is shown.
pub const REPORT_TTL: Duration = Duration::from_secs(600);
/// Longest `disabled` reason kept.
pub const MAX_REASON: usize = 200;

/// Why a report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// It lists more farms than allowed.
    #[error("a status report may list at most {max} farms, this one lists {got}")]
    TooManyFarms {
        /// The limit.
        max: usize,
        /// What came.
        got: usize,
    },
}

/// The latest report of each farmer.
#[derive(Debug, Default)]
pub struct FarmerBoard {
    reports: Mutex<HashMap<Hex32, (Instant, FarmerStatus)>>,
}

impl FarmerBoard {
    /// Keeps `status` as its farmer's latest report.
    pub fn report(&self, mut status: FarmerStatus, now: Instant) -> Result<(), ReportError> {
        if status.farms.len() > MAX_REPORTED_FARMS {
            return Err(ReportError::TooManyFarms {
                max: MAX_REPORTED_FARMS,
                got: status.farms.len(),
            });
        }
        for farm in &mut status.farms {
            if let Some(reason) = farm.disabled.as_mut() {
                let mut end = reason.len().min(MAX_REASON);
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                reason.truncate(end);
            }
        }
        let mut reports = self.reports.lock().unwrap_or_else(PoisonError::into_inner);
        reports.retain(|_, (at, _)| now.duration_since(*at) < REPORT_TTL);
        if !reports.contains_key(&status.public_key) && reports.len() >= MAX_FARMERS {
            let oldest = reports.iter().min_by_key(|(_, (at, _))| *at).map(|(key, _)| *key);
            if let Some(oldest) = oldest {
                reports.remove(&oldest);
            }
        }
        reports.insert(status.public_key, (now, status));
        Ok(())
    }

    /// The reports younger than [`REPORT_TTL`], newest first.
    pub fn reports(&self, now: Instant) -> Vec<FarmerReport> {
        let reports = self.reports.lock().unwrap_or_else(PoisonError::into_inner);
        let mut fresh: Vec<FarmerReport> = reports
            .values()
            .filter(|(at, _)| now.duration_since(*at) < REPORT_TTL)
            .map(|(at, status)| FarmerReport {
                public_key: status.public_key,
                age_ms: now.duration_since(*at).as_millis() as u64,
                farms: status.farms.clone(),
            })
            .collect();
        fresh.sort_by_key(|report| (report.age_ms, report.public_key));
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acre_rpc_api::FarmReport;

    fn status(key: u8, farms: usize) -> FarmerStatus {
        FarmerStatus {
            public_key: Hex32([key; 32]),
            farms: (0..farms)
                .map(|index| FarmReport {
                    index: index as u32,
                    size_bytes: 1 << 20,
                    sectors_total: 4,
                    sectors_plotted: 2,
                    slots_audited: 10,
                    slots_won: 1,
                    slots_missed: 0,
                    solutions_rejected: 0,
                    disabled: Some("é".repeat(MAX_REASON)),
                })
                .collect(),
        }
    }

    #[test]
    fn reports_are_bounded_truncated_and_expire() {
        let board = FarmerBoard::default();
        let start = Instant::now();
        assert_eq!(
            board.report(status(1, MAX_REPORTED_FARMS + 1), start),
            Err(ReportError::TooManyFarms {
                max: MAX_REPORTED_FARMS,
                got: MAX_REPORTED_FARMS + 1
            })
        );
        for key in 0..=MAX_FARMERS as u8 {
            board
                .report(status(key, 1), start + Duration::from_millis(u64::from(key)))
                .expect("accepted");
        }
        let now = start + Duration::from_secs(1);
        let reports = board.reports(now);
        assert_eq!(reports.len(), MAX_FARMERS);
        // The longest silent farmer (key 0) made room; the newest is first.
        assert!(reports.iter().all(|report| report.public_key != Hex32([0; 32])));
        assert_eq!(reports[0].public_key, Hex32([MAX_FARMERS as u8; 32]));
        let reason = reports[0].farms[0].disabled.as_ref().expect("a reason");
        assert!(reason.len() <= MAX_REASON && reason.starts_with('é'));
        assert!(
            board
                .reports(start + REPORT_TTL + Duration::from_secs(1))
                .is_empty()
        );
    }
}
