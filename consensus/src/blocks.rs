//! Blocks: headers, bodies, seals (spec section 8).
//!
//! A header commits to its parent, its slot and the proof of time up to `slot + block_authoring_delay`,
//! the farmer's solution, the solution range it was won at, and the state and body roots. The farmer seals
//! the header's hash with the ed25519 key its sectors are bound to, checked with `verify_strict`. Bodies
//! carry transactions (opaque here: the runtime decodes them) and the segment headers archived since the
//! parent.

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::SigningKey;
use thiserror::Error;

use crate::codec;
use crate::equivocation::EquivocationProof;
use crate::error::DecodeError;
use crate::hashing::{self, Blake3Hash, HashContext};
use crate::merkle;
use crate::pot::PotCheckpoints;
use crate::quantities::{BlockNumber, SlotNumber, SolutionRange};
use crate::segments::SegmentHeader;
use crate::signing::{self, SignatureError, SigningContext};
use crate::solutions::Solution;
use crate::votes::SignedVote;

/// Largest encoded header accepted from anyone.
pub const MAX_HEADER_SIZE: usize = 1 << 20;
/// Largest encoded body accepted from anyone.
pub const MAX_BODY_SIZE: usize = 8 << 20;

/// A block's hash: the hash of its unsealed header.
pub type BlockHash = Blake3Hash;

/// Everything a header commits to; the seal signs its hash.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct UnsealedHeader {
    /// Encoding version, currently [`Header::VERSION`].
    pub version: u8,
    /// The parent's hash (zero for genesis).
    pub parent_hash: BlockHash,
    /// Height.
    pub number: BlockNumber,
    /// The slot this block was won in.
    pub slot: SlotNumber,
    /// Checkpoints of every slot after the parent's last covered slot, up to `slot + block_authoring_delay`
    /// (empty for genesis).
    pub pot_checkpoints: Vec<PotCheckpoints>,
    /// The winning solution (`None` only for genesis).
    pub solution: Option<Solution>,
    /// The solution range the solution was won at.
    pub solution_range: SolutionRange,
    /// At an era boundary, the range children must use.
    pub next_solution_range: Option<SolutionRange>,
    /// Root of the state after this block.
    pub state_root: Blake3Hash,
    /// Root of the body.
    pub body_root: Blake3Hash,
}

/// A sealed header.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Header {
    /// The header's contents.
    pub unsealed: UnsealedHeader,
    /// ed25519 signature of the block hash, as a [`SigningContext::Seal`] message, by the solution's public
    /// key (zero for genesis).
    pub seal: [u8; 64],
}

/// Why a seal is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SealError {
    /// Only genesis may lack a solution.
    #[error("block {0} has no solution")]
    MissingSolution(BlockNumber),
    /// The solution's public key is not a valid ed25519 key.
    #[error("the solution's public key is not a valid ed25519 key")]
    InvalidPublicKey,
    /// The signature does not verify (strictly).
    #[error("the seal does not verify against the solution's public key")]
    BadSignature,
}

impl UnsealedHeader {
    /// The block hash.
    pub fn hash(&self) -> BlockHash {
        hashing::hash(HashContext::Header, &codec::encode(self))
    }

    /// Seals the header with the farmer's key.
    pub fn seal(self, key: &SigningKey) -> Header {
        let seal = signing::sign(key, SigningContext::Seal, &self.hash());
        Header { unsealed: self, seal }
    }
}

impl Header {
    /// The current encoding version.
    pub const VERSION: u8 = 1;

    /// The block hash.
    pub fn hash(&self) -> BlockHash {
        self.unsealed.hash()
    }

    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a header from untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let header: Self = codec::decode_bounded("block header", bytes, MAX_HEADER_SIZE)?;
        if header.unsealed.version != Self::VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "block header",
                version: header.unsealed.version,
            });
        }
        Ok(header)
    }

    /// Checks the seal against the solution's public key (stateless).
    pub fn verify_seal(&self) -> Result<(), SealError> {
        let solution = self
            .unsealed
            .solution
            .as_ref()
            .ok_or(SealError::MissingSolution(self.unsealed.number))?;
        signing::verify(
            &solution.public_key.0,
            SigningContext::Seal,
            &self.hash(),
            &self.seal,
        )
        .map_err(|error| match error {
            SignatureError::InvalidPublicKey => SealError::InvalidPublicKey,
            SignatureError::BadSignature => SealError::BadSignature,
        })
    }
}

/// Decodes an archived block: its header's canonical encoding followed by its body's (what the node
/// hands the archiver), each with its own limit and checks; trailing bytes are refused.
pub fn decode_archived_block(bytes: &[u8]) -> Result<(Header, Body), DecodeError> {
    let (_, header_len) = codec::decode_prefix::<Header>("archived block header", bytes, MAX_HEADER_SIZE)?;
    let (header, body) = bytes.split_at(header_len);
    Ok((Header::decode(header)?, Body::decode(body)?))
}

/// A block body.
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Body {
    /// Encoded transactions, in execution order.
    pub transactions: Vec<Vec<u8>>,
    /// Segment headers archived since the parent, in order.
    pub segment_headers: Vec<SegmentHeader>,
    /// Votes for the block's parent (spec 7).
    pub votes: Vec<SignedVote>,
    /// Proofs of equivocations, putting their keys on the branch's block-list (spec 8).
    pub equivocations: Vec<EquivocationProof>,
    /// Encoded domain bundles (DOMAINS.md 5), opaque to this crate: the consensus runtime decodes and
    /// checks them, in order, after the transactions.
    pub bundles: Vec<Vec<u8>>,
}

impl Body {
    /// `H(body_ctx, transactions root ‖ segment headers root ‖ votes root ‖ equivocations root ‖ bundles
    /// root)`, each a Merkle root over hashed leaves of the items' canonical encodings (a transaction's
    /// or a bundle's own bytes).
    pub fn root(&self) -> Blake3Hash {
        fn root_of<T>(items: &[T], encode: impl Fn(&T) -> Vec<u8>) -> [u8; 32] {
            let leaves: Vec<_> = items.iter().map(|item| merkle::leaf(&encode(item))).collect();
            merkle::root(&leaves)
        }
        let mut roots = Vec::with_capacity(5 * 32);
        roots.extend(root_of(&self.transactions, Clone::clone));
        roots.extend(root_of(&self.segment_headers, SegmentHeader::encode));
        roots.extend(root_of(&self.votes, codec::encode));
        roots.extend(root_of(&self.equivocations, codec::encode));
        roots.extend(root_of(&self.bundles, Clone::clone));
        hashing::hash(HashContext::Body, &roots)
    }

    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a body from untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode_bounded("block body", bytes, MAX_BODY_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantities::{HistorySize, PieceOffset, SectorIndex};
    use crate::sectors::PublicKey;

    fn header(key: &SigningKey) -> UnsealedHeader {
        UnsealedHeader {
            version: Header::VERSION,
            parent_hash: Blake3Hash([1; 32]),
            number: BlockNumber(5),
            slot: SlotNumber(40),
            pot_checkpoints: vec![PotCheckpoints([crate::pot::PotOutput([3; 16]); 8])],
            solution: Some(Solution {
                public_key: PublicKey(key.verifying_key().to_bytes()),
                reward_address: [4; 32],
                sector_index: SectorIndex(1),
                history_size: HistorySize::ONE,
                piece_offset: PieceOffset(2),
                record_root: Default::default(),
                record_proof: vec![[5; 32]; 5],
                chunk: [6; 32],
                chunk_proof: vec![[7; 32]; 8],
                proof_of_space: vec![8; 128],
            }),
            solution_range: SolutionRange(1000),
            next_solution_range: None,
            state_root: Blake3Hash([9; 32]),
            body_root: Body::default().root(),
        }
    }

    #[test]
    fn seals_verify_and_bind_every_field() {
        let key = SigningKey::from_bytes(&[11; 32]);
        let sealed = header(&key).seal(&key);
        assert_eq!(sealed.verify_seal(), Ok(()));
        let bytes = sealed.encode();
        assert_eq!(Header::decode(&bytes).as_ref(), Ok(&sealed));
        assert!(Header::decode(&bytes[..bytes.len() - 1]).is_err());

        let mut changed = sealed.clone();
        changed.unsealed.slot = SlotNumber(41);
        assert_eq!(changed.verify_seal(), Err(SealError::BadSignature));
        let other = SigningKey::from_bytes(&[12; 32]);
        let forged = header(&key).seal(&other);
        assert_eq!(forged.verify_seal(), Err(SealError::BadSignature));
        let mut genesis = sealed;
        genesis.unsealed.solution = None;
        assert_eq!(
            genesis.verify_seal(),
            Err(SealError::MissingSolution(BlockNumber(5)))
        );
    }

    #[test]
    fn body_root_commits_to_order_and_kind() {
        let a = Body {
            transactions: vec![b"a".to_vec(), b"b".to_vec()],
            ..Body::default()
        };
        let b = Body {
            transactions: vec![b"b".to_vec(), b"a".to_vec()],
            ..Body::default()
        };
        assert_ne!(a.root(), b.root());
        // The same bytes as a bundle rather than a transaction make another body.
        let c = Body {
            bundles: a.transactions.clone(),
            ..Body::default()
        };
        assert_ne!(a.root(), c.root());
        assert_ne!(c.root(), Body::default().root());
        assert_eq!(Body::decode(&c.encode()), Ok(c));
        assert_eq!(Body::decode(&a.encode()), Ok(a));
    }
}
