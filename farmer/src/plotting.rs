//! Plotting: pieces of history into a sector bound to the farmer's key (spec section 5).
//!
//! For each offset of the sector the selected piece is fetched and verified, its record extended 2×, and
//! the record's proof-of-space table built from its evaluation seed. Walking the s-buckets in order, every
//! chunk whose s-bucket has a proof is stored masked with that proof's quality, until `record_chunks`
//! chunks are stored; in the rare record with fewer proofs than that, the first s-buckets without a proof
//! make up the count, stored unmasked (they can be read back but never win). Records are encoded in
//! parallel on the current rayon pool; a sector is then laid out s-bucket-major ([`crate::sector`]).

use rayon::prelude::*;

use acre_consensus::hashing::Blake3Hash;
use acre_consensus::params::Chunk;
use acre_consensus::pos::PosSeed;
use acre_consensus::sectors::SectorId;
use acre_consensus::{HistorySize, PieceOffset, ProtocolParams, SectorIndex};
use acre_storage::record::extend_record;
use acre_storage::verify_piece;
use tracing::debug;

use crate::error::Error;
use crate::piece_source::PieceSource;
use crate::pos_table::PosTable;
use crate::sector::{RecordMetadata, SectorLayout, SectorMetadata, checksum};

/// A plotted sector: its bytes (laid out as [`crate::sector`] describes) and its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlottedSector {
    /// The sector's metadata.
    pub metadata: SectorMetadata,
    /// The sector's bytes, checksum included.
    pub bytes: Vec<u8>,
}

/// One record's stored chunks (by ascending s-bucket, as its bitmap marks them) and metadata.
struct EncodedRecord {
    chunks: Vec<Chunk>,
    metadata: RecordMetadata,
}

/// The chunks a record stores: `(s-bucket, stored chunk)` in s-bucket order, exactly `record_chunks` of
/// them, with masks from `masks` (`None` where the s-bucket has no proof).
pub fn select_chunks(
    extended: &[Chunk],
    masks: &[Option<acre_consensus::pos::ProofQuality>],
    record_chunks: usize,
) -> Vec<(usize, Chunk)> {
    let mut chunks: Vec<(usize, Chunk)> = extended
        .iter()
        .zip(masks)
        .enumerate()
        .filter_map(|(s, (chunk, mask))| {
            mask.map(|mask| (s, std::array::from_fn(|i| chunk[i] ^ mask.0.0[i])))
        })
        .take(record_chunks)
        .collect();
    if chunks.len() < record_chunks {
        let missing = record_chunks - chunks.len();
        chunks.extend(
            extended
                .iter()
                .zip(masks)
                .enumerate()
                .filter(|(_, (_, mask))| mask.is_none())
                .take(missing)
                .map(|(s, (chunk, _))| (s, *chunk)),
        );
        chunks.sort_unstable_by_key(|&(s, _)| s);
    }
    chunks
}

fn encode_record(
    params: &ProtocolParams,
    layout: &SectorLayout,
    sector_id: &SectorId,
    offset: PieceOffset,
    history_size: HistorySize,
    source: &impl PieceSource,
) -> Result<EncodedRecord, Error> {
    let piece_index = sector_id.piece_index(params, offset, history_size);
    let piece = source.piece(piece_index)?;
    let segment_index = piece_index.segment_index(params);
    let segment_root = source
        .segment_root(segment_index)
        .ok_or(Error::UnknownSegment(segment_index))?;
    verify_piece(params, &piece, &segment_root, piece_index.position(params)).map_err(|reason| {
        Error::InvalidPiece {
            index: piece_index,
            reason,
        }
    })?;

    let extended = extend_record(piece.record.chunks())?;
    let table = PosTable::generate(params, &PosSeed::from(sector_id.evaluation_seed(offset)))?;
    let masks = table.masks(params)?;
    let selected = select_chunks(&extended, &masks, layout.record_chunks);
    let mut bitmap = vec![0u8; layout.bitmap_size()];
    for &(s, _) in &selected {
        bitmap[s / 8] |= 1 << (s % 8);
    }
    let chunks = selected.into_iter().map(|(_, chunk)| chunk).collect();
    Ok(EncodedRecord {
        chunks,
        metadata: RecordMetadata {
            bitmap,
            record_root: piece.record_root,
            parity_chunks_root: piece.parity_chunks_root,
            record_proof: piece.record_proof,
            piece_index,
        },
    })
}

/// Plots sector `sector_index` of the farmer whose public key hash is `public_key_hash`, at history size
/// `history_size`, with `pieces` pieces from `source`.
pub fn plot_sector(
    params: &ProtocolParams,
    public_key_hash: &Blake3Hash,
    sector_index: SectorIndex,
    history_size: HistorySize,
    pieces: u16,
    source: &impl PieceSource,
) -> Result<PlottedSector, Error> {
    if pieces == 0 || pieces > params.max_pieces_per_sector {
        return Err(Error::OutOfRange {
            what: "pieces per sector",
            value: u64::from(pieces),
            max: u64::from(params.max_pieces_per_sector),
        });
    }
    let layout = SectorLayout::new(params, pieces);
    let sector_id = SectorId::new(public_key_hash, sector_index, history_size);
    let records = (0..pieces)
        .into_par_iter()
        .map(|offset| {
            encode_record(
                params,
                &layout,
                &sector_id,
                PieceOffset(offset),
                history_size,
                source,
            )
        })
        .collect::<Result<Vec<_>, Error>>()?;

    let mut s_bucket_sizes = vec![0u16; layout.s_buckets];
    let mut bytes = Vec::with_capacity(layout.sector_size());
    let mut cursors = vec![0usize; records.len()];
    for (s, size) in s_bucket_sizes.iter_mut().enumerate() {
        for (record, cursor) in records.iter().zip(cursors.iter_mut()) {
            if record.metadata.has(s) {
                bytes.extend_from_slice(&record.chunks[*cursor]);
                *cursor += 1;
                *size += 1;
            }
        }
    }
    for record in &records {
        record.metadata.encode_into(&mut bytes);
    }
    let sum = checksum(&bytes);
    bytes.extend_from_slice(&sum);
    debug_assert_eq!(bytes.len(), layout.sector_size());
    debug!(target: "acre::plotting", sector = sector_index.0, pieces, history = history_size.get(), "plotted sector");
    Ok(PlottedSector {
        metadata: SectorMetadata {
            sector_index,
            pieces_in_sector: pieces,
            history_size,
            s_bucket_sizes: s_bucket_sizes.into(),
        },
        bytes,
    })
}

/// Plots sectors `0..count` of the farmer with `public_key` at `history_size`, each with the most pieces a
/// sector holds, in memory (tests, benches and tools; the daemon plots into farm files).
pub fn plot_sectors(
    params: &ProtocolParams,
    public_key: &acre_consensus::sectors::PublicKey,
    count: u16,
    history_size: HistorySize,
    source: &impl PieceSource,
) -> Result<Vec<(SectorId, PlottedSector)>, Error> {
    let public_key_hash = public_key.hash();
    (0..count)
        .map(|index| {
            let index = SectorIndex(index);
            let sector = plot_sector(
                params,
                &public_key_hash,
                index,
                history_size,
                params.max_pieces_per_sector,
                source,
            )?;
            Ok((SectorId::new(&public_key_hash, index, history_size), sector))
        })
        .collect()
}
