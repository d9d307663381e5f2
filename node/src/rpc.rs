//! The JSON-RPC servers: `acre_rpc_api`'s traits over the node's shared state, split into a public and a
//! farmer server (module `server`) behind host and origin filters (module `access`).
//!
//! Handlers decode every parameter with the consensus crate's bounded decoders and answer bad input with an
//! error object carrying one of `acre_rpc_api::error_codes`; nothing a client sends can panic the node.

mod access;
mod domains;
mod server;

pub use access::{ANY_ORIGIN, RpcAccess};
pub use server::{Exposure, FARMER_ONLY_CHAIN_METHODS, Limits, check_farmer_address, start};

use std::sync::{Arc, Weak};

use acre_consensus::blocks::{Body, Header};
use acre_consensus::solutions::Solution;
use acre_consensus::votes::SignedVote;
use acre_consensus::{BlockNumber, PieceIndex, codec};
use acre_execution::Address;
use acre_rpc_api::error_codes::{
    BAD_ENCODING, INTERNAL, INVALID_BLOCK, INVALID_SEAL, INVALID_SOLUTION, INVALID_TRANSACTION, INVALID_VOTE,
};
use acre_rpc_api::{
    AccountInfo, Balance, BlockInfo, BlockSeal, ChainApiServer, ChainHead, DomainsInfo, FarmerApiServer,
    FarmerInfo, FarmerReport, FarmerStatus, Hex32, HexBytes, NetworkInfo, NodeApiServer, NominatorInfo,
    RawBlock, SolutionSubmission, SyncInfo, VoteSubmission, error,
};
use acre_storage::db::tables::Pieces;
use jsonrpsee::PendingSubscriptionSink;
use jsonrpsee::core::{SubscriptionResult, async_trait, to_json_raw_value};
use jsonrpsee::types::ErrorObjectOwned;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::metrics::Metrics;
use crate::service::Shared;

/// Most segment headers one request may ask for.
const MAX_SEGMENT_HEADERS_PER_REQUEST: usize = 1024;

/// The RPC handlers. They hold the node weakly: once the node stops, lingering connections get a
/// "shutting down" error instead of keeping the database open.
#[derive(Debug, Clone)]
pub struct Rpc(pub Weak<Shared>);

fn internal(err: impl std::fmt::Display) -> ErrorObjectOwned {
    error(INTERNAL, err.to_string())
}

/// Forwards a broadcast channel to a subscription until either side closes.
async fn forward<T: Clone, U: Serialize>(
    pending: PendingSubscriptionSink,
    mut receiver: broadcast::Receiver<T>,
    map: impl Fn(T) -> U,
) -> SubscriptionResult {
    let sink = pending.accept().await?;
    loop {
        let item = match receiver.recv().await {
            Ok(item) => item,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::debug!(missed, method = sink.method_name(), "subscriber lagged");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        };
        if sink.send(to_json_raw_value(&map(item))?).await.is_err() {
            return Ok(());
        }
    }
}

impl Rpc {
    fn node(&self) -> Result<Arc<Shared>, ErrorObjectOwned> {
        self.0
            .upgrade()
            .ok_or_else(|| error(INTERNAL, "the node is shutting down"))
    }

    fn block_info(
        &self,
        hash: &acre_consensus::blocks::BlockHash,
    ) -> Result<Option<BlockInfo>, ErrorObjectOwned> {
        Ok(self
            .node()?
            .chain
            .block(hash)
            .map_err(internal)?
            .map(|(header, body)| Shared::block_info(&header, &body)))
    }
}

#[async_trait]
impl FarmerApiServer for Rpc {
    async fn info(&self) -> Result<FarmerInfo, ErrorObjectOwned> {
        let node = self.node()?;
        let chain = &node.chain;
        Ok(FarmerInfo {
            chain: chain.spec().name.clone(),
            genesis_hash: Hex32(chain.genesis_hash().0),
            params: chain.params().clone(),
            segment_count: chain.archive_progress().0,
            p2p_addresses: match node.p2p.get() {
                Some(p2p) => p2p
                    .handle
                    .listening()
                    .await
                    .unwrap_or_default()
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                None => Vec::new(),
            },
        })
    }

    async fn subscribe_slot_info(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        let receiver = self.node()?.slots.subscribe();
        forward(pending, receiver, |slot| slot).await
    }

    async fn submit_solution(&self, submission: SolutionSubmission) -> Result<(), ErrorObjectOwned> {
        let solution: Solution = codec::decode_bounded("solution", &submission.solution.0, 1 << 16)
            .map_err(|err| error(BAD_ENCODING, err.to_string()))?;
        let shared = self.node()?;
        let node = Arc::clone(&shared);
        let slot = submission.slot;
        let late = tokio::task::spawn_blocking(move || node.submit_solution(slot, solution))
            .await
            .map_err(internal)?
            .map_err(|err| {
                Metrics::rejected(&shared.metrics.solutions_rejected, err.reason());
                error(INVALID_SOLUTION, err.to_string())
            })?;
        if late {
            tokio::spawn(async move { shared.author(acre_consensus::SlotNumber(slot)).await });
        }
        Ok(())
    }

    async fn subscribe_block_sealing(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        let receiver = self.node()?.seal_requests.subscribe();
        forward(pending, receiver, |request| request).await
    }

    async fn submit_vote(&self, submission: VoteSubmission) -> Result<(), ErrorObjectOwned> {
        let vote =
            SignedVote::decode(&submission.vote.0).map_err(|err| error(BAD_ENCODING, err.to_string()))?;
        let node = self.node()?;
        let metrics = Arc::clone(&node.metrics);
        tokio::task::spawn_blocking(move || node.submit_vote(vote))
            .await
            .map_err(internal)?
            .map_err(|err| {
                Metrics::rejected(&metrics.votes_rejected, err.reason());
                error(INVALID_VOTE, err.to_string())
            })
    }

    async fn submit_block_seal(&self, seal: BlockSeal) -> Result<(), ErrorObjectOwned> {
        let signature: [u8; 64] = seal
            .signature
            .0
            .as_slice()
            .try_into()
            .map_err(|_| error(BAD_ENCODING, "a seal is a 64-byte ed25519 signature"))?;
        self.node()?
            .submit_seal(acre_consensus::Blake3Hash(seal.header_hash.0), signature)
            .map_err(|err| error(INVALID_SEAL, err.to_string()))
    }

    async fn subscribe_archived_segment_headers(
        &self,
        pending: PendingSubscriptionSink,
    ) -> SubscriptionResult {
        let receiver = self.node()?.segments.subscribe();
        forward(pending, receiver, |header| HexBytes(header.encode())).await
    }

    async fn segment_headers(&self, indices: Vec<u64>) -> Result<Vec<Option<HexBytes>>, ErrorObjectOwned> {
        if indices.len() > MAX_SEGMENT_HEADERS_PER_REQUEST {
            return Err(error(
                BAD_ENCODING,
                format!("at most {MAX_SEGMENT_HEADERS_PER_REQUEST} segment headers per request"),
            ));
        }
        let node = self.node()?;
        Ok(indices
            .into_iter()
            .map(|index| {
                node.chain
                    .segment_header(index)
                    .map(|header| HexBytes(header.encode()))
            })
            .collect())
    }

    async fn piece(&self, index: u64) -> Result<Option<HexBytes>, ErrorObjectOwned> {
        let node = self.node()?;
        if let Some(p2p) = node.p2p.get() {
            // Stored, or from the DSN (a node may keep the pieces of recent segments only).
            return Ok(p2p.piece(&node, PieceIndex(index)).await.map(HexBytes));
        }
        let read = node.chain.db().read().map_err(internal)?;
        Ok(read
            .get::<Pieces>(&PieceIndex(index))
            .map_err(internal)?
            .map(HexBytes))
    }

    async fn report_status(&self, status: FarmerStatus) -> Result<(), ErrorObjectOwned> {
        self.node()?
            .farmers
            .report(status, std::time::Instant::now())
            .map_err(|refusal| error(BAD_ENCODING, refusal.to_string()))
    }
}

#[async_trait]
impl NodeApiServer for Rpc {
    async fn farmers(&self) -> Result<Vec<FarmerReport>, ErrorObjectOwned> {
        Ok(self.node()?.farmers.reports(std::time::Instant::now()))
    }

    async fn network(&self) -> Result<NetworkInfo, ErrorObjectOwned> {
        let node = self.node()?;
        if let Some(p2p) = node.p2p.get() {
            return Ok(p2p.info(&node).await);
        }
        let best = node.chain.best().0.number.0;
        Ok(NetworkInfo {
            peer_id: None,
            listening: Vec::new(),
            peers: Vec::new(),
            timekeeper: node.timekeeper.is_proving(),
            sync: SyncInfo {
                state: "off".into(),
                best,
                target: best,
                blocks_per_second: 0.0,
                eta_seconds: None,
            },
        })
    }
}

#[async_trait]
impl ChainApiServer for Rpc {
    async fn head(&self) -> Result<ChainHead, ErrorObjectOwned> {
        let node = self.node()?;
        let chain = &node.chain;
        let (best, context) = chain.best();
        let finalized = chain.finalized().map_err(internal)?;
        let (segment_count, _) = chain.archive_progress();
        let archived = chain.last_sealed_block();
        let solution_range = context.child.era.solution_range;
        Ok(ChainHead {
            chain: chain.spec().name.clone(),
            genesis_hash: Hex32(chain.genesis_hash().0),
            best_number: best.number.0,
            best_hash: Hex32(best.hash.0),
            best_slot: best.slot.0,
            finalized_number: finalized.number.0,
            archived_number: archived.map(|number| number.0),
            finalized_or_archived_number: finalized.number.0.max(archived.map_or(0, |number| number.0)),
            segment_count,
            current_slot: node.timekeeper.newest_slot().0,
            solution_range: solution_range.0,
            space_pledged: acre_consensus::audit::space_pledged(chain.params(), solution_range),
        })
    }

    async fn block_by_number(&self, number: u64) -> Result<Option<BlockInfo>, ErrorObjectOwned> {
        match self
            .node()?
            .chain
            .canonical_hash(BlockNumber(number))
            .map_err(internal)?
        {
            Some(hash) => self.block_info(&hash),
            None => Ok(None),
        }
    }

    async fn block_by_hash(&self, hash: Hex32) -> Result<Option<BlockInfo>, ErrorObjectOwned> {
        self.block_info(&acre_consensus::Blake3Hash(hash.0))
    }

    async fn raw_block(&self, hash: Hex32) -> Result<Option<RawBlock>, ErrorObjectOwned> {
        Ok(self
            .node()?
            .chain
            .block(&acre_consensus::Blake3Hash(hash.0))
            .map_err(internal)?
            .map(|(header, body)| RawBlock {
                header: HexBytes(header.encode()),
                body: HexBytes(body.encode()),
            }))
    }

    async fn submit_block(&self, block: RawBlock) -> Result<Hex32, ErrorObjectOwned> {
        let header = Header::decode(&block.header.0).map_err(|err| error(BAD_ENCODING, err.to_string()))?;
        let body = Body::decode(&block.body.0).map_err(|err| error(BAD_ENCODING, err.to_string()))?;
        let node = self.node()?;
        let announced = std::sync::Arc::new((header.clone(), body.clone()));
        let imported = node
            .import(header, body)
            .await
            .map_err(|err| error(INVALID_BLOCK, err.to_string()))?;
        let _ = node.outbound.send(crate::p2p::Outbound::Block(announced));
        Ok(Hex32(imported.hash.0))
    }

    async fn account(&self, address: Hex32) -> Result<AccountInfo, ErrorObjectOwned> {
        let account = self.node()?.chain.account(&Address(address.0));
        Ok(AccountInfo {
            balance: Balance(account.balance),
            nonce: account.nonce,
        })
    }

    async fn next_nonce(&self, address: Hex32) -> Result<u64, ErrorObjectOwned> {
        let node = self.node()?;
        let address = Address(address.0);
        let account_nonce = node.chain.account(&address).nonce;
        Ok(node.pool.next_nonce(&address, account_nonce))
    }

    async fn submit_transaction(&self, transaction: HexBytes) -> Result<Hex32, ErrorObjectOwned> {
        let node = self.node()?;
        let chain = &node.chain;
        let config = chain.spec().runtime_config(chain.genesis_hash());
        let hash = node
            .pool
            .submit_with(
                &transaction.0,
                &config,
                |address| chain.account(address),
                |tx| chain.check_call(tx),
            )
            .map_err(|err| {
                node.metrics.txpool_rejected(err.reason());
                error(INVALID_TRANSACTION, err.to_string())
            })?;
        node.metrics.txpool_size.set(node.pool.len() as u64);
        let _ = node
            .outbound
            .send(crate::p2p::Outbound::Transaction(std::sync::Arc::new(
                transaction.0,
            )));
        tracing::debug!(%hash, "transaction admitted");
        Ok(Hex32(hash.0))
    }

    async fn submit_bundle(&self, bundle: HexBytes) -> Result<Hex32, ErrorObjectOwned> {
        let node = self.node()?;
        let hash = node
            .bundles
            .submit(&bundle.0, |bundle| node.chain.check_bundle_submission(bundle))
            .map_err(|err| error(INVALID_TRANSACTION, err.to_string()))?;
        tracing::debug!(%hash, "bundle admitted");
        Ok(Hex32(hash.0))
    }

    async fn domains(&self) -> Result<Option<DomainsInfo>, ErrorObjectOwned> {
        let node = self.node()?;
        Ok(node
            .chain
            .domains()
            .map(|domains| domains::domains_info(&domains)))
    }

    async fn nominator(
        &self,
        operator: u64,
        address: Hex32,
    ) -> Result<Option<NominatorInfo>, ErrorObjectOwned> {
        let node = self.node()?;
        Ok(node
            .chain
            .domains()
            .and_then(|domains| domains::nominator_info(&domains, operator, Address(address.0))))
    }

    async fn subscribe_new_heads(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        let receiver = self.node()?.heads.subscribe();
        forward(pending, receiver, |head| head).await
    }
}
