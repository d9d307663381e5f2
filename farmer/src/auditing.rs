//! Auditing: does any chunk of a sector win this slot? (spec section 7)
//!
//! An audit reads exactly one s-bucket of a sector, a contiguous run of about `pieces / 2 … pieces`
//! chunks, and hashes each into an audit value, eight chunks at a time
//! ([`acre_consensus::audit::SectorSlotChallenge::audit_values`]). Winning chunks are returned for proving; nothing else of
//! the sector is touched, which is what makes farming a large plot cheap every slot.

use acre_consensus::audit::{SectorSlotChallenge, challenge_target, is_within_solution_range};
use acre_consensus::hashing::Blake3Hash;
use acre_consensus::params::{CHUNK_SIZE, Chunk};
use acre_consensus::sectors::SectorId;
use acre_consensus::{ProtocolParams, SBucket, SolutionRange};

use crate::error::Error;
use crate::reading::SectorReader;
use crate::sector::SectorMetadata;

/// A chunk that wins the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditWin {
    /// The audited s-bucket.
    pub s_bucket: SBucket,
    /// The chunk's position within the s-bucket (the n-th record storing a chunk there).
    pub position: usize,
    /// The stored (masked) chunk.
    pub chunk: Chunk,
    /// Wrapping distance of its audit value to the challenge (smaller is better).
    pub distance: u64,
}

/// Audits one sector for a slot with `global_challenge`.
pub fn audit_sector(
    params: &ProtocolParams,
    sector_id: &SectorId,
    metadata: &SectorMetadata,
    sector: &(impl SectorReader + ?Sized),
    global_challenge: &Blake3Hash,
    solution_range: SolutionRange,
) -> Result<Vec<AuditWin>, Error> {
    let challenge = SectorSlotChallenge::new(sector_id, global_challenge);
    let s_bucket = challenge.s_bucket(params);
    let range = metadata.s_bucket_range(s_bucket);
    let mut bytes = vec![0u8; range.len()];
    sector.read_at(range.start, &mut bytes)?;
    Ok(audit_chunks(
        &challenge,
        s_bucket,
        &bytes,
        global_challenge,
        solution_range,
    ))
}

/// Audits the chunks of one s-bucket already in memory.
pub fn audit_chunks(
    challenge: &SectorSlotChallenge,
    s_bucket: SBucket,
    bytes: &[u8],
    global_challenge: &Blake3Hash,
    solution_range: SolutionRange,
) -> Vec<AuditWin> {
    let target = challenge_target(global_challenge);
    let (chunks, _) = bytes.as_chunks::<CHUNK_SIZE>();
    chunks
        .iter()
        .zip(challenge.audit_values(chunks))
        .enumerate()
        .filter(|(_, (_, value))| is_within_solution_range(*value, target, solution_range))
        .map(|(position, (chunk, value))| AuditWin {
            s_bucket,
            position,
            chunk: *chunk,
            distance: value.wrapping_sub(target).min(target.wrapping_sub(value)),
        })
        .collect()
}
