//! Every table of the node database, with its key and value codecs, declared in one place.

use acre_consensus::hashing::Blake3Hash;
use acre_consensus::{BlockNumber, DecodeError, PieceIndex, SegmentHeader, SegmentIndex};

use super::{KeyCodec, ValueCodec};
use crate::error::Error;

fn wrong_size(what: &'static str, expected: usize, len: usize) -> Error {
    Error::Decode(DecodeError::WrongSize { what, expected, len })
}

macro_rules! big_endian_key {
    ($($name:ident),*) => {$(
        impl KeyCodec for $name {
            fn encode_key(&self) -> Vec<u8> {
                self.0.to_be_bytes().to_vec()
            }
            fn decode_key(bytes: &[u8]) -> Result<Self, Error> {
                let bytes: [u8; 8] = bytes.try_into().map_err(|_| wrong_size(stringify!($name), 8, bytes.len()))?;
                Ok(Self(u64::from_be_bytes(bytes)))
            }
        }
    )*};
}
big_endian_key!(BlockNumber, SegmentIndex, PieceIndex);

impl KeyCodec for Blake3Hash {
    fn encode_key(&self) -> Vec<u8> {
        self.0.to_vec()
    }
    fn decode_key(bytes: &[u8]) -> Result<Self, Error> {
        Ok(Self(
            bytes
                .try_into()
                .map_err(|_| wrong_size("hash key", 32, bytes.len()))?,
        ))
    }
}

impl ValueCodec for Blake3Hash {
    fn encode_value(&self) -> Vec<u8> {
        self.0.to_vec()
    }
    fn decode_value(bytes: &[u8]) -> Result<Self, Error> {
        Ok(Self(
            bytes
                .try_into()
                .map_err(|_| wrong_size("hash value", 32, bytes.len()))?,
        ))
    }
}

/// Opaque bytes, encoded by their owner (headers, bodies, state values, pieces).
impl ValueCodec for Vec<u8> {
    fn encode_value(&self) -> Vec<u8> {
        self.clone()
    }
    fn decode_value(bytes: &[u8]) -> Result<Self, Error> {
        Ok(bytes.to_vec())
    }
}

impl ValueCodec for SegmentHeader {
    fn encode_value(&self) -> Vec<u8> {
        self.encode()
    }
    fn decode_value(bytes: &[u8]) -> Result<Self, Error> {
        Ok(SegmentHeader::decode(bytes)?)
    }
}

/// Keys of the metadata table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKey {
    /// The database's [`super::SCHEMA_VERSION`] (LE u32).
    SchemaVersion,
    /// Hash of the best block.
    BestBlock,
    /// Hash of the last finalized block.
    FinalizedBlock,
}

impl KeyCodec for MetaKey {
    fn encode_key(&self) -> Vec<u8> {
        match self {
            Self::SchemaVersion => b"schema-version".to_vec(),
            Self::BestBlock => b"best-block".to_vec(),
            Self::FinalizedBlock => b"finalized-block".to_vec(),
        }
    }
    fn decode_key(bytes: &[u8]) -> Result<Self, Error> {
        match bytes {
            b"schema-version" => Ok(Self::SchemaVersion),
            b"best-block" => Ok(Self::BestBlock),
            b"finalized-block" => Ok(Self::FinalizedBlock),
            _ => Err(Error::Database("unknown metadata key".into())),
        }
    }
}

/// Declares a table: `table!(/// docs\n Name: "name", Key => Value);`. Other crates declare their own
/// tables with it (the node's state and block contexts).
#[macro_export]
macro_rules! table {
    ($(#[$doc:meta])* $name:ident: $table:literal, $key:ty => $value:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name;

        impl $crate::db::Table for $name {
            const NAME: &'static str = $table;
            type Key = $key;
            type Value = $value;
        }
    };
}

table!(
    /// Database metadata (schema version, best and finalized block).
    Meta: "meta", MetaKey => Vec<u8>
);
table!(
    /// Encoded block headers by block hash.
    Headers: "headers", Blake3Hash => Vec<u8>
);
table!(
    /// Encoded block bodies by block hash.
    Bodies: "bodies", Blake3Hash => Vec<u8>
);
table!(
    /// The canonical chain: block hash by number.
    CanonicalHashes: "canonical-hashes", BlockNumber => Blake3Hash
);
table!(
    /// Every segment header by index.
    SegmentHeaders: "segment-headers", SegmentIndex => SegmentHeader
);
table!(
    /// Encoded pieces of recent segments, kept for farmers.
    Pieces: "pieces", PieceIndex => Vec<u8>
);
table!(
    /// State nodes by hash.
    State: "state", Blake3Hash => Vec<u8>
);

#[cfg(test)]
mod tests {
    use acre_consensus::{LastArchivedBlock, SegmentRoot};

    use super::*;
    use crate::db::Database;

    #[test]
    fn round_trips_and_numeric_order() {
        let db = Database::in_memory().expect("in memory");
        let tx = db.write().expect("write");
        for number in [1u64, 300, 2, 65_536] {
            tx.put::<CanonicalHashes>(&BlockNumber(number), &Blake3Hash([number as u8; 32]))
                .expect("put");
        }
        let header = SegmentHeader {
            version: SegmentHeader::VERSION,
            segment_index: SegmentIndex(4),
            segment_root: SegmentRoot(Blake3Hash([4; 32])),
            prev_segment_header_hash: Blake3Hash([3; 32]),
            last_archived_block: LastArchivedBlock {
                number: BlockNumber(9),
                archived_progress: 0,
            },
        };
        tx.put::<SegmentHeaders>(&SegmentIndex(4), &header).expect("put");
        tx.commit().expect("commit");

        let read = db.read().expect("read");
        assert_eq!(
            read.last::<CanonicalHashes>().expect("last"),
            Some((BlockNumber(65_536), Blake3Hash([0; 32])))
        );
        assert_eq!(
            read.get::<SegmentHeaders>(&SegmentIndex(4)).expect("get"),
            Some(header)
        );
        assert_eq!(
            read.get::<Headers>(&Blake3Hash([1; 32])).expect("empty table"),
            None
        );
    }

    #[test]
    fn uncommitted_writes_are_invisible_and_schema_is_checked() {
        let dir = std::env::temp_dir().join(format!("acre-db-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("db.redb");
        {
            let db = Database::open(&path).expect("creates");
            let tx = db.write().expect("write");
            tx.put::<Bodies>(&Blake3Hash([7; 32]), &vec![1, 2, 3])
                .expect("put");
            drop(tx); // aborted
            let tx = db.write().expect("write");
            tx.put::<Bodies>(&Blake3Hash([8; 32]), &vec![4]).expect("put");
            tx.commit().expect("commit");
        }
        {
            let db = Database::open(&path).expect("reopens");
            let read = db.read().expect("read");
            assert_eq!(read.get::<Bodies>(&Blake3Hash([7; 32])).expect("get"), None);
            assert_eq!(
                read.get::<Bodies>(&Blake3Hash([8; 32])).expect("get"),
                Some(vec![4])
            );
            drop(read);
            let tx = db.write().expect("write");
            tx.put::<Meta>(&MetaKey::SchemaVersion, &99u32.to_le_bytes().to_vec())
                .expect("put");
            tx.commit().expect("commit");
        }
        assert!(
            Database::open(&path)
                .expect_err("wrong schema")
                .to_string()
                .contains("schema version")
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
