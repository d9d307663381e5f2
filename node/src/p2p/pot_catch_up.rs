//! Proof-of-time catch-up: a follower whose newest slot is behind the gossip it receives fetches the slots
//! in between from the sender.
//!
//! Gossip carries only the newest [`MAX_POT_SLOTS`](acre_network::messages::MAX_POT_SLOTS) slots, and a
//! follower can only verify a slot whose seed it derives from the slot before. Without catch-up, a
//! follower that joined more than that many slots after its timekeeper started (or missed gossip for as
//! long) would stay behind until a block moved it on; on a chain with no blocks yet, or one whose farmers
//! all farm through followers, none ever would. So the follower asks the sender for the missing run
//! (`pot-slots`) and verifies it exactly as it verifies gossip: slot by slot from its own newest, so a
//! lying responder can waste its time but never move its clock.
//!
//! One catch-up runs at a time; gossip that arrives meanwhile is ignored as before.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use acre_consensus::SlotNumber;
use acre_network::messages::{self, MAX_POT_RANGE, PotSlotProof, PotSlotsRequest, PotSlotsResponse};
use acre_network::{Fault, NetworkHandle, PeerId, Protocol};

use crate::service::Shared;
use crate::timekeeper::{Followed, InvalidPot};

/// Most `pot-slots` requests one catch-up makes: enough for the timekeeper's whole window.
const MAX_ROUNDS: usize = 4096 / MAX_POT_RANGE + 1;

/// Whether a catch-up is running.
#[derive(Debug, Default)]
pub(super) struct CatchUp {
    running: AtomicBool,
}

impl CatchUp {
    /// Starts catching up from `next` with `peer`, unless a catch-up is already running.
    pub(super) fn start(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
        network: &NetworkHandle,
        peer: PeerId,
        next: SlotNumber,
    ) {
        if self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let (this, shared, network) = (Arc::clone(self), Arc::clone(shared), network.clone());
        tokio::spawn(async move {
            let caught_up = run(&shared, &network, peer, next).await;
            tracing::debug!(%peer, from = %next, newest = %shared.timekeeper.newest_slot(), caught_up, "proof-of-time catch-up ended");
            this.running.store(false, Ordering::Release);
        });
    }
}

/// Hands `proofs` (gossiped or fetched) to the timekeeper on a blocking thread: verifying is AES work.
/// `None` if the task failed.
pub(super) async fn accept(
    shared: &Arc<Shared>,
    proofs: &[PotSlotProof],
) -> Option<Result<Followed, InvalidPot>> {
    let slots: Vec<_> = proofs
        .iter()
        .map(|proof| (proof.slot, proof.seed, proof.checkpoints))
        .collect();
    let timekeeper = Arc::clone(shared);
    tokio::task::spawn_blocking(move || timekeeper.timekeeper.accept(&slots))
        .await
        .ok()
}

/// Fetches and verifies runs of slots from `peer` until its answers end or stop extending this node's
/// slots. Returns how many slots were added.
async fn run(shared: &Arc<Shared>, network: &NetworkHandle, peer: PeerId, mut next: SlotNumber) -> usize {
    tracing::info!(%peer, from = %next, "proof of time is behind the gossip; fetching the slots in between");
    let mut added = 0;
    for _ in 0..MAX_ROUNDS {
        let request = PotSlotsRequest {
            first: next,
            count: MAX_POT_RANGE as u32,
        };
        let Ok(bytes) = network
            .request(peer, Protocol::PotSlots, messages::encode(&request))
            .await
        else {
            return added;
        };
        let response =
            messages::decode::<PotSlotsResponse>("pot-slots response", &bytes, PotSlotsResponse::MAX_SIZE)
                .and_then(|response| response.check_answers(&request).map(|()| response));
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(%peer, %error, "bad pot-slots response");
                let _ = network.report(peer, Fault::Undecodable).await;
                return added;
            }
        };
        let received = response.slots.len();
        if received == 0 {
            return added;
        }
        match accept(shared, &response.slots).await {
            Some(Ok(Followed::Extended(count))) => {
                added += count;
                shared.metrics.pot_slots_fetched.inc_by(count as u64);
                if received < MAX_POT_RANGE {
                    return added;
                }
                next = SlotNumber(shared.timekeeper.newest_slot().0 + 1);
            }
            Some(Ok(_)) | None => return added,
            Some(Err(invalid)) => {
                tracing::warn!(%peer, %invalid, "invalid proof of time in a pot-slots response");
                let _ = network.report(peer, Fault::InvalidPot).await;
                return added;
            }
        }
    }
    added
}
