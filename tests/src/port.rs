//! Loopback ports for tests that start servers and binaries.

/// A loopback port that was free a moment ago (the OS picked it for a listener that is closed again).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}
