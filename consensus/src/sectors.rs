//! Sectors: which history a farmer must store, and for how long (spec section 5).
//!
//! A sector is bound to a farmer's public key, its index in the farm and the history size at which it was
//! plotted: together they give the [`SectorId`], from which everything else follows deterministically:
//! which piece sits at each offset (with a bias towards recent history, so new data is replicated fast),
//! the proof-of-space seed of each record, and when the sector expires.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::hashing::{self, Blake3Hash, HashContext};
use crate::params::ProtocolParams;
use crate::quantities::{HistorySize, PieceIndex, PieceOffset, SectorIndex, SegmentIndex};
use crate::segments::SegmentRoot;

/// A farmer's ed25519 public key (32 bytes).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// `public_key_hash = H(pk)`: what sectors are bound to.
    pub fn hash(&self) -> Blake3Hash {
        hashing::hash(HashContext::PublicKey, &self.0)
    }
}

impl std::fmt::Display for PublicKey {
    /// Hex, as keys are shown everywhere else (`acre key inspect`, RPC).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// `a mod modulus` for a 256-bit little-endian number.
fn mod_u256(bytes: &[u8; 32], modulus: u64) -> u64 {
    assert!(modulus > 0, "modulus is a non-zero piece count");
    bytes.rchunks_exact(8).fold(0u64, |remainder, limb| {
        let limb = u64::from_le_bytes(limb.try_into().expect("chunks of eight bytes"));
        let wide = (u128::from(remainder) << 64) | u128::from(limb);
        u64::try_from(wide % u128::from(modulus)).expect("a remainder is below the u64 modulus")
    })
}

/// The identity of a sector.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct SectorId(pub Blake3Hash);

impl SectorId {
    /// `sector_id = H_keyed(public_key_hash, sector_index ‖ history_size)` (little-endian integers).
    pub fn new(public_key_hash: &Blake3Hash, sector_index: SectorIndex, history_size: HistorySize) -> Self {
        let mut input = [0u8; 2 + 8];
        input[..2].copy_from_slice(&sector_index.0.to_le_bytes());
        input[2..].copy_from_slice(&history_size.get().to_le_bytes());
        Self(hashing::keyed_hash(&public_key_hash.0, &input))
    }

    /// The piece a sector plotted at `history_size` holds at `offset`:
    /// `n = H_keyed(offset, sector_id) mod history_in_pieces` (the offset as a little-endian key, zero
    /// padded), except that odd offsets among the first `2 × max_pieces × recent_fraction` pick from the
    /// last `recent_segments` segments once those are at most `recent_fraction` of the history.
    pub fn piece_index(
        &self,
        params: &ProtocolParams,
        offset: PieceOffset,
        history_size: HistorySize,
    ) -> PieceIndex {
        let mut key = [0u8; 32];
        key[..2].copy_from_slice(&offset.0.to_le_bytes());
        let input = hashing::keyed_hash(&key, &self.0.0);
        let fraction = params.recent_history_fraction;
        let pieces_per_segment = u64::from(params.pieces_per_segment());
        let history_pieces = history_size.in_pieces(params);
        let recent_pieces = params.recent_segments.saturating_mul(pieces_per_segment);
        let history_needed = recent_pieces.saturating_mul(fraction.denominator) / fraction.numerator.max(1);
        let interleaved =
            (u64::from(params.max_pieces_per_sector) * fraction.numerator / fraction.denominator * 2).max(1);
        let index = if recent_pieces > 0
            && history_pieces > history_needed
            && u64::from(offset.0) < interleaved
            && offset.0 % 2 == 1
        {
            history_pieces - recent_pieces + mod_u256(&input.0, recent_pieces)
        } else {
            mod_u256(&input.0, history_pieces)
        };
        PieceIndex(index)
    }

    /// The proof-of-space seed of the record at `offset`: `H(evaluation_seed_ctx, sector_id ‖ offset)`.
    pub fn evaluation_seed(&self, offset: PieceOffset) -> Blake3Hash {
        let mut input = [0u8; 32 + 2];
        input[..32].copy_from_slice(&self.0.0);
        input[32..].copy_from_slice(&offset.0.to_le_bytes());
        hashing::hash(HashContext::EvaluationSeed, &input)
    }

    /// The segment whose root decides when a sector plotted at `history_size` expires: `check − 1` with
    /// `check = history_size + min_sector_lifetime`. Until it exists the sector cannot have expired.
    pub fn expiration_check_segment(params: &ProtocolParams, history_size: HistorySize) -> SegmentIndex {
        SegmentIndex(
            history_size
                .get()
                .saturating_add(params.min_sector_lifetime)
                .saturating_sub(1),
        )
    }

    /// The history size at which a sector plotted at `history_size` expires, given the root of its
    /// expiration check segment: `check + (H(expiry_ctx, sector_id ‖ root) mod (last − check))` with
    /// `last = 4 × check`.
    pub fn expires_at(
        &self,
        params: &ProtocolParams,
        history_size: HistorySize,
        check_segment_root: &SegmentRoot,
    ) -> HistorySize {
        let check = history_size.get().saturating_add(params.min_sector_lifetime);
        let last = check.saturating_mul(4);
        let input = hashing::hash_pair(HashContext::SectorExpiry, &self.0, &check_segment_root.0);
        let value = u64::from_le_bytes(input.0[..8].try_into().expect("eight bytes"));
        let expiry = check.saturating_add(value % (last - check).max(1));
        HistorySize::new(expiry).unwrap_or(HistorySize::ONE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sector(history: u64) -> (SectorId, HistorySize) {
        let history_size = HistorySize::new(history).expect("non-zero");
        (
            SectorId::new(&PublicKey([7; 32]).hash(), SectorIndex(3), history_size),
            history_size,
        )
    }

    #[test]
    fn mod_u256_matches_u128_arithmetic() {
        let mut bytes = [0u8; 32];
        bytes[..16].copy_from_slice(&0x0123_4567_89ab_cdef_1122_3344_5566_7788u128.to_le_bytes());
        assert_eq!(
            u128::from(mod_u256(&bytes, 1_000_003)),
            0x0123_4567_89ab_cdef_1122_3344_5566_7788u128 % 1_000_003
        );
        bytes[31] = 1;
        // 2^248 + x mod 7, with 2^248 mod 7 = 2^(248 mod 3) = 2^2 = 4.
        let expected = (4 + 0x0123_4567_89ab_cdef_1122_3344_5566_7788u128 % 7) % 7;
        assert_eq!(u128::from(mod_u256(&bytes, 7)), expected);
    }

    #[test]
    fn sector_ids_bind_key_index_and_history() {
        let (id, history) = sector(5);
        assert_ne!(
            id,
            SectorId::new(&PublicKey([8; 32]).hash(), SectorIndex(3), history)
        );
        assert_ne!(
            id,
            SectorId::new(&PublicKey([7; 32]).hash(), SectorIndex(4), history)
        );
        assert_ne!(id, sector(6).0);
    }

    #[test]
    fn pieces_lie_in_history_and_recent_offsets_in_recent_history() {
        let params = ProtocolParams::dev();
        let (id, history) = sector(100);
        let history_pieces = history.in_pieces(&params);
        let recent_start = history_pieces - params.recent_segments * u64::from(params.pieces_per_segment());
        for offset in 0..params.max_pieces_per_sector {
            let index = id.piece_index(&params, PieceOffset(offset), history);
            assert!(index.0 < history_pieces);
            // dev: 2 × 16 × 1/10 = 3 interleaved offsets, so offset 1 is biased to recent history.
            if offset == 1 {
                assert!(index.0 >= recent_start, "offset 1 picks from recent history");
            }
        }
        // A young history (recent segments are more than 1/10 of it) has no bias.
        let (young, young_history) = sector(2);
        assert!(
            young.piece_index(&params, PieceOffset(1), young_history).0 < young_history.in_pieces(&params)
        );
    }

    #[test]
    fn expiry_lies_between_check_and_last() {
        let params = ProtocolParams::dev();
        let (id, history) = sector(10);
        assert_eq!(
            SectorId::expiration_check_segment(&params, history),
            SegmentIndex(13)
        );
        for byte in 0..20u8 {
            let expiry = id
                .expires_at(&params, history, &SegmentRoot(Blake3Hash([byte; 32])))
                .get();
            assert!((14..56).contains(&expiry), "{expiry}");
        }
    }
}
