//! Acre's peer-to-peer layer: one libp2p swarm per process, owned by one task, driven through a handle.
//!
//! Spec section 9 in short: peers speak TCP + Noise + Yamux (QUIC behind the `quic` feature) and know each
//! other by a stable ed25519 peer key ([`PeerKey`], kept in the data directory). Every protocol name
//! carries the chain's genesis hash ([`ChainId`]), and so does identify's protocol version: a peer of
//! another chain is banned the moment it identifies itself and never enters the Kademlia routing table
//! (only identified peers are added to it). Gossip (blocks, proofs of time, transactions) travels over
//! gossipsub with BLAKE3 message ids and signed messages, and is re-gossiped only after the application
//! has verified it ([`NetworkHandle::validate`]).
//!
//! Everything a peer sends is hostile until checked. Gossip is bounded in size, the queue to the
//! application is bounded (a full queue drops the message rather than stalling the swarm), and a peer
//! whose messages fail verification loses [`Reputation`]: a fatal fault (an invalid proof, another
//! chain) or a score under the threshold bans it for a while, with a log line and a
//! [`NetworkEvent::PeerBanned`] naming the peer and the reason.
//!
//! Requests (block ranges, segment headers, pieces, cached pieces, state) are framed bytes with a size
//! limit per [`Protocol`], checked before anything is allocated; the application encodes and decodes them.
//!
//! Data flow: the application calls the [`NetworkHandle`] (dial, publish, validate, report, peers);
//! commands go over a bounded channel to the runner task, which owns the swarm and sends
//! [`NetworkEvent`]s back over another bounded channel. No libp2p type crosses this crate's API: peers
//! are [`PeerId`]s and addresses [`Address`]es, both parsed from and printed as text.

/// The node's default peer-to-peer port (spec 9).
pub const DEFAULT_NODE_PORT: u16 = 30333;

/// The farmer's default peer-to-peer port (spec 9).
pub const DEFAULT_FARMER_PORT: u16 = 30533;

mod behaviour;
pub mod dsn;
mod error;
mod handle;
mod keys;
pub mod messages;
mod protocol;
mod reputation;
mod requests;
mod runner;

pub use error::Error;
pub use handle::{
    FARMER_AGENT, GOSSIP_BUDGET, GossipMessage, InboundRequest, MessageRef, NetworkConfig, NetworkEvent,
    NetworkHandle, PeerInfo, Responder, Validity, is_farmer_agent, start,
};
pub use keys::{PEER_KEY_FILE, PeerKey};
pub use protocol::{Address, ChainId, PeerId, Topic};
pub use reputation::{BAN_DURATION, BAN_THRESHOLD, Fault, MAX_TRACKED, Reputation, Verdict};
pub use requests::{Protocol, REQUEST_TIMEOUT};
