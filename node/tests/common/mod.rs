//! A node on loopback and a minimal in-process farmer for it (the `acre-farmer` library's plotting,
//! auditing and proving driven over the real RPC), so node tests need no other binary.

#![allow(dead_code, unreachable_pub)]

pub mod authoring;

use std::sync::Arc;
use std::time::Duration;

use acre_consensus::sectors::{PublicKey, SectorId};
use acre_consensus::solutions::Solution;
use acre_consensus::{HistorySize, Piece, ProtocolParams, SegmentHeader, codec};
use acre_farmer::piece_source::InMemoryPieceSource;
use acre_farmer::plotting::{PlottedSector, plot_sectors};
use acre_farmer::proving::first_solution;
use acre_node::{ChainSpec, Node, NodeConfig};
use acre_rpc_api::{BlockSeal, ChainApiClient, FarmerApiClient, HexBytes, SolutionSubmission};
use acre_storage::ArchivedSegment;
use ed25519_dalek::SigningKey;
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};

/// A dev chain whose slots are short enough for tests.
pub fn test_spec() -> ChainSpec {
    let mut spec = ChainSpec::dev();
    spec.name = "test".into();
    spec.params.pot_iterations = 12_000_000;
    // Inject entropy every few blocks so tests cross many injections.
    spec.params.pot_entropy_injection_interval = 4;
    spec.params.pot_entropy_injection_lookback = 1;
    spec.params.pot_entropy_injection_delay = 6;
    spec
}

/// Starts a node on an ephemeral port.
pub async fn start_node(spec: ChainSpec, dir: &std::path::Path) -> Node {
    Node::start(NodeConfig {
        spec,
        data_dir: dir.to_path_buf(),
        rpc_address: "127.0.0.1:0".parse().expect("address"),
        farmer_rpc_address: "127.0.0.1:0".parse().expect("address"),
        farmer_rpc_unsafe_external: false,
        rpc_access: acre_node::rpc::RpcAccess::default(),
        metrics_address: Some("127.0.0.1:0".parse().expect("address")),
        dashboard_address: None,
        seal_timeout: Duration::from_secs(3),
        timekeeper: true,
        network: None,
        domain: None,
    })
    .await
    .expect("node starts")
}

/// A WebSocket client of `node`'s farmer server, which serves every method (the public server lacks
/// farming and block submission).
pub async fn client(node: &Node) -> WsClient {
    WsClientBuilder::default()
        .build(format!("ws://{}", node.farmer_rpc_address()))
        .await
        .expect("connects")
}

/// The farmer's key.
pub fn farmer_key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

/// The farmer's reward address.
pub const REWARD_ADDRESS: [u8; 32] = [7; 32];

/// Plots `sectors` sectors from the node's history and farms them until the returned task is aborted.
/// A running test farmer; dropping it stops it.
#[derive(Debug)]
pub struct Farmer(Vec<tokio::task::JoinHandle<()>>);

impl Farmer {
    /// Stops farming.
    pub fn abort(&self) {
        self.0.iter().for_each(tokio::task::JoinHandle::abort);
    }
}

impl Drop for Farmer {
    fn drop(&mut self) {
        self.abort();
    }
}

/// Sectors plotted from a node's history.
#[derive(Debug)]
pub struct Plot {
    params: ProtocolParams,
    sectors: Vec<(SectorId, PlottedSector)>,
}

/// Plots `sectors` sectors from the node's current history.
pub async fn plot(client: &WsClient, sectors: u16) -> Arc<Plot> {
    let info = client.info().await.expect("farmer info");
    let params = info.params.clone();
    let mut segments = Vec::new();
    for index in 0..info.segment_count {
        let header = client.segment_headers(vec![index]).await.expect("headers")[0]
            .clone()
            .expect("archived");
        let header = SegmentHeader::decode(&header.0).expect("decodes");
        let mut pieces = Vec::new();
        for position in 0..u64::from(params.pieces_per_segment()) {
            let bytes = client
                .piece(index * u64::from(params.pieces_per_segment()) + position)
                .await
                .expect("piece")
                .expect("held");
            pieces.push(Piece::decode(&params, &bytes.0).expect("decodes"));
        }
        segments.push(ArchivedSegment { header, pieces });
    }
    let source = InMemoryPieceSource::new(params.clone(), segments);
    let history = HistorySize::new(info.segment_count).expect("history");
    let public_key = PublicKey(farmer_key().verifying_key().to_bytes());
    let plotted = plot_sectors(&params, &public_key, sectors, history, &source).expect("plots");
    Arc::new(Plot {
        params,
        sectors: plotted,
    })
}

/// Plots `sectors` sectors and farms them until the returned handle is dropped.
pub async fn spawn_farmer(client: Arc<WsClient>, sectors: u16) -> Farmer {
    let plot = plot(&client, sectors).await;
    farm(client, plot).await
}

/// Farms `plot` through `client` until the returned handle is dropped.
pub async fn farm(client: Arc<WsClient>, plotted: Arc<Plot>) -> Farmer {
    let params = plotted.params.clone();
    let key = farmer_key();
    let public_key = PublicKey(key.verifying_key().to_bytes());

    let mut slots = client.subscribe_slot_info().await.expect("slot subscription");
    let mut seals = client
        .subscribe_block_sealing()
        .await
        .expect("sealing subscription");

    let sealing_client = Arc::clone(&client);
    let sealing_key = key.clone();
    let sealer = tokio::spawn(async move {
        while let Some(Ok(request)) = seals.next().await {
            if request.public_key.0 != sealing_key.verifying_key().to_bytes() {
                continue;
            }
            let signature = acre_consensus::signing::sign(
                &sealing_key,
                acre_consensus::signing::SigningContext::Seal,
                &acre_consensus::Blake3Hash(request.header_hash.0),
            );
            let _ = sealing_client
                .submit_block_seal(BlockSeal {
                    header_hash: request.header_hash,
                    signature: HexBytes(signature.to_vec()),
                })
                .await;
        }
    });
    let farming = tokio::spawn(async move {
        while let Some(Ok(slot)) = slots.next().await {
            let plotted = Arc::clone(&plotted);
            let params: ProtocolParams = params.clone();
            let solution: Option<Solution> = tokio::task::spawn_blocking(move || {
                first_solution(
                    &params,
                    &public_key,
                    REWARD_ADDRESS,
                    &plotted.sectors,
                    &acre_consensus::Blake3Hash(slot.global_challenge.0),
                    acre_consensus::SolutionRange(slot.solution_range),
                )
                .expect("audits")
            })
            .await
            .expect("farming task");
            if let Some(solution) = solution {
                let _ = client
                    .submit_solution(SolutionSubmission {
                        slot: slot.slot,
                        solution: HexBytes(codec::encode(&solution)),
                    })
                    .await;
            }
        }
    });
    Farmer(vec![sealer, farming])
}

/// Waits until the best block is at least `number` (panics after `timeout`).
pub async fn wait_for_block(client: &WsClient, number: u64, timeout: Duration) -> acre_rpc_api::ChainHead {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let head = client.head().await.expect("head");
        if head.best_number >= number {
            return head;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no block {number} within {timeout:?} (best {})",
            head.best_number
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
