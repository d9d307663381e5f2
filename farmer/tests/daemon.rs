//! The farming daemon against an in-process mock node: a jsonrpsee server implementing the farmer API over
//! an in-memory archive (dev parameters), with slots derived from a counter and a very wide solution range
//! so that nearly every slot has a win.
//!
//! One scenario, in order: the daemon plots its farm (refetching a corrupted and a truncated piece) (the second sector at history size 2, after a segment
//! is archived while the first is being plotted); every submitted solution verifies; seal requests for the
//! farmer's key are signed and others ignored; the daemon reconnects after the node restarts on the same
//! port; shutdown returns `Ok`.

use acre_tests::http_get;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acre_consensus::blocks::{Header, UnsealedHeader};
use acre_consensus::hashing::Blake3Hash;
use acre_consensus::sectors::PublicKey;
use acre_consensus::solutions::{SegmentRoots, Solution, verify_solution};
use acre_consensus::{
    BlockNumber, HistorySize, ProtocolParams, SectorIndex, SegmentIndex, SegmentRoot, SlotNumber,
    SolutionRange, codec,
};
use acre_farmer::daemon::farms::{PLOT_FILE, sector_size};
use acre_farmer::daemon::{DaemonConfig, run};
use acre_farmer::plot_file::Farm;
use acre_rpc_api::{
    BlockSeal, FarmerApiServer, FarmerInfo, Hex32, HexBytes, SealRequest, SlotInfo, SolutionSubmission,
    VoteSubmission,
};
use acre_storage::{ArchivedSegment, Archiver};
use ed25519_dalek::SigningKey;
use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::server::{PendingSubscriptionSink, Server, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;
use serde::Serialize;
use tokio::sync::{broadcast, watch};

const SLOT_INTERVAL: Duration = Duration::from_millis(100);

struct MockState {
    params: ProtocolParams,
    genesis_hash: Hex32,
    solution_range: u64,
    segments: Mutex<Vec<ArchivedSegment>>,
    challenges: Mutex<HashMap<u64, Blake3Hash>>,
    slot: AtomicU64,
    /// `(slot, verification result)` of every submitted solution.
    solutions: Mutex<Vec<(u64, Result<Solution, String>)>>,
    seals: Mutex<Vec<BlockSeal>>,
    piece_requests: AtomicUsize,
    info_calls: AtomicUsize,
    /// The segment count `info` claims; 0 for the truth.
    claimed_segments: AtomicU64,
    /// `segmentHeaders` calls and the most indices one asked for.
    header_requests: AtomicUsize,
    largest_header_request: AtomicUsize,
    pieces_open: watch::Sender<bool>,
    /// When set, every solution is refused with this reason.
    reject_with: Mutex<Option<String>>,
    /// The farmer's latest status report.
    status: Mutex<Option<acre_rpc_api::FarmerStatus>>,
    slots: broadcast::Sender<SlotInfo>,
    seal_requests: broadcast::Sender<SealRequest>,
    headers: broadcast::Sender<HexBytes>,
}

#[derive(Clone)]
struct MockNode(Arc<MockState>);

impl SegmentRoots for MockState {
    fn segment_root(&self, index: SegmentIndex) -> Option<SegmentRoot> {
        let segments = self.segments.lock().expect("lock");
        segments
            .get(index.0 as usize)
            .map(|segment| segment.header.segment_root)
    }
    fn history_size(&self) -> HistorySize {
        HistorySize::new(self.segments.lock().expect("lock").len() as u64).expect("genesis segment")
    }
}

impl MockNode {
    fn new(params: ProtocolParams, genesis: ArchivedSegment) -> Self {
        Self(Arc::new(MockState {
            params,
            genesis_hash: Hex32(*blake3::hash(b"mock genesis").as_bytes()),
            solution_range: u64::MAX / 4,
            segments: Mutex::new(vec![genesis]),
            challenges: Mutex::new(HashMap::new()),
            slot: AtomicU64::new(0),
            solutions: Mutex::new(Vec::new()),
            seals: Mutex::new(Vec::new()),
            piece_requests: AtomicUsize::new(0),
            info_calls: AtomicUsize::new(0),
            claimed_segments: AtomicU64::new(0),
            header_requests: AtomicUsize::new(0),
            largest_header_request: AtomicUsize::new(0),
            pieces_open: watch::Sender::new(false),
            reject_with: Mutex::new(None),
            status: Mutex::new(None),
            slots: broadcast::channel(16).0,
            seal_requests: broadcast::channel(16).0,
            headers: broadcast::channel(16).0,
        }))
    }

    /// Announces a slot every [`SLOT_INTERVAL`], with a challenge derived from its number.
    fn start_slots(&self) {
        let state = self.0.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(SLOT_INTERVAL).await;
                let slot = state.slot.fetch_add(1, Ordering::SeqCst) + 1;
                let challenge = *blake3::hash(&slot.to_le_bytes()).as_bytes();
                state
                    .challenges
                    .lock()
                    .expect("lock")
                    .insert(slot, Blake3Hash(challenge));
                let _ = state.slots.send(SlotInfo {
                    slot,
                    global_challenge: Hex32(challenge),
                    solution_range: state.solution_range,
                    // No votes from this mock: the voting range is the solution range.
                    voting_range: state.solution_range,
                    parent_hash: Hex32([0; 32]),
                });
            }
        });
    }

    fn archive(&self, segment: ArchivedSegment) {
        let encoded = HexBytes(segment.header.encode());
        self.0.segments.lock().expect("lock").push(segment);
        self.0.headers.send(encoded).expect("the daemon is subscribed");
    }

    async fn serve(&self, addr: SocketAddr) -> (ServerHandle, SocketAddr) {
        let server = Server::builder().build(addr).await.expect("binds");
        let addr = server.local_addr().expect("bound");
        (server.start(self.clone().into_rpc()), addr)
    }
}

/// Forwards a broadcast channel into a subscription until either side closes.
async fn forward<T: Serialize + Clone>(pending: PendingSubscriptionSink, mut items: broadcast::Receiver<T>) {
    let Ok(sink) = pending.accept().await else {
        return;
    };
    loop {
        let item = match items.recv().await {
            Ok(item) => item,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let message = serde_json::value::to_raw_value(&item).expect("serialises");
        if sink.send(message).await.is_err() {
            return;
        }
    }
}

fn bad(message: String) -> ErrorObjectOwned {
    acre_rpc_api::error(acre_rpc_api::error_codes::BAD_ENCODING, message)
}

#[jsonrpsee::core::async_trait]
impl FarmerApiServer for MockNode {
    async fn info(&self) -> Result<FarmerInfo, ErrorObjectOwned> {
        self.0.info_calls.fetch_add(1, Ordering::SeqCst);
        Ok(FarmerInfo {
            chain: "mock".into(),
            genesis_hash: self.0.genesis_hash,
            params: self.0.params.clone(),
            segment_count: match self.0.claimed_segments.load(Ordering::SeqCst) {
                0 => self.0.segments.lock().expect("lock").len() as u64,
                claimed => claimed,
            },
            p2p_addresses: Vec::new(),
        })
    }

    async fn subscribe_slot_info(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        tokio::spawn(forward(pending, self.0.slots.subscribe()));
        Ok(())
    }

    async fn submit_solution(&self, submission: SolutionSubmission) -> Result<(), ErrorObjectOwned> {
        let state = &self.0;
        if let Some(reason) = state.reject_with.lock().expect("lock").clone() {
            state
                .solutions
                .lock()
                .expect("lock")
                .push((submission.slot, Err(reason.clone())));
            return Err(bad(reason));
        }
        let verdict = codec::decode_bounded::<Solution>("solution", &submission.solution.0, 1 << 20)
            .map_err(|error| error.to_string())
            .and_then(|solution| {
                let challenge = state
                    .challenges
                    .lock()
                    .expect("lock")
                    .get(&submission.slot)
                    .copied()
                    .ok_or("unknown slot")?;
                verify_solution(
                    &state.params,
                    &solution,
                    &challenge,
                    SolutionRange(state.solution_range),
                    state.as_ref(),
                )
                .map_err(|error| error.to_string())?;
                Ok(solution)
            });
        let result = verdict.as_ref().map(|_| ()).map_err(|error| bad(error.clone()));
        state
            .solutions
            .lock()
            .expect("lock")
            .push((submission.slot, verdict));
        result
    }

    async fn submit_vote(&self, _: VoteSubmission) -> Result<(), ErrorObjectOwned> {
        Err(bad("this mock takes no votes".into()))
    }

    async fn subscribe_block_sealing(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        tokio::spawn(forward(pending, self.0.seal_requests.subscribe()));
        Ok(())
    }

    async fn submit_block_seal(&self, seal: BlockSeal) -> Result<(), ErrorObjectOwned> {
        self.0.seals.lock().expect("lock").push(seal);
        Ok(())
    }

    async fn subscribe_archived_segment_headers(
        &self,
        pending: PendingSubscriptionSink,
    ) -> SubscriptionResult {
        tokio::spawn(forward(pending, self.0.headers.subscribe()));
        Ok(())
    }

    async fn segment_headers(&self, indices: Vec<u64>) -> Result<Vec<Option<HexBytes>>, ErrorObjectOwned> {
        self.0.header_requests.fetch_add(1, Ordering::SeqCst);
        self.0
            .largest_header_request
            .fetch_max(indices.len(), Ordering::SeqCst);
        let segments = self.0.segments.lock().expect("lock");
        Ok(indices
            .into_iter()
            .map(|index| {
                segments
                    .get(index as usize)
                    .map(|segment| HexBytes(segment.header.encode()))
            })
            .collect())
    }

    async fn report_status(&self, status: acre_rpc_api::FarmerStatus) -> Result<(), ErrorObjectOwned> {
        *self.0.status.lock().expect("lock") = Some(status);
        Ok(())
    }

    /// The first answer is a corrupted piece and the second a truncated one: the daemon must refetch.
    async fn piece(&self, index: u64) -> Result<Option<HexBytes>, ErrorObjectOwned> {
        let request = self.0.piece_requests.fetch_add(1, Ordering::SeqCst);
        let _ = self.0.pieces_open.subscribe().wait_for(|open| *open).await;
        let params = &self.0.params;
        let per_segment = u64::from(params.pieces_per_segment());
        let segments = self.0.segments.lock().expect("lock");
        let mut bytes = segments
            .get((index / per_segment) as usize)
            .and_then(|segment| segment.pieces.get((index % per_segment) as usize))
            .map(|piece| piece.encode());
        if let Some(bytes) = bytes.as_mut() {
            match request {
                0 => bytes[0] ^= 1,
                1 => bytes.truncate(100),
                _ => {}
            }
        }
        Ok(bytes.map(HexBytes))
    }
}

/// The `plot-read` fault point is one per process: tests that configure it take turns.
static FAULTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Polls `condition` every 50 ms until it holds, failing after `timeout`.
async fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// History sizes of the plotted sectors of the farm at `dir`.
fn plotted(params: &ProtocolParams, dir: &Path) -> Vec<(SectorIndex, u64)> {
    Farm::open(&dir.join(PLOT_FILE), params)
        .map(|farm| {
            farm.history_sizes()
                .map(|(index, size)| (index, size.get()))
                .collect()
        })
        .unwrap_or_default()
}

fn segment(archiver: &mut Archiver, number: u64, fill: u8) -> ArchivedSegment {
    let sealed = archiver
        .add_block(BlockNumber(number), &vec![fill; 3000])
        .expect("archives");
    assert!(sealed.is_empty());
    archiver.close_segment().expect("seals").expect("has data")
}

fn valid_solutions(state: &MockState, after_slot: u64) -> usize {
    let solutions = state.solutions.lock().expect("lock");
    for (slot, verdict) in solutions.iter() {
        assert!(verdict.is_ok(), "solution for slot {slot} rejected: {verdict:?}");
    }
    solutions.iter().filter(|(slot, _)| *slot > after_slot).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_plots_farms_seals_reconnects_and_stops() {
    let params = ProtocolParams::dev();
    let mut archiver = Archiver::new(params.clone()).expect("dev params");
    let genesis = segment(&mut archiver, 0, 1);
    let second = segment(&mut archiver, 1, 2);
    let node = MockNode::new(params.clone(), genesis);
    node.start_slots();
    let (mut server, addr) = node.serve("127.0.0.1:0".parse().expect("address")).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let farm_dir = dir.path().join("farm");
    let key = SigningKey::from_bytes(&[42; 32]);
    let public_key = PublicKey(key.verifying_key().to_bytes());
    let reward_address = [5; 32];
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
    }
    let daemon = tokio::spawn(run(
        DaemonConfig {
            node_url: format!("ws://{addr}"),
            reward_address,
            key: key.clone(),
            farms: vec![(farm_dir.clone(), 2 * sector_size(&params) + 100)],
            plotting_threads: Some(2),
            show_progress: false,
            metrics_address: None,
            ledger_interval: std::time::Duration::from_secs(1),
            network: None,
            cache_percentage: 0,
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let state = node.0.clone();
    let timeout = Duration::from_secs(15);

    // Sector 0 is plotted at history size 1; a segment archived meanwhile makes sector 1 use size 2.
    wait_until("the first piece request", timeout, || {
        state.piece_requests.load(Ordering::SeqCst) > 0
    })
    .await;
    node.archive(second);
    state.pieces_open.send_replace(true);
    wait_until("both sectors plotted", timeout, || {
        plotted(&params, &farm_dir).len() == 2
    })
    .await;
    assert_eq!(
        plotted(&params, &farm_dir),
        [(SectorIndex(0), 1), (SectorIndex(1), 2)]
    );

    // Solutions arrive and verify (checked for every submission in `valid_solutions`).
    wait_until("three solutions", timeout, || valid_solutions(&state, 0) >= 3).await;
    {
        let solutions = state.solutions.lock().expect("lock");
        let (_, first) = &solutions[0];
        let first = first.as_ref().expect("valid");
        assert_eq!(
            (first.public_key, first.reward_address),
            (public_key, reward_address)
        );
    }

    // Seal requests: the farmer seals only a header it decodes itself, carrying a solution it submitted,
    // once per slot; requests for other keys, bare hashes and a second header for the slot go unanswered.
    wait_until("the seal subscription", timeout, || {
        state.seal_requests.receiver_count() > 0
    })
    .await;
    let (slot, solution) = {
        let solutions = state.solutions.lock().expect("lock");
        let (slot, solution) = &solutions[0];
        (*slot, solution.clone().expect("valid"))
    };
    let header = |state_root: u8| UnsealedHeader {
        version: Header::VERSION,
        parent_hash: Blake3Hash([1; 32]),
        number: BlockNumber(7),
        slot: SlotNumber(slot),
        pot_checkpoints: Vec::new(),
        solution: Some(solution.clone()),
        solution_range: SolutionRange(state.solution_range),
        next_solution_range: None,
        state_root: Blake3Hash([state_root; 32]),
        body_root: Blake3Hash([2; 32]),
    };
    let ours = header(3);
    let sibling = header(4);
    let request = |unsealed: &UnsealedHeader, key: Hex32| SealRequest {
        header_hash: Hex32(unsealed.hash().0),
        header: HexBytes(codec::encode(unsealed)),
        public_key: key,
        number: 7,
        slot,
    };
    let mut bare = request(&ours, Hex32(public_key.0));
    bare.header_hash = Hex32([0xaa; 32]);
    bare.header = HexBytes(vec![0xaa; 32]);
    for request in [
        request(&ours, Hex32([1; 32])),
        bare,
        request(&ours, Hex32(public_key.0)),
        request(&sibling, Hex32(public_key.0)),
    ] {
        state.seal_requests.send(request).expect("subscribed");
    }
    wait_until("a seal", timeout, || {
        !state.seals.lock().expect("lock").is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    {
        let seals = state.seals.lock().expect("lock");
        assert_eq!(seals.len(), 1, "only the farmer's own submitted header is sealed");
        assert_eq!(seals[0].header_hash, Hex32(ours.hash().0));
        let signature: [u8; 64] = seals[0].signature.0.as_slice().try_into().expect("64 bytes");
        acre_consensus::signing::verify(
            &public_key.0,
            acre_consensus::signing::SigningContext::Seal,
            &ours.hash(),
            &signature,
        )
        .expect("the seal verifies as a block seal");
    }

    // The node goes away and comes back on the same port: the daemon reconnects and farms on.
    server.stop().expect("running");
    server.stopped().await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let restart_slot = state.slot.load(Ordering::SeqCst);
    assert_eq!(state.info_calls.load(Ordering::SeqCst), 1);
    (server, _) = node.serve(addr).await;
    wait_until("a new session", timeout, || {
        state.info_calls.load(Ordering::SeqCst) == 2
    })
    .await;
    wait_until("solutions after the restart", timeout, || {
        valid_solutions(&state, restart_slot) >= 2
    })
    .await;

    // Shutdown is clean and prompt.
    stop.send(()).expect("daemon running");
    let result = tokio::time::timeout(Duration::from_secs(10), daemon)
        .await
        .expect("stops promptly")
        .expect("does not panic");
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(plotted(&params, &farm_dir).len(), 2);
    server.stop().expect("running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_bounds_header_sync_and_survives_a_segment_index_of_u64_max() {
    let params = ProtocolParams::dev();
    let mut archiver = Archiver::new(params.clone()).expect("dev params");
    let genesis = segment(&mut archiver, 0, 1);
    let genesis_header = genesis.header;
    let node = MockNode::new(params.clone(), genesis);
    let state = node.0.clone();
    state.claimed_segments.store(u64::MAX, Ordering::SeqCst);
    let (server, addr) = node.serve("127.0.0.1:0".parse().expect("address")).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(run(
        DaemonConfig {
            node_url: format!("ws://{addr}"),
            reward_address: [5; 32],
            key: SigningKey::from_bytes(&[42; 32]),
            farms: vec![(dir.path().join("farm"), sector_size(&params) + 100)],
            plotting_threads: Some(1),
            show_progress: false,
            metrics_address: None,
            ledger_interval: std::time::Duration::from_secs(1),
            network: None,
            cache_percentage: 0,
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let timeout = Duration::from_secs(15);

    // A node claiming u64::MAX segments is refused before a single header is asked for; the daemon
    // reconnects instead of fetching (and holding) an unbounded history.
    wait_until("a second session", timeout, || {
        state.info_calls.load(Ordering::SeqCst) >= 2
    })
    .await;
    assert_eq!(state.header_requests.load(Ordering::SeqCst), 0);

    // A plausible but false claim: headers are asked for in bounded batches.
    state.claimed_segments.store(5_000, Ordering::SeqCst);
    wait_until("a header request", timeout, || {
        state.header_requests.load(Ordering::SeqCst) > 0
    })
    .await;
    let largest = state.largest_header_request.load(Ordering::SeqCst) as u64;
    assert!(
        largest <= acre_farmer::daemon::connection::HEADERS_PER_REQUEST,
        "{largest}"
    );

    // The truth; then an announced segment u64::MAX, whose successor index does not exist: refused
    // without overflow, and the session goes on.
    state.claimed_segments.store(0, Ordering::SeqCst);
    wait_until("a synced session plotting", timeout, || {
        state.piece_requests.load(Ordering::SeqCst) > 0
    })
    .await;
    let sessions = state.info_calls.load(Ordering::SeqCst);
    let mut forged = genesis_header;
    forged.segment_index = SegmentIndex(u64::MAX);
    state.headers.send(HexBytes(forged.encode())).expect("subscribed");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!daemon.is_finished(), "the daemon died on segment u64::MAX");
    assert_eq!(state.info_calls.load(Ordering::SeqCst), sessions);

    stop.send(()).expect("daemon running");
    let result = tokio::time::timeout(Duration::from_secs(10), daemon)
        .await
        .expect("stops promptly")
        .expect("does not panic");
    assert!(result.is_ok(), "{result:?}");
    server.stop().expect("running");
}

/// A farm made slow on purpose (every plot read delayed) misses its deadlines, and a node that refuses
/// solutions gives its reason: both are in the farm's ledger, and `acre-farmer why` and `info` say so with
/// their figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_farm_and_a_refusing_node_are_explained_by_why() {
    let params = ProtocolParams::dev();
    let mut archiver = Archiver::new(params.clone()).expect("dev params");
    let node = MockNode::new(params.clone(), segment(&mut archiver, 0, 3));
    let state = node.0.clone();
    state.pieces_open.send_replace(true);
    let reason = "solution refused by the mock node: the test asked for it";
    *state.reject_with.lock().expect("lock") = Some(reason.to_owned());
    let (server, addr) = node.serve("127.0.0.1:0".parse().expect("address")).await;
    node.start_slots();
    let dir = tempfile::tempdir().expect("temp dir");
    let farm = dir.path().join("slow-farm");
    let metrics_port = acre_tests::free_port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(run(
        DaemonConfig {
            node_url: format!("ws://{addr}"),
            reward_address: [5; 32],
            key: SigningKey::from_bytes(&[43; 32]),
            farms: vec![(farm.clone(), sector_size(&params) + 100)],
            plotting_threads: Some(1),
            show_progress: false,
            metrics_address: Some(SocketAddr::from(([127, 0, 0, 1], metrics_port))),
            ledger_interval: Duration::from_millis(300),
            network: None,
            cache_percentage: 0,
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let ledger = acre_farmer::daemon::ledger::LedgerFile::in_farm(&farm);
    let totals = || acre_farmer::daemon::why::sum(&ledger.read_since(0).expect("ledger reads").0);
    let timeout = Duration::from_secs(60);
    wait_until("a refused solution in the ledger", timeout, || {
        totals().rejected > 0
    })
    .await;
    // Farming (connected, auditing): healthy, and the refusal is in the metrics too.
    let health = http_get(metrics_port, "/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let scrape = http_get(metrics_port, "/metrics");
    assert!(
        !scrape.contains("acre_farmer_rejected_total{farm=\"0\",kind=\"block\"} 0"),
        "{scrape}"
    );

    // Every audit read of this farm's plot now takes 500 ms: longer than the 4 slots of 100 ms a proof
    // may take.
    *state.reject_with.lock().expect("lock") = None;
    let fragment = dir
        .path()
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let faults = FAULTS.lock().await;
    fail::cfg("plot-read", &format!("return({fragment}:500)")).expect("fault configured");
    wait_until("a missed deadline in the ledger", timeout, || totals().missed > 0).await;
    // The farmer reports its farm to the node (for the dashboard), misses included.
    wait_until("a status report with the miss", timeout, || {
        state.status.lock().expect("lock").as_ref().is_some_and(|status| {
            status.farms.len() == 1
                && status.farms[0].slots_missed > 0
                && status.farms[0].solutions_rejected > 0
                && status.farms[0].sectors_plotted == 1
        })
    })
    .await;
    stop.send(()).expect("daemon running");
    let result = tokio::time::timeout(Duration::from_secs(20), daemon)
        .await
        .expect("stops promptly")
        .expect("does not panic");
    fail::remove("plot-read");
    drop(faults);
    assert!(result.is_ok(), "{result:?}");
    server.stop().expect("running");

    let farmer = env!("CARGO_BIN_EXE_acre-farmer");
    let why = std::process::Command::new(farmer)
        .args(["why", "--hours", "1"])
        .arg(&farm)
        .output()
        .expect("acre-farmer why runs");
    let text = String::from_utf8_lossy(&why.stdout);
    eprintln!("acre-farmer why:\n{text}");
    assert!(
        why.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&why.stderr)
    );
    assert!(
        text.contains("proof missed its deadline (it took ")
            || text.contains("proofs missed their deadline (they took "),
        "{text}"
    );
    // Four slots of ~100 ms are allowed.
    let allowed: u64 = text
        .split("ms were allowed")
        .next()
        .and_then(|before| before.rsplit("; ").next())
        .and_then(|figure| figure.trim().parse().ok())
        .unwrap_or_else(|| panic!("no allowed figure in {text}"));
    assert!((200..=1000).contains(&allowed), "{allowed} ms allowed: {text}");
    assert!(text.contains("because reading the plot was slow"), "{text}");
    assert!(text.contains("The node rejected"), "{text}");
    assert!(text.contains(&format!("\"{reason}\"")), "{text}");

    let info = std::process::Command::new(farmer)
        .args(["--params", "dev", "info"])
        .arg(&farm)
        .output()
        .expect("acre-farmer info runs");
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&info.stderr)
    );
    assert!(text.contains("sectors plotted:   1 of 1"), "{text}");
    let missed = totals().missed;
    assert!(text.contains(&format!("{missed} missed deadlines")), "{text}");
}

/// Starts the daemon on `farms` against the mock at `addr`; stop it by sending on the returned channel.
fn start_daemon(
    addr: SocketAddr,
    farms: Vec<(std::path::PathBuf, u64)>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), acre_farmer::Error>>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(run(
        DaemonConfig {
            node_url: format!("ws://{addr}"),
            reward_address: [5; 32],
            key: SigningKey::from_bytes(&[44; 32]),
            farms,
            plotting_threads: Some(1),
            show_progress: false,
            metrics_address: None,
            ledger_interval: Duration::from_millis(200),
            network: None,
            cache_percentage: 0,
        },
        async move {
            let _ = stopped.await;
        },
    ));
    (stop, daemon)
}

async fn stop_daemon(
    stop: tokio::sync::oneshot::Sender<()>,
    daemon: tokio::task::JoinHandle<Result<(), acre_farmer::Error>>,
) {
    stop.send(()).expect("daemon running");
    let result = tokio::time::timeout(Duration::from_secs(20), daemon)
        .await
        .expect("stops promptly")
        .expect("does not panic");
    assert!(result.is_ok(), "{result:?}");
}

/// Bytes flipped in two sectors of one farm: the daemon's scrub at start names both and frees them, the
/// other farm keeps winning while the two wait to be plotted again (their pieces held back), then they are
/// plotted again and the farm scrubs clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_sectors_are_replotted_while_the_other_farm_keeps_winning() {
    let params = ProtocolParams::dev();
    let mut archiver = Archiver::new(params.clone()).expect("dev params");
    let node = MockNode::new(params.clone(), segment(&mut archiver, 0, 4));
    let state = node.0.clone();
    state.pieces_open.send_replace(true);
    let (server, addr) = node.serve("127.0.0.1:0".parse().expect("address")).await;
    node.start_slots();
    let dir = tempfile::tempdir().expect("temp dir");
    let (damaged, healthy) = (dir.path().join("damaged"), dir.path().join("healthy"));
    let farms = vec![
        (damaged.clone(), 2 * sector_size(&params) + 100),
        (healthy.clone(), sector_size(&params) + 100),
    ];
    let timeout = Duration::from_secs(90);

    let (stop, daemon) = start_daemon(addr, farms.clone());
    wait_until("both farms plotted", timeout, || {
        plotted(&params, &damaged).len() == 2 && plotted(&params, &healthy).len() == 1
    })
    .await;
    stop_daemon(stop, daemon).await;

    let farm = Farm::open(&damaged.join(PLOT_FILE), &params).expect("opens");
    let ranges: Vec<_> = (0..2)
        .map(|sector| farm.sector_range(SectorIndex(sector)))
        .collect();
    drop(farm);
    let plot = damaged.join(PLOT_FILE);
    let mut bytes = std::fs::read(&plot).expect("reads");
    for range in &ranges {
        bytes[(range.start + (range.end - range.start) / 2) as usize] ^= 0x5a;
    }
    std::fs::write(&plot, bytes).expect("writes");

    // The pieces the repair needs are held back, so the repair lasts until the test lets it finish.
    state.pieces_open.send_replace(false);
    let restarted = acre_farmer::daemon::ledger::now_ms();
    let (stop, daemon) = start_daemon(addr, farms);
    let tally = |farm: &Path| {
        let ledger = acre_farmer::daemon::ledger::LedgerFile::in_farm(farm);
        acre_farmer::daemon::why::sum(&ledger.read_since(restarted).expect("reads").0)
    };
    wait_until("the damage found", timeout, || {
        assert!(!daemon.is_finished(), "the restarted daemon stopped");
        tally(&damaged).damaged == 2
    })
    .await;
    wait_until("a win of the healthy farm during the repair", timeout, || {
        tally(&healthy).accepted > 0
    })
    .await;
    assert!(
        plotted(&params, &damaged).is_empty(),
        "the repair has not finished"
    );

    state.pieces_open.send_replace(true);
    wait_until("the damaged sectors plotted again", timeout, || {
        plotted(&params, &damaged).len() == 2
    })
    .await;
    stop_daemon(stop, daemon).await;
    server.stop().expect("running");

    let farmer = env!("CARGO_BIN_EXE_acre-farmer");
    let scrub = std::process::Command::new(farmer)
        .args(["--params", "dev", "scrub"])
        .arg(&damaged)
        .output()
        .expect("acre-farmer scrub runs");
    let text = String::from_utf8_lossy(&scrub.stdout);
    assert!(
        scrub.status.success() && text.contains("2 sectors checked, 0 damaged"),
        "{text}"
    );
    let why = std::process::Command::new(farmer)
        .arg("why")
        .arg(&damaged)
        .output()
        .expect("acre-farmer why runs");
    let text = String::from_utf8_lossy(&why.stdout);
    for range in &ranges {
        assert!(
            text.contains(&format!("bytes {}..{}", range.start, range.end)),
            "{text}"
        );
    }
    assert!(
        text.contains("2 sectors were found damaged on disk (sector 0, bytes "),
        "{text}"
    );
}

/// A farm whose disk fails (every read of its plot fails) is disabled on its own after a few slots, and
/// says so in its ledger and in `why`; the other farm keeps winning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_drive_disables_its_farm_and_the_other_keeps_farming() {
    let params = ProtocolParams::dev();
    let mut archiver = Archiver::new(params.clone()).expect("dev params");
    let node = MockNode::new(params.clone(), segment(&mut archiver, 0, 5));
    let state = node.0.clone();
    state.pieces_open.send_replace(true);
    let (server, addr) = node.serve("127.0.0.1:0".parse().expect("address")).await;
    node.start_slots();
    let dir = tempfile::tempdir().expect("temp dir");
    let (failing, healthy) = (dir.path().join("failing"), dir.path().join("healthy"));
    let farms = vec![
        (failing.clone(), sector_size(&params) + 100),
        (healthy.clone(), sector_size(&params) + 100),
    ];
    let timeout = Duration::from_secs(90);
    let (stop, daemon) = start_daemon(addr, farms);
    wait_until("both farms plotted", timeout, || {
        plotted(&params, &failing).len() == 1 && plotted(&params, &healthy).len() == 1
    })
    .await;

    let faults = FAULTS.lock().await;
    let fragment = failing.display().to_string();
    fail::cfg("plot-read", &format!("return({fragment}:fail)")).expect("fault configured");
    let tally = |farm: &Path, since: u64| {
        let ledger = acre_farmer::daemon::ledger::LedgerFile::in_farm(farm);
        acre_farmer::daemon::why::sum(&ledger.read_since(since).expect("reads").0)
    };
    let disabled = |tally: &acre_farmer::daemon::ledger::Tally| {
        tally
            .events
            .iter()
            .any(|event| matches!(event, acre_farmer::daemon::ledger::Event::Disabled { .. }))
    };
    wait_until("the failing farm disabled", timeout, || {
        disabled(&tally(&failing, 0))
    })
    .await;
    fail::remove("plot-read");
    drop(faults);
    let after = acre_farmer::daemon::ledger::now_ms();
    // Disabled stays disabled (until restart), even with the disk readable again: slots keep coming
    // and the failing farm skips them, while the healthy farm wins. (The healthy farm can win within a
    // slot of `after`, before the failing farm has skipped one, so wait for both.)
    wait_until(
        "a win of the healthy farm and a skip of the disabled one after the failure",
        timeout,
        || tally(&healthy, after).accepted > 0 && tally(&failing, after).skipped_disabled > 0,
    )
    .await;
    let skipped = tally(&failing, after);
    assert_eq!(skipped.audited, 0, "{skipped:?}");
    assert!(skipped.skipped_disabled > 0, "{skipped:?}");
    stop_daemon(stop, daemon).await;
    server.stop().expect("running");

    let why = std::process::Command::new(env!("CARGO_BIN_EXE_acre-farmer"))
        .arg("why")
        .arg(&failing)
        .output()
        .expect("acre-farmer why runs");
    let text = String::from_utf8_lossy(&why.stdout);
    assert!(
        text.contains("The farm was disabled: its plot could not be read for 3 slots in a row"),
        "{text}"
    );
    assert!(text.contains("injected read failure"), "{text}");
}
