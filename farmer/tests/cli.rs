//! The `acre-farmer` binary: plot from an archive directory, inspect, and scrub a farm.

use std::process::{Command, Output};

use acre_storage::archive_dir;
use common::archive;

mod common;

fn farmer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_acre-farmer"))
        .args(args)
        .output()
        .expect("running acre-farmer")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn plot_info_and_scrub_through_the_binary() {
    let root = tempfile::tempdir().expect("tempdir");
    let archive_path = root.path().join("archive");
    archive(&archive_path, 3);
    // A missing piece is rebuilt from the rest of its segment while plotting.
    std::fs::remove_file(archive_dir::piece_path(
        &archive_path,
        acre_consensus::SegmentIndex(1),
        acre_consensus::PiecePosition(2),
    ))
    .expect("deleting a piece");
    let farm = root.path().join("farm");
    let farm_arg = format!("path={},size=140K", farm.display());
    let key = "22".repeat(32);
    let args = [
        "--params",
        "dev",
        "plot",
        "--archive",
        archive_path.to_str().expect("utf-8"),
        "--public-key",
        &key,
        &farm_arg,
    ];
    let output = farmer(&args);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("2 sectors plotted"), "{}", text(&output));

    let farm_dir = farm.to_str().expect("utf-8");
    let output = farmer(&["--params", "dev", "info", farm_dir]);
    assert!(
        output.status.success() && text(&output).contains("sectors plotted:   2 of 2"),
        "{}",
        text(&output)
    );
    let output = farmer(&["--params", "dev", "scrub", farm_dir]);
    assert!(
        output.status.success() && text(&output).contains("2 sectors checked, 0 corrupted"),
        "{}",
        text(&output)
    );

    // Corrupt the last byte of the plot file (inside the last sector's checksum): scrub names it.
    let plot = farm.join("farm.plot");
    let mut bytes = std::fs::read(&plot).expect("reads");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&plot, bytes).expect("writes");
    let output = farmer(&["--params", "dev", "scrub", farm_dir]);
    assert!(!output.status.success());
    assert!(
        text(&output).contains("sector 1 is corrupted"),
        "{}",
        text(&output)
    );

    // Wrong parameters and a wrong key are refused with clear errors.
    let output = farmer(&["info", farm_dir]);
    assert!(
        !output.status.success() && text(&output).contains("another protocol parameter set"),
        "{}",
        text(&output)
    );
    let other_key = "33".repeat(32);
    let args = [
        "--params",
        "dev",
        "plot",
        "--archive",
        archive_path.to_str().expect("utf-8"),
        "--public-key",
        &other_key,
        &farm_arg,
    ];
    let output = farmer(&args);
    assert!(
        !output.status.success() && text(&output).contains("another farmer key"),
        "{}",
        text(&output)
    );
}
