//! The farming loop's work: answering slots with solutions and seal requests with signatures.
//!
//! Every slot, each live sector of every farm is audited against the slot's challenge; the winning chunks
//! are tried best first until one proves, and that solution is submitted. Auditing and proving run on a
//! blocking thread. Slots come every ~0.5 s, so if the previous slot is still being worked on the new one
//! is skipped rather than queued: a late solution is worthless once `block_authoring_delay` slots passed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

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
    pending_votes: Arc<Mutex<BTreeMap<u64, Solution>>>,
}

/// Slots whose vote solutions wait for their block time (a few authoring delays' worth).
const PENDING_VOTE_SLOTS: usize = 16;

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
    ) -> Self {
        Self {
            farms,
            key: Arc::new(key),
            reward_address,
            chain,
            busy: Arc::new(AtomicBool::new(false)),
            latest_slot: Arc::new(AtomicU64::new(0)),
            seals: Arc::new(Mutex::new(SealGuard::default())),
            pending_votes: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// Starts work on a new slot in the background, unless the previous slot is still being worked on.
    pub fn on_slot(&self, node: &Node, slot: SlotInfo) {
        self.latest_slot.fetch_max(slot.slot, Ordering::AcqRel);
        self.vote_due(node, &slot);
        if self.busy.swap(true, Ordering::AcqRel) {
            debug!(target: "acre::farming", slot = slot.slot, "still busy with an earlier slot; skipping");
            return;
        }
        let guard = BusyGuard(self.busy.clone());
        let farming = self.clone();
        let node = node.clone();
        tokio::spawn(async move {
            let search = farming.clone();
            let claim = tokio::task::spawn_blocking(move || {
                let _guard = guard;
                let chain = search.chain.borrow().clone();
                search.find_claim(
                    &chain,
                    &Blake3Hash(slot.global_challenge.0),
                    SolutionRange(slot.solution_range),
                    SolutionRange(slot.voting_range.max(slot.solution_range)),
                )
            })
            .await;
            let claim = match claim {
                Ok(Some(claim)) => claim,
                Ok(None) => return,
                Err(error) => {
                    warn!(target: "acre::farming", slot = slot.slot, %error, "auditing task failed");
                    return;
                }
            };
            let delay = farming.farms.params.block_authoring_delay;
            let latest = farming.latest_slot.load(Ordering::Acquire);
            if latest > slot.slot.saturating_add(delay) {
                debug!(target: "acre::farming", slot = slot.slot, latest, "solution found too late; dropped");
                return;
            }
            match claim {
                Claim::Block(solution) => farming.submit_block_solution(&node, slot.slot, solution).await,
                Claim::Vote(solution) => {
                    // Signed once the slot's block time comes (see `vote_due`).
                    let mut pending = lock_votes(&farming.pending_votes);
                    pending.insert(slot.slot, solution);
                    while pending.len() > PENDING_VOTE_SLOTS {
                        pending.pop_first();
                    }
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
        let votes: Vec<(u64, Solution)> = {
            let mut pending = lock_votes(&self.pending_votes);
            let later = pending.split_off(&(due + 1));
            std::mem::replace(&mut *pending, later).into_iter().collect()
        };
        let parent_hash = Blake3Hash(slot.parent_hash.0);
        for (vote_slot, solution) in votes.into_iter().filter(|(vote_slot, _)| *vote_slot == due) {
            let farming = self.clone();
            let node = node.clone();
            tokio::spawn(async move { farming.submit_vote(&node, vote_slot, parent_hash, solution).await });
        }
    }

    async fn submit_block_solution(&self, node: &Node, slot: u64, solution: Solution) {
        let sector = solution.sector_index.0;
        lock(&self.seals).submitted(SlotNumber(slot), solution.clone());
        match node.submit_solution(slot, codec::encode(&solution)).await {
            Ok(()) => info!(target: "acre::farming", slot, sector, "solution submitted"),
            Err(error) => warn!(target: "acre::farming", slot, %error, "submitting a solution failed"),
        }
    }

    /// Signs and submits a vote, unless a block or vote was signed for the slot already.
    async fn submit_vote(&self, node: &Node, slot: u64, parent_hash: Blake3Hash, solution: Solution) {
        if !lock(&self.seals).mark_voted(SlotNumber(slot)) {
            return;
        }
        let vote = Vote {
            parent_hash,
            slot: SlotNumber(slot),
            solution,
        }
        .sign(&self.key);
        match node.submit_vote(vote.encode()).await {
            Ok(()) => info!(target: "acre::farming", slot, "vote submitted"),
            Err(error) => warn!(target: "acre::farming", slot, %error, "submitting a vote failed"),
        }
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
        let (solution, distance) = self.find_best(chain, global_challenge, voting_range)?;
        Some(if distance < solution_range.0 / 2 {
            Claim::Block(solution)
        } else {
            Claim::Vote(solution)
        })
    }

    /// Audits every live sector and proves the best win that has a proof; `None` if nothing wins.
    pub fn find_solution(
        &self,
        chain: &ChainView,
        global_challenge: &Blake3Hash,
        solution_range: SolutionRange,
    ) -> Option<Solution> {
        self.find_best(chain, global_challenge, solution_range)
            .map(|(solution, _)| solution)
    }

    /// The best provable win within `range` and its distance to the challenge.
    fn find_best(
        &self,
        chain: &ChainView,
        global_challenge: &Blake3Hash,
        solution_range: SolutionRange,
    ) -> Option<(Solution, u64)> {
        let farms = &self.farms;
        let params = &farms.params;
        let mut wins: Vec<(usize, SectorMetadata, AuditWin)> = Vec::new();
        for (index, shared) in farms.farms.iter().enumerate() {
            let farm = shared.read();
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
                    Ok(found) => wins.extend(found.into_iter().map(|win| (index, metadata.clone(), win))),
                    Err(error) => {
                        warn!(target: "acre::farming", farm = index, sector = metadata.sector_index.0, %error, "audit failed");
                    }
                }
            }
        }
        wins.sort_by_key(|(_, _, win)| win.distance);
        for (index, metadata, win) in wins {
            let farm = farms.farms[index].read();
            // The sector may have been replotted since the audit.
            if farm.sector(metadata.sector_index) != Some(&metadata) {
                continue;
            }
            let reader = farm.reader(metadata.sector_index);
            match prove(
                params,
                &farms.public_key,
                self.reward_address,
                &metadata,
                &reader,
                &win,
            ) {
                Ok(solution) => return Some((solution, win.distance)),
                Err(error) => {
                    debug!(target: "acre::farming", farm = index, sector = metadata.sector_index.0, %error, "win not provable");
                }
            }
        }
        None
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
            Ok(hash) => hash,
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

fn lock(guard: &Mutex<SealGuard>) -> MutexGuard<'_, SealGuard> {
    guard.lock().unwrap_or_else(PoisonError::into_inner)
}

fn lock_votes(votes: &Mutex<BTreeMap<u64, Solution>>) -> MutexGuard<'_, BTreeMap<u64, Solution>> {
    votes.lock().unwrap_or_else(PoisonError::into_inner)
}
