//! The on-disk layout of an archive directory (a contract other tools rely on):
//!
//! - `DIR/segment-headers`: the canonical encodings of the segment headers, back to back, in order;
//! - `DIR/segment-<index>/piece-<position>`: one encoded piece per file.
//!
//! `acre archive` writes it, `acre retrieve` reads it back, and a farmer can plot from it. Writes are
//! crash-safe: a segment's pieces are written and fsynced into a temporary directory, which is fsynced,
//! renamed into place, and made durable by fsyncing the archive directory; only then is the headers file
//! replaced atomically (temporary file, fsync, rename, directory fsync). The headers file publishes a
//! segment, so after a crash at any point every published segment's pieces are on disk, and a segment
//! directory that is not (yet) published is rewritten by the next attempt. Reading trusts only the headers
//! file: pieces are verified by their users.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use acre_consensus::{Piece, PiecePosition, ProtocolParams, SegmentHeader, SegmentIndex};

use crate::error::Error;

/// Name of the headers file.
pub const HEADERS_FILE: &str = "segment-headers";

fn io_error(context: String) -> impl FnOnce(io::Error) -> Error {
    move |error| Error::Io {
        context,
        reason: error.to_string(),
    }
}

/// Directory of a segment's pieces.
pub fn segment_dir(dir: &Path, index: SegmentIndex) -> PathBuf {
    dir.join(format!("segment-{index}"))
}

/// Path of one piece.
pub fn piece_path(dir: &Path, index: SegmentIndex, position: PiecePosition) -> PathBuf {
    segment_dir(dir, index).join(format!("piece-{position}"))
}

/// Writes `bytes` to `path` atomically and durably (temporary file, fsync, rename, directory fsync).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    let mut file = fs::File::create(&tmp).map_err(io_error(format!("creating {}", tmp.display())))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_error(format!("writing {}", tmp.display())))?;
    fs::rename(&tmp, path).map_err(io_error(format!("renaming {} into place", tmp.display())))?;
    sync_dir(parent_of(path))
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Fsyncs a directory, making the names created or renamed in it durable.
fn sync_dir(dir: &Path) -> Result<(), Error> {
    fs::File::open(dir)
        .and_then(|directory| directory.sync_all())
        .map_err(io_error(format!("syncing the directory {}", dir.display())))
}

/// Creates the archive directory, refusing to mix a new archive into an existing one.
pub fn create(dir: &Path) -> Result<(), Error> {
    if dir.exists() {
        let mut entries = fs::read_dir(dir).map_err(io_error(format!("reading {}", dir.display())))?;
        if entries.next().is_some() {
            return Err(Error::InvalidArchive(format!(
                "{} exists and is not empty; choose a new directory",
                dir.display()
            )));
        }
    }
    fs::create_dir_all(dir).map_err(io_error(format!("creating {}", dir.display())))
}

/// The durable steps of [`write_segment`], in the order they must happen (observed by tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteStep {
    /// A piece file was written and fsynced in the temporary directory.
    PieceSynced(usize),
    /// The temporary directory's entries were fsynced.
    TemporaryDirSynced,
    /// It was renamed into place and the archive directory fsynced.
    SegmentDirPublished,
    /// The headers file naming the segment was replaced durably.
    HeadersPublished,
}

/// Writes one sealed segment's pieces durably, then the headers file including its header (the last of
/// `headers`), which publishes it.
pub fn write_segment(dir: &Path, pieces: &[Piece], headers: &[SegmentHeader]) -> Result<(), Error> {
    write_segment_observed(dir, pieces, headers, &mut |_| {})
}

pub(crate) fn write_segment_observed(
    dir: &Path,
    pieces: &[Piece],
    headers: &[SegmentHeader],
    observe: &mut dyn FnMut(WriteStep),
) -> Result<(), Error> {
    let header = headers
        .last()
        .ok_or(Error::InvalidArchive("a written segment needs its header".into()))?;
    // Rewriting a published segment would remove its pieces before their replacement is in place.
    let published = match fs::metadata(dir.join(HEADERS_FILE)) {
        Ok(metadata) => metadata.len() / SegmentHeader::ENCODED_SIZE as u64,
        Err(error) if error.kind() == io::ErrorKind::NotFound => 0,
        Err(error) => {
            return Err(io_error(format!("reading {}", dir.join(HEADERS_FILE).display()))(
                error,
            ));
        }
    };
    if header.segment_index.0 < published {
        return Err(Error::InvalidArchive(format!(
            "segment {} is already published in {}",
            header.segment_index,
            dir.display()
        )));
    }
    let final_dir = segment_dir(dir, header.segment_index);
    let tmp_dir = final_dir.with_extension("tmp");
    if tmp_dir.exists() {
        fs::remove_dir_all(&tmp_dir).map_err(io_error(format!("removing stale {}", tmp_dir.display())))?;
    }
    fs::create_dir(&tmp_dir).map_err(io_error(format!("creating {}", tmp_dir.display())))?;
    for (position, piece) in pieces.iter().enumerate() {
        let path = tmp_dir.join(format!("piece-{position}"));
        let mut file = fs::File::create(&path).map_err(io_error(format!("creating {}", path.display())))?;
        file.write_all(&piece.encode())
            .and_then(|()| file.sync_all())
            .map_err(io_error(format!("writing {}", path.display())))?;
        observe(WriteStep::PieceSynced(position));
    }
    sync_dir(&tmp_dir)?;
    observe(WriteStep::TemporaryDirSynced);
    // A segment directory not named by the headers file is left from an attempt interrupted before
    // publishing: replace it (rename cannot replace a non-empty directory).
    if final_dir.exists() {
        fs::remove_dir_all(&final_dir)
            .map_err(io_error(format!("removing unpublished {}", final_dir.display())))?;
    }
    fs::rename(&tmp_dir, &final_dir)
        .map_err(io_error(format!("renaming {} into place", tmp_dir.display())))?;
    sync_dir(dir)?;
    observe(WriteStep::SegmentDirPublished);
    let encoded: Vec<u8> = headers.iter().flat_map(SegmentHeader::encode).collect();
    write_atomically(&dir.join(HEADERS_FILE), &encoded)?;
    observe(WriteStep::HeadersPublished);
    Ok(())
}

/// Reads and checks the headers file: whole headers, chained by hash from segment 0.
pub fn read_headers(dir: &Path) -> Result<Vec<SegmentHeader>, Error> {
    let path = dir.join(HEADERS_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(Error::InvalidArchive(format!(
                "{} is missing: {} is not an archive directory",
                path.display(),
                dir.display()
            )));
        }
        Err(error) => return Err(io_error(format!("reading {}", path.display()))(error)),
    };
    let size = SegmentHeader::ENCODED_SIZE;
    if bytes.is_empty() || bytes.len() % size != 0 {
        return Err(Error::InvalidArchive(format!(
            "{} is {} bytes, not a whole number of {size}-byte segment headers",
            path.display(),
            bytes.len()
        )));
    }
    let mut headers: Vec<SegmentHeader> = Vec::with_capacity(bytes.len() / size);
    for (i, encoded) in bytes.chunks_exact(size).enumerate() {
        let header = SegmentHeader::decode(encoded).map_err(|error| {
            Error::InvalidArchive(format!("segment header {i} in {}: {error}", path.display()))
        })?;
        let chained = match headers.last() {
            None => header.segment_index == SegmentIndex(0),
            Some(prev) => header.follows(prev),
        };
        if !chained {
            return Err(Error::InvalidArchive(format!(
                "segment header {} does not chain to the one before it: the headers file is corrupted",
                header.segment_index
            )));
        }
        headers.push(header);
    }
    Ok(headers)
}

/// A segment's pieces as found on disk: `None` where missing; undecodable files are reported.
#[derive(Debug)]
pub struct FoundPieces {
    /// Pieces by position.
    pub pieces: Vec<Option<Piece>>,
    /// Files that exist but do not decode, with the reason.
    pub undecodable: Vec<(PiecePosition, String)>,
    /// Bytes read.
    pub bytes_read: u64,
}

/// Reads one piece file: `Ok(None)` if it is missing.
pub fn read_piece(
    params: &ProtocolParams,
    dir: &Path,
    index: SegmentIndex,
    position: PiecePosition,
) -> Result<Option<Result<Piece, String>>, Error> {
    let path = piece_path(dir, index, position);
    match fs::read(&path) {
        Ok(bytes) => Ok(Some(
            Piece::decode(params, &bytes).map_err(|error| error.to_string()),
        )),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(io_error(format!("reading {}", path.display()))(error)),
    }
}

/// Reads every piece file of a segment that exists.
pub fn read_pieces(params: &ProtocolParams, dir: &Path, index: SegmentIndex) -> Result<FoundPieces, Error> {
    let count = params.pieces_per_segment();
    let mut found = FoundPieces {
        pieces: Vec::with_capacity(count as usize),
        undecodable: Vec::new(),
        bytes_read: 0,
    };
    for position in 0..count {
        let position = PiecePosition(u16::try_from(position).expect("pieces per segment fit in u16"));
        let piece = match read_piece(params, dir, index, position)? {
            Some(Ok(piece)) => {
                found.bytes_read += params.piece_size() as u64;
                Some(piece)
            }
            Some(Err(reason)) => {
                found.undecodable.push((position, reason));
                None
            }
            None => None,
        };
        found.pieces.push(piece);
    }
    Ok(found)
}

#[cfg(test)]
#[path = "archive_dir_tests.rs"]
mod tests;
