//! The import pipeline: a block from anywhere (the node's own authoring, RPC, later the network) is
//! checked against its parent and its branch, stored, and moves the best chain and its state when it wins
//! fork choice.
//!
//! Every rule of one branch is the consensus crate's chain state machine
//! ([`acre_consensus::chain_state::check_block`]); this module is the shell around it: lookups, the node's
//! own policies, the segments the branch produced (from the archiver), execution, cross-branch
//! equivocation and the atomic write.
//!
//! Order of checks (spec 8, cheapest first, so a bad block costs its sender more than it costs us):
//! known / genesis / parent lookups; the depth and fork-point rules; then the state machine (the
//! block-list and the body's shape and root; the header with seal, solution, and proof of time last,
//! compared with the timekeeper's own proof before any AES work; segment-header inclusion, votes,
//! equivocation proofs); then execution and the state root. Only then is the chain lock taken, to judge
//! equivocation and commit.

use acre_consensus::blocks::{BlockHash, Body, Header};
use acre_consensus::chain_state::{check_block, check_state_root};
use acre_consensus::codec;
use acre_consensus::equivocation::SignedClaim;
use acre_consensus::pot_chain::PotCache;
use acre_execution::domains::bundle::Bundle;
use acre_execution::{Address, SignedTransaction, apply_block};
use acre_storage::chain_index::{BlockMeta, ChainIndex};
use acre_storage::db::WriteTx;

use super::history::internal;
use super::seen::{self, SeenKey, StoredClaim};
use super::{BlockContexts, Chain, Imported};
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

        // Phases 1 and 2: the block against its branch (the consensus state machine: body shape and root,
        // block-list, header with solution and proof of time, segment headers, votes, equivocation proofs).
        let produced = self.produced_up_to(&parent, parent_context.archiving_target(&self.params))?;
        let verdict = check_block(
            &self.params,
            &self.genesis_seed,
            &parent_context,
            header,
            body,
            &produced,
            pot_cache,
        )?;
        let voters: Vec<Address> = verdict
            .voter_reward_addresses
            .iter()
            .copied()
            .map(Address)
            .collect();
        let transactions = body
            .transactions
            .iter()
            .enumerate()
            .map(|(index, bytes)| {
                SignedTransaction::decode(bytes)
                    .map_err(|source| ImportError::TransactionEncoding { index, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let bundles = body
            .bundles
            .iter()
            .enumerate()
            .map(|(index, bytes)| {
                Bundle::decode(bytes).map_err(|source| ImportError::BundleEncoding { index, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut after = self.state_at(&unsealed.parent_hash)?;
        after.begin_block(unsealed.number, unsealed.parent_hash);
        let runtime = self.spec.runtime_config(self.genesis_hash);
        let author = Address(verdict.author_reward_address);
        apply_block(&mut after, &runtime, author, &voters, &transactions)?;
        if !bundles.is_empty() {
            self.apply_block_bundles(&mut after, &runtime, author, unsealed, &bundles)?;
        }
        // O(touched accounts · depth): the parent's tree is shared, only the changed paths are rebuilt.
        let changes = after.commit();
        check_state_root(header, after.root())?;
        let context = verdict.context;
        let context_bytes = codec::encode(&context);

        // Phase 3: equivocation (judged last, so only a fully valid block counts against its farmer),
        // then one write transaction, under the chain lock.
        let mut inner = self.lock();
        if index.meta(&hash)?.is_some() {
            return Err(ImportError::AlreadyKnown(hash));
        }
        self.check_fork_point(&parent)?;
        let read = self.db.read()?;
        let mut claims = verdict.claims.into_iter();
        let block_key = SeenKey {
            slot: unsealed.slot,
            public_key: verdict.author,
        };
        if let Some(proof) = seen::check(&read, &block_key, &claims.next().expect("the block's own claim"))? {
            self.record_evidence(proof);
            return Err(ImportError::Equivocation(block_key.public_key));
        }
        let mut vote_claims = Vec::with_capacity(body.votes.len());
        for claim in claims {
            let SignedClaim::Vote(vote) = &claim else {
                continue;
            };
            let key = SeenKey {
                slot: vote.vote.slot,
                public_key: vote.vote.solution.public_key,
            };
            // A voter's equivocation is the voter's fault, not the author's: the block stands, and the
            // proof goes into the next block this node authors.
            match seen::check(&read, &key, &claim)? {
                Some(proof) => self.record_evidence(proof),
                None => vote_claims.push((key, StoredClaim::Vote(Box::new(vote.clone())))),
            }
        }
        drop(read);
        let outcome = index.import_with(header, body, |tx, outcome| {
            tx.put::<BlockContexts>(&hash, &context_bytes)?;
            tx.put::<BlockDiffs>(&hash, &state::encode_diff(&changes))?;
            state::write_registry(tx, &hash, &after)?;
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
        // The registry is stored whole per block: take the target's unless it is the one held.
        if state.domains().is_some() {
            let registry = state::read_registry(&read, target).map_err(internal)?;
            if registry.as_ref().map(|(_, hash)| *hash) != state.registry_hash() {
                state.set_registry(registry);
            }
        }
        Ok(state)
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
