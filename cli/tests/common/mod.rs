//! What the tests that run the real binaries share: finding them, cleaning up after them, free ports.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Child;

/// The `acre` binary under test.
pub const ACRE: &str = env!("CARGO_BIN_EXE_acre");

/// A binary built next to `acre` (`cargo test --workspace` builds `acre-node` and `acre-farmer` too).
pub fn sibling(name: &str) -> PathBuf {
    let path = Path::new(ACRE).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo test --workspace` (it builds acre-node and acre-farmer too)",
        path.display()
    );
    path
}

/// Kills the child when dropped, so a failing test leaves no process behind.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}
