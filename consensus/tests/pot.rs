//! Proof-of-time integration tests: frozen vectors for key and seed derivation, checkpoints and slot
//! challenges, and rejection of tampered proofs.

// Test data is built with small literal casts.
#![allow(clippy::cast_possible_truncation)]

mod common;

use acre_consensus::SlotNumber;
use acre_consensus::pot::{self, PotCheckpoints, PotOutput, PotSeed, slot_challenge};

/// Seeds and iteration counts of the frozen vectors (small, so the suite stays fast).
fn cases() -> Vec<(PotSeed, u32)> {
    vec![
        (PotSeed([0; 16]), 8),
        (PotSeed([0x11; 16]), 8 * 1000),
        (PotSeed(std::array::from_fn(|i| i as u8)), 8 * 12_345),
        (PotSeed(*b"acre proof time!"), 8 * 100_000),
    ]
}

fn checkpoints_hex(checkpoints: &PotCheckpoints) -> String {
    checkpoints
        .as_slice()
        .iter()
        .map(|checkpoint| hex::encode(checkpoint.0))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn pot_matches_frozen_vectors() {
    let mut out = String::from(
        "# Proof-of-time vectors. `prove`: seed key iterations checkpoints(8). `next`: output next-seed\n\
         # next-seed-with-entropy(entropy = seed of the case) slot-challenge(slot 0) slot-challenge(slot 2^40).\n",
    );
    for (seed, iterations) in cases() {
        let key = seed.key();
        let checkpoints = pot::prove(&seed, &key, iterations).expect("valid iterations");
        pot::verify(&seed, &key, iterations, &checkpoints).expect("own proof verifies");
        out.push_str(&format!(
            "prove {} {} {iterations} {}\n",
            hex::encode(seed.0),
            hex::encode(key.0),
            checkpoints_hex(&checkpoints)
        ));
        let output = checkpoints.output();
        out.push_str(&format!(
            "next {} {} {} {} {}\n",
            hex::encode(output.0),
            hex::encode(output.next_seed().0),
            hex::encode(output.next_seed_with_entropy(&PotOutput(seed.0)).0),
            slot_challenge(&output, SlotNumber(0)),
            slot_challenge(&output, SlotNumber(1 << 40)),
        ));
    }
    common::check_frozen("pot.txt", &out);
}

#[test]
fn frozen_checkpoints_verify_and_tampering_fails() {
    let text = std::fs::read_to_string(common::vector_path("pot.txt")).expect("vector file");
    let mut checked = 0;
    for line in common::vector_lines(&text) {
        let fields: Vec<_> = line.split_whitespace().collect();
        if fields[0] != "prove" {
            continue;
        }
        let seed = PotSeed(common::unhex(fields[1]).try_into().expect("16 bytes"));
        let key = seed.key();
        assert_eq!(hex::encode(key.0), fields[2]);
        let iterations: u32 = fields[3].parse().expect("number");
        let checkpoints = PotCheckpoints(std::array::from_fn(|i| {
            PotOutput(common::unhex(fields[4 + i]).try_into().expect("16 bytes"))
        }));
        assert_eq!(pot::verify(&seed, &key, iterations, &checkpoints), Ok(()));
        assert_eq!(
            pot::verify_sequential(&seed, &key, iterations, &checkpoints),
            Ok(())
        );
        for index in 0..8 {
            let mut bad = checkpoints;
            bad.0[index].0[15] ^= 0x80;
            assert!(pot::verify(&seed, &key, iterations, &bad).is_err());
        }
        assert!(pot::verify(&seed, &key, iterations + 8, &checkpoints).is_err());
        assert!(pot::verify(&seed, &PotSeed([9; 16]).key(), iterations, &checkpoints).is_err());
        checked += 1;
    }
    assert_eq!(checked, cases().len());
}

#[test]
fn regenerating_frozen_vectors_fails_instead_of_passing_silently() {
    use common::{Regeneration, check_frozen_at, regeneration};
    assert_eq!(regeneration(false, false), Regeneration::Compare);
    assert_eq!(regeneration(false, true), Regeneration::Compare);
    assert_eq!(regeneration(true, false), Regeneration::Rewrite);
    assert_eq!(regeneration(true, true), Regeneration::RefusedInCi);

    let path = std::env::temp_dir().join(format!("acre-frozen-{}.txt", std::process::id()));
    std::fs::write(&path, "old\n").expect("writes");
    let changed =
        std::panic::catch_unwind(|| check_frozen_at(&path, "sample", "new\n", Regeneration::Rewrite));
    assert!(changed.is_err(), "a regenerated, changed file must fail the test");
    assert_eq!(std::fs::read_to_string(&path).expect("reads"), "new\n");
    // Unchanged content passes (the comparison runs as usual).
    check_frozen_at(&path, "sample", "new\n", Regeneration::Rewrite);
    let refused =
        std::panic::catch_unwind(|| check_frozen_at(&path, "sample", "new\n", Regeneration::RefusedInCi));
    assert!(refused.is_err(), "CI refuses to regenerate");
    let mismatch =
        std::panic::catch_unwind(|| check_frozen_at(&path, "sample", "other\n", Regeneration::Compare));
    assert!(mismatch.is_err());
    let _ = std::fs::remove_file(&path);
}
