//! The running node: the shared state RPC handlers and the authoring loop work on, and the loop itself.
//!
//! Every slot the timekeeper proves is announced to farmers with its challenge. A farmer's solution for
//! slot `s` is verified on arrival and kept; when slot `s + block_authoring_delay` is proved (the block must
//! carry proof of time that far), the node builds a block on its best block, asks the farmer to seal it
//! (the node never holds farmers' keys), and imports it through the same pipeline as any other block.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use acre_consensus::blocks::{BlockHash, Body, Header};
use acre_consensus::codec;
use acre_consensus::equivocation::{EquivocationProof, SignedClaim};
use acre_consensus::hashing::Blake3Hash;
use acre_consensus::pot::slot_challenge;
use acre_consensus::sectors::PublicKey;
use acre_consensus::solutions::Solution;
use acre_consensus::votes::{SignedVote, voting_range};
use acre_consensus::{SegmentHeader, SlotNumber, SolutionRange};
use acre_execution::SignedTransaction;
use acre_rpc_api::{BlockInfo, Hex32, HexBytes, SealRequest, SlotInfo, VoteInfo};
use tokio::sync::{broadcast, oneshot, watch};

use crate::chain::{Chain, Imported};
use crate::error::ImportError;
use crate::metrics::Metrics;
use crate::timekeeper::Timekeeper;
use crate::txpool::TxPool;
use crate::txpool::bundles::BundlePool;

/// How many recent slots accept solutions.
const SLOT_BOOK_LEN: u64 = 64;

/// Most solutions kept per slot (one per farmer key): more than enough for honest farmers, and a bound
/// on the seal requests (and their waits) one slot can cause.
const MAX_SOLUTIONS_PER_SLOT: usize = 16;

/// Most votes kept for the next block (several blocks' worth).
const MAX_PENDING_VOTES: usize = 256;

/// An announced slot and the solutions received for it.
#[derive(Debug)]
pub struct AnnouncedSlot {
    /// The slot's global challenge.
    pub challenge: Blake3Hash,
    /// The solution range announced with it.
    pub solution_range: SolutionRange,
    /// The best block when the slot was announced (what votes for the slot build on).
    pub parent_hash: BlockHash,
    /// Verified solutions, first come first.
    pub solutions: Vec<Solution>,
    /// Keys that submitted a solution for the slot: one each, checked before any verification.
    pub farmers: HashSet<PublicKey>,
    /// Hashes of solutions that failed verification for the slot, so a resubmission costs a lookup.
    /// (Submissions are unsigned, so a failure cannot count against the key it names.)
    pub rejected: HashSet<Blake3Hash>,
}

/// Failed solutions remembered per slot.
const MAX_REJECTED_PER_SLOT: usize = 256;

/// State shared by the RPC handlers and the authoring loop.
#[derive(Debug)]
pub struct Shared {
    /// The chain.
    pub chain: Chain,
    /// The proof-of-time timekeeper.
    pub timekeeper: Timekeeper,
    /// Pending transactions.
    pub pool: TxPool,
    /// Pending domain bundles.
    pub bundles: BundlePool,
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
    /// The farmers' latest status reports.
    pub farmers: crate::farmers::FarmerBoard,
    /// What the node tells its peers of its own accord (blocks it authored, transactions from RPC).
    pub outbound: broadcast::Sender<crate::p2p::Outbound>,
    /// The network, once started (never, for a node without one).
    pub p2p: std::sync::OnceLock<Arc<crate::p2p::P2p>>,
    book: Mutex<BTreeMap<u64, AnnouncedSlot>>,
    votes: Mutex<HashMap<(PublicKey, SlotNumber), SignedVote>>,
    pending_seals: Mutex<HashMap<BlockHash, PendingSeal>>,
    /// The first failure the node cannot go on after (its database's disk failed), for the binary to
    /// stop on.
    failure: watch::Sender<Option<String>>,
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
    /// This farmer already submitted a solution for the slot.
    #[error("a solution of this farmer for slot {0} is already in")]
    Duplicate(u64),
    /// The slot already has as many solutions as it keeps.
    #[error("slot {0} already has {MAX_SOLUTIONS_PER_SLOT} solutions")]
    SlotFull(u64),
    /// The farmer is block-listed on the best chain.
    #[error("the farmer is block-listed for equivocating")]
    Blocklisted,
    /// This very solution already failed verification for the slot.
    #[error("this solution already failed verification for slot {0}")]
    KnownInvalid(u64),
    /// Verification failed.
    #[error(transparent)]
    Invalid(#[from] acre_consensus::solutions::SolutionVerificationError),
}

impl SolutionError {
    /// Every [`Self::reason`], so metrics can expose each at zero before the first rejection.
    pub const REASONS: &[&str] = &[
        "unknown_slot",
        "too_late",
        "duplicate",
        "slot_full",
        "blocklisted",
        "known_invalid",
        "invalid",
    ];

    /// A short, stable name for metrics (`acre_solutions_rejected_total{reason}`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownSlot(_) => "unknown_slot",
            Self::TooLate(_) => "too_late",
            Self::Duplicate(_) => "duplicate",
            Self::SlotFull(_) => "slot_full",
            Self::Blocklisted => "blocklisted",
            Self::KnownInvalid(_) => "known_invalid",
            Self::Invalid(_) => "invalid",
        }
    }
}

impl VoteSubmissionError {
    /// Every [`Self::reason`], so metrics can expose each at zero before the first rejection.
    pub const REASONS: &[&str] = &[
        "unknown_slot",
        "stale",
        "duplicate",
        "blocklisted",
        "equivocation",
        "full",
        "invalid",
        "internal",
    ];

    /// A short, stable name for metrics (`acre_votes_rejected_total{reason}`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownSlot(_) => "unknown_slot",
            Self::Stale => "stale",
            Self::Duplicate => "duplicate",
            Self::Blocklisted => "blocklisted",
            Self::Equivocation(_) => "equivocation",
            Self::Full => "full",
            Self::Invalid(_) => "invalid",
            Self::Internal(_) => "internal",
        }
    }
}

/// Why a vote was refused.
#[derive(Debug, thiserror::Error)]
pub enum VoteSubmissionError {
    /// The slot is not one of the recently announced ones.
    #[error("slot {0} was not announced recently")]
    UnknownSlot(u64),
    /// The vote builds on another block than the best one, or its slot is not after the best block's.
    #[error("the vote does not build on the best block for a later slot")]
    Stale,
    /// The same vote again.
    #[error("this vote is already in")]
    Duplicate,
    /// The farmer is block-listed on the best chain.
    #[error("the farmer is block-listed for equivocating")]
    Blocklisted,
    /// The farmer signed another vote or block for this slot.
    #[error("equivocation: another vote or block of this farmer for slot {0}")]
    Equivocation(u64),
    /// The pool of votes for the next block is full.
    #[error("the vote pool is full")]
    Full,
    /// Verification failed.
    #[error(transparent)]
    Invalid(#[from] acre_consensus::votes::VoteError),
    /// The database failed.
    #[error(transparent)]
    Internal(crate::error::ImportError),
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
            bundles: BundlePool::default(),
            metrics,
            slots: broadcast::channel(64).0,
            seal_requests: broadcast::channel(64).0,
            segments: broadcast::channel(64).0,
            heads: broadcast::channel(256).0,
            seal_timeout,
            farmers: crate::farmers::FarmerBoard::default(),
            outbound: broadcast::channel(256).0,
            p2p: std::sync::OnceLock::new(),
            book: Mutex::new(BTreeMap::new()),
            votes: Mutex::new(HashMap::new()),
            pending_seals: Mutex::new(HashMap::new()),
            failure: watch::channel(None).0,
        }
    }

    /// Records a failure the node cannot go on after; the first one is kept.
    fn fail(&self, message: String) {
        self.failure.send_if_modified(|failure| {
            let first = failure.is_none();
            if first {
                tracing::error!(%message, "the node cannot go on");
                *failure = Some(message);
            }
            first
        });
    }

    /// Resolves with the first failure the node cannot go on after (see [`crate::Node::failed`]).
    pub async fn failed(&self) -> String {
        let mut failure = self.failure.subscribe();
        match failure.wait_for(Option::is_some).await {
            Ok(message) => message.clone().unwrap_or_default(),
            // The sender lives as long as `self`: unreachable, but never resolve falsely.
            Err(_) => std::future::pending().await,
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
            votes: body
                .votes
                .iter()
                .map(|vote| VoteInfo {
                    public_key: Hex32(vote.vote.solution.public_key.0),
                    reward_address: Hex32(vote.vote.solution.reward_address),
                    slot: vote.vote.slot.0,
                })
                .collect(),
            bundles: body
                .bundles
                .iter()
                .filter_map(|bytes| acre_execution::domains::bundle::Bundle::decode(bytes).ok())
                .map(|bundle| acre_rpc_api::BundleInfo {
                    hash: Hex32(bundle.hash().0),
                    domain: bundle.header.domain_id.0,
                    operator: bundle.header.operator_id.0,
                    slot: bundle.header.slot.0,
                    transactions: u32::try_from(bundle.body.len()).unwrap_or(u32::MAX),
                    receipt_number: bundle.header.receipt.domain_number.0,
                })
                .collect(),
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
            Ok(imported) => {
                self.imported(imported, &header, &body);
                self.prune_pieces(imported);
            }
            Err(ImportError::AlreadyKnown(_)) => {}
            Err(error) => {
                self.metrics.blocks_rejected.inc();
                Metrics::rejected(&self.metrics.blocks_rejected_by_reason, error.reason());
                // A block whose parent has not arrived yet is routine on a network (sync fetches
                // the branch); anything else is worth an operator's eye.
                if matches!(error, ImportError::UnknownParent(_)) {
                    tracing::debug!(number = %header.unsealed.number, %error, "block not imported yet");
                } else {
                    tracing::warn!(number = %header.unsealed.number, %error, "block rejected");
                }
                if let ImportError::Storage(storage @ acre_storage::Error::DatabaseIo { .. }) = error {
                    // Nothing of the block was committed (redb is transactional), but the open
                    // database takes no more writes: stop rather than refuse every block from here on.
                    self.fail(storage.to_string());
                }
            }
        }
        result
    }

    /// After new segments, drops the pieces of segments older than the node keeps (on a blocking
    /// thread; the block is already stored either way).
    fn prune_pieces(self: &Arc<Self>, imported: &Imported) {
        let keep = self.p2p.get().and_then(|p2p| p2p.keep_piece_segments);
        let Some(keep) = keep.filter(|_| !imported.new_segments.is_empty()) else {
            return;
        };
        let shared = Arc::clone(self);
        tokio::task::spawn_blocking(move || match shared.chain.prune_pieces(keep) {
            Ok(first) => tracing::debug!(first_kept = first, "pieces of older segments dropped"),
            Err(error) => tracing::warn!(%error, "dropping the pieces of older segments failed"),
        });
    }

    /// After the chain started from a snapshot: the timekeeper follows its base block, and the head
    /// and metrics move to it.
    pub(crate) fn installed_snapshot(
        &self,
        header: &Header,
        body: &Body,
        context: &crate::chain::BlockContext,
    ) {
        self.timekeeper.follow_best(
            context.child.pot_covered_slot,
            context.child.pot_recent_outputs.last().copied(),
            context.injections.clone(),
        );
        self.metrics.best_block(header.unsealed.number.0);
        self.metrics.segments.set(self.chain.archive_progress().0);
        if let Ok(finalized) = self.chain.finalized() {
            self.metrics.finalized_number.set(finalized.number.0);
        }
        let _ = self.heads.send(Self::block_info(header, body));
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
            lock(&self.votes).retain(|_, vote| vote.vote.parent_hash == imported.hash);
            self.metrics.best_block(imported.number.0);
            self.pool.prune(|address| self.chain.account(address));
            self.metrics.txpool_size.set(self.pool.len() as u64);
            let included: std::collections::HashSet<_> = body
                .bundles
                .iter()
                .map(|bytes| acre_execution::domains::bundle::encoded_hash(bytes))
                .collect();
            self.bundles.remove(&included);
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
    ///
    /// Cheapest first: the slot, one solution per farmer key and a cap per slot are checked before the
    /// solution is verified, so resubmitting a solution costs the node a map lookup.
    pub fn submit_solution(&self, slot: u64, solution: Solution) -> Result<bool, SolutionError> {
        // A local cache key only (no consensus meaning), so a plain hash of the encoding.
        let fingerprint = Blake3Hash::from(blake3::hash(&codec::encode(&solution)));
        let (challenge, range) = {
            let book = lock(&self.book);
            let entry = book.get(&slot).ok_or(SolutionError::UnknownSlot(slot))?;
            if entry.farmers.contains(&solution.public_key) {
                return Err(SolutionError::Duplicate(slot));
            }
            if entry.rejected.contains(&fingerprint) {
                return Err(SolutionError::KnownInvalid(slot));
            }
            if entry.solutions.len() >= MAX_SOLUTIONS_PER_SLOT {
                return Err(SolutionError::SlotFull(slot));
            }
            (entry.challenge, entry.solution_range)
        };
        let delay = self.chain.params().block_authoring_delay;
        let authoring = slot.saturating_add(delay);
        // A late solution is still usable while the chain has not moved past its slot; after another
        // authoring delay it is stale.
        let newest = self.timekeeper.newest_slot().0;
        let (best, context) = self.chain.best();
        if newest > authoring.saturating_add(delay) || best.slot.0 >= slot {
            return Err(SolutionError::TooLate(slot));
        }
        if context.is_blocklisted(&solution.public_key) {
            return Err(SolutionError::Blocklisted);
        }
        if let Err(error) = self.chain.verify_solution(&solution, &challenge, range) {
            if let Some(entry) = lock(&self.book).get_mut(&slot)
                && entry.rejected.len() < MAX_REJECTED_PER_SLOT
            {
                entry.rejected.insert(fingerprint);
            }
            return Err(error.into());
        }
        let mut book = lock(&self.book);
        let entry = book.get_mut(&slot).ok_or(SolutionError::TooLate(slot))?;
        if entry.solutions.len() >= MAX_SOLUTIONS_PER_SLOT {
            return Err(SolutionError::SlotFull(slot));
        }
        if !entry.farmers.insert(solution.public_key) {
            return Err(SolutionError::Duplicate(slot));
        }
        entry.solutions.push(solution);
        self.metrics.solutions.inc();
        Ok(newest >= authoring)
    }

    /// Verifies a farmer's vote for an announced slot and keeps it for the next block.
    pub fn submit_vote(&self, signed: SignedVote) -> Result<(), VoteSubmissionError> {
        let vote = &signed.vote;
        let key = (vote.solution.public_key, vote.slot);
        match lock(&self.votes).get(&key) {
            Some(known) if known == &signed => return Err(VoteSubmissionError::Duplicate),
            Some(_) | None => {}
        }
        let (challenge, range) = {
            let book = lock(&self.book);
            let entry = book
                .get(&vote.slot.0)
                .ok_or(VoteSubmissionError::UnknownSlot(vote.slot.0))?;
            (entry.challenge, entry.solution_range)
        };
        let (best, context) = self.chain.best();
        if vote.parent_hash != best.hash || vote.slot <= best.slot {
            return Err(VoteSubmissionError::Stale);
        }
        if context.is_blocklisted(&vote.solution.public_key) {
            return Err(VoteSubmissionError::Blocklisted);
        }
        signed.verify_signature()?;
        if let Some(other) = lock(&self.votes).get(&key).cloned() {
            self.chain.report_equivocation(EquivocationProof {
                first: SignedClaim::Vote(other),
                second: SignedClaim::Vote(signed.clone()),
            });
            return Err(VoteSubmissionError::Equivocation(vote.slot.0));
        }
        match self.chain.check_vote_equivocation(&signed) {
            Ok(()) => {}
            Err(crate::error::ImportError::Equivocation(_)) => {
                return Err(VoteSubmissionError::Equivocation(vote.slot.0));
            }
            Err(error) => return Err(VoteSubmissionError::Internal(error)),
        }
        self.chain
            .verify_vote_solution(&vote.solution, &challenge, range)?;
        let mut votes = lock(&self.votes);
        if votes.len() >= MAX_PENDING_VOTES {
            return Err(VoteSubmissionError::Full);
        }
        votes.insert(key, signed);
        self.metrics.votes.inc();
        Ok(())
    }

    fn votes_for(&self, parent: &BlockHash) -> Vec<SignedVote> {
        let mut votes: Vec<_> = lock(&self.votes)
            .values()
            .filter(|vote| vote.vote.parent_hash == *parent)
            .cloned()
            .collect();
        votes.sort_by_key(|vote| (vote.vote.slot, vote.vote.solution.public_key));
        votes
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
        let (best, context) = self.chain.best();
        let solution_range = context.child.era.solution_range;
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
                    parent_hash: best.hash,
                    solutions: Vec::new(),
                    farmers: HashSet::new(),
                    rejected: HashSet::new(),
                },
            );
            while book.len() as u64 > SLOT_BOOK_LEN {
                book.pop_first();
            }
        }
        self.metrics.slot(slot.0);
        let _ = self.slots.send(SlotInfo {
            slot: slot.0,
            global_challenge: Hex32(challenge.0),
            solution_range: solution_range.0,
            voting_range: voting_range(self.chain.params(), solution_range).0,
            parent_hash: Hex32(best.hash.0),
        });
    }

    /// Authors a block for `slot` with each solution waiting for it, until one is sealed and imported.
    /// No lock is held while the farmer seals, so a farmer that never answers delays only its own block.
    pub async fn author(self: &Arc<Self>, slot: SlotNumber) {
        let solutions = match lock(&self.book).get_mut(&slot.0) {
            Some(entry) => std::mem::take(&mut entry.solutions),
            None => return,
        };
        for solution in solutions {
            let public_key = solution.public_key;
            let shared = Arc::clone(self);
            let proposal = tokio::task::spawn_blocking(move || {
                let candidates = shared.pool.candidates(|address| shared.chain.account(address));
                let best = shared.chain.best().0.hash;
                let votes = shared.votes_for(&best);
                let bundles = shared.bundles.candidates();
                let proposal =
                    shared
                        .chain
                        .propose(slot, solution, &shared.timekeeper, &candidates, &votes, &bundles);
                if let Ok(Some(proposal)) = &proposal {
                    shared.bundles.remove(&proposal.dropped_bundles);
                }
                proposal
            })
            .await;
            let proposal = match proposal {
                Ok(Ok(Some(proposal))) => proposal,
                Ok(Ok(None)) => return,
                Ok(Err(error)) => {
                    tracing::error!(%error, %slot, "could not build a block");
                    return;
                }
                Err(error) => {
                    tracing::error!(%error, %slot, "the proposal task failed");
                    return;
                }
            };
            let hash = proposal.header.hash();
            let (sender, receiver) = oneshot::channel();
            lock(&self.pending_seals).insert(hash, (public_key, sender));
            let _ = self.seal_requests.send(SealRequest {
                header_hash: Hex32(hash.0),
                header: HexBytes(codec::encode(&proposal.header)),
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
            let announced = Arc::new((header.clone(), proposal.body.clone()));
            match self.import(header, proposal.body).await {
                Ok(_) => {
                    self.metrics.blocks_authored.inc();
                    let _ = self.outbound.send(crate::p2p::Outbound::Block(announced));
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
