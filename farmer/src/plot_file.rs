//! Plot files: one file per farm, holding its sectors crash-safely.
//!
//! ```text
//! [ header, 4 KiB: magic ‖ format version ‖ params id ‖ farmer public key hash ‖ genesis hash ‖
//!   sector count ‖ pieces per sector ‖ checksum ]
//! [ sector metadata slots, one per sector: encoded SectorMetadata ‖ checksum (all zero = empty) ]
//! [ sectors, 4 KiB aligned, each `SectorLayout::sector_size()` bytes ]
//! ```
//!
//! Creating a farm reserves the file's disk space (so a disk too small for it fails now, not hours into
//! plotting), writes the header under a temporary name, syncs it, links it into place (never replacing an existing farm) and syncs the directory, so a farm file that exists always
//! has a durable header: a crash during creation leaves at most a stale temporary file, which the next
//! creation overwrites. (Farms created before this was so may lack a header; [`Farm::open`] reports them
//! as [`Error::UnfinishedFarm`] so the daemon recreates them.)
//!
//! Writing a sector first empties its metadata slot (synced), then writes and syncs the sector, then writes
//! and syncs the slot. A crash at any point leaves either the old state or an empty slot, so on reopening
//! a sector is either fully written and recorded, or ignored and plotted again. Sectors carry their own
//! checksum, which [`Farm::scrub`] checks to find corruption after the fact.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use acre_consensus::codec;
use acre_consensus::hashing::Blake3Hash;
use acre_consensus::{HistorySize, ProtocolParams, SectorIndex};
use tracing::warn;

use crate::error::Error;
use crate::plotting::PlottedSector;
use crate::reading::FileSector;
use crate::sector::{SectorLayout, SectorMetadata, checksum, verify_checksum};

const MAGIC: &[u8; 8] = b"ACREFARM";
const FORMAT_VERSION: u32 = 1;
const HEADER_SIZE: u64 = 4096;
const ALIGNMENT: u64 = 4096;

/// What a farm is for: fixed when it is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FarmHeader {
    /// Hash of the protocol parameters' canonical encoding.
    pub params_id: Blake3Hash,
    /// The farmer's public key hash (sectors are bound to it).
    pub public_key_hash: Blake3Hash,
    /// The chain's genesis hash.
    pub genesis_hash: Blake3Hash,
    /// Sectors the farm holds.
    pub sector_count: u16,
    /// Pieces in each sector.
    pub pieces_per_sector: u16,
}

impl FarmHeader {
    fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(HEADER_SIZE as usize);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&self.params_id.0);
        bytes.extend_from_slice(&self.public_key_hash.0);
        bytes.extend_from_slice(&self.genesis_hash.0);
        bytes.extend_from_slice(&self.sector_count.to_le_bytes());
        bytes.extend_from_slice(&self.pieces_per_sector.to_le_bytes());
        let sum = checksum(&bytes);
        bytes.extend_from_slice(&sum);
        bytes
    }

    fn decode(bytes: &[u8]) -> Result<Self, String> {
        const LEN: usize = 8 + 4 + 32 * 3 + 2 + 2;
        let body = bytes.get(..LEN).ok_or("truncated header")?;
        if &body[..8] != MAGIC {
            return Err("not an Acre plot file (bad magic)".into());
        }
        let version = u32::from_le_bytes(body[8..12].try_into().expect("four bytes"));
        if version != FORMAT_VERSION {
            return Err(format!("unsupported plot format version {version}"));
        }
        if bytes.get(LEN..LEN + 32) != Some(&checksum(body)[..]) {
            return Err("header checksum mismatch".into());
        }
        let hash = |at: usize| Blake3Hash(body[at..at + 32].try_into().expect("32 bytes"));
        Ok(Self {
            params_id: hash(12),
            public_key_hash: hash(44),
            genesis_hash: hash(76),
            sector_count: u16::from_le_bytes([body[108], body[109]]),
            pieces_per_sector: u16::from_le_bytes([body[110], body[111]]),
        })
    }
}

/// Why a sector's metadata slot is not usable. An interrupted write shows as a checksum mismatch; the
/// other variants mean a checksummed slot that contradicts the farm (a bug or tampering). Either way the
/// sector is plotted again rather than read with wrong bounds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    /// The checksum does not match (an interrupted write).
    #[error("checksum mismatch")]
    Checksum,
    /// The slot does not decode.
    #[error("undecodable: {0}")]
    Decode(String),
    /// The slot describes another sector.
    #[error("describes sector {found}, not {expected}")]
    WrongSector {
        /// What the rule requires.
        expected: SectorIndex,
        /// What was found.
        found: SectorIndex,
    },
    /// The piece count differs from the farm header's.
    #[error("holds {found} pieces, the farm's sectors hold {expected}")]
    WrongPieceCount {
        /// What the rule requires.
        expected: u16,
        /// What was found.
        found: u16,
    },
    /// An s-bucket claims more chunks than the sector has pieces.
    #[error("s-bucket {s_bucket} holds {size} chunks, more than the {max} pieces")]
    SBucketTooLarge {
        /// The s-bucket.
        s_bucket: usize,
        /// The size asked for, in bytes.
        size: u16,
        /// The most allowed.
        max: u16,
    },
}

/// Decodes and checks one metadata slot of a farm with `header`: `Ok(None)` for an empty slot.
pub fn check_slot(
    header: &FarmHeader,
    index: SectorIndex,
    slot: &[u8],
) -> Result<Option<SectorMetadata>, SlotError> {
    if slot.iter().all(|&byte| byte == 0) {
        return Ok(None);
    }
    let (body, sum) = slot.split_at(slot.len().saturating_sub(32));
    if sum.len() != 32 || checksum(body)[..] != *sum {
        return Err(SlotError::Checksum);
    }
    let metadata = codec::decode_bounded::<SectorMetadata>("sector metadata", body, body.len())
        .map_err(|error| SlotError::Decode(error.to_string()))?;
    if metadata.sector_index != index {
        return Err(SlotError::WrongSector {
            expected: index,
            found: metadata.sector_index,
        });
    }
    if metadata.pieces_in_sector != header.pieces_per_sector {
        return Err(SlotError::WrongPieceCount {
            expected: header.pieces_per_sector,
            found: metadata.pieces_in_sector,
        });
    }
    // The s-bucket table's length needs no check: a slot is exactly one encoding with `s_buckets`
    // entries, so any other length fails the checksum or decoding above.
    if let Some((s_bucket, &size)) = metadata
        .s_bucket_sizes
        .iter()
        .enumerate()
        .find(|(_, size)| **size > metadata.pieces_in_sector)
    {
        return Err(SlotError::SBucketTooLarge {
            s_bucket,
            size,
            max: metadata.pieces_in_sector,
        });
    }
    Ok(Some(metadata))
}

/// Sizes a new farm file to `len` bytes with its blocks allocated, so that a disk too small for the
/// farm fails its creation rather than a sector write hours into plotting. File systems that cannot
/// preallocate get a sparse file instead.
fn reserve(file: &File, len: u64) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, len) {
        Ok(()) => return Ok(()),
        Err(rustix::io::Errno::OPNOTSUPP) => {}
        Err(errno) => return Err(errno.into()),
    }
    file.set_len(len)
}

/// Where a farm is built before it is linked into place.
fn temporary_path(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".creating");
    path.with_file_name(name)
}

/// Syncs the directory holding `path`, making a new name in it durable.
fn sync_parent(path: &Path) -> Result<(), Error> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|directory| directory.sync_all())
        .map_err(Error::io(format!("syncing the directory {}", parent.display())))
}

/// The id of a parameter set: BLAKE3 of its canonical encoding.
pub fn params_id(params: &ProtocolParams) -> Blake3Hash {
    Blake3Hash(checksum(&codec::encode(params)))
}

/// An open farm.
#[derive(Debug)]
pub struct Farm {
    path: PathBuf,
    file: File,
    params: ProtocolParams,
    header: FarmHeader,
    layout: SectorLayout,
    sectors: Vec<Option<SectorMetadata>>,
}

impl Farm {
    fn slot_size(params: &ProtocolParams) -> u64 {
        // sector index u16, pieces u16, history size u64, s-bucket sizes (u32 length + u16 each), checksum.
        (2 + 2 + 8 + 4 + 2 * params.s_buckets() as usize + 32) as u64
    }

    fn sectors_start(&self) -> u64 {
        let end = HEADER_SIZE + u64::from(self.header.sector_count) * Self::slot_size(&self.params);
        end.div_ceil(ALIGNMENT) * ALIGNMENT
    }

    fn slot_offset(&self, index: SectorIndex) -> u64 {
        HEADER_SIZE + u64::from(index.0) * Self::slot_size(&self.params)
    }

    fn sector_offset(&self, index: SectorIndex) -> u64 {
        self.sectors_start() + u64::from(index.0) * self.layout.sector_size() as u64
    }

    /// Creates a new farm file of `sector_count` sectors (the file must not exist), crash-safely: see the
    /// module docs.
    pub fn create(path: &Path, params: &ProtocolParams, header: FarmHeader) -> Result<Self, Error> {
        let temporary = temporary_path(path);
        let created = Self::create_at(&temporary, path, params, header);
        if created.is_err() {
            // Give the space back (a farm too large for its disk is refused here, not hours later).
            let _ = std::fs::remove_file(&temporary);
        }
        created
    }

    fn create_at(
        temporary: &Path,
        path: &Path,
        params: &ProtocolParams,
        header: FarmHeader,
    ) -> Result<Self, Error> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(temporary)
            .map_err(Error::io(format!("creating {}", temporary.display())))?;
        let mut farm = Self {
            path: temporary.to_owned(),
            file,
            params: params.clone(),
            header,
            layout: SectorLayout::new(params, header.pieces_per_sector),
            sectors: vec![None; usize::from(header.sector_count)],
        };
        let len = farm.sector_offset(SectorIndex(header.sector_count));
        reserve(&farm.file, len).map_err(Error::io(format!(
            "reserving {len} bytes of disk for {}",
            path.display()
        )))?;
        farm.file
            .write_all_at(&header.encode(), 0)
            .and_then(|()| farm.file.sync_all())
            .map_err(Error::io(format!(
                "writing the header of {}",
                temporary.display()
            )))?;
        // A hard link publishes the finished file atomically and, unlike rename, refuses to replace a farm.
        std::fs::hard_link(temporary, path).map_err(Error::io(format!("creating {}", path.display())))?;
        std::fs::remove_file(temporary).map_err(Error::io(format!("removing {}", temporary.display())))?;
        sync_parent(path)?;
        farm.path = path.to_owned();
        Ok(farm)
    }

    /// Opens an existing farm, checking it was made for these parameters; sectors whose metadata is missing
    /// or fails its checksum (an interrupted write) are treated as unplotted.
    pub fn open(path: &Path, params: &ProtocolParams) -> Result<Self, Error> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(Error::io(format!("opening {}", path.display())))?;
        let invalid = |reason: String| Error::InvalidFarm {
            path: path.to_owned(),
            reason,
        };
        let mut bytes = vec![0u8; HEADER_SIZE as usize];
        let unfinished = || Error::UnfinishedFarm {
            path: path.to_owned(),
        };
        match file.read_exact_at(&mut bytes, 0) {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::UnexpectedEof => return Err(unfinished()),
            Err(error) => return Err(invalid(format!("reading the header: {error}"))),
        }
        // A header never written: the creation was interrupted before anything else was written either.
        if bytes.iter().all(|&byte| byte == 0) {
            return Err(unfinished());
        }
        let header = FarmHeader::decode(&bytes).map_err(invalid)?;
        if header.params_id != params_id(params) {
            return Err(invalid(
                "the farm was made for another protocol parameter set".into(),
            ));
        }
        let mut farm = Self {
            path: path.to_owned(),
            file,
            params: params.clone(),
            header,
            layout: SectorLayout::new(params, header.pieces_per_sector),
            sectors: Vec::new(),
        };
        let expected_len = farm.sector_offset(SectorIndex(header.sector_count));
        let len = farm
            .file
            .metadata()
            .map_err(Error::io("reading the farm's size"))?
            .len();
        if len < expected_len {
            return Err(invalid(format!(
                "the file is {len} bytes, {expected_len} expected"
            )));
        }
        farm.sectors = (0..header.sector_count)
            .map(|index| farm.read_slot(SectorIndex(index)))
            .collect::<Result<_, _>>()?;
        Ok(farm)
    }

    fn read_slot(&self, index: SectorIndex) -> Result<Option<SectorMetadata>, Error> {
        let mut slot = vec![0u8; Self::slot_size(&self.params) as usize];
        self.file
            .read_exact_at(&mut slot, self.slot_offset(index))
            .map_err(Error::io(format!("reading metadata of sector {index}")))?;
        match check_slot(&self.header, index, &slot) {
            Ok(metadata) => Ok(metadata),
            Err(reason) => {
                warn!(target: "acre::farm", path = %self.path.display(), sector = index.0, %reason, "sector metadata is invalid; the sector will be plotted again");
                Ok(None)
            }
        }
    }

    fn write_synced(&self, offset: u64, bytes: &[u8], what: &str) -> Result<(), Error> {
        let context = || format!("writing {what} of {}", self.path.display());
        // Tests tear this write: only the first N bytes reach the file, then the "process dies".
        fail::fail_point!("plot-torn-write", |kept: Option<String>| {
            let kept = kept
                .and_then(|kept| kept.parse().ok())
                .unwrap_or(0)
                .min(bytes.len());
            let _ = self.file.write_all_at(&bytes[..kept], offset);
            Err(Error::io(context())(std::io::Error::other(
                "torn write (fault injection)",
            )))
        });
        self.file
            .write_all_at(bytes, offset)
            .map_err(Error::io(context()))?;
        self.file.sync_data().map_err(Error::io(context()))
    }

    /// The farm's header.
    pub fn header(&self) -> &FarmHeader {
        &self.header
    }

    /// The farm's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The metadata of every plotted sector.
    pub fn plotted(&self) -> impl Iterator<Item = &SectorMetadata> {
        self.sectors.iter().flatten()
    }

    /// The metadata of sector `index`, if plotted.
    pub fn sector(&self, index: SectorIndex) -> Option<&SectorMetadata> {
        self.sectors.get(usize::from(index.0)).and_then(Option::as_ref)
    }

    /// The first sector not plotted yet.
    pub fn first_unplotted(&self) -> Option<SectorIndex> {
        self.sectors
            .iter()
            .position(Option::is_none)
            .map(|i| SectorIndex(i as u16))
    }

    /// Reads the bytes of sector `index`.
    pub fn reader(&self, index: SectorIndex) -> FileSector<'_> {
        FileSector {
            file: &self.file,
            path: &self.path,
            base: self.sector_offset(index),
        }
    }

    /// Writes a plotted sector crash-safely (see the module docs).
    pub fn write_sector(&mut self, sector: &PlottedSector) -> Result<(), Error> {
        let index = sector.metadata.sector_index;
        let slot = usize::from(index.0);
        if sector.bytes.len() != self.layout.sector_size() {
            return Err(Error::OutOfRange {
                what: "sector index",
                value: u64::from(index.0),
                max: self.sectors.len() as u64,
            });
        }
        self.free_sector(index)?;
        self.write_synced(self.sector_offset(index), &sector.bytes, "a sector")?;
        let mut encoded = codec::encode(&sector.metadata);
        let sum = checksum(&encoded);
        encoded.extend_from_slice(&sum);
        self.write_synced(self.slot_offset(index), &encoded, "sector metadata")?;
        self.sectors[slot] = Some(sector.metadata.clone());
        Ok(())
    }

    /// Checks every plotted sector's checksum; returns the corrupted ones.
    pub fn scrub(&self) -> Result<Vec<Error>, Error> {
        let indices: Vec<SectorIndex> = self.plotted().map(|metadata| metadata.sector_index).collect();
        let mut corrupted = Vec::new();
        for index in indices {
            corrupted.extend(self.check_sector(index)?);
        }
        Ok(corrupted)
    }

    /// Checks plotted sector `index`'s checksum: `Some(Error::CorruptedSector)` naming its byte range if
    /// it does not match, `None` if it does or the sector is not plotted. `Err` only if it cannot be read.
    pub fn check_sector(&self, index: SectorIndex) -> Result<Option<Error>, Error> {
        if self.sector(index).is_none() {
            return Ok(None);
        }
        let range = self.sector_range(index);
        let mut bytes = vec![0u8; self.layout.sector_size()];
        self.file
            .read_exact_at(&mut bytes, range.start)
            .map_err(Error::io(format!("reading sector {index}")))?;
        Ok(
            (!verify_checksum(&self.layout, &bytes)).then(|| Error::CorruptedSector {
                path: self.path.clone(),
                sector_index: index,
                offset: range.start,
                end: range.end,
            }),
        )
    }

    /// The byte range of sector `index` within the file.
    pub fn sector_range(&self, index: SectorIndex) -> std::ops::Range<u64> {
        let start = self.sector_offset(index);
        start..start + self.layout.sector_size() as u64
    }

    /// Forgets sector `index` (its metadata slot emptied, synced), so it is plotted again; for a sector
    /// found damaged.
    pub fn free_sector(&mut self, index: SectorIndex) -> Result<(), Error> {
        let slot = usize::from(index.0);
        if slot >= self.sectors.len() {
            return Err(Error::OutOfRange {
                what: "sector index",
                value: u64::from(index.0),
                max: self.sectors.len() as u64,
            });
        }
        let slot_size = Self::slot_size(&self.params) as usize;
        self.sectors[slot] = None;
        self.write_synced(
            self.slot_offset(index),
            &vec![0u8; slot_size],
            "an emptied metadata slot",
        )
    }

    /// Takes an exclusive advisory lock on the farm file for as long as this `Farm` is open, so two
    /// processes never write one farm; fails with [`Error::FarmInUse`] if another holds it.
    pub fn lock_exclusive(&self) -> Result<(), Error> {
        use rustix::fs::{FlockOperation, flock};
        flock(&self.file, FlockOperation::NonBlockingLockExclusive).map_err(|error| {
            if error == rustix::io::Errno::WOULDBLOCK {
                Error::FarmInUse {
                    path: self.path.clone(),
                }
            } else {
                Error::io(format!("locking {}", self.path.display()))(error.into())
            }
        })
    }

    /// History sizes of the plotted sectors (for replotting decisions).
    pub fn history_sizes(&self) -> impl Iterator<Item = (SectorIndex, HistorySize)> + '_ {
        self.plotted()
            .map(|metadata| (metadata.sector_index, metadata.history_size))
    }
}

#[cfg(test)]
#[path = "plot_file_tests.rs"]
mod tests;
