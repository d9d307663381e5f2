//! The short CI version of `scripts/fuzz`: every decoder, 100,000 damaged encodings each, no crash and no
//! non-canonical acceptance.

use acre_tests::fuzz::{fuzz, targets};

#[test]
fn every_decoder_survives_damaged_encodings_and_accepts_only_canonical_ones() {
    let failures: Vec<_> = targets()
        .iter()
        .map(|target| fuzz(target, 100_000, 1))
        .filter(|outcome| outcome.crashes > 0 || outcome.non_canonical > 0)
        .collect();
    assert!(failures.is_empty(), "{failures:?}");
}
