//! The `acre-farmer` binary: plot from an archive directory, inspect, and scrub a farm.

use acre_tests::try_http_get;
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
    let secret = [0x22u8; 32];
    let key = hex::encode(
        ed25519_dalek::SigningKey::from_bytes(&secret)
            .verifying_key()
            .to_bytes(),
    );
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
        output.status.success() && text(&output).contains("2 sectors checked, 0 damaged"),
        "{}",
        text(&output)
    );

    // Benchmarks give a verdict against the time allowed; proving needs the farm's key.
    let output = farmer(&["--params", "dev", "benchmark", "audit", farm_dir, "--runs", "5"]);
    assert!(
        output.status.success() && text(&output).contains("auditing 2 sectors: median "),
        "{}",
        text(&output)
    );
    let output = farmer(&["--params", "dev", "benchmark", "prove", farm_dir, "--runs", "2"]);
    assert!(
        !output.status.success() && text(&output).contains("reading the farmer key"),
        "{}",
        text(&output)
    );
    std::fs::write(farm.join("identity.key"), hex::encode(secret)).expect("writes the key");
    let output = farmer(&["--params", "dev", "benchmark", "prove", farm_dir, "--runs", "2"]);
    assert!(
        output.status.success()
            && text(&output).contains("proving a win: median ")
            && text(&output).contains("ms allowed"),
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
        text(&output).contains("sector 1 is corrupted (checksum mismatch in bytes "),
        "{}",
        text(&output)
    );
    // --repair frees just that sector; plotting again fills it, and the farm scrubs clean.
    let output = farmer(&["--params", "dev", "scrub", "--repair", farm_dir]);
    assert!(
        output.status.success() && text(&output).contains("2 sectors checked, 1 damaged, 1 freed"),
        "{}",
        text(&output)
    );
    let output = farmer(&["--params", "dev", "info", farm_dir]);
    assert!(
        text(&output).contains("sectors plotted:   1 of 2"),
        "{}",
        text(&output)
    );
    let output = farmer(&args);
    assert!(output.status.success(), "{}", text(&output));
    let output = farmer(&["--params", "dev", "scrub", farm_dir]);
    assert!(
        output.status.success() && text(&output).contains("2 sectors checked, 0 damaged"),
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

/// Run from a config file as a service would: `/metrics` parses, and lists exactly the metrics `docs/metrics.md` documents for the farmer, with
/// their types and labels; `/health` says the farmer is not farming while it cannot reach its node.
#[test]
fn metrics_match_the_docs_and_health_tells_why_not_farming() {
    let root = tempfile::tempdir().expect("tempdir");
    let port = acre_tests::free_port();
    let farms = [root.path().join("a"), root.path().join("b")];
    // Everything but the metrics address comes from a config file; the command line's address wins over
    // the file's (port 1 would not be served).
    let config = root.path().join("farmer.toml");
    let farm_list: Vec<String> = farms
        .iter()
        .map(|farm| format!("\"path={},size=1M\"", farm.display()))
        .collect();
    std::fs::write(
        &config,
        format!(
            "node = \"ws://127.0.0.1:1\"\nreward-address = \"{}\"\nmetrics-address = \"127.0.0.1:1\"\n\
             farms = [{}]\n",
            "11".repeat(32),
            farm_list.join(", ")
        ),
    )
    .expect("writes the config");
    let mut command = Command::new(env!("CARGO_BIN_EXE_acre-farmer"));
    command
        .args(["farm", "--config"])
        .arg(&config)
        .args(["--metrics-address", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut farmer = acre_tests::KillOnDrop(command.spawn().expect("acre-farmer starts"));
    let started = std::time::Instant::now();
    let response = loop {
        if let Some(response) = try_http_get(port, "/metrics") {
            break response;
        }
        assert!(started.elapsed().as_secs() < 30, "no metrics server on {port}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("content-type: application/openmetrics-text"),
        "{response}"
    );
    let (_, body) = response.split_once("\r\n\r\n").expect("a body");
    acre_tests::metrics_docs::assert_metrics_match_docs("acre-farmer", body);
    // Both farms' series are there from the start.
    assert!(
        body.contains("acre_farmer_slots_audited_total{farm=\"1\"} 0"),
        "{body}"
    );

    let health = try_http_get(port, "/health").expect("health answers");
    assert!(health.starts_with("HTTP/1.1 503"), "{health}");
    assert!(
        health.contains("not farming: not connected to the node"),
        "{health}"
    );
    let missing = try_http_get(port, "/elsewhere").expect("answers");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");

    // Ctrl-C (SIGINT) stops the farmer cleanly within 10 s.
    let status = Command::new("kill")
        .args(["-INT", &farmer.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let stopping = std::time::Instant::now();
    let exit = loop {
        if let Some(exit) = farmer.0.try_wait().expect("waits") {
            break exit;
        }
        assert!(
            stopping.elapsed().as_secs() < 10,
            "acre-farmer did not stop within 10 s of SIGINT"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
}
