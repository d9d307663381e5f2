//! Snap sync: a node with an empty database starts from the state of a recent block instead of executing
//! all of history (spec 9).
//!
//! 1. **Segment headers**, as DSN sync takes them: the last one by a strict majority of the peers asked,
//!    the rest chained to it by hash down to this node's own genesis segment.
//! 2. **The base block** is the last block of the next-to-last segment. That segment and the last one
//!    are rebuilt from pieces (each verified against its header), which gives the base block and the
//!    blocks after it, all committed to by the segment headers.
//! 3. **The base's consensus context** (era, proof-of-time entropy, block-list: what importing its
//!    children needs besides its state) from the peers: the same bytes from a strict majority of those
//!    answering, naming the base block. The context is not committed to by the header, so it is trusted as
//!    the segment headers are; but every block imported after the base is checked against it by the
//!    ordinary pipeline, so a wrong one stops the import of the next segment's blocks.
//! 4. **The base's state** in pages of consecutive state keys, each checked on its own against the base
//!    header's state root by its range proof (`acre_consensus::state_tree::verify_range`): a peer
//!    cannot add, drop or change an account without failing its page, and is banned for it.
//! 5. **Install** ([`crate::Chain::install_snapshot`], one transaction), then the last segment's blocks
//!    after the base through the ordinary import pipeline, then full sync from peers.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};
use std::time::Instant;

use acre_consensus::blocks::{BlockHash, decode_archived_block};
use acre_consensus::state_tree::{StateKey, Witness, next_key};
use acre_consensus::{BlockNumber, SegmentHeader, codec};
use acre_network::messages::{self, MAX_STATE_ENTRIES, StateRequest, StateResponse};
use acre_network::{Fault, PeerId, PeerInfo, Protocol};
use acre_storage::reconstruction::BlockReconstructor;

use super::P2p;
use super::dsn_sync::{self, chained_headers, complete_through, last_header_by_majority};
use crate::chain::{BlockContext, Snapshot};
use crate::error::{Error, ImportError};
use crate::service::Shared;
use crate::state::verify_page;

/// The fewest archived segments (genesis's included) worth a snapshot: with fewer, the base block would
/// be genesis itself, and full sync is as quick.
const MIN_SEGMENTS: u64 = 3;

/// Peers asked for the base block's context.
const MAX_CONTEXT_VOTERS: usize = 16;

/// Why snap sync stopped short.
#[derive(Debug, thiserror::Error)]
pub(super) enum Stop {
    #[error(transparent)]
    History(#[from] dsn_sync::Stop),
    #[error("segment {segment}: {reason}")]
    Segment { segment: u64, reason: String },
    #[error("no majority of peers agrees on the context of block {0}")]
    NoContext(BlockHash),
    #[error("no peer served the state of block {0}")]
    NoState(BlockHash),
    #[error(transparent)]
    Install(#[from] Error),
    #[error("block #{number} after the snapshot was not imported: {error}")]
    Import { number: u64, error: ImportError },
}

/// What a run did.
#[derive(Debug)]
pub(super) enum Outcome {
    /// The chain started from block `base`, and `imported` blocks after it came from the last segment.
    Installed { base: BlockNumber, imported: u64 },
    /// The network's history is shorter than [`MIN_SEGMENTS`]: full sync instead.
    TooYoung { segments: u64 },
}

/// Runs snap sync against `peers` (connected nodes).
pub(super) async fn run(shared: &Arc<Shared>, p2p: &Arc<P2p>, peers: &[PeerInfo]) -> Result<Outcome, Stop> {
    let started = Instant::now();
    let ours = shared.chain.segments();
    let own_genesis = *ours
        .first()
        .ok_or_else(|| Error::Corrupt("no genesis segment".into()))?;
    let Some((target, voters)) = last_header_by_majority(p2p, peers).await? else {
        return Err(dsn_sync::Stop::NoMajority.into());
    };
    let segments = target.segment_index.0 + 1;
    if segments < MIN_SEGMENTS {
        return Ok(Outcome::TooYoung { segments });
    }
    let headers: Vec<SegmentHeader> = std::iter::once(own_genesis)
        .chain(chained_headers(p2p, &voters, &own_genesis, &target).await?)
        .collect();
    if headers.last() != Some(&target) {
        // The history is longer than one run takes: full sync (or a later snap) does the rest.
        return Ok(Outcome::TooYoung { segments });
    }
    let before_last = headers[headers.len() - 2];
    let base_number = before_last.last_archived_block.number;
    let sync_target = complete_through(&target);
    p2p.sync
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .start_snap(sync_target.0);
    shared.metrics.sync_target.set(sync_target.0);
    tracing::info!(
        segments,
        base = base_number.0,
        target = sync_target.0,
        "snap sync: starting from the state of the last block of segment {}",
        before_last.segment_index.0
    );

    // The base block and the blocks after it, from the last two segments.
    let mut blocks = Vec::new();
    let mut reconstructor = BlockReconstructor::new();
    for header in &headers[headers.len() - 2..] {
        blocks.extend(dsn_sync::rebuild(shared, p2p, &mut reconstructor, header).await?);
    }
    let base_position = blocks
        .iter()
        .position(|(number, _)| *number == base_number)
        .ok_or_else(|| Stop::Segment {
            segment: before_last.segment_index.0,
            reason: format!(
                "block #{} starts before the segment (it spans more than two)",
                base_number.0
            ),
        })?;
    let decoded = |(number, bytes): &(BlockNumber, Vec<u8>)| {
        decode_archived_block(bytes).map_err(|error| Stop::Segment {
            segment: target.segment_index.0,
            reason: format!("block #{}: {error}", number.0),
        })
    };
    let (base_header, base_body) = decoded(&blocks[base_position])?;
    let base = base_header.hash();

    let (context, voters) = context_by_majority(p2p, peers, &base).await?;
    let accounts = state(p2p, &voters, &base, &base_header.unsealed.state_root).await?;
    let snapshot = Snapshot {
        header: base_header,
        body: base_body,
        context,
        accounts,
        segments: headers[..headers.len() - 1].to_vec(),
    };
    let installing = Arc::clone(shared);
    let snapshot =
        tokio::task::spawn_blocking(move || installing.chain.install_snapshot(&snapshot).map(|()| snapshot))
            .await
            .map_err(|error| Error::Corrupt(format!("the install task failed: {error}")))??;
    shared.installed_snapshot(&snapshot.header, &snapshot.body, &snapshot.context);
    shared
        .metrics
        .snap_accounts
        .inc_by(snapshot.accounts.len() as u64);

    let mut imported = 0;
    for block in &blocks[base_position + 1..] {
        let (header, body) = decoded(block)?;
        let new = dsn_sync::import(shared, header, body)
            .await
            .map_err(|error| Stop::Import {
                number: block.0.0,
                error,
            })?;
        imported += u64::from(new);
    }
    tracing::info!(
        base = base_number.0,
        accounts = snapshot.accounts.len(),
        blocks = imported,
        seconds = started.elapsed().as_secs_f64(),
        best = shared.chain.best().0.number.0,
        "snap sync done; full sync goes on from here"
    );
    Ok(Outcome::Installed {
        base: base_number,
        imported,
    })
}

/// The base block's context that a strict majority of the peers answering agree on (byte for byte, and
/// naming the block), with the peers that gave it.
async fn context_by_majority(
    p2p: &P2p,
    peers: &[PeerInfo],
    base: &BlockHash,
) -> Result<(BlockContext, Vec<PeerId>), Stop> {
    let request = messages::encode(&StateRequest::Context(*base));
    let mut answers: HashMap<Vec<u8>, Vec<PeerId>> = HashMap::new();
    let mut answered = 0;
    for peer in peers.iter().take(MAX_CONTEXT_VOTERS) {
        let Ok(bytes) = p2p
            .handle
            .request(peer.peer, Protocol::State, request.clone())
            .await
        else {
            continue;
        };
        match messages::decode::<StateResponse>("state response", &bytes, Protocol::State.max_response()) {
            Ok(StateResponse::Context(Some(context))) => {
                answered += 1;
                answers.entry(context).or_default().push(peer.peer);
            }
            Ok(StateResponse::Context(None)) => {}
            Ok(StateResponse::Range(_)) | Err(_) => {
                let _ = p2p.handle.report(peer.peer, Fault::Undecodable).await;
            }
        }
    }
    let (bytes, voters) = answers
        .into_iter()
        .find(|(_, voters)| voters.len() * 2 > answered)
        .ok_or(Stop::NoContext(*base))?;
    let context: BlockContext =
        codec::decode_bounded("block context", &bytes, 1 << 20).map_err(|_| Stop::NoContext(*base))?;
    if context.hash() != *base {
        for voter in &voters {
            let _ = p2p.handle.report(*voter, Fault::ProtocolViolation).await;
        }
        return Err(Stop::NoContext(*base));
    }
    tracing::debug!(
        voters = voters.len(),
        answered,
        blocklisted = context.blocklist.len(),
        "snap sync: context agreed"
    );
    Ok((context, voters))
}

/// The base block's state, page by page from `peers` in turn, each page checked against `root`.
async fn state(
    p2p: &P2p,
    peers: &[PeerId],
    block: &BlockHash,
    root: &acre_consensus::Blake3Hash,
) -> Result<Accounts, Stop> {
    let mut accounts = Vec::new();
    let mut start: StateKey = [0; 32];
    let mut peers: Vec<PeerId> = peers.to_vec();
    let mut turn = 0;
    let mut pages = 0u64;
    loop {
        if peers.is_empty() {
            return Err(Stop::NoState(*block));
        }
        let peer = peers[turn % peers.len()];
        let request = messages::encode(&StateRequest::Range {
            block: *block,
            start,
            max_entries: MAX_STATE_ENTRIES,
        });
        let page = match p2p.handle.request(peer, Protocol::State, request).await {
            Ok(bytes) => page(&bytes, root, &start),
            Err(error) => {
                tracing::debug!(%peer, %error, "state request failed");
                Err(None)
            }
        };
        match page {
            Ok((mut page, complete)) => {
                pages += 1;
                let last = page
                    .last()
                    .map(|(address, _)| acre_execution::account_key(address).0);
                accounts.append(&mut page);
                if pages.is_multiple_of(64) {
                    tracing::info!(accounts = accounts.len(), pages, "snap sync: downloading state");
                }
                match (complete, last.and_then(|key| next_key(&key))) {
                    (true, _) => break,
                    (false, Some(next)) => start = next,
                    // Not complete, yet nothing can follow its last key: a lie.
                    (false, None) => {
                        let _ = p2p.handle.report(peer, Fault::InvalidState).await;
                        peers.retain(|other| *other != peer);
                    }
                }
            }
            Err(fault) => {
                if let Some(fault) = fault {
                    tracing::warn!(%peer, reason = fault.reason(), "snap sync: bad state page");
                    let _ = p2p.handle.report(peer, fault).await;
                }
                peers.retain(|other| *other != peer);
            }
        }
        turn += 1;
    }
    tracing::info!(
        accounts = accounts.len(),
        pages,
        "snap sync: state downloaded and verified"
    );
    Ok(accounts)
}

type Accounts = Vec<(acre_execution::Address, acre_execution::Account)>;

/// A page decoded and verified against `root` from `start`, with whether it is the last; the fault to
/// hold against the sender otherwise (`None`: it does not hold the state, no fault).
fn page(
    bytes: &[u8],
    root: &acre_consensus::Blake3Hash,
    start: &StateKey,
) -> Result<(Accounts, bool), Option<Fault>> {
    let response: StateResponse = messages::decode("state response", bytes, Protocol::State.max_response())
        .map_err(|_| Some(Fault::Undecodable))?;
    let range = match response {
        StateResponse::Range(Some(range)) => range,
        StateResponse::Range(None) => return Err(None),
        StateResponse::Context(_) => return Err(Some(Fault::ProtocolViolation)),
    };
    if range.entries.len() > MAX_STATE_ENTRIES as usize {
        return Err(Some(Fault::ProtocolViolation));
    }
    let proof = Witness::from_items(&range.proof).map_err(|_| Some(Fault::Undecodable))?;
    let accounts = verify_page(root, start, &range.entries, range.complete, &proof).map_err(|error| {
        tracing::debug!(%error, "state page refused");
        Some(Fault::InvalidState)
    })?;
    Ok((accounts, range.complete))
}

#[cfg(test)]
mod tests {
    use acre_consensus::state_tree::WitnessItem;
    use acre_execution::{Account, Address};
    use acre_network::messages::StateRange;

    use super::*;
    use crate::state::BranchState;

    fn state(count: u32) -> BranchState {
        BranchState::from_accounts((0..count).map(|i| {
            let mut address = [0; 32];
            address[..4].copy_from_slice(&i.to_le_bytes());
            (
                Address(address),
                Account {
                    balance: u128::from(i) + 1,
                    nonce: 0,
                },
            )
        }))
    }

    /// A page of `state` from `start` as a peer sends it, after `edit`.
    fn response(state: &BranchState, start: &StateKey, edit: impl FnOnce(&mut StateRange)) -> Vec<u8> {
        let (accounts, complete, proof) = state.range(start, MAX_STATE_ENTRIES as usize);
        let mut range = StateRange {
            entries: accounts.iter().map(codec::encode).collect(),
            complete,
            proof: proof.to_items(),
        };
        edit(&mut range);
        messages::encode(&StateResponse::Range(Some(range)))
    }

    #[test]
    fn true_pages_verify_and_every_kind_of_lie_gets_its_fault() {
        let state = state(3000);
        let root = state.root();
        let start = [0; 32];
        let (accounts, complete) = page(&response(&state, &start, |_| {}), &root, &start).expect("verifies");
        assert_eq!((accounts.len(), complete), (MAX_STATE_ENTRIES as usize, false));
        let last = acre_execution::account_key(&accounts.last().expect("entries").0).0;
        let next = next_key(&last).expect("a next key");
        let (rest, complete) = page(&response(&state, &next, |_| {}), &root, &next).expect("verifies");
        assert_eq!((rest.len(), complete), (3000 - MAX_STATE_ENTRIES as usize, true));

        let invalid = Err(Some(Fault::InvalidState));
        // An account changed, dropped from the middle, or a page claimed to be the last.
        let changed = response(&state, &start, |range| {
            let (address, mut account): (Address, Account) =
                codec::decode_bounded("account", &range.entries[5], 128).expect("account");
            account.balance += 1;
            range.entries[5] = codec::encode(&(address, account));
        });
        assert_eq!(page(&changed, &root, &start), invalid);
        let dropped = response(&state, &start, |range| {
            range.entries.remove(7);
        });
        assert_eq!(page(&dropped, &root, &start), invalid);
        let last_too_early = response(&state, &start, |range| range.complete = true);
        assert_eq!(page(&last_too_early, &root, &start), invalid);
        // A page of another state.
        assert_eq!(
            page(
                &response(&state, &start, |_| {}),
                &BranchState::default().root(),
                &start
            ),
            invalid
        );
        // Not an account; a proof that is no tree; more entries than allowed; the wrong kind of answer.
        let garbage = response(&state, &start, |range| range.entries[0] = vec![1, 2, 3]);
        assert_eq!(page(&garbage, &root, &start), invalid);
        let no_tree = response(&state, &start, |range| range.proof = vec![WitnessItem::Node]);
        assert_eq!(page(&no_tree, &root, &start), Err(Some(Fault::Undecodable)));
        let too_many = response(&state, &start, |range| {
            range.entries = vec![vec![0]; MAX_STATE_ENTRIES as usize + 1];
        });
        assert_eq!(
            page(&too_many, &root, &start),
            Err(Some(Fault::ProtocolViolation))
        );
        let context = messages::encode(&StateResponse::Context(None));
        assert_eq!(page(&context, &root, &start), Err(Some(Fault::ProtocolViolation)));
        assert_eq!(page(&[0xff; 7], &root, &start), Err(Some(Fault::Undecodable)));
        // A peer without the state says so, and is not faulted.
        let without = messages::encode(&StateResponse::Range(None));
        assert_eq!(page(&without, &root, &start), Err(None));
    }
}
