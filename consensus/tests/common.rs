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

/// The variable that makes [`check_frozen`] rewrite the vector files.
pub const REGENERATE_VARIABLE: &str = "ACRE_REGENERATE_VECTORS";

/// What [`check_frozen`] does about the regeneration variable.
#[derive(Debug, PartialEq, Eq)]
pub enum Regeneration {
    /// Not requested: compare with the committed file.
    Compare,
    /// Requested on a developer machine: rewrite the file, then fail if it changed.
    Rewrite,
    /// Requested where `CI` is set: refuse, since CI must only ever compare.
    RefusedInCi,
}

/// Decides from the two variables' presence (pure, so it is tested without touching the environment).
pub fn regeneration(regenerate: bool, ci: bool) -> Regeneration {
    match (regenerate, ci) {
        (false, _) => Regeneration::Compare,
        (true, false) => Regeneration::Rewrite,
        (true, true) => Regeneration::RefusedInCi,
    }
}

/// Compares `actual` with the frozen vector file `name`. With `ACRE_REGENERATE_VECTORS=1` it rewrites the
/// file, and then still *fails* if the content changed, telling the developer to review and commit the
/// diff, so regeneration can never make a changed format pass silently; with `CI` set it refuses outright.
pub fn check_frozen(name: &str, actual: &str) {
    let mode = regeneration(
        std::env::var_os(REGENERATE_VARIABLE).is_some(),
        std::env::var_os("CI").is_some(),
    );
    check_frozen_at(&vector_path(name), name, actual, mode);
}

/// [`check_frozen`] against the file at `path` in `mode`.
pub fn check_frozen_at(path: &std::path::Path, name: &str, actual: &str, mode: Regeneration) {
    match mode {
        Regeneration::Compare => {}
        Regeneration::RefusedInCi => {
            panic!(
                "{REGENERATE_VARIABLE} is set under CI: frozen vectors are only compared there, never rewritten"
            )
        }
        Regeneration::Rewrite => {
            let before = std::fs::read_to_string(path).unwrap_or_default();
            if before != actual {
                std::fs::write(path, actual).expect("writing test vectors");
                panic!(
                    "{name}: vectors regenerated into {}; review the diff, commit it, and rerun without \
                     {REGENERATE_VARIABLE}",
                    path.display()
                );
            }
        }
    }
    let frozen = std::fs::read_to_string(path).expect("frozen vector file exists");
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
