//! Crash safety of plotting: the `acre-farmer plot` binary is killed with SIGKILL at random moments, six
//! times, or `ACRE_CRASH_KILLS` times (`scripts/crash` runs 100): during farm creation and while it
//! plots, writes and syncs sectors. After every kill the farm must open, hold every sector it held just
//! before the kill with the same metadata, scrub clean, and read back the archived pieces; the next run
//! resumes where the last one stopped.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use acre_consensus::sectors::{PublicKey, SectorId};
use acre_consensus::{PieceOffset, ProtocolParams};
use acre_farmer::piece_source::{ArchiveDirSource, PieceSource};
use acre_farmer::plot_file::Farm;
use acre_farmer::reading::read_piece;
use acre_farmer::sector::SectorMetadata;
use common::archive;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod common;

const KEY: [u8; 32] = [0x22; 32];

fn spawn_plot(archive: &Path, farm: &Path, sectors: u64, sector_size: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_acre-farmer"))
        .args(["--params", "dev", "plot", "--archive"])
        .arg(archive)
        .args(["--public-key", &"22".repeat(32)])
        .arg(format!("path={},size={}", farm.display(), sectors * sector_size))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("acre-farmer starts")
}

/// The farm's sectors, by index (an absent farm holds none: a kill during creation leaves no farm).
fn plotted(path: &Path, params: &ProtocolParams) -> BTreeMap<u16, SectorMetadata> {
    if !path.exists() {
        return BTreeMap::new();
    }
    let farm = Farm::open(path, params).expect("the farm opens");
    farm.plotted()
        .map(|metadata| (metadata.sector_index.0, metadata.clone()))
        .collect()
}

/// Every plotted sector scrubs clean, and those not in `checked` read back their first and last archived
/// pieces (reading proves, which is slow at dev parameters, so each sector is read once).
fn assert_sound(
    path: &Path,
    params: &ProtocolParams,
    source: &ArchiveDirSource,
    checked: &mut BTreeMap<u16, SectorMetadata>,
) {
    let farm = Farm::open(path, params).expect("the farm opens");
    let corrupted = farm.scrub().expect("scrubs");
    assert!(corrupted.is_empty(), "corrupted sectors: {corrupted:?}");
    let key_hash = PublicKey(KEY).hash();
    let pieces = farm.header().pieces_per_sector;
    for metadata in farm.plotted() {
        if checked.get(&metadata.sector_index.0) == Some(metadata) {
            continue;
        }
        checked.insert(metadata.sector_index.0, metadata.clone());
        let id = SectorId::new(&key_hash, metadata.sector_index, metadata.history_size);
        for offset in [0, pieces - 1] {
            let reader = farm.reader(metadata.sector_index);
            let piece = read_piece(params, &id, metadata, &reader, PieceOffset(offset)).expect("reads");
            let index = id.piece_index(params, PieceOffset(offset), metadata.history_size);
            assert_eq!(
                piece,
                source.piece(index).expect("archived"),
                "sector {}",
                metadata.sector_index
            );
        }
    }
}

#[test]
fn kill_9_while_plotting_loses_no_completed_sector() {
    let params = ProtocolParams::dev();
    let kills: usize = std::env::var("ACRE_CRASH_KILLS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(6);
    let dir = tempfile::tempdir().expect("tempdir");
    let archive_path = dir.path().join("archive");
    archive(&archive_path, 3);
    let source = ArchiveDirSource::open(params.clone(), &archive_path).expect("archive opens");
    let farm_dir = dir.path().join("farm");
    let path = farm_dir.join("farm.plot");
    let sector_size =
        acre_farmer::sector::SectorLayout::new(&params, params.max_pieces_per_sector).sector_size() as u64;
    // Room for a sector per kill and a few more, so plotting is still under way at the last kill.
    let sectors = kills as u64 + 2;
    let mut rng = ChaCha8Rng::seed_from_u64(0xfa53);
    let mut lost = 0;
    let mut checked = BTreeMap::new();
    let mut in_creation = 0;
    let started = Instant::now();

    for round in 0..kills {
        let before = plotted(&path, &params);
        let mut child = spawn_plot(&archive_path, &farm_dir, sectors, sector_size);
        if round == 0 || rng.random_bool(0.1) {
            // A kill soon after the start: during farm creation or the first sector's plotting.
            std::thread::sleep(Duration::from_millis(rng.random_range(0..60)));
            in_creation += usize::from(!path.exists());
        } else {
            // Let at least one more sector complete, then kill at a random moment of the next one's
            // plotting or writing.
            let deadline = Instant::now() + Duration::from_secs(60);
            while plotted(&path, &params).len() <= before.len() {
                assert!(
                    Instant::now() < deadline,
                    "round {round}: no sector plotted in 60 s"
                );
                assert!(
                    child.try_wait().expect("polls").is_none(),
                    "acre-farmer exited early"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            std::thread::sleep(Duration::from_millis(rng.random_range(0..700)));
        }
        // What the farm held just before the kill: every one of these sectors was complete.
        let acknowledged = plotted(&path, &params);
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");

        let after = plotted(&path, &params);
        for (index, metadata) in &acknowledged {
            if after.get(index) != Some(metadata) {
                eprintln!("round {round}: sector {index} lost");
                lost += 1;
            }
        }
        if path.exists() {
            assert_sound(&path, &params, &source, &mut checked);
        }
    }
    assert_eq!(lost, 0, "completed sectors lost across the kills");

    // The next run resumes and finishes the farm.
    let mut child = spawn_plot(&archive_path, &farm_dir, sectors, sector_size);
    assert!(child.wait().expect("runs").success());
    let completed = plotted(&path, &params);
    assert_eq!(
        completed.len() as u64,
        sectors,
        "the farm is full after the last run"
    );
    assert_sound(&path, &params, &source, &mut checked);
    println!(
        "farmer kills: {kills} ({in_creation} before the farm existed), completed sectors: {}, lost: {lost}, {:.0} s",
        completed.len(),
        started.elapsed().as_secs_f64()
    );
}
