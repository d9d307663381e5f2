//! The servers' method sets, limits and filters, over a real WebSocket client. The handlers hold no node
//! (`Rpc(Weak::new())`), so a method that exists answers "the node is shutting down" while one that does
//! not exist answers "method not found": exactly the distinction under test.

use std::sync::Weak;
use std::time::Duration;

use acre_rpc_api::{ChainApiClient, FarmerApiClient, HexBytes, RawBlock};
use jsonrpsee::core::ClientError;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::params::BatchRequestBuilder;
use jsonrpsee::rpc_params;
use jsonrpsee::types::error::{METHOD_NOT_FOUND_CODE, OVERSIZED_REQUEST_CODE};
use jsonrpsee::ws_client::{HeaderMap, HeaderValue, WsClient, WsClientBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::rpc::access::RpcAccess;

async fn serve(exposure: Exposure, limits: Limits, access: &RpcAccess) -> (SocketAddr, ServerHandle) {
    let module = exposure.module(Rpc(Weak::new())).expect("module");
    let address = "127.0.0.1:0".parse().expect("address");
    start_module(module, exposure, limits, address, access)
        .await
        .expect("server starts")
}

async fn connect(address: SocketAddr) -> Result<WsClient, ClientError> {
    WsClientBuilder::default()
        .connection_timeout(Duration::from_secs(5))
        .build(format!("ws://{address}"))
        .await
}

fn code(result: Result<impl std::fmt::Debug, ClientError>) -> i32 {
    match result {
        Err(ClientError::Call(error)) => error.code(),
        other => panic!("expected an error response, got {other:?}"),
    }
}

/// The status line of a raw WebSocket handshake carrying `host` (and `origin`).
async fn handshake_status(address: SocketAddr, host: &str, origin: Option<&str>) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connects");
    let origin = origin
        .map(|origin| format!("Origin: {origin}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\n{origin}Upgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("writes");
    let mut response = vec![0; 256];
    let read = stream.read(&mut response).await.expect("reads");
    let text = String::from_utf8_lossy(&response[..read]).into_owned();
    text.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn public_module_has_no_farmer_methods_and_no_block_submission() {
    let public = Exposure::Public.module(Rpc(Weak::new())).expect("module");
    let farmer = Exposure::Farmer.module(Rpc(Weak::new())).expect("module");
    let public_names: Vec<_> = public.method_names().collect();
    assert!(!public_names.is_empty());
    for name in &public_names {
        assert!(!name.starts_with("farmer_"), "public serves {name}");
        assert!(!FARMER_ONLY_CHAIN_METHODS.contains(name), "public serves {name}");
        assert!(farmer.method(name).is_some(), "farmer lacks public {name}");
    }
    // The names removed from the public server exist, so a renamed method cannot slip through.
    for name in FARMER_ONLY_CHAIN_METHODS {
        assert!(farmer.method(name).is_some(), "{name} is not a method");
    }
    for name in [
        "farmer_info",
        "farmer_submitSolution",
        "farmer_subscribeSlotInfo",
        "farmer_piece",
    ] {
        assert!(farmer.method(name).is_some(), "{name}");
    }
}

#[tokio::test]
async fn public_server_answers_method_not_found_for_farmer_methods_and_submit_block() {
    let access = RpcAccess::default();
    let (public, _public_handle) = serve(Exposure::Public, Exposure::Public.limits(), &access).await;
    let (farmer, _farmer_handle) = serve(Exposure::Farmer, Exposure::Farmer.limits(), &access).await;
    let block = RawBlock {
        header: HexBytes(vec![1]),
        body: HexBytes(vec![2]),
    };

    let client = connect(public).await.expect("connects");
    assert_eq!(code(client.info().await), METHOD_NOT_FOUND_CODE);
    assert_eq!(code(client.piece(0).await), METHOD_NOT_FOUND_CODE);
    assert_eq!(
        code(client.submit_block(block.clone()).await),
        METHOD_NOT_FOUND_CODE
    );
    assert!(client.subscribe_slot_info().await.is_err());
    // Public methods exist (the handler answers; it has no node behind it).
    assert_eq!(code(client.head().await), acre_rpc_api::error_codes::INTERNAL);

    let client = connect(farmer).await.expect("connects");
    assert_eq!(code(client.info().await), acre_rpc_api::error_codes::INTERNAL);
    assert_eq!(code(client.head().await), acre_rpc_api::error_codes::INTERNAL);
    // A bad block is refused by decoding, i.e. the method is there.
    assert_eq!(
        code(client.submit_block(block).await),
        acre_rpc_api::error_codes::BAD_ENCODING
    );
}

#[tokio::test]
async fn foreign_host_header_is_refused_and_loopback_names_are_accepted() {
    let access = RpcAccess {
        allowed_hosts: vec!["node.example.org".into()],
        allowed_origins: Vec::new(),
    };
    let (address, _handle) = serve(Exposure::Public, Exposure::Public.limits(), &access).await;
    let port = address.port();
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("node.example.org:{port}"),
    ] {
        let status = handshake_status(address, &host, None).await;
        assert!(status.contains(" 101 "), "{host}: {status}");
    }
    for host in [
        format!("attacker.example:{port}"),
        format!("localhost.attacker.example:{port}"),
        "localhost:1".to_owned(),
    ] {
        let status = handshake_status(address, &host, None).await;
        assert!(status.contains(" 403 "), "{host}: {status}");
    }
    // The real client, which sends `Host: 127.0.0.1:<port>`, works.
    let client = connect(address).await.expect("connects");
    assert_eq!(code(client.head().await), acre_rpc_api::error_codes::INTERNAL);
}

#[tokio::test]
async fn browser_origin_is_refused_unless_allowed_with_rpc_cors() {
    let access = RpcAccess {
        allowed_hosts: Vec::new(),
        allowed_origins: vec!["http://localhost:3000".into()],
    };
    let (address, _handle) = serve(Exposure::Farmer, Exposure::Farmer.limits(), &access).await;
    let with_origin = |origin: &'static str| {
        let mut headers = HeaderMap::new();
        headers.insert("origin", HeaderValue::from_static(origin));
        WsClientBuilder::default()
            .set_headers(headers)
            .build(format!("ws://{address}"))
    };
    assert!(with_origin("https://evil.example").await.is_err());
    assert!(with_origin("null").await.is_err());
    let allowed = with_origin("http://localhost:3000")
        .await
        .expect("allowed origin connects");
    assert_eq!(code(allowed.info().await), acre_rpc_api::error_codes::INTERNAL);
    let status = handshake_status(
        address,
        &format!("localhost:{}", address.port()),
        Some("https://evil.example"),
    )
    .await;
    assert!(status.contains(" 403 "), "{status}");
}

#[tokio::test]
async fn servers_refuse_batches_oversized_requests_and_extra_connections() {
    let access = RpcAccess::default();
    let limits = Limits {
        max_connections: 2,
        ..Exposure::Public.limits()
    };
    let (address, _handle) = serve(Exposure::Public, limits, &access).await;
    let first = connect(address).await.expect("first connects");
    let second = connect(address).await.expect("second connects");
    assert!(connect(address).await.is_err(), "a third connection is refused");
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let third = connect(address).await.expect("a slot frees when a client leaves");

    let mut batch = BatchRequestBuilder::new();
    batch.insert("chain_head", rpc_params![]).expect("params");
    batch.insert("chain_head", rpc_params![]).expect("params");
    assert!(third.batch_request::<serde_json::Value>(batch).await.is_err());

    // A transaction-sized request reaches the handler; one beyond the limit never does.
    let small = HexBytes(vec![0; 200]);
    assert_eq!(
        code(second.submit_transaction(small).await),
        acre_rpc_api::error_codes::INTERNAL
    );
    let oversized = HexBytes(vec![0; limits.max_request_size as usize]);
    match second.submit_transaction(oversized).await {
        Err(ClientError::Call(error)) => assert_eq!(error.code(), OVERSIZED_REQUEST_CODE),
        // The server answers with a null id, which the client treats as fatal for the connection.
        Err(ClientError::RestartNeeded(_)) => {}
        other => panic!("an oversized request was not refused: {other:?}"),
    }
}

#[test]
fn farmer_server_refuses_non_loopback_addresses_without_the_opt_in() {
    let external: SocketAddr = "0.0.0.0:9945".parse().expect("address");
    assert!(matches!(
        check_farmer_address(external, false),
        Err(Error::FarmerRpcExposed { address }) if address == external
    ));
    assert!(check_farmer_address(external, true).is_ok());
    for loopback in ["127.0.0.1:9945", "[::1]:9945"] {
        let address: SocketAddr = loopback.parse().expect("address");
        assert!(check_farmer_address(address, false).is_ok(), "{loopback}");
    }
}
