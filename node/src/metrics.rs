//! Prometheus metrics, served as text on `GET /metrics`, and the node's health on `GET /health`.
//!
//! `/health` answers 200 only while the node is synced and importing: its proof-of-time chain advanced
//! within [`HEALTHY_SLOT_AGE`], its best block within [`HEALTHY_IMPORT_AGE`], and it is at most
//! [`HEALTHY_SYNC_LAG`] blocks behind the best its peers report; otherwise 503 with the reason.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::error::{ImportError, PoolError};
use crate::service::{SolutionError, VoteSubmissionError};

/// The label of a per-reason counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReasonLabel {
    /// A short, stable reason name.
    pub reason: &'static str,
}

/// The (topic, fault) pairs gossip is refused for, each a series from the start.
pub const GOSSIP_FAULTS: [(&str, &str); 7] = [
    ("blocks", "undecodable"),
    ("blocks", "invalid_block"),
    ("blocks", "invalid_pot"),
    ("pot", "undecodable"),
    ("pot", "invalid_pot"),
    ("transactions", "undecodable"),
    ("transactions", "invalid_transaction"),
];

/// Where a piece came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SourceLabel {
    /// `local`, `peer`, `reconstructed` or `failed`.
    pub source: &'static str,
}

/// The labels of a refused gossip message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct GossipLabel {
    /// `blocks`, `pot` or `transactions`.
    pub topic: &'static str,
    /// The fault held against the sender.
    pub reason: &'static str,
}

/// The node's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    registry: Registry,
    /// Best block number.
    pub best_number: Gauge<u64, AtomicU64>,
    /// Finalized block number.
    pub finalized_number: Gauge<u64, AtomicU64>,
    /// Archived segments.
    pub segments: Gauge<u64, AtomicU64>,
    /// Newest proved slot.
    pub current_slot: Gauge<u64, AtomicU64>,
    /// Pending transactions.
    pub txpool_size: Gauge<u64, AtomicU64>,
    /// Transactions the pool refused, by reason (`PoolError::reason`).
    pub txpool_rejected: Family<ReasonLabel, Counter>,
    /// Blocks imported.
    pub blocks_imported: Counter,
    /// Blocks rejected by import.
    pub blocks_rejected: Counter,
    /// Blocks this node authored.
    pub blocks_authored: Counter,
    /// Solutions accepted from farmers.
    pub solutions: Counter,
    /// Votes accepted from farmers.
    pub votes: Counter,
    /// Blocks rejected by import, by reason (`ImportError::reason`).
    pub blocks_rejected_by_reason: Family<ReasonLabel, Counter>,
    /// Solutions refused, by reason (`SolutionError::reason`).
    pub solutions_rejected: Family<ReasonLabel, Counter>,
    /// Votes refused, by reason (`VoteSubmissionError::reason`).
    pub votes_rejected: Family<ReasonLabel, Counter>,
    /// Connected peers of this chain.
    pub peers: Gauge<u64, AtomicU64>,
    /// The best block number peers report (the sync target); the own best when no peer is ahead.
    pub sync_target: Gauge<u64, AtomicU64>,
    /// Blocks imported by sync (from peers' block ranges), not gossip or authoring.
    pub blocks_synced: Counter,
    /// Proof-of-time slots fetched by catch-up (`pot-slots`) and verified, not gossiped.
    pub pot_slots_fetched: Counter,
    /// Accounts of a snapshot snap sync downloaded, verified and started from.
    pub snap_accounts: Counter,
    /// Gossip messages refused, by topic and fault.
    pub gossip_rejected: Family<GossipLabel, Counter>,
    /// Pieces served from the DSN (ones the node does not keep), by where they came from.
    pub dsn_pieces: Family<SourceLabel, Counter>,
    /// Unix time (ms) the best block last changed; 0 before the first change since start.
    best_changed_ms: AtomicU64,
    /// Unix time (ms) a new slot was last reached; 0 before the first.
    slot_changed_ms: AtomicU64,
}

/// How long the proof-of-time chain may stand still before the node reports itself unhealthy.
pub const HEALTHY_SLOT_AGE: Duration = Duration::from_secs(10);
/// How long the best block may stand still before the node reports itself unhealthy (twenty times
/// mainnet's six-second block time: a real chain goes that long without a block with probability e^-20).
pub const HEALTHY_IMPORT_AGE: Duration = Duration::from_secs(120);

/// How many blocks the node may be behind the best its peers report and still be healthy (blocks in
/// flight on the gossip network).
pub const HEALTHY_SYNC_LAG: u64 = 5;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| {
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
    })
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut metrics = Self::default();
        let registry = &mut metrics.registry;
        registry.register(
            "acre_best_block_number",
            "Best block number",
            metrics.best_number.clone(),
        );
        registry.register(
            "acre_finalized_block_number",
            "Finalized block number",
            metrics.finalized_number.clone(),
        );
        registry.register(
            "acre_segments_archived",
            "Archived segments",
            metrics.segments.clone(),
        );
        registry.register(
            "acre_current_slot",
            "Newest proved slot",
            metrics.current_slot.clone(),
        );
        registry.register(
            "acre_txpool_size",
            "Pending transactions",
            metrics.txpool_size.clone(),
        );
        // The text encoder appends `_total` to counters: exposed as `acre_txpool_rejected_total{reason}`.
        registry.register(
            "acre_txpool_rejected",
            "Transactions refused by the pool, by reason",
            metrics.txpool_rejected.clone(),
        );
        registry.register(
            "acre_blocks_imported",
            "Blocks imported",
            metrics.blocks_imported.clone(),
        );
        registry.register(
            "acre_blocks_rejected",
            "Blocks rejected",
            metrics.blocks_rejected.clone(),
        );
        registry.register(
            "acre_blocks_authored",
            "Blocks authored",
            metrics.blocks_authored.clone(),
        );
        registry.register("acre_solutions", "Solutions accepted", metrics.solutions.clone());
        registry.register(
            "acre_peers",
            "Connected peers of this chain",
            metrics.peers.clone(),
        );
        registry.register(
            "acre_sync_target_block_number",
            "Best block number peers report",
            metrics.sync_target.clone(),
        );
        registry.register(
            "acre_blocks_synced",
            "Blocks imported from peers' block ranges",
            metrics.blocks_synced.clone(),
        );
        registry.register(
            "acre_pot_slots_fetched",
            "Proof-of-time slots a follower fetched from a peer to catch up with gossip, verified",
            metrics.pot_slots_fetched.clone(),
        );
        registry.register(
            "acre_snap_sync_accounts",
            "Accounts of the snapshot snap sync started from, each verified by a range proof",
            metrics.snap_accounts.clone(),
        );
        registry.register(
            "acre_dsn_pieces",
            "Pieces looked up for farmers through the DSN getter, by source",
            metrics.dsn_pieces.clone(),
        );
        registry.register(
            "acre_gossip_rejected",
            "Gossip messages refused, by topic and fault",
            metrics.gossip_rejected.clone(),
        );
        registry.register("acre_votes", "Votes accepted", metrics.votes.clone());
        registry.register(
            "acre_blocks_rejected_by_reason",
            "Blocks rejected by import, by reason",
            metrics.blocks_rejected_by_reason.clone(),
        );
        registry.register(
            "acre_solutions_rejected",
            "Solutions refused, by reason",
            metrics.solutions_rejected.clone(),
        );
        registry.register(
            "acre_votes_rejected",
            "Votes refused, by reason",
            metrics.votes_rejected.clone(),
        );
        // Every reason is a series from the start (at zero), so a scrape lists them all and a rate over
        // the first rejection has a starting point.
        for (family, reasons) in [
            (&metrics.txpool_rejected, PoolError::REASONS),
            (&metrics.blocks_rejected_by_reason, ImportError::REASONS),
            (&metrics.solutions_rejected, SolutionError::REASONS),
            (&metrics.votes_rejected, VoteSubmissionError::REASONS),
        ] {
            for &reason in reasons {
                drop(family.get_or_create(&ReasonLabel { reason }));
            }
        }
        for source in ["local", "peer", "reconstructed", "failed"] {
            drop(metrics.dsn_pieces.get_or_create(&SourceLabel { source }));
        }
        for (topic, reason) in GOSSIP_FAULTS {
            drop(
                metrics
                    .gossip_rejected
                    .get_or_create(&GossipLabel { topic, reason }),
            );
        }
        metrics
    }

    /// Records a new best block number.
    pub fn best_block(&self, number: u64) {
        self.best_number.set(number);
        self.best_changed_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Records a newly reached slot.
    pub fn slot(&self, slot: u64) {
        self.current_slot.set(slot);
        self.slot_changed_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// `Ok` if the node is synced and importing at `now_ms`, else what is wrong.
    pub fn health_at(&self, now_ms: u64) -> Result<(), String> {
        let age = |changed: u64| Duration::from_millis(now_ms.saturating_sub(changed));
        let slot = self.slot_changed_ms.load(Ordering::Relaxed);
        if slot == 0 {
            return Err("no slot reached yet (proof of time starting)".into());
        }
        if age(slot) > HEALTHY_SLOT_AGE {
            return Err(format!("proof of time stalled for {} s", age(slot).as_secs()));
        }
        let best = self.best_changed_ms.load(Ordering::Relaxed);
        if best == 0 {
            return Err("no block imported since start (is a farmer connected?)".into());
        }
        if age(best) > HEALTHY_IMPORT_AGE {
            return Err(format!("no new best block for {} s", age(best).as_secs()));
        }
        let (own, target) = (self.best_number.get(), self.sync_target.get());
        if target > own.saturating_add(HEALTHY_SYNC_LAG) {
            return Err(format!("syncing: best block #{own} of peers' #{target}"));
        }
        Ok(())
    }

    /// Counts a rejection for `reason` in `family`.
    pub fn rejected(family: &Family<ReasonLabel, Counter>, reason: &'static str) {
        family.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// Counts a piece looked up through the DSN getter, by where it came from.
    pub fn dsn_piece(&self, source: &'static str) {
        self.dsn_pieces.get_or_create(&SourceLabel { source }).inc();
    }

    /// Counts a transaction the pool refused for `reason`.
    pub fn txpool_rejected(&self, reason: &'static str) {
        self.txpool_rejected.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

pub use crate::http::ServerLimits;

/// Serves `GET /metrics` and `GET /health` on `listener` until `shutdown` flips, with the default
/// [`ServerLimits`].
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, shutdown: watch::Receiver<bool>) {
    serve_with(listener, metrics, shutdown, ServerLimits::default()).await;
}

/// Serves `GET /metrics` and `GET /health` on `listener` within `limits` until `shutdown` flips.
pub async fn serve_with(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
    limits: ServerLimits,
) {
    let handler: crate::http::Handler = Arc::new(move |request| respond(request, &metrics));
    crate::http::serve(listener, handler, shutdown, limits).await;
}

#[cfg(test)]
#[path = "metrics/server_tests.rs"]
mod server_tests;

fn respond(request: &Request<hyper::body::Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    // `encode` writes OpenMetrics text (counters as `<name>_total`, a closing `# EOF`).
    const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    const TEXT: &str = "text/plain; charset=utf-8";
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&hyper::Method::GET, "/metrics") => (StatusCode::OK, OPENMETRICS, metrics.render()),
        (&hyper::Method::GET, "/health") => match metrics.health_at(now_ms()) {
            Ok(()) => (StatusCode::OK, TEXT, "synced and importing\n".to_owned()),
            Err(reason) => (
                StatusCode::SERVICE_UNAVAILABLE,
                TEXT,
                format!("unhealthy: {reason}\n"),
            ),
        },
        _ => (
            StatusCode::NOT_FOUND,
            TEXT,
            "not found: try GET /metrics or GET /health\n".to_owned(),
        ),
    };
    crate::http::response(status, content_type, body)
}

/// Binds the metrics listener.
pub async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_rejections_are_counted_by_reason() {
        let metrics = Metrics::new();
        metrics.txpool_rejected("fee_too_low");
        metrics.txpool_rejected("fee_too_low");
        metrics.txpool_rejected("pool_full");
        let text = metrics.render();
        assert!(
            text.contains("acre_txpool_rejected_total{reason=\"fee_too_low\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("acre_txpool_rejected_total{reason=\"pool_full\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn health_needs_a_running_clock_and_recent_blocks() {
        let metrics = Metrics::new();
        let reason = |now| metrics.health_at(now).expect_err("unhealthy");
        assert!(reason(now_ms()).contains("no slot reached yet"));
        metrics.slot(5);
        assert!(reason(now_ms()).contains("no block imported since start"));
        metrics.best_block(1);
        assert_eq!(metrics.health_at(now_ms()), Ok(()));
        metrics.sync_target.set(1 + HEALTHY_SYNC_LAG);
        assert_eq!(metrics.health_at(now_ms()), Ok(()));
        metrics.sync_target.set(2 + HEALTHY_SYNC_LAG);
        assert_eq!(reason(now_ms()), "syncing: best block #1 of peers' #7");
        metrics.sync_target.set(1);
        let later = now_ms() + HEALTHY_SLOT_AGE.as_millis() as u64 + 1000;
        assert!(
            reason(later).contains("proof of time stalled for 11 s"),
            "{}",
            reason(later)
        );
        metrics.slot(6);
        let later = now_ms() + HEALTHY_IMPORT_AGE.as_millis() as u64 + 1000;
        metrics.slot_changed_ms.store(later, Ordering::Relaxed);
        assert!(
            reason(later).contains("no new best block for 121 s"),
            "{}",
            reason(later)
        );
    }
}
