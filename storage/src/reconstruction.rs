//! Reconstruction: pieces back into segments, segments back into blocks (spec section 3.7).
//!
//! Nothing handed in is trusted: every piece is verified against the segment root before it is used, and
//! pieces that fail are reported and treated as missing. Any half of a segment's valid pieces rebuilds its
//! records; the item streams of consecutive segments rebuild the blocks, joining blocks split across
//! segments.

use rayon::prelude::*;

use acre_consensus::merkle::Node;
use acre_consensus::params::Chunk;
use acre_consensus::pieces::PieceVerificationError;
use acre_consensus::{
    Blake3Hash, BlockNumber, Piece, PiecePosition, ProtocolParams, SegmentHeader, SegmentIndex,
};

use crate::commitment::pieces_from_commitments;
use crate::erasure;
use crate::error::Error;
use crate::merkle::chunks_root;
use crate::record::{RecordCommitment, commit_record};
use crate::segment::{SegmentItem, decode_items};

/// The source records of a segment, with the pieces that were rejected on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredSegment {
    /// The segment's source records, in order.
    pub records: Vec<Vec<Chunk>>,
    /// Pieces that failed verification and were treated as missing.
    pub rejected: Rejected,
}

impl RecoveredSegment {
    /// The encoded segment (its item stream).
    pub fn segment_bytes(&self) -> Vec<u8> {
        self.records
            .iter()
            .flat_map(|record| record.as_flattened())
            .copied()
            .collect()
    }
}

/// Pieces rejected by verification, by position.
pub type Rejected = Vec<(PiecePosition, PieceVerificationError)>;

/// Verifies every present piece against the header's segment root, in parallel. Returns, by position, the
/// piece's source-chunks root if it verified.
fn verify_all(
    params: &ProtocolParams,
    header: &SegmentHeader,
    pieces: &[Option<Piece>],
) -> Result<(Vec<Option<Node>>, Rejected), Error> {
    let expected = params.pieces_per_segment() as usize;
    if pieces.len() != expected {
        return Err(Error::WrongCount {
            what: "piece slots",
            expected,
            got: pieces.len(),
        });
    }
    let results: Vec<Option<Result<Node, PieceVerificationError>>> = pieces
        .par_iter()
        .enumerate()
        .map(|(position, piece)| {
            let piece = piece.as_ref()?;
            let position =
                PiecePosition(u16::try_from(position).expect("positions fit u16 (checked by params)"));
            let source_root = chunks_root(piece.record.chunks());
            Some(
                piece
                    .verify_with_source_root(params, &header.segment_root, position, &Blake3Hash(source_root))
                    .map(|()| source_root),
            )
        })
        .collect();
    let mut rejected = Vec::new();
    let valid = results
        .into_iter()
        .enumerate()
        .map(|(position, result)| match result {
            Some(Ok(root)) => Some(root),
            Some(Err(reason)) => {
                rejected.push((PiecePosition(position as u16), reason));
                None
            }
            None => None,
        })
        .collect();
    Ok((valid, rejected))
}

fn not_enough(header: &SegmentHeader, pieces: &[Option<Piece>], valid: usize, rejected: usize) -> Error {
    Error::NotEnoughPieces {
        segment_index: header.segment_index,
        valid,
        required: pieces.len() / 2,
        missing: pieces.iter().filter(|piece| piece.is_none()).count(),
        rejected,
    }
}

/// Verifies the pieces and recovers the source records from the valid ones; returns the valid pieces'
/// source-chunks roots by position, the records and the rejected pieces.
#[allow(clippy::type_complexity)]
fn verify_and_recover(
    params: &ProtocolParams,
    header: &SegmentHeader,
    pieces: &[Option<Piece>],
) -> Result<(Vec<Option<Node>>, Vec<Vec<Chunk>>, Rejected), Error> {
    let (valid, rejected) = verify_all(params, header, pieces)?;
    let valid_count = valid.iter().flatten().count();
    if valid_count < pieces.len() / 2 {
        return Err(not_enough(header, pieces, valid_count, rejected.len()));
    }
    let available: Vec<Option<&[Chunk]>> = pieces
        .iter()
        .zip(&valid)
        .map(|(piece, valid)| valid.and(piece.as_ref()).map(|piece| piece.record.chunks()))
        .collect();
    let records = erasure::recover_records(&available)?;
    Ok((valid, records, rejected))
}

/// Recovers a segment's source records from its pieces (`pieces[position]`, `None` where missing).
pub fn recover_segment(
    params: &ProtocolParams,
    header: &SegmentHeader,
    pieces: &[Option<Piece>],
) -> Result<RecoveredSegment, Error> {
    let (_, records, rejected) = verify_and_recover(params, header, pieces)?;
    Ok(RecoveredSegment { records, rejected })
}

/// Rebuilds all pieces of a segment from any half of them.
pub fn rebuild_pieces(
    params: &ProtocolParams,
    header: &SegmentHeader,
    pieces: &[Option<Piece>],
) -> Result<Vec<Piece>, Error> {
    let (valid, mut records, _) = verify_and_recover(params, header, pieces)?;
    let parity = erasure::encode_records(&records.iter().map(Vec::as_slice).collect::<Vec<_>>())?;
    records.extend(parity);
    let commitments: Vec<RecordCommitment> = records
        .par_iter()
        .zip(pieces.par_iter().zip(&valid))
        .map(|(record, (piece, source_root))| match (piece, source_root) {
            (Some(piece), Some(source_root)) => Ok(RecordCommitment {
                source_chunks_root: Blake3Hash(*source_root),
                parity_chunks_root: piece.parity_chunks_root,
                record_root: piece.record_root,
            }),
            _ => commit_record(record),
        })
        .collect::<Result<_, _>>()?;
    let (root, rebuilt) = pieces_from_commitments(params, records, &commitments)?;
    if root != header.segment_root {
        // Unreachable with verified pieces unless the coder misbehaves; never return unverifiable pieces.
        return Err(Error::InvalidPiece {
            segment_index: header.segment_index,
            position: PiecePosition(0),
            reason: PieceVerificationError::NotInSegment,
        });
    }
    Ok(rebuilt)
}

/// Rebuilds the piece at `position` from any half of the segment's pieces.
pub fn rebuild_piece(
    params: &ProtocolParams,
    header: &SegmentHeader,
    pieces: &[Option<Piece>],
    position: PiecePosition,
) -> Result<Piece, Error> {
    let index = usize::from(position.0);
    if index >= pieces.len() {
        return Err(Error::WrongCount {
            what: "piece position below",
            expected: pieces.len(),
            got: index,
        });
    }
    Ok(rebuild_pieces(params, header, pieces)?.swap_remove(index))
}

/// Rebuilds blocks from the item streams of consecutive segments.
#[derive(Debug, Default, Clone)]
pub struct BlockReconstructor {
    last_segment: Option<SegmentIndex>,
    next_block: Option<BlockNumber>,
    /// A block split across segments, as far as it has been seen.
    partial: Option<(BlockNumber, Vec<u8>)>,
    /// Set while skipping the tail of a block whose start precedes the first segment seen.
    skipping: bool,
}

impl BlockReconstructor {
    /// A reconstructor that has seen no segment yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next encoded segment (`header` is its own header) and returns the blocks it completes.
    pub fn add_segment(
        &mut self,
        header: &SegmentHeader,
        segment: &[u8],
    ) -> Result<Vec<(BlockNumber, Vec<u8>)>, Error> {
        let index = header.segment_index;
        if let Some(last) = self.last_segment
            && index != last.next()
        {
            return Err(Error::SegmentOutOfOrder {
                expected_after: last,
                got: index,
            });
        }
        let items = decode_items(index, segment)?;
        let malformed = |reason| Error::MalformedSegment {
            segment_index: index,
            offset: 0,
            reason,
        };
        let data_items = items
            .iter()
            .filter(|item| !matches!(item, SegmentItem::Padding | SegmentItem::ParentSegmentHeader(_)))
            .count();
        let mut blocks = Vec::new();
        let mut seen = 0;
        for item in items {
            match item {
                SegmentItem::Padding => {}
                SegmentItem::ParentSegmentHeader(parent) => {
                    if parent.segment_index.next() != index
                        || header.prev_segment_header_hash != parent.hash()
                    {
                        return Err(malformed("parent header does not match the segment's header"));
                    }
                    if self.next_block.is_none() {
                        let last = parent.last_archived_block;
                        self.skipping = !last.is_complete();
                        self.next_block = Some(BlockNumber(last.number.0 + 1));
                    }
                }
                SegmentItem::Block(bytes) => {
                    seen += 1;
                    if self.partial.is_some() || self.skipping {
                        return Err(malformed("a block starts before the previous one ended"));
                    }
                    let number = self.take_next_number();
                    blocks.push((number, bytes));
                }
                SegmentItem::BlockStart(bytes) => {
                    seen += 1;
                    if self.partial.is_some() || self.skipping {
                        return Err(malformed("a block starts before the previous one ended"));
                    }
                    let number = self.take_next_number();
                    self.partial = Some((number, bytes));
                }
                SegmentItem::BlockContinuation(bytes) => {
                    seen += 1;
                    let continues = seen == data_items && !header.last_archived_block.is_complete();
                    if self.skipping {
                        self.skipping = continues;
                        continue;
                    }
                    let (number, mut block) = self
                        .partial
                        .take()
                        .ok_or(malformed("a continuation without a start"))?;
                    block.extend_from_slice(&bytes);
                    if continues {
                        self.partial = Some((number, block));
                    } else {
                        blocks.push((number, block));
                    }
                }
            }
        }
        self.last_segment = Some(index);
        Ok(blocks)
    }

    fn take_next_number(&mut self) -> BlockNumber {
        let number = self.next_block.unwrap_or(BlockNumber(0));
        self.next_block = Some(BlockNumber(number.0 + 1));
        number
    }
}
