//! Records, record roots and pieces (spec section 3.3–3.5).
//!
//! A record is `record_chunks` 32-byte chunks of history. Erasure coding extends it to twice as many chunks
//! (source first, then parity); its [`RecordRoot`] is `H(record_ctx, source-chunks root ‖ parity-chunks
//! root)`. A [`Piece`] is a record with its root, its parity-chunks root and the proof of its record root in
//! the segment root, so it can be verified without any erasure coding.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::error::DecodeError;
use crate::hashing::{self, Blake3Hash, HASH_SIZE, HashContext};
use crate::merkle::{self, Node};
use crate::params::{CHUNK_SIZE, Chunk, ProtocolParams};
use crate::quantities::{PiecePosition, SBucket};
use crate::segments::SegmentRoot;

/// A record: the source chunks of one piece.
#[derive(Clone, PartialEq, Eq)]
pub struct Record(Box<[Chunk]>);

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Record({} chunks, {})",
            self.0.len(),
            hashing::hash(HashContext::MerkleLeaf, self.as_bytes())
        )
    }
}

impl Record {
    /// A record from its chunks; errors unless there are exactly `record_chunks` of them.
    pub fn from_chunks(params: &ProtocolParams, chunks: Box<[Chunk]>) -> Result<Self, DecodeError> {
        if chunks.len() != params.record_chunks as usize {
            return Err(DecodeError::WrongSize {
                what: "record",
                expected: params.record_size(),
                len: chunks.len() * CHUNK_SIZE,
            });
        }
        Ok(Self(chunks))
    }

    /// A record from its bytes; errors unless there are exactly `record_size` of them.
    pub fn from_bytes(params: &ProtocolParams, bytes: &[u8]) -> Result<Self, DecodeError> {
        let (chunks, rest) = bytes.as_chunks::<CHUNK_SIZE>();
        if !rest.is_empty() || chunks.len() != params.record_chunks as usize {
            return Err(DecodeError::WrongSize {
                what: "record",
                expected: params.record_size(),
                len: bytes.len(),
            });
        }
        Ok(Self(chunks.into()))
    }

    /// The record's chunks.
    pub fn chunks(&self) -> &[Chunk] {
        &self.0
    }

    /// The record's chunks, mutably.
    pub fn chunks_mut(&mut self) -> &mut [Chunk] {
        &mut self.0
    }

    /// The record's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_flattened()
    }

    /// Merkle root of the source chunks (raw chunks as level-0 nodes).
    pub fn source_chunks_root(&self) -> Blake3Hash {
        Blake3Hash(merkle::root(&self.0))
    }
}

/// Commitment to one erasure-extended record.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct RecordRoot(pub Blake3Hash);

impl RecordRoot {
    /// `H(record_ctx, source-chunks root ‖ parity-chunks root)`.
    pub fn from_halves(source_chunks_root: &Blake3Hash, parity_chunks_root: &Blake3Hash) -> Self {
        Self(hashing::hash_pair(
            HashContext::Record,
            source_chunks_root,
            parity_chunks_root,
        ))
    }

    /// Whether `proof` (the path in the chunk's half plus the other half's root) shows `chunk` at
    /// `s_bucket` of the extended record committed to by `self`.
    pub fn verify_chunk(
        &self,
        params: &ProtocolParams,
        chunk: &Chunk,
        s_bucket: SBucket,
        proof: &[Node],
    ) -> bool {
        let half_len = params.record_chunks as usize;
        let index = usize::from(s_bucket.0);
        let Some((other_half_root, path)) = proof.split_last() else {
            return false;
        };
        if index >= 2 * half_len {
            return false;
        }
        let Some(half_root) = merkle::root_from_proof(chunk, index % half_len, half_len, path) else {
            return false;
        };
        let (source, parity) = if index < half_len {
            (half_root, *other_half_root)
        } else {
            (*other_half_root, half_root)
        };
        Self::from_halves(&Blake3Hash(source), &Blake3Hash(parity)) == *self
    }

    /// Whether `proof` shows this record root at `position` of the segment committed to by `segment_root`.
    pub fn verify_in_segment(
        &self,
        params: &ProtocolParams,
        segment_root: &SegmentRoot,
        position: PiecePosition,
        proof: &[Node],
    ) -> bool {
        merkle::verify(
            &segment_root.0.0,
            &merkle::leaf(&self.0.0),
            usize::from(position.0),
            params.pieces_per_segment() as usize,
            proof,
        )
    }
}

/// Why a piece failed verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PieceVerificationError {
    /// The record's chunks with the piece's parity-chunks root do not hash to its record root.
    #[error("record data does not match the piece's record root")]
    RecordMismatch,
    /// The record root is not at the claimed position under the segment root.
    #[error("record root is not in the segment root at this position")]
    NotInSegment,
}

/// A record with everything needed to verify it against its segment root.
#[derive(Clone, PartialEq, Eq)]
pub struct Piece {
    /// The record (source chunks).
    pub record: Record,
    /// The record's root.
    pub record_root: RecordRoot,
    /// Root of the record's parity chunks.
    pub parity_chunks_root: Blake3Hash,
    /// Proof of `record_root` in the segment root.
    pub record_proof: Vec<Node>,
}

impl std::fmt::Debug for Piece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Piece")
            .field("record_root", &self.record_root)
            .finish_non_exhaustive()
    }
}

impl Piece {
    /// Encoding: record ‖ record root ‖ parity-chunks root ‖ record proof; `params.piece_size()` bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes =
            Vec::with_capacity(self.record.as_bytes().len() + (2 + self.record_proof.len()) * HASH_SIZE);
        bytes.extend_from_slice(self.record.as_bytes());
        bytes.extend_from_slice(&self.record_root.0.0);
        bytes.extend_from_slice(&self.parity_chunks_root.0);
        bytes.extend_from_slice(self.record_proof.as_flattened());
        bytes
    }

    /// Decodes a piece from exactly `params.piece_size()` bytes.
    pub fn decode(params: &ProtocolParams, bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() != params.piece_size() {
            return Err(DecodeError::WrongSize {
                what: "piece",
                expected: params.piece_size(),
                len: bytes.len(),
            });
        }
        let (record, rest) = bytes.split_at(params.record_size());
        let (hashes, remainder) = rest.as_chunks::<HASH_SIZE>();
        debug_assert!(remainder.is_empty(), "size check guarantees whole hashes");
        Ok(Self {
            record: Record::from_bytes(params, record)?,
            record_root: RecordRoot(Blake3Hash(hashes[0])),
            parity_chunks_root: Blake3Hash(hashes[1]),
            record_proof: hashes[2..].to_vec(),
        })
    }

    /// Verifies the piece at `position` against `segment_root`: the record hashes to its record root and
    /// the record root is in the segment root at that position. No erasure coding is needed.
    pub fn verify(
        &self,
        params: &ProtocolParams,
        segment_root: &SegmentRoot,
        position: PiecePosition,
    ) -> Result<(), PieceVerificationError> {
        self.verify_with_source_root(params, segment_root, position, &self.record.source_chunks_root())
    }

    /// [`Piece::verify`] with the record's source-chunks root already computed (by a faster builder).
    pub fn verify_with_source_root(
        &self,
        params: &ProtocolParams,
        segment_root: &SegmentRoot,
        position: PiecePosition,
        source_chunks_root: &Blake3Hash,
    ) -> Result<(), PieceVerificationError> {
        if RecordRoot::from_halves(source_chunks_root, &self.parity_chunks_root) != self.record_root {
            return Err(PieceVerificationError::RecordMismatch);
        }
        if !self
            .record_root
            .verify_in_segment(params, segment_root, position, &self.record_proof)
        {
            return Err(PieceVerificationError::NotInSegment);
        }
        Ok(())
    }
}
