//! Reading sectors: random access to their bytes, and records decoded back into verified pieces.
//!
//! A record is spread over the s-buckets its bitmap marks; its position inside s-bucket `s` is the number
//! of earlier records that also store a chunk there. Reading it back regenerates the record's
//! proof-of-space table to unmask its chunks, erasure-decodes the source chunks from whichever half was
//! stored, and checks the result against the record root kept in the sector.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use acre_consensus::params::{CHUNK_SIZE, Chunk};
use acre_consensus::pos::PosSeed;
use acre_consensus::sectors::SectorId;
use acre_consensus::{Piece, PieceOffset, ProtocolParams, Record, RecordRoot};
use acre_storage::erasure::recover_chunks;
use acre_storage::merkle::chunks_root;
use acre_storage::record::{extend_record, source_chunks_root};

use crate::error::Error;
use crate::pos_table::PosTable;
use crate::sector::{RecordMetadata, SectorMetadata};

/// Random-access reads of one sector's bytes.
pub trait SectorReader: Sync {
    /// Fills `buf` from `offset` within the sector.
    fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), Error>;
}

impl SectorReader for [u8] {
    fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), Error> {
        let bytes = offset
            .checked_add(buf.len())
            .and_then(|end| self.get(offset..end))
            .ok_or(Error::OutOfRange {
                what: "sector read end",
                value: (offset + buf.len()) as u64,
                max: self.len() as u64,
            })?;
        buf.copy_from_slice(bytes);
        Ok(())
    }
}

impl SectorReader for Vec<u8> {
    fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), Error> {
        self.as_slice().read_at(offset, buf)
    }
}

/// A sector stored at `base` within a file.
#[derive(Debug, Clone, Copy)]
pub struct FileSector<'a> {
    /// The file.
    pub file: &'a File,
    /// Its path (for fault injection in tests).
    pub path: &'a Path,
    /// Byte offset of the sector in the file.
    pub base: u64,
}

impl SectorReader for FileSector<'_> {
    fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), Error> {
        // Tests make one farm's plot slow or failing: `return(FRAGMENT:MS)` delays every read of more
        // than one chunk (an audit's s-bucket, a sector's record metadata) of a plot whose path contains
        // FRAGMENT by MS milliseconds, like a disk that is slow to seek; `return(FRAGMENT:fail)` fails
        // every read.
        fail::fail_point!("plot-read", |arg: Option<String>| {
            let arg = arg.unwrap_or_default();
            let (fragment, action) = arg.rsplit_once(':').unwrap_or((arg.as_str(), "fail"));
            if self.path.to_string_lossy().contains(fragment) {
                match action.parse::<u64>() {
                    Ok(ms) if buf.len() > CHUNK_SIZE => {
                        std::thread::sleep(std::time::Duration::from_millis(ms));
                    }
                    Ok(_) => {}
                    Err(_) => {
                        return Err(Error::Io {
                            context: format!("reading {} bytes at sector offset {offset}", buf.len()),
                            source: std::io::Error::other("injected read failure"),
                        });
                    }
                }
            }
            self.read_plain(offset, buf)
        });
        self.read_plain(offset, buf)
    }
}

impl FileSector<'_> {
    fn read_plain(&self, offset: usize, buf: &mut [u8]) -> Result<(), Error> {
        self.file
            .read_exact_at(buf, self.base + offset as u64)
            .map_err(Error::io(format!(
                "reading {} bytes at sector offset {offset}",
                buf.len()
            )))
    }
}

/// Reads every record's metadata of a sector.
pub fn read_record_metadata(
    params: &ProtocolParams,
    metadata: &SectorMetadata,
    sector: &(impl SectorReader + ?Sized),
) -> Result<Vec<RecordMetadata>, Error> {
    let layout = metadata.layout(params);
    let mut bytes = vec![0u8; layout.pieces * layout.record_metadata_size()];
    sector.read_at(layout.chunks_size(), &mut bytes)?;
    bytes
        .chunks_exact(layout.record_metadata_size())
        .map(|b| Ok(RecordMetadata::decode(&layout, b)?))
        .collect()
}

/// A record decoded from a sector.
#[derive(Debug)]
pub struct DecodedRecord {
    /// The record's metadata.
    pub metadata: RecordMetadata,
    /// The full extended record (source then parity chunks), recomputed and checked against its root.
    pub extended: Vec<Chunk>,
    /// The record's proof-of-space table.
    pub table: PosTable,
}

/// Decodes the record at `offset` of a sector, given all records' metadata, on the calling thread
/// (readers decode many records side by side).
pub fn decode_record(
    params: &ProtocolParams,
    sector_id: &SectorId,
    metadata: &SectorMetadata,
    records: &[RecordMetadata],
    sector: &(impl SectorReader + ?Sized),
    offset: PieceOffset,
) -> Result<DecodedRecord, Error> {
    decode_record_on(params, sector_id, metadata, records, sector, offset, false)
}

/// [`decode_record`] building the record's table and searching its proofs with every thread of the
/// current rayon pool where the `parallel` feature is on.
pub(crate) fn decode_record_on(
    params: &ProtocolParams,
    sector_id: &SectorId,
    metadata: &SectorMetadata,
    records: &[RecordMetadata],
    sector: &(impl SectorReader + ?Sized),
    offset: PieceOffset,
    all_cores: bool,
) -> Result<DecodedRecord, Error> {
    let source = decode_source_on(params, sector_id, metadata, records, sector, offset, all_cores)?;
    let extended = extend_record(&source.chunks)?;
    // The source chunks are verified; their parity must then be what the record committed to.
    if chunks_root(&extended[source.chunks.len()..]) != source.metadata.parity_chunks_root.0 {
        return Err(corrupted(metadata, offset));
    }
    Ok(DecodedRecord {
        metadata: source.metadata,
        extended,
        table: source.table,
    })
}

/// A record's source chunks, read back from a sector and verified against its record root.
pub(crate) struct SourceRecord {
    /// The record's metadata.
    pub metadata: RecordMetadata,
    /// The source chunks.
    pub chunks: Vec<Chunk>,
    /// The record's proof-of-space table.
    pub table: PosTable,
}

/// Regenerates the record's table (on every core when `all_cores` and the `parallel` feature is on),
/// unmasks the chunks the record stored, erasure-decodes its source chunks and checks them against the
/// record root with the stored parity-chunks root: no parity is recomputed.
pub(crate) fn decode_source_on(
    params: &ProtocolParams,
    sector_id: &SectorId,
    metadata: &SectorMetadata,
    records: &[RecordMetadata],
    sector: &(impl SectorReader + ?Sized),
    offset: PieceOffset,
    all_cores: bool,
) -> Result<SourceRecord, Error> {
    let index = usize::from(offset.0);
    let own = records.get(index).ok_or(Error::OutOfRange {
        what: "piece offset",
        value: u64::from(offset.0),
        max: records.len() as u64,
    })?;
    let seed = PosSeed::from(sector_id.evaluation_seed(offset));
    let table = PosTable::generate_on(params, &seed, all_cores)?;
    let masks = table.masks_on(params, all_cores)?;
    let s_buckets = params.s_buckets() as usize;
    // The record's position in s-bucket `s` is the number of earlier records storing a chunk there.
    let mut earlier = vec![0u16; s_buckets];
    for record in &records[..index] {
        record.count_into(&mut earlier);
    }
    let mut extended: Vec<Option<Chunk>> = vec![None; s_buckets];
    let mut chunk = [0u8; CHUNK_SIZE];
    for (s, (slot, start)) in extended.iter_mut().zip(metadata.s_bucket_offsets()).enumerate() {
        if !own.has(s) {
            continue;
        }
        sector.read_at(start + usize::from(earlier[s]) * CHUNK_SIZE, &mut chunk)?;
        *slot = Some(match masks[s] {
            Some(mask) => std::array::from_fn(|i| chunk[i] ^ mask.0.0[i]),
            None => chunk,
        });
    }
    let chunks = recover_chunks(&extended).map_err(|_| corrupted(metadata, offset))?;
    let root = RecordRoot::from_halves(&source_chunks_root(&chunks), &own.parity_chunks_root);
    if root != own.record_root {
        return Err(corrupted(metadata, offset));
    }
    Ok(SourceRecord {
        metadata: own.clone(),
        chunks,
        table,
    })
}

/// The error for a record whose chunks do not decode to what its metadata committed to.
fn corrupted(metadata: &SectorMetadata, offset: PieceOffset) -> Error {
    Error::CorruptedRecord {
        sector_index: metadata.sector_index,
        offset,
    }
}

/// Reads the piece at `offset` back out of a sector, decoded and verified against its record root.
pub fn read_piece(
    params: &ProtocolParams,
    sector_id: &SectorId,
    metadata: &SectorMetadata,
    sector: &(impl SectorReader + ?Sized),
    offset: PieceOffset,
) -> Result<Piece, Error> {
    let records = read_record_metadata(params, metadata, sector)?;
    let decoded = decode_source_on(params, sector_id, metadata, &records, sector, offset, false)?;
    Ok(Piece {
        record: Record::from_chunks(params, decoded.chunks.into_boxed_slice())?,
        record_root: decoded.metadata.record_root,
        parity_chunks_root: decoded.metadata.parity_chunks_root,
        record_proof: decoded.metadata.record_proof,
    })
}
