//! `acre sim` through the binary: one seed gives one report, `--csv` writes a row per slot, `--plot`
//! draws a PNG, and bad options are refused with a clear message.

use std::process::{Command, Output};

mod common;

use common::ACRE;

fn sim(args: &[&str]) -> Output {
    Command::new(ACRE)
        .arg("sim")
        .args(args)
        .output()
        .expect("acre runs")
}

fn json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON object")
}

#[test]
fn acre_sim_is_deterministic_writes_csv_and_refuses_bad_options() {
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("chain.csv");
    let png = dir.path().join("chain.png");
    let args = [
        "--farmers",
        "6",
        "--slots",
        "60",
        "--seed",
        "3",
        "--partition",
        "20..30",
        "--json",
    ];
    let outputs = [
        "--csv",
        csv.to_str().expect("utf-8"),
        "--plot",
        png.to_str().expect("utf-8"),
    ];
    let first = json(&sim(&[&args[..], &outputs].concat()));
    let again = json(&sim(&args));
    assert_eq!(first["final_hash"], again["final_hash"], "one seed, one run");
    assert_eq!(first["farmers"], 6);
    assert_eq!(first["slots"], 60);
    assert!(first["best_number"].as_u64().expect("best_number") > 0, "{first}");
    let rows = std::fs::read_to_string(&csv).expect("csv written");
    assert_eq!(rows.lines().count(), 61, "a header and a row per slot");
    assert!(rows.starts_with("slot,best_number,authored,finalized,expected\n"));
    let image = std::fs::read(&png).expect("png written");
    assert_eq!(&image[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let (width, height) = (&image[16..20], &image[20..24]);
    assert_eq!(
        (
            u32::from_be_bytes(width.try_into().expect("4")),
            u32::from_be_bytes(height.try_into().expect("4"))
        ),
        (1280, 520)
    );
    assert!(image.len() > 20_000, "drawn, not blank: {} bytes", image.len());

    let not_png = sim(&["--farmers", "4", "--slots", "5", "--plot", "chain.svg"]);
    assert!(!not_png.status.success());
    assert!(String::from_utf8_lossy(&not_png.stderr).contains("must end in .png"));

    let backwards = sim(&["--partition", "30..10"]);
    assert_eq!(backwards.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&backwards.stderr).contains("FROM must be below TO"));
    let fraction = sim(&["--farmers", "4", "--slots", "5", "--byzantine", "1.5"]);
    assert!(!fraction.status.success());
    assert!(String::from_utf8_lossy(&fraction.stderr).contains("--byzantine must be a fraction"));
}
