//! Claims seen per `(slot, public key)`: what catches a farmer signing two blocks or votes for one slot.
//!
//! Kept in the database (they survive restarts), keyed slot-first so everything at or below the archiving
//! point is pruned with one range delete: no claim for such a slot can be imported any more.

use acre_consensus::blocks::{BlockHash, Header};
use acre_consensus::equivocation::{EquivocationProof, Seen, SignedClaim, judge};
use acre_consensus::hashing::Blake3Hash;
use acre_consensus::sectors::PublicKey;
use acre_consensus::votes::SignedVote;
use acre_consensus::{SlotNumber, codec};
use acre_storage::db::{KeyCodec, ReadTx, WriteTx};
use borsh::{BorshDeserialize, BorshSerialize};

use crate::error::{Error, ImportError};

/// `(slot, public key)`, big-endian slot first so keys sort by slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeenKey {
    /// The slot.
    pub slot: SlotNumber,
    /// The signer.
    pub public_key: PublicKey,
}

impl SeenKey {
    /// The smallest key of `slot`.
    pub fn lowest(slot: SlotNumber) -> Self {
        Self {
            slot,
            public_key: PublicKey([0; 32]),
        }
    }
}

impl KeyCodec for SeenKey {
    fn encode_key(&self) -> Vec<u8> {
        let mut key = self.slot.0.to_be_bytes().to_vec();
        key.extend(self.public_key.0);
        key
    }

    fn decode_key(bytes: &[u8]) -> Result<Self, acre_storage::Error> {
        let wrong = || {
            acre_storage::Error::Decode(acre_consensus::DecodeError::WrongSize {
                what: "seen-claim key",
                expected: 40,
                len: bytes.len(),
            })
        };
        let slot: [u8; 8] = bytes.get(..8).and_then(|b| b.try_into().ok()).ok_or_else(wrong)?;
        let key: [u8; 32] = bytes.get(8..).and_then(|b| b.try_into().ok()).ok_or_else(wrong)?;
        Ok(Self {
            slot: SlotNumber(u64::from_be_bytes(slot)),
            public_key: PublicKey(key),
        })
    }
}

/// What was seen: a block (by hash; its header is stored) or a vote (kept whole, votes are not stored
/// elsewhere).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub(crate) enum StoredClaim {
    /// A block.
    Block(BlockHash),
    /// A vote.
    Vote(Box<SignedVote>),
}

impl StoredClaim {
    fn hash(&self) -> Blake3Hash {
        match self {
            Self::Block(hash) => *hash,
            Self::Vote(vote) => vote.vote.hash(),
        }
    }
}

acre_storage::table!(
    /// Claims seen per (slot, key), pruned below the archiving point.
    SeenClaims: "seen-claims", SeenKey => Vec<u8>
);

/// The claim seen for `key`, if any.
pub(crate) fn seen(read: &ReadTx, key: &SeenKey) -> Result<Option<StoredClaim>, Error> {
    read.get::<SeenClaims>(key)?
        .map(|bytes| codec::decode_bounded("seen claim", &bytes, 1 << 17).map_err(Error::from))
        .transpose()
}

/// Records `claim` for `key`.
pub(crate) fn record(tx: &WriteTx, key: &SeenKey, claim: &StoredClaim) -> Result<(), acre_storage::Error> {
    tx.put::<SeenClaims>(key, &codec::encode(claim))
}

/// Judges a new claim against what was seen, turning an equivocation into a proof (with the first
/// claim loaded from the database).
pub(crate) fn check(
    read: &ReadTx,
    key: &SeenKey,
    claim: &SignedClaim,
) -> Result<Option<EquivocationProof>, ImportError> {
    let first = seen(read, key).map_err(super::history::internal)?;
    let hash = claim.key().map(|(_, _, hash)| hash).unwrap_or(Blake3Hash::ZERO);
    match judge(first.as_ref().map(StoredClaim::hash), hash) {
        Seen::First | Seen::Again => Ok(None),
        Seen::Equivocation { .. } => {
            let first = match first {
                Some(StoredClaim::Vote(vote)) => SignedClaim::Vote(*vote),
                Some(StoredClaim::Block(hash)) => {
                    let bytes = read
                        .get::<acre_storage::db::tables::Headers>(&hash)?
                        .ok_or_else(|| {
                            super::history::internal(Error::Corrupt(format!(
                                "seen block {hash} has no header"
                            )))
                        })?;
                    SignedClaim::Block(Header::decode(&bytes)?)
                }
                None => return Ok(None),
            };
            Ok(Some(EquivocationProof {
                first,
                second: claim.clone(),
            }))
        }
    }
}
