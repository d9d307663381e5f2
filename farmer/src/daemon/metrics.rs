//! The farmer's Prometheus metrics and its `/health` answer, served over HTTP (`--metrics-address`).
//!
//! Names, types and labels are documented in `docs/metrics.md` (a test scrapes a running farmer and checks
//! the two agree). Every farm is labelled by its position on the command line (`farm="0"`), which is
//! stable across restarts and keeps paths out of the metrics; `acre-farmer info` maps them to directories.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::daemon::ledger::{ClaimKind, SkipReason, now_ms};

/// The default metrics and health address.
pub const DEFAULT_METRICS_ADDRESS: &str = "127.0.0.1:9616";

/// How long after the last audited slot the farmer still counts as farming.
pub const HEALTHY_AUDIT_AGE: Duration = Duration::from_secs(30);

/// A farm's label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct FarmLabel {
    /// The farm's position on the command line.
    pub farm: String,
}

/// A farm and a reason.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct FarmReasonLabel {
    /// The farm's position on the command line.
    pub farm: String,
    /// A short, stable reason name.
    pub reason: &'static str,
}

/// A farm and a claim kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct FarmKindLabel {
    /// The farm's position on the command line.
    pub farm: String,
    /// `block` or `vote`.
    pub kind: &'static str,
}

/// Where a served piece came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SourceLabel {
    /// `cache` or `plot`.
    pub source: &'static str,
}

type PerFarm = Family<FarmLabel, Counter>;

/// The farmer's metrics.
#[derive(Debug)]
pub struct FarmerMetrics {
    registry: Registry,
    /// Slots audited, per farm.
    pub slots_audited: PerFarm,
    /// Slots not audited, per farm and reason.
    pub slots_skipped: Family<FarmReasonLabel, Counter>,
    /// Winning chunks found, per farm.
    pub candidates: PerFarm,
    /// Proofs made, per farm.
    pub proofs: PerFarm,
    /// Proofs ready after their deadline, per farm.
    pub proofs_missed: PerFarm,
    /// Submissions, per farm and kind.
    pub submitted: Family<FarmKindLabel, Counter>,
    /// Submissions the node refused, per farm and kind.
    pub rejected: Family<FarmKindLabel, Counter>,
    /// Blocks sealed, per farm.
    pub sealed: PerFarm,
    /// Sectors in each farm.
    pub sectors: Family<FarmLabel, Gauge>,
    /// Sectors plotted in each farm.
    pub sectors_plotted: Family<FarmLabel, Gauge>,
    /// 1 if the farm is disabled.
    pub farm_disabled: Family<FarmLabel, Gauge>,
    /// Sectors written by the plotter since start.
    pub sectors_written: PerFarm,
    /// Sectors found damaged on disk and freed for plotting again.
    pub sectors_damaged: PerFarm,
    /// Seconds to audit every farm for one slot.
    pub audit_seconds: Histogram,
    /// Seconds to prove one win.
    pub prove_seconds: Histogram,
    /// 1 while connected to the node.
    pub node_connected: Gauge,
    /// Unix time (ms) of the last audited slot; 0 before the first.
    pub last_audit_ms: Gauge<u64, AtomicU64>,
    /// Connected DSN peers.
    pub peers: Gauge,
    /// Pieces in the piece cache.
    pub cache_pieces: Gauge,
    /// Pieces the piece cache may hold.
    pub cache_capacity: Gauge,
    /// Pieces served to peers, by source.
    pub pieces_served: Family<SourceLabel, Counter>,
}

fn label(farm: usize) -> FarmLabel {
    FarmLabel {
        farm: farm.to_string(),
    }
}

impl FarmerMetrics {
    /// Registers every metric, with every farm's and reason's series present from the start (at zero).
    pub fn new(farms: usize) -> Self {
        let buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
        let mut metrics = Self {
            registry: Registry::default(),
            slots_audited: Family::default(),
            slots_skipped: Family::default(),
            candidates: Family::default(),
            proofs: Family::default(),
            proofs_missed: Family::default(),
            submitted: Family::default(),
            rejected: Family::default(),
            sealed: Family::default(),
            sectors: Family::default(),
            sectors_plotted: Family::default(),
            farm_disabled: Family::default(),
            sectors_written: Family::default(),
            sectors_damaged: Family::default(),
            audit_seconds: Histogram::new(buckets),
            prove_seconds: Histogram::new(buckets),
            node_connected: Gauge::default(),
            last_audit_ms: Gauge::default(),
            peers: Gauge::default(),
            cache_pieces: Gauge::default(),
            cache_capacity: Gauge::default(),
            pieces_served: Family::default(),
        };
        let r = &mut metrics.registry;
        // The text encoder appends `_total` to counters.
        r.register(
            "acre_farmer_slots_audited",
            "Slots audited",
            metrics.slots_audited.clone(),
        );
        r.register(
            "acre_farmer_slots_skipped",
            "Slots not audited, by reason",
            metrics.slots_skipped.clone(),
        );
        r.register(
            "acre_farmer_candidates",
            "Winning chunks found",
            metrics.candidates.clone(),
        );
        r.register("acre_farmer_proofs", "Proofs made", metrics.proofs.clone());
        r.register(
            "acre_farmer_proofs_missed",
            "Proofs ready only after their deadline",
            metrics.proofs_missed.clone(),
        );
        r.register(
            "acre_farmer_submitted",
            "Solutions and votes submitted",
            metrics.submitted.clone(),
        );
        r.register(
            "acre_farmer_rejected",
            "Solutions and votes the node refused",
            metrics.rejected.clone(),
        );
        r.register(
            "acre_farmer_blocks_sealed",
            "Blocks sealed",
            metrics.sealed.clone(),
        );
        r.register(
            "acre_farmer_sectors",
            "Sectors in the farm",
            metrics.sectors.clone(),
        );
        r.register(
            "acre_farmer_sectors_plotted",
            "Sectors plotted",
            metrics.sectors_plotted.clone(),
        );
        r.register(
            "acre_farmer_farm_disabled",
            "1 if the farm is disabled",
            metrics.farm_disabled.clone(),
        );
        r.register(
            "acre_farmer_sectors_written",
            "Sectors written by the plotter since start",
            metrics.sectors_written.clone(),
        );
        r.register(
            "acre_farmer_sectors_damaged",
            "Sectors found damaged on disk and freed for plotting again",
            metrics.sectors_damaged.clone(),
        );
        r.register(
            "acre_farmer_audit_seconds",
            "Time to audit every farm for one slot",
            metrics.audit_seconds.clone(),
        );
        r.register(
            "acre_farmer_prove_seconds",
            "Time to prove one win",
            metrics.prove_seconds.clone(),
        );
        r.register(
            "acre_farmer_node_connected",
            "1 while connected to the node",
            metrics.node_connected.clone(),
        );
        r.register(
            "acre_farmer_last_audit_timestamp_ms",
            "Unix time of the last audited slot, ms",
            metrics.last_audit_ms.clone(),
        );
        r.register("acre_farmer_peers", "Connected DSN peers", metrics.peers.clone());
        r.register(
            "acre_farmer_cache_pieces",
            "Pieces in the piece cache",
            metrics.cache_pieces.clone(),
        );
        r.register(
            "acre_farmer_cache_capacity",
            "Pieces the piece cache may hold",
            metrics.cache_capacity.clone(),
        );
        r.register(
            "acre_farmer_pieces_served",
            "Pieces served to DSN peers, by source",
            metrics.pieces_served.clone(),
        );
        for source in ["cache", "plot"] {
            drop(metrics.pieces_served.get_or_create(&SourceLabel { source }));
        }
        for farm in 0..farms {
            let farm_label = label(farm);
            for family in [
                &metrics.slots_audited,
                &metrics.candidates,
                &metrics.proofs,
                &metrics.proofs_missed,
                &metrics.sealed,
                &metrics.sectors_written,
                &metrics.sectors_damaged,
            ] {
                drop(family.get_or_create(&farm_label));
            }
            for family in [&metrics.sectors, &metrics.sectors_plotted, &metrics.farm_disabled] {
                drop(family.get_or_create(&farm_label));
            }
            for reason in SkipReason::ALL {
                drop(metrics.slots_skipped.get_or_create(&FarmReasonLabel {
                    farm: farm.to_string(),
                    reason: reason.name(),
                }));
            }
            for kind in [ClaimKind::Block, ClaimKind::Vote] {
                let key = FarmKindLabel {
                    farm: farm.to_string(),
                    kind: kind.name(),
                };
                drop(metrics.submitted.get_or_create(&key));
                drop(metrics.rejected.get_or_create(&key));
            }
        }
        metrics
    }

    /// Counts a piece served to a peer from `source` (`cache` or `plot`).
    pub fn served(&self, source: &'static str) {
        self.pieces_served.get_or_create(&SourceLabel { source }).inc();
    }

    /// Sets the number of connected DSN peers.
    pub fn set_peers(&self, peers: usize) {
        self.peers.set(i64::try_from(peers).unwrap_or(i64::MAX));
    }

    /// Sets the piece cache's fill.
    pub fn set_cache(&self, pieces: usize, capacity: usize) {
        self.cache_pieces.set(i64::try_from(pieces).unwrap_or(i64::MAX));
        self.cache_capacity
            .set(i64::try_from(capacity).unwrap_or(i64::MAX));
    }

    /// A per-farm counter.
    pub fn farm(family: &PerFarm, farm: usize) -> Counter {
        family.get_or_create(&label(farm)).clone()
    }

    /// A per-farm gauge.
    pub fn farm_gauge(family: &Family<FarmLabel, Gauge>, farm: usize) -> Gauge<i64, AtomicI64> {
        family.get_or_create(&label(farm)).clone()
    }

    /// Counts a skipped slot.
    pub fn skipped(&self, farm: usize, reason: SkipReason) {
        self.slots_skipped
            .get_or_create(&FarmReasonLabel {
                farm: farm.to_string(),
                reason: reason.name(),
            })
            .inc();
    }

    /// The per-kind counter of `family` for `farm`.
    pub fn kind(family: &Family<FarmKindLabel, Counter>, farm: usize, kind: ClaimKind) -> Counter {
        family
            .get_or_create(&FarmKindLabel {
                farm: farm.to_string(),
                kind: kind.name(),
            })
            .clone()
    }

    /// The metrics in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }

    /// Whether the farmer is farming: connected to the node, with a farm enabled, and a slot audited
    /// within [`HEALTHY_AUDIT_AGE`]. `Err` says what is wrong.
    pub fn health(&self, farms: usize) -> Result<(), String> {
        if self.node_connected.get() != 1 {
            return Err("not connected to the node".into());
        }
        let disabled = (0..farms)
            .filter(|&farm| Self::farm_gauge(&self.farm_disabled, farm).get() != 0)
            .count();
        if disabled == farms {
            return Err("every farm is disabled".into());
        }
        let last = self.last_audit_ms.get();
        if last == 0 {
            return Err("no slot audited yet (plotting the first sector?)".into());
        }
        let age = now_ms().saturating_sub(last);
        if age > HEALTHY_AUDIT_AGE.as_millis() as u64 {
            return Err(format!("no slot audited for {} s", age / 1000));
        }
        Ok(())
    }
}

/// Serves `GET /metrics` and `GET /health` on `listener` until `shutdown` flips. Like the node's metrics
/// server, it answers one small request per connection: slow or large requests are cut off, and
/// connections beyond 16 are closed at once.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<FarmerMetrics>,
    farms: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(16));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            continue;
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                let metrics = Arc::clone(&metrics);
                async move { Ok::<_, std::convert::Infallible>(respond(&request, &metrics, farms)) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .max_buf_size(8 << 10)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            if tokio::time::timeout(Duration::from_secs(30), connection)
                .await
                .is_err()
            {
                tracing::debug!(target: "acre::farmer", %peer, "metrics connection timed out");
            }
        });
    }
}

fn respond(
    request: &Request<hyper::body::Incoming>,
    metrics: &FarmerMetrics,
    farms: usize,
) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&hyper::Method::GET, "/metrics") => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(),
        ),
        (&hyper::Method::GET, "/health") => match metrics.health(farms) {
            Ok(()) => (
                StatusCode::OK,
                "text/plain; charset=utf-8",
                "farming\n".to_owned(),
            ),
            Err(reason) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                format!("not farming: {reason}\n"),
            ),
        },
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: try GET /metrics or GET /health\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

/// Binds the metrics listener.
pub async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}

/// Marks the node connection up or down.
pub fn set_connected(metrics: &FarmerMetrics, connected: bool) {
    metrics.node_connected.set(i64::from(connected));
}

/// Records that a slot was audited now.
pub fn audited_now(metrics: &FarmerMetrics) {
    metrics.last_audit_ms.set(now_ms());
}
