//! Crash-safe creation and slot checks, with torn states simulated on disk.

use acre_consensus::sectors::PublicKey;

use super::*;
use crate::daemon::farms::{Farms, PLOT_FILE, sector_size};

const SECTORS: u16 = 3;

fn header(params: &ProtocolParams) -> FarmHeader {
    FarmHeader {
        params_id: params_id(params),
        public_key_hash: PublicKey([3; 32]).hash(),
        genesis_hash: Blake3Hash([1; 32]),
        sector_count: SECTORS,
        pieces_per_sector: params.max_pieces_per_sector,
    }
}

fn metadata(params: &ProtocolParams, index: u16) -> SectorMetadata {
    SectorMetadata {
        sector_index: SectorIndex(index),
        pieces_in_sector: params.max_pieces_per_sector,
        history_size: HistorySize::new(1).expect("non-zero"),
        s_bucket_sizes: vec![1; params.s_buckets() as usize].into(),
    }
}

/// A slot as `write_sector` lays it out: body ‖ checksum, zero-padded to the slot size.
fn slot(params: &ProtocolParams, metadata: &SectorMetadata) -> Vec<u8> {
    let mut encoded = codec::encode(metadata);
    let sum = checksum(&encoded);
    encoded.extend_from_slice(&sum);
    encoded.resize(Farm::slot_size(params) as usize, 0);
    encoded
}

#[test]
fn creation_goes_through_a_temporary_file_and_leaves_none_behind() {
    let params = ProtocolParams::dev();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("farm.plot");
    // A stale temporary file from a creation killed half-way is overwritten, not an obstacle.
    std::fs::write(temporary_path(&path), b"torn").expect("writes");
    let farm = Farm::create(&path, &params, header(&params)).expect("creates");
    assert_eq!(farm.path(), path);
    assert!(!temporary_path(&path).exists());
    drop(farm);
    let reopened = Farm::open(&path, &params).expect("reopens");
    assert_eq!(*reopened.header(), header(&params));
    assert_eq!(reopened.plotted().count(), 0);
}

#[test]
fn creation_never_replaces_an_existing_farm() {
    let params = ProtocolParams::dev();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("farm.plot");
    drop(Farm::create(&path, &params, header(&params)).expect("creates"));
    let mut other = header(&params);
    other.genesis_hash = Blake3Hash([2; 32]);
    assert!(matches!(
        Farm::create(&path, &params, other),
        Err(Error::Io { .. })
    ));
    let farm = Farm::open(&path, &params).expect("still opens");
    assert_eq!(farm.header().genesis_hash, Blake3Hash([1; 32]));
}

#[test]
fn a_farm_file_without_a_durable_header_is_reported_unfinished() {
    let params = ProtocolParams::dev();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("farm.plot");
    // Sized but the header never reached the disk (the old creation order), and an empty file.
    let file = File::create(&path).expect("creates");
    file.set_len(1 << 20).expect("sizes");
    assert!(matches!(
        Farm::open(&path, &params),
        Err(Error::UnfinishedFarm { .. })
    ));
    file.set_len(0).expect("truncates");
    assert!(matches!(
        Farm::open(&path, &params),
        Err(Error::UnfinishedFarm { .. })
    ));
    // A header that is present but wrong is still refused as invalid, never silently recreated.
    std::fs::write(&path, vec![0xff; 8192]).expect("writes");
    assert!(matches!(
        Farm::open(&path, &params),
        Err(Error::InvalidFarm { .. })
    ));
}

#[test]
fn the_daemon_recreates_a_farm_whose_creation_was_interrupted() {
    let params = ProtocolParams::dev();
    let dir = tempfile::tempdir().expect("tempdir");
    let farm_dir = dir.path().join("farm");
    std::fs::create_dir_all(&farm_dir).expect("creates");
    let file = File::create(farm_dir.join(PLOT_FILE)).expect("creates");
    file.set_len(4096).expect("sizes");
    let key = PublicKey([3; 32]);
    let farms = Farms::open(
        &params,
        Blake3Hash([1; 32]),
        key,
        &[(farm_dir.clone(), 2 * sector_size(&params) + 100)],
        0,
    )
    .expect("the half-created farm is recreated");
    drop(farms);
    let farm = Farm::open(&farm_dir.join(PLOT_FILE), &params).expect("a complete farm");
    assert_eq!(farm.header().sector_count, 2);
}

#[test]
fn slots_are_checked_against_the_farm_header() {
    let params = ProtocolParams::dev();
    let header = header(&params);
    let index = SectorIndex(1);
    let check = |metadata: &SectorMetadata| check_slot(&header, index, &slot(&params, metadata));

    let good = metadata(&params, 1);
    assert_eq!(check(&good), Ok(Some(good.clone())));
    let empty = vec![0; Farm::slot_size(&params) as usize];
    assert_eq!(check_slot(&header, index, &empty), Ok(None));

    let mut torn = slot(&params, &good);
    torn[3] ^= 1;
    assert_eq!(check_slot(&header, index, &torn), Err(SlotError::Checksum));

    assert_eq!(
        check(&metadata(&params, 2)),
        Err(SlotError::WrongSector {
            expected: index,
            found: SectorIndex(2)
        })
    );
    let mut pieces = good.clone();
    pieces.pieces_in_sector += 1;
    assert_eq!(
        check(&pieces),
        Err(SlotError::WrongPieceCount {
            expected: header.pieces_per_sector,
            found: header.pieces_per_sector + 1
        })
    );
    let mut buckets = good.clone();
    let mut sizes = buckets.s_bucket_sizes.into_inner();
    sizes.pop();
    buckets.s_bucket_sizes = sizes.into();
    assert!(
        matches!(check(&buckets), Err(SlotError::Checksum | SlotError::Decode(_))),
        "{:?}",
        check(&buckets)
    );
    let mut oversized = good;
    let mut sizes = oversized.s_bucket_sizes.into_inner();
    sizes[5] = header.pieces_per_sector + 1;
    oversized.s_bucket_sizes = sizes.into();
    assert_eq!(
        check(&oversized),
        Err(SlotError::SBucketTooLarge {
            s_bucket: 5,
            size: header.pieces_per_sector + 1,
            max: header.pieces_per_sector
        })
    );
}

#[test]
fn an_inconsistent_slot_makes_its_sector_unplotted_on_open() {
    let params = ProtocolParams::dev();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("farm.plot");
    let farm = Farm::create(&path, &params, header(&params)).expect("creates");
    let mut wrong = metadata(&params, 0);
    wrong.pieces_in_sector = 1;
    farm.write_synced(
        farm.slot_offset(SectorIndex(0)),
        &slot(&params, &wrong),
        "test slot",
    )
    .expect("writes");
    let good = metadata(&params, 1);
    farm.write_synced(
        farm.slot_offset(SectorIndex(1)),
        &slot(&params, &good),
        "test slot",
    )
    .expect("writes");
    drop(farm);
    let farm = Farm::open(&path, &params).expect("opens");
    assert_eq!(farm.sector(SectorIndex(0)), None);
    assert_eq!(farm.sector(SectorIndex(1)), Some(&good));
}
