//! DSN sync: history rebuilt from the archived segments the network's farmers hold, for a node none of
//! whose peers has blocks (spec 9).
//!
//! 1. **The last segment header by majority.** Every peer is asked for its last segment header; one that
//!    a strict majority of those answering agree on (by hash) is the target. A lone liar among honest
//!    farmers cannot set it, and nothing is taken from a peer without a majority.
//! 2. **The hash chain backwards.** The headers between this node's own last segment and the target
//!    come from a peer that voted for it, and must chain by `prev_segment_header_hash` from the target
//!    down to this node's own last header (which its own archiver made), so every header is pinned by
//!    the majority's choice and by this node's genesis.
//! 3. **Segments to blocks.** For each segment holding blocks after this node's best, any half of its
//!    pieces come through the DSN getter (own store, peers' caches and plots, each piece verified against
//!    the header), the segment is recovered by erasure decoding, and the archiver's item stream gives
//!    back the blocks, joined across segment boundaries.
//! 4. **Ordinary import.** Each block goes through `Shared::import`, exactly as a gossiped or synced
//!    one: a history that somehow passed steps 1–3 but breaks any consensus rule stops here.
//!
//! Blocks come only up to the end of the archived history (confirmation depth below the tip when it was
//! archived); the rest comes by full sync once a peer with blocks appears.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};
use std::time::Instant;

use acre_consensus::blocks::{Body, Header, decode_archived_block};
use acre_consensus::{BlockNumber, SegmentHeader};
use acre_network::messages::{self, MAX_SEGMENT_HEADERS, SegmentHeadersRequest, SegmentHeadersResponse};
use acre_network::{Fault, PeerId, PeerInfo, Protocol};
use acre_storage::reconstruction::{BlockReconstructor, recover_segment};

use super::{P2p, StoredPieces};
use crate::error::ImportError;
use crate::service::Shared;

/// Peers asked for their last segment header.
const MAX_VOTERS: usize = 16;

/// Most new segment headers taken in one run (2^16 mainnet segments are 16 TiB of history); a claim of
/// more is cut to this, and the next run goes on from there.
const MAX_NEW_SEGMENTS: u64 = 1 << 16;

/// Why a run stopped short.
#[derive(Debug, thiserror::Error)]
pub(super) enum Stop {
    #[error("no majority of peers agrees on the last segment header")]
    NoMajority,
    #[error("no peer gave a valid chain of segment headers")]
    NoHeaders,
    #[error("segment {segment}: {reason}")]
    Segment { segment: u64, reason: String },
    #[error("block #{number} from segment {segment} was not imported: {error}")]
    Import {
        number: u64,
        segment: u64,
        error: ImportError,
    },
}

/// Runs DSN sync against `peers` (the connected ones, none with blocks); returns the blocks imported.
pub(super) async fn run(shared: &Arc<Shared>, p2p: &Arc<P2p>, peers: &[PeerInfo]) -> Result<u64, Stop> {
    let ours = shared.chain.segments();
    let Some(own_last) = ours.last().copied() else {
        return Ok(0);
    };
    let Some((target, voters)) = last_header_by_majority(p2p, peers).await? else {
        return Ok(0);
    };
    if target.segment_index.0 < ours.len() as u64 {
        // Nothing this node has not archived itself.
        return Ok(0);
    }
    let target_block = complete_through(&target);
    let best = shared.chain.best().0.number;
    if target_block <= best {
        return Ok(0);
    }
    let new = chained_headers(p2p, &voters, &own_last, &target).await?;
    let headers: Vec<SegmentHeader> = ours.iter().copied().chain(new).collect();
    tracing::info!(
        best = best.0,
        target = target_block.0,
        segments = headers.len(),
        "DSN sync: rebuilding history from archived segments (no peer has blocks)"
    );
    p2p.sync
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .start_run(target_block.0, best.0);
    shared.metrics.sync_target.set(target_block.0);
    let started = Instant::now();
    let first = headers
        .iter()
        .position(|header| header.last_archived_block.number > best)
        .unwrap_or(headers.len());
    let mut reconstructor = BlockReconstructor::new();
    let mut imported = 0;
    for header in &headers[first..] {
        let segment = header.segment_index.0;
        for (number, bytes) in rebuild(shared, p2p, &mut reconstructor, header).await? {
            if number <= shared.chain.best().0.number {
                continue;
            }
            let (block_header, body) = decode_archived_block(&bytes).map_err(|error| Stop::Segment {
                segment,
                reason: format!("block #{}: {error}", number.0),
            })?;
            if import(shared, block_header, body)
                .await
                .map_err(|error| Stop::Import {
                    number: number.0,
                    segment,
                    error,
                })?
            {
                imported += 1;
            }
        }
        tracing::info!(
            segment,
            best = shared.chain.best().0.number.0,
            target = target_block.0,
            "DSN sync: segment imported"
        );
    }
    tracing::info!(
        blocks = imported,
        seconds = started.elapsed().as_secs_f64(),
        best = shared.chain.best().0.number.0,
        "DSN sync done"
    );
    Ok(imported)
}

/// The blocks segment `header` completes (after those `reconstructor` saw), its pieces fetched through
/// the DSN getter (each verified against the header) and the segment recovered from any half of them.
pub(super) async fn rebuild(
    shared: &Arc<Shared>,
    p2p: &P2p,
    reconstructor: &mut BlockReconstructor,
    header: &SegmentHeader,
) -> Result<Vec<(BlockNumber, Vec<u8>)>, Stop> {
    let segment = header.segment_index.0;
    let failed = |reason: String| Stop::Segment { segment, reason };
    let pieces = p2p
        .pieces
        .segment(header, &StoredPieces(shared))
        .await
        .map_err(|error| failed(error.to_string()))?;
    let params = shared.chain.params().clone();
    let header_copy = *header;
    let recovered = tokio::task::spawn_blocking(move || recover_segment(&params, &header_copy, &pieces))
        .await
        .map_err(|error| failed(format!("the recovering task failed: {error}")))?
        .map_err(|error| failed(error.to_string()))?;
    reconstructor
        .add_segment(header, &recovered.segment_bytes())
        .map_err(|error| failed(error.to_string()))
}

/// Imports a block rebuilt from archived history through the ordinary pipeline; whether it was new
/// (counted as synced).
pub(super) async fn import(shared: &Arc<Shared>, header: Header, body: Body) -> Result<bool, ImportError> {
    match shared.import(header, body).await {
        Ok(_) => {
            shared.metrics.blocks_synced.inc();
            Ok(true)
        }
        Err(ImportError::AlreadyKnown(_)) => Ok(false),
        Err(error) => Err(error),
    }
}

/// The last block `header`'s segment completes (a block whose tail is in the next segment is not).
pub(super) fn complete_through(header: &SegmentHeader) -> BlockNumber {
    let last = header.last_archived_block;
    if last.is_complete() {
        last.number
    } else {
        BlockNumber(last.number.0.saturating_sub(1))
    }
}

/// Asks up to [`MAX_VOTERS`] peers for their last segment header; the header a strict majority of those
/// answering agree on, with the peers that voted for it. `None` if nobody answered.
pub(super) async fn last_header_by_majority(
    p2p: &P2p,
    peers: &[PeerInfo],
) -> Result<Option<(SegmentHeader, Vec<PeerId>)>, Stop> {
    let mut answers = Vec::new();
    for peer in peers.iter().take(MAX_VOTERS) {
        let Some(mut headers) = ask(p2p, peer.peer, SegmentHeadersRequest::Last(1)).await else {
            continue;
        };
        if headers.len() > 1 {
            let _ = p2p.handle.report(peer.peer, Fault::ProtocolViolation).await;
            continue;
        }
        if let Some(header) = headers.pop() {
            answers.push((peer.peer, header));
        }
    }
    majority(answers)
}

/// The header a strict majority of `answers` agree on (by hash), with the peers that gave it; `None`
/// without answers.
fn majority(answers: Vec<(PeerId, SegmentHeader)>) -> Result<Option<(SegmentHeader, Vec<PeerId>)>, Stop> {
    if answers.is_empty() {
        return Ok(None);
    }
    let answered = answers.len();
    let mut votes: HashMap<acre_consensus::Blake3Hash, (SegmentHeader, Vec<PeerId>)> = HashMap::new();
    for (peer, header) in answers {
        votes
            .entry(header.hash())
            .or_insert_with(|| (header, Vec::new()))
            .1
            .push(peer);
    }
    votes
        .into_values()
        .find(|(_, voters)| voters.len() * 2 > answered)
        .map(Some)
        .ok_or(Stop::NoMajority)
}

/// Whether `headers` (those after `own_last`, in order) chain by hash from `own_last` and end at
/// `target`, or, when the claim was `cut` short, simply chain from `own_last`.
fn chains(headers: &[SegmentHeader], own_last: &SegmentHeader, target: &SegmentHeader, cut: bool) -> bool {
    headers.last().is_some_and(|last| cut || last == target)
        && headers
            .iter()
            .zip(std::iter::once(own_last).chain(headers))
            .all(|(later, earlier)| later.follows(earlier))
}

/// The headers after `own_last` up to `target`, from one of `voters`, checked to chain from `target`
/// down to `own_last`.
pub(super) async fn chained_headers(
    p2p: &P2p,
    voters: &[PeerId],
    own_last: &SegmentHeader,
    target: &SegmentHeader,
) -> Result<Vec<SegmentHeader>, Stop> {
    let from = own_last.segment_index.0 + 1;
    let to = target
        .segment_index
        .0
        .min(from.saturating_add(MAX_NEW_SEGMENTS - 1));
    'voters: for voter in voters {
        let mut headers = Vec::new();
        let mut next = from;
        while next <= to {
            let end = to.min(next + MAX_SEGMENT_HEADERS as u64 - 1);
            let indices: Vec<u64> = (next..=end).collect();
            let Some(batch) = ask(p2p, *voter, SegmentHeadersRequest::Indices(indices)).await else {
                continue 'voters;
            };
            if batch.len() as u64 != end - next + 1
                || batch
                    .iter()
                    .zip(next..)
                    .any(|(header, index)| header.segment_index.0 != index)
            {
                let _ = p2p.handle.report(*voter, Fault::ProtocolViolation).await;
                continue 'voters;
            }
            headers.extend(batch);
            next = end + 1;
        }
        // Pinned at both ends: the majority's target and our own last header.
        let chained = chains(&headers, own_last, target, to < target.segment_index.0);
        if chained {
            return Ok(headers);
        }
        tracing::warn!(peer = %voter, "segment headers that do not chain to ours");
        let _ = p2p.handle.report(*voter, Fault::ProtocolViolation).await;
    }
    Err(Stop::NoHeaders)
}

async fn ask(p2p: &P2p, peer: PeerId, request: SegmentHeadersRequest) -> Option<Vec<SegmentHeader>> {
    let bytes = p2p
        .handle
        .request(peer, Protocol::SegmentHeaders, messages::encode(&request))
        .await
        .ok()?;
    match messages::decode::<SegmentHeadersResponse>(
        "segment-headers response",
        &bytes,
        Protocol::SegmentHeaders.max_response(),
    ) {
        Ok(response) if response.headers.len() <= MAX_SEGMENT_HEADERS => Some(response.headers),
        _ => {
            let _ = p2p.handle.report(peer, Fault::Undecodable).await;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use acre_consensus::{Blake3Hash, LastArchivedBlock, SegmentIndex, SegmentRoot};
    use acre_network::PeerKey;

    use super::*;

    /// Segment headers 0..count, chained.
    fn history(count: u64) -> Vec<SegmentHeader> {
        let mut headers: Vec<SegmentHeader> = Vec::new();
        for index in 0..count {
            headers.push(SegmentHeader {
                version: SegmentHeader::VERSION,
                segment_index: SegmentIndex(index),
                segment_root: SegmentRoot(Blake3Hash([index as u8; 32])),
                prev_segment_header_hash: headers.last().map_or(Blake3Hash::ZERO, SegmentHeader::hash),
                last_archived_block: LastArchivedBlock {
                    number: BlockNumber(index * 10 + 9),
                    archived_progress: 0,
                },
            });
        }
        headers
    }

    fn peers(count: usize) -> Vec<PeerId> {
        (0..count).map(|_| PeerKey::generate().peer_id()).collect()
    }

    #[test]
    fn a_lying_minority_cannot_set_the_target_and_a_split_vote_sets_none() {
        let honest = history(5);
        let mut forged = honest[4];
        forged.segment_root = SegmentRoot(Blake3Hash([0xee; 32]));
        let ids = peers(5);
        let answers = |liars: usize| -> Vec<(PeerId, SegmentHeader)> {
            ids.iter()
                .enumerate()
                .map(|(i, peer)| (*peer, if i < liars { forged } else { honest[4] }))
                .collect()
        };
        let (target, voters) = majority(answers(2)).expect("a majority").expect("answers");
        assert_eq!(target, honest[4]);
        assert_eq!(voters, ids[2..]);
        // A liar's majority would be a majority: the network's honest farmers must outnumber them.
        assert_eq!(
            majority(answers(3)).expect("a majority").expect("answers").0,
            forged
        );
        // Two against two (one silent) is no majority: nothing is taken.
        let split: Vec<_> = answers(2).into_iter().take(4).collect();
        assert!(matches!(majority(split), Err(Stop::NoMajority)));
        assert!(majority(Vec::new()).expect("no answers").is_none());
    }

    #[test]
    fn only_headers_chaining_from_our_own_to_the_target_are_taken() {
        let headers = history(6);
        let (own, new) = (&headers[1], &headers[2..]);
        let target = &headers[5];
        assert!(chains(new, own, target, false));
        // Ending before the target is only fine when the claim was cut short.
        assert!(!chains(&new[..2], own, target, false));
        assert!(chains(&new[..2], own, target, true));
        assert!(!chains(&[], own, target, true));
        // A header in the middle swapped for one of another history breaks the chain.
        let mut forged = new.to_vec();
        forged[1].segment_root = SegmentRoot(Blake3Hash([0xee; 32]));
        assert!(!chains(&forged, own, target, false));
        // Re-chained after the forgery, it no longer ends at the majority's target.
        let mut rechained = forged.clone();
        for i in 2..rechained.len() {
            rechained[i].prev_segment_header_hash = rechained[i - 1].hash();
        }
        assert!(!chains(&rechained, own, target, false));
        // The right headers from the wrong start (another node's own last header) do not chain either.
        assert!(!chains(new, &headers[0], target, false));
        // Nor do they with an index skipped.
        let skipped: Vec<_> = [new[0], new[2], new[3]].into();
        assert!(!chains(&skipped, own, target, false));
    }
}
