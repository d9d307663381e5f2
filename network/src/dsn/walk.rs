//! The walk towards a piece's key through peers' caches (spec 9).
//!
//! Every farmer caches the pieces nearest its own key, so the holders of a piece are the peers nearest
//! the piece's key, and there are no announcements to look up. A `cached-piece` request is answered with
//! the piece, or with the peers the responder knows nearest to the key; the asker goes on to the nearest
//! peer it has not asked yet, connected or just learned of, until one has the piece or
//! [`WALK_QUERIES`] requests were spent. Only peers nearer the key than the peer that named them are
//! taken (the metric is computed from the peer id, so a responder cannot claim closeness), at most
//! [`MAX_CLOSER_PEERS`] per answer, and each query has its own short timeout: a lying responder can send
//! the walk to peers that do not answer, but only a bounded number of times.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use acre_consensus::hashing::Blake3Hash;
use acre_consensus::pieces::Piece;
use acre_consensus::{PieceIndex, PiecePosition, SegmentHeader};

use super::{PieceGetter, distance, peer_key, piece_key};
use crate::handle::NetworkHandle;
use crate::messages::{
    self, CachedPieceResponse, MAX_CLOSER_PEERS, MAX_RECORD_ADDRESSES, PeerRecord, PieceRequest,
};
use crate::protocol::{Address, PeerId};
use crate::reputation::Fault;
use crate::requests::Protocol;

/// Most `cached-piece` requests one walk sends.
pub const WALK_QUERIES: usize = 12;

/// How long one step of a walk waits (dialling a peer learned from an answer included).
const STEP_TIMEOUT: Duration = Duration::from_secs(3);

/// One walk's bookkeeping: the candidates nearest first, and who was asked.
#[derive(Debug)]
pub(crate) struct Walk {
    key: Blake3Hash,
    candidates: BTreeMap<[u8; 32], PeerId>,
    asked: HashSet<PeerId>,
}

impl Walk {
    /// A walk towards `key` from the `connected` peers (`me` is never asked).
    pub(crate) fn new(key: Blake3Hash, me: PeerId, connected: &[PeerId]) -> Self {
        let mut walk = Self {
            key,
            candidates: BTreeMap::new(),
            asked: HashSet::from([me]),
        };
        for peer in connected {
            walk.candidates.insert(walk.distance(peer), *peer);
        }
        walk
    }

    fn distance(&self, peer: &PeerId) -> [u8; 32] {
        distance(&peer_key(peer), &self.key)
    }

    /// The nearest peer not asked yet, if the walk has requests left.
    pub(crate) fn next(&mut self) -> Option<PeerId> {
        while self.asked.len() <= WALK_QUERIES {
            let (_, peer) = self.candidates.pop_first()?;
            if self.asked.insert(peer) {
                return Some(peer);
            }
        }
        None
    }

    /// Takes the peers `from` named: those nearer the key than `from` and not asked yet, at most
    /// [`MAX_CLOSER_PEERS`]; returns them.
    pub(crate) fn learn(&mut self, from: &PeerId, named: impl IntoIterator<Item = PeerId>) -> Vec<PeerId> {
        let bound = self.distance(from);
        let mut taken = Vec::new();
        for peer in named.into_iter().take(MAX_CLOSER_PEERS) {
            let distance = self.distance(&peer);
            if distance < bound && !self.asked.contains(&peer) && !taken.contains(&peer) {
                self.candidates.insert(distance, peer);
                taken.push(peer);
            }
        }
        taken
    }
}

/// The encoded answer to a `cached-piece` request for `index`: `piece` if held, else the peers this
/// process knows nearest to the piece's key (`asker` left out).
pub async fn cached_piece_answer(
    network: &NetworkHandle,
    index: PieceIndex,
    piece: Option<Vec<u8>>,
    asker: PeerId,
) -> Vec<u8> {
    let closer = if piece.is_some() {
        Vec::new()
    } else {
        network
            .closest_known(piece_key(index), MAX_CLOSER_PEERS + 1)
            .await
            .into_iter()
            .filter(|(peer, _)| *peer != asker)
            .take(MAX_CLOSER_PEERS)
            .map(|(peer, addresses)| PeerRecord {
                peer: peer.0.to_bytes(),
                addresses: addresses
                    .into_iter()
                    .take(MAX_RECORD_ADDRESSES)
                    .map(|address| address.0.to_vec())
                    .collect(),
            })
            .collect()
    };
    messages::encode(&CachedPieceResponse { piece, closer })
}

/// What one step of a walk found.
enum Step {
    Piece(Piece),
    Closer(Vec<(PeerId, Vec<Address>)>),
    Nothing,
}

impl PieceGetter {
    /// Walks towards piece `index`'s key through peers' caches, from the `connected` peers; the piece
    /// (verified) and who had it.
    pub(super) async fn walk(
        &self,
        index: PieceIndex,
        header: &SegmentHeader,
        position: PiecePosition,
        connected: &[PeerId],
    ) -> Option<(Piece, PeerId)> {
        let mut walk = Walk::new(piece_key(index), self.network.peer_id(), connected);
        while let Some(peer) = walk.next() {
            let step = tokio::time::timeout(STEP_TIMEOUT, self.step(peer, index, header, position)).await;
            match step {
                Ok(Step::Piece(piece)) => return Some((piece, peer)),
                Ok(Step::Closer(named)) => {
                    let taken = walk.learn(&peer, named.iter().map(|(named, _)| *named));
                    for (named, addresses) in named {
                        if taken.contains(&named) && !addresses.is_empty() {
                            let _ = self.network.learn_addresses(named, addresses).await;
                        }
                    }
                }
                Ok(Step::Nothing) | Err(_) => {}
            }
        }
        None
    }

    /// Asks `peer` for the cached piece: the piece (verified; an invalid one bans the peer), or the
    /// peers it names.
    async fn step(
        &self,
        peer: PeerId,
        index: PieceIndex,
        header: &SegmentHeader,
        position: PiecePosition,
    ) -> Step {
        let request = messages::encode(&PieceRequest { index: index.0 });
        let Ok(bytes) = self.network.request(peer, Protocol::CachedPiece, request).await else {
            return Step::Nothing;
        };
        let response = match messages::decode::<CachedPieceResponse>(
            "cached-piece response",
            &bytes,
            Protocol::CachedPiece.max_response(),
        ) {
            Ok(response) if response.closer.len() <= MAX_CLOSER_PEERS => response,
            _ => {
                let _ = self.network.report(peer, Fault::Undecodable).await;
                return Step::Nothing;
            }
        };
        if let Some(bytes) = response.piece {
            return match self.verify(bytes, header, position).await {
                Ok(piece) => Step::Piece(piece),
                Err(reason) => {
                    tracing::warn!(%peer, index = index.0, %reason, "a peer sent an invalid piece");
                    let _ = self.network.report(peer, Fault::InvalidPiece).await;
                    Step::Nothing
                }
            };
        }
        let named = response
            .closer
            .into_iter()
            .filter_map(|record| {
                let named = libp2p::PeerId::from_bytes(&record.peer).ok()?;
                let addresses = record
                    .addresses
                    .into_iter()
                    .take(MAX_RECORD_ADDRESSES)
                    .filter_map(|bytes| libp2p::Multiaddr::try_from(bytes).ok())
                    .map(Address)
                    .collect();
                Some((PeerId(named), addresses))
            })
            .collect();
        Step::Closer(named)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(count: u8) -> Vec<PeerId> {
        (1..=count)
            .map(|seed| crate::PeerKey::from_secret([seed; 32]).peer_id())
            .collect()
    }

    #[test]
    fn a_walk_asks_nearest_first_never_twice_and_never_itself() {
        let all = peers(30);
        let key = piece_key(PieceIndex(11));
        let me = all[0];
        let mut walk = Walk::new(key, me, &all[..6]);
        let first = walk.next().expect("a candidate");
        let nearest = super::super::nearest_first(all[1..6].to_vec(), &key)[0];
        assert_eq!(first, nearest);
        // Named peers farther than the one naming them are not taken; nearer ones are, once.
        let named: Vec<PeerId> = all[6..].to_vec();
        let taken = walk.learn(&first, named.iter().copied().chain(named.iter().copied()));
        let bound = distance(&peer_key(&first), &key);
        assert!(taken.iter().all(|peer| distance(&peer_key(peer), &key) < bound));
        assert!(taken.len() <= MAX_CLOSER_PEERS);
        let mut seen = HashSet::from([me, first]);
        let mut last = [0u8; 32];
        while let Some(peer) = walk.next() {
            assert!(seen.insert(peer), "{peer} asked twice");
            // Learned peers are nearer than the first, so the order stays nearest first.
            let distance = distance(&peer_key(&peer), &key);
            assert!(distance >= last);
            last = distance;
        }
        assert!(walk.learn(&first, [me]).is_empty(), "itself is never a candidate");
    }

    #[test]
    fn a_walk_spends_at_most_its_queries_however_many_peers_it_learns() {
        let all = peers(60);
        let key = piece_key(PieceIndex(3));
        // Farthest first: each answer names peers nearer than everyone named before, so the walk
        // always has somewhere to go, and only its bound stops it.
        let mut by_distance = all[1..].to_vec();
        by_distance.sort_by_key(|peer| std::cmp::Reverse(distance(&peer_key(peer), &key)));
        let mut walk = Walk::new(key, all[0], &by_distance[..1]);
        let mut rest = by_distance[1..].chunks(MAX_CLOSER_PEERS);
        let mut asked = 0;
        while let Some(peer) = walk.next() {
            asked += 1;
            if let Some(named) = rest.next() {
                assert_eq!(walk.learn(&peer, named.iter().copied()).len(), named.len());
            }
        }
        assert_eq!(asked, WALK_QUERIES);
    }
}
