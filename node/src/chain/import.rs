//! The import pipeline: a block from anywhere (the node's own authoring, RPC, later the network) is
//! checked against its parent and its branch, stored, and moves the best chain and its state when it wins
//! fork choice.
//!
//! Order of checks (spec 8, cheapest first, so a bad block costs its sender more than it costs us):
//! known / genesis / parent lookups; the depth and fork-point rules; the block-list and the body's shape
//! and root; then the header (seal, solution, and proof of time last, compared with the timekeeper's own
//! proof before any AES work); then the body (segment-header inclusion, votes, equivocation proofs,
//! execution and state root). Only then is the chain lock taken, to judge equivocation and commit.

use std::collections::HashSet;

use acre_consensus::blocks::{BlockHash, Body, Header, SealError};
use acre_consensus::branch::{
    BranchHistory, archiving_target, check_segment_headers, expected_segment_headers,
};
use acre_consensus::codec;
use acre_consensus::equivocation::{MAX_EQUIVOCATION_PROOFS_PER_BLOCK, SignedClaim};
use acre_consensus::pot::{PotOutput, slot_challenge};
use acre_consensus::pot_chain::{EntropyInjection, PotCache, entropy_source, injection_slot};
use acre_consensus::sectors::PublicKey;
use acre_consensus::solutions::SegmentRoots;
use acre_consensus::validation::{ParentInfo, ValidHeader, validate_header_cached};
use acre_consensus::votes::{VoteError, max_votes_per_block, verify_vote_solution};
use acre_execution::{Address, SignedTransaction, apply_block};
use acre_storage::chain_index::{BlockMeta, ChainIndex};
use acre_storage::db::WriteTx;

use super::history::internal;
use super::seen::{self, SeenKey, StoredClaim};
use super::{BlockContext, BlockContexts, Chain, Imported};
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
        let unsealed = &header.unsealed;
        let hash = header.hash();
        let index = ChainIndex::open_existing(&self.db);
        if index.meta(&hash)?.is_some() {
            return Err(ImportError::AlreadyKnown(hash));
        }
        if unsealed.number.0 == 0 {
            return Err(ImportError::Genesis);
        }
        let parent = index
            .meta(&unsealed.parent_hash)?
            .ok_or(ImportError::UnknownParent(unsealed.parent_hash))?;
        let parent_context = self
            .context(&unsealed.parent_hash)
            .map_err(internal)?
            .ok_or(ImportError::UnknownParent(unsealed.parent_hash))?;
        let best = self.lock().best;
        if unsealed.number.0.saturating_add(self.params.confirmation_depth) <= best.number.0 {
            return Err(ImportError::TooOld {
                number: unsealed.number,
                best: best.number,
            });
        }
        self.check_fork_point(&parent)?;
        let solution = unsealed
            .solution
            .as_ref()
            .ok_or(SealError::MissingSolution(unsealed.number))
            .map_err(|error| ImportError::Header(error.into()))?;
        if parent_context.is_blocklisted(&solution.public_key) {
            return Err(ImportError::Blocklisted(solution.public_key));
        }
        let max_votes = max_votes_per_block(&self.params);
        if body.votes.len() > max_votes {
            return Err(ImportError::Vote {
                index: max_votes,
                source: VoteError::TooMany {
                    got: body.votes.len(),
                    max: max_votes,
                },
            });
        }
        if body.equivocations.len() > MAX_EQUIVOCATION_PROOFS_PER_BLOCK {
            return Err(ImportError::TooManyEquivocationProofs(body.equivocations.len()));
        }
        if body.root() != unsealed.body_root {
            return Err(ImportError::BodyRoot);
        }

        // Phase 1: the header against its parent and its branch's history.
        let produced = self.produced_up_to(&parent, archiving_target(&self.params, parent.number))?;
        let history = BranchHistory::new(parent_context.next_segment_index, &produced);
        let valid = validate_header_cached(
            &self.params,
            header,
            &parent_context.child,
            &self.genesis_seed,
            &parent_context.injections,
            &history,
            pot_cache,
        )?;

        // Phase 2: the body against its branch and the parent's state.
        let expected = expected_segment_headers(
            &self.params,
            parent.number,
            parent_context.next_segment_index,
            &produced,
        );
        check_segment_headers(&body.segment_headers, &expected)?;
        let voters = self.check_votes(header, body, &parent_context, &valid, &history)?;
        let blocklist = apply_evidence(&parent_context, body)?;
        let transactions = body
            .transactions
            .iter()
            .enumerate()
            .map(|(index, bytes)| {
                SignedTransaction::decode(bytes)
                    .map_err(|source| ImportError::TransactionEncoding { index, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut after = self.state_at(&unsealed.parent_hash)?;
        apply_block(
            &mut after,
            &self.spec.runtime_config(self.genesis_hash),
            Address(solution.reward_address),
            &voters,
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
        let context = self.child_context(&parent_context, header, body, &valid, blocklist)?;
        let context_bytes = codec::encode(&context);

        // Phase 3: equivocation (judged last, so only a fully valid block counts against its farmer),
        // then one write transaction, under the chain lock.
        let mut inner = self.lock();
        if index.meta(&hash)?.is_some() {
            return Err(ImportError::AlreadyKnown(hash));
        }
        self.check_fork_point(&parent)?;
        let read = self.db.read()?;
        let block_key = SeenKey {
            slot: unsealed.slot,
            public_key: solution.public_key,
        };
        if let Some(proof) = seen::check(&read, &block_key, &SignedClaim::Block(header.clone()))? {
            self.record_evidence(proof);
            return Err(ImportError::Equivocation(solution.public_key));
        }
        let mut vote_claims = Vec::with_capacity(body.votes.len());
        for vote in &body.votes {
            let key = SeenKey {
                slot: vote.vote.slot,
                public_key: vote.vote.solution.public_key,
            };
            // A voter's equivocation is the voter's fault, not the author's: the block stands, and the
            // proof goes into the next block this node authors.
            match seen::check(&read, &key, &SignedClaim::Vote(vote.clone()))? {
                Some(proof) => self.record_evidence(proof),
                None => vote_claims.push((key, StoredClaim::Vote(Box::new(vote.clone())))),
            }
        }
        drop(read);
        let outcome = index.import_with(header, body, |tx, outcome| {
            tx.put::<BlockContexts>(&hash, &context_bytes)?;
            tx.put::<BlockDiffs>(&hash, &state::encode_diff(&changes))?;
            seen::record(tx, &block_key, &StoredClaim::Block(hash))?;
            for (key, claim) in &vote_claims {
                seen::record(tx, key, claim)?;
            }
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
        }
        drop(inner);

        // Phase 4: archiving, outside the chain lock. The block is stored whatever happens here.
        if outcome.is_best {
            match self.archive() {
                Ok(new) => imported.new_segments = new,
                Err(error) => tracing::error!(%error, "archiving after an import failed; it is retried"),
            }
        }
        Ok(imported)
    }

    /// Checks the body's votes (spec 7); returns their reward addresses.
    fn check_votes(
        &self,
        header: &Header,
        body: &Body,
        parent: &BlockContext,
        valid: &ValidHeader,
        history: &impl SegmentRoots,
    ) -> Result<Vec<Address>, ImportError> {
        let unsealed = &header.unsealed;
        let author = unsealed.solution.as_ref().map(|solution| solution.public_key);
        let mut keys = HashSet::new();
        let mut voters = Vec::with_capacity(body.votes.len());
        for (index, signed) in body.votes.iter().enumerate() {
            let fail = |source| ImportError::Vote { index, source };
            let vote = &signed.vote;
            let key = vote.solution.public_key;
            if vote.parent_hash != unsealed.parent_hash {
                return Err(fail(VoteError::WrongParent {
                    vote_parent: vote.parent_hash,
                }));
            }
            let Some(output) = slot_output(&valid.slot_outputs, vote.slot) else {
                return Err(fail(VoteError::SlotOutOfRange {
                    slot: vote.slot,
                    parent: parent.child.slot,
                    block: unsealed.slot,
                }));
            };
            if parent.is_blocklisted(&key) {
                return Err(ImportError::Blocklisted(key));
            }
            if !keys.insert((key, vote.slot)) || (Some(key) == author && vote.slot == unsealed.slot) {
                return Err(fail(VoteError::Duplicate(vote.slot)));
            }
            signed.verify_signature().map_err(fail)?;
            verify_vote_solution(
                &self.params,
                &vote.solution,
                &slot_challenge(&output, vote.slot),
                unsealed.solution_range,
                history,
            )
            .map_err(fail)?;
            voters.push(Address(vote.solution.reward_address));
        }
        Ok(voters)
    }

    fn child_context(
        &self,
        parent: &BlockContext,
        header: &Header,
        body: &Body,
        valid: &ValidHeader,
        blocklist: Vec<PublicKey>,
    ) -> Result<BlockContext, ImportError> {
        let unsealed = &header.unsealed;
        let child: ParentInfo = valid.child_parent_info.clone();
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
            slot_output: Some(valid.slot_output),
            injections,
            next_segment_index: parent.next_segment_index + body.segment_headers.len() as u64,
            blocklist,
        })
    }

    /// The state after block `target`: the best state moved along the block tree.
    pub(super) fn state_at(&self, target: &BlockHash) -> Result<state::BranchState, ImportError> {
        let (mut state, best) = {
            let inner = self.lock();
            (inner.best_state.clone(), inner.best)
        };
        if *target == best.hash {
            return Ok(state);
        }
        let index = ChainIndex::open_existing(&self.db);
        let read = self.db.read()?;
        let meta = |hash: &BlockHash| -> Result<BlockMeta, ImportError> {
            index
                .meta(hash)?
                .ok_or_else(|| internal(Error::Corrupt(format!("missing block metadata {hash}"))))
        };
        let mut down = best;
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

fn slot_output(
    outputs: &[(acre_consensus::SlotNumber, PotOutput)],
    slot: acre_consensus::SlotNumber,
) -> Option<PotOutput> {
    outputs
        .iter()
        .find(|(known, _)| *known == slot)
        .map(|(_, output)| *output)
}

/// The child's block-list: the parent's plus every key the body proves equivocated.
fn apply_evidence(parent: &BlockContext, body: &Body) -> Result<Vec<PublicKey>, ImportError> {
    let mut blocklist = parent.blocklist.clone();
    for (index, proof) in body.equivocations.iter().enumerate() {
        let key = proof
            .verify()
            .map_err(|source| ImportError::EquivocationProof { index, source })?;
        match blocklist.binary_search(&key) {
            Ok(_) => return Err(ImportError::AlreadyBlocklisted { index, key }),
            Err(position) => blocklist.insert(position, key),
        }
    }
    Ok(blocklist)
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
