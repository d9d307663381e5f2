//! A full disk, for real: a small tmpfs mounted in a user and mount namespace (`unshare -rm`, no root
//! needed) holds the plot and then the node's database.
//!
//! - A farm larger than the free space is refused when it is created (its space is reserved up front),
//!   with the OS's "No space left on device", and leaves no file behind; a farm that fits plots and
//!   scrubs clean.
//! - A node whose database's disk fills up while it authors stops with a clear error instead of refusing
//!   every block from then on. Once space is freed it restarts from the same database, which holds every
//!   block it had reported as best, and authoring resumes on top of them.
//!
//! Where user namespaces are not available (some containers forbid them) the test says so and checks
//! nothing; `scripts/full-disk` runs the same test and fails there instead.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use acre_execution::Address;
use acre_node::chain_spec::ChainSpec;
use common::{ACRE, KillOnDrop, free_port, sibling, spawn_farmer};

const CHILD_ENV: &str = "ACRE_FULL_DISK_TEST_DIR";

fn user_namespaces() -> bool {
    Command::new("unshare")
        .args(["-rm", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[test]
fn a_full_disk_is_refused_or_stops_the_node_clearly_and_corrupts_nothing() {
    if !user_namespaces() {
        assert!(
            std::env::var_os("ACRE_REQUIRE_FULL_DISK_TEST").is_none(),
            "user namespaces (unshare -rm) are not available here"
        );
        eprintln!("skipped: user namespaces (unshare -rm) are not available, so no tmpfs can be mounted");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let status = Command::new("unshare")
        .args(["-rm", "--"])
        .arg(std::env::current_exe().expect("test binary"))
        .args(["--exact", "full_disk_in_a_namespace", "--ignored", "--nocapture"])
        .env(CHILD_ENV, dir.path())
        .status()
        .expect("unshare runs");
    assert!(
        status.success(),
        "the full-disk scenario failed (its output is above)"
    );
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program).args(args).output().expect("runs")
}

/// `acre chain --json`: (best number, best hash), if the node answers.
fn head(node: &str) -> Option<(u64, String)> {
    let output = run(Path::new(ACRE), &["chain", "--json", "--node", node]);
    let head: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    Some((
        head["best_number"].as_u64()?,
        head["best_hash"].as_str()?.to_owned(),
    ))
}

/// Fills the file system under `path` to its last byte.
fn fill(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).expect("creates the filler");
    let chunk = vec![0xa5u8; 4096];
    while file.write_all(&chunk).is_ok() {}
    while file.write_all(&chunk[..1]).is_ok() {}
    let _ = file.sync_all();
}

fn spawn_node(spec: &Path, data: &Path, rpc: u16, farmer_rpc: u16, log: &Path) -> KillOnDrop {
    KillOnDrop(
        Command::new(sibling("acre-node"))
            .arg("--chain")
            .arg(spec)
            .arg("--data-dir")
            .arg(data)
            .args(["--rpc-port", &rpc.to_string()])
            .args(["--farmer-rpc-port", &farmer_rpc.to_string(), "--no-metrics"])
            .args(["--timekeeper", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("log file"))
            .spawn()
            .expect("acre-node starts"),
    )
}

/// Not a test on its own: the body of `a_full_disk_*`, run by it inside `unshare -rm` (ignored otherwise,
/// so it never passes vacuously).
#[test]
#[ignore = "run by a_full_disk_is_refused_or_stops_the_node_clearly_and_corrupts_nothing in a namespace"]
fn full_disk_in_a_namespace() {
    let root = PathBuf::from(std::env::var_os(CHILD_ENV).expect("run by a_full_disk_*"));
    let disk = root.join("disk");
    std::fs::create_dir_all(&disk).expect("mount point");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&disk)
        .status()
        .expect("mount runs");
    assert!(mounted.success(), "mounting a tmpfs in the namespace");

    // The plot: too large for the disk, refused at creation; one that fits plots.
    let archive = root.join("archive");
    let file = root.join("history.bin");
    std::fs::write(&file, vec![7u8; 100_000]).expect("history file");
    let output = run(
        Path::new(ACRE),
        &["archive", "--params", "dev", path(&file), path(&archive)],
    );
    assert!(output.status.success(), "{}", text(&output));
    let farmer = sibling("acre-farmer");
    let key = "22".repeat(32);
    let plot = |size: &str| {
        let farm = format!("path={},size={size}", disk.join("farm").display());
        run(
            &farmer,
            &[
                "--params",
                "dev",
                "plot",
                "--archive",
                path(&archive),
                "--public-key",
                &key,
                &farm,
            ],
        )
    };
    let output = plot("64M");
    assert!(!output.status.success(), "a 64 MiB farm on an 8 MiB disk");
    let message = text(&output);
    assert!(
        message.contains("reserving") && message.contains("No space left on device"),
        "{message}"
    );
    let left: Vec<_> = std::fs::read_dir(disk.join("farm"))
        .expect("farm dir")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "nothing left behind: {left:?}");
    let output = plot("200K");
    assert!(output.status.success(), "{}", text(&output));
    let output = run(&farmer, &["--params", "dev", "scrub", path(&disk.join("farm"))]);
    assert!(
        output.status.success() && text(&output).contains("0 damaged"),
        "{}",
        text(&output)
    );
    std::fs::remove_dir_all(disk.join("farm")).expect("frees the farm's space");
    println!(
        "plot: a 64 MiB farm on an 8 MiB disk is refused at creation; a 200 KiB one plots and scrubs clean"
    );

    // The node: its database fills the disk while it authors.
    let mut spec = ChainSpec::dev();
    spec.name = "full-disk".into();
    spec.params.pot_iterations = 12_000_000;
    let spec_path = root.join("spec.json");
    std::fs::write(&spec_path, serde_json::to_string(&spec).expect("JSON")).expect("spec");
    let data = disk.join("node");
    let log = root.join("node.log");
    let (rpc, farmer_rpc) = (free_port(), free_port());
    let url = format!("ws://127.0.0.1:{rpc}");
    let mut node = spawn_node(&spec_path, &data, rpc, farmer_rpc, &log);
    let _farmer = spawn_farmer(
        farmer_rpc,
        &Address([0x5a; 32]),
        &root.join("farm"),
        "80K",
        "warn",
    );
    let deadline = Instant::now() + Duration::from_secs(180);
    while head(&url).is_none_or(|(best, _)| best < 3) {
        assert!(Instant::now() < deadline, "no third block in time");
        std::thread::sleep(Duration::from_millis(300));
    }
    fill(&disk.join("filler"));
    let mut acknowledged = head(&url).expect("the node answers");
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = node.0.try_wait().expect("polls") {
            break status;
        }
        assert!(Instant::now() < deadline, "the node did not stop on a full disk");
        if let Some(seen) = head(&url) {
            acknowledged = seen;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log_text = std::fs::read_to_string(&log).expect("node log");
    assert!(!status.success(), "the node exits with a failure status");
    assert!(
        log_text.contains("No space left on device")
            && log_text.contains("The node stopped")
            && log_text.contains("Free space"),
        "{log_text}"
    );
    assert!(acknowledged.0 >= 3);
    if let Some(line) = log_text.lines().find(|line| line.starts_with("error:")) {
        println!("node: {line}");
    }

    // Space is freed; the same database opens and holds every block the node reported as best.
    std::fs::remove_file(disk.join("filler")).expect("frees space");
    let _node = spawn_node(&spec_path, &data, rpc, farmer_rpc, &root.join("node-2.log"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while head(&url).is_none() {
        assert!(Instant::now() < deadline, "the node did not restart");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (number, hash) = &acknowledged;
    let output = run(
        Path::new(ACRE),
        &["block", &number.to_string(), "--json", "--node", &url],
    );
    let block: serde_json::Value = serde_json::from_slice(&output.stdout).expect("block JSON");
    assert_eq!(
        block["hash"].as_str(),
        Some(hash.as_str()),
        "the last acknowledged block is kept"
    );
    let deadline = Instant::now() + Duration::from_secs(180);
    while head(&url).is_none_or(|(best, _)| best <= *number) {
        assert!(Instant::now() < deadline, "authoring did not resume");
        std::thread::sleep(Duration::from_millis(300));
    }
    println!("node: stopped on a full disk after block {number}; restarted with it kept and authored on");
}

fn path(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}
