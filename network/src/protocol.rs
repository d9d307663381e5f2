//! Names on the wire (all bound to the chain's genesis hash) and the crate's own peer and address types.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// The chain a network belongs to: its genesis hash. Every protocol name and gossip topic carries it, so
/// peers of different chains share nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainId(pub [u8; 32]);

impl ChainId {
    /// Identify's protocol version: `/acre/<genesis hex>`. A peer announcing anything else is of another
    /// chain.
    pub fn identify_version(&self) -> String {
        format!("/acre/{}", hex::encode(self.0))
    }

    /// A protocol's full name: `/acre/<genesis hex>/<name>/<version>`.
    pub fn protocol(&self, name: &str, version: u32) -> String {
        format!("/acre/{}/{name}/{version}", hex::encode(self.0))
    }

    /// A gossip topic's name.
    pub fn topic(&self, topic: Topic) -> String {
        self.protocol(topic.name(), 1)
    }
}

/// The gossip topics (spec 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Blocks: a header and its body.
    Blocks,
    /// Proofs of time for slots.
    Pot,
    /// Transactions for the pool.
    Transactions,
    /// Domain bundles for the bundle pool.
    Bundles,
}

impl Topic {
    /// Every topic, in a fixed order.
    pub const ALL: [Self; 4] = [Self::Blocks, Self::Pot, Self::Transactions, Self::Bundles];

    /// The topic's short name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Blocks => "blocks",
            Self::Pot => "pot",
            Self::Transactions => "transactions",
            Self::Bundles => "bundles",
        }
    }

    /// The largest message the topic carries; a larger one is the forwarder's fault.
    pub fn max_size(self) -> usize {
        match self {
            Self::Blocks => {
                acre_consensus::blocks::MAX_HEADER_SIZE + acre_consensus::blocks::MAX_BODY_SIZE + 64
            }
            Self::Pot => crate::messages::PotGossip::MAX_SIZE,
            Self::Transactions => 64 << 10,
            // A bundle must fit in a block body.
            Self::Bundles => acre_consensus::blocks::MAX_BODY_SIZE,
        }
    }
}

/// A peer's identity (the hash of its public peer key), printed in libp2p's base58 form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub(crate) libp2p::PeerId);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", self.0)
    }
}

impl FromStr for PeerId {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        text.parse().map(Self).map_err(|_| Error::BadPeerId {
            text: text.to_owned(),
        })
    }
}

/// A peer address, a multiaddr such as `/ip4/127.0.0.1/tcp/30333` or
/// `/ip4/127.0.0.1/tcp/30333/p2p/12D3Koo…`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Address(pub(crate) libp2p::Multiaddr);

impl Address {
    /// The peer id the address names (its `/p2p/…` part), if any.
    pub fn peer_id(&self) -> Option<PeerId> {
        self.0.iter().find_map(|protocol| match protocol {
            libp2p::multiaddr::Protocol::P2p(peer) => Some(PeerId(peer)),
            _ => None,
        })
    }

    /// The address without its `/p2p/…` part.
    pub fn without_peer(&self) -> Self {
        Self(
            self.0
                .iter()
                .filter(|protocol| !matches!(protocol, libp2p::multiaddr::Protocol::P2p(_)))
                .collect(),
        )
    }

    /// The address with `/p2p/<peer>` appended (for others to dial and know whom they reach).
    pub fn with_peer(&self, peer: PeerId) -> Self {
        match self.peer_id() {
            Some(_) => self.clone(),
            None => Self(self.0.clone().with(libp2p::multiaddr::Protocol::P2p(peer.0))),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", self.0)
    }
}

impl FromStr for Address {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        text.parse()
            .map(Self)
            .map_err(|error: libp2p::multiaddr::Error| Error::BadAddress {
                text: text.to_owned(),
                reason: error.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_genesis_hash() {
        let chain = ChainId([0xab; 32]);
        let hex = "ab".repeat(32);
        assert_eq!(chain.identify_version(), format!("/acre/{hex}"));
        assert_eq!(chain.protocol("kad", 1), format!("/acre/{hex}/kad/1"));
        assert_eq!(chain.topic(Topic::Pot), format!("/acre/{hex}/pot/1"));
        assert_ne!(ChainId([1; 32]).topic(Topic::Blocks), chain.topic(Topic::Blocks));
    }

    #[test]
    fn addresses_and_peer_ids_parse_and_print() {
        let address: Address = "/ip4/127.0.0.1/tcp/30333".parse().expect("parses");
        assert_eq!(address.to_string(), "/ip4/127.0.0.1/tcp/30333");
        assert_eq!(address.peer_id(), None);
        let peer = PeerId(libp2p::PeerId::random());
        let full = address.with_peer(peer);
        assert_eq!(full.peer_id(), Some(peer));
        assert_eq!(full.to_string().parse::<Address>().expect("parses"), full);
        assert_eq!(full.without_peer(), address);
        assert_eq!(peer.to_string().parse::<PeerId>().expect("parses"), peer);
        assert!(matches!(
            "127.0.0.1:30333".parse::<Address>(),
            Err(Error::BadAddress { .. })
        ));
        assert!(matches!("12D3".parse::<PeerId>(), Err(Error::BadPeerId { .. })));
    }
}
