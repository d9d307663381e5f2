//! Segment headers: the chain of commitments to archived history (spec section 3.6).

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::error::DecodeError;
use crate::hashing::{self, Blake3Hash, HashContext};
use crate::quantities::{BlockNumber, SegmentIndex};

/// Merkle root over the record roots of all pieces of a segment.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct SegmentRoot(pub Blake3Hash);

/// The last block (partially) archived in a segment.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct LastArchivedBlock {
    /// The block's number.
    pub number: BlockNumber,
    /// How many bytes of the block are archived so far; 0 means the block is complete.
    pub archived_progress: u32,
}

impl LastArchivedBlock {
    /// Whether the whole block is archived.
    pub fn is_complete(&self) -> bool {
        self.archived_progress == 0
    }
}

/// The header of an archived segment. Headers chain by hash; every node keeps all of them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct SegmentHeader {
    /// Encoding version, currently [`SegmentHeader::VERSION`].
    pub version: u8,
    /// The segment's index.
    pub segment_index: SegmentIndex,
    /// Commitment to the segment's pieces.
    pub segment_root: SegmentRoot,
    /// Hash of the previous segment's header ([`Blake3Hash::ZERO`] for segment 0).
    pub prev_segment_header_hash: Blake3Hash,
    /// The last block archived (perhaps partially) in this segment.
    pub last_archived_block: LastArchivedBlock,
}

impl SegmentHeader {
    /// The current encoding version.
    pub const VERSION: u8 = 1;
    /// Size of the canonical encoding.
    pub const ENCODED_SIZE: usize = 1 + 8 + 32 + 32 + 8 + 4;

    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a header from exactly its canonical encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let header: Self = codec::decode_bounded("segment header", bytes, Self::ENCODED_SIZE)?;
        if header.version != Self::VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "segment header",
                version: header.version,
            });
        }
        Ok(header)
    }

    /// The header's hash, which the next header commits to.
    pub fn hash(&self) -> Blake3Hash {
        hashing::hash(HashContext::SegmentHeader, &self.encode())
    }

    /// Whether `self` directly follows `prev` in the header chain.
    pub fn follows(&self, prev: &SegmentHeader) -> bool {
        self.segment_index == prev.segment_index.next() && self.prev_segment_header_hash == prev.hash()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SegmentHeader {
        SegmentHeader {
            version: SegmentHeader::VERSION,
            segment_index: SegmentIndex(3),
            segment_root: SegmentRoot(Blake3Hash([7; 32])),
            prev_segment_header_hash: Blake3Hash([9; 32]),
            last_archived_block: LastArchivedBlock {
                number: BlockNumber(42),
                archived_progress: 100,
            },
        }
    }

    #[test]
    fn encoding_round_trips_with_fixed_size() {
        let header = sample();
        let bytes = header.encode();
        assert_eq!(bytes.len(), SegmentHeader::ENCODED_SIZE);
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header));
        for len in 0..bytes.len() {
            assert!(
                SegmentHeader::decode(&bytes[..len]).is_err(),
                "truncation to {len} accepted"
            );
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(SegmentHeader::decode(&trailing).is_err());
        let mut wrong_version = bytes;
        wrong_version[0] = 2;
        assert!(matches!(
            SegmentHeader::decode(&wrong_version),
            Err(DecodeError::UnsupportedVersion { .. })
        ));
    }
}
