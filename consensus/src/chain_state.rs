//! The chain state machine (spec 3.6, 7 and 8): a block's verdict from its parent's [`ChainContext`]
//! alone, and the child's context.
//!
//! A node keeps one [`ChainContext`] per block. It is everything the rules for the block's children depend
//! on that is not in the child itself: the parent information header validation needs, the proof-of-time
//! entropy injections scheduled on the branch (and the outputs future injections will draw from), how many
//! segment headers the branch carried (its history size), and the keys proven to have equivocated on it.
//! [`check_block`] takes a parent's context and a block and either refuses the block with a specific
//! [`BlockError`] or returns a [`Verdict`]: the child's context, who is paid, and the signed claims the
//! caller must check for equivocation against what it has seen.
//!
//! Two inputs come from outside because they are facts about the world rather than about the branch, and
//! both are pure functions of the branch where they matter: the segment headers the branch produced by
//! archiving up to its archiving target ([`SegmentHeaders`], computed by an archiver), and proof-of-time
//! slots already known to be right ([`PotCache`], an optimisation that never changes a verdict). What
//! stays with the caller is what is not a rule of one branch: executing the transactions (the execution
//! crate; compare the result with [`check_state_root`]), which claims it has seen before (equivocation is
//! judged across branches), and the node's own policies (how far below its best block it accepts
//! blocks, and the archiving point).

use thiserror::Error;

use crate::blocks::{BlockHash, Body, Header, SealError};
use crate::branch::{
    BranchHistory, SegmentHeaders, SegmentInclusionError, archiving_target, check_segment_headers,
    expected_segment_headers,
};
use crate::chain_rules::Era;
use crate::equivocation::{EquivocationError, MAX_EQUIVOCATION_PROOFS_PER_BLOCK, SignedClaim};
use crate::hashing::Blake3Hash;
use crate::params::ProtocolParams;
use crate::pot::{PotOutput, PotSeed, slot_challenge};
use crate::pot_chain::{EntropyInjection, PotCache, entropy_source, injection_slot};
use crate::quantities::{BlockNumber, SlotNumber, SolutionRange};
use crate::sectors::PublicKey;
use crate::validation::{HeaderError, ParentInfo, ValidHeader, validate_header_cached};
use crate::votes::{VoteError, max_votes_per_block, verify_vote_solution};

/// What a branch carries from a block to its children.
#[derive(Debug, Clone, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct ChainContext {
    /// The parent information of the block's children.
    pub child: ParentInfo,
    /// Proof-of-time outputs of the branch's latest blocks whose numbers are non-zero multiples of the
    /// injection interval, oldest first (at most `pot_entropy_injection_lookback`): the entropy that
    /// injections scheduled by the coming blocks draw from.
    pub entropy_sources: Vec<(BlockNumber, PotOutput)>,
    /// Injections scheduled on this branch that apply after the block's covered slot.
    pub injections: Vec<EntropyInjection>,
    /// Segment headers carried by the block and its ancestors: the index of the next one the branch must
    /// carry, and (at least one) the branch's history size.
    pub next_segment_index: u64,
    /// Keys proven to have equivocated on this branch, sorted: their blocks and votes are invalid here.
    pub blocklist: Vec<PublicKey>,
}

impl ChainContext {
    /// The context of genesis `hash`, whose children use `solution_range`.
    pub fn genesis(hash: BlockHash, solution_range: SolutionRange) -> Self {
        Self {
            child: ParentInfo {
                hash,
                number: BlockNumber(0),
                slot: SlotNumber(0),
                pot_covered_slot: SlotNumber(0),
                pot_recent_outputs: Vec::new(),
                era: Era {
                    solution_range,
                    start_slot: SlotNumber(0),
                },
            },
            entropy_sources: Vec::new(),
            injections: Vec::new(),
            next_segment_index: 0,
            blocklist: Vec::new(),
        }
    }

    /// Whether `key` is on the branch's block-list.
    pub fn is_blocklisted(&self, key: &PublicKey) -> bool {
        self.blocklist.binary_search(key).is_ok()
    }

    /// The block this is the context of.
    pub fn hash(&self) -> BlockHash {
        self.child.hash
    }

    /// Its number.
    pub fn number(&self) -> BlockNumber {
        self.child.number
    }

    /// The block up to which the branch's child must have archived (what its segment headers reflect).
    pub fn archiving_target(&self, params: &ProtocolParams) -> BlockNumber {
        archiving_target(params, self.child.number)
    }
}

/// Why a block is invalid on its branch.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BlockError {
    /// The header is invalid.
    #[error("invalid header: {0}")]
    Header(#[from] HeaderError),
    /// The block's author or one of its voters is block-listed on this branch.
    #[error("farmer {0} is block-listed on this branch for equivocating")]
    Blocklisted(PublicKey),
    /// A vote is invalid (or there are too many: `index` is then the first one over the limit).
    #[error("vote {index}: {source}")]
    Vote {
        /// Which one (counting from zero).
        index: usize,
        /// The underlying error.
        source: VoteError,
    },
    /// More equivocation proofs than a block may carry.
    #[error("{0} equivocation proofs, more than a block may carry")]
    TooManyEquivocationProofs(usize),
    /// An equivocation proof is invalid.
    #[error("equivocation proof {index}: {source}")]
    EquivocationProof {
        /// Which one (counting from zero).
        index: usize,
        /// The underlying error.
        source: EquivocationError,
    },
    /// An equivocation proof names a key the branch has block-listed already.
    #[error("equivocation proof {index}: {key} is already block-listed")]
    AlreadyBlocklisted {
        /// Which one (counting from zero).
        index: usize,
        /// The key in question.
        key: PublicKey,
    },
    /// The body does not match the header's body root.
    #[error("the body does not match the header's body root")]
    BodyRoot,
    /// The block does not carry exactly the segment headers its branch produced.
    #[error(transparent)]
    SegmentInclusion(#[from] SegmentInclusionError),
    /// Executing the body gave another state root than the header's.
    #[error("state root {got} in the header, {expected} after executing the block")]
    StateRoot {
        /// What the rule requires.
        expected: Blake3Hash,
        /// What was found.
        got: Blake3Hash,
    },
}

/// What a valid block means for its branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// What the header validation established (hash, slot outputs).
    pub header: ValidHeader,
    /// The block's own context, for its children.
    pub context: ChainContext,
    /// The farmer who sealed the block.
    pub author: PublicKey,
    /// Where the block reward and fees go.
    pub author_reward_address: [u8; 32],
    /// Where each included vote's reward goes, in body order.
    pub voter_reward_addresses: Vec<[u8; 32]>,
    /// Every claim the block makes for a slot (its own seal, then each vote): the caller judges them for
    /// equivocation against the claims it has seen on any branch (spec 8).
    pub claims: Vec<SignedClaim>,
}

/// Judges `header` and `body` as a child of the block whose context is `parent`: everything but the
/// execution of its transactions (see [`check_state_root`]) and cross-branch equivocation (see
/// [`Verdict::claims`]).
///
/// `produced` holds the segment headers the branch produced by archiving up to the parent's archiving
/// target ([`ChainContext::archiving_target`]); `pot_cache` holds proof-of-time slots known to be right.
/// Checks run cheapest first (spec 8): the body's shape and root, the block-list, then the header (seal,
/// solution, proof of time), the segment headers, the votes and the equivocation proofs.
pub fn check_block(
    params: &ProtocolParams,
    genesis_seed: &PotSeed,
    parent: &ChainContext,
    header: &Header,
    body: &Body,
    produced: &(impl SegmentHeaders + ?Sized),
    pot_cache: &impl PotCache,
) -> Result<Verdict, BlockError> {
    let unsealed = &header.unsealed;
    let solution = unsealed
        .solution
        .as_ref()
        .ok_or(HeaderError::Seal(SealError::MissingSolution(unsealed.number)))?;
    if parent.is_blocklisted(&solution.public_key) {
        return Err(BlockError::Blocklisted(solution.public_key));
    }
    let max_votes = max_votes_per_block(params);
    if body.votes.len() > max_votes {
        return Err(BlockError::Vote {
            index: max_votes,
            source: VoteError::TooMany {
                got: body.votes.len(),
                max: max_votes,
            },
        });
    }
    if body.equivocations.len() > MAX_EQUIVOCATION_PROOFS_PER_BLOCK {
        return Err(BlockError::TooManyEquivocationProofs(body.equivocations.len()));
    }
    if body.root() != unsealed.body_root {
        return Err(BlockError::BodyRoot);
    }

    let history = BranchHistory::new(parent.next_segment_index, produced);
    let valid = validate_header_cached(
        params,
        header,
        &parent.child,
        genesis_seed,
        &parent.injections,
        &history,
        pot_cache,
    )?;
    let expected = expected_segment_headers(params, parent.child.number, parent.next_segment_index, produced);
    check_segment_headers(&body.segment_headers, &expected)?;
    let voter_reward_addresses = check_votes(params, parent, header, body, &valid, &history)?;
    let blocklist = blocklist_after(parent, body)?;
    let context = child_context(params, parent, header, body, &valid, blocklist);
    let mut claims = Vec::with_capacity(1 + body.votes.len());
    claims.push(SignedClaim::Block(header.clone()));
    claims.extend(body.votes.iter().cloned().map(SignedClaim::Vote));
    Ok(Verdict {
        header: valid,
        context,
        author: solution.public_key,
        author_reward_address: solution.reward_address,
        voter_reward_addresses,
        claims,
    })
}

/// Compares the state root the execution of a block's body produced with the header's.
pub fn check_state_root(header: &Header, executed: Blake3Hash) -> Result<(), BlockError> {
    if executed == header.unsealed.state_root {
        Ok(())
    } else {
        Err(BlockError::StateRoot {
            expected: executed,
            got: header.unsealed.state_root,
        })
    }
}

/// Checks the body's votes (spec 7); returns their reward addresses.
fn check_votes(
    params: &ProtocolParams,
    parent: &ChainContext,
    header: &Header,
    body: &Body,
    valid: &ValidHeader,
    history: &BranchHistory<'_, impl SegmentHeaders + ?Sized>,
) -> Result<Vec<[u8; 32]>, BlockError> {
    let unsealed = &header.unsealed;
    let author = unsealed.solution.as_ref().map(|solution| solution.public_key);
    let mut keys = std::collections::BTreeSet::new();
    let mut voters = Vec::with_capacity(body.votes.len());
    for (index, signed) in body.votes.iter().enumerate() {
        let fail = |source| BlockError::Vote { index, source };
        let vote = &signed.vote;
        let key = vote.solution.public_key;
        if vote.parent_hash != unsealed.parent_hash {
            return Err(fail(VoteError::WrongParent {
                vote_parent: vote.parent_hash,
            }));
        }
        let Some(output) = valid
            .slot_outputs
            .iter()
            .find(|(slot, _)| *slot == vote.slot)
            .map(|(_, output)| *output)
        else {
            return Err(fail(VoteError::SlotOutOfRange {
                slot: vote.slot,
                parent: parent.child.slot,
                block: unsealed.slot,
            }));
        };
        if parent.is_blocklisted(&key) {
            return Err(BlockError::Blocklisted(key));
        }
        if !keys.insert((key, vote.slot)) || (Some(key) == author && vote.slot == unsealed.slot) {
            return Err(fail(VoteError::Duplicate(vote.slot)));
        }
        signed.verify_signature().map_err(fail)?;
        verify_vote_solution(
            params,
            &vote.solution,
            &slot_challenge(&output, vote.slot),
            unsealed.solution_range,
            history,
        )
        .map_err(fail)?;
        voters.push(vote.solution.reward_address);
    }
    Ok(voters)
}

/// The child's block-list: the parent's plus every key the body proves equivocated.
fn blocklist_after(parent: &ChainContext, body: &Body) -> Result<Vec<PublicKey>, BlockError> {
    let mut blocklist = parent.blocklist.clone();
    for (index, proof) in body.equivocations.iter().enumerate() {
        let key = proof
            .verify()
            .map_err(|source| BlockError::EquivocationProof { index, source })?;
        match blocklist.binary_search(&key) {
            Ok(_) => return Err(BlockError::AlreadyBlocklisted { index, key }),
            Err(position) => blocklist.insert(position, key),
        }
    }
    Ok(blocklist)
}

/// The block's own context: its children's parent info, the injections still ahead on the branch (plus
/// the one this block schedules, if any), the entropy sources, segment count and block-list.
fn child_context(
    params: &ProtocolParams,
    parent: &ChainContext,
    header: &Header,
    body: &Body,
    valid: &ValidHeader,
    blocklist: Vec<PublicKey>,
) -> ChainContext {
    let unsealed = &header.unsealed;
    let child = valid.child_parent_info.clone();
    let mut injections: Vec<_> = parent
        .injections
        .iter()
        .filter(|injection| injection.slot > child.pot_covered_slot)
        .copied()
        .collect();
    let mut entropy_sources = parent.entropy_sources.clone();
    injections.extend(schedule_entropy(
        params,
        &mut entropy_sources,
        unsealed.number,
        unsealed.slot,
        valid.slot_output,
    ));
    ChainContext {
        child,
        entropy_sources,
        injections,
        next_segment_index: parent.next_segment_index + body.segment_headers.len() as u64,
        blocklist,
    }
}

/// The entropy bookkeeping of block `number` at `slot` with proof-of-time output `output`: the injection
/// it schedules, if any (spec 6: the output of the block `lookback` intervals back on the branch; none when
/// that is genesis, which has no output), and `sources` updated with this block if it is one.
fn schedule_entropy(
    params: &ProtocolParams,
    sources: &mut Vec<(BlockNumber, PotOutput)>,
    number: BlockNumber,
    slot: SlotNumber,
    output: PotOutput,
) -> Option<EntropyInjection> {
    let injection = entropy_source(params, number).and_then(|source| {
        let entropy = if source == number {
            Some(output)
        } else {
            sources
                .iter()
                .find(|(known, _)| *known == source)
                .map(|(_, output)| *output)
        }?;
        Some(EntropyInjection {
            slot: injection_slot(params, slot),
            entropy,
        })
    });
    let interval = params.pot_entropy_injection_interval;
    if interval != 0 && number.0 != 0 && number.0.is_multiple_of(interval) {
        // This block is the source of the injection scheduled `lookback` intervals on.
        sources.push((number, output));
        let keep = usize::from(params.pot_entropy_injection_lookback);
        let excess = sources.len().saturating_sub(keep);
        sources.drain(..excess);
    }
    injection
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The sources a context keeps are enough: every injection draws the output of exactly the block
        /// the spec names, on a branch of any length and for any interval and lookback.
        #[test]
        fn injections_draw_from_the_block_lookback_intervals_back(
            interval in 1u64..8,
            lookback in 0u8..4,
            blocks in 1u64..120,
        ) {
            let params = ProtocolParams {
                pot_entropy_injection_interval: interval,
                pot_entropy_injection_lookback: lookback,
                ..ProtocolParams::dev()
            };
            let output_of = |number: u64| PotOutput(number.to_le_bytes().repeat(2).try_into().expect("16 bytes"));
            let mut sources = Vec::new();
            for number in 1..=blocks {
                let slot = SlotNumber(number * 3);
                let injection = schedule_entropy(&params, &mut sources, BlockNumber(number), slot, output_of(number));
                let expected = entropy_source(&params, BlockNumber(number))
                    .filter(|source| source.0 != 0)
                    .map(|source| EntropyInjection {
                        slot: injection_slot(&params, slot),
                        entropy: output_of(source.0),
                    });
                prop_assert_eq!(injection, expected, "block {}", number);
                prop_assert!(sources.len() <= usize::from(lookback));
            }
        }
    }
}
