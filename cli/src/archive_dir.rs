//! The on-disk layout of an archive directory (a contract other tools rely on):
//!
//! - `DIR/segment-headers`: the canonical encodings of the segment headers, back to back, in order;
//! - `DIR/segment-<index>/piece-<position>`: one encoded piece per file.
//!
//! Writes are crash-safe: a segment's pieces are written into a temporary directory renamed into place
//! when complete, and the headers file is replaced atomically after each segment, so an interrupted
//! archive holds only whole segments.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use acre_consensus::{Piece, PiecePosition, ProtocolParams, SegmentHeader, SegmentIndex};
use anyhow::{Context, Result, bail, ensure};

/// Name of the headers file.
pub(crate) const HEADERS_FILE: &str = "segment-headers";

/// Directory of a segment's pieces.
pub(crate) fn segment_dir(dir: &Path, index: SegmentIndex) -> PathBuf {
    dir.join(format!("segment-{index}"))
}

/// Path of one piece.
pub(crate) fn piece_path(dir: &Path, index: SegmentIndex, position: PiecePosition) -> PathBuf {
    segment_dir(dir, index).join(format!("piece-{position}"))
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming {} into place", tmp.display()))
}

/// Creates the archive directory, refusing to mix a new archive into an existing one.
pub(crate) fn create(dir: &Path) -> Result<()> {
    if dir.exists() {
        let mut entries = fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        ensure!(
            entries.next().is_none(),
            "{} exists and is not empty; choose a new directory",
            dir.display()
        );
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Writes one sealed segment's pieces, then the headers file including its header.
pub(crate) fn write_segment(dir: &Path, pieces: &[Piece], headers: &[SegmentHeader]) -> Result<()> {
    let header = headers.last().context("a written segment has a header")?;
    let final_dir = segment_dir(dir, header.segment_index);
    let tmp_dir = final_dir.with_extension("tmp");
    if tmp_dir.exists() {
        fs::remove_dir_all(&tmp_dir).with_context(|| format!("removing stale {}", tmp_dir.display()))?;
    }
    fs::create_dir(&tmp_dir).with_context(|| format!("creating {}", tmp_dir.display()))?;
    for (position, piece) in pieces.iter().enumerate() {
        let path = tmp_dir.join(format!("piece-{position}"));
        fs::write(&path, piece.encode()).with_context(|| format!("writing {}", path.display()))?;
    }
    fs::rename(&tmp_dir, &final_dir).with_context(|| format!("renaming {} into place", tmp_dir.display()))?;
    let encoded: Vec<u8> = headers.iter().flat_map(SegmentHeader::encode).collect();
    write_atomically(&dir.join(HEADERS_FILE), &encoded)
}

/// Reads and checks the headers file: whole headers, chained by hash from segment 0.
pub(crate) fn read_headers(dir: &Path) -> Result<Vec<SegmentHeader>> {
    let path = dir.join(HEADERS_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            bail!(
                "{} is missing: {} is not an archive directory",
                path.display(),
                dir.display()
            )
        }
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    let size = SegmentHeader::ENCODED_SIZE;
    ensure!(
        !bytes.is_empty() && bytes.len() % size == 0,
        "{} is {} bytes, not a whole number of {size}-byte segment headers",
        path.display(),
        bytes.len()
    );
    let mut headers: Vec<SegmentHeader> = Vec::with_capacity(bytes.len() / size);
    for (i, encoded) in bytes.chunks_exact(size).enumerate() {
        let header = SegmentHeader::decode(encoded)
            .with_context(|| format!("segment header {i} in {}", path.display()))?;
        match headers.last() {
            None => ensure!(
                header.segment_index == SegmentIndex(0),
                "the first header is for segment {}, not 0",
                header.segment_index
            ),
            Some(prev) => ensure!(
                header.follows(prev),
                "segment header {} does not chain to the header of segment {}: the headers file is corrupted",
                header.segment_index,
                prev.segment_index
            ),
        }
        headers.push(header);
    }
    Ok(headers)
}

/// A segment's pieces as found on disk: `None` where missing; undecodable files are reported.
pub(crate) struct FoundPieces {
    pub(crate) pieces: Vec<Option<Piece>>,
    pub(crate) undecodable: Vec<(PiecePosition, String)>,
    pub(crate) bytes_read: u64,
}

/// Reads every piece file of a segment that exists.
pub(crate) fn read_pieces(params: &ProtocolParams, dir: &Path, index: SegmentIndex) -> Result<FoundPieces> {
    let count = params.pieces_per_segment();
    let mut found = FoundPieces {
        pieces: Vec::with_capacity(count as usize),
        undecodable: Vec::new(),
        bytes_read: 0,
    };
    for position in 0..count {
        let position = PiecePosition(u16::try_from(position).context("piece positions fit in u16")?);
        let path = piece_path(dir, index, position);
        let piece = match fs::read(&path) {
            Ok(bytes) => {
                found.bytes_read += bytes.len() as u64;
                match Piece::decode(params, &bytes) {
                    Ok(piece) => Some(piece),
                    Err(error) => {
                        found.undecodable.push((position, error.to_string()));
                        None
                    }
                }
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
        };
        found.pieces.push(piece);
    }
    Ok(found)
}
