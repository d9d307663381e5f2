//! The operator: a domain run beside consensus (`acre-node --domain-id N --operator-id N
//! --operator-key FILE`).
//!
//! Two duties, both driven by the consensus node's own events:
//! - **Follow** the best consensus chain: for each canonical block carrying bundles of the domain,
//!   derive the domain block they define (DOMAINS.md 6) and keep it with its receipt; on a consensus
//!   reorg, drop the domain blocks whose consensus blocks left the best chain and derive again. Every
//!   receipt another operator put on chain is compared with our own; a mismatch is logged at ERROR
//!   (fraud proofs, the next step, will act on it).
//! - **Produce** a bundle in each slot the operator wins (schnorrkel VRF over the slot's challenge,
//!   stake-weighted threshold, DOMAINS.md 4): pending domain transactions in the VRF's transaction range
//!   within the domain's limits, and the receipt consensus expects next (a new head when we are ahead of
//!   it, else an endorsement of the current head). The bundle goes into this node's bundle pool and
//!   out over gossip.
//!
//! What the domain *is* (the EVM, balances, ...) sits behind [`DomainExecutor`]: derivation is pure
//! and runs on a base taken out of the chain ([`DomainExecutor::derive_base`]), so an executor shared
//! with the RPC is locked only to read the head and to append, never while a block executes.

mod evm;
mod follow;
mod produce;

use std::sync::{Arc, RwLock};

use acre_consensus::BlockNumber;
use acre_consensus::hashing::Blake3Hash;
use acre_execution::domains::derive::{ConsensusFacts, InboxBundle};
use acre_execution::domains::receipt::ExecutionReceipt;
use acre_execution::domains::{DomainId, OperatorId};
use schnorrkel::Keypair;
use tokio::sync::watch;

use crate::error::Error;
use crate::service::Shared;

pub use follow::{Follower, SLOT_MILLIS};

/// A domain's chain as an operator keeps it.
pub trait DomainExecutor: Send + Sync + 'static {
    /// A derived block, ready to append.
    type Block: Send;

    /// The head domain block's number.
    fn head_number(&self) -> u64;

    /// Our receipt of domain block `number` (block 0's is the domain's genesis receipt).
    fn receipt(&self, number: u64) -> Option<&ExecutionReceipt>;

    /// What deriving the block after the head needs, taken out of the chain (cheaply) so that the
    /// derivation runs without a lock on it.
    type Base: Send;

    /// The head as derivation needs it.
    fn derive_base(&self) -> Result<Self::Base, Error>;

    /// The derived block following `base`, defined by a consensus block with `facts` and the domain's
    /// `bundles` in it.
    fn derive(
        base: &Self::Base,
        facts: &ConsensusFacts,
        bundles: &[InboxBundle<'_>],
    ) -> Result<Self::Block, Error>;

    /// The receipt of a derived block.
    fn block_receipt(block: &Self::Block) -> &ExecutionReceipt;

    /// Appends a derived block (it must follow the head).
    fn push(&mut self, block: Self::Block) -> Result<(), Error>;

    /// Drops the blocks above `number`.
    fn revert_to(&mut self, number: u64);

    /// Pending transactions for a bundle whose VRF output is `vrf_output`: only signers within
    /// `tx_range` of it, within `max_size` bytes and `max_weight`; with their total weight.
    fn bundle_body(
        &self,
        vrf_output: &[u8; 32],
        tx_range: u128,
        max_size: u32,
        max_weight: u64,
    ) -> (Vec<Vec<u8>>, u64);
}

/// Which operator this node runs, and its key.
pub struct OperatorConfig {
    /// The domain.
    pub domain_id: DomainId,
    /// The operator.
    pub operator_id: OperatorId,
    /// Its sr25519 keypair (bundle signatures and the election VRF).
    pub keypair: Keypair,
}

impl std::fmt::Debug for OperatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorConfig")
            .field("domain_id", &self.domain_id)
            .field("operator_id", &self.operator_id)
            .finish_non_exhaustive()
    }
}

/// Where the domain's latest block came from on consensus: what the follower checks is still
/// canonical.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsensusPoint {
    /// The consensus block number.
    pub number: BlockNumber,
    /// Its hash.
    pub hash: Blake3Hash,
}

/// Runs the domain `domain_id` until `shutdown` flips: follows each new best block and, with an
/// `operator`, produces a bundle in each slot it wins.
pub async fn run<E: DomainExecutor>(
    shared: Arc<Shared>,
    domain_id: DomainId,
    operator: Option<OperatorConfig>,
    executor: Arc<RwLock<E>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut follower = match Follower::new(&shared.chain, domain_id) {
        Ok(follower) => follower,
        Err(error) => {
            tracing::error!(%error, domain = domain_id.0, "the domain cannot start");
            return;
        }
    };
    let mut newest = shared.timekeeper.subscribe_newest();
    let mut heads = shared.heads.subscribe();
    tracing::info!(
        domain = domain_id.0,
        operator = operator.as_ref().map(|config| config.operator_id.0),
        "domain started"
    );
    loop {
        let slot = tokio::select! {
            changed = newest.changed() => {
                if changed.is_err() {
                    return;
                }
                Some(*newest.borrow_and_update())
            }
            head = heads.recv() => {
                if matches!(head, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                    return;
                }
                None
            }
            _ = shutdown.changed() => return,
        };
        let task_shared = Arc::clone(&shared);
        let task_executor = Arc::clone(&executor);
        let followed = tokio::task::spawn_blocking(move || {
            let result = follower.follow(&task_shared.chain, &task_executor);
            (follower, result)
        })
        .await;
        match followed {
            Ok((back, result)) => {
                follower = back;
                if let Err(error) = result {
                    tracing::error!(%error, domain = domain_id.0, "following consensus failed");
                }
            }
            Err(error) => {
                tracing::error!(%error, "the operator's follow task failed");
                return;
            }
        }
        if let (Some(slot), Some(config)) = (slot, &operator) {
            match produce::bundle_for_slot(&shared, config, &executor, slot) {
                Ok(Some(hash)) => tracing::info!(%slot, bundle = %hash, "bundle produced"),
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, %slot, "no bundle produced"),
            }
        }
    }
}

/// Reads a lock, poison and all (a panicked writer left a consistent chain: appends are one push).
pub(crate) fn read<E>(lock: &RwLock<E>) -> std::sync::RwLockReadGuard<'_, E> {
    lock.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Writes a lock, poison and all.
pub(crate) fn write<E>(lock: &RwLock<E>) -> std::sync::RwLockWriteGuard<'_, E> {
    lock.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A domain this node runs beside consensus.
#[derive(Clone)]
pub struct DomainNodeConfig {
    /// The domain (it must run the EVM module).
    pub domain_id: DomainId,
    /// The operator this node runs and the secret of its owner's key file (the operator's sr25519 key
    /// derives from it, as `acre operator register` derives it); `None` follows the domain and serves its
    /// JSON-RPC without producing bundles.
    pub operator: Option<(OperatorId, [u8; 32])>,
    /// Where the Ethereum JSON-RPC listens.
    pub eth_rpc_address: std::net::SocketAddr,
    /// Extra hosts and browser origins the Ethereum JSON-RPC accepts.
    pub eth_rpc_access: crate::rpc::RpcAccess,
}

impl std::fmt::Debug for DomainNodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DomainNodeConfig")
            .field("domain_id", &self.domain_id)
            .field("operator", &self.operator.map(|(id, _)| id))
            .field("eth_rpc_address", &self.eth_rpc_address)
            .finish_non_exhaustive()
    }
}

/// A running domain: its chain and its JSON-RPC server.
#[derive(Debug)]
pub struct RunningDomain {
    /// The domain's chain (shared with the JSON-RPC and the operator task).
    pub chain: Arc<RwLock<crate::domain::EvmChain>>,
    /// The Ethereum JSON-RPC server.
    pub rpc: jsonrpsee::server::ServerHandle,
    /// Where it listens.
    pub rpc_address: std::net::SocketAddr,
}

/// Starts the EVM domain `config` names over the node's chain: its chain from the domain's genesis (as
/// the registry records it), its Ethereum JSON-RPC, and the task that follows consensus and, for an
/// operator, produces bundles.
pub async fn start(
    shared: &Arc<Shared>,
    config: &DomainNodeConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<(RunningDomain, tokio::task::JoinHandle<()>), Error> {
    let domain_id = config.domain_id;
    let domains = shared
        .chain
        .domains()
        .ok_or_else(|| Error::Operator("this chain has no domains".into()))?;
    let domain = domains
        .domain(domain_id)
        .map_err(|error| Error::Operator(error.to_string()))?;
    if domain.config.module != acre_execution::domains::module::ModuleId::Evm {
        return Err(Error::Operator(format!(
            "domain {} runs the {:?} module; acre-node runs EVM domains",
            domain_id.0, domain.config.module
        )));
    }
    let chain_id = domain
        .config
        .evm_chain_id
        .ok_or_else(|| Error::Operator(format!("EVM domain {} has no chain id", domain_id.0)))?;
    let operator = match config.operator {
        Some((operator_id, secret)) => {
            let keypair = acre_execution::domains::election::operator_keypair(&secret);
            let registered = domain
                .staking
                .operators
                .get(&operator_id)
                .map(|operator| operator.signing_key);
            if registered.is_some_and(|key| key != keypair.public.to_bytes()) {
                return Err(Error::Operator(format!(
                    "the key given is not operator {}'s signing key",
                    operator_id.0
                )));
            }
            Some(OperatorConfig {
                domain_id,
                operator_id,
                keypair,
            })
        }
        None => None,
    };
    let genesis = Follower::genesis_receipt(&shared.chain, domain_id)?;
    let chain = crate::domain::EvmChain::genesis_created_at(
        acre_execution::domains::evm::EvmModule::for_domain(chain_id),
        &domain.config.initial_balances,
        genesis.consensus_number,
        genesis.consensus_hash,
    )?;
    if chain.head().receipt != genesis {
        return Err(Error::Operator(format!(
            "domain {}'s genesis state does not give the genesis receipt on chain",
            domain_id.0
        )));
    }
    let chain = Arc::new(RwLock::new(chain));
    let (rpc, rpc_address) = crate::domain::eth_rpc::start_eth_rpc_with_access(
        config.eth_rpc_address,
        Arc::clone(&chain),
        &config.eth_rpc_access,
    )
    .await?;
    tracing::info!(domain = domain_id.0, chain_id, eth_rpc = %rpc_address, "EVM domain started");
    let task = tokio::spawn(run(
        Arc::clone(shared),
        domain_id,
        operator,
        Arc::clone(&chain),
        shutdown,
    ));
    Ok((
        RunningDomain {
            chain,
            rpc,
            rpc_address,
        },
        task,
    ))
}
