//! The running node: the shared state RPC handlers and the authoring loop work on, and the loop itself.
//!
//! Every slot the timekeeper proves is announced to farmers with its challenge. A farmer's solution for
//! slot `s` is verified on arrival and kept; when slot `s + block_authoring_delay` is proved (the block must
//! carry proof of time that far), the node builds a block on its best block, asks the farmer to seal it
//! (the node never holds farmers' keys), and imports it through the same pipeline as any other block.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use acre_consensus::blocks::{BlockHash, Body, Header};
use acre_consensus::hashing::Blake3Hash;
use acre_consensus::pot::slot_challenge;
use acre_consensus::sectors::PublicKey;
use acre_consensus::solutions::Solution;
use acre_consensus::{SegmentHeader, SlotNumber, SolutionRange};
use acre_execution::SignedTransaction;
use acre_rpc_api::{BlockInfo, Hex32, SealRequest, SlotInfo};
use tokio::sync::{broadcast, oneshot, watch};

use crate::chain::{Chain, Imported};
use crate::error::ImportError;
use crate::metrics::Metrics;
use crate::timekeeper::Timekeeper;
use crate::txpool::TxPool;

/// How many recent slots accept solutions.
const SLOT_BOOK_LEN: u64 = 64;

/// An announced slot and the solutions received for it.
#[derive(Debug)]
pub struct AnnouncedSlot {
    /// The slot's global challenge.
    pub challenge: Blake3Hash,
    /// The solution range announced with it.
    pub solution_range: SolutionRange,
    /// Verified solutions, first come first.
    pub solutions: Vec<Solution>,
}

/// State shared by the RPC handlers and the authoring loop.
#[derive(Debug)]
pub struct Shared {
    /// The chain.
    pub chain: Chain,
    /// The proof-of-time timekeeper.
    pub timekeeper: Timekeeper,
    /// Pending transactions.
    pub pool: TxPool,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// New slots, for farmers.
    pub slots: broadcast::Sender<SlotInfo>,
    /// Seal requests, for farmers.
    pub seal_requests: broadcast::Sender<SealRequest>,
    /// Newly archived segments.
    pub segments: broadcast::Sender<SegmentHeader>,
    /// New best blocks.
    pub heads: broadcast::Sender<BlockInfo>,
    /// How long to wait for a farmer's seal.
    pub seal_timeout: Duration,
    book: Mutex<BTreeMap<u64, AnnouncedSlot>>,
    authoring: tokio::sync::Mutex<()>,
    pending_seals: Mutex<HashMap<BlockHash, PendingSeal>>,
}

/// A block waiting for its farmer's seal: the key that must sign, and where the signature goes.
type PendingSeal = (PublicKey, oneshot::Sender<[u8; 64]>);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a solution was refused.
#[derive(Debug, thiserror::Error)]
pub enum SolutionError {
    /// The slot is not one of the recently announced ones.
    #[error("slot {0} was not announced recently")]
    UnknownSlot(u64),
    /// The block for the slot has been authored (or its time has passed).
    #[error("slot {0} is past: its block time has come")]
    TooLate(u64),
    /// Verification failed.
    #[error(transparent)]
    Invalid(#[from] acre_consensus::solutions::SolutionVerificationError),
}

/// Why a seal was refused.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// No block with that hash waits for a seal.
    #[error("no block {0} is waiting for a seal")]
    Unknown(BlockHash),
    /// The signature does not verify against the solution's key.
    #[error("the seal does not verify against the solution's public key")]
    BadSignature,
}

impl Shared {
    /// Assembles the shared state.
    pub fn new(chain: Chain, timekeeper: Timekeeper, metrics: Arc<Metrics>, seal_timeout: Duration) -> Self {
        Self {
            chain,
            timekeeper,
            pool: TxPool::new(8192),
            metrics,
            slots: broadcast::channel(64).0,
            seal_requests: broadcast::channel(64).0,
            segments: broadcast::channel(64).0,
            heads: broadcast::channel(256).0,
            seal_timeout,
            book: Mutex::new(BTreeMap::new()),
            authoring: tokio::sync::Mutex::new(()),
            pending_seals: Mutex::new(HashMap::new()),
        }
    }

    /// A block summary.
    pub fn block_info(header: &Header, body: &Body) -> BlockInfo {
        let unsealed = &header.unsealed;
        BlockInfo {
            number: unsealed.number.0,
            hash: Hex32(header.hash().0),
            parent_hash: Hex32(unsealed.parent_hash.0),
            slot: unsealed.slot.0,
            state_root: Hex32(unsealed.state_root.0),
            author: unsealed.solution.as_ref().map(|s| Hex32(s.public_key.0)),
            reward_address: unsealed.solution.as_ref().map(|s| Hex32(s.reward_address)),
            solution_range: unsealed.solution_range.0,
            transactions: body
                .transactions
                .iter()
                .filter_map(|bytes| SignedTransaction::decode(bytes).ok())
                .map(|tx| Hex32(tx.hash().0))
                .collect(),
            segment_headers: body.segment_headers.iter().map(|h| h.segment_index.0).collect(),
        }
    }

    /// Imports a block on a blocking thread and publishes what changed.
    pub async fn import(self: &Arc<Self>, header: Header, body: Body) -> Result<Imported, ImportError> {
        let shared = Arc::clone(self);
        let (result, header, body) = tokio::task::spawn_blocking(move || {
            let result = shared.chain.import(&header, &body, &shared.timekeeper);
            (result, header, body)
        })
        .await
        .map_err(|error| {
            ImportError::Storage(acre_storage::Error::Database(format!("import task: {error}")))
        })?;
        match &result {
            Ok(imported) => self.imported(imported, &header, &body),
            Err(ImportError::AlreadyKnown(_)) => {}
            Err(error) => {
                self.metrics.blocks_rejected.inc();
                tracing::warn!(number = %header.unsealed.number, %error, "block rejected");
            }
        }
        result
    }

    fn imported(&self, imported: &Imported, header: &Header, body: &Body) {
        self.metrics.blocks_imported.inc();
        tracing::info!(
            number = %imported.number,
            hash = %imported.hash,
            slot = %header.unsealed.slot,
            transactions = body.transactions.len(),
            best = imported.is_best,
            "block imported"
        );
        if let Some(context) = &imported.best_context {
            self.timekeeper.follow_best(
                context.child.pot_covered_slot,
                context.child.pot_recent_outputs.last().copied(),
                context.injections.clone(),
            );
        }
        if imported.is_best {
            self.metrics.best_number.set(imported.number.0);
            self.pool.prune(|address| self.chain.account(address));
            self.metrics.txpool_size.set(self.pool.len() as u64);
            let _ = self.heads.send(Self::block_info(header, body));
        }
        if let Ok(finalized) = self.chain.finalized() {
            self.metrics.finalized_number.set(finalized.number.0);
        }
        self.metrics.segments.set(self.chain.archive_progress().0);
        for segment in &imported.new_segments {
            let _ = self.segments.send(*segment);
        }
    }

    /// Verifies and records a farmer's solution for an announced slot. Returns whether the slot's block
    /// time has already come (the solution is late but usable: the caller authors at once).
    pub fn submit_solution(&self, slot: u64, solution: Solution) -> Result<bool, SolutionError> {
        let (challenge, range) = {
            let book = lock(&self.book);
            let entry = book.get(&slot).ok_or(SolutionError::UnknownSlot(slot))?;
            (entry.challenge, entry.solution_range)
        };
        let delay = self.chain.params().block_authoring_delay;
        let authoring = slot.saturating_add(delay);
        // A late solution is still usable while the chain has not moved past its slot; after another
        // authoring delay it is stale.
        let newest = self.timekeeper.newest_slot().0;
        if newest > authoring.saturating_add(delay) || self.chain.best().0.slot.0 >= slot {
            return Err(SolutionError::TooLate(slot));
        }
        self.chain.verify_solution(&solution, &challenge, range)?;
        let mut book = lock(&self.book);
        let entry = book.get_mut(&slot).ok_or(SolutionError::TooLate(slot))?;
        entry.solutions.push(solution);
        self.metrics.solutions.inc();
        Ok(newest >= authoring)
    }

    /// Delivers a farmer's seal to the block waiting for it.
    pub fn submit_seal(&self, hash: BlockHash, signature: [u8; 64]) -> Result<(), SealError> {
        let mut pending = lock(&self.pending_seals);
        let (public_key, _) = pending.get(&hash).ok_or(SealError::Unknown(hash))?;
        acre_consensus::signing::verify(
            &public_key.0,
            acre_consensus::signing::SigningContext::Seal,
            &hash,
            &signature,
        )
        .map_err(|_| SealError::BadSignature)?;
        if let Some((_, sender)) = pending.remove(&hash) {
            let _ = sender.send(signature);
        }
        Ok(())
    }

    fn announce(&self, slot: SlotNumber) {
        let Some(output) = self.timekeeper.output(slot) else {
            return;
        };
        let challenge = slot_challenge(&output, slot);
        let solution_range = self.chain.best().1.child.era.solution_range;
        {
            let mut book = lock(&self.book);
            let stale = book
                .get(&slot.0)
                .is_some_and(|entry| entry.challenge != challenge);
            if book.contains_key(&slot.0) && !stale {
                return;
            }
            book.insert(
                slot.0,
                AnnouncedSlot {
                    challenge,
                    solution_range,
                    solutions: Vec::new(),
                },
            );
            while book.len() as u64 > SLOT_BOOK_LEN {
                book.pop_first();
            }
        }
        self.metrics.current_slot.set(slot.0);
        let _ = self.slots.send(SlotInfo {
            slot: slot.0,
            global_challenge: Hex32(challenge.0),
            solution_range: solution_range.0,
        });
    }

    /// Authors a block for `slot` if a solution for it is waiting.
    pub async fn author(self: &Arc<Self>, slot: SlotNumber) {
        // One block at a time: two authored concurrently would only compete with each other.
        let _authoring = self.authoring.lock().await;
        let solutions = match lock(&self.book).get_mut(&slot.0) {
            Some(entry) => std::mem::take(&mut entry.solutions),
            None => return,
        };
        for solution in solutions {
            let candidates = self.pool.candidates(|address| self.chain.account(address));
            let public_key = solution.public_key;
            let proposal = match self.chain.propose(slot, solution, &self.timekeeper, &candidates) {
                Ok(Some(proposal)) => proposal,
                Ok(None) => return,
                Err(error) => {
                    tracing::error!(%error, %slot, "could not build a block");
                    return;
                }
            };
            let hash = proposal.header.hash();
            let (sender, receiver) = oneshot::channel();
            lock(&self.pending_seals).insert(hash, (public_key, sender));
            let _ = self.seal_requests.send(SealRequest {
                header_hash: Hex32(hash.0),
                public_key: Hex32(public_key.0),
                number: proposal.header.number.0,
                slot: slot.0,
            });
            let seal = tokio::time::timeout(self.seal_timeout, receiver).await;
            lock(&self.pending_seals).remove(&hash);
            let Ok(Ok(seal)) = seal else {
                tracing::warn!(%slot, farmer = ?public_key, "no seal from the farmer in time");
                continue;
            };
            let header = Header {
                unsealed: proposal.header,
                seal,
            };
            match self.import(header, proposal.body).await {
                Ok(_) => {
                    self.metrics.blocks_authored.inc();
                    return;
                }
                Err(error) => tracing::error!(%error, %slot, "an authored block failed import"),
            }
        }
    }
}

/// The authoring loop: announces slots and authors blocks until `shutdown` flips.
pub async fn authoring(
    shared: Arc<Shared>,
    mut newest: watch::Receiver<SlotNumber>,
    mut shutdown: watch::Receiver<bool>,
) {
    let delay = shared.chain.params().block_authoring_delay;
    let mut announced = 0u64;
    loop {
        tokio::select! {
            changed = newest.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
        let slot = shared.timekeeper.newest_slot().0;
        // Re-proved slots (after a late injection) are announced again with their new challenges.
        let first = announced
            .saturating_add(1)
            .min(slot)
            .max(slot.saturating_sub(delay));
        for number in first..=slot {
            shared.announce(SlotNumber(number));
        }
        announced = slot;
        if let Some(target) = slot.checked_sub(delay).filter(|target| *target > 0) {
            // Authoring waits for the farmer's seal; announcing the next slots must not.
            let shared = Arc::clone(&shared);
            tokio::spawn(async move { shared.author(SlotNumber(target)).await });
        }
    }
}
