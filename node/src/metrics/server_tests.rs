//! The metrics server's limits against misbehaving clients.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::{Metrics, ServerLimits, bind, serve_with};

async fn start(limits: ServerLimits) -> (SocketAddr, watch::Sender<bool>) {
    let listener = bind("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("binds");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(serve_with(listener, Arc::new(Metrics::new()), stopped, limits));
    (address, stop)
}

/// Reads until the server closes the connection (or `within` passes); returns what was read.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    tokio::time::timeout(within, async {
        let mut buffer = [0; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => received.extend_from_slice(&buffer[..read]),
            }
        }
    })
    .await
    .ok()
    .map(|()| received)
}

async fn get_metrics(address: SocketAddr) -> String {
    let mut stream = TcpStream::connect(address).await.expect("connects");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("writes");
    let response = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("the server answers and closes");
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn slow_loris_connections_are_closed_after_the_header_timeout() {
    let limits = ServerLimits {
        header_timeout: Duration::from_millis(300),
        ..ServerLimits::default()
    };
    let (address, _stop) = start(limits).await;
    let mut slow = TcpStream::connect(address).await.expect("connects");
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: loc")
        .await
        .expect("writes");
    let started = Instant::now();
    let response = read_until_closed(&mut slow, Duration::from_secs(5))
        .await
        .expect("closed well before the test's deadline");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    // hyper answers a timed-out head with 408 or simply closes; it never serves the metrics.
    assert!(
        !String::from_utf8_lossy(&response).contains("acre_"),
        "{response:?}"
    );
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed_and_slots_come_back() {
    let limits = ServerLimits {
        max_connections: 2,
        header_timeout: Duration::from_millis(500),
        ..ServerLimits::default()
    };
    let (address, _stop) = start(limits).await;
    let mut idle = Vec::new();
    for _ in 0..2 {
        let stream = TcpStream::connect(address).await.expect("connects");
        idle.push(stream);
    }
    // Let the server accept both before the third arrives.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(address).await.expect("the kernel accepts");
    let refused = read_until_closed(&mut third, Duration::from_millis(300))
        .await
        .expect("closed at once");
    assert!(refused.is_empty(), "{refused:?}");

    // The idle connections time out; then a scrape works again.
    for stream in &mut idle {
        read_until_closed(stream, Duration::from_secs(5))
            .await
            .expect("idle closed");
    }
    let response = get_metrics(address).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("acre_best_block_number"), "{response}");
}

#[tokio::test]
async fn oversized_request_heads_are_refused() {
    let (address, _stop) = start(ServerLimits::default()).await;
    let mut stream = TcpStream::connect(address).await.expect("connects");
    let padding = "a".repeat(64 << 10);
    let request = format!("GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Padding: {padding}\r\n\r\n");
    // The server may close before everything is written.
    let _ = stream.write_all(request.as_bytes()).await;
    let response = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("the server gives up on the request");
    let response = String::from_utf8_lossy(&response);
    assert!(!response.contains("acre_"), "{response}");
    assert!(
        response.is_empty() || response.starts_with("HTTP/1.1 431"),
        "{response}"
    );
}
