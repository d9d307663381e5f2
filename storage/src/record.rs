//! Record commitments: extend a record's chunks 2× and commit to both halves (spec section 3.3).
//!
//! `record root = H(record_ctx, source-chunks root ‖ parity-chunks root)`. Keeping the halves separate is
//! what lets a piece be verified without erasure coding (its parity-chunks root travels with it) while a
//! chunk proof still reaches every s-bucket of the extended record.

use std::cell::RefCell;

use acre_consensus::hashing::Blake3Hash;
use acre_consensus::merkle::Node;
use acre_consensus::params::Chunk;
use acre_consensus::{RecordRoot, SBucket};

use crate::erasure;
use crate::error::Error;
use crate::merkle::{MerkleTree, chunks_root};

/// The commitment to one erasure-extended record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordCommitment {
    /// Root of the source chunks.
    pub source_chunks_root: Blake3Hash,
    /// Root of the parity chunks.
    pub parity_chunks_root: Blake3Hash,
    /// The record root.
    pub record_root: RecordRoot,
}

impl RecordCommitment {
    fn from_roots(source: Node, parity: Node) -> Self {
        let source_chunks_root = Blake3Hash(source);
        let parity_chunks_root = Blake3Hash(parity);
        Self {
            source_chunks_root,
            parity_chunks_root,
            record_root: RecordRoot::from_halves(&source_chunks_root, &parity_chunks_root),
        }
    }
}

/// Commits to a record given its source chunks (the parity chunks are computed in a per-thread buffer).
pub fn commit_record(source: &[Chunk]) -> Result<RecordCommitment, Error> {
    thread_local! {
        static PARITY: RefCell<Vec<Chunk>> = const { RefCell::new(Vec::new()) };
    }
    PARITY.with_borrow_mut(|parity| {
        parity.resize(source.len(), [0; 32]);
        erasure::extend_chunks(source, parity)?;
        Ok(RecordCommitment::from_roots(
            chunks_root(source),
            chunks_root(parity),
        ))
    })
}

/// A record's chunks extended 2×: source chunks, then parity chunks.
pub fn extend_record(source: &[Chunk]) -> Result<Vec<Chunk>, Error> {
    let mut extended = vec![[0u8; 32]; 2 * source.len()];
    let (head, tail) = extended.split_at_mut(source.len());
    head.copy_from_slice(source);
    erasure::extend_chunks(source, tail)?;
    Ok(extended)
}

/// Commits to an already extended record.
pub fn commit_extended(extended: &[Chunk]) -> RecordCommitment {
    let (source, parity) = extended.split_at(extended.len() / 2);
    RecordCommitment::from_roots(chunks_root(source), chunks_root(parity))
}

/// The root of a record's source chunks, which with the parity-chunks root forms the record root.
pub fn source_chunks_root(source: &[Chunk]) -> Blake3Hash {
    Blake3Hash(chunks_root(source))
}

/// [`chunk_proof`] for an s-bucket in the source half, from the source chunks and the parity-chunks root
/// alone (no erasure coding). `None` if the s-bucket is not in the source half.
pub fn source_chunk_proof(
    source: &[Chunk],
    parity_chunks_root: &Blake3Hash,
    s_bucket: SBucket,
) -> Option<Vec<Node>> {
    let index = usize::from(s_bucket.0);
    if index >= source.len() {
        return None;
    }
    let mut proof = MerkleTree::from_nodes(source.to_vec()).proof(index)?;
    proof.push(parity_chunks_root.0);
    Some(proof)
}

/// Proof of the chunk at `s_bucket` of an extended record: its path within its half, then the other
/// half's root (verified by [`RecordRoot::verify_chunk`]). `None` if the s-bucket is out of range.
pub fn chunk_proof(extended: &[Chunk], s_bucket: SBucket) -> Option<Vec<Node>> {
    let half = extended.len() / 2;
    let index = usize::from(s_bucket.0);
    if index >= extended.len() {
        return None;
    }
    let (own, other) = if index < half {
        (&extended[..half], &extended[half..])
    } else {
        (&extended[half..], &extended[..half])
    };
    let mut proof = MerkleTree::from_nodes(own.to_vec()).proof(index % half)?;
    proof.push(chunks_root(other));
    Some(proof)
}

#[cfg(test)]
mod tests {
    use acre_consensus::ProtocolParams;
    use acre_consensus::params::Chunk;

    use super::*;

    #[test]
    fn every_chunk_proof_verifies_at_its_s_bucket_only() {
        let params = ProtocolParams::dev();
        let source: Vec<Chunk> = (0..params.record_chunks).map(|i| [i as u8; 32]).collect();
        let extended = extend_record(&source).expect("valid record");
        let commitment = commit_record(&source).expect("valid record");
        assert_eq!(commitment, commit_extended(&extended));
        for s_bucket in 0..params.s_buckets() as u16 {
            let proof = chunk_proof(&extended, SBucket(s_bucket)).expect("in range");
            assert_eq!(proof.len(), params.chunk_proof_len());
            let chunk = &extended[usize::from(s_bucket)];
            assert!(
                commitment
                    .record_root
                    .verify_chunk(&params, chunk, SBucket(s_bucket), &proof)
            );
            let other = SBucket((s_bucket + 1) % params.s_buckets() as u16);
            assert!(!commitment.record_root.verify_chunk(&params, chunk, other, &proof));
            let from_source = source_chunk_proof(&source, &commitment.parity_chunks_root, SBucket(s_bucket));
            if usize::from(s_bucket) < source.len() {
                assert_eq!(from_source, Some(proof));
            } else {
                assert_eq!(from_source, None);
            }
        }
        assert_eq!(source_chunks_root(&source), commitment.source_chunks_root);
        assert!(chunk_proof(&extended, SBucket(params.s_buckets() as u16)).is_none());
    }
}
