//! The matching function and `f2..f7`, bit for bit those of chiapos.
//!
//! Two entries match when the left one's `y` lies in BC-bucket `b` (`y / 15113`) and the right one's in
//! `b + 1`, and the right one's remainder `r = y mod 15113` is one of the 64 targets of the left remainder:
//! for `m` in `0..64`, `((r_l / 127 + m) mod 119)·127 + ((2m + b mod 2)² + r_l) mod 127`.
//!
//! A matched pair gives an entry of the next table `t`: `f_t = the first k + 6 bits of BLAKE3(y_left ‖
//! meta_left ‖ meta_right)`, the input packed big-endian bit by bit and zero-padded to whole bytes. Metadata
//! is `x` in table 1; for tables 2 and 3 it is `meta_left ‖ meta_right`; for tables 4 to 6 it is the hash
//! bits that follow `y`. Metadata sizes are `k` times 1, 2, 4, 4, 3, 2 and 0 for tables 1 to 7.

// Casts: bit packing truncates by design: every narrowed value is masked or bounded (< BC, < 2^64) first.
#![allow(clippy::cast_possible_truncation)]

use super::{PARAM_B, PARAM_BC, PARAM_C, PARAM_EXT, PARAM_M};

/// Bits of metadata an entry of `table` (1..=7) carries.
pub(super) const fn metadata_bits(k: u8, table: u8) -> u32 {
    let multiple = match table {
        1 => 1,
        2 => 2,
        3 | 4 => 4,
        5 => 3,
        6 => 2,
        _ => 0,
    };
    k as u32 * multiple
}

/// Accumulates a big-endian bit string of up to 320 bits.
struct BitWriter {
    words: [u64; 5],
    len: u32,
}

impl BitWriter {
    const fn new() -> Self {
        Self {
            words: [0; 5],
            len: 0,
        }
    }

    /// Appends the low `bits` (≤ 64) bits of `value` (which has no higher bits set).
    #[inline(always)]
    fn push64(&mut self, value: u64, bits: u32) {
        if bits == 0 {
            return;
        }
        let word = (self.len / 64) as usize;
        let used = self.len % 64;
        let free = 64 - used;
        if bits <= free {
            self.words[word] |= value << (free - bits);
        } else {
            let spill = bits - free;
            self.words[word] |= value >> spill;
            self.words[word + 1] |= value << (64 - spill);
        }
        self.len += bits;
    }

    /// Appends the low `bits` (≤ 128) bits of `value`.
    #[inline(always)]
    fn push(&mut self, value: u128, bits: u32) {
        if bits > 64 {
            self.push64((value >> 64) as u64, bits - 64);
            self.push64(value as u64, 64);
        } else {
            self.push64(value as u64, bits);
        }
    }

    /// Writes the bit string, zero-padded, as 40 big-endian bytes.
    #[inline(always)]
    fn write(&self, out: &mut [u8]) {
        for (chunk, word) in out.chunks_exact_mut(8).zip(self.words) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
    }
}

/// `bits` (1..=128) bits of `hash` starting at bit `start`, big-endian.
#[inline(always)]
fn hash_bits(hash: &[u8; 32], start: u32, bits: u32) -> u128 {
    let first = (start / 8) as usize;
    let mut window = [0u8; 17];
    let available = (32 - first).min(17);
    window[..available].copy_from_slice(&hash[first..first + available]);
    let mut high = [0u8; 16];
    high.copy_from_slice(&window[..16]);
    let shift = start % 8;
    let mut value = u128::from_be_bytes(high) << shift;
    if shift > 0 {
        value |= u128::from(window[16] >> (8 - shift));
    }
    value >> (128 - bits)
}

/// `f_table` (table in 2..=7) of a matched pair: the new `y` (k + 6 bits) and the new entry's metadata.
/// `left_meta` and `right_meta` carry `metadata_bits(K, table - 1)` bits each; `K ≤ 32`.
#[inline(always)]
pub fn compute_fx<const K: u8>(table: u8, left_y: u64, left_meta: u128, right_meta: u128) -> (u64, u128) {
    let mut block = [0u8; 64];
    fx_input::<K>(table, left_y, left_meta, right_meta, &mut block);
    let hash: [u8; 32] = blake3::hash(&block[..fx_input_len(K, table)]).into();
    fx_output::<K>(table, &hash, left_meta, right_meta)
}

/// Bytes of the BLAKE3 input of `f_table` (at most 30 for `k ≤ 26`, so one block).
pub(super) const fn fx_input_len(k: u8, table: u8) -> usize {
    let bits = (k + PARAM_EXT) as u32 + 2 * metadata_bits(k, table.saturating_sub(1));
    bits.div_ceil(8) as usize
}

/// Writes the BLAKE3 input of `f_table` (`y_left ‖ meta_left ‖ meta_right`, zero-padded) into the first
/// 40 bytes of `block`; the bytes past [`fx_input_len`] among them are zero. The hashes of many pairs can
/// then be computed together.
#[inline(always)]
pub(super) fn fx_input<const K: u8>(
    table: u8,
    left_y: u64,
    left_meta: u128,
    right_meta: u128,
    block: &mut [u8; 64],
) {
    let parent_bits = metadata_bits(K, table.saturating_sub(1));
    let mut writer = BitWriter::new();
    writer.push64(left_y, u32::from(K + PARAM_EXT));
    writer.push(left_meta, parent_bits);
    writer.push(right_meta, parent_bits);
    writer.write(&mut block[..40]);
}

/// `f_table`'s new `y` and metadata from the BLAKE3 hash of its input.
#[inline(always)]
pub(super) fn fx_output<const K: u8>(
    table: u8,
    hash: &[u8; 32],
    left_meta: u128,
    right_meta: u128,
) -> (u64, u128) {
    let y_bits = u32::from(K + PARAM_EXT);
    let mut head = [0u8; 8];
    head.copy_from_slice(&hash[..8]);
    let y = u64::from_be_bytes(head) >> (64 - y_bits);
    let meta = match table {
        2 | 3 => (left_meta << metadata_bits(K, table - 1)) | right_meta,
        4..=6 => hash_bits(hash, y_bits, metadata_bits(K, table)),
        _ => 0,
    };
    (y, meta)
}

/// `(2m + parity)² mod C` for every `m`, per parity.
const SQUARES: [[u16; PARAM_M]; 2] = {
    let mut squares = [[0u16; PARAM_M]; 2];
    let mut parity = 0;
    while parity < 2 {
        let mut m = 0;
        while m < PARAM_M {
            let base = 2 * m + parity;
            squares[parity][m] = ((base * base) % PARAM_C as usize) as u16;
            m += 1;
        }
        parity += 1;
    }
    squares
};

/// The 64 remainders a right entry may have to match a left entry with remainder `left_r` (< BC) in a
/// bucket of the given parity.
#[inline(always)]
pub(super) fn match_targets(left_r: u32, parity: usize) -> [u16; PARAM_M] {
    let row = (left_r / u32::from(PARAM_C)) as u16;
    let column = (left_r % u32::from(PARAM_C)) as u16;
    let squares = &SQUARES[parity & 1];
    let mut targets = [0u16; PARAM_M];
    for (m, target) in targets.iter_mut().enumerate() {
        let mut target_row = row + m as u16;
        if target_row >= PARAM_B {
            target_row -= PARAM_B;
        }
        let mut target_column = squares[m] + column;
        if target_column >= PARAM_C {
            target_column -= PARAM_C;
        }
        *target = target_row * PARAM_C + target_column;
    }
    targets
}

/// Whether `left_y` and `right_y` match (in this order).
pub fn is_match(left_y: u64, right_y: u64) -> bool {
    let bc = u64::from(PARAM_BC);
    let left_bucket = left_y / bc;
    if right_y / bc != left_bucket + 1 {
        return false;
    }
    let left_r = (left_y % bc) as u32;
    let right_r = (right_y % bc) as u16;
    match_targets(left_r, (left_bucket % 2) as usize).contains(&right_r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// chiapos `F functions / Fx`: (table, left meta, right meta, left y, expected y, expected meta) at k = 16.
    const FX_VECTORS: [(u8, u128, u128, u64, u64, u128); 12] = [
        (2, 0x44cb, 0x204f, 0x20a61a, 0x2af546, 0x44cb204f),
        (2, 0x3c5f, 0xfda9, 0x3988ec, 0x15293b, 0x3c5ffda9),
        (3, 0x35bf992d, 0x7ce42c82, 0x31e541, 0xf73b3, 0x35bf992d7ce42c82),
        (3, 0x7204e52d, 0xf1fd42a2, 0x28a188, 0x3fb0b5, 0x7204e52df1fd42a2),
        (
            4,
            0x5b6e6e307d4bedc,
            0x8a9a021ea648a7dd,
            0x30cb4c,
            0x11ad5,
            0xd4bd0b144fc26138,
        ),
        (
            4,
            0xb9d179e06c0fd4f5,
            0xf06d3fef701966a0,
            0x1dd5b6,
            0xe69a2,
            0xd02115f512009d4d,
        ),
        (
            5,
            0xc2cd789a380208a9,
            0x19999e3fa46d6753,
            0x25f01e,
            0x1f22bd,
            0xabe423040a33,
        ),
        (
            5,
            0xbe3edc0a1ef2a4f0,
            0x4da98f1d3099fdf5,
            0x3feb18,
            0x31501e,
            0x7300a3a03ac5,
        ),
        (6, 0xc965815a47c5, 0xf5e008d6af57, 0x1f121a, 0x1cabbe, 0xc8cc6947),
        (6, 0xd420677f6cbd, 0x5894aa2ca1af, 0x2efde9, 0xc2121, 0x421bb8ec),
        (7, 0x5fec898f, 0x82283d15, 0x14f410, 0x24c3c2, 0),
        (7, 0x64ac5db9, 0x7923986, 0x590fd, 0x1c74a2, 0),
    ];

    #[test]
    fn chiapos_fx_known_answers() {
        for (table, left, right, y, expected_y, expected_meta) in FX_VECTORS {
            let (new_y, meta) = compute_fx::<16>(table, y, left, right);
            assert_eq!(new_y, expected_y, "table {table}");
            assert_eq!(meta, expected_meta, "table {table}");
        }
    }

    /// chiapos's reference `CheckMatch`, written directly from the matching condition.
    fn reference_match(left_y: u64, right_y: u64) -> bool {
        let (b, c, bc) = (i64::from(PARAM_B), i64::from(PARAM_C), i64::from(PARAM_BC));
        let (yl, yr) = (left_y as i64, right_y as i64);
        if yl / bc + 1 != yr / bc {
            return false;
        }
        (0..PARAM_M as i64).any(|m| {
            let row_ok = ((yr % bc) / c - (yl % bc) / c - m).rem_euclid(b) == 0;
            let square = (2 * m + (yl / bc) % 2).pow(2);
            row_ok && ((yr % bc) % c - (yl % bc) % c - square).rem_euclid(c) == 0
        })
    }

    #[test]
    fn matching_agrees_with_the_reference_condition() {
        let bc = u64::from(PARAM_BC);
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut found = 0;
        for _ in 0..200_000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let left = (state >> 20) % (bc * 40);
            let right = (left / bc + 1) * bc + (state >> 5) % bc;
            assert_eq!(is_match(left, right), reference_match(left, right));
            found += usize::from(is_match(left, right));
        }
        assert!(found > 0);
        // Every target really matches, and the 64 targets are distinct.
        for left_r in (0..PARAM_BC).step_by(97) {
            for parity in 0..2u64 {
                let targets = match_targets(u32::from(left_r), parity as usize);
                let left = parity * bc + u64::from(left_r);
                for &target in &targets {
                    assert!(reference_match(left, (parity + 1) * bc + u64::from(target)));
                }
                let mut sorted = targets.to_vec();
                sorted.sort_unstable();
                sorted.dedup();
                assert_eq!(sorted.len(), PARAM_M);
            }
        }
    }
}
