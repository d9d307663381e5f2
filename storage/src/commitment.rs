//! From an encoded segment to verifiable pieces (spec section 3.3–3.5).
//!
//! The segment's bytes are cut into source records, erasure coded into as many parity records, every record
//! is extended and committed to ([`crate::record`]), and the segment root is the Merkle root over the
//! hashed record roots of all pieces in order. Records are committed to in parallel on the current rayon
//! pool; run inside a one-thread pool for a single-threaded build.

use rayon::prelude::*;

use acre_consensus::params::{CHUNK_SIZE, Chunk};
use acre_consensus::{Piece, ProtocolParams, Record, SegmentRoot};

use crate::erasure;
use crate::error::Error;
use crate::merkle::MerkleTree;
use crate::record::{RecordCommitment, commit_record};

/// Cuts an encoded segment into its source records' chunks.
pub fn source_records(params: &ProtocolParams, segment: &[u8]) -> Result<Vec<Vec<Chunk>>, Error> {
    if segment.len() != params.segment_size() {
        return Err(Error::WrongCount {
            what: "segment bytes",
            expected: params.segment_size(),
            got: segment.len(),
        });
    }
    Ok(segment
        .chunks_exact(params.record_size())
        .map(|record| record.as_chunks::<CHUNK_SIZE>().0.to_vec())
        .collect())
}

/// Commits to every record of a segment (`records` holds all pieces' records: source, then parity) and
/// builds the pieces.
pub fn build_pieces(
    params: &ProtocolParams,
    records: Vec<Vec<Chunk>>,
) -> Result<(SegmentRoot, Vec<Piece>), Error> {
    let commitments: Vec<RecordCommitment> = records
        .par_iter()
        .map(|record| commit_record(record))
        .collect::<Result<_, _>>()?;
    pieces_from_commitments(params, records, &commitments)
}

/// Builds the pieces of a segment from its records and their (already computed) commitments.
pub fn pieces_from_commitments(
    params: &ProtocolParams,
    records: Vec<Vec<Chunk>>,
    commitments: &[RecordCommitment],
) -> Result<(SegmentRoot, Vec<Piece>), Error> {
    let expected = params.pieces_per_segment() as usize;
    if records.len() != expected || commitments.len() != expected {
        return Err(Error::WrongCount {
            what: "records",
            expected,
            got: records.len().min(commitments.len()),
        });
    }
    let tree = MerkleTree::from_items(
        commitments
            .iter()
            .map(|commitment| commitment.record_root.0.as_ref()),
    );
    let pieces = records
        .into_iter()
        .zip(commitments)
        .enumerate()
        .map(|(position, (record, commitment))| {
            Ok(Piece {
                record: Record::from_chunks(params, record.into_boxed_slice())?,
                record_root: commitment.record_root,
                parity_chunks_root: commitment.parity_chunks_root,
                record_proof: tree.proof(position).expect("position is below the leaf count"),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok((SegmentRoot(tree.root().into()), pieces))
}

/// Erasure codes and commits to an encoded segment, returning its root and all its pieces.
pub fn commit_segment(params: &ProtocolParams, segment: &[u8]) -> Result<(SegmentRoot, Vec<Piece>), Error> {
    let mut records = source_records(params, segment)?;
    let parity = {
        let sources: Vec<&[Chunk]> = records.iter().map(Vec::as_slice).collect();
        erasure::encode_records(&sources)?
    };
    records.extend(parity);
    build_pieces(params, records)
}
