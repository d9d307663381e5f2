//! Proving: a winning chunk into a full [`Solution`] (spec section 7).

use acre_consensus::sectors::{PublicKey, SectorId};
use acre_consensus::solutions::Solution;
use acre_consensus::{PieceOffset, ProtocolParams};
use acre_storage::record::{chunk_proof, extend_record, source_chunk_proof};

use crate::auditing::AuditWin;
use crate::error::Error;
use crate::reading::{SectorReader, decode_source_on, read_record_metadata};
use crate::sector::SectorMetadata;

/// Builds the solution for `win` in a sector of the farmer with `public_key`. With the `parallel` feature
/// the winning record's table is built and searched on every thread of the current rayon pool.
pub fn prove(
    params: &ProtocolParams,
    public_key: &PublicKey,
    reward_address: [u8; 32],
    metadata: &SectorMetadata,
    sector: &(impl SectorReader + ?Sized),
    win: &AuditWin,
) -> Result<Solution, Error> {
    let sector_id = SectorId::new(&public_key.hash(), metadata.sector_index, metadata.history_size);
    let records = read_record_metadata(params, metadata, sector)?;
    let s = usize::from(win.s_bucket.0);
    let offset = records
        .iter()
        .enumerate()
        .filter(|(_, record)| record.has(s))
        .nth(win.position)
        .map(|(offset, _)| offset)
        .ok_or(Error::OutOfRange {
            what: "position in s-bucket",
            value: win.position as u64,
            max: records.len() as u64,
        })?;
    let offset = PieceOffset(u16::try_from(offset).expect("offsets are below the u16 piece count"));
    // One record's table inside the slot's deadline: every core builds it (with the `parallel` feature).
    let decoded = decode_source_on(params, &sector_id, metadata, &records, sector, offset, true)?;
    let proof = decoded
        .table
        .find_proof(params, win.s_bucket)?
        .ok_or(Error::NoProofForSBucket(win.s_bucket))?;
    // A chunk in the source half is proved from the source chunks and the stored parity root; only a
    // chunk in the parity half needs the parity recomputed.
    let parity_root = &decoded.metadata.parity_chunks_root;
    let chunk_proof = match source_chunk_proof(&decoded.chunks, parity_root, win.s_bucket) {
        Some(proof) => proof,
        None => chunk_proof(&extend_record(&decoded.chunks)?, win.s_bucket)
            .ok_or(Error::NoProofForSBucket(win.s_bucket))?,
    };
    Ok(Solution {
        public_key: *public_key,
        reward_address,
        sector_index: metadata.sector_index,
        history_size: metadata.history_size,
        piece_offset: offset,
        record_root: decoded.metadata.record_root,
        record_proof: decoded.metadata.record_proof,
        chunk: win.chunk,
        chunk_proof,
        proof_of_space: proof.bytes,
    })
}

/// Audits in-memory `sectors` for `challenge` at `solution_range` and returns the first win that proves,
/// in sector order (tests, benches and tools; the daemon ranks wins itself).
pub fn first_solution<'a>(
    params: &ProtocolParams,
    public_key: &PublicKey,
    reward_address: [u8; 32],
    sectors: impl IntoIterator<Item = &'a (SectorId, crate::plotting::PlottedSector)>,
    challenge: &acre_consensus::Blake3Hash,
    solution_range: acre_consensus::SolutionRange,
) -> Result<Option<Solution>, Error> {
    for (id, sector) in sectors {
        let wins = crate::auditing::audit_sector(
            params,
            id,
            &sector.metadata,
            &sector.bytes,
            challenge,
            solution_range,
        )?;
        if let Some(solution) = wins.iter().find_map(|win| {
            prove(
                params,
                public_key,
                reward_address,
                &sector.metadata,
                &sector.bytes,
                win,
            )
            .ok()
        }) {
            return Ok(Some(solution));
        }
    }
    Ok(None)
}
