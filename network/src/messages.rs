//! What peers say to each other: the borsh messages of the gossip topics and the request-response
//! protocols (spec 9).
//!
//! Blocks travel as their canonical header and body bytes, decoded by the consensus crate's own bounded
//! decoders ([`Header::decode`], [`Body::decode`]), so a block from a peer meets exactly the checks a
//! block from RPC does. Every message here is decoded with [`decode`], which refuses anything longer than
//! the limit the caller gives before parsing, and refuses trailing bytes.

use acre_consensus::blocks::{BlockHash, Body, Header};
use acre_consensus::codec;
use acre_consensus::pot::{PotCheckpoints, PotSeed};
use acre_consensus::state_tree::WitnessItem;
use acre_consensus::{BlockNumber, SegmentHeader, SlotNumber};
use borsh::{BorshDeserialize, BorshSerialize};

use crate::error::Error;

/// Most blocks one block-range response carries.
pub const MAX_BLOCKS_PER_RANGE: u32 = 128;

/// Most block bytes one block-range response carries (one larger block is still sent alone).
pub const MAX_RANGE_BYTES: usize = 8 << 20;

/// Most slots one proof-of-time gossip message carries: the newest slot and those before it, so a
/// follower that missed a message (or just joined) catches up from the next one.
pub const MAX_POT_SLOTS: usize = 16;

/// Most slots one `pot-slots` response carries: a follower further behind asks again from where the
/// answer ended.
pub const MAX_POT_RANGE: usize = 256;

/// Most segment headers one request asks for (spec 9).
pub const MAX_SEGMENT_HEADERS: usize = 1000;

/// A block as canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct RawBlock {
    /// The header's canonical encoding.
    pub header: Vec<u8>,
    /// The body's canonical encoding.
    pub body: Vec<u8>,
}

impl RawBlock {
    /// Encodes a block.
    pub fn new(header: &Header, body: &Body) -> Self {
        Self {
            header: header.encode(),
            body: body.encode(),
        }
    }

    /// Decodes the header and body with the consensus crate's bounded decoders.
    pub fn decode(&self) -> Result<(Header, Body), Error> {
        let header = Header::decode(&self.header).map_err(|error| Error::Decode(error.to_string()))?;
        let body = Body::decode(&self.body).map_err(|error| Error::Decode(error.to_string()))?;
        Ok((header, body))
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.header.len() + self.body.len()
    }

    /// Whether it has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a block range starts and which way it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum BlockStart {
    /// The responder's best-chain blocks from this number upwards.
    Ascending(BlockNumber),
    /// The block with this hash and its ancestors, newest first (to fetch the unknown branch under a
    /// gossiped block).
    Descending(BlockHash),
}

/// A request for blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BlockRangeRequest {
    /// Where to start.
    pub start: BlockStart,
    /// How many blocks at most (the responder caps it at [`MAX_BLOCKS_PER_RANGE`]).
    pub max_blocks: u32,
}

/// The answer to a [`BlockRangeRequest`], with the responder's best block (the sync target).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BlockRangeResponse {
    /// The responder's best block number.
    pub best_number: BlockNumber,
    /// The responder's best block hash.
    pub best_hash: BlockHash,
    /// The blocks, in the requested order.
    pub blocks: Vec<RawBlock>,
}

/// One slot's proof of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PotSlotProof {
    /// The slot.
    pub slot: SlotNumber,
    /// Its seed.
    pub seed: PotSeed,
    /// Its checkpoints.
    pub checkpoints: PotCheckpoints,
}

/// The `pot` topic's message: consecutive slots, oldest first, ending with the newest proved.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PotGossip {
    /// At most [`MAX_POT_SLOTS`] consecutive slots.
    pub slots: Vec<PotSlotProof>,
}

impl PotGossip {
    /// The largest encoding of a [`PotGossip`].
    pub const MAX_SIZE: usize = 4 + MAX_POT_SLOTS * (8 + 16 + 16 * 8);

    /// Checks the shape (count, consecutive slots) before any proof is looked at.
    pub fn check_shape(&self) -> Result<(), Error> {
        if self.slots.is_empty() {
            return Err(Error::Decode(format!(
                "a proof-of-time message carries 1 to {MAX_POT_SLOTS} slots, not 0"
            )));
        }
        check_consecutive(&self.slots, MAX_POT_SLOTS)
    }
}

/// Fails unless `slots` are at most `max` consecutive slots.
fn check_consecutive(slots: &[PotSlotProof], max: usize) -> Result<(), Error> {
    if slots.len() > max {
        return Err(Error::Decode(format!(
            "a proof-of-time message carries 1 to {max} slots, not {}",
            slots.len()
        )));
    }
    let consecutive = slots
        .windows(2)
        .all(|pair| pair[0].slot.0.checked_add(1) == Some(pair[1].slot.0));
    if !consecutive {
        return Err(Error::Decode("proof-of-time slots are not consecutive".into()));
    }
    Ok(())
}

/// A `pot-slots` request: the proof of time of up to `count` slots from `first` on, for a follower that
/// joined late or missed gossip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PotSlotsRequest {
    /// The first slot wanted.
    pub first: SlotNumber,
    /// How many (the responder sends at most [`MAX_POT_RANGE`]).
    pub count: u32,
}

/// A `pot-slots` response: consecutive slots from the requested first one (fewer than asked, or none,
/// if the responder does not hold them).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PotSlotsResponse {
    /// At most [`MAX_POT_RANGE`] consecutive slots.
    pub slots: Vec<PotSlotProof>,
}

impl PotSlotsResponse {
    /// The largest encoding of a [`PotSlotsResponse`].
    pub const MAX_SIZE: usize = 4 + MAX_POT_RANGE * (8 + 16 + 16 * 8);

    /// Checks the response answers `request`: consecutive slots from its first, no more than it asked
    /// for or [`MAX_POT_RANGE`] (an empty answer is allowed: the responder does not hold them).
    pub fn check_answers(&self, request: &PotSlotsRequest) -> Result<(), Error> {
        let max = MAX_POT_RANGE.min(usize::try_from(request.count).unwrap_or(usize::MAX));
        check_consecutive(&self.slots, max)?;
        match self.slots.first() {
            Some(first) if first.slot != request.first => Err(Error::Decode(format!(
                "proof-of-time slots start at {}, not the requested {}",
                first.slot, request.first
            ))),
            _ => Ok(()),
        }
    }
}

/// A request for segment headers.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum SegmentHeadersRequest {
    /// These indices (at most [`MAX_SEGMENT_HEADERS`]).
    Indices(Vec<u64>),
    /// The last this many (at most [`MAX_SEGMENT_HEADERS`]).
    Last(u32),
}

/// The answer to a [`SegmentHeadersRequest`]: the headers the responder has, in index order.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SegmentHeadersResponse {
    /// The headers.
    pub headers: Vec<SegmentHeader>,
}

/// A request for a piece by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PieceRequest {
    /// The piece's index.
    pub index: u64,
}

/// The answer to a [`PieceRequest`]: the piece's bytes, if the responder has it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PieceResponse {
    /// The piece.
    pub piece: Option<Vec<u8>>,
}

/// Most peers a `cached-piece` answer names as nearer the piece's key.
pub const MAX_CLOSER_PEERS: usize = 8;

/// Most addresses given for one peer named in a `cached-piece` answer.
pub const MAX_RECORD_ADDRESSES: usize = 4;

/// A peer and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PeerRecord {
    /// Its peer id's bytes.
    pub peer: Vec<u8>,
    /// Its listen addresses' bytes (at most [`MAX_RECORD_ADDRESSES`]).
    pub addresses: Vec<Vec<u8>>,
}

/// The answer to a `cached-piece` request: the piece from the responder's cache, or else the peers it
/// knows nearest to the piece's key (at most [`MAX_CLOSER_PEERS`]), where the asker's walk goes next.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct CachedPieceResponse {
    /// The piece.
    pub piece: Option<Vec<u8>>,
    /// Peers nearer the piece's key, when the piece is not here.
    pub closer: Vec<PeerRecord>,
}

/// Most state entries one `state` range response carries (about 130 bytes each with its share of the
/// proof, so a full answer is a few hundred kilobytes).
pub const MAX_STATE_ENTRIES: u32 = 2048;

/// Most bytes one state entry's value takes (an account with its address is 56).
pub const MAX_STATE_VALUE: usize = 256;

/// A `state` request, for snap sync: the consensus context of a block, or entries of its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum StateRequest {
    /// The block's consensus context (what importing its children needs besides its state).
    Context(BlockHash),
    /// The block's state entries with keys from `start` on, in key order.
    Range {
        /// The block whose state is asked for.
        block: BlockHash,
        /// The first key wanted.
        start: [u8; 32],
        /// How many entries at most (the responder sends at most [`MAX_STATE_ENTRIES`]).
        max_entries: u32,
    },
}

/// Entries of a block's state with the proof that they are all the entries of their key range.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct StateRange {
    /// Each entry's value (the node's own encoding, from which it derives the key), in key order.
    pub entries: Vec<Vec<u8>>,
    /// No entry follows the last one: the range runs to the end of the key space.
    pub complete: bool,
    /// The witness over the range, in pre-order (`Witness::from_items`), against the block's state root.
    pub proof: Vec<WitnessItem>,
}

/// The answer to a [`StateRequest`] (`None`: the responder does not hold that block's state).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum StateResponse {
    /// The encoded consensus context.
    Context(Option<Vec<u8>>),
    /// A range of entries.
    Range(Option<StateRange>),
}

/// Encodes a message.
pub fn encode<T: BorshSerialize>(message: &T) -> Vec<u8> {
    codec::encode(message)
}

/// Decodes a message from exactly `bytes`, refusing more than `max_len` bytes before parsing.
pub fn decode<T: BorshDeserialize>(what: &'static str, bytes: &[u8], max_len: usize) -> Result<T, Error> {
    codec::decode_bounded(what, bytes, max_len).map_err(|error| Error::Decode(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn proof(slot: u64) -> PotSlotProof {
        PotSlotProof {
            slot: SlotNumber(slot),
            seed: PotSeed([slot as u8; 16]),
            checkpoints: PotCheckpoints::default(),
        }
    }

    #[test]
    fn pot_gossip_of_the_most_slots_fits_its_bound() {
        let full = PotGossip {
            slots: (1..=MAX_POT_SLOTS as u64).map(proof).collect(),
        };
        assert_eq!(encode(&full).len(), PotGossip::MAX_SIZE);
        full.check_shape().expect("consecutive");
        let decoded: PotGossip = decode("pot", &encode(&full), PotGossip::MAX_SIZE).expect("decodes");
        assert_eq!(decoded, full);
    }

    #[test]
    fn pot_gossip_shape_is_checked() {
        let empty = PotGossip { slots: Vec::new() };
        assert!(matches!(empty.check_shape(), Err(Error::Decode(message)) if message.contains("1 to 16")));
        let gap = PotGossip {
            slots: vec![proof(3), proof(5)],
        };
        assert!(matches!(gap.check_shape(), Err(Error::Decode(message)) if message.contains("consecutive")));
        let too_many = PotGossip {
            slots: (1..=17).map(proof).collect(),
        };
        assert!(too_many.check_shape().is_err());
    }

    #[test]
    fn pot_slots_answers_are_checked_against_their_request() {
        let request = PotSlotsRequest {
            first: SlotNumber(5),
            count: 3,
        };
        let answer = |slots: std::ops::Range<u64>| PotSlotsResponse {
            slots: slots.map(proof).collect(),
        };
        answer(5..8).check_answers(&request).expect("as asked");
        answer(5..6).check_answers(&request).expect("fewer");
        answer(0..0).check_answers(&request).expect("none held");
        let error = answer(5..9).check_answers(&request).expect_err("more than asked");
        assert!(matches!(error, Error::Decode(message) if message.contains("1 to 3 slots, not 4")));
        let error = answer(6..8).check_answers(&request).expect_err("elsewhere");
        assert!(matches!(error, Error::Decode(message) if message.contains("not the requested 5")));
        let gap = PotSlotsResponse {
            slots: vec![proof(5), proof(7)],
        };
        assert!(
            matches!(gap.check_answers(&request), Err(Error::Decode(message)) if message.contains("consecutive"))
        );
        let greedy = PotSlotsRequest {
            first: SlotNumber(1),
            count: u32::MAX,
        };
        let full = answer(1..MAX_POT_RANGE as u64 + 1);
        full.check_answers(&greedy).expect("at the limit");
        assert_eq!(encode(&full).len(), PotSlotsResponse::MAX_SIZE);
        assert!(
            answer(1..MAX_POT_RANGE as u64 + 2)
                .check_answers(&greedy)
                .is_err()
        );
    }

    #[test]
    fn oversized_and_trailing_bytes_are_refused() {
        let request = BlockRangeRequest {
            start: BlockStart::Ascending(BlockNumber(5)),
            max_blocks: 10,
        };
        let bytes = encode(&request);
        assert!(matches!(
            decode::<BlockRangeRequest>("request", &bytes, bytes.len() - 1),
            Err(Error::Decode(message)) if message.contains("exceeds the maximum")
        ));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode::<BlockRangeRequest>("request", &trailing, 100).is_err());
        assert_eq!(
            decode::<BlockRangeRequest>("request", &bytes, 100).expect("decodes"),
            request
        );
    }

    proptest! {
        #[test]
        fn block_range_responses_round_trip(
            best in any::<u64>(),
            blocks in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..64), proptest::collection::vec(any::<u8>(), 0..64)),
                0..8,
            ),
        ) {
            let response = BlockRangeResponse {
                best_number: BlockNumber(best),
                best_hash: BlockHash::default(),
                blocks: blocks.into_iter().map(|(header, body)| RawBlock { header, body }).collect(),
            };
            let bytes = encode(&response);
            prop_assert_eq!(decode::<BlockRangeResponse>("response", &bytes, bytes.len()).expect("decodes"), response);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode::<BlockRangeResponse>("response", &bytes, 512);
            let _ = decode::<PotGossip>("pot", &bytes, 512);
            let _ = decode::<SegmentHeadersRequest>("request", &bytes, 512);
            let _ = decode::<PotSlotsRequest>("request", &bytes, 512);
            let _ = decode::<PotSlotsResponse>("response", &bytes, 512);
        }
    }
}
