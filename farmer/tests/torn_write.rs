//! Torn writes in the plot file: a sector write is cut after N bytes of any of its three writes (emptying
//! the metadata slot, the sector, the new metadata) and the process "dies" there. Whatever N, the farm
//! reopens with every other sector intact, the torn sector is absent (plotted again next), the old one
//! (torn before its data was touched) or the new one (torn after), nothing scrubs as corrupted, and
//! writing the sector again restores it.
//!
//! The fault point is process-wide, so this file holds one test.

use acre_consensus::hashing::Blake3Hash;
use acre_consensus::sectors::{PublicKey, SectorId};
use acre_consensus::{HistorySize, PieceOffset, ProtocolParams, SectorIndex};
use acre_farmer::piece_source::{ArchiveDirSource, PieceSource};
use acre_farmer::plot_file::{Farm, FarmHeader, params_id};
use acre_farmer::plotting::{PlottedSector, plot_sector};
use acre_farmer::reading::read_piece;
use acre_farmer::sector::SectorMetadata;
use common::archive;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod common;

const KEY: PublicKey = PublicKey([0x22; 32]);
const SECTORS: u16 = 3;

fn plot(params: &ProtocolParams, source: &ArchiveDirSource, index: u16, history: u64) -> PlottedSector {
    plot_sector(
        params,
        &KEY.hash(),
        SectorIndex(index),
        HistorySize::new(history).expect("non-zero"),
        params.max_pieces_per_sector,
        source,
    )
    .expect("plots")
}

/// Every plotted sector scrubs clean and reads back its first and last pieces from the archive.
fn assert_sound(farm: &Farm, params: &ProtocolParams, source: &ArchiveDirSource) {
    assert!(
        farm.scrub().expect("scrubs").is_empty(),
        "corruption after a torn write"
    );
    for metadata in farm.plotted() {
        let id = SectorId::new(&KEY.hash(), metadata.sector_index, metadata.history_size);
        for offset in [0, params.max_pieces_per_sector - 1] {
            let reader = farm.reader(metadata.sector_index);
            let piece = read_piece(params, &id, metadata, &reader, PieceOffset(offset)).expect("reads");
            let index = id.piece_index(params, PieceOffset(offset), metadata.history_size);
            assert_eq!(piece, source.piece(index).expect("archived"));
        }
    }
}

fn metadata_of(farm: &Farm, index: u16) -> Option<SectorMetadata> {
    farm.plotted()
        .find(|metadata| metadata.sector_index.0 == index)
        .cloned()
}

#[test]
fn a_torn_sector_write_leaves_the_old_farm_or_the_new_sector_never_a_mix() {
    let scenario = fail::FailScenario::setup();
    let params = ProtocolParams::dev();
    let dir = tempfile::tempdir().expect("tempdir");
    archive(&dir.path().join("archive"), 3);
    let source = ArchiveDirSource::open(params.clone(), &dir.path().join("archive")).expect("opens");
    let history = source.history_size().get();

    // The farm before every tear: sectors 0 and 1 plotted at an older history size, sector 2 empty.
    let pristine = dir.path().join("pristine.plot");
    let header = FarmHeader {
        params_id: params_id(&params),
        public_key_hash: KEY.hash(),
        genesis_hash: Blake3Hash([1; 32]),
        sector_count: SECTORS,
        pieces_per_sector: params.max_pieces_per_sector,
    };
    let mut farm = Farm::create(&pristine, &params, header).expect("creates");
    for index in [0, 1] {
        farm.write_sector(&plot(&params, &source, index, history - 1))
            .expect("writes");
    }
    drop(farm);
    let before = Farm::open(&pristine, &params).expect("opens");
    let old: Vec<Option<SectorMetadata>> = (0..SECTORS).map(|index| metadata_of(&before, index)).collect();
    drop(before);

    // Replotting sector 1 over its old contents, and plotting sector 2 into empty space.
    let mut rng = ChaCha8Rng::seed_from_u64(0x70c);
    let mut cases = 0;
    let mut torn_absent = 0;
    for target in [1u16, 2] {
        let sector = plot(&params, &source, target, history);
        let slot_size = {
            let mut encoded = borsh::to_vec(&sector.metadata).expect("encodes");
            encoded.extend_from_slice(&[0; 32]);
            encoded.len()
        };
        // The three writes of `write_sector`, in order, and how long each is.
        for (write, len) in [(0usize, slot_size), (1, sector.bytes.len()), (2, slot_size)] {
            let mut kept = vec![0, 1, len / 2, len - 1, len];
            kept.extend((0..3).map(|_| rng.random_range(0..=len)));
            for kept in kept {
                let path = dir.path().join(format!("torn-{target}-{write}-{kept}.plot"));
                std::fs::copy(&pristine, &path).expect("copies");
                let mut farm = Farm::open(&path, &params).expect("opens");
                let actions = if write == 0 {
                    format!("1*return({kept})")
                } else {
                    format!("{write}*off->1*return({kept})")
                };
                fail::cfg("plot-torn-write", &actions).expect("configures the fault");
                let error = farm.write_sector(&sector).expect_err("the write is torn");
                fail::remove("plot-torn-write");
                assert!(error.to_string().contains("torn write"), "{error}");
                drop(farm);

                // The "restart".
                let mut farm = Farm::open(&path, &params).expect("a torn farm still opens");
                for index in (0..SECTORS).filter(|index| *index != target) {
                    assert_eq!(
                        metadata_of(&farm, index),
                        old[usize::from(index)],
                        "sector {index} untouched"
                    );
                }
                // Absent (plotted again next), or the old sector if the tear came before its data was
                // touched, or the new one if only its last write's sync was lost; never a mix.
                match metadata_of(&farm, target) {
                    None => torn_absent += 1,
                    Some(found) if write == 0 => assert_eq!(Some(found), old[usize::from(target)]),
                    Some(found) => assert_eq!((write, found), (2, sector.metadata.clone())),
                }
                assert!(
                    farm.scrub().expect("scrubs").is_empty(),
                    "corruption after a torn write"
                );
                // Plotting it again restores the farm.
                farm.write_sector(&sector).expect("writes again");
                let farm = Farm::open(&path, &params).expect("reopens");
                assert_eq!(metadata_of(&farm, target), Some(sector.metadata.clone()));
                if cases % 24 == 0 {
                    // Reading proves pieces (slow at dev parameters): once per target.
                    assert_sound(&farm, &params, &source);
                } else {
                    assert!(farm.scrub().expect("scrubs").is_empty());
                }
                cases += 1;
            }
        }
    }
    scenario.teardown();
    assert_eq!(cases, 2 * 3 * 8);
    println!("torn writes: {cases} cases, {torn_absent} left the sector to plot again, 0 corrupted");
}
