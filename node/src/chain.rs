//! The chain: the import pipeline over the database, block proposal, and the queries RPC serves.
//!
//! Imports are serialised behind one lock and each is one database write transaction (header, body, chain
//! index, consensus context, state diff and the best-state update), so a crash keeps a block entirely or not
//! at all. Checks run cheapest-first and in two phases, as the spec asks: the header against its parent
//! (seal, proof of time, solution range, solution: [`validate_header_cached`]), then the body against the
//! parent's state (body root, segment headers, transactions, state root). Equivocation is judged last, so
//! only a fully valid second block counts against its farmer.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use acre_consensus::blocks::{BlockHash, Body, Header, UnsealedHeader};
use acre_consensus::hashing::Blake3Hash;
use acre_consensus::pot::{PotOutput, PotSeed};
use acre_consensus::pot_chain::EntropyInjection;
use acre_consensus::solutions::Solution;
use acre_consensus::validation::{EquivocationDetector, ParentInfo};
use acre_consensus::{BlockNumber, ProtocolParams, SegmentHeader, SlotNumber, codec};
use acre_execution::{Address, InMemoryAccounts, SignedTransaction, apply_block, apply_transaction};
use acre_storage::chain_index::{BlockMeta, ChainIndex};
use acre_storage::db::Database;
use acre_storage::db::tables::{Bodies, Headers};
use borsh::{BorshDeserialize, BorshSerialize};

mod import;

use crate::archiving::ArchiveState;
use crate::chain_spec::{ChainSpec, Genesis};
use crate::error::Error;
use crate::state::{self, BlockDiffs};

/// What the node keeps per block to validate and author its children.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BlockContext {
    /// The parent information of the block's children.
    pub child: ParentInfo,
    /// The proof-of-time output of the block's slot (none for genesis).
    pub slot_output: Option<PotOutput>,
    /// Injections scheduled on this branch that apply after the block's covered slot.
    pub injections: Vec<EntropyInjection>,
    /// Index of the next segment header the branch must carry.
    pub next_segment_index: u64,
}

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

/// A block ready to be sealed.
#[derive(Debug, Clone)]
pub struct Proposal {
    /// The header to seal.
    pub header: UnsealedHeader,
    /// The body.
    pub body: Body,
}

struct Inner {
    best: BlockMeta,
    best_context: BlockContext,
    best_state: state::BranchState,
    equivocations: EquivocationDetector,
    archive: ArchiveState,
}

/// The chain over its database.
pub struct Chain {
    spec: ChainSpec,
    params: ProtocolParams,
    genesis_seed: PotSeed,
    genesis_hash: BlockHash,
    db: Database,
    inner: Mutex<Inner>,
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
        let best_state = state::load_best(&read)?;
        drop(read);
        let archive = ArchiveState::restore(&db, &params, best.number)?;
        tracing::info!(
            chain = %spec.name,
            genesis = %genesis_hash,
            best = %best.number,
            segments = archive.segment_count(),
            "chain opened"
        );
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
                equivocations: EquivocationDetector::default(),
                archive,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// Archiving progress: segment count and the last completely archived block.
    pub fn archive_progress(&self) -> (u64, Option<BlockNumber>) {
        let inner = self.lock();
        (inner.archive.segment_count(), inner.archive.last_archived_block())
    }

    /// The last block completely inside a sealed segment.
    pub fn last_sealed_block(&self) -> Option<BlockNumber> {
        self.lock().archive.last_sealed_block()
    }

    /// The account at `address` in the best state.
    pub fn account(&self, address: &Address) -> acre_execution::Account {
        acre_execution::AccountStore::account(&self.lock().best_state, address)
    }

    /// Verifies a solution for `slot` with `challenge` at `solution_range` against local history.
    pub fn verify_solution(
        &self,
        solution: &Solution,
        challenge: &Blake3Hash,
        solution_range: acre_consensus::SolutionRange,
    ) -> Result<(), acre_consensus::solutions::SolutionVerificationError> {
        let inner = self.lock();
        acre_consensus::solutions::verify_solution(
            &self.params,
            solution,
            challenge,
            solution_range,
            &inner.archive,
        )
        .map(|_| ())
    }

    /// Segment headers by index.
    pub fn segment_header(&self, index: u64) -> Option<SegmentHeader> {
        self.lock().archive.header(index)
    }

    /// A stored block.
    pub fn block(&self, hash: &BlockHash) -> Result<Option<(Header, Body)>, Error> {
        let read = self.db.read()?;
        let (Some(header), Some(body)) = (read.get::<Headers>(hash)?, read.get::<Bodies>(hash)?) else {
            return Ok(None);
        };
        Ok(Some((Header::decode(&header)?, Body::decode(&body)?)))
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

    /// Builds a block on the best block for `slot` with `solution`, `pot` checkpoints and as many of
    /// `candidates` as apply (in order; failing ones are left out).
    pub fn propose(
        &self,
        slot: SlotNumber,
        solution: Solution,
        pot: &crate::timekeeper::Timekeeper,
        candidates: &[SignedTransaction],
    ) -> Result<Option<Proposal>, Error> {
        let inner = self.lock();
        let parent = &inner.best_context.child;
        if slot <= parent.slot {
            return Ok(None);
        }
        let covered = SlotNumber(slot.0 + self.params.block_authoring_delay);
        let Some(pot_checkpoints) = pot.checkpoints(SlotNumber(parent.pot_covered_slot.0 + 1), covered)
        else {
            return Ok(None);
        };
        let number = BlockNumber(parent.number.0 + 1);
        let era = parent.era;
        let next_era = era.after_block(&self.params, number, slot);
        let segment_headers: Vec<_> = (inner.best_context.next_segment_index..inner.archive.segment_count())
            .filter_map(|index| inner.archive.header(index))
            .collect();

        let mut scratch = inner.best_state.clone();
        let mut included = Vec::new();
        let mut size = 0usize;
        for tx in candidates {
            let encoded = tx.encode();
            if size + encoded.len() > acre_consensus::blocks::MAX_BODY_SIZE / 2 {
                break;
            }
            if apply_transaction(&mut scratch, tx).is_ok() {
                size += encoded.len();
                included.push(tx.clone());
            }
        }
        let mut after = inner.best_state.clone();
        apply_block(
            &mut after,
            Address(solution.reward_address),
            self.spec.block_reward.0,
            &included,
        )
        .map_err(|error| Error::Corrupt(format!("a checked transaction failed: {error}")))?;
        after.commit();
        let body = Body {
            transactions: included.iter().map(SignedTransaction::encode).collect(),
            segment_headers,
        };
        let header = UnsealedHeader {
            version: Header::VERSION,
            parent_hash: parent.hash,
            number,
            slot,
            pot_checkpoints,
            solution: Some(solution),
            solution_range: era.solution_range,
            next_solution_range: (next_era != era).then_some(next_era.solution_range),
            state_root: after.root(),
            body_root: body.root(),
        };
        Ok(Some(Proposal { header, body }))
    }
}

/// Writes genesis's context, state and segment (idempotent: a crash before it commits repeats it).
fn init_genesis(db: &Database, params: &ProtocolParams, genesis: &Genesis) -> Result<(), Error> {
    let hash = genesis.header.hash();
    let context = BlockContext {
        child: ParentInfo {
            hash,
            number: BlockNumber(0),
            slot: SlotNumber(0),
            pot_covered_slot: SlotNumber(0),
            pot_recent_outputs: Vec::new(),
            era: acre_consensus::chain_rules::Era {
                solution_range: genesis.header.unsealed.solution_range,
                start_slot: SlotNumber(0),
            },
        },
        slot_output: None,
        injections: Vec::new(),
        next_segment_index: 0,
    };
    let changes = state::diff(&InMemoryAccounts::default(), &genesis.state);
    let segment = crate::archiving::genesis_segment(params, &genesis.header, &genesis.body)?;
    let tx = db.write()?;
    tx.put::<BlockContexts>(&hash, &codec::encode(&context))?;
    tx.put::<BlockDiffs>(&hash, &state::encode_diff(&changes))?;
    state::write_changes(&tx, &changes, true)?;
    crate::archiving::store_segment(&tx, &segment)?;
    tx.commit()?;
    Ok(())
}
