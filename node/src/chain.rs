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
use acre_consensus::pot_chain::{EntropyInjection, PotCache, entropy_source, injection_slot};
use acre_consensus::sectors::PublicKey;
use acre_consensus::solutions::Solution;
use acre_consensus::validation::{EquivocationDetector, ParentInfo, validate_header_cached};
use acre_consensus::{BlockNumber, ProtocolParams, SegmentHeader, SlotNumber, codec};
use acre_execution::{Address, InMemoryAccounts, SignedTransaction, apply_block, apply_transaction};
use acre_storage::chain_index::{BlockMeta, ChainIndex};
use acre_storage::db::tables::{Bodies, Headers};
use acre_storage::db::{Database, WriteTx};
use borsh::{BorshDeserialize, BorshSerialize};

use crate::archiving::ArchiveState;
use crate::chain_spec::{ChainSpec, Genesis};
use crate::error::{Error, ImportError};
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
    best_state: InMemoryAccounts,
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

    /// Verifies and imports a block. `pot_cache` holds proof-of-time slots known to be right.
    pub fn import(
        &self,
        header: &Header,
        body: &Body,
        pot_cache: &impl PotCache,
    ) -> Result<Imported, ImportError> {
        let mut inner = self.lock();
        let unsealed = &header.unsealed;
        let hash = header.hash();
        let index = ChainIndex::open_existing(&self.db);
        if index.meta(&hash)?.is_some() {
            return Err(ImportError::AlreadyKnown(hash));
        }
        if unsealed.number.0 == 0 {
            return Err(ImportError::Genesis);
        }
        let parent_context = self
            .context(&unsealed.parent_hash)
            .map_err(internal)?
            .ok_or(ImportError::UnknownParent(unsealed.parent_hash))?;
        let best = inner.best;
        if unsealed.number.0.saturating_add(self.params.confirmation_depth) <= best.number.0 {
            return Err(ImportError::TooOld {
                number: unsealed.number,
                best: best.number,
            });
        }
        if let Some(archived) = inner.archive.last_archived_block() {
            let parent_number = BlockNumber(unsealed.number.0 - 1);
            if parent_number <= archived && index.canonical_hash(parent_number)? != Some(unsealed.parent_hash)
            {
                return Err(ImportError::ForksArchivedHistory {
                    number: unsealed.number,
                    archived,
                });
            }
        }

        // Phase 1: the header against its parent.
        let valid = validate_header_cached(
            &self.params,
            header,
            &parent_context.child,
            &self.genesis_seed,
            &parent_context.injections,
            &inner.archive,
            pot_cache,
        )?;

        // Phase 2: the body against the parent's state.
        if body.root() != unsealed.body_root {
            return Err(ImportError::BodyRoot);
        }
        for (offset, segment_header) in body.segment_headers.iter().enumerate() {
            let expected = parent_context.next_segment_index + offset as u64;
            let index = acre_consensus::SegmentIndex(expected);
            if segment_header.segment_index != index {
                return Err(ImportError::SegmentHeader {
                    index,
                    reason: "segment headers must continue the branch's sequence",
                });
            }
            match inner.archive.header(expected) {
                None => {
                    return Err(ImportError::SegmentHeader {
                        index,
                        reason: "not archived locally yet",
                    });
                }
                Some(local) if local != *segment_header => {
                    return Err(ImportError::SegmentHeader {
                        index,
                        reason: "differs from the local archive",
                    });
                }
                Some(_) => {}
            }
        }
        let transactions = body
            .transactions
            .iter()
            .enumerate()
            .map(|(index, bytes)| {
                SignedTransaction::decode(bytes)
                    .map_err(|source| ImportError::TransactionEncoding { index, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let solution = unsealed
            .solution
            .as_ref()
            .ok_or(acre_consensus::blocks::SealError::MissingSolution(
                unsealed.number,
            ))
            .map_err(|error| ImportError::Header(error.into()))?;
        let parent_state = self.state_at(&inner, &unsealed.parent_hash)?;
        let mut after = parent_state.clone();
        apply_block(
            &mut after,
            Address(solution.reward_address),
            self.spec.block_reward.0,
            &transactions,
        )?;
        let state_root = state::root(&after);
        if state_root != unsealed.state_root {
            return Err(ImportError::StateRoot {
                expected: state_root,
                got: unsealed.state_root,
            });
        }
        if inner.equivocations.is_equivocation(header) {
            return Err(ImportError::Equivocation(solution.public_key));
        }

        let context = self.child_context(
            &parent_context,
            header,
            body,
            valid.slot_output,
            valid.child_parent_info,
        )?;
        let changes = state::diff(&parent_state, &after);
        let context_bytes = codec::encode(&context);
        let outcome = index.import_with(header, body, |tx, outcome| {
            tx.put::<BlockContexts>(&hash, &context_bytes)?;
            tx.put::<BlockDiffs>(&hash, &state::encode_diff(&changes))?;
            if outcome.is_best {
                move_best_state(tx, &outcome.retracted, &outcome.enacted, &hash, &changes)?;
            }
            Ok(())
        })?;

        let mut imported = Imported {
            hash,
            number: unsealed.number,
            is_best: outcome.is_best,
            new_segments: Vec::new(),
            best_context: None,
        };
        if outcome.is_best {
            inner.best_state = if best.hash == unsealed.parent_hash {
                after
            } else {
                state::load_best(&self.db.read()?).map_err(internal)?
            };
            inner.best = index
                .meta(&hash)?
                .ok_or_else(|| internal(Error::Corrupt("imported block has no metadata".into())))?;
            imported.best_context = Some(context.clone());
            inner.best_context = context;
            let best_number = inner.best.number;
            imported.new_segments = inner
                .archive
                .archive_up_to(&self.db, &self.params, best_number)
                .map_err(internal)?;
        }
        Ok(imported)
    }

    fn child_context(
        &self,
        parent: &BlockContext,
        header: &Header,
        body: &Body,
        slot_output: PotOutput,
        child: ParentInfo,
    ) -> Result<BlockContext, ImportError> {
        let unsealed = &header.unsealed;
        let mut injections: Vec<_> = parent
            .injections
            .iter()
            .filter(|injection| injection.slot > child.pot_covered_slot)
            .copied()
            .collect();
        if let Some(source) = entropy_source(&self.params, unsealed.number) {
            // The source is on this block's own branch: walk back from the parent.
            let mut cursor = unsealed.parent_hash;
            let index = ChainIndex::open_existing(&self.db);
            loop {
                let meta = index
                    .meta(&cursor)?
                    .ok_or_else(|| internal(Error::Corrupt(format!("missing ancestor {cursor}"))))?;
                if meta.number <= source {
                    break;
                }
                cursor = meta.parent;
            }
            let source_context = self
                .context(&cursor)
                .map_err(internal)?
                .ok_or_else(|| internal(Error::Corrupt(format!("missing context of {cursor}"))))?;
            // Genesis has no proof-of-time output; an injection sourced there is skipped.
            if let Some(entropy) = source_context.slot_output {
                injections.push(EntropyInjection {
                    slot: injection_slot(&self.params, unsealed.slot),
                    entropy,
                });
            }
        }
        Ok(BlockContext {
            child,
            slot_output: Some(slot_output),
            injections,
            next_segment_index: parent.next_segment_index + body.segment_headers.len() as u64,
        })
    }

    /// The state after block `target`: the best state moved along the block tree.
    fn state_at(&self, inner: &Inner, target: &BlockHash) -> Result<InMemoryAccounts, ImportError> {
        let mut state = inner.best_state.clone();
        if *target == inner.best.hash {
            return Ok(state);
        }
        let index = ChainIndex::open_existing(&self.db);
        let read = self.db.read()?;
        let meta = |hash: &BlockHash| -> Result<BlockMeta, ImportError> {
            index
                .meta(hash)?
                .ok_or_else(|| internal(Error::Corrupt(format!("missing block metadata {hash}"))))
        };
        let mut down = inner.best;
        let mut up = meta(target)?;
        let mut forward = Vec::new();
        while down.hash != up.hash {
            if down.number >= up.number {
                state::revert(
                    &mut state,
                    &state::read_diff(&read, &down.hash).map_err(internal)?,
                );
                down = meta(&down.parent)?;
            } else {
                forward.push(up.hash);
                up = meta(&up.parent)?;
            }
        }
        for hash in forward.iter().rev() {
            state::apply(&mut state, &state::read_diff(&read, hash).map_err(internal)?);
        }
        Ok(state)
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
            state_root: state::root(&after),
            body_root: body.root(),
        };
        Ok(Some(Proposal { header, body }))
    }

    /// Farmers that equivocated.
    pub fn equivocators(&self) -> Vec<PublicKey> {
        self.lock().equivocations.equivocators().to_vec()
    }
}

fn internal(error: Error) -> ImportError {
    match error {
        Error::Storage(error) => ImportError::Storage(error),
        other => ImportError::Storage(acre_storage::Error::Database(other.to_string())),
    }
}

/// Moves the stored best state from the old best block to the new one.
fn move_best_state(
    tx: &WriteTx,
    retracted: &[BlockHash],
    enacted: &[BlockHash],
    imported: &BlockHash,
    imported_changes: &[state::AccountChange],
) -> Result<(), acre_storage::Error> {
    let diff_of = |hash: &BlockHash| -> Result<Vec<state::AccountChange>, acre_storage::Error> {
        let bytes = tx
            .get::<BlockDiffs>(hash)?
            .ok_or_else(|| acre_storage::Error::Database(format!("no state diff for block {hash}")))?;
        Ok(codec::decode_bounded("state diff", &bytes, usize::MAX)?)
    };
    for hash in retracted {
        state::write_changes(tx, &diff_of(hash)?, false)?;
    }
    for hash in enacted {
        if hash == imported {
            state::write_changes(tx, imported_changes, true)?;
        } else {
            state::write_changes(tx, &diff_of(hash)?, true)?;
        }
    }
    Ok(())
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
