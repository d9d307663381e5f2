//! The dashboard: one web page served by the node (`--dashboard`), showing the chain and the farms live.
//!
//! The page (`dashboard/index.html`, embedded in the binary: no build step, no external resources) talks
//! to the node's public RPC over a WebSocket from the browser: `chain_head`, `chain_blockByNumber`,
//! `chain_subscribeNewHeads` and `node_farmers`. This server only hands out the page and `/config.json`
//! (the RPC address to connect to). The RPC server refuses browser origins it was not told about, so
//! starting the dashboard adds its own origins to the public server's list (never to the farmer
//! server's). It listens on loopback unless given another address; for a remote browser the operator
//! also opens the public RPC (`--listen`, `--rpc-allow-host`).

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::http::{Handler, ServerLimits, response};

/// The page.
pub const INDEX: &str = include_str!("dashboard/index.html");
/// The default dashboard port (`--dashboard` without an address listens on `127.0.0.1:9617`).
pub const DEFAULT_DASHBOARD_PORT: u16 = 9617;

/// The browser origins a page served from `local` carries.
pub fn origins(local: SocketAddr) -> Vec<String> {
    let port = local.port();
    let mut origins = vec![
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        format!("http://[::1]:{port}"),
    ];
    if !local.ip().is_unspecified() && !local.ip().is_loopback() {
        origins.push(format!("http://{local}"));
    }
    origins
}

/// Serves the page and its config on `listener` until `shutdown` flips; the page connects to the public
/// RPC on `rpc_port`.
pub async fn serve(listener: TcpListener, rpc_port: u16, shutdown: watch::Receiver<bool>) {
    let handler: Handler = Arc::new(move |request| respond(request, rpc_port));
    crate::http::serve(listener, handler, shutdown, ServerLimits::default()).await;
}

/// The host name the browser used (from `Host`), if it is a plain name or address; else loopback.
fn browser_host(request: &Request<Incoming>) -> String {
    let host = request
        .headers()
        .get(hyper::header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    host_name(host)
}

/// The name part of a `Host` header value (`name`, `name:port`, `[v6]` or `[v6]:port`) when it is a plain
/// DNS name or address; loopback for anything else, so a hostile header cannot shape the RPC URL the page
/// is told to use.
fn host_name(host: &str) -> String {
    let name = if host.starts_with('[') {
        host.split_inclusive(']')
            .next()
            .filter(|name| name.ends_with(']'))
    } else {
        host.split(':').next()
    }
    .unwrap_or_default();
    let plain = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    if plain {
        name.to_owned()
    } else {
        "127.0.0.1".to_owned()
    }
}

fn respond(request: &Request<Incoming>, rpc_port: u16) -> Response<Full<Bytes>> {
    if request.method() != hyper::Method::GET {
        return response(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "GET only\n",
        );
    }
    let mut page = match request.uri().path() {
        "/" | "/index.html" => response(StatusCode::OK, "text/html; charset=utf-8", INDEX),
        "/config.json" => {
            let config = serde_json::json!({ "rpc": format!("ws://{}:{rpc_port}", browser_host(request)) });
            response(StatusCode::OK, "application/json", config.to_string())
        }
        _ => response(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: try GET /\n",
        ),
    };
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self' ws: wss:; img-src data:; frame-ancestors 'none'",
        ),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ] {
        page.headers_mut()
            .insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_cover_loopback_names_and_a_specific_address() {
        let loopback = origins("127.0.0.1:9617".parse().expect("address"));
        assert!(loopback.contains(&"http://localhost:9617".to_owned()));
        assert_eq!(loopback.len(), 3);
        let lan = origins("192.168.1.5:80".parse().expect("address"));
        assert!(lan.contains(&"http://192.168.1.5:80".to_owned()));
        assert_eq!(origins("0.0.0.0:1".parse().expect("address")).len(), 3);
    }

    #[test]
    fn the_rpc_host_is_the_browser_s_when_plain_and_loopback_otherwise() {
        assert_eq!(host_name("node.example.org:9617"), "node.example.org");
        assert_eq!(host_name("192.168.1.5"), "192.168.1.5");
        assert_eq!(host_name("[::1]:9617"), "[::1]");
        assert_eq!(host_name("[fe80::1]"), "[fe80::1]");
        for hostile in [
            "",
            ":9617",
            "[::1",
            "evil\"};alert(1);//",
            "a b",
            "name/path",
            "user@host",
            &"a".repeat(254),
        ] {
            assert_eq!(host_name(hostile), "127.0.0.1", "{hostile:?}");
        }
    }

    #[test]
    fn the_page_is_self_contained() {
        // No external scripts, styles or fonts: the page works offline and leaks nothing (the SVG
        // namespace is a name, not a fetch).
        let urls = INDEX.replace("'http://www.w3.org/2000/svg'", "");
        assert!(
            !urls.contains("http://") && !urls.contains("https://"),
            "external URL in the page"
        );
        assert!(INDEX.contains("id=\"best-number\"") && INDEX.contains("block-time-chart"));
    }
}
