//! The node's small HTTP servers (metrics and health, the dashboard): one bounded request-per-connection
//! loop shared by both, so neither can be held open or flooded.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// How much a server accepts. It answers one small GET per connection, so anything slow or large
/// is either broken or hostile: a connection that has not sent its headers within `header_timeout` or is
/// not done within `connection_timeout` is closed, and beyond `max_connections` new ones are closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time a client has to send the request line and headers (slow-loris).
    pub header_timeout: Duration,
    /// Time a whole connection may stay open.
    pub connection_timeout: Duration,
    /// Largest request head (line plus headers), bytes; hyper's minimum is 8 KiB.
    pub max_request_head: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: 16,
            header_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(30),
            max_request_head: 8 << 10,
        }
    }
}

/// Answers one request.
pub type Handler = Arc<dyn Fn(&Request<Incoming>) -> Response<Full<Bytes>> + Send + Sync>;

/// Serves `handler` on `listener` within `limits` until `shutdown` flips.
pub async fn serve(
    listener: TcpListener,
    handler: Handler,
    mut shutdown: watch::Receiver<bool>,
    limits: ServerLimits,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(connection) => connection,
            Err(error) => {
                tracing::warn!(%error, "http: accept failed");
                // Out of file descriptors and the like: do not spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(%peer, "http: connection limit reached; closing");
            drop(stream);
            continue;
        };
        let handler = Arc::clone(&handler);
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let response = handler(&request);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(limits.max_request_head.max(8 << 10))
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(limits.connection_timeout, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(%error, %peer, "http connection ended"),
                Err(_) => tracing::debug!(%peer, "http connection timed out"),
            }
        });
    }
}

/// A response with `status`, `content_type` and `body`.
pub fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}
