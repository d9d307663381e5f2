//! Proofs of space: their encoding and their stateless verification.

// Casts: bit packing truncates by design; x values and targets are below 2^k ≤ 2^32.
#![allow(clippy::cast_possible_truncation)]

use borsh::{BorshDeserialize, BorshSerialize};

use super::f1::{compute_f1, read_bits};
use super::fx::{compute_fx, is_match};
use super::{ChallengeIndex, PARAM_EXT, PROOF_X_VALUES, PosError, PosSeed, ProofQuality};

/// Largest supported `k`: `y` (k + 6 bits) and four `k`-bit metadata fit the fixed-width arithmetic.
const MAX_K: u8 = 32;
/// Bytes of the largest proof (`8·k` for `k = 32`).
const MAX_PROOF_BYTES: usize = 8 * MAX_K as usize;

/// A proof of space for `k = K`: 64 `k`-bit x values in proof order, packed big-endian into `8·k` bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Proof<const K: u8> {
    bytes: [u8; MAX_PROOF_BYTES],
}

impl<const K: u8> std::fmt::Debug for Proof<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Proof<{K}>({})", hex::encode(self.as_bytes()))
    }
}

impl<const K: u8> Proof<K> {
    /// Bytes in an encoded proof.
    pub const SIZE: usize = {
        assert!(K >= PARAM_EXT && K <= MAX_K, "k must be in 6..=32");
        8 * K as usize
    };

    /// Decodes a proof; any `8·k` bytes are a well-formed (not necessarily valid) proof.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PosError> {
        if bytes.len() != Self::SIZE {
            return Err(PosError::WrongProofSize {
                expected: Self::SIZE,
                len: bytes.len(),
            });
        }
        let mut proof = Self {
            bytes: [0; MAX_PROOF_BYTES],
        };
        proof.bytes[..Self::SIZE].copy_from_slice(bytes);
        Ok(proof)
    }

    /// Packs 64 x values (each below `2^k`) in proof order.
    pub(super) fn from_x_values(xs: &[u32; PROOF_X_VALUES]) -> Self {
        let mut bytes = [0u8; MAX_PROOF_BYTES];
        let mut accumulator = 0u128;
        let mut pending = 0u32;
        let mut out = 0usize;
        for &x in xs {
            accumulator = (accumulator << K) | u128::from(x);
            pending += u32::from(K);
            while pending >= 8 {
                pending -= 8;
                bytes[out] = (accumulator >> pending) as u8;
                out += 1;
            }
        }
        Self { bytes }
    }

    /// The encoded proof (`8·k` bytes).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..Self::SIZE]
    }

    /// The 64 x values in proof order.
    pub fn x_values(&self) -> [u64; PROOF_X_VALUES] {
        // `read_bits` reads 8 bytes at a time: the buffer has 8 zero bytes beyond any proof.
        let mut padded = [0u8; MAX_PROOF_BYTES + 8];
        padded[..Self::SIZE].copy_from_slice(self.as_bytes());
        std::array::from_fn(|i| read_bits(&padded, i * usize::from(K), u32::from(K)))
    }

    /// The proof's quality (its chunk's mask): `H(pos_ctx, proof bytes)`.
    pub fn quality(&self) -> ProofQuality {
        ProofQuality::of_proof_bytes(self.as_bytes())
    }
}

impl<const K: u8> BorshSerialize for Proof<K> {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        writer.write_all(self.as_bytes())
    }
}

impl<const K: u8> BorshDeserialize for Proof<K> {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let mut bytes = [0u8; MAX_PROOF_BYTES];
        reader.read_exact(&mut bytes[..Self::SIZE])?;
        Ok(Self { bytes })
    }
}

/// Re-evaluates the tree of a proof: `f1` of its 64 x values, then for each table 2..=7 checks that every
/// pair matches and computes `f`. Returns the `k + 6`-bit table-7 value, or which match failed.
pub fn evaluate_proof<const K: u8>(seed: &PosSeed, proof: &Proof<K>) -> Result<u64, PosError> {
    let xs = proof.x_values();
    let mut ys: [u64; PROOF_X_VALUES] = std::array::from_fn(|i| compute_f1::<K>(seed, xs[i]));
    let mut metas: [u128; PROOF_X_VALUES] = xs.map(u128::from);
    let mut len = PROOF_X_VALUES;
    for table in 2..=7u8 {
        len /= 2;
        for pair in 0..len {
            let (left_y, right_y) = (ys[2 * pair], ys[2 * pair + 1]);
            if !is_match(left_y, right_y) {
                return Err(PosError::NoMatch { table, pair });
            }
            let (y, meta) = compute_fx::<K>(table, left_y, metas[2 * pair], metas[2 * pair + 1]);
            ys[pair] = y;
            metas[pair] = meta;
        }
    }
    Ok(ys[0])
}

/// Verifies a proof of space for `challenge` against `seed` (stateless; the caller has already derived the
/// seed and the challenge from the solution). Returns the proof's quality. Never panics on any proof bytes.
pub fn verify<const K: u8>(
    seed: &PosSeed,
    challenge: ChallengeIndex,
    proof: &Proof<K>,
) -> Result<ProofQuality, PosError> {
    if u64::from(challenge.0) >> K != 0 {
        return Err(PosError::ChallengeOutOfRange {
            index: challenge.0,
            k: K,
        });
    }
    let found = evaluate_proof(seed, proof)? >> PARAM_EXT;
    if found != u64::from(challenge.0) {
        return Err(PosError::WrongTarget {
            expected: challenge.0,
            found: found as u32,
        });
    }
    Ok(proof.quality())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips() {
        let xs: [u32; PROOF_X_VALUES] =
            std::array::from_fn(|i| (i as u32).wrapping_mul(2_654_435_761) & 0xfff);
        let proof = Proof::<12>::from_x_values(&xs);
        assert_eq!(proof.as_bytes().len(), 96);
        assert_eq!(proof.x_values(), xs.map(u64::from));
        let decoded = Proof::<12>::from_bytes(proof.as_bytes()).expect("right size");
        assert_eq!(decoded, proof);
        assert!(Proof::<12>::from_bytes(&[0; 95]).is_err());
        let encoded = borsh::to_vec(&proof).expect("vec");
        assert_eq!(encoded, proof.as_bytes());
        assert_eq!(borsh::from_slice::<Proof<12>>(&encoded).ok(), Some(proof));
    }
}
