//! The distributed storage network's piece retrieval, shared by the node and the farmer (spec 9).
//!
//! A piece is looked for in order: the caller's own store ([`LocalPieces`]: a node's database, a farm's
//! cache); then peers' caches by a walk towards the piece's key ([`walk`]: the DSN metric is the XOR of
//! the peer's key with the piece key, as 256-bit integers, and farmers cache the pieces nearest their
//! own key, so the nearest peers are the likeliest holders); then the nearest connected peers' plots;
//! and as a last resort the piece is rebuilt from any half of its segment, fetched the same way. Every piece is verified against its segment header before use, and a peer that
//! sends one that does not verify is banned (`Fault::InvalidPiece` is fatal).

use acre_consensus::hashing::{Blake3Hash, HashContext, hash};
use acre_consensus::pieces::Piece;
use acre_consensus::{PieceIndex, PiecePosition, ProtocolParams, SegmentHeader};

mod walk;

pub use walk::{WALK_QUERIES, cached_piece_answer};

use crate::error::Error;
use crate::handle::NetworkHandle;
use crate::messages::{self, PieceRequest, PieceResponse};
use crate::protocol::PeerId;
use crate::reputation::Fault;
use crate::requests::Protocol;

/// Connected peers whose plots are asked for one piece (after the walk through caches) before falling
/// back to reconstruction.
pub const PEERS_PER_PIECE: usize = 8;

/// Pieces of one segment fetched at once when gathering half of it.
pub const PARALLEL_PIECES: usize = 8;

/// Rounds of asking for a segment's missing pieces when gathering half of it.
const HALF_ROUNDS: usize = 2;

/// The DSN key of a piece: `H(piece_key_ctx, index LE u64)`.
pub fn piece_key(index: PieceIndex) -> Blake3Hash {
    hash(HashContext::PieceKey, &index.0.to_le_bytes())
}

/// The DSN key of a peer: `H(dsn_peer_ctx, peer id bytes)`.
pub fn peer_key(peer: &PeerId) -> Blake3Hash {
    hash(HashContext::DsnPeerKey, &peer.0.to_bytes())
}

/// The XOR distance of two keys, comparable as a 256-bit big-endian integer.
pub fn distance(a: &Blake3Hash, b: &Blake3Hash) -> [u8; 32] {
    std::array::from_fn(|index| a.0[index] ^ b.0[index])
}

/// `peers` sorted nearest first to `key`.
pub fn nearest_first(mut peers: Vec<PeerId>, key: &Blake3Hash) -> Vec<PeerId> {
    peers.sort_by_cached_key(|peer| distance(&peer_key(peer), key));
    peers
}

/// The pieces a process holds itself.
pub trait LocalPieces: Send + Sync {
    /// The stored bytes of piece `index`, if held (verified by the getter before use).
    fn local_piece(&self, index: PieceIndex) -> Option<Vec<u8>>;
}

/// Holds no piece (a getter that only asks the network).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLocalPieces;

impl LocalPieces for NoLocalPieces {
    fn local_piece(&self, _: PieceIndex) -> Option<Vec<u8>> {
        None
    }
}

/// Reads piece `index` from the local store. That is a file or database read, which may block: on a
/// multi-threaded runtime the worker hands its other tasks to the others for the duration.
fn read_local(local: &dyn LocalPieces, index: PieceIndex) -> Option<Vec<u8>> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| local.local_piece(index))
        }
        _ => local.local_piece(index),
    }
}

/// Where a piece came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The caller's own store.
    Local,
    /// This peer.
    Peer(PeerId),
    /// Rebuilt from half of its segment.
    Reconstructed,
}

/// Retrieves and verifies pieces over the network.
#[derive(Debug, Clone)]
pub struct PieceGetter {
    network: NetworkHandle,
    params: ProtocolParams,
}

impl PieceGetter {
    /// A getter on `network` for a chain with `params`.
    pub fn new(network: NetworkHandle, params: ProtocolParams) -> Self {
        Self { network, params }
    }

    /// Piece `index`, verified against `header` (its segment's), from wherever it is found first.
    pub async fn get(
        &self,
        index: PieceIndex,
        header: &SegmentHeader,
        local: &dyn LocalPieces,
    ) -> Result<(Piece, Source), Error> {
        if index.segment_index(&self.params) != header.segment_index {
            return Err(Error::Piece {
                index: index.0,
                reason: format!("the header given is segment {}'s", header.segment_index),
            });
        }
        let peers = self.peers(index).await;
        if let Some(found) = self.single(index, header, local, &peers).await {
            return Ok(found);
        }
        self.reconstruct(index, header, local, &peers)
            .await
            .map(|piece| (piece, Source::Reconstructed))
    }

    async fn peers(&self, index: PieceIndex) -> Vec<PeerId> {
        nearest_first(self.network.peer_ids().await, &piece_key(index))
    }

    /// The piece from the local store or one of `peers`, verified; `None` if nobody had a valid one.
    async fn single(
        &self,
        index: PieceIndex,
        header: &SegmentHeader,
        local: &dyn LocalPieces,
        peers: &[PeerId],
    ) -> Option<(Piece, Source)> {
        let position = index.position(&self.params);
        if let Some(bytes) = read_local(local, index) {
            match self.verify(bytes, header, position).await {
                Ok(piece) => return Some((piece, Source::Local)),
                Err(reason) => {
                    tracing::warn!(index = index.0, %reason, "a locally stored piece does not verify")
                }
            }
        }
        // Peers' caches (and nodes' stores) first, by a walk towards the piece's key: a cheap read. Only
        // then the nearest connected peers' plots, where a farmer decodes the record with a
        // proof-of-space table.
        if let Some((piece, peer)) = self.walk(index, header, position, peers).await {
            return Some((piece, Source::Peer(peer)));
        }
        for peer in peers.iter().take(PEERS_PER_PIECE) {
            if let Some(piece) = self
                .ask_peer(*peer, Protocol::Piece, index, header, position)
                .await
            {
                return Some((piece, Source::Peer(*peer)));
            }
        }
        None
    }

    /// Asks `peer` for the piece; a piece that does not verify bans the peer.
    async fn ask_peer(
        &self,
        peer: PeerId,
        protocol: Protocol,
        index: PieceIndex,
        header: &SegmentHeader,
        position: PiecePosition,
    ) -> Option<Piece> {
        let request = messages::encode(&PieceRequest { index: index.0 });
        let bytes = self.network.request(peer, protocol, request).await.ok()?;
        let response =
            match messages::decode::<PieceResponse>("piece response", &bytes, protocol.max_response()) {
                Ok(response) => response,
                Err(_) => {
                    let _ = self.network.report(peer, Fault::Undecodable).await;
                    return None;
                }
            };
        let piece_bytes = response.piece?;
        match self.verify(piece_bytes, header, position).await {
            Ok(piece) => Some(piece),
            Err(reason) => {
                tracing::warn!(%peer, index = index.0, %reason, "a peer sent an invalid piece");
                let _ = self.network.report(peer, Fault::InvalidPiece).await;
                None
            }
        }
    }

    /// Decodes and verifies a piece on a blocking thread (milliseconds of hashing for a mainnet piece:
    /// too long for an async worker).
    async fn verify(
        &self,
        bytes: Vec<u8>,
        header: &SegmentHeader,
        position: PiecePosition,
    ) -> Result<Piece, String> {
        let params = self.params.clone();
        let segment_root = header.segment_root;
        tokio::task::spawn_blocking(move || {
            let piece = Piece::decode(&params, &bytes).map_err(|error| error.to_string())?;
            piece
                .verify(&params, &segment_root, position)
                .map_err(|error| error.to_string())?;
            Ok(piece)
        })
        .await
        .map_err(|error| format!("the verifying task failed: {error}"))?
    }

    /// Any half of segment `header`'s pieces (its source count), each verified, by position (`None` where
    /// not fetched): enough to recover the segment. Fails if fewer can be found.
    pub async fn segment(
        &self,
        header: &SegmentHeader,
        local: &dyn LocalPieces,
    ) -> Result<Vec<Option<Piece>>, Error> {
        let peers = self.network.peer_ids().await;
        let (pieces, found) = self.half(header, local, &peers, None).await;
        let needed = self.params.source_records_per_segment as usize;
        if found < needed {
            return Err(Error::Piece {
                index: header.segment_index.piece_index(&self.params, PiecePosition(0)).0,
                reason: format!(
                    "only {found} of the {needed} pieces needed to recover segment {} were found",
                    header.segment_index
                ),
            });
        }
        Ok(pieces)
    }

    /// Fetches the segment's pieces, [`PARALLEL_PIECES`] at a time, until half are in hand (or none are
    /// left to try), passing over `skip`; returns them by position and how many were found.
    async fn half(
        &self,
        header: &SegmentHeader,
        local: &dyn LocalPieces,
        peers: &[PeerId],
        skip: Option<PiecePosition>,
    ) -> (Vec<Option<Piece>>, usize) {
        use futures::StreamExt;
        let total = self.params.pieces_per_segment() as usize;
        let needed = self.params.source_records_per_segment as usize;
        let mut pieces: Vec<Option<Piece>> = vec![None; total];
        let mut count = 0;
        // A busy peer answers "not here" rather than keep the asker waiting: a second round asks again
        // for what the first did not get.
        for _ in 0..HALF_ROUNDS {
            if count >= needed {
                break;
            }
            let positions: Vec<PiecePosition> = (0..total)
                .filter(|position| pieces[*position].is_none())
                .map(|position| PiecePosition(u16::try_from(position).expect("positions fit a u16")))
                .filter(|position| Some(*position) != skip)
                .collect();
            let found = futures::stream::iter(positions)
                .map(|position| async move {
                    let index = header.segment_index.piece_index(&self.params, position);
                    let peers = nearest_first(peers.to_vec(), &piece_key(index));
                    self.single(index, header, local, &peers)
                        .await
                        .map(|(piece, _)| (position, piece))
                })
                .buffer_unordered(PARALLEL_PIECES)
                .filter_map(|found| async move { found })
                .take(needed - count);
            let mut found = std::pin::pin!(found);
            while let Some((position, piece)) = found.next().await {
                pieces[usize::from(position.0)] = Some(piece);
                count += 1;
            }
        }
        (pieces, count)
    }

    /// Rebuilds the piece from any half of its segment's other pieces.
    async fn reconstruct(
        &self,
        index: PieceIndex,
        header: &SegmentHeader,
        local: &dyn LocalPieces,
        peers: &[PeerId],
    ) -> Result<Piece, Error> {
        let needed = self.params.source_records_per_segment as usize;
        let position = index.position(&self.params);
        let (pieces, found) = self.half(header, local, peers, Some(position)).await;
        if found < needed {
            return Err(Error::Piece {
                index: index.0,
                reason: format!(
                    "not found, and only {found} of the {needed} pieces of segment {} needed to rebuild it \
                     were found",
                    header.segment_index
                ),
            });
        }
        acre_storage::reconstruction::rebuild_piece(&self.params, header, &pieces, position).map_err(
            |error| Error::Piece {
                index: index.0,
                reason: format!("rebuilding it from its segment: {error}"),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_keys_differ_and_distance_is_symmetric_and_zero_on_self() {
        let a = piece_key(PieceIndex(1));
        let b = piece_key(PieceIndex(2));
        assert_ne!(a, b);
        assert_eq!(distance(&a, &b), distance(&b, &a));
        assert_eq!(distance(&a, &a), [0; 32]);
    }

    #[test]
    fn nearest_first_orders_by_xor_distance() {
        let peers: Vec<PeerId> = (1..=20u8)
            .map(|seed| crate::PeerKey::from_secret([seed; 32]).peer_id())
            .collect();
        let key = piece_key(PieceIndex(7));
        let sorted = nearest_first(peers.clone(), &key);
        assert_eq!(sorted.len(), peers.len());
        for pair in sorted.windows(2) {
            assert!(distance(&peer_key(&pair[0]), &key) <= distance(&peer_key(&pair[1]), &key));
        }
        // A peer's own key is nearest to itself.
        let own = peer_key(&peers[3]);
        assert_eq!(nearest_first(peers.clone(), &own)[0], peers[3]);
    }
}
