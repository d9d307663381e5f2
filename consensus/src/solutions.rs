//! Solutions and their verification (spec section 7).
//!
//! A solution claims: "the chunk at this s-bucket of the record at this offset of my sector, masked with
//! its proof of space, is within the solution range of this slot's challenge". [`verify_solution`] checks
//! every link of that claim against data consensus already has (segment roots, the slot's challenge, the
//! current history size), in order from cheapest to dearest, and names the first link that fails.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::audit::{SectorSlotChallenge, challenge_target, is_within_solution_range};
use crate::hashing::Blake3Hash;
use crate::merkle::Node;
use crate::params::{Chunk, ProtocolParams};
use crate::pieces::RecordRoot;
use crate::pos::{self, PosError, PosSeed, ProofQuality};
use crate::quantities::{
    HistorySize, PieceIndex, PieceOffset, SBucket, SectorIndex, SegmentIndex, SolutionRange,
};
use crate::sectors::{PublicKey, SectorId};
use crate::segments::SegmentRoot;

/// A farmer's claim to a slot.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Solution {
    /// The farmer's public key (the sector is bound to its hash).
    pub public_key: PublicKey,
    /// Where the block reward goes.
    pub reward_address: [u8; 32],
    /// The sector's index in the farm.
    pub sector_index: SectorIndex,
    /// The history size at which the sector was plotted.
    pub history_size: HistorySize,
    /// Offset of the record within the sector.
    pub piece_offset: PieceOffset,
    /// Root of the record.
    pub record_root: RecordRoot,
    /// Proof of the record root in its segment root.
    pub record_proof: Vec<Node>,
    /// The winning chunk as stored: masked with the proof-of-space quality.
    pub chunk: Chunk,
    /// Proof of the unmasked chunk in the record root.
    pub chunk_proof: Vec<Node>,
    /// The proof of space for the audited s-bucket (`8·k` bytes).
    pub proof_of_space: Vec<u8>,
}

/// Why a solution was rejected; each link of the claim has its own variant.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SolutionVerificationError {
    /// The sector claims a history that does not exist yet.
    #[error("sector plotted at history size {claimed}, but history has only {current} segments")]
    FutureHistorySize {
        /// What the other side claimed.
        claimed: HistorySize,
        /// The current value.
        current: HistorySize,
    },
    /// The piece offset is beyond the sector's capacity.
    #[error("piece offset {offset} is beyond the {max} pieces of a sector")]
    PieceOffsetOutOfRange {
        /// The byte offset.
        offset: PieceOffset,
        /// The most allowed.
        max: u16,
    },
    /// The sector expired at or before the current history size.
    #[error("sector expired at history size {expired_at}")]
    SectorExpired {
        /// The history size at which the sector expired.
        expired_at: HistorySize,
    },
    /// The segment holding the sector's piece is unknown.
    #[error("segment {0} is unknown")]
    UnknownSegment(SegmentIndex),
    /// The record root is not at the piece's position under its segment root (wrong key, sector index,
    /// history size or offset select another piece).
    #[error("record root is not piece {piece_index} of its segment")]
    RecordNotInSegment {
        /// The piece's index.
        piece_index: PieceIndex,
    },
    /// The proof of space does not answer the audited s-bucket for this record's seed.
    #[error("invalid proof of space for s-bucket {s_bucket}: {source}")]
    InvalidProofOfSpace {
        /// The s-bucket.
        s_bucket: SBucket,
        /// The underlying error.
        source: PosError,
    },
    /// The unmasked chunk is not the record's chunk at the audited s-bucket.
    #[error("chunk is not the record's chunk at s-bucket {s_bucket}")]
    InvalidChunk {
        /// The s-bucket.
        s_bucket: SBucket,
    },
    /// The chunk's audit value is too far from the slot's challenge.
    #[error("chunk is outside the solution range")]
    OutsideSolutionRange,
}

/// What a verifier knows of the chain when checking a solution.
pub trait SegmentRoots {
    /// The root of segment `index`, if it exists.
    fn segment_root(&self, index: SegmentIndex) -> Option<SegmentRoot>;
    /// The current history size.
    fn history_size(&self) -> HistorySize;
}

/// Verifies `solution` for a slot whose global challenge is `global_challenge`, at `solution_range`.
///
/// Checks, in order: the claimed history exists and the offset is in range; the sector has not expired;
/// the record root is the selected piece's under its segment root; the proof of space answers the audited
/// s-bucket for the record's seed; the chunk, unmasked with the proof's quality, is the record's chunk at
/// that s-bucket; and its audit value is within the solution range. Never panics on adversarial input.
pub fn verify_solution(
    params: &ProtocolParams,
    solution: &Solution,
    global_challenge: &Blake3Hash,
    solution_range: SolutionRange,
    chain: &impl SegmentRoots,
) -> Result<ProofQuality, SolutionVerificationError> {
    use SolutionVerificationError as E;
    let current = chain.history_size();
    if solution.history_size > current {
        return Err(E::FutureHistorySize {
            claimed: solution.history_size,
            current,
        });
    }
    if solution.piece_offset.0 >= params.max_pieces_per_sector {
        return Err(E::PieceOffsetOutOfRange {
            offset: solution.piece_offset,
            max: params.max_pieces_per_sector,
        });
    }
    let sector_id = SectorId::new(
        &solution.public_key.hash(),
        solution.sector_index,
        solution.history_size,
    );

    let check_segment = SectorId::expiration_check_segment(params, solution.history_size);
    if let Some(check_root) = chain.segment_root(check_segment) {
        let expired_at = sector_id.expires_at(params, solution.history_size, &check_root);
        if expired_at <= current {
            return Err(E::SectorExpired { expired_at });
        }
    }

    let piece_index = sector_id.piece_index(params, solution.piece_offset, solution.history_size);
    let segment_index = piece_index.segment_index(params);
    let segment_root = chain
        .segment_root(segment_index)
        .ok_or(E::UnknownSegment(segment_index))?;
    if !solution.record_root.verify_in_segment(
        params,
        &segment_root,
        piece_index.position(params),
        &solution.record_proof,
    ) {
        return Err(E::RecordNotInSegment { piece_index });
    }

    let challenge = SectorSlotChallenge::new(&sector_id, global_challenge);
    let s_bucket = challenge.s_bucket(params);
    let seed = PosSeed::from(sector_id.evaluation_seed(solution.piece_offset));
    let quality = pos::verify_for_params(params, &seed, s_bucket, &solution.proof_of_space)
        .map_err(|source| E::InvalidProofOfSpace { s_bucket, source })?;

    let unmasked: Chunk = std::array::from_fn(|i| solution.chunk[i] ^ quality.0.0[i]);
    if !solution
        .record_root
        .verify_chunk(params, &unmasked, s_bucket, &solution.chunk_proof)
    {
        return Err(E::InvalidChunk { s_bucket });
    }

    if !is_within_solution_range(
        challenge.audit_value(&solution.chunk),
        challenge_target(global_challenge),
        solution_range,
    ) {
        return Err(E::OutsideSolutionRange);
    }
    Ok(quality)
}
