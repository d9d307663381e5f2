//! Pieces from the node, fetched for one sector up front.
//!
//! Plotting is CPU-bound and runs on a blocking rayon pool, while fetching is network-bound and async, so
//! the two are split: [`fetch_sector_pieces`] downloads and verifies every piece a sector will need, and
//! the resulting [`NodePieceSource`] serves them from memory to [`crate::plotting::plot_sector`]. A piece
//! that fails to decode or verify is logged and fetched again; a node that keeps sending bad pieces fails
//! the sector, which the plotter retries later.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use acre_consensus::sectors::SectorId;
use acre_consensus::{
    HistorySize, Piece, PieceIndex, PieceOffset, ProtocolParams, SegmentIndex, SegmentRoot,
};
use rayon::prelude::*;
use tokio::task::JoinSet;
use tracing::warn;

use crate::daemon::connection::Node;
use crate::daemon::dsn::Dsn;
use crate::daemon::state::ChainView;
use crate::error::Error;
use crate::piece_source::PieceSource;

/// Requests in flight at once while fetching a sector's pieces.
const CONCURRENT_REQUESTS: usize = 16;
/// Rounds of refetching pieces that failed verification before the sector is given up.
const FETCH_ROUNDS: usize = 3;

/// The pieces of one sector, verified, with the roots they verified against.
#[derive(Debug, Clone, Default)]
pub struct NodePieceSource {
    pieces: HashMap<PieceIndex, Piece>,
    roots: HashMap<SegmentIndex, SegmentRoot>,
}

impl PieceSource for NodePieceSource {
    fn piece(&self, index: PieceIndex) -> Result<Piece, Error> {
        self.pieces
            .get(&index)
            .cloned()
            .ok_or(Error::PieceUnavailable(index))
    }

    fn segment_root(&self, index: SegmentIndex) -> Option<SegmentRoot> {
        self.roots.get(&index).copied()
    }
}

/// The distinct pieces sector `sector_id` plotted at `history_size` holds.
pub fn sector_piece_indices(
    params: &ProtocolParams,
    sector_id: &SectorId,
    history_size: HistorySize,
    pieces: u16,
) -> BTreeSet<PieceIndex> {
    (0..pieces)
        .map(|offset| sector_id.piece_index(params, PieceOffset(offset), history_size))
        .collect()
}

/// Fetches and verifies every piece sector `sector_id` needs at `history_size`.
pub async fn fetch_sector_pieces(
    node: &Node,
    dsn: Option<&Arc<Dsn>>,
    params: &ProtocolParams,
    chain: &ChainView,
    sector_id: &SectorId,
    history_size: HistorySize,
    pieces: u16,
) -> Result<NodePieceSource, Error> {
    let mut source = NodePieceSource::default();
    let mut missing = sector_piece_indices(params, sector_id, history_size, pieces);
    for index in &missing {
        let segment = index.segment_index(params);
        let root = chain.root(segment).ok_or(Error::UnknownSegment(segment))?;
        source.roots.insert(segment, root);
    }
    for round in 1..=FETCH_ROUNDS {
        let fetched = fetch_all(node, dsn, params, chain, &missing).await?;
        let roots = source.roots.clone();
        let params_for_check = params.clone();
        // Verification hashes whole records: off the async executor.
        let checked = tokio::task::spawn_blocking(move || {
            fetched
                .into_par_iter()
                .map(|(index, result)| {
                    let verdict = result.and_then(|piece| {
                        let segment = index.segment_index(&params_for_check);
                        let root = roots.get(&segment).ok_or(Error::UnknownSegment(segment))?;
                        acre_storage::verify_piece(
                            &params_for_check,
                            &piece,
                            root,
                            index.position(&params_for_check),
                        )
                        .map(|()| piece)
                        .map_err(|reason| Error::InvalidPiece { index, reason })
                    });
                    (index, verdict)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|error| Error::Task(error.to_string()))?;
        let mut last_error = None;
        for (index, verdict) in checked {
            match verdict {
                Ok(piece) => {
                    missing.remove(&index);
                    source.pieces.insert(index, piece);
                }
                Err(error @ (Error::InvalidPiece { .. } | Error::BadNodeData { .. })) => {
                    warn!(target: "acre::plotting", piece = index.0, round, %error, "bad piece from the node; fetching it again");
                    last_error = Some(error);
                }
                Err(other) => return Err(other),
            }
        }
        if missing.is_empty() {
            return Ok(source);
        }
        if round == FETCH_ROUNDS
            && let Some(error) = last_error
        {
            return Err(error);
        }
    }
    Err(Error::PieceUnavailable(
        missing.first().copied().unwrap_or(PieceIndex(0)),
    ))
}

/// Fetches `indices` with bounded concurrency; per-piece decoding failures are returned per piece, while
/// connection failures fail the whole fetch. A piece the node lacks comes from the DSN, if the farmer is
/// on it.
async fn fetch_all(
    node: &Node,
    dsn: Option<&Arc<Dsn>>,
    params: &ProtocolParams,
    chain: &ChainView,
    indices: &BTreeSet<PieceIndex>,
) -> Result<Vec<(PieceIndex, Result<Piece, Error>)>, Error> {
    let mut results = Vec::with_capacity(indices.len());
    let mut pending = indices.iter().copied();
    let mut tasks = JoinSet::new();
    loop {
        while tasks.len() < CONCURRENT_REQUESTS
            && let Some(index) = pending.next()
        {
            let node = node.clone();
            let params = params.clone();
            let segment = index.segment_index(&params);
            let dsn = dsn.cloned().zip(chain.header(segment).copied());
            tasks.spawn(async move {
                let mut result = node.piece(&params, index).await;
                if let (Err(Error::PieceUnavailable(_)), Some((dsn, header))) = (&result, dsn) {
                    result = match dsn.piece(index, &header).await {
                        Ok((piece, source)) => {
                            tracing::debug!(target: "acre::plotting", piece = index.0, ?source, "piece from the DSN");
                            Ok(piece)
                        }
                        Err(error) => {
                            warn!(target: "acre::plotting", piece = index.0, %error, "the DSN does not have a piece the node lacks");
                            Err(Error::PieceUnavailable(index))
                        }
                    };
                }
                (index, result)
            });
        }
        let Some(joined) = tasks.join_next().await else {
            return Ok(results);
        };
        let (index, result) = joined.map_err(|error| Error::Task(error.to_string()))?;
        match result {
            Err(error @ (Error::Rpc(_) | Error::PieceUnavailable(_))) => return Err(error),
            other => results.push((index, other)),
        }
    }
}
