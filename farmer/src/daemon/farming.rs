//! The farming loop's work: answering slots with solutions and seal requests with signatures.
//!
//! Every slot, each live sector of every farm is audited against the slot's challenge; the winning chunks
//! are tried best first until one proves, and that solution is submitted. Auditing and proving run on a
//! blocking thread. Slots come every ~0.5 s, so if the previous slot is still being worked on the new one
//! is skipped rather than queued: a late solution is worthless once `block_authoring_delay` slots passed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use acre_consensus::hashing::Blake3Hash;
use acre_consensus::solutions::Solution;
use acre_consensus::{SolutionRange, codec};
use acre_rpc_api::{BlockSeal, HexBytes, SealRequest, SlotInfo};
use ed25519_dalek::SigningKey;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::auditing::{AuditWin, audit_sector};
use crate::daemon::connection::Node;
use crate::daemon::farms::Farms;
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
        }
    }

    /// Starts work on a new slot in the background, unless the previous slot is still being worked on.
    pub fn on_slot(&self, node: &Node, slot: SlotInfo) {
        self.latest_slot.fetch_max(slot.slot, Ordering::AcqRel);
        if self.busy.swap(true, Ordering::AcqRel) {
            debug!(target: "acre::farming", slot = slot.slot, "still busy with an earlier slot; skipping");
            return;
        }
        let guard = BusyGuard(self.busy.clone());
        let farming = self.clone();
        let node = node.clone();
        tokio::spawn(async move {
            let search = farming.clone();
            let solution = tokio::task::spawn_blocking(move || {
                let _guard = guard;
                let chain = search.chain.borrow().clone();
                search.find_solution(
                    &chain,
                    &Blake3Hash(slot.global_challenge.0),
                    SolutionRange(slot.solution_range),
                )
            })
            .await;
            let solution = match solution {
                Ok(Some(solution)) => solution,
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
            let sector = solution.sector_index.0;
            match node.submit_solution(slot.slot, codec::encode(&solution)).await {
                Ok(()) => info!(target: "acre::farming", slot = slot.slot, sector, "solution submitted"),
                Err(error) => {
                    warn!(target: "acre::farming", slot = slot.slot, %error, "submitting a solution failed")
                }
            }
        });
    }

    /// Audits every live sector and proves the best win that has a proof; `None` if nothing wins.
    pub fn find_solution(
        &self,
        chain: &ChainView,
        global_challenge: &Blake3Hash,
        solution_range: SolutionRange,
    ) -> Option<Solution> {
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
                Ok(solution) => return Some(solution),
                Err(error) => {
                    debug!(target: "acre::farming", farm = index, sector = metadata.sector_index.0, %error, "win not provable");
                }
            }
        }
        None
    }

    /// Signs and submits the seal if `request` is for this farmer's key; ignores it otherwise.
    pub fn on_seal_request(&self, node: &Node, request: SealRequest) {
        if request.public_key.0 != self.farms.public_key.0 {
            debug!(target: "acre::farming", number = request.number, "seal request for another farmer; ignored");
            return;
        }
        let signature = acre_consensus::signing::sign(
            &self.key,
            acre_consensus::signing::SigningContext::Seal,
            &acre_consensus::Blake3Hash(request.header_hash.0),
        );
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
