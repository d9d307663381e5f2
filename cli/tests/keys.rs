//! `acre key generate` / `acre key inspect`.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn acre(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_acre"))
        .args(args)
        .output()
        .expect("running acre")
}

#[test]
fn generated_keys_are_private_inspectable_and_never_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("farmer.key");
    let file = path.to_str().expect("utf-8");
    let generated = acre(&["key", "generate", file]);
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let public_key = String::from_utf8(generated.stdout).expect("utf-8");
    assert_eq!(public_key.trim().len(), 64);
    assert_eq!(
        std::fs::metadata(&path).expect("exists").permissions().mode() & 0o777,
        0o600
    );

    let inspected = acre(&["key", "inspect", file]);
    assert_eq!(String::from_utf8(inspected.stdout).expect("utf-8"), public_key);

    let again = acre(&["key", "generate", file]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwritten"));
    let other = acre(&[
        "key",
        "generate",
        dir.path().join("other.key").to_str().expect("utf-8"),
    ]);
    assert_ne!(
        String::from_utf8(other.stdout).expect("utf-8"),
        public_key,
        "keys are random"
    );

    std::fs::write(&path, "not hex").expect("writes");
    let bad = acre(&["key", "inspect", file]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("not a hex key file"));
}
