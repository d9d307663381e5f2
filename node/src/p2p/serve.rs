//! Answers peers' requests from the node's database, within each protocol's limits.
//!
//! Decoding is bounded by the protocol's request limit (the network refused anything larger before it
//! reached us); an undecodable request counts against its sender and gets no answer. Reads run on a
//! blocking thread.

use std::sync::Arc;

use acre_consensus::blocks::BlockHash;
use acre_consensus::{BlockNumber, PieceIndex};
use acre_network::messages::{
    self, BlockRangeRequest, BlockRangeResponse, BlockStart, MAX_BLOCKS_PER_RANGE, MAX_POT_RANGE,
    MAX_RANGE_BYTES, MAX_SEGMENT_HEADERS, MAX_STATE_ENTRIES, PieceRequest, PieceResponse, PotSlotProof,
    PotSlotsRequest, PotSlotsResponse, RawBlock, SegmentHeadersRequest, SegmentHeadersResponse, StateRange,
    StateRequest, StateResponse,
};
use acre_network::{Fault, InboundRequest, NetworkHandle, Protocol};
use acre_storage::db::tables::Pieces;

use crate::error::Error;
use crate::service::Shared;

/// Why a request gets no answer.
enum Refusal {
    /// The requester's fault.
    Fault(Fault),
    /// This node does not serve the protocol (a farmer's cache does), or failed to read.
    Unserved,
}

impl From<Error> for Refusal {
    fn from(error: Error) -> Self {
        tracing::warn!(%error, "reading the database for a peer failed");
        Self::Unserved
    }
}

/// Answers one request (or drops it, which fails it at the requester).
pub(super) async fn answer(shared: &Arc<Shared>, network: &NetworkHandle, request: InboundRequest) {
    let InboundRequest {
        peer,
        protocol,
        data,
        responder,
    } = request;
    if protocol == Protocol::CachedPiece {
        cached_piece(shared, network, peer, &data, responder).await;
        return;
    }
    let reader = Arc::clone(shared);
    let answer = tokio::task::spawn_blocking(move || respond(&reader, protocol, &data)).await;
    match answer {
        Ok(Ok(bytes)) => {
            let _ = network.respond(responder, bytes).await;
        }
        Ok(Err(Refusal::Fault(fault))) => {
            tracing::debug!(%peer, protocol = protocol.name(), reason = fault.reason(), "request refused");
            let _ = network.report(peer, fault).await;
        }
        Ok(Err(Refusal::Unserved)) | Err(_) => {}
    }
}

/// A `cached-piece` request: the stored piece, or the peers this node knows nearest to its key.
async fn cached_piece(
    shared: &Arc<Shared>,
    network: &NetworkHandle,
    peer: acre_network::PeerId,
    data: &[u8],
    responder: acre_network::Responder,
) {
    let Ok(request) =
        messages::decode::<PieceRequest>("piece request", data, Protocol::CachedPiece.max_request())
    else {
        let _ = network.report(peer, Fault::Undecodable).await;
        return;
    };
    let reader = Arc::clone(shared);
    let index = PieceIndex(request.index);
    let piece =
        tokio::task::spawn_blocking(move || reader.chain.db().read().ok()?.get::<Pieces>(&index).ok()?)
            .await
            .ok()
            .flatten();
    let answer = acre_network::dsn::cached_piece_answer(network, index, piece, peer).await;
    let _ = network.respond(responder, answer).await;
}

fn respond(shared: &Shared, protocol: Protocol, data: &[u8]) -> Result<Vec<u8>, Refusal> {
    let undecodable = |_| Refusal::Fault(Fault::Undecodable);
    match protocol {
        Protocol::BlockRange => {
            let request: BlockRangeRequest =
                messages::decode("block-range request", data, protocol.max_request()).map_err(undecodable)?;
            Ok(messages::encode(&block_range(shared, &request)?))
        }
        Protocol::SegmentHeaders => {
            let request: SegmentHeadersRequest =
                messages::decode("segment-headers request", data, protocol.max_request())
                    .map_err(undecodable)?;
            let segments = shared.chain.segments();
            let headers = match request {
                SegmentHeadersRequest::Indices(indices) => {
                    if indices.len() > MAX_SEGMENT_HEADERS {
                        return Err(Refusal::Fault(Fault::ProtocolViolation));
                    }
                    indices
                        .iter()
                        .filter_map(|index| segments.get(usize::try_from(*index).ok()?).copied())
                        .collect()
                }
                SegmentHeadersRequest::Last(count) => {
                    let count = usize::try_from(count)
                        .unwrap_or(usize::MAX)
                        .min(MAX_SEGMENT_HEADERS);
                    segments[segments.len().saturating_sub(count)..].to_vec()
                }
            };
            Ok(messages::encode(&SegmentHeadersResponse { headers }))
        }
        // The node's store is its plot and its cache (`cached-piece` is answered by `cached_piece`).
        Protocol::Piece | Protocol::CachedPiece => {
            let request: PieceRequest =
                messages::decode("piece request", data, protocol.max_request()).map_err(undecodable)?;
            let read = shared.chain.db().read().map_err(Error::from)?;
            let piece = read
                .get::<Pieces>(&PieceIndex(request.index))
                .map_err(Error::from)?;
            Ok(messages::encode(&PieceResponse { piece }))
        }
        Protocol::PotSlots => {
            let request: PotSlotsRequest =
                messages::decode("pot-slots request", data, protocol.max_request()).map_err(undecodable)?;
            let count = usize::try_from(request.count)
                .unwrap_or(usize::MAX)
                .min(MAX_POT_RANGE);
            let slots = shared
                .timekeeper
                .range(request.first, count)
                .into_iter()
                .map(|(slot, seed, checkpoints)| PotSlotProof {
                    slot,
                    seed,
                    checkpoints,
                })
                .collect();
            Ok(messages::encode(&PotSlotsResponse { slots }))
        }
        Protocol::State => {
            let request: StateRequest =
                messages::decode("state request", data, protocol.max_request()).map_err(undecodable)?;
            Ok(messages::encode(&state(shared, &request)?))
        }
    }
}

/// A block's consensus context, or a page of its state with the proof (snap sync).
fn state(shared: &Shared, request: &StateRequest) -> Result<StateResponse, Refusal> {
    Ok(match *request {
        StateRequest::Context(hash) => StateResponse::Context(
            shared
                .chain
                .block_context(&hash)?
                .map(|context| acre_consensus::codec::encode(&context)),
        ),
        StateRequest::Range {
            block,
            start,
            max_entries,
        } => {
            let max = max_entries.clamp(1, MAX_STATE_ENTRIES) as usize;
            StateResponse::Range(
                shared
                    .chain
                    .state_page(&block, &start, max)?
                    .map(|page| StateRange {
                        entries: page.accounts.iter().map(acre_consensus::codec::encode).collect(),
                        complete: page.complete,
                        proof: page.proof.to_items(),
                    }),
            )
        }
    })
}

/// The blocks a [`BlockRangeRequest`] asks for, up to [`MAX_BLOCKS_PER_RANGE`] and [`MAX_RANGE_BYTES`]
/// (one block is sent even if larger).
fn block_range(shared: &Shared, request: &BlockRangeRequest) -> Result<BlockRangeResponse, Refusal> {
    let (best, _) = shared.chain.best();
    let max = request.max_blocks.clamp(1, MAX_BLOCKS_PER_RANGE) as usize;
    let mut blocks: Vec<RawBlock> = Vec::new();
    let mut bytes = 0;
    let mut push = |raw: RawBlock| -> bool {
        if !blocks.is_empty() && bytes + raw.len() > MAX_RANGE_BYTES {
            return false;
        }
        bytes += raw.len();
        blocks.push(raw);
        blocks.len() < max
    };
    match request.start {
        BlockStart::Ascending(first) => {
            let mut number = first.0.max(1);
            while number <= best.number.0 {
                let Some(hash) = shared.chain.canonical_hash(BlockNumber(number))? else {
                    break;
                };
                let Some((header, body)) = shared.chain.block(&hash)? else {
                    break;
                };
                if !push(RawBlock::new(&header, &body)) {
                    break;
                }
                number += 1;
            }
        }
        BlockStart::Descending(hash) => {
            let mut next: BlockHash = hash;
            while let Some((header, body)) = shared.chain.block(&next)? {
                if header.unsealed.number.0 == 0 {
                    break;
                }
                next = header.unsealed.parent_hash;
                if !push(RawBlock::new(&header, &body)) {
                    break;
                }
            }
        }
    }
    Ok(BlockRangeResponse {
        best_number: best.number,
        best_hash: best.hash,
        blocks,
    })
}
