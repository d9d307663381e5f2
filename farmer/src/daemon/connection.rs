//! The node connection: a WebSocket JSON-RPC client with typed, verified accessors.
//!
//! Everything the node sends is untrusted: encodings are decoded with the consensus crate's bounded
//! decoders and reported as [`Error::BadNodeData`], never unwrapped. A [`Node`] is cheap to clone; when
//! its WebSocket drops every call fails with [`Error::Rpc`] and the daemon replaces it with a new one.

use std::sync::Arc;
use std::time::Duration;

use acre_consensus::{Piece, PieceIndex, ProtocolParams, SegmentHeader, SegmentIndex};
use acre_rpc_api::{BlockSeal, FarmerApiClient, FarmerInfo, HexBytes, SolutionSubmission};
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};

use crate::error::Error;

/// Largest number of segment headers asked for in one request (the node serves at most 1024).
pub const HEADERS_PER_REQUEST: u64 = 1000;

/// A connection to a node's farmer RPC.
#[derive(Debug, Clone)]
pub struct Node {
    client: Arc<WsClient>,
}

impl Node {
    /// Connects to `url` (`ws://host:port`), failing after a short timeout.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let client = WsClientBuilder::default()
            .connection_timeout(Duration::from_secs(10))
            .request_timeout(Duration::from_secs(60))
            // A mainnet piece is ~1 MiB of bytes, ~2 MiB of hex.
            .max_response_size(16 << 20)
            .build(url)
            .await?;
        Ok(Self {
            client: Arc::new(client),
        })
    }

    /// The underlying client (for subscriptions).
    pub fn client(&self) -> &WsClient {
        &self.client
    }

    /// Whether the WebSocket is still open.
    pub fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    /// The chain's identity, parameters and history size.
    pub async fn info(&self) -> Result<FarmerInfo, Error> {
        Ok(self.client.info().await?)
    }

    /// The first at most [`HEADERS_PER_REQUEST`] segment headers of `from..to`, decoded and checked to be
    /// the ones asked for; fails if the node lacks any of them. Callers loop, applying each batch before
    /// asking for the next, so a node claiming a long history never makes the farmer buffer it whole.
    pub async fn segment_headers(&self, from: u64, to: u64) -> Result<Vec<SegmentHeader>, Error> {
        let end = to.min(from.saturating_add(HEADERS_PER_REQUEST));
        if end <= from {
            return Ok(Vec::new());
        }
        let encoded = self.client.segment_headers((from..end).collect()).await?;
        if encoded.len() as u64 != end - from {
            return Err(Error::BadNodeData {
                what: "segment header list",
                reason: format!("asked for {} headers, got {}", end - from, encoded.len()),
            });
        }
        let mut headers = Vec::with_capacity(encoded.len());
        for (index, bytes) in (from..end).zip(encoded) {
            let bytes = bytes.ok_or(Error::UnknownSegment(SegmentIndex(index)))?;
            let header = decode_segment_header(&bytes)?;
            if header.segment_index != SegmentIndex(index) {
                return Err(Error::BadNodeData {
                    what: "segment header",
                    reason: format!("asked for segment {index}, got {}", header.segment_index),
                });
            }
            headers.push(header);
        }
        Ok(headers)
    }

    /// The piece at `index`, decoded (not yet verified); `Err(PieceUnavailable)` if the node lacks it.
    pub async fn piece(&self, params: &ProtocolParams, index: PieceIndex) -> Result<Piece, Error> {
        let bytes = self
            .client
            .piece(index.0)
            .await?
            .ok_or(Error::PieceUnavailable(index))?;
        Piece::decode(params, &bytes.0).map_err(|error| Error::BadNodeData {
            what: "piece",
            reason: format!("piece {index}: {error}"),
        })
    }

    /// Submits a solution for `slot`.
    pub async fn submit_solution(&self, slot: u64, solution: Vec<u8>) -> Result<(), Error> {
        Ok(self
            .client
            .submit_solution(SolutionSubmission {
                slot,
                solution: HexBytes(solution),
            })
            .await?)
    }

    /// Submits a signed vote (its canonical encoding).
    pub async fn submit_vote(&self, vote: Vec<u8>) -> Result<(), Error> {
        Ok(self
            .client
            .submit_vote(acre_rpc_api::VoteSubmission { vote: HexBytes(vote) })
            .await?)
    }

    /// Reports the farms' status (for the node's dashboard).
    pub async fn report_status(&self, status: acre_rpc_api::FarmerStatus) -> Result<(), Error> {
        Ok(self.client.report_status(status).await?)
    }

    /// Submits a block seal.
    pub async fn submit_seal(&self, seal: BlockSeal) -> Result<(), Error> {
        Ok(self.client.submit_block_seal(seal).await?)
    }
}

/// Decodes a segment header sent by the node.
pub fn decode_segment_header(bytes: &HexBytes) -> Result<SegmentHeader, Error> {
    SegmentHeader::decode(&bytes.0).map_err(|error| Error::BadNodeData {
        what: "segment header",
        reason: error.to_string(),
    })
}
