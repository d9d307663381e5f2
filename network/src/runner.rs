//! The task that owns the swarm: it applies the handle's commands, turns swarm events into
//! [`NetworkEvent`]s, and enforces identity (chain), reputation and bans.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, TopicHash};
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::SwarmEvent;
use libp2p::{Swarm, SwarmBuilder, identify, kad, mdns, noise, ping, tcp, yamux};
use tokio::sync::{mpsc, oneshot};

use crate::behaviour::{Behaviour, BehaviourEvent, behaviour};
use crate::error::Error;
use crate::handle::{
    Command, GossipBudget, GossipMessage, InboundRequest, MessageRef, NetworkConfig, NetworkEvent, PeerInfo,
    Responder, Validity,
};
use crate::messages::{MAX_CLOSER_PEERS, MAX_RECORD_ADDRESSES};
use crate::protocol::{Address, PeerId, Topic};
use crate::reputation::{Fault, Reputation, Verdict};
use crate::requests::Protocol;

/// How often ended bans are lifted and healed scores forgotten.
const HOUSEKEEPING: Duration = Duration::from_secs(5);

/// How often Kademlia walks the network for more peers once it knows one.
const DISCOVERY: Duration = Duration::from_secs(60);

/// Listen addresses taken from one peer's identify (the rest is ignored: a peer may list many).
const MAX_PEER_ADDRESSES: usize = 8;

/// Most peers dialled for one multicast DNS answer.
const MAX_LOCAL_DIALS: usize = 8;

/// Dialed addresses remembered per peer.
const MAX_DIALED_ADDRESSES: usize = 4;

/// What is known of a connected peer.
struct Connected {
    /// Its identify matched this chain.
    identified: bool,
    agent: String,
    /// The addresses (without `/p2p/`) this process dialed that reached it.
    dialed: Vec<libp2p::Multiaddr>,
}

pub(crate) struct Runner {
    swarm: Swarm<Behaviour>,
    config: NetworkConfig,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetworkEvent>,
    topics: HashMap<TopicHash, Topic>,
    peers: HashMap<libp2p::PeerId, Connected>,
    reputation: Reputation<libp2p::PeerId>,
    discovering: bool,
    /// Requests in flight (each ends with a response, a failure or the timeout).
    pending: HashMap<(Protocol, OutboundRequestId), Pending>,
    /// Gossip bytes the application holds.
    budget: GossipBudget,
}

/// A request in flight.
struct Pending {
    peer: libp2p::PeerId,
    reply: oneshot::Sender<Result<Vec<u8>, Error>>,
}

impl Runner {
    pub(crate) fn new(
        config: NetworkConfig,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<NetworkEvent>,
    ) -> Result<Self, Error> {
        let start = |error: &dyn std::fmt::Display| Error::Start(error.to_string());
        let builder = SwarmBuilder::with_existing_identity(config.key.0.clone())
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|error| start(&error))?;
        #[cfg(feature = "quic")]
        let builder = builder.with_quic();
        let mut swarm = builder
            .with_behaviour(|key| {
                behaviour(&config, key)
                    .map_err(|error| Box::new(error) as Box<dyn std::error::Error + Send + Sync>)
            })
            .map_err(|error| start(&error))?
            .with_swarm_config(|swarm| swarm.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        for address in &config.listen {
            swarm
                .listen_on(address.0.clone())
                .map_err(|error| Error::Start(format!("listening on {address}: {error}")))?;
        }
        for address in &config.bootstrap {
            if let Err(error) = swarm.dial(address.0.clone()) {
                tracing::warn!(target: "acre::network", %address, %error, "cannot dial a bootstrap peer");
            }
        }
        let topics = Topic::ALL
            .into_iter()
            .map(|topic| (IdentTopic::new(config.chain.topic(topic)).hash(), topic))
            .collect();
        Ok(Self {
            swarm,
            config,
            commands,
            events,
            topics,
            peers: HashMap::new(),
            reputation: Reputation::default(),
            discovering: false,
            pending: HashMap::new(),
            budget: GossipBudget::default(),
        })
    }

    pub(crate) async fn run(mut self) {
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
        let mut discovery = tokio::time::interval(DISCOVERY);
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.command(command),
                    None => break,
                },
                event = self.swarm.select_next_some() => self.swarm_event(event),
                _ = housekeeping.tick() => {
                    for peer in self.reputation.expire(Instant::now()) {
                        self.swarm.behaviour_mut().blocked.unblock_peer(peer);
                        tracing::info!(target: "acre::network", %peer, "ban ended");
                    }
                }
                _ = discovery.tick() => self.discover(),
            }
        }
        tracing::debug!(target: "acre::network", "network stopped");
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Dial(address, reply) => {
                let result = self.swarm.dial(address.0.clone()).map_err(|error| Error::Dial {
                    address: address.to_string(),
                    reason: error.to_string(),
                });
                let _ = reply.send(result);
            }
            Command::Publish(topic, data, reply) => {
                let name = IdentTopic::new(self.config.chain.topic(topic));
                let result = self
                    .swarm
                    .behaviour_mut()
                    .gossip
                    .publish(name, data)
                    .map(|_| ())
                    .map_err(|error| Error::Publish {
                        topic: topic.name(),
                        reason: error.to_string(),
                    });
                let _ = reply.send(result);
            }
            Command::Validate(message, validity) => self.validate(message, validity),
            Command::Report(peer, fault) => self.fault(peer.0, fault),
            Command::Request(peer, protocol, data, reply) => {
                if data.len() > protocol.max_request() {
                    let _ = reply.send(Err(Error::Request {
                        protocol: protocol.name(),
                        peer: peer.to_string(),
                        reason: format!(
                            "{} bytes are over the limit of {}",
                            data.len(),
                            protocol.max_request()
                        ),
                    }));
                    return;
                }
                let id = self
                    .swarm
                    .behaviour_mut()
                    .requests(protocol)
                    .send_request(&peer.0, data);
                self.pending
                    .insert((protocol, id), Pending { peer: peer.0, reply });
            }
            Command::Respond(responder, data) => {
                let requests = self.swarm.behaviour_mut().requests(responder.protocol);
                if requests.send_response(responder.channel, data).is_err() {
                    tracing::debug!(target: "acre::network", "response not sent: the requester is gone");
                }
            }
            Command::Peers(reply) => {
                let now = Instant::now();
                let peers = self
                    .peers
                    .iter()
                    .filter(|(_, connected)| connected.identified)
                    .map(|(peer, connected)| PeerInfo {
                        peer: PeerId(*peer),
                        agent: connected.agent.clone(),
                        score: self.reputation.score(peer, now),
                        dialed: connected.dialed.iter().cloned().map(Address).collect(),
                    })
                    .collect();
                let _ = reply.send(peers);
            }
            Command::Closest(key, count, reply) => {
                let mut known: Vec<(PeerId, Vec<Address>)> = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .kbuckets()
                    .flat_map(|bucket| {
                        bucket
                            .iter()
                            .map(|entry| {
                                let addresses = entry
                                    .node
                                    .value
                                    .iter()
                                    .take(MAX_RECORD_ADDRESSES)
                                    .cloned()
                                    .map(Address)
                                    .collect();
                                (PeerId(*entry.node.key.preimage()), addresses)
                            })
                            .collect::<Vec<_>>()
                    })
                    .collect();
                known.sort_by_cached_key(|(peer, _)| crate::dsn::distance(&crate::dsn::peer_key(peer), &key));
                known.truncate(count.min(MAX_CLOSER_PEERS));
                let _ = reply.send(known);
            }
            Command::Learn(peer, addresses) => {
                for address in addresses.into_iter().take(MAX_RECORD_ADDRESSES) {
                    self.swarm.add_peer_address(peer.0, address.0);
                }
            }
            Command::Listening(reply) => {
                let me = PeerId(*self.swarm.local_peer_id());
                let addresses = self
                    .swarm
                    .listeners()
                    .map(|address| Address(address.clone()).with_peer(me))
                    .collect();
                let _ = reply.send(addresses);
            }
        }
    }

    /// Holds `fault` against `peer`; bans it (blocking its connections) if that is the verdict.
    fn fault(&mut self, peer: libp2p::PeerId, fault: Fault) {
        match self.reputation.report(&peer, fault, Instant::now()) {
            Verdict::Kept { score } => {
                tracing::debug!(target: "acre::network", %peer, score, reason = fault.reason(), "peer fault");
            }
            Verdict::Banned { .. } => {
                if self.swarm.behaviour_mut().blocked.block_peer(peer) {
                    tracing::warn!(target: "acre::network", %peer, reason = fault.reason(), "peer banned");
                    self.swarm.behaviour_mut().kad.remove_peer(&peer);
                    self.emit(NetworkEvent::PeerBanned {
                        peer: PeerId(peer),
                        reason: fault.reason().to_owned(),
                    });
                }
            }
        }
    }

    fn validate(&mut self, message: MessageRef, validity: Validity) {
        let acceptance = match validity {
            Validity::Accept => MessageAcceptance::Accept,
            Validity::Ignore => MessageAcceptance::Ignore,
            Validity::Reject(_) => MessageAcceptance::Reject,
        };
        self.swarm
            .behaviour_mut()
            .gossip
            .report_message_validation_result(&message.id, &message.source, acceptance);
        if let Validity::Reject(fault) = validity {
            self.fault(message.source, fault);
        }
    }

    fn emit(&mut self, event: NetworkEvent) {
        if let Err(error) = self.events.try_send(event) {
            tracing::warn!(target: "acre::network", "event dropped: the application is not keeping up ({error})");
        }
    }

    fn discover(&mut self) {
        let known = self.peers.values().any(|connected| connected.identified);
        if known && !self.discovering {
            self.discovering = self.swarm.behaviour_mut().kad.bootstrap().is_ok();
        }
    }

    fn swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(target: "acre::network", %address, peer = %self.swarm.local_peer_id(), "listening");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                let connected = self.peers.entry(peer_id).or_insert(Connected {
                    identified: false,
                    agent: String::new(),
                    dialed: Vec::new(),
                });
                if endpoint.is_dialer() && connected.dialed.len() < MAX_DIALED_ADDRESSES {
                    let address = Address(endpoint.get_remote_address().clone()).without_peer().0;
                    if !connected.dialed.contains(&address) {
                        connected.dialed.push(address);
                    }
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                let was_identified = self
                    .peers
                    .remove(&peer_id)
                    .is_some_and(|connected| connected.identified);
                if was_identified {
                    self.emit(NetworkEvent::PeerDisconnected {
                        peer: PeerId(peer_id),
                    });
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                self.discovered_locally(found);
            }
            // A dead link (the peer's host vanished, or the network between split) shows as failing
            // pings long before TCP gives up; libp2p leaves closing it to us. Closed, it is redialled
            // if it is a bootstrap or reserved peer, instead of swallowing gossip and requests.
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Err(error),
            })) => {
                tracing::debug!(target: "acre::network", %peer, %error, "ping failed; closing the connection");
                self.swarm.close_connection(connection);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                self.identified(peer_id, info);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.gossip(propagation_source, message_id, message),
            SwarmEvent::Behaviour(BehaviourEvent::BlockRange(event)) => {
                self.request_event(Protocol::BlockRange, event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::SegmentHeaders(event)) => {
                self.request_event(Protocol::SegmentHeaders, event);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Piece(event)) => self.request_event(Protocol::Piece, event),
            SwarmEvent::Behaviour(BehaviourEvent::CachedPiece(event)) => {
                self.request_event(Protocol::CachedPiece, event);
            }
            SwarmEvent::Behaviour(BehaviourEvent::State(event)) => self.request_event(Protocol::State, event),
            SwarmEvent::Behaviour(BehaviourEvent::PotSlots(event)) => {
                self.request_event(Protocol::PotSlots, event);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                result: kad::QueryResult::Bootstrap(result),
                step,
                ..
            })) if step.last || result.is_err() => self.discovering = false,
            _ => {}
        }
    }

    fn request_event(&mut self, protocol: Protocol, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message {
                peer,
                message: request_response::Message::Request { request, channel, .. },
                ..
            } => {
                let event = NetworkEvent::Request(InboundRequest {
                    peer: PeerId(peer),
                    protocol,
                    data: request,
                    responder: Responder { protocol, channel },
                });
                if self.events.try_send(event).is_err() {
                    // Dropping the channel fails the request: the peer may ask elsewhere.
                    tracing::debug!(target: "acre::network", %peer, "request dropped: the application is not keeping up");
                }
            }
            request_response::Event::Message {
                message: request_response::Message::Response { request_id, response },
                ..
            } => {
                if let Some(pending) = self.pending.remove(&(protocol, request_id)) {
                    let _ = pending.reply.send(Ok(response));
                }
            }
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                let Some(pending) = self.pending.remove(&(protocol, request_id)) else {
                    return;
                };
                let fault = match &error {
                    request_response::OutboundFailure::Timeout => Some(Fault::Timeout),
                    request_response::OutboundFailure::Io(io)
                        if io.kind() == std::io::ErrorKind::InvalidData =>
                    {
                        Some(Fault::Oversized)
                    }
                    _ => None,
                };
                let _ = pending.reply.send(Err(Error::Request {
                    protocol: protocol.name(),
                    peer: pending.peer.to_string(),
                    reason: error.to_string(),
                }));
                if let Some(fault) = fault {
                    self.fault(pending.peer, fault);
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(target: "acre::network", %peer, %error, "inbound request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Dials peers multicast DNS found on the local network (at most [`MAX_LOCAL_DIALS`] an event, none
    /// already connected). They join like any dialled peer: identify decides whether they are of this
    /// chain, and the connection limits and bans apply.
    fn discovered_locally(&mut self, found: Vec<(libp2p::PeerId, libp2p::Multiaddr)>) {
        let mut dialled = std::collections::HashSet::new();
        for (peer, address) in found {
            if dialled.len() >= MAX_LOCAL_DIALS || self.swarm.is_connected(&peer) || !dialled.insert(peer) {
                continue;
            }
            tracing::debug!(target: "acre::network", %peer, %address, "found on the local network");
            let dial = libp2p::swarm::dial_opts::DialOpts::peer_id(peer)
                .addresses(vec![address])
                .build();
            let _ = self.swarm.dial(dial);
        }
    }

    fn identified(&mut self, peer: libp2p::PeerId, info: identify::Info) {
        if info.protocol_version != self.config.chain.identify_version() {
            tracing::info!(
                target: "acre::network",
                %peer,
                theirs = %info.protocol_version,
                "a peer of another chain"
            );
            self.fault(peer, Fault::WrongGenesis);
            return;
        }
        let Some(connected) = self.peers.get_mut(&peer) else {
            return;
        };
        let first = !connected.identified;
        connected.identified = true;
        connected.agent = info.agent_version.chars().take(64).collect();
        let agent = connected.agent.clone();
        for address in info.listen_addrs.into_iter().take(MAX_PEER_ADDRESSES) {
            self.swarm.behaviour_mut().kad.add_address(&peer, address);
        }
        if first {
            tracing::debug!(target: "acre::network", %peer, %agent, "peer identified");
            self.emit(NetworkEvent::PeerIdentified {
                peer: PeerId(peer),
                agent,
            });
            self.discover();
        }
    }

    fn gossip(&mut self, source: libp2p::PeerId, id: gossipsub::MessageId, message: gossipsub::Message) {
        let reference = MessageRef { id, source };
        let Some(topic) = self.topics.get(&message.topic).copied() else {
            // Not a topic we subscribed to: gossipsub should not deliver it; drop it.
            self.swarm
                .behaviour_mut()
                .gossip
                .report_message_validation_result(&reference.id, &source, MessageAcceptance::Ignore);
            return;
        };
        if message.data.len() > topic.max_size() {
            self.validate(reference, Validity::Reject(Fault::Oversized));
            return;
        }
        let Some(budget) = self.budget.take(message.data.len()) else {
            tracing::debug!(target: "acre::network", topic = topic.name(), "gossip dropped: the application holds its whole budget");
            self.swarm
                .behaviour_mut()
                .gossip
                .report_message_validation_result(&reference.id, &source, MessageAcceptance::Ignore);
            return;
        };
        let event = NetworkEvent::Gossip(GossipMessage {
            topic,
            data: message.data,
            from: PeerId(source),
            reference: reference.clone(),
            _budget: budget,
        });
        if self.events.try_send(event).is_err() {
            tracing::debug!(target: "acre::network", topic = topic.name(), "gossip dropped: the application is not keeping up");
            self.swarm
                .behaviour_mut()
                .gossip
                .report_message_validation_result(&reference.id, &source, MessageAcceptance::Ignore);
        }
    }
}
