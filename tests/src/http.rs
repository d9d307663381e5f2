//! A plain HTTP GET on loopback, for tests of the binaries' small HTTP servers (metrics, health, dashboard),
//! which answer one request per connection and then close it.

use std::io::{Read, Write};
use std::net::TcpStream;

/// The whole response (status line, headers, body) to `GET path` on `127.0.0.1:port`; `None` if nothing
/// listens there or the exchange fails.
pub fn try_http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

/// [`try_http_get`], failing the test if the server does not answer.
pub fn http_get(port: u16, path: &str) -> String {
    try_http_get(port, path).unwrap_or_else(|| panic!("no answer to GET {path} on port {port}"))
}
