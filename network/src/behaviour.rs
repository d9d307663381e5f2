//! The swarm's behaviour: which libp2p protocols a peer runs and how each is configured (identify bound to
//! the chain, Kademlia with manual inserts, strict gossipsub, one request-response behaviour per protocol,
//! ping that finds dead links, connection limits, bans, and optional multicast DNS).

use std::time::Duration;

use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{StreamProtocol, allow_block_list, connection_limits, identify, kad, mdns, ping};

use crate::error::Error;
use crate::handle::NetworkConfig;
use crate::protocol::Topic;
use crate::requests::{Codec, Protocol, REQUEST_TIMEOUT};

/// How often each connection is pinged, and how long a ping may take before the connection is taken
/// for dead and closed (libp2p's defaults, 15 s and 20 s, left a split network looking whole for half a
/// minute).
const PING_INTERVAL: Duration = Duration::from_secs(5);
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests served or asked at once per connection (beyond this, a peer's extra streams are refused).
const CONCURRENT_REQUESTS: usize = 32;

/// Connections allowed to one peer.
const CONNECTIONS_PER_PEER: u32 = 2;

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) kad: kad::Behaviour<kad::store::MemoryStore>,
    pub(crate) mdns: libp2p::swarm::behaviour::toggle::Toggle<mdns::tokio::Behaviour>,
    pub(crate) gossip: gossipsub::Behaviour,
    // One behaviour per request-response protocol: a behaviour offers every protocol it has on each
    // request, so protocols sharing one could not be chosen per request.
    pub(crate) block_range: request_response::Behaviour<Codec>,
    pub(crate) segment_headers: request_response::Behaviour<Codec>,
    pub(crate) piece: request_response::Behaviour<Codec>,
    pub(crate) cached_piece: request_response::Behaviour<Codec>,
    pub(crate) state: request_response::Behaviour<Codec>,
    pub(crate) pot_slots: request_response::Behaviour<Codec>,
}

impl Behaviour {
    pub(crate) fn requests(&mut self, protocol: Protocol) -> &mut request_response::Behaviour<Codec> {
        match protocol {
            Protocol::BlockRange => &mut self.block_range,
            Protocol::SegmentHeaders => &mut self.segment_headers,
            Protocol::Piece => &mut self.piece,
            Protocol::CachedPiece => &mut self.cached_piece,
            Protocol::State => &mut self.state,
            Protocol::PotSlots => &mut self.pot_slots,
        }
    }
}

/// Multicast DNS discovery when configured; `None` (with a warning) where the host cannot run it, since
/// a node without it still works from its bootstrap list.
fn mdns_behaviour(config: &NetworkConfig, peer: libp2p::PeerId) -> Option<mdns::tokio::Behaviour> {
    if !config.mdns {
        return None;
    }
    match mdns::tokio::Behaviour::new(mdns::Config::default(), peer) {
        Ok(behaviour) => Some(behaviour),
        Err(error) => {
            tracing::warn!(target: "acre::network", %error, "local discovery (mDNS) unavailable");
            None
        }
    }
}

pub(crate) fn behaviour(config: &NetworkConfig, key: &libp2p::identity::Keypair) -> Result<Behaviour, Error> {
    let peer = key.public().to_peer_id();
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established_incoming(Some(config.in_peers))
        .with_max_established_outgoing(Some(config.out_peers))
        .with_max_pending_incoming(Some(config.in_peers))
        .with_max_established_per_peer(Some(CONNECTIONS_PER_PEER));
    let identify = identify::Behaviour::new(
        identify::Config::new(config.chain.identify_version(), key.public())
            .with_agent_version(config.agent.clone()),
    );
    let kad_protocol = StreamProtocol::try_from_owned(config.chain.protocol("kad", 1))
        .map_err(|error| Error::Start(format!("kademlia protocol name: {error}")))?;
    let mut kad_config = kad::Config::new(kad_protocol);
    // Only peers whose identify matched this chain enter the routing table (added by hand below).
    kad_config.set_kbucket_inserts(kad::BucketInserts::Manual);
    kad_config.set_periodic_bootstrap_interval(None);
    let mut kad = kad::Behaviour::with_config(peer, kad::store::MemoryStore::new(peer), kad_config);
    kad.set_mode(Some(kad::Mode::Server));
    let gossip_config = gossipsub::ConfigBuilder::default()
        .heartbeat_interval(config.gossip_heartbeat)
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .max_transmit_size(config.max_gossip_bytes)
        .message_id_fn(|message: &gossipsub::Message| {
            gossipsub::MessageId::from(blake3::hash(&message.data).as_bytes().to_vec())
        })
        .build()
        .map_err(|error| Error::Start(format!("gossip configuration: {error}")))?;
    let mut gossip = gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), gossip_config)
        .map_err(|error| Error::Start(format!("gossip: {error}")))?;
    for topic in Topic::ALL.into_iter().filter(|_| config.gossip) {
        gossip
            .subscribe(&IdentTopic::new(config.chain.topic(topic)))
            .map_err(|error| Error::Start(format!("subscribing to {}: {error}", topic.name())))?;
    }
    let requests = |protocol: Protocol| {
        let name = StreamProtocol::try_from_owned(config.chain.protocol(protocol.name(), 1))
            .map_err(|error| Error::Start(format!("{} protocol name: {error}", protocol.name())))?;
        Ok::<_, Error>(request_response::Behaviour::with_codec(
            Codec,
            [(name, ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(REQUEST_TIMEOUT)
                .with_max_concurrent_streams(CONCURRENT_REQUESTS),
        ))
    };
    Ok(Behaviour {
        block_range: requests(Protocol::BlockRange)?,
        segment_headers: requests(Protocol::SegmentHeaders)?,
        piece: requests(Protocol::Piece)?,
        cached_piece: requests(Protocol::CachedPiece)?,
        state: requests(Protocol::State)?,
        pot_slots: requests(Protocol::PotSlots)?,
        blocked: allow_block_list::Behaviour::default(),
        limits: connection_limits::Behaviour::new(limits),
        identify,
        mdns: mdns_behaviour(config, peer).into(),
        ping: ping::Behaviour::new(
            ping::Config::new()
                .with_interval(PING_INTERVAL)
                .with_timeout(PING_TIMEOUT),
        ),
        kad,
        gossip,
    })
}
