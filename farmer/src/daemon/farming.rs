//! The farming loop's work: answering slots with solutions and seal requests with signatures.
//!
//! Every slot, each live sector of every farm is audited against the slot's challenge; the winning chunks
//! are tried best first until one proves, and that solution is submitted. Auditing and proving run on a
//! blocking thread. Slots come every ~0.5 s, so if the previous slot is still being worked on the new one
//! is skipped rather than queued: a late solution is worthless once `block_authoring_delay` slots passed.
//! Audits and proofs run on their own rayon pool, and plotting threads run at the lowest CPU priority, so a
//! slot's work never waits behind plotting.
//!
//! Everything is counted into the [`Recorder`] (the farm ledgers and the metrics): slots audited or skipped
//! and why, candidates, proofs, proofs that missed their deadline with their figures, and the node's verdict
//! on every submission. A farm whose plot cannot be read [`DISABLE_AFTER`] slots in a row is disabled; the
//! other farms keep farming.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use acre_consensus::hashing::Blake3Hash;
use acre_consensus::solutions::Solution;
use acre_consensus::votes::Vote;
use acre_consensus::{SlotNumber, SolutionRange, codec};
use acre_rpc_api::{BlockSeal, HexBytes, SealRequest, SlotInfo};
use ed25519_dalek::SigningKey;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::auditing::{AuditWin, audit_sector};
use crate::daemon::connection::Node;
use crate::daemon::farms::Farms;
use crate::daemon::ledger::{ClaimKind, Event, SkipReason};
use crate::daemon::recorder::Recorder;
use crate::daemon::sealing::SealGuard;
use crate::daemon::state::{ChainView, SectorState, sector_state};
use crate::proving::prove;
use crate::sector::SectorMetadata;

/// Answers slots and seal requests for one farmer.
#[derive(Debug, Clone)]
pub struct Farming {
    farms: Arc<Farms>,
    key: Arc<SigningKey>,
    reward_address: [u8; 32],
    chain: watch::Receiver<Arc<ChainView>>,
    busy: Arc<AtomicBool>,
    latest_slot: Arc<AtomicU64>,
    seals: Arc<Mutex<SealGuard>>,
    pending_votes: Arc<Mutex<BTreeMap<u64, (Solution, usize)>>>,
    /// The farm of each recently submitted block solution, by slot (to credit seals).
    submitted_farms: Arc<Mutex<BTreeMap<u64, usize>>>,
    recorder: Arc<Recorder>,
    pool: Arc<rayon::ThreadPool>,
    clock: Arc<Mutex<SlotClock>>,
    /// Consecutive slots each farm's plot could not be read.
    failures: Arc<Vec<AtomicU64>>,
    /// Set while the plotter works on a sector.
    plotting: Arc<AtomicBool>,
    plotting_threads: u32,
}

/// Slots whose vote solutions wait for their block time (a few authoring delays' worth).
const PENDING_VOTE_SLOTS: usize = 16;

/// Consecutive slots a farm's plot may fail to read before the farm is disabled.
pub const DISABLE_AFTER: u64 = 3;

/// Measures the time between slots (an exponential moving average), to state a slot's deadline in time.
#[derive(Debug, Default)]
struct SlotClock {
    last: Option<(u64, Instant)>,
    interval_ms: Option<f64>,
}

impl SlotClock {
    fn tick(&mut self, slot: u64, now: Instant) {
        if let Some((last_slot, at)) = self.last {
            if slot <= last_slot {
                return;
            }
            let interval = now.duration_since(at).as_secs_f64() * 1000.0 / (slot - last_slot) as f64;
            self.interval_ms = Some(
                self.interval_ms
                    .map_or(interval, |ewma| 0.8 * ewma + 0.2 * interval),
            );
        }
        self.last = Some((slot, now));
    }

    /// The time `slots` slots take, ms (one second per slot until measured).
    fn allowed_ms(&self, slots: u64) -> u64 {
        (self.interval_ms.unwrap_or(1000.0) * slots as f64) as u64
    }
}

/// What one slot's search found and what it cost.
#[derive(Debug, Default)]
struct Search {
    best: Option<(Solution, u64, usize)>,
    audit: Duration,
    prove: Duration,
}

/// How farming is set up (besides the farms).
#[derive(Debug, Clone)]
pub struct FarmingSetup {
    /// What farming counts go to.
    pub recorder: Arc<Recorder>,
    /// The pool audits and proofs run on.
    pub pool: Arc<rayon::ThreadPool>,
    /// Set while the plotter works on a sector.
    pub plotting: Arc<AtomicBool>,
    /// Plotting threads (for explaining missed deadlines).
    pub plotting_threads: u32,
}

/// What a slot's best win makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// A solution within the solution range: a block.
    Block(Solution),
    /// A solution only within the voting range: a vote.
    Vote(Solution),
}

/// Clears the busy flag when a slot's work ends, however it ends.
struct BusyGuard(Arc<AtomicBool>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Farming {
    /// Farming for `farms` with `key`, paying rewards to `reward_address`.
    pub fn new(
        farms: Arc<Farms>,
        key: SigningKey,
        reward_address: [u8; 32],
        chain: watch::Receiver<Arc<ChainView>>,
        setup: FarmingSetup,
    ) -> Self {
        let failures = Arc::new((0..farms.farms.len()).map(|_| AtomicU64::new(0)).collect());
        Self {
            farms,
            key: Arc::new(key),
            reward_address,
            chain,
            busy: Arc::new(AtomicBool::new(false)),
            latest_slot: Arc::new(AtomicU64::new(0)),
            seals: Arc::new(Mutex::new(SealGuard::default())),
            pending_votes: Arc::new(Mutex::new(BTreeMap::new())),
            submitted_farms: Arc::new(Mutex::new(BTreeMap::new())),
            recorder: setup.recorder,
            pool: setup.pool,
            clock: Arc::new(Mutex::new(SlotClock::default())),
            failures,
            plotting: setup.plotting,
            plotting_threads: setup.plotting_threads,
        }
    }

    /// Starts work on a new slot in the background, unless the previous slot is still being worked on.
    pub fn on_slot(&self, node: &Node, slot: SlotInfo) {
        let arrived = Instant::now();
        lock(&self.clock).tick(slot.slot, arrived);
        let delay = self.farms.params.block_authoring_delay;
        let latest = self
            .latest_slot
            .fetch_max(slot.slot, Ordering::AcqRel)
            .max(slot.slot);
        self.vote_due(node, &slot);
        if latest > slot.slot.saturating_add(delay) {
            debug!(target: "acre::farming", slot = slot.slot, latest, "slot announced after its deadline; skipping");
            self.recorder.skipped_all(SkipReason::Late);
            return;
        }
        if self.busy.swap(true, Ordering::AcqRel) {
            debug!(target: "acre::farming", slot = slot.slot, "still busy with an earlier slot; skipping");
            self.recorder.skipped_all(SkipReason::Busy);
            return;
        }
        let guard = BusyGuard(self.busy.clone());
        let farming = self.clone();
        let node = node.clone();
        tokio::spawn(async move {
            let search = farming.clone();
            let found = tokio::task::spawn_blocking(move || {
                let _guard = guard;
                let chain = search.chain.borrow().clone();
                let pool = search.pool.clone();
                pool.install(|| {
                    search.search(
                        &chain,
                        slot.slot,
                        &Blake3Hash(slot.global_challenge.0),
                        SolutionRange(slot.voting_range.max(slot.solution_range)),
                    )
                })
            })
            .await;
            let found = match found {
                Ok(found) => found,
                Err(error) => {
                    warn!(target: "acre::farming", slot = slot.slot, %error, "auditing task failed");
                    return;
                }
            };
            let Some((solution, distance, farm)) = found.best else {
                return;
            };
            let latest = farming.latest_slot.load(Ordering::Acquire);
            if latest > slot.slot.saturating_add(delay) {
                let allowed_ms = lock(&farming.clock).allowed_ms(delay);
                let taken_ms = arrived.elapsed().as_millis() as u64;
                warn!(target: "acre::farming", slot = slot.slot, farm, taken_ms, allowed_ms, "proof missed its deadline; dropped");
                farming.recorder.missed(
                    farm,
                    Event::Missed {
                        slot: slot.slot,
                        taken_ms,
                        allowed_ms,
                        audit_ms: found.audit.as_millis() as u64,
                        prove_ms: found.prove.as_millis() as u64,
                        plotting: farming.plotting.load(Ordering::Acquire),
                        plotting_threads: farming.plotting_threads,
                        cores: cores(),
                    },
                );
                return;
            }
            if distance < slot.solution_range / 2 {
                farming
                    .submit_block_solution(&node, slot.slot, solution, farm)
                    .await;
            } else {
                // Signed once the slot's block time comes (see `vote_due`).
                let mut pending = lock(&farming.pending_votes);
                pending.insert(slot.slot, (solution, farm));
                while pending.len() > PENDING_VOTE_SLOTS {
                    pending.pop_first();
                }
            }
        });
    }

    /// Signs and submits the votes whose slot's block time has come with `slot`'s announcement.
    ///
    /// A vote is valid only in a child of its parent, so it must name the block the next block will
    /// build on. Blocks for slot `s` are authored when slot `s + block_authoring_delay` is announced, and
    /// that announcement carries the best block of that moment: signing then (rather than at slot `s`,
    /// when blocks for the previous slots are still to come) keeps the vote from going stale.
    fn vote_due(&self, node: &Node, slot: &SlotInfo) {
        let delay = self.farms.params.block_authoring_delay;
        let Some(due) = slot.slot.checked_sub(delay) else {
            return;
        };
        let votes: Vec<(u64, (Solution, usize))> = {
            let mut pending = lock(&self.pending_votes);
            let later = pending.split_off(&(due + 1));
            std::mem::replace(&mut *pending, later).into_iter().collect()
        };
        let parent_hash = Blake3Hash(slot.parent_hash.0);
        for (vote_slot, (solution, farm)) in votes.into_iter().filter(|(vote_slot, _)| *vote_slot == due) {
            let farming = self.clone();
            let node = node.clone();
            tokio::spawn(async move {
                farming
                    .submit_vote(&node, vote_slot, parent_hash, solution, farm)
                    .await;
            });
        }
    }

    async fn submit_block_solution(&self, node: &Node, slot: u64, solution: Solution, farm: usize) {
        let sector = solution.sector_index.0;
        lock(&self.seals).submitted(SlotNumber(slot), solution.clone());
        {
            let mut farms = lock(&self.submitted_farms);
            farms.insert(slot, farm);
            while farms.len() > PENDING_VOTE_SLOTS * 4 {
                farms.pop_first();
            }
        }
        let verdict = node.submit_solution(slot, codec::encode(&solution)).await;
        match &verdict {
            Ok(()) => info!(target: "acre::farming", slot, farm, sector, "solution submitted"),
            Err(error) => warn!(target: "acre::farming", slot, farm, %error, "the node refused a solution"),
        }
        self.recorder.submitted(
            farm,
            slot,
            ClaimKind::Block,
            verdict.map_err(|error| node_reason(&error)),
        );
    }

    /// Signs and submits a vote, unless a block or vote was signed for the slot already.
    async fn submit_vote(
        &self,
        node: &Node,
        slot: u64,
        parent_hash: Blake3Hash,
        solution: Solution,
        farm: usize,
    ) {
        if !lock(&self.seals).mark_voted(SlotNumber(slot)) {
            return;
        }
        let vote = Vote {
            parent_hash,
            slot: SlotNumber(slot),
            solution,
        }
        .sign(&self.key);
        let verdict = node.submit_vote(vote.encode()).await;
        match &verdict {
            Ok(()) => info!(target: "acre::farming", slot, farm, "vote submitted"),
            Err(error) => warn!(target: "acre::farming", slot, farm, %error, "the node refused a vote"),
        }
        self.recorder.submitted(
            farm,
            slot,
            ClaimKind::Vote,
            verdict.map_err(|error| node_reason(&error)),
        );
    }

    /// Audits every live sector within the voting range and proves the best win that has a proof: a
    /// block claim if it is within the solution range, else a vote; `None` if nothing wins.
    pub fn find_claim(
        &self,
        chain: &ChainView,
        global_challenge: &Blake3Hash,
        solution_range: SolutionRange,
        voting_range: SolutionRange,
    ) -> Option<Claim> {
        let (solution, distance, _) = self.search(chain, 0, global_challenge, voting_range).best?;
        Some(if distance < solution_range.0 / 2 {
            Claim::Block(solution)
        } else {
            Claim::Vote(solution)
        })
    }

    /// Audits every enabled farm's live sectors for `slot` and proves the best win that has a proof,
    /// counting what happened per farm.
    fn search(
        &self,
        chain: &ChainView,
        slot: u64,
        global_challenge: &Blake3Hash,
        solution_range: SolutionRange,
    ) -> Search {
        let farms = &self.farms;
        let params = &farms.params;
        let started = Instant::now();
        let mut wins: Vec<(usize, SectorMetadata, AuditWin)> = Vec::new();
        for (index, shared) in farms.farms.iter().enumerate() {
            if shared.disabled().is_some() {
                self.recorder.skipped(index, SkipReason::Disabled);
                continue;
            }
            let farm = shared.read();
            let mut candidates = 0;
            let mut failure = None;
            for metadata in farm.plotted() {
                if sector_state(params, chain, &farms.public_key_hash, metadata) == SectorState::Expired {
                    continue;
                }
                let sector_id = acre_consensus::sectors::SectorId::new(
                    &farms.public_key_hash,
                    metadata.sector_index,
                    metadata.history_size,
                );
                let reader = farm.reader(metadata.sector_index);
                match audit_sector(
                    params,
                    &sector_id,
                    metadata,
                    &reader,
                    global_challenge,
                    solution_range,
                ) {
                    Ok(found) => {
                        candidates += found.len();
                        wins.extend(found.into_iter().map(|win| (index, metadata.clone(), win)));
                    }
                    Err(error) => {
                        warn!(target: "acre::farming", farm = index, sector = metadata.sector_index.0, %error, "audit failed");
                        failure.get_or_insert((metadata.sector_index.0, error.to_string()));
                    }
                }
            }
            drop(farm);
            match failure {
                None => {
                    self.failures[index].store(0, Ordering::Relaxed);
                    self.recorder.audited(index, candidates);
                }
                Some((sector, error)) => {
                    self.recorder.unreadable(index, slot, sector, &error);
                    let failed = self.failures[index].fetch_add(1, Ordering::Relaxed) + 1;
                    if failed >= DISABLE_AFTER {
                        let reason =
                            format!("its plot could not be read for {failed} slots in a row ({error})");
                        if shared.disable(reason.clone()) {
                            self.recorder.disabled(index, &reason);
                        }
                    }
                }
            }
        }
        let audit = started.elapsed();
        self.recorder.audit_time(audit);
        wins.sort_by_key(|(_, _, win)| win.distance);
        let proving = Instant::now();
        let mut best = None;
        for (index, metadata, win) in wins {
            let farm = farms.farms[index].read();
            // The sector may have been replotted since the audit.
            if farm.sector(metadata.sector_index) != Some(&metadata) {
                continue;
            }
            let reader = farm.reader(metadata.sector_index);
            let attempt = Instant::now();
            match prove(
                params,
                &farms.public_key,
                self.reward_address,
                &metadata,
                &reader,
                &win,
            ) {
                Ok(solution) => {
                    self.recorder.proved(index, attempt.elapsed());
                    best = Some((solution, win.distance, index));
                    break;
                }
                Err(error) => {
                    debug!(target: "acre::farming", farm = index, sector = metadata.sector_index.0, %error, "win not provable");
                }
            }
        }
        Search {
            best,
            audit,
            prove: proving.elapsed(),
        }
    }

    /// Signs and submits the seal if `request` is a header this farmer agreed to (see [`SealGuard`]).
    pub fn on_seal_request(&self, node: &Node, request: SealRequest) {
        if request.public_key.0 != self.farms.public_key.0 {
            debug!(target: "acre::farming", number = request.number, "seal request for another farmer; ignored");
            return;
        }
        let hash = Blake3Hash(request.header_hash.0);
        let authorized = lock(&self.seals).authorize(&self.farms.public_key, &hash, &request.header.0);
        let hash = match authorized {
            Ok(hash) => {
                if let Some(&farm) = lock(&self.submitted_farms).get(&request.slot) {
                    self.recorder.sealed(farm);
                }
                hash
            }
            Err(refusal) => {
                warn!(target: "acre::farming", number = request.number, slot = request.slot, %refusal, "seal request refused");
                return;
            }
        };
        let signature =
            acre_consensus::signing::sign(&self.key, acre_consensus::signing::SigningContext::Seal, &hash);
        let seal = BlockSeal {
            header_hash: request.header_hash,
            signature: HexBytes(signature.to_vec()),
        };
        let node = node.clone();
        tokio::spawn(async move {
            match node.submit_seal(seal).await {
                Ok(()) => {
                    info!(target: "acre::farming", number = request.number, slot = request.slot, "block sealed")
                }
                Err(error) => {
                    warn!(target: "acre::farming", number = request.number, %error, "submitting a seal failed")
                }
            }
        });
    }
}

/// Locks `mutex`; the data behind these locks stays consistent even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The node's own words for a refusal (its error message), else the error.
fn node_reason(error: &crate::error::Error) -> String {
    match error {
        crate::error::Error::Rpc(jsonrpsee::core::ClientError::Call(refusal)) => refusal.message().to_owned(),
        other => other.to_string(),
    }
}

/// The machine's cores.
pub fn cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |cores| cores.get() as u32)
}
