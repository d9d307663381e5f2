//! Durability order and crash recovery of archive directories.

use std::panic::{AssertUnwindSafe, catch_unwind};

use acre_consensus::{BlockNumber, PiecePosition, ProtocolParams, SegmentIndex};

use super::*;
use crate::{ArchivedSegment, Archiver};

fn segments(count: usize) -> (ProtocolParams, Vec<ArchivedSegment>) {
    let params = ProtocolParams::dev();
    let mut archiver = Archiver::new(params.clone()).expect("dev params");
    let mut segments = Vec::new();
    let mut number = 0;
    while segments.len() < count {
        let block: Vec<u8> = (0..params.segment_size() / 2)
            .map(|i| (i + number as usize) as u8)
            .collect();
        segments.extend(archiver.add_block(BlockNumber(number), &block).expect("archives"));
        number += 1;
    }
    segments.truncate(count);
    (params, segments)
}

fn headers(segments: &[ArchivedSegment]) -> Vec<SegmentHeader> {
    segments.iter().map(|segment| segment.header).collect()
}

#[test]
fn pieces_are_durable_before_the_segment_is_published() {
    let (_, segments) = segments(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut steps = Vec::new();
    write_segment_observed(
        dir.path(),
        &segments[0].pieces,
        &headers(&segments),
        &mut |step| steps.push(step),
    )
    .expect("writes");
    let mut expected: Vec<_> = (0..segments[0].pieces.len())
        .map(WriteStep::PieceSynced)
        .collect();
    expected.extend([
        WriteStep::TemporaryDirSynced,
        WriteStep::SegmentDirPublished,
        WriteStep::HeadersPublished,
    ]);
    assert_eq!(steps, expected);
}

#[test]
fn a_crash_before_the_headers_file_leaves_the_segment_unpublished_and_a_retry_replaces_it() {
    let (params, segments) = segments(2);
    let dir = tempfile::tempdir().expect("tempdir");
    write_segment(dir.path(), &segments[0].pieces, &headers(&segments[..1])).expect("segment 0");

    // Crash right after segment 1's directory is in place, before the headers file names it.
    let crashed = catch_unwind(AssertUnwindSafe(|| {
        write_segment_observed(
            dir.path(),
            &segments[1].pieces,
            &headers(&segments),
            &mut |step| {
                assert_ne!(step, WriteStep::SegmentDirPublished, "simulated crash");
            },
        )
    }));
    assert!(crashed.is_err());
    assert_eq!(
        read_headers(dir.path()).expect("readable"),
        headers(&segments[..1])
    );
    assert!(segment_dir(dir.path(), SegmentIndex(1)).exists());

    // Damage the unpublished directory: the retry must replace it, not trust it.
    fs::write(piece_path(dir.path(), SegmentIndex(1), PiecePosition(0)), b"junk").expect("writes");
    write_segment(dir.path(), &segments[1].pieces, &headers(&segments)).expect("retry");
    assert_eq!(read_headers(dir.path()).expect("readable"), headers(&segments));
    let found = read_pieces(&params, dir.path(), SegmentIndex(1)).expect("reads");
    assert!(found.undecodable.is_empty());
    let pieces: Vec<_> = found
        .pieces
        .into_iter()
        .map(|piece| piece.expect("present"))
        .collect();
    assert_eq!(pieces, segments[1].pieces);
}

#[test]
fn a_published_segment_is_never_rewritten() {
    let (params, segments) = segments(1);
    let dir = tempfile::tempdir().expect("tempdir");
    write_segment(dir.path(), &segments[0].pieces, &headers(&segments)).expect("writes");
    let mut other = segments[0].pieces.clone();
    other.reverse();
    assert!(matches!(
        write_segment(dir.path(), &other, &headers(&segments)),
        Err(Error::InvalidArchive(_))
    ));
    let found = read_pieces(&params, dir.path(), SegmentIndex(0)).expect("reads");
    let pieces: Vec<_> = found
        .pieces
        .into_iter()
        .map(|piece| piece.expect("present"))
        .collect();
    assert_eq!(pieces, segments[0].pieces);
}
