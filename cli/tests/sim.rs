//! `acre sim` through the binary: one seed gives one report, `--csv` writes a row per slot, and bad
//! options are refused with a clear message.

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
    let args = ["--farmers", "6", "--slots", "60", "--seed", "3", "--json"];
    let first = json(&sim(
        &[&args[..], &["--csv", csv.to_str().expect("utf-8")]].concat()
    ));
    let again = json(&sim(&args));
    assert_eq!(first["final_hash"], again["final_hash"], "one seed, one run");
    assert_eq!(first["farmers"], 6);
    assert_eq!(first["slots"], 60);
    assert!(first["best_number"].as_u64().expect("best_number") > 0, "{first}");
    let rows = std::fs::read_to_string(&csv).expect("csv written");
    assert_eq!(rows.lines().count(), 61, "a header and a row per slot");
    assert!(rows.starts_with("slot,best_number,authored,finalized\n"));

    let backwards = sim(&["--partition", "30..10"]);
    assert_eq!(backwards.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&backwards.stderr).contains("FROM must be below TO"));
    let fraction = sim(&["--farmers", "4", "--slots", "5", "--byzantine", "1.5"]);
    assert!(!fraction.status.success());
    assert!(String::from_utf8_lossy(&fraction.stderr).contains("--byzantine must be a fraction"));
}
