//! The node database: typed tables on redb.
//!
//! Every table declares its name, key codec and value codec in one place ([`tables`]); keys that are
//! numbers are big-endian so redb's byte order is numeric order. A [`WriteTx`] is one redb write
//! transaction: the node commits one per imported block, so a crash (even `kill -9`) leaves the database at
//! the last committed block. The same code runs on disk and, for tests, in memory.

pub mod tables;

use std::path::Path;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::Error;
use tables::{Meta, MetaKey};

/// Version of the table layout and of the records in it (the node's included); a database of another
/// version is refused, never misread. 2: block contexts carry the branch's entropy sources, seen claims
/// and block-lists (issues 11 and 14).
pub const SCHEMA_VERSION: u32 = 2;

/// Encodes and decodes table keys (order-preserving for numbers).
pub trait KeyCodec: Sized {
    /// The key's bytes.
    fn encode_key(&self) -> Vec<u8>;
    /// The key from its bytes.
    fn decode_key(bytes: &[u8]) -> Result<Self, Error>;
}

/// Encodes and decodes table values.
pub trait ValueCodec: Sized {
    /// The value's bytes.
    fn encode_value(&self) -> Vec<u8>;
    /// The value from its bytes.
    fn decode_value(bytes: &[u8]) -> Result<Self, Error>;
}

/// A typed table.
pub trait Table {
    /// The redb table name.
    const NAME: &'static str;
    /// The key type.
    type Key: KeyCodec;
    /// The value type.
    type Value: ValueCodec;
}

/// A key and its value in table `T`.
pub type Entry<T> = (<T as Table>::Key, <T as Table>::Value);

fn definition<T: Table>() -> TableDefinition<'static, &'static [u8], &'static [u8]> {
    TableDefinition::new(T::NAME)
}

fn db_error(context: &'static str) -> impl FnOnce(redb::Error) -> Error {
    move |error| match error {
        redb::Error::Io(source) => Error::DatabaseIo {
            context,
            kind: source.kind(),
            message: source.to_string(),
        },
        redb::Error::PreviousIo => Error::DatabaseIo {
            context,
            kind: std::io::ErrorKind::Other,
            message: "an earlier write failed, so the database must be reopened".into(),
        },
        other => Error::Database(format!("{context}: {other}")),
    }
}

/// Reads and decodes the value at `key` from an open table.
fn get_from<T: Table>(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: &T::Key,
) -> Result<Option<T::Value>, Error> {
    let value = table
        .get(key.encode_key().as_slice())
        .map_err(|e| db_error("reading")(e.into()))?;
    value
        .map(|guard| T::Value::decode_value(guard.value()))
        .transpose()
}

/// The node database.
#[derive(Debug)]
pub struct Database {
    inner: redb::Database,
}

impl Database {
    /// Opens (or creates) the database at `path`, checking its schema version.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let inner = redb::Database::create(path)
            .map_err(|e| Error::Database(format!("opening {}: {e}", path.display())))?;
        Self::init(inner)
    }

    /// A database held in memory (tests).
    pub fn in_memory() -> Result<Self, Error> {
        let inner = redb::Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| Error::Database(format!("creating an in-memory database: {e}")))?;
        Self::init(inner)
    }

    fn init(inner: redb::Database) -> Result<Self, Error> {
        let db = Self { inner };
        let tx = db.write()?;
        match tx.get::<Meta>(&MetaKey::SchemaVersion)? {
            None => tx.put::<Meta>(&MetaKey::SchemaVersion, &SCHEMA_VERSION.to_le_bytes().to_vec())?,
            Some(bytes) if bytes == SCHEMA_VERSION.to_le_bytes() => {}
            Some(bytes) => {
                return Err(Error::Database(format!(
                    "database schema version {bytes:?} is not the supported version {SCHEMA_VERSION}; \
                     this database was made by another release: start from an empty data directory"
                )));
            }
        }
        tx.commit()?;
        Ok(db)
    }

    /// A consistent read-only view.
    pub fn read(&self) -> Result<ReadTx, Error> {
        Ok(ReadTx(
            self.inner
                .begin_read()
                .map_err(|e| db_error("beginning a read")(e.into()))?,
        ))
    }

    /// A write transaction; nothing is visible to readers until [`WriteTx::commit`].
    pub fn write(&self) -> Result<WriteTx, Error> {
        Ok(WriteTx(
            self.inner
                .begin_write()
                .map_err(|e| db_error("beginning a write")(e.into()))?,
        ))
    }
}

/// A read-only transaction.
pub struct ReadTx(redb::ReadTransaction);

impl std::fmt::Debug for ReadTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadTx")
    }
}

impl ReadTx {
    /// The value at `key`.
    pub fn get<T: Table>(&self, key: &T::Key) -> Result<Option<T::Value>, Error> {
        let table = match self.0.open_table(definition::<T>()) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(db_error("opening a table")(error.into())),
        };
        get_from::<T>(&table, key)
    }

    /// The entry with the largest key.
    pub fn last<T: Table>(&self) -> Result<Option<Entry<T>>, Error> {
        let table = match self.0.open_table(definition::<T>()) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(db_error("opening a table")(error.into())),
        };
        let last = table.last().map_err(|e| db_error("reading")(e.into()))?;
        last.map(|(key, value)| {
            Ok((
                T::Key::decode_key(key.value())?,
                T::Value::decode_value(value.value())?,
            ))
        })
        .transpose()
    }

    /// Every entry of table `T`, in key order.
    pub fn all<T: Table>(&self) -> Result<Vec<Entry<T>>, Error> {
        let table = match self.0.open_table(definition::<T>()) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(error) => return Err(db_error("opening a table")(error.into())),
        };
        let entries = table.iter().map_err(|e| db_error("reading")(e.into()))?;
        entries
            .map(|entry| {
                let (key, value) = entry.map_err(|e| db_error("reading")(e.into()))?;
                Ok((
                    T::Key::decode_key(key.value())?,
                    T::Value::decode_value(value.value())?,
                ))
            })
            .collect()
    }
}

/// A write transaction.
pub struct WriteTx(redb::WriteTransaction);

impl std::fmt::Debug for WriteTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteTx")
    }
}

impl WriteTx {
    /// Stores `value` at `key`.
    pub fn put<T: Table>(&self, key: &T::Key, value: &T::Value) -> Result<(), Error> {
        let mut table = self
            .0
            .open_table(definition::<T>())
            .map_err(|e| db_error("opening a table")(e.into()))?;
        table
            .insert(key.encode_key().as_slice(), value.encode_value().as_slice())
            .map_err(|e| db_error("writing")(e.into()))?;
        Ok(())
    }

    /// Removes the value at `key`.
    pub fn delete<T: Table>(&self, key: &T::Key) -> Result<(), Error> {
        let mut table = self
            .0
            .open_table(definition::<T>())
            .map_err(|e| db_error("opening a table")(e.into()))?;
        table
            .remove(key.encode_key().as_slice())
            .map_err(|e| db_error("deleting")(e.into()))?;
        Ok(())
    }

    /// Removes every entry whose key sorts before `bound` (pruning tables keyed by a leading number).
    pub fn delete_below<T: Table>(&self, bound: &T::Key) -> Result<(), Error> {
        let mut table = self
            .0
            .open_table(definition::<T>())
            .map_err(|e| db_error("opening a table")(e.into()))?;
        let bound = bound.encode_key();
        table
            .retain_in::<&[u8], _>(..bound.as_slice(), |_, _| false)
            .map_err(|e| db_error("deleting")(e.into()))?;
        Ok(())
    }

    /// The value at `key`, including this transaction's own writes.
    pub fn get<T: Table>(&self, key: &T::Key) -> Result<Option<T::Value>, Error> {
        let table = self
            .0
            .open_table(definition::<T>())
            .map_err(|e| db_error("opening a table")(e.into()))?;
        get_from::<T>(&table, key)
    }

    /// Makes every write of the transaction durable and visible, atomically.
    pub fn commit(self) -> Result<(), Error> {
        self.0.commit().map_err(|e| db_error("committing")(e.into()))
    }
}
