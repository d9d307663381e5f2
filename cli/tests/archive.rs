//! End-to-end tests of `acre archive` / `acre retrieve`, running the real binary with the `dev` parameters.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rand::seq::SliceRandom;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const PIECES_PER_SEGMENT: usize = 32;

fn acre(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_acre"))
        .args(args)
        .output()
        .expect("running acre")
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Writes a random file and archives it; returns (file, archive dir, segment count).
fn archived_file(root: &Path, len: usize, seed: u64) -> (PathBuf, PathBuf, usize) {
    let file = root.join("input");
    let mut bytes = vec![0u8; len];
    ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut bytes);
    fs::write(&file, &bytes).expect("writing input");
    let dir = root.join("archive");
    let output = acre(&[
        "archive",
        "--params",
        "dev",
        "--block-size",
        "50000",
        path_str(&file),
        path_str(&dir),
    ]);
    assert!(
        output.status.success(),
        "archive failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let segments = fs::read_dir(&dir)
        .expect("archive dir")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_dir()))
        .count();
    (file, dir, segments)
}

fn piece(dir: &Path, segment: usize, position: usize) -> PathBuf {
    dir.join(format!("segment-{segment}"))
        .join(format!("piece-{position}"))
}

#[test]
fn retrieves_after_half_of_every_segment_is_deleted_or_corrupted() {
    let root = tempfile::tempdir().expect("tempdir");
    let (file, dir, segments) = archived_file(root.path(), 300_000, 1);
    assert!(
        segments >= 5,
        "300 kB spans several 64 KiB segments, got {segments}"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for segment in 0..segments {
        let mut positions: Vec<usize> = (0..PIECES_PER_SEGMENT).collect();
        positions.shuffle(&mut rng);
        // Delete 15 pieces and corrupt one more: exactly half remain valid.
        for &position in &positions[..15] {
            fs::remove_file(piece(&dir, segment, position)).expect("deleting a piece");
        }
        let corrupt = piece(&dir, segment, positions[15]);
        let mut bytes = fs::read(&corrupt).expect("reading a piece");
        bytes[100] ^= 0x10;
        fs::write(&corrupt, bytes).expect("corrupting a piece");
    }
    let restored = root.path().join("restored");
    let output = acre(&["retrieve", "--params", "dev", path_str(&dir), path_str(&restored)]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "retrieve failed: {stderr}");
    assert_eq!(
        fs::read(&restored).expect("restored file"),
        fs::read(&file).expect("input file")
    );
    assert_eq!(
        stderr.matches("is corrupted").count(),
        segments,
        "each corrupted piece is named: {stderr}"
    );
}

#[test]
fn too_few_pieces_names_the_segment_and_the_count() {
    let root = tempfile::tempdir().expect("tempdir");
    let (_, dir, _) = archived_file(root.path(), 200_000, 3);
    for position in 0..17 {
        fs::remove_file(piece(&dir, 2, position)).expect("deleting a piece");
    }
    let restored = root.path().join("restored");
    let output = acre(&["retrieve", "--params", "dev", path_str(&dir), path_str(&restored)]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("cannot rebuild segment 2: 17 of 32 pieces are missing"),
        "{stderr}"
    );
    assert!(!restored.exists(), "no output is left behind");
    assert!(
        !restored.with_extension("retrieving").exists(),
        "no partial output is left behind"
    );
}

#[test]
fn truncated_piece_is_reported_and_tolerated() {
    let root = tempfile::tempdir().expect("tempdir");
    let (file, dir, _) = archived_file(root.path(), 100_000, 4);
    let victim = piece(&dir, 0, 7);
    let bytes = fs::read(&victim).expect("reading a piece");
    fs::write(&victim, &bytes[..bytes.len() - 1]).expect("truncating a piece");
    let restored = root.path().join("restored");
    let output = acre(&["retrieve", "--params", "dev", path_str(&dir), path_str(&restored)]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("segment 0 piece 7 is corrupted"), "{stderr}");
    assert_eq!(
        fs::read(&restored).expect("restored"),
        fs::read(&file).expect("input")
    );
}

#[test]
fn missing_or_corrupted_headers_are_clear_errors() {
    let root = tempfile::tempdir().expect("tempdir");
    let (_, dir, _) = archived_file(root.path(), 150_000, 5);
    let headers = dir.join("segment-headers");
    let original = fs::read(&headers).expect("headers");
    let restored = root.path().join("restored");
    let retrieve = || acre(&["retrieve", "--params", "dev", path_str(&dir), path_str(&restored)]);

    let mut tampered = original.clone();
    tampered[100] ^= 1; // inside the second header: breaks the hash chain or its root
    fs::write(&headers, &tampered).expect("tampering");
    let output = retrieve();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("segment"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    fs::remove_file(&headers).expect("removing headers");
    let output = retrieve();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("segment-headers is missing"), "{stderr}");
}

#[test]
fn empty_file_round_trips_and_existing_archives_are_not_overwritten() {
    let root = tempfile::tempdir().expect("tempdir");
    let (file, dir, segments) = archived_file(root.path(), 0, 6);
    assert_eq!(segments, 1);
    let restored = root.path().join("restored");
    let output = acre(&["retrieve", "--params", "dev", path_str(&dir), path_str(&restored)]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(fs::read(&restored).expect("restored"), Vec::<u8>::new());

    let output = acre(&["archive", "--params", "dev", path_str(&file), path_str(&dir)]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not empty"));
}
