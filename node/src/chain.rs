//! The chain: the import pipeline over the database, block proposal, archiving, and the queries RPC serves.
//!
//! Every rule is branch-local (spec 3.6): a block is judged against its parent's [`BlockContext`] (proof
//! of time, era, history size, block-list) and the segments its branch produced, never against how far
//! this node has archived, so every node reaches the same verdict whatever order blocks arrive in.
//!
//! Concurrency: the chain lock ([`Chain::best`] and friends) is held only for cheap reads and for the
//! commit of a block (one database write transaction: header, body, chain index, context, state diff,
//! seen claims and the best-state move), never across proof of time, execution, or archiving, so RPC reads
//! never wait for a slow import. Archiving runs after the commit under its own lock and is idempotent: an
//! archiving failure leaves the block imported and the archiver is rebuilt from the database.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use acre_consensus::blocks::{BlockHash, Body, Header};
use acre_consensus::equivocation::EquivocationProof;
use acre_consensus::hashing::Blake3Hash;
use acre_consensus::pot::PotSeed;
use acre_consensus::{BlockNumber, ProtocolParams, SegmentHeader, codec};
use acre_execution::{Address, InMemoryAccounts, SignedTransaction};
use acre_storage::chain_index::{BlockMeta, ChainIndex};
use acre_storage::db::Database;
use acre_storage::db::tables::{Bodies, Headers};

mod bundles;
mod history;
mod import;
mod propose;
mod seen;
mod snapshot;

pub use history::Produced;
pub use propose::Proposal;
pub use seen::SeenClaims;
pub use snapshot::{Snapshot, StatePage};

use crate::archiving::ArchiveState;
use crate::chain_spec::{ChainSpec, Genesis};
use crate::error::Error;
use crate::state::{self, BlockDiffs};

/// What the node keeps per block to validate and author its children: the branch's consensus state, as
/// the consensus crate's chain state machine defines it.
pub use acre_consensus::chain_state::ChainContext as BlockContext;

acre_storage::table!(
    /// Block contexts by hash.
    BlockContexts: "block-contexts", Blake3Hash => Vec<u8>
);

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The block's hash.
    pub hash: BlockHash,
    /// The block's number.
    pub number: BlockNumber,
    /// Whether it became the best block.
    pub is_best: bool,
    /// Segments archived because the best chain grew.
    pub new_segments: Vec<SegmentHeader>,
    /// The best block's context, if the best block changed (the timekeeper follows it).
    pub best_context: Option<BlockContext>,
}

struct Inner {
    best: BlockMeta,
    best_context: BlockContext,
    best_state: state::BranchState,
}

/// Most equivocation proofs kept for the next authored blocks.
const MAX_PENDING_EVIDENCE: usize = 64;

/// The chain over its database.
pub struct Chain {
    spec: ChainSpec,
    params: ProtocolParams,
    genesis_seed: PotSeed,
    genesis_hash: BlockHash,
    db: Database,
    inner: Mutex<Inner>,
    archive: Mutex<ArchiveState>,
    /// The segment headers archiving the canonical chain produced, published after they are stored.
    segments: RwLock<Arc<Vec<SegmentHeader>>>,
    /// The highest block handed to the archiver: no block may fork off at or below it.
    archiving_point: AtomicU64,
    /// The in-memory archiver may be ahead of the database (a store failed and so did the retry): the next
    /// archiving rebuilds it first.
    archive_stale: AtomicBool,
    /// Blocks below this number are archived and their segments published in `segments`: branches whose
    /// archiving target is below it need neither the archiver nor its lock.
    archived_through: AtomicU64,
    /// Equivocations seen, to be proven in the next authored block.
    evidence: Mutex<Vec<EquivocationProof>>,
    /// The last block state served to snap-syncing peers.
    served_state: snapshot::ServedState,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("chain", &self.spec.name)
            .field("genesis", &self.genesis_hash)
            .finish_non_exhaustive()
    }
}

fn context_from(bytes: &[u8]) -> Result<BlockContext, Error> {
    Ok(codec::decode_bounded("block context", bytes, 1 << 20)?)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The archived bytes of a block: its encoded header then its encoded body.
pub fn block_bytes(header: &Header, body: &Body) -> Vec<u8> {
    let mut bytes = header.encode();
    bytes.extend(body.encode());
    bytes
}

impl Chain {
    /// Opens the chain in `path` (a redb file), creating genesis on first use; `None` keeps it in memory.
    pub fn open(spec: ChainSpec, path: Option<&Path>) -> Result<Self, Error> {
        spec.validate()?;
        let genesis = spec.genesis()?;
        let db = match path {
            Some(path) => Database::open(path)?,
            None => Database::in_memory()?,
        };
        let genesis_hash = genesis.header.hash();
        let index = ChainIndex::open(&db, &genesis.header, &genesis.body)?;
        let stored = index.canonical_hash(BlockNumber(0))?;
        if stored != Some(genesis_hash) {
            return Err(Error::WrongChain {
                path: path.map_or("memory".into(), |path| path.display().to_string()),
                found: stored.unwrap_or(Blake3Hash::ZERO),
                expected: genesis_hash,
            });
        }
        let params = spec.params.clone();
        if db.read()?.get::<BlockContexts>(&genesis_hash)?.is_none() {
            init_genesis(&db, &params, &genesis)?;
        }
        let best = index.best()?;
        let read = db.read()?;
        let best_context = context_from(
            &read
                .get::<BlockContexts>(&best.hash)?
                .ok_or_else(|| Error::Corrupt("the best block has no context".into()))?,
        )?;
        let best_state = state::load_best(&read, &best.hash)?;
        drop(read);
        let archive = ArchiveState::restore(&db, &params, best.number)?;
        tracing::info!(
            chain = %spec.name,
            genesis = %genesis_hash,
            best = %best.number,
            segments = archive.segment_count(),
            "chain opened"
        );
        let archiving_point = archive.last_archived_block().map_or(0, |number| number.0);
        let archived_through = archive.next_block_number().0;
        Ok(Self {
            genesis_seed: spec.seed()?,
            spec,
            params,
            genesis_hash,
            db,
            inner: Mutex::new(Inner {
                best,
                best_context,
                best_state,
            }),
            segments: RwLock::new(Arc::new(archive.headers().to_vec())),
            archive: Mutex::new(archive),
            archiving_point: AtomicU64::new(archiving_point),
            archive_stale: AtomicBool::new(false),
            archived_through: AtomicU64::new(archived_through),
            evidence: Mutex::new(Vec::new()),
            served_state: snapshot::ServedState::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// The chain spec.
    pub fn spec(&self) -> &ChainSpec {
        &self.spec
    }

    /// The protocol parameters.
    pub fn params(&self) -> &ProtocolParams {
        &self.params
    }

    /// The genesis hash.
    pub fn genesis_hash(&self) -> BlockHash {
        self.genesis_hash
    }

    /// The genesis proof-of-time seed.
    pub fn genesis_seed(&self) -> PotSeed {
        self.genesis_seed
    }

    /// The database.
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// The best block and its context.
    pub fn best(&self) -> (BlockMeta, BlockContext) {
        let inner = self.lock();
        (inner.best, inner.best_context.clone())
    }

    /// The finalized block.
    pub fn finalized(&self) -> Result<BlockMeta, Error> {
        Ok(ChainIndex::open_existing(&self.db).finalized()?)
    }

    /// The canonical chain's segment headers (what archiving produced), in order.
    pub fn segments(&self) -> Arc<Vec<SegmentHeader>> {
        Arc::clone(&self.segments.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Archiving progress: segment count and the last block handed to the archiver.
    pub fn archive_progress(&self) -> (u64, Option<BlockNumber>) {
        (
            self.segments().len() as u64,
            Some(BlockNumber(self.archiving_point.load(Ordering::Acquire))),
        )
    }

    /// The last block completely inside a sealed segment.
    pub fn last_sealed_block(&self) -> Option<BlockNumber> {
        let last = self.segments().last()?.last_archived_block;
        if last.is_complete() {
            Some(last.number)
        } else {
            last.number.0.checked_sub(1).map(BlockNumber)
        }
    }

    /// The account at `address` in the best state.
    pub fn account(&self, address: &Address) -> acre_execution::Account {
        acre_execution::AccountStore::account(&self.lock().best_state, address)
    }

    /// The best block's domain registry (`None` on a chain without domains).
    pub fn domains(&self) -> Option<Arc<acre_execution::domains::registry::Domains>> {
        self.lock().best_state.domains().cloned()
    }

    /// The domain registry after block `hash` (`None` on a chain without domains or for an unknown
    /// block).
    pub fn domains_at(
        &self,
        hash: &BlockHash,
    ) -> Result<Option<Arc<acre_execution::domains::registry::Domains>>, Error> {
        let read = self.db.read()?;
        Ok(state::read_registry(&read, hash)?.map(|(domains, _)| domains))
    }

    /// The proof-of-time output of block `hash`'s slot (`None` for genesis or an unknown block).
    pub fn slot_output(&self, hash: &BlockHash) -> Result<Option<acre_consensus::pot::PotOutput>, Error> {
        let Some(context) = self.context(hash)? else {
            return Ok(None);
        };
        let child = &context.child;
        let back = child.pot_covered_slot.0.saturating_sub(child.slot.0);
        Ok(usize::try_from(back)
            .ok()
            .and_then(|back| child.pot_recent_outputs.len().checked_sub(back + 1))
            .and_then(|index| child.pot_recent_outputs.get(index))
            .copied())
    }

    /// Whether `tx` would apply on top of the best state if its sender's earlier nonces applied first:
    /// what the transaction pool asks of a domains call before admitting it. Runs on a copy (O(1) to
    /// take), outside the chain lock.
    pub fn check_call(&self, tx: &SignedTransaction) -> Result<(), acre_execution::ExecutionError> {
        let (mut state, best) = {
            let inner = self.lock();
            (inner.best_state.clone(), inner.best)
        };
        let sender = tx.transaction.from;
        let mut account = acre_execution::AccountStore::account(&state, &sender);
        account.nonce = tx.transaction.nonce;
        acre_execution::AccountStore::set_account(&mut state, sender, account);
        state.begin_block(BlockNumber(best.number.0 + 1), best.hash);
        let runtime = self.spec.runtime_config(self.genesis_hash);
        acre_execution::runtime::apply_transaction(&mut state, &runtime, tx).map(|_| ())
    }

    /// Segment headers by index.
    pub fn segment_header(&self, index: u64) -> Option<SegmentHeader> {
        self.segments().get(usize::try_from(index).ok()?).copied()
    }

    /// A stored block.
    pub fn block(&self, hash: &BlockHash) -> Result<Option<(Header, Body)>, Error> {
        let read = self.db.read()?;
        let (Some(header), Some(body)) = (read.get::<Headers>(hash)?, read.get::<Bodies>(hash)?) else {
            return Ok(None);
        };
        Ok(Some((Header::decode(&header)?, Body::decode(&body)?)))
    }

    /// Deletes the pieces of every segment but the newest `keep` (at least one is kept); returns the
    /// first piece index still stored.
    pub fn prune_pieces(&self, keep: u64) -> Result<u64, Error> {
        let segments = self.segments().len() as u64;
        let first_kept = segments.saturating_sub(keep.max(1));
        let below = acre_consensus::PieceIndex(first_kept * u64::from(self.params.pieces_per_segment()));
        if first_kept > 0 {
            let tx = self.db.write()?;
            tx.delete_below::<acre_storage::db::tables::Pieces>(&below)?;
            tx.commit()?;
        }
        Ok(below.0)
    }

    /// Whether a block is stored (a metadata lookup; a failed read counts as unknown).
    pub fn has_block(&self, hash: &BlockHash) -> bool {
        matches!(ChainIndex::open_existing(&self.db).meta(hash), Ok(Some(_)))
    }

    /// The canonical hash at `number`.
    pub fn canonical_hash(&self, number: BlockNumber) -> Result<Option<BlockHash>, Error> {
        Ok(ChainIndex::open_existing(&self.db).canonical_hash(number)?)
    }

    fn context(&self, hash: &BlockHash) -> Result<Option<BlockContext>, Error> {
        self.db
            .read()?
            .get::<BlockContexts>(hash)?
            .map(|bytes| context_from(&bytes))
            .transpose()
    }

    /// Remembers an equivocation to prove in the next authored block (bounded; oldest dropped).
    fn record_evidence(&self, proof: EquivocationProof) {
        let mut evidence = lock(&self.evidence);
        if evidence.len() >= MAX_PENDING_EVIDENCE {
            evidence.remove(0);
        }
        evidence.push(proof);
    }
}

/// Writes genesis's context, state and segment (idempotent: a crash before it commits repeats it).
fn init_genesis(db: &Database, params: &ProtocolParams, genesis: &Genesis) -> Result<(), Error> {
    let hash = genesis.header.hash();
    let context = BlockContext::genesis(hash, genesis.header.unsealed.solution_range);
    let changes = state::diff(&InMemoryAccounts::default(), &genesis.state);
    let segment = crate::archiving::genesis_segment(params, &genesis.header, &genesis.body)?;
    let tx = db.write()?;
    tx.put::<BlockContexts>(&hash, &codec::encode(&context))?;
    tx.put::<BlockDiffs>(&hash, &state::encode_diff(&changes))?;
    state::write_changes(&tx, &changes, true)?;
    let registry = state::BranchState::default().with_domains(genesis.domains.clone());
    state::write_registry(&tx, &hash, &registry)?;
    crate::archiving::store_segment(&tx, &segment)?;
    tx.commit()?;
    Ok(())
}
