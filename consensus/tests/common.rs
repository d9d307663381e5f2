//! Helpers shared by the integration tests (`mod common;`).

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

/// Decodes hex; panics on malformed test data.
pub fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text.trim()).expect("test vectors hold valid hex")
}

/// The non-empty, non-comment lines of a vector file.
pub fn vector_lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
}

/// Path of a file under `tests/vectors/`.
pub fn vector_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("vectors")
        .join(name)
}

/// Compares `actual` with the frozen vector file `name`. With `ACRE_REGENERATE_VECTORS=1` it writes the file
/// instead (do that once, review the diff, commit it; never to make a failing test pass silently).
pub fn check_frozen(name: &str, actual: &str) {
    let path = vector_path(name);
    if std::env::var_os("ACRE_REGENERATE_VECTORS").is_some() {
        std::fs::write(&path, actual).expect("writing test vectors");
        return;
    }
    let frozen = std::fs::read_to_string(&path).expect("frozen vector file exists");
    let frozen_lines = vector_lines(&frozen);
    let actual_lines = vector_lines(actual);
    assert_eq!(
        frozen_lines.len(),
        actual_lines.len(),
        "{name}: number of vectors changed"
    );
    for (line, (frozen, actual)) in frozen_lines.iter().zip(&actual_lines).enumerate() {
        assert_eq!(frozen, actual, "{name}: vector {line} changed");
    }
}
