//! Conformance: pins the hashes of canonical outputs so any change to the archiving format (item
//! encoding, erasure coding, Merkle rules, hashing contexts, header encoding) fails CI and must be made
//! deliberately, with these values updated in the same commit.

use acre_consensus::{BlockNumber, ProtocolParams};
use acre_storage::{ArchivedSegment, Archiver};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The genesis segment: one fixed genesis block, sealed at once.
fn genesis_segment(params: &ProtocolParams) -> ArchivedSegment {
    let mut archiver = Archiver::new(params.clone()).expect("valid params");
    let sealed = archiver
        .add_block(BlockNumber(0), b"acre conformance genesis block v1")
        .expect("archives");
    assert!(sealed.is_empty());
    archiver
        .close_segment()
        .expect("closes")
        .expect("genesis has data")
}

/// A full sample segment: one pseudo-random block (ChaCha8, seed 42) longer than a segment.
fn sample_segment(params: &ProtocolParams) -> ArchivedSegment {
    let mut block = vec![0u8; params.segment_size() + 12_345];
    ChaCha8Rng::seed_from_u64(42).fill_bytes(&mut block);
    let mut archiver = Archiver::new(params.clone()).expect("valid params");
    archiver
        .add_block(BlockNumber(0), &block)
        .expect("archives")
        .swap_remove(0)
}

fn check(params: &ProtocolParams, genesis_header_hash: &str, sample_root: &str, sample_piece_hash: &str) {
    let genesis = genesis_segment(params);
    let sample = sample_segment(params);
    let piece_hash = blake3::hash(&sample.pieces[params.pieces_per_segment() as usize - 1].encode());
    let actual = (
        genesis.header.hash().to_string(),
        sample.header.segment_root.0.to_string(),
        piece_hash.to_hex().to_string(),
    );
    assert_eq!(
        actual,
        (
            genesis_header_hash.to_string(),
            sample_root.to_string(),
            sample_piece_hash.to_string()
        ),
        "archiving format changed: (genesis header hash, sample segment root, last sample piece hash)"
    );
}

#[test]
fn dev_format_is_frozen() {
    check(
        &ProtocolParams::dev(),
        "e8b01edbb80af1d5f351177b7338f77bede0e78483f3c6ac2d9e8a9a22dda09a",
        "09a7c82954c56278870ab966913d6357ab2e31c3f49f552a9acd0603b8f2fe60",
        "9d2cd38603789fb43db53e611e8925778fb80d5df72a99288e473b9c4cac1478",
    );
}

#[test]
fn mainnet_format_is_frozen() {
    check(
        &ProtocolParams::mainnet(),
        "78f3e7e54399f93f957de8da722713f8cb2f0c3f15db4f9e1a3dd4d10cfc5fe9",
        "ee3d3d3dfdcbd6288a73cf89fa130cb1da827854681271ba790c6b7275894626",
        "43b06237b3762c737a463e99387a57ca2eb4f5a3790f2316e12472986188e0dc",
    );
}
