//! The on-disk layout of a sector (spec section 5).
//!
//! ```text
//! [ encoded chunks, s-bucket-major: all chunks of s-bucket 0 (record order), then s-bucket 1, … ]
//! [ record metadata × pieces: bitmap of used s-buckets ‖ record root ‖ parity-chunks root ‖ record proof ‖ piece index ]
//! [ checksum: BLAKE3 of everything above ]
//! ```
//!
//! Every record stores exactly `record_chunks` chunks, so the size of a sector depends only on the
//! parameters and its piece count. S-bucket-major order means an audit reads one contiguous run of bytes
//! per sector. [`SectorMetadata`] (index, piece count, history size, s-bucket sizes) is kept apart, with its
//! own checksum, so the farmer can audit without touching the metadata region.

use borsh::{BorshDeserialize, BorshSerialize};

use acre_consensus::hashing::{Blake3Hash, HASH_SIZE};
use acre_consensus::merkle::Node;
use acre_consensus::params::CHUNK_SIZE;
use acre_consensus::{
    DecodeError, HistorySize, PieceIndex, PieceOffset, ProtocolParams, RecordRoot, SBucket, SectorIndex,
};

/// Sizes and offsets within a sector of a given piece count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectorLayout {
    /// Chunks each record stores.
    pub record_chunks: usize,
    /// S-buckets of an extended record.
    pub s_buckets: usize,
    /// Records (pieces) in the sector.
    pub pieces: usize,
    /// Hashes in a record proof.
    pub record_proof_len: usize,
}

impl SectorLayout {
    /// The layout of a sector of `pieces` pieces.
    pub fn new(params: &ProtocolParams, pieces: u16) -> Self {
        Self {
            record_chunks: params.record_chunks as usize,
            s_buckets: params.s_buckets() as usize,
            pieces: usize::from(pieces),
            record_proof_len: params.record_proof_len(),
        }
    }

    /// Bytes of the encoded-chunks region.
    pub fn chunks_size(&self) -> usize {
        self.pieces * self.record_chunks * CHUNK_SIZE
    }

    /// Bytes of one record's bitmap.
    pub fn bitmap_size(&self) -> usize {
        self.s_buckets / 8
    }

    /// Bytes of one record's metadata.
    pub fn record_metadata_size(&self) -> usize {
        self.bitmap_size() + 2 * HASH_SIZE + self.record_proof_len * HASH_SIZE + 8
    }

    /// Offset of a record's metadata.
    pub fn record_metadata_offset(&self, offset: PieceOffset) -> usize {
        self.chunks_size() + usize::from(offset.0) * self.record_metadata_size()
    }

    /// Offset of the checksum (the end of the checksummed bytes).
    pub fn checksum_offset(&self) -> usize {
        self.chunks_size() + self.pieces * self.record_metadata_size()
    }

    /// Total bytes of a sector.
    pub fn sector_size(&self) -> usize {
        self.checksum_offset() + HASH_SIZE
    }
}

/// Per-record metadata stored after the chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Bit `s` set when the record stores a chunk in s-bucket `s` (little-endian bit order).
    pub bitmap: Vec<u8>,
    /// The record's root.
    pub record_root: RecordRoot,
    /// Root of the record's parity chunks.
    pub parity_chunks_root: Blake3Hash,
    /// Proof of the record root in its segment root.
    pub record_proof: Vec<Node>,
    /// The piece this record is.
    pub piece_index: PieceIndex,
}

impl RecordMetadata {
    /// Whether the record stores a chunk in `s_bucket`.
    pub fn has(&self, s_bucket: usize) -> bool {
        self.bitmap
            .get(s_bucket / 8)
            .is_some_and(|byte| byte >> (s_bucket % 8) & 1 == 1)
    }

    /// Adds 1 to `counts[s]` for every s-bucket `s` the record stores a chunk in.
    pub fn count_into(&self, counts: &mut [u16]) {
        for (counts, &byte) in counts.chunks_mut(8).zip(&self.bitmap) {
            for (bit, count) in counts.iter_mut().enumerate() {
                *count += u16::from(byte >> bit & 1);
            }
        }
    }

    /// Appends the fixed-size encoding.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bitmap);
        out.extend_from_slice(&self.record_root.0.0);
        out.extend_from_slice(&self.parity_chunks_root.0);
        out.extend_from_slice(self.record_proof.as_flattened());
        out.extend_from_slice(&self.piece_index.0.to_le_bytes());
    }

    /// Decodes exactly `layout.record_metadata_size()` bytes.
    pub fn decode(layout: &SectorLayout, bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() != layout.record_metadata_size() {
            return Err(DecodeError::WrongSize {
                what: "record metadata",
                expected: layout.record_metadata_size(),
                len: bytes.len(),
            });
        }
        let (bitmap, rest) = bytes.split_at(layout.bitmap_size());
        let (hashes, index) = rest.split_at(rest.len() - 8);
        let (hashes, _) = hashes.as_chunks::<HASH_SIZE>();
        Ok(Self {
            bitmap: bitmap.to_vec(),
            record_root: RecordRoot(Blake3Hash(hashes[0])),
            parity_chunks_root: Blake3Hash(hashes[1]),
            record_proof: hashes[2..].to_vec(),
            piece_index: PieceIndex(u64::from_le_bytes(index.try_into().expect("eight bytes"))),
        })
    }
}

/// What the farmer keeps about a plotted sector.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SectorMetadata {
    /// The sector's index in its farm.
    pub sector_index: SectorIndex,
    /// Pieces in the sector.
    pub pieces_in_sector: u16,
    /// History size when the sector was plotted.
    pub history_size: HistorySize,
    /// Chunks stored in each s-bucket.
    pub s_bucket_sizes: SBucketSizes,
}

impl SectorMetadata {
    /// The sector's layout.
    pub fn layout(&self, params: &ProtocolParams) -> SectorLayout {
        SectorLayout::new(params, self.pieces_in_sector)
    }

    /// Byte range of an s-bucket's chunks within the sector.
    pub fn s_bucket_range(&self, s_bucket: SBucket) -> std::ops::Range<usize> {
        let index = usize::from(s_bucket.0);
        let start = self.s_bucket_sizes.chunks_before(index);
        let len = self.s_bucket_sizes.get(index).map_or(0, |&n| usize::from(n));
        start * CHUNK_SIZE..(start + len) * CHUNK_SIZE
    }

    /// The byte offset of every s-bucket in order, in one pass.
    pub fn s_bucket_offsets(&self) -> impl Iterator<Item = usize> + '_ {
        self.s_bucket_sizes.iter().scan(0, |start, &size| {
            let offset = *start * CHUNK_SIZE;
            *start += usize::from(size);
            Some(offset)
        })
    }
}

/// The number of chunks in each s-bucket of a sector, with a running total every [`Self::STRIDE`]
/// s-buckets. Every slot locates one s-bucket in every sector of every farm; with the totals that sums at
/// most `STRIDE − 1` sizes instead of up to 65,535 (which cost as much as hashing the s-bucket's chunks).
/// Encoded as the plain list of sizes; the totals are rebuilt on decoding and never change afterwards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SBucketSizes {
    sizes: Vec<u16>,
    /// `totals[i]` = chunks in s-buckets `0..i·STRIDE`.
    totals: Vec<u64>,
}

impl SBucketSizes {
    /// S-buckets between running totals.
    pub const STRIDE: usize = 64;

    /// Sizes in s-bucket order.
    pub fn new(sizes: Vec<u16>) -> Self {
        let totals = std::iter::once(0)
            .chain(sizes.chunks(Self::STRIDE).scan(0u64, |total, stride| {
                *total += stride.iter().map(|&size| u64::from(size)).sum::<u64>();
                Some(*total)
            }))
            .collect();
        Self { sizes, totals }
    }

    /// Chunks in the s-buckets before `s_bucket` (all of them when it is past the end).
    pub fn chunks_before(&self, s_bucket: usize) -> usize {
        let s_bucket = s_bucket.min(self.sizes.len());
        let stride = s_bucket / Self::STRIDE;
        let rest: usize = self.sizes[stride * Self::STRIDE..s_bucket]
            .iter()
            .map(|&size| usize::from(size))
            .sum();
        // Casts: a sector holds at most 2^16 × 2^16 chunks.
        #[allow(clippy::cast_possible_truncation)]
        let before = self.totals[stride] as usize;
        before + rest
    }

    /// The sizes.
    pub fn into_inner(self) -> Vec<u16> {
        self.sizes
    }
}

impl From<Vec<u16>> for SBucketSizes {
    fn from(sizes: Vec<u16>) -> Self {
        Self::new(sizes)
    }
}

impl std::ops::Deref for SBucketSizes {
    type Target = [u16];

    fn deref(&self) -> &[u16] {
        &self.sizes
    }
}

impl BorshSerialize for SBucketSizes {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        self.sizes.serialize(writer)
    }
}

impl BorshDeserialize for SBucketSizes {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        Vec::<u16>::deserialize_reader(reader).map(Self::new)
    }
}

/// A BLAKE3 checksum (not consensus: detects disk corruption).
pub fn checksum(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

/// Whether a sector's bytes match their trailing checksum.
pub fn verify_checksum(layout: &SectorLayout, sector: &[u8]) -> bool {
    sector.len() == layout.sector_size()
        && checksum(&sector[..layout.checksum_offset()])[..] == sector[layout.checksum_offset()..]
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn s_bucket_sizes_locate_like_a_plain_sum_and_encode_as_a_list(
            sizes in proptest::collection::vec(any::<u16>(), 0..400),
            s_bucket in 0usize..450,
        ) {
            let indexed = SBucketSizes::new(sizes.clone());
            let plain: usize = sizes[..s_bucket.min(sizes.len())].iter().map(|&n| usize::from(n)).sum();
            prop_assert_eq!(indexed.chunks_before(s_bucket), plain);
            let encoded = borsh::to_vec(&indexed).expect("encodes");
            prop_assert_eq!(&encoded, &borsh::to_vec(&sizes).expect("encodes"));
            prop_assert_eq!(borsh::from_slice::<SBucketSizes>(&encoded).expect("decodes"), indexed);
        }
    }
}
