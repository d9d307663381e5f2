//! The block tree and the canonical chain, persisted in the node database.
//!
//! Every imported block is stored (header, body and a small [`BlockMeta`] with its chain weight) in one
//! write transaction, together with any change of the best chain: when the new block's tip beats the best
//! one by fork choice (`acre_consensus::chain_rules::compare_tips`), the canonical index is rewritten from
//! the common ancestor and the best-block pointer moves, atomically. A crash therefore leaves the database
//! at the last committed import, and a restart resumes from it. Reorgs never cross the finalized block.

use std::cmp::Ordering;

use borsh::{BorshDeserialize, BorshSerialize};

use acre_consensus::blocks::{BlockHash, Body, Header};
use acre_consensus::chain_rules::{Tip, block_weight, compare_tips};
use acre_consensus::codec;
use acre_consensus::{BlockNumber, SlotNumber};

use crate::db::tables::{Bodies, CanonicalHashes, Headers, Meta, MetaKey};
use crate::db::{Database, KeyCodec, Table, ValueCodec, WriteTx};
use crate::error::Error;

/// What the chain index keeps per block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BlockMeta {
    /// The block's hash.
    pub hash: BlockHash,
    /// Its parent's hash.
    pub parent: BlockHash,
    /// Its number.
    pub number: BlockNumber,
    /// Its slot.
    pub slot: SlotNumber,
    /// Sum of block weights from genesis.
    pub weight: u128,
}

impl ValueCodec for BlockMeta {
    fn encode_value(&self) -> Vec<u8> {
        codec::encode(self)
    }
    fn decode_value(bytes: &[u8]) -> Result<Self, Error> {
        Ok(codec::decode_bounded("block meta", bytes, 32 + 32 + 8 + 8 + 16)?)
    }
}

/// Block metadata by hash.
#[derive(Debug, Clone, Copy)]
pub struct BlockMetas;

impl Table for BlockMetas {
    const NAME: &'static str = "block-metas";
    type Key = BlockHash;
    type Value = BlockMeta;
}

/// What importing a block changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOutcome {
    /// The block became the best block.
    pub is_best: bool,
    /// Blocks that left the canonical chain (newest first), if the best chain switched branches.
    pub retracted: Vec<BlockHash>,
    /// Blocks that joined the canonical chain (oldest first, ending with the imported block), if it became
    /// the best.
    pub enacted: Vec<BlockHash>,
}

/// The block tree over a [`Database`].
#[derive(Debug)]
pub struct ChainIndex<'a> {
    db: &'a Database,
}

fn hash_from(bytes: Vec<u8>) -> Result<BlockHash, Error> {
    BlockHash::decode_value(&bytes)
}

impl<'a> ChainIndex<'a> {
    /// Opens the index; a fresh database is initialised with `genesis`.
    pub fn open(db: &'a Database, genesis: &Header, genesis_body: &Body) -> Result<Self, Error> {
        let index = Self { db };
        if db.read()?.get::<Meta>(&MetaKey::BestBlock)?.is_none() {
            let hash = genesis.hash();
            let tx = db.write()?;
            let meta = BlockMeta {
                hash,
                parent: BlockHash::ZERO,
                number: BlockNumber(0),
                slot: SlotNumber(0),
                weight: 0,
            };
            store_block(&tx, genesis, genesis_body, &meta)?;
            tx.put::<CanonicalHashes>(&BlockNumber(0), &hash)?;
            tx.put::<Meta>(&MetaKey::BestBlock, &hash.encode_key())?;
            tx.put::<Meta>(&MetaKey::FinalizedBlock, &hash.encode_key())?;
            tx.commit()?;
        }
        Ok(index)
    }

    /// The index over a database [`ChainIndex::open`] already initialised.
    pub fn open_existing(db: &'a Database) -> Self {
        Self { db }
    }

    /// The metadata of a stored block.
    pub fn meta(&self, hash: &BlockHash) -> Result<Option<BlockMeta>, Error> {
        self.db.read()?.get::<BlockMetas>(hash)
    }

    /// The best block.
    pub fn best(&self) -> Result<BlockMeta, Error> {
        let read = self.db.read()?;
        let hash = hash_from(
            read.get::<Meta>(&MetaKey::BestBlock)?
                .ok_or(Error::Database("no best block".into()))?,
        )?;
        read.get::<BlockMetas>(&hash)?
            .ok_or(Error::Database("the best block's metadata is missing".into()))
    }

    /// The finalized block.
    pub fn finalized(&self) -> Result<BlockMeta, Error> {
        let read = self.db.read()?;
        let hash = hash_from(
            read.get::<Meta>(&MetaKey::FinalizedBlock)?
                .ok_or(Error::Database("no finalized block".into()))?,
        )?;
        read.get::<BlockMetas>(&hash)?.ok_or(Error::Database(
            "the finalized block's metadata is missing".into(),
        ))
    }

    /// The canonical block at `number`.
    pub fn canonical_hash(&self, number: BlockNumber) -> Result<Option<BlockHash>, Error> {
        self.db.read()?.get::<CanonicalHashes>(&number)
    }

    /// A stored header.
    pub fn header(&self, hash: &BlockHash) -> Result<Option<Header>, Error> {
        self.db
            .read()?
            .get::<Headers>(hash)?
            .map(|bytes| Ok(Header::decode(&bytes)?))
            .transpose()
    }

    /// Marks the canonical block at `number` final: no reorg will cross it.
    pub fn finalize(&self, number: BlockNumber) -> Result<(), Error> {
        let hash = self
            .canonical_hash(number)?
            .ok_or(Error::Database(format!("no canonical block {number}")))?;
        let tx = self.db.write()?;
        tx.put::<Meta>(&MetaKey::FinalizedBlock, &hash.encode_key())?;
        tx.commit()
    }

    /// Stores a block whose header and body the caller has validated, and moves the best chain to it if it
    /// now wins fork choice (unless that would revert the finalized block). One atomic write.
    pub fn import(&self, header: &Header, body: &Body) -> Result<ImportOutcome, Error> {
        self.import_with(header, body, |_, _| Ok(()))
    }

    /// As [`ChainIndex::import`], with `extra` writing the caller's own per-block data (state, consensus
    /// context) into the same transaction, knowing how the canonical chain moved: a crash keeps either all
    /// of it or none.
    pub fn import_with(
        &self,
        header: &Header,
        body: &Body,
        extra: impl FnOnce(&WriteTx, &ImportOutcome) -> Result<(), Error>,
    ) -> Result<ImportOutcome, Error> {
        let unsealed = &header.unsealed;
        let parent = self
            .meta(&unsealed.parent_hash)?
            .ok_or(Error::Database("unknown parent".into()))?;
        let meta = BlockMeta {
            hash: header.hash(),
            parent: parent.hash,
            number: unsealed.number,
            slot: unsealed.slot,
            weight: parent.weight + block_weight(unsealed.solution_range),
        };
        let best = self.best()?;
        let finalized = self.finalized()?;
        let tx = self.db.write()?;
        store_block(&tx, header, body, &meta)?;
        let wins = compare_tips(
            &Tip {
                weight: meta.weight,
                hash: meta.hash,
            },
            &Tip {
                weight: best.weight,
                hash: best.hash,
            },
        ) == Ordering::Greater;
        let mut outcome = ImportOutcome {
            is_best: false,
            retracted: Vec::new(),
            enacted: Vec::new(),
        };
        if wins {
            // Walk the new branch back to the canonical chain, collecting its blocks.
            let mut enacted = vec![meta];
            let mut cursor = parent;
            while tx.get::<CanonicalHashes>(&cursor.number)? != Some(cursor.hash) {
                enacted.push(cursor);
                cursor = tx
                    .get::<BlockMetas>(&cursor.parent)?
                    .ok_or(Error::Database("a parent's metadata is missing".into()))?;
            }
            if cursor.number >= finalized.number {
                for number in (cursor.number.0 + 1..=best.number.0).rev() {
                    if let Some(hash) = tx.get::<CanonicalHashes>(&BlockNumber(number))? {
                        outcome.retracted.push(hash);
                    }
                    tx.delete::<CanonicalHashes>(&BlockNumber(number))?;
                }
                for block in &enacted {
                    tx.put::<CanonicalHashes>(&block.number, &block.hash)?;
                }
                outcome.enacted = enacted.iter().rev().map(|block| block.hash).collect();
                tx.put::<Meta>(&MetaKey::BestBlock, &meta.hash.encode_key())?;
                outcome.is_best = true;
            }
        }
        extra(&tx, &outcome)?;
        tx.commit()?;
        Ok(outcome)
    }
}

impl ChainIndex<'_> {
    /// Starts an index that holds only genesis from `header`, a block whose ancestors are not stored
    /// (snap sync): it becomes the canonical block at its number and the best and finalized block, and
    /// `extra` writes the caller's own data in the same transaction. Its weight counts from zero: fork
    /// choice only ever compares branches above it.
    pub fn install_base(
        &self,
        header: &Header,
        body: &Body,
        extra: impl FnOnce(&WriteTx) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let best = self.best()?;
        if best.number.0 != 0 {
            return Err(Error::Database(format!(
                "a base block cannot start an index whose best block is {}",
                best.number
            )));
        }
        let unsealed = &header.unsealed;
        if unsealed.number.0 == 0 {
            return Err(Error::Database("genesis is not a base block".into()));
        }
        let meta = BlockMeta {
            hash: header.hash(),
            parent: unsealed.parent_hash,
            number: unsealed.number,
            slot: unsealed.slot,
            weight: 0,
        };
        let tx = self.db.write()?;
        store_block(&tx, header, body, &meta)?;
        tx.put::<CanonicalHashes>(&meta.number, &meta.hash)?;
        tx.put::<Meta>(&MetaKey::BestBlock, &meta.hash.encode_key())?;
        tx.put::<Meta>(&MetaKey::FinalizedBlock, &meta.hash.encode_key())?;
        extra(&tx)?;
        tx.commit()
    }
}

fn store_block(tx: &WriteTx, header: &Header, body: &Body, meta: &BlockMeta) -> Result<(), Error> {
    tx.put::<Headers>(&meta.hash, &header.encode())?;
    tx.put::<Bodies>(&meta.hash, &body.encode())?;
    tx.put::<BlockMetas>(&meta.hash, meta)
}
