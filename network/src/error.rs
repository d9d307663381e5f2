//! The crate's one error type.

use std::path::PathBuf;

/// What can go wrong in the network layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A peer address that is not a multiaddr.
    #[error("not a peer address ({reason}): {text:?}")]
    BadAddress {
        /// The text given.
        text: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A peer id that does not parse.
    #[error("not a peer id: {text:?}")]
    BadPeerId {
        /// The text given.
        text: String,
    },
    /// The peer key file cannot be used.
    #[error("peer key {path}: {reason}")]
    BadPeerKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A piece could not be retrieved (or rebuilt) and verified.
    #[error("piece {index}: {reason}")]
    Piece {
        /// The piece's index.
        index: u64,
        /// Why.
        reason: String,
    },
    /// A peer's message does not decode (or is over its size limit).
    #[error("undecodable message: {0}")]
    Decode(String),
    /// The swarm could not be built or could not listen.
    #[error("starting the network: {0}")]
    Start(String),
    /// Dialling a peer failed at once (a bad address, a banned peer).
    #[error("dialling {address}: {reason}")]
    Dial {
        /// The address dialled.
        address: String,
        /// Why it failed.
        reason: String,
    },
    /// A gossip message was not published.
    #[error("publishing on {topic}: {reason}")]
    Publish {
        /// The topic.
        topic: &'static str,
        /// Why (no peer subscribed yet, too large, a duplicate).
        reason: String,
    },
    /// A request failed (the peer is unreachable, too slow, answered badly or does not speak it).
    #[error("{protocol} request to {peer}: {reason}")]
    Request {
        /// The protocol.
        protocol: &'static str,
        /// The peer asked.
        peer: String,
        /// Why it failed.
        reason: String,
    },
    /// The network task has stopped.
    #[error("the network has stopped")]
    Stopped,
}

impl Error {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}
