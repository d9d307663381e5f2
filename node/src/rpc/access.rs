//! Who may reach the RPC servers: the `Host` allow-list and the browser `Origin` filter.
//!
//! Browsers do not apply CORS to WebSockets, so without these checks any web page the operator opens could
//! talk to a node listening on loopback: directly (a page script connecting to `ws://127.0.0.1:9944`, which
//! carries the page's `Origin`), or through DNS rebinding (a name the attacker controls resolving to
//! 127.0.0.1, which carries the attacker's `Host`). The host filter accepts only loopback names (plus the
//! address the server is bound to and `--rpc-allow-host` entries); the origin filter refuses every request
//! with an `Origin` header unless that origin is listed with `--rpc-cors`. Non-browser clients (the farmer,
//! `acre`, scripts) send no `Origin` and are unaffected.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::header::{HeaderValue, ORIGIN};
use jsonrpsee::core::BoxError;
use jsonrpsee::server::middleware::http::{Authority, HostFilterLayer, Port};
use jsonrpsee::server::{HttpRequest, HttpResponse};
use tower::{Layer, Service};

use crate::Error;

/// The `--rpc-cors` value that allows every origin.
pub const ANY_ORIGIN: &str = "all";

/// Who may reach the RPC servers besides local non-browser clients.
#[derive(Debug, Clone, Default)]
pub struct RpcAccess {
    /// Extra accepted `Host` header values (`--rpc-allow-host`), e.g. `node.example.org` (then both without a
    /// port and with the server's port) or `node.example.org:443`; `*.example.org` matches subdomains.
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed to connect (`--rpc-cors`), e.g. `http://localhost:3000`, or [`ANY_ORIGIN`].
    /// Empty (the default) refuses every request that carries an `Origin` header.
    pub allowed_origins: Vec<String>,
}

fn access_error(entry: &str, reason: impl Into<String>) -> Error {
    Error::RpcAccess {
        entry: entry.to_owned(),
        reason: reason.into(),
    }
}

impl RpcAccess {
    /// The `Host` values a server bound to `local` accepts: loopback names with its port, its own address
    /// when it is bound to a specific one, and the configured extras.
    pub fn allowed_host_list(&self, local: SocketAddr) -> Result<Vec<String>, Error> {
        let port = local.port();
        let mut hosts = vec![
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
        ];
        if !local.ip().is_unspecified() && !local.ip().is_loopback() {
            hosts.push(local.to_string());
        }
        for entry in &self.allowed_hosts {
            let authority = Authority::try_from(entry.as_str())
                .map_err(|error| access_error(entry, error.to_string()))?;
            hosts.push(entry.clone());
            if authority.port == Port::Default {
                hosts.push(format!("{}:{port}", authority.host));
            }
        }
        Ok(hosts)
    }

    /// The host filter of a server bound to `local`.
    pub(crate) fn host_filter(&self, local: SocketAddr) -> Result<HostFilterLayer, Error> {
        let hosts = self.allowed_host_list(local)?;
        HostFilterLayer::new(hosts.iter().map(String::as_str))
            .map_err(|error| access_error(&hosts.join(","), error.to_string()))
    }

    /// The origin filter.
    pub(crate) fn origin_filter(&self) -> Result<OriginFilterLayer, Error> {
        let mut allowed = Vec::with_capacity(self.allowed_origins.len());
        for entry in &self.allowed_origins {
            if entry == ANY_ORIGIN {
                return Ok(OriginFilterLayer(Arc::new(OriginPolicy::Any)));
            }
            allowed.push(normalize_origin(entry)?);
        }
        Ok(OriginFilterLayer(Arc::new(OriginPolicy::Only(allowed))))
    }
}

/// `scheme://host[:port]` in lowercase without a trailing slash, as browsers send it.
fn normalize_origin(entry: &str) -> Result<String, Error> {
    let uri: hyper::Uri = entry
        .parse()
        .map_err(|error| access_error(entry, format!("{error}")))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(access_error(
            entry,
            "an origin is scheme://host[:port], e.g. http://localhost:3000",
        ));
    };
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(access_error(entry, "an origin has no path or query"));
    }
    Ok(format!("{scheme}://{authority}").to_ascii_lowercase())
}

#[derive(Debug)]
enum OriginPolicy {
    Any,
    Only(Vec<String>),
}

impl OriginPolicy {
    fn allows(&self, origin: &HeaderValue) -> bool {
        match self {
            Self::Any => true,
            Self::Only(allowed) => origin.to_str().is_ok_and(|origin| {
                let origin = origin.trim_end_matches('/');
                allowed.iter().any(|entry| entry.eq_ignore_ascii_case(origin))
            }),
        }
    }
}

/// Refuses (403) requests carrying an `Origin` header that is not allowed.
#[derive(Debug, Clone)]
pub(crate) struct OriginFilterLayer(Arc<OriginPolicy>);

impl<S> Layer<S> for OriginFilterLayer {
    type Service = OriginFilter<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OriginFilter {
            inner,
            policy: Arc::clone(&self.0),
        }
    }
}

/// The service of [`OriginFilterLayer`].
#[derive(Debug, Clone)]
pub(crate) struct OriginFilter<S> {
    inner: S,
    policy: Arc<OriginPolicy>,
}

impl<S, B> Service<HttpRequest<B>> for OriginFilter<S>
where
    S: Service<HttpRequest<B>, Response = HttpResponse>,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send + 'static>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context).map_err(Into::into)
    }

    fn call(&mut self, request: HttpRequest<B>) -> Self::Future {
        // Every Origin header must be allowed: a request with two cannot smuggle one past the check.
        let refused = request
            .headers()
            .get_all(ORIGIN)
            .iter()
            .find(|origin| !self.policy.allows(origin))
            .map(|origin| String::from_utf8_lossy(origin.as_bytes()).into_owned());
        match refused {
            Some(origin) => {
                tracing::debug!(target: "acre::rpc", %origin, "refused a request from a browser origin");
                Box::pin(async { Ok(jsonrpsee::server::http::response::denied()) })
            }
            None => {
                let response = self.inner.call(request);
                Box::pin(async move { response.await.map_err(Into::into) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(hosts: &[&str], origins: &[&str]) -> RpcAccess {
        RpcAccess {
            allowed_hosts: hosts.iter().map(|host| (*host).to_owned()).collect(),
            allowed_origins: origins.iter().map(|origin| (*origin).to_owned()).collect(),
        }
    }

    #[test]
    fn host_list_is_loopback_with_the_port_plus_extras() {
        let local: SocketAddr = "127.0.0.1:9944".parse().expect("address");
        let hosts = access(&["node.example.org"], &[])
            .allowed_host_list(local)
            .expect("valid");
        assert_eq!(
            hosts,
            [
                "localhost:9944",
                "127.0.0.1:9944",
                "[::1]:9944",
                "node.example.org",
                "node.example.org:9944"
            ]
        );
        let bound: SocketAddr = "10.1.2.3:9944".parse().expect("address");
        let hosts = RpcAccess::default().allowed_host_list(bound).expect("valid");
        assert!(hosts.contains(&"10.1.2.3:9944".to_owned()), "{hosts:?}");
    }

    #[test]
    fn malformed_access_entries_are_refused() {
        let local: SocketAddr = "127.0.0.1:9944".parse().expect("address");
        assert!(matches!(
            access(&["host:notaport"], &[]).allowed_host_list(local),
            Err(Error::RpcAccess { entry, .. }) if entry == "host:notaport"
        ));
        for origin in ["localhost:3000", "http://localhost:3000/app", "not an origin"] {
            assert!(
                matches!(
                    access(&[], &[origin]).origin_filter(),
                    Err(Error::RpcAccess { entry, .. }) if entry == origin
                ),
                "{origin}"
            );
        }
    }

    #[test]
    fn origin_policy_allows_only_listed_origins() {
        let layer = access(&[], &["HTTP://LocalHost:3000/"])
            .origin_filter()
            .expect("valid");
        assert!(layer.0.allows(&HeaderValue::from_static("http://localhost:3000")));
        assert!(!layer.0.allows(&HeaderValue::from_static("http://localhost:3001")));
        assert!(!layer.0.allows(&HeaderValue::from_static("null")));
        let none = RpcAccess::default().origin_filter().expect("valid");
        assert!(!none.0.allows(&HeaderValue::from_static("http://localhost:3000")));
        let any = access(&[], &[ANY_ORIGIN]).origin_filter().expect("valid");
        assert!(
            any.0
                .allows(&HeaderValue::from_static("https://anything.example"))
        );
    }
}
