//! The import pipeline: a block from anywhere (the node's own authoring, RPC, later the network) is
//! checked against its parent and stored, moving the best chain and its state when it wins fork choice.

use acre_consensus::blocks::{BlockHash, Body, Header};
use acre_consensus::codec;
use acre_consensus::pot::PotOutput;
use acre_consensus::pot_chain::{EntropyInjection, PotCache, entropy_source, injection_slot};
use acre_consensus::validation::{ParentInfo, validate_header_cached};
use acre_consensus::{BlockNumber, SegmentIndex};
use acre_execution::{Address, SignedTransaction, apply_block};
use acre_storage::chain_index::{BlockMeta, ChainIndex};
use acre_storage::db::WriteTx;

use super::{BlockContext, BlockContexts, Chain, Imported, Inner};
use crate::error::{Error, ImportError};
use crate::state::{self, BlockDiffs};

impl Chain {
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
            let index = SegmentIndex(expected);
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
        let mut after = self.state_at(&inner, &unsealed.parent_hash)?;
        apply_block(
            &mut after,
            Address(solution.reward_address),
            self.spec.block_reward.0,
            &transactions,
        )?;
        // O(touched accounts · depth): the parent's tree is shared, only the changed paths are rebuilt.
        let changes = after.commit();
        let state_root = after.root();
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
            // `after` is the imported block's state however the best chain moved (it was reached from
            // the parent's state), and the Accounts table moved to it in the import's transaction.
            inner.best_state = after;
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
    fn state_at(&self, inner: &Inner, target: &BlockHash) -> Result<state::BranchState, ImportError> {
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
                state.revert(&state::read_diff(&read, &down.hash).map_err(internal)?);
                down = meta(&down.parent)?;
            } else {
                forward.push(up.hash);
                up = meta(&up.parent)?;
            }
        }
        for hash in forward.iter().rev() {
            state.apply(&state::read_diff(&read, hash).map_err(internal)?);
        }
        Ok(state)
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
