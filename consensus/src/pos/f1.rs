//! The first table's function `f1`, bit for bit that of chiapos.
//!
//! `f1(x)` takes the `k` bits of a ChaCha8 keystream at bit offset `x·k` (keystream keyed by the 32-byte
//! seed, zero nonce, block counter from 0; bits read big-endian, most significant bit first) and appends the
//! top 6 bits of `x`, giving a `k + 6`-bit `y`. chiapos keys ChaCha8 with `1 ‖ plot_id[..31]`; Acre keys it
//! with the seed itself, so a chiapos plot id maps to the Acre seed `[1, id[0], …, id[30]]`.
//!
//! The zero-nonce IETF ChaCha8 of the `chacha20` crate (32-bit block counter, 96-bit nonce) produces the same
//! keystream as chiapos's original-layout ChaCha8 (64-bit counter, 64-bit nonce) for every block below
//! 2^32, which covers all `x·k` for `k ≤ 32`.

// Casts: bit slicing truncates by design: every narrowed value is masked to its width first.
#![allow(clippy::cast_possible_truncation)]

use chacha20::ChaCha8;
use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};

use super::{PARAM_EXT, PosSeed};

/// Bytes of keystream holding the `k`-bit slices of `count` consecutive x values, plus 8 bytes of padding
/// so every slice can be read as one big-endian `u64`.
pub(super) fn keystream_len(k: u8, count: usize) -> usize {
    (count * usize::from(k)).div_ceil(8) + 8
}

/// Writes the keystream from byte `start` onwards into `out`.
pub(super) fn keystream(seed: &PosSeed, start: u64, out: &mut [u8]) {
    let mut cipher = ChaCha8::new(&seed.0.into(), &[0u8; 12].into());
    cipher.seek(start);
    out.fill(0);
    cipher.apply_keystream(out);
}

/// The `bits`-bit big-endian value at bit offset `bit` of `bytes`; `bytes` must hold 8 bytes from
/// `bit / 8` and `bits` must be in `1..=57`.
#[inline(always)]
pub(super) fn read_bits(bytes: &[u8], bit: usize, bits: u32) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[bit / 8..bit / 8 + 8]);
    (u64::from_be_bytes(word) << (bit % 8)) >> (64 - bits)
}

/// `f1(x)` for one `x < 2^k` (higher bits are ignored), generating only the keystream bytes it needs (for
/// verification).
pub fn compute_f1<const K: u8>(seed: &PosSeed, x: u64) -> u64 {
    let x = x & ((1u64 << K) - 1);
    let bit = x * u64::from(K);
    let mut bytes = [0u8; 16];
    keystream(seed, bit / 8, &mut bytes);
    let partial = read_bits(&bytes, (bit % 8) as usize, u32::from(K));
    (partial << PARAM_EXT) | (x >> (K - PARAM_EXT))
}

/// `f1(x)` from a keystream buffer whose first byte holds the slice of the x at `index` 0 (see
/// [`keystream_len`]); `x` is the x value at `index`. `K ≤ 26`.
#[inline(always)]
pub(super) fn f1_from_keystream<const K: u8>(keystream: &[u8], index: usize, x: u32) -> u32 {
    let bit = index * usize::from(K);
    let partial = read_bits(keystream, bit, u32::from(K)) as u32;
    (partial << PARAM_EXT) | (x >> (K - PARAM_EXT))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// chiapos's test key, as Acre seeds it (`1 ‖ key[..31]`).
    fn chia_seed(key: [u8; 32]) -> PosSeed {
        let mut seed = [1u8; 32];
        seed[1..].copy_from_slice(&key[..31]);
        PosSeed(seed)
    }

    const TEST_KEY: [u8; 32] = [
        0, 2, 3, 4, 5, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 1, 2, 3, 41, 5, 6, 7, 8, 9, 10, 11, 12, 13,
        11, 15, 16,
    ];

    /// chiapos `F functions / F1` inputs with absolute outputs (as published alongside the Rust port of
    /// the chiapos tests in the Subspace proof-of-space crate).
    #[test]
    fn chiapos_f1_known_answers() {
        let seed = chia_seed(TEST_KEY);
        for (x, y) in [
            (525, 2_016_650_816u64),
            (526, 2_063_162_112),
            (625, 1_930_299_520),
        ] {
            assert_eq!(compute_f1::<25>(&seed, x), y, "k=25 x={x}");
        }
        let base = 1_837_491u64;
        for (x, y) in [
            (base, 105_738_140u64),
            (base + 1, 192_213_404),
            (base + 2, 64_977_628),
            (base + 255, 91_711_644),
        ] {
            assert_eq!(compute_f1::<22>(&seed, x), y, "k=22 x={x}");
        }
    }

    #[test]
    fn buffered_and_single_evaluations_agree() {
        let seed = PosSeed([9; 32]);
        let mut stream = vec![0u8; keystream_len(12, 1 << 12)];
        keystream(&seed, 0, &mut stream);
        for x in 0..1u32 << 12 {
            assert_eq!(
                u64::from(f1_from_keystream::<12>(&stream, x as usize, x)),
                compute_f1::<12>(&seed, u64::from(x))
            );
        }
    }
}
