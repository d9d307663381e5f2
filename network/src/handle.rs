//! The application's side of the network: its configuration, the handle that sends commands to the
//! runner task, and the events the runner sends back.

use std::time::Duration;

use acre_consensus::hashing::Blake3Hash;
use tokio::sync::{mpsc, oneshot};

use crate::error::Error;
use crate::keys::PeerKey;
use crate::protocol::{Address, ChainId, PeerId, Topic};
use crate::reputation::Fault;
use crate::requests::Protocol;

/// How the network runs.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// The chain (genesis hash) this network serves.
    pub chain: ChainId,
    /// The process's peer key.
    pub key: PeerKey,
    /// Addresses to listen on (`/ip4/0.0.0.0/tcp/30333`; port 0 picks a free one).
    pub listen: Vec<Address>,
    /// Peers to dial at start (an address without `/p2p/` is dialled as it is).
    pub bootstrap: Vec<Address>,
    /// Most inbound connections.
    pub in_peers: u32,
    /// Most outbound connections.
    pub out_peers: u32,
    /// The largest gossip message on any topic (each topic also has its own, smaller or equal, limit:
    /// [`Topic::max_size`]).
    pub max_gossip_bytes: usize,
    /// Gossipsub's heartbeat (mesh maintenance); short in tests.
    pub gossip_heartbeat: Duration,
    /// The software and version told to peers (identify's agent version).
    pub agent: String,
    /// Whether to subscribe to the gossip topics. A farmer serves and fetches pieces only, so it
    /// subscribes to none and never receives (or relays) blocks, proofs of time or transactions.
    pub gossip: bool,
    /// Find peers on the local network by multicast DNS (and dial them): for nodes on one LAN with no
    /// bootstrap list. Off by default; the node turns it on unless `--no-mdns`.
    pub mdns: bool,
}

impl NetworkConfig {
    /// Defaults for `chain` with `key`: no listen address or bootstrap peers yet.
    pub fn new(chain: ChainId, key: PeerKey) -> Self {
        Self {
            chain,
            key,
            listen: Vec::new(),
            bootstrap: Vec::new(),
            in_peers: 32,
            out_peers: 16,
            max_gossip_bytes: Topic::Blocks.max_size(),
            gossip_heartbeat: Duration::from_secs(1),
            agent: format!("acre/{}", env!("CARGO_PKG_VERSION")),
            gossip: true,
            mdns: false,
        }
    }
}

/// Which gossip message a verdict is about (and who forwarded it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRef {
    pub(crate) id: libp2p::gossipsub::MessageId,
    pub(crate) source: libp2p::PeerId,
}

/// A gossip message from a peer, not yet verified: nothing is re-gossiped until the application calls
/// [`NetworkHandle::validate`] with [`Validity::Accept`]. Its bytes count against the network's gossip
/// budget until it is dropped.
#[derive(Debug)]
pub struct GossipMessage {
    /// Its topic.
    pub topic: Topic,
    /// Its payload (at most the configured size).
    pub data: Vec<u8>,
    /// The peer that forwarded it to us.
    pub from: PeerId,
    /// What to hand back to [`NetworkHandle::validate`].
    pub reference: MessageRef,
    pub(crate) _budget: BudgetGuard,
}

/// Most gossip bytes waiting for the application at once: past it, new gossip is ignored (not the
/// sender's fault) until the application catches up. Bounds memory by bytes, where the event queue
/// alone bounds it only by count.
pub const GOSSIP_BUDGET: usize = 64 << 20;

/// Bytes of gossip handed to the application and not yet dropped by it.
#[derive(Debug, Clone, Default)]
pub(crate) struct GossipBudget(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl GossipBudget {
    /// Takes `bytes` from the budget, or nothing if they do not fit.
    pub(crate) fn take(&self, bytes: usize) -> Option<BudgetGuard> {
        use std::sync::atomic::Ordering;
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= GOSSIP_BUDGET)
            })
            .ok()
            .map(|_| BudgetGuard {
                budget: self.clone(),
                bytes,
            })
    }

    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// Gives its bytes back to the budget when dropped.
#[derive(Debug)]
pub(crate) struct BudgetGuard {
    budget: GossipBudget,
    bytes: usize,
}

impl Drop for BudgetGuard {
    fn drop(&mut self) {
        self.budget
            .0
            .fetch_sub(self.bytes, std::sync::atomic::Ordering::AcqRel);
    }
}

#[cfg(test)]
mod budget_tests {
    use super::*;

    #[test]
    fn farmers_are_told_by_their_agent_name() {
        assert!(is_farmer_agent("acre-farmer/0.1.0"));
        assert!(is_farmer_agent("acre-farmer"));
        assert!(!is_farmer_agent("acre/0.1.0"));
        assert!(!is_farmer_agent("acre-farmerish/1"));
    }

    #[test]
    fn the_budget_refuses_past_its_bound_and_refills_on_drop() {
        let budget = GossipBudget::default();
        let first = budget.take(GOSSIP_BUDGET - 10).expect("fits");
        assert!(budget.take(11).is_none());
        let second = budget.take(10).expect("fits exactly");
        assert_eq!(budget.used(), GOSSIP_BUDGET);
        drop(first);
        assert_eq!(budget.used(), 10);
        drop(second);
        assert_eq!(budget.used(), 0);
    }
}

/// The application's verdict on a gossip message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Valid: pass it on to our mesh peers.
    Accept,
    /// Not useful (a duplicate, too old) but not the sender's fault: drop it quietly.
    Ignore,
    /// Invalid: drop it and hold the fault against the peer that forwarded it.
    Reject(Fault),
}

/// A request from a peer, to answer with [`NetworkHandle::respond`] (or to drop, which fails it).
#[derive(Debug)]
pub struct InboundRequest {
    /// The peer asking.
    pub peer: PeerId,
    /// What it asks for.
    pub protocol: Protocol,
    /// The request (at most the protocol's request limit).
    pub data: Vec<u8>,
    /// Where the answer goes.
    pub responder: Responder,
}

/// The way back to a peer that sent a request.
#[derive(Debug)]
pub struct Responder {
    pub(crate) protocol: Protocol,
    pub(crate) channel: libp2p::request_response::ResponseChannel<Vec<u8>>,
}

/// What the network tells the application.
#[derive(Debug)]
pub enum NetworkEvent {
    /// A peer of this chain identified itself (it may now be asked for things).
    PeerIdentified {
        /// The peer.
        peer: PeerId,
        /// The software it says it runs.
        agent: String,
    },
    /// The last connection to a peer closed.
    PeerDisconnected {
        /// The peer.
        peer: PeerId,
    },
    /// A gossip message arrived.
    Gossip(GossipMessage),
    /// A peer asked for something.
    Request(InboundRequest),
    /// A peer was banned.
    PeerBanned {
        /// The peer.
        peer: PeerId,
        /// Why, in words.
        reason: String,
    },
}

/// A connected, identified peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer.
    pub peer: PeerId,
    /// The software it says it runs.
    pub agent: String,
    /// Its reputation score (0 is clean; bans happen at the threshold).
    pub score: i32,
    /// The addresses (without `/p2p/`) this process dialed that reached it: how a bootstrap address
    /// without a peer id is known to be connected.
    pub dialed: Vec<Address>,
}

/// The start of a farmer's agent string (`acre-farmer/<version>`).
pub const FARMER_AGENT: &str = "acre-farmer";

/// Whether a peer's `agent` says it is a farmer: it serves pieces but neither blocks nor gossip, so a
/// node neither syncs from it nor counts it as a link to the chain. The agent is the peer's own claim;
/// a liar only makes itself less useful to us.
pub fn is_farmer_agent(agent: &str) -> bool {
    agent
        .strip_prefix(FARMER_AGENT)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

impl PeerInfo {
    /// Whether `address` (with or without `/p2p/`) names this peer or reached it when dialed.
    pub fn reached_by(&self, address: &Address) -> bool {
        address.peer_id() == Some(self.peer) || self.dialed.contains(&address.without_peer())
    }

    /// Whether the peer says it is a farmer ([`is_farmer_agent`]).
    pub fn is_farmer(&self) -> bool {
        is_farmer_agent(&self.agent)
    }
}

pub(crate) enum Command {
    Dial(Address, oneshot::Sender<Result<(), Error>>),
    Publish(Topic, Vec<u8>, oneshot::Sender<Result<(), Error>>),
    Validate(MessageRef, Validity),
    Request(PeerId, Protocol, Vec<u8>, oneshot::Sender<Result<Vec<u8>, Error>>),
    Respond(Responder, Vec<u8>),
    Report(PeerId, Fault),
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    Listening(oneshot::Sender<Vec<Address>>),
    Closest(Blake3Hash, usize, oneshot::Sender<Vec<(PeerId, Vec<Address>)>>),
    Learn(PeerId, Vec<Address>),
}

/// Commands in flight to the runner: beyond this, callers wait (back-pressure, not unbounded memory).
pub(crate) const COMMAND_QUEUE: usize = 256;

/// Events waiting for the application: beyond this, gossip is dropped (and ignored) rather than stalling
/// the swarm.
pub(crate) const EVENT_QUEUE: usize = 1024;

/// The application's handle on the network; cheap to clone. The network stops when every handle is
/// dropped.
#[derive(Debug, Clone)]
pub struct NetworkHandle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) peer_id: PeerId,
}

impl NetworkHandle {
    /// This process's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    async fn ask<T>(&self, command: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Error> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| Error::Stopped)?;
        answer.await.map_err(|_| Error::Stopped)
    }

    /// Up to `count` peers of this chain in the routing table (peers whose identify matched), nearest to
    /// `key` by the DSN metric, with their listen addresses: what a `cached-piece` answer names when the
    /// piece is not here.
    pub async fn closest_known(&self, key: Blake3Hash, count: usize) -> Vec<(PeerId, Vec<Address>)> {
        self.ask(|reply| Command::Closest(key, count, reply))
            .await
            .unwrap_or_default()
    }

    /// Makes `addresses` known for `peer`, so a request to it dials them if it is not connected. They
    /// stay out of the routing table: only a peer whose identify matches enters it.
    pub async fn learn_addresses(&self, peer: PeerId, addresses: Vec<Address>) -> Result<(), Error> {
        self.commands
            .send(Command::Learn(peer, addresses))
            .await
            .map_err(|_| Error::Stopped)
    }

    /// Dials a peer (the connection itself completes in the background; watch for
    /// [`NetworkEvent::PeerIdentified`]).
    pub async fn dial(&self, address: Address) -> Result<(), Error> {
        self.ask(|reply| Command::Dial(address, reply)).await?
    }

    /// Publishes `data` on `topic`.
    pub async fn publish(&self, topic: Topic, data: Vec<u8>) -> Result<(), Error> {
        self.ask(|reply| Command::Publish(topic, data, reply)).await?
    }

    /// Tells the network what a gossip message was worth: accepted ones are passed on, rejected ones
    /// count against their sender.
    pub async fn validate(&self, message: MessageRef, validity: Validity) -> Result<(), Error> {
        self.commands
            .send(Command::Validate(message, validity))
            .await
            .map_err(|_| Error::Stopped)
    }

    /// Asks `peer` for something over `protocol` and waits for the answer (at most
    /// [`REQUEST_TIMEOUT`](crate::REQUEST_TIMEOUT)). An answer over the protocol's limit, or none in time,
    /// counts against the peer.
    pub async fn request(&self, peer: PeerId, protocol: Protocol, data: Vec<u8>) -> Result<Vec<u8>, Error> {
        self.ask(|reply| Command::Request(peer, protocol, data, reply))
            .await?
    }

    /// Answers a peer's request.
    pub async fn respond(&self, responder: Responder, data: Vec<u8>) -> Result<(), Error> {
        self.commands
            .send(Command::Respond(responder, data))
            .await
            .map_err(|_| Error::Stopped)
    }

    /// Holds `fault` against `peer` (something it sent over a request-response protocol, say).
    pub async fn report(&self, peer: PeerId, fault: Fault) -> Result<(), Error> {
        self.commands
            .send(Command::Report(peer, fault))
            .await
            .map_err(|_| Error::Stopped)
    }

    /// The connected peers that identified themselves as of this chain.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, Error> {
        self.ask(Command::Peers).await
    }

    /// The ids of the connected, identified peers (empty if the network stopped).
    pub async fn peer_ids(&self) -> Vec<PeerId> {
        self.peers()
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|info| info.peer)
            .collect()
    }

    /// The ids of the connected, identified peers that are not farmers: the ones with blocks.
    pub async fn node_peer_ids(&self) -> Vec<PeerId> {
        self.peers()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|info| !info.is_farmer())
            .map(|info| info.peer)
            .collect()
    }

    /// The addresses the network listens on, with this peer's id (for others to dial).
    pub async fn listening(&self) -> Result<Vec<Address>, Error> {
        self.ask(Command::Listening).await
    }
}

/// Starts the network on the current tokio runtime: builds the swarm, listens, dials the bootstrap
/// peers and spawns the runner. Returns the handle and the events.
pub fn start(config: NetworkConfig) -> Result<(NetworkHandle, mpsc::Receiver<NetworkEvent>), Error> {
    let peer_id = config.key.peer_id();
    let (commands, command_receiver) = mpsc::channel(COMMAND_QUEUE);
    let (events, event_receiver) = mpsc::channel(EVENT_QUEUE);
    let runner = crate::runner::Runner::new(config, command_receiver, events)?;
    tokio::spawn(runner.run());
    Ok((NetworkHandle { commands, peer_id }, event_receiver))
}
