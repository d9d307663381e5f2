//! Proof-of-space integration tests: chiapos known answers, soundness of `verify`, the share of
//! challenges with a proof, serial/parallel equality and frozen vectors.

// Test data is built with small literal casts.
#![allow(clippy::cast_possible_truncation)]

mod common;

use std::sync::OnceLock;

use acre_consensus::pos::{
    ChallengeIndex, PosError, PosSeed, Proof, Table, evaluate_proof, verify, verify_for_params,
};
use acre_consensus::{ProtocolParams, SBucket};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

const DEV_K: u8 = 12;

fn dev_seed() -> PosSeed {
    PosSeed([0x42; 32])
}

fn dev_table() -> &'static Table<DEV_K> {
    static TABLE: OnceLock<Table<DEV_K>> = OnceLock::new();
    TABLE.get_or_init(|| Table::generate(&dev_seed()))
}

/// Canonical proofs for every k-bit target of the dev table.
fn dev_proofs() -> &'static Vec<(ChallengeIndex, Proof<DEV_K>)> {
    static PROOFS: OnceLock<Vec<(ChallengeIndex, Proof<DEV_K>)>> = OnceLock::new();
    PROOFS.get_or_init(|| {
        (0..1u32 << DEV_K)
            .map(ChallengeIndex)
            .filter_map(|challenge| Some((challenge, dev_table().find_proof(challenge)?)))
            .collect()
    })
}

#[test]
fn chiapos_k32_proofs_verify() {
    let lines = common::vector_lines(include_str!("vectors/chiapos_k32_proofs.txt"));
    assert_eq!(lines.len() % 4, 0);
    assert!(!lines.is_empty());
    for entry in lines.chunks_exact(4) {
        let id = common::unhex(entry[0]);
        assert_eq!(entry[1], "32");
        let challenge = common::unhex(entry[2]);
        let proof = Proof::<32>::from_bytes(&common::unhex(entry[3])).expect("8·k bytes");
        let mut seed = [1u8; 32];
        seed[1..].copy_from_slice(&id[..31]);
        let seed = PosSeed(seed);
        let target = u32::from_be_bytes([challenge[0], challenge[1], challenge[2], challenge[3]]);
        assert_eq!(
            verify(&seed, ChallengeIndex(target), &proof).map(|_| ()),
            Ok(()),
            "chiapos proof for {}",
            entry[0]
        );
        let mut other = seed;
        other.0[31] ^= 1;
        assert!(verify(&other, ChallengeIndex(target), &proof).is_err());
    }
}

#[test]
fn every_found_proof_verifies_and_is_canonical() {
    let table = dev_table();
    for (challenge, proof) in dev_proofs() {
        let quality = verify(&dev_seed(), *challenge, proof).expect("found proofs verify");
        assert_eq!(quality, proof.quality());
        assert_eq!(
            evaluate_proof(&dev_seed(), proof).map(|y| y >> 6),
            Ok(u64::from(challenge.0))
        );
        let all = table.proofs(*challenge);
        assert_eq!(all.len(), table.proof_count(*challenge));
        assert_eq!(all.first(), Some(proof));
        for other in &all {
            assert!(verify(&dev_seed(), *challenge, other).is_ok());
            assert!(other.as_bytes() >= proof.as_bytes());
        }
    }
    assert!(
        dev_proofs()
            .iter()
            .any(|(challenge, _)| table.proof_count(*challenge) > 1)
    );
}

/// The k = 20 table every k = 20 test shares (about 2.5 s to build in the test profile).
fn mainnet_table() -> &'static Table<MAINNET_K> {
    static TABLE: OnceLock<Table<MAINNET_K>> = OnceLock::new();
    TABLE.get_or_init(|| Table::generate(&dev_seed()))
}

const MAINNET_K: u8 = 20;

#[test]
fn share_of_challenges_with_a_proof_is_about_1_minus_1_over_e() {
    let params = ProtocolParams::mainnet();
    let table = mainnet_table();
    let indices = 1u16 << 12;
    let mut found = 0u32;
    for s_bucket in (0..indices).map(SBucket) {
        let challenge = ChallengeIndex::for_s_bucket(&params, s_bucket).expect("in range");
        if let Some(proof) = table.find_proof(challenge) {
            found += 1;
            let quality = verify_for_params(&params, &dev_seed(), s_bucket, proof.as_bytes());
            assert_eq!(quality, Ok(proof.quality()));
        }
    }
    let share = f64::from(found) / f64::from(indices);
    let expected = 1.0 - (-1.0f64).exp();
    // One standard deviation is about 0.0075 over 2^12 independent targets.
    assert!(
        (share - expected).abs() < 0.04,
        "share {share}, expected ≈ {expected}"
    );
}

/// At k = 12 only 17 BC buckets exist, so each table loses the matches its edge buckets cannot make and
/// the loss compounds from table to table: far fewer than 1 − 1/e of the targets have a proof. Pinned here
/// so a change in this known limitation of the dev parameters is noticed (see the decisions log).
#[test]
fn dev_k_has_few_proofs() {
    let share = dev_proofs().len() as f64 / f64::from(1u32 << DEV_K);
    assert!(share > 0.01 && share < 0.15, "share {share}");
    assert_eq!(dev_table().find_proof(ChallengeIndex(1 << DEV_K)), None);
}

#[test]
fn changed_proofs_fail() {
    let seed = dev_seed();
    for (challenge, proof) in dev_proofs().iter().take(16) {
        let xs = proof.x_values();
        for index in 0..xs.len() {
            let mut changed = xs;
            changed[index] ^= 1 + (index as u64 % 7);
            let bytes = pack(&changed);
            let changed = Proof::<DEV_K>::from_bytes(&bytes).expect("size");
            assert!(verify(&seed, *challenge, &changed).is_err(), "x {index} changed");
        }
        let next = ChallengeIndex((challenge.0 + 1) % (1 << DEV_K));
        assert!(matches!(
            verify(&seed, next, proof),
            Err(PosError::WrongTarget { .. })
        ));
        assert!(verify(&PosSeed([0x43; 32]), *challenge, proof).is_err());
        assert!(matches!(
            verify(&seed, ChallengeIndex(1 << DEV_K), proof),
            Err(PosError::ChallengeOutOfRange { .. })
        ));
    }
}

fn pack(xs: &[u64; 64]) -> Vec<u8> {
    let mut bits = Vec::new();
    for &x in xs {
        for bit in (0..DEV_K).rev() {
            bits.push((x >> bit) & 1 == 1);
        }
    }
    bits.chunks(8)
        .map(|byte| byte.iter().fold(0u8, |acc, &bit| (acc << 1) | u8::from(bit)))
        .collect()
}

#[test]
fn params_entry_point_maps_s_buckets_to_targets() {
    // The dev record shape (256 s-buckets) with the small k of these tests' shared table.
    let params = ProtocolParams {
        pos_k: DEV_K,
        ..ProtocolParams::dev()
    };
    let mut found = 0;
    for s_bucket in (0..=u8::MAX).map(|s| SBucket(u16::from(s))) {
        let challenge = ChallengeIndex::for_s_bucket(&params, s_bucket).expect("in range");
        if let Some(proof) = dev_table().find_proof(challenge) {
            found += 1;
            let quality = verify_for_params(&params, &dev_seed(), s_bucket, proof.as_bytes());
            assert_eq!(quality, Ok(proof.quality()));
            let other = SBucket(s_bucket.get() ^ 1);
            assert!(verify_for_params(&params, &dev_seed(), other, proof.as_bytes()).is_err());
        }
    }
    assert!(found > 0, "no s-bucket has a proof");
    assert!(verify_for_params(&params, &dev_seed(), SBucket(0), &[0; 95]).is_err());
    assert!(verify_for_params(&params, &dev_seed(), SBucket(256), &[0; 96]).is_err());
}

/// Proofs of a few seeds and challenges, frozen in `vectors/pos_proofs.txt`.
#[test]
fn proofs_match_frozen_vectors() {
    let mut out = String::from(
        "# Proof-of-space vectors: k, seed, challenge index (k-bit target), canonical proof or none.\n",
    );
    let mut record = |k: u8, seed: &PosSeed, challenge: u32, proof: Option<Vec<u8>>| {
        let proof = proof.map_or_else(|| "none".to_owned(), hex::encode);
        out.push_str(&format!("{k} {} {challenge} {proof}\n", hex::encode(seed.0)));
    };
    for seed in [
        dev_seed(),
        PosSeed([7; 32]),
        PosSeed(std::array::from_fn(|i| i as u8)),
    ] {
        let table = Table::<DEV_K>::generate(&seed);
        let mut with_proof = 0;
        for challenge in 0..1u32 << DEV_K {
            let proof = table.find_proof(ChallengeIndex(challenge));
            if proof.is_some() && with_proof < 6 || challenge % 1000 == 0 {
                with_proof += usize::from(proof.is_some());
                record(DEV_K, &seed, challenge, proof.map(|p| p.as_bytes().to_vec()));
            }
        }
    }
    let params = ProtocolParams::mainnet();
    for s_bucket in (0..24).map(SBucket) {
        let challenge = ChallengeIndex::for_s_bucket(&params, s_bucket).expect("in range");
        let proof = mainnet_table().find_proof(challenge);
        record(
            MAINNET_K,
            &dev_seed(),
            challenge.0,
            proof.map(|p| p.as_bytes().to_vec()),
        );
    }
    common::check_frozen("pos_proofs.txt", &out);
}

#[cfg(feature = "parallel")]
#[test]
fn parallel_tables_equal_serial_tables() {
    for byte in [0x42u8, 7] {
        let seed = PosSeed([byte; 32]);
        let serial = Table::<DEV_K>::generate(&seed);
        let parallel = Table::<DEV_K>::generate_parallel(&seed);
        assert!(serial == parallel, "k = 12 tables differ for seed byte {byte}");
        for challenge in (0..1u32 << DEV_K).map(ChallengeIndex) {
            assert_eq!(serial.find_proof(challenge), parallel.find_proof(challenge));
        }
        let serial = Table::<16>::generate(&seed);
        let parallel = Table::<16>::generate_parallel(&seed);
        assert!(serial == parallel, "k = 16 tables differ for seed byte {byte}");
    }
    let parallel = Table::<MAINNET_K>::generate_parallel(&dev_seed());
    assert!(&parallel == mainnet_table(), "k = 20 tables differ");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        rng_seed: RngSeed::Fixed(0x005e_ed0f_5ace),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn verify_never_panics_on_random_proofs(
        bytes in proptest::collection::vec(any::<u8>(), 96),
        wide in proptest::collection::vec(any::<u8>(), 160),
        challenge in any::<u32>(),
        seed in any::<[u8; 32]>(),
    ) {
        let seed = PosSeed(seed);
        let proof = Proof::<12>::from_bytes(&bytes).expect("size");
        prop_assert!(verify(&seed, ChallengeIndex(challenge % (1 << 12)), &proof).is_err());
        let _ = verify(&seed, ChallengeIndex(challenge), &proof);
        let proof = Proof::<20>::from_bytes(&wide).expect("size");
        prop_assert!(verify(&seed, ChallengeIndex(challenge % (1 << 20)), &proof).is_err());
        let params = ProtocolParams::mainnet();
        let s_bucket = SBucket(challenge.to_le_bytes()[0].into());
        let _ = verify_for_params(&params, &seed, s_bucket, &wide);
        let _ = verify_for_params(&params, &seed, s_bucket, &bytes);
    }
}
