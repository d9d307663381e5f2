//! Request-response protocols (spec 9): what they are called, how large their messages may be, and the
//! codec that frames them.
//!
//! Messages are opaque bytes here (the application encodes them with borsh and decodes them with the
//! consensus crate's bounded decoders). This layer frames them with a little-endian `u32` length and
//! refuses, before allocating anything, a message over its protocol's limit: the sender of one is
//! faulted for it.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

/// How long a request may take before it fails (and the silent peer is faulted).
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// The request-response protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Blocks by number or hash, a bounded count and size.
    BlockRange,
    /// Segment headers by index list or "the last N" (at most 1000).
    SegmentHeaders,
    /// A piece by index, from a cache or a plot.
    Piece,
    /// A cached piece by index, or the responder's peers closest to its key.
    CachedPiece,
    /// Key ranges of the consensus state with proofs (snap sync).
    State,
    /// Proof of time of a run of slots, for a follower that joined late or missed gossip.
    PotSlots,
}

impl Protocol {
    /// Every protocol, in a fixed order.
    pub const ALL: [Self; 6] = [
        Self::BlockRange,
        Self::SegmentHeaders,
        Self::Piece,
        Self::CachedPiece,
        Self::State,
        Self::PotSlots,
    ];

    /// The protocol's short name (`/acre/<genesis hex>/<name>/1` on the wire).
    pub fn name(self) -> &'static str {
        match self {
            Self::BlockRange => "block-range",
            Self::SegmentHeaders => "segment-headers",
            Self::Piece => "piece",
            Self::CachedPiece => "cached-piece",
            Self::State => "state",
            Self::PotSlots => "pot-slots",
        }
    }

    /// The largest request.
    pub fn max_request(self) -> usize {
        match self {
            // 1000 segment indices of 8 bytes, with room for the framing of a list.
            Self::SegmentHeaders => 16 << 10,
            _ => 4 << 10,
        }
    }

    /// The largest response.
    pub fn max_response(self) -> usize {
        match self {
            Self::BlockRange => 16 << 20,
            // A full page of 2,048 accounts with its witness is about 300 KiB. The bound also caps what a
            // hostile page of one-byte witness items decodes to (about 66 bytes an item in memory).
            Self::State => 1 << 20,
            Self::SegmentHeaders => 1 << 20,
            Self::Piece | Self::CachedPiece => 2 << 20,
            Self::PotSlots => crate::messages::PotSlotsResponse::MAX_SIZE,
        }
    }

    /// The protocol a wire name `/acre/<genesis hex>/<name>/<version>` stands for.
    pub(crate) fn from_wire(name: &str) -> Option<Self> {
        let short = name.split('/').nth(3)?;
        Self::ALL.into_iter().find(|protocol| protocol.name() == short)
    }
}

/// Frames requests and responses as a `u32` length and the bytes, within each protocol's limits.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Codec;

async fn read_framed<T: AsyncRead + Unpin + Send>(io: &mut T, limit: usize) -> io::Result<Vec<u8>> {
    let mut length = [0u8; 4];
    io.read_exact(&mut length).await?;
    let length = u32::from_le_bytes(length) as usize;
    if length > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a message of {length} bytes is over the limit of {limit}"),
        ));
    }
    let mut bytes = vec![0u8; length];
    io.read_exact(&mut bytes).await?;
    Ok(bytes)
}

async fn write_framed<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: &[u8],
    limit: usize,
) -> io::Result<()> {
    let length = u32::try_from(bytes.len())
        .ok()
        .filter(|length| *length as usize <= limit)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} bytes are over the limit of {limit}", bytes.len()),
            )
        })?;
    io.write_all(&length.to_le_bytes()).await?;
    io.write_all(bytes).await?;
    io.close().await
}

fn protocol(name: &StreamProtocol) -> io::Result<Protocol> {
    Protocol::from_wire(name.as_ref())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("unknown protocol {name}")))
}

#[async_trait::async_trait]
impl libp2p::request_response::Codec for Codec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, name: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_framed(io, protocol(name)?.max_request()).await
    }

    async fn read_response<T>(&mut self, name: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_framed(io, protocol(name)?.max_response()).await
    }

    async fn write_request<T>(
        &mut self,
        name: &StreamProtocol,
        io: &mut T,
        request: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_framed(io, &request, protocol(name)?.max_request()).await
    }

    async fn write_response<T>(
        &mut self,
        name: &StreamProtocol,
        io: &mut T,
        response: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_framed(io, &response, protocol(name)?.max_response()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_map_back_to_protocols() {
        let chain = crate::ChainId([3; 32]);
        for protocol in Protocol::ALL {
            assert_eq!(
                Protocol::from_wire(&chain.protocol(protocol.name(), 1)),
                Some(protocol)
            );
        }
        assert_eq!(Protocol::from_wire("/acre/00/gossip/1"), None);
        assert_eq!(Protocol::from_wire("/ipfs/id/1.0.0"), None);
    }

    #[test]
    fn frames_round_trip_and_oversized_ones_are_refused_before_allocating() {
        futures::executor::block_on(async {
            let mut wire = Vec::new();
            write_framed(&mut futures::io::Cursor::new(&mut wire), b"hello", 16)
                .await
                .expect("written");
            assert_eq!(wire, [5, 0, 0, 0, b'h', b'e', b'l', b'l', b'o']);
            let read = read_framed(&mut futures::io::Cursor::new(&wire), 16)
                .await
                .expect("read");
            assert_eq!(read, b"hello");
            let error = read_framed(&mut futures::io::Cursor::new(&wire), 4)
                .await
                .expect_err("over");
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
            // A length of 4 GiB with nothing behind it is refused from the length alone.
            let huge = u32::MAX.to_le_bytes();
            let error = read_framed(&mut futures::io::Cursor::new(&huge), 1 << 20)
                .await
                .expect_err("over");
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
            let truncated = [9, 0, 0, 0, 1, 2];
            let error = read_framed(&mut futures::io::Cursor::new(&truncated), 16)
                .await
                .expect_err("short");
            assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
            let error = write_framed(&mut futures::io::Cursor::new(Vec::new()), &[0; 17], 16)
                .await
                .expect_err("over");
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        });
    }
}
