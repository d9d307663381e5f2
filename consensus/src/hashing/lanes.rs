//! Many independent one-block BLAKE3 hashes at once.
//!
//! A Merkle interior node is `BLAKE3-keyed(node_key, left ‖ right)`, an audit value hashes one 32-byte
//! chunk under the sector's slot challenge, and each proof-of-space table entry is the plain BLAKE3 of at
//! most 30 bytes: each is exactly one compression of one block. Hashed one at a time that compression is
//! latency-bound (≈ 60 ns); the inputs of a tree level, an s-bucket or a table are independent, so this
//! module runs the BLAKE3 compression function over [`LANES`] inputs at once, word by
//! word across lanes: with AVX2 intrinsics when the CPU has them (checked at run time), otherwise with
//! portable code the compiler vectorises as it can. The output is bit-for-bit `blake3::keyed_hash`; tests
//! check it against the `blake3` crate for random keys and inputs of both lengths.

/// Inputs hashed per call.
pub const LANES: usize = 8;

type Lanes = [u32; LANES];

const IV: [u32; 8] = [
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
];
/// CHUNK_START | CHUNK_END | ROOT: a one-block hash.
const ONE_BLOCK: u32 = 1 | 2 | 8;
/// [`ONE_BLOCK`] | KEYED_HASH: a one-block keyed hash.
const KEYED: u32 = ONE_BLOCK | 16;
const PERMUTATION: [usize; 16] = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];

/// The message word order of each of the seven rounds.
const SCHEDULE: [[usize; 16]; 7] = {
    let mut schedule = [[0usize; 16]; 7];
    let mut word = 0;
    while word < 16 {
        schedule[0][word] = word;
        word += 1;
    }
    let mut round = 1;
    while round < 7 {
        let mut word = 0;
        while word < 16 {
            schedule[round][word] = schedule[round - 1][PERMUTATION[word]];
            word += 1;
        }
        round += 1;
    }
    schedule
};

#[inline(always)]
fn add(a: &Lanes, b: &Lanes) -> Lanes {
    std::array::from_fn(|lane| a[lane].wrapping_add(b[lane]))
}

#[inline(always)]
fn xor_rotate(a: &Lanes, b: &Lanes, by: u32) -> Lanes {
    std::array::from_fn(|lane| (a[lane] ^ b[lane]).rotate_right(by))
}

#[inline(always)]
fn g(v: &mut [Lanes; 16], [a, b, c, d]: [usize; 4], x: &Lanes, y: &Lanes) {
    v[a] = add(&add(&v[a], &v[b]), x);
    v[d] = xor_rotate(&v[d], &v[a], 16);
    v[c] = add(&v[c], &v[d]);
    v[b] = xor_rotate(&v[b], &v[c], 12);
    v[a] = add(&add(&v[a], &v[b]), y);
    v[d] = xor_rotate(&v[d], &v[a], 8);
    v[c] = add(&v[c], &v[d]);
    v[b] = xor_rotate(&v[b], &v[c], 7);
}

#[inline(always)]
fn hash_lanes_generic(
    key: &[u32; 8],
    blocks: &[[u8; 64]; LANES],
    block_len: u32,
    flags: u32,
    out: &mut [[u8; 32]; LANES],
) {
    let message: [Lanes; 16] = std::array::from_fn(|word| {
        std::array::from_fn(|lane| {
            let bytes = &blocks[lane][4 * word..4 * word + 4];
            u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
        })
    });
    let mut v: [Lanes; 16] = std::array::from_fn(|word| match word {
        0..8 => [key[word]; LANES],
        8..12 => [IV[word - 8]; LANES],
        14 => [block_len; LANES],
        15 => [flags; LANES],
        _ => [0; LANES], // the 64-bit block counter
    });
    for schedule in &SCHEDULE {
        let m = |i: usize| &message[schedule[i]];
        g(&mut v, [0, 4, 8, 12], m(0), m(1));
        g(&mut v, [1, 5, 9, 13], m(2), m(3));
        g(&mut v, [2, 6, 10, 14], m(4), m(5));
        g(&mut v, [3, 7, 11, 15], m(6), m(7));
        g(&mut v, [0, 5, 10, 15], m(8), m(9));
        g(&mut v, [1, 6, 11, 12], m(10), m(11));
        g(&mut v, [2, 7, 8, 13], m(12), m(13));
        g(&mut v, [3, 4, 9, 14], m(14), m(15));
    }
    for (lane, out) in out.iter_mut().enumerate() {
        for word in 0..8 {
            out[4 * word..4 * word + 4].copy_from_slice(&(v[word][lane] ^ v[word + 8][lane]).to_le_bytes());
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    //! The compression across 8 lanes with AVX2 intrinsics (the layout of the `blake3` crate's own
    //! `hash_many`): message words are transposed so that each 256-bit register holds one word of all
    //! eight blocks.

    use std::arch::x86_64::*;

    use super::{IV, KEYED, LANES, SCHEDULE};

    #[inline]
    #[target_feature(enable = "avx2")]
    fn rot16(x: __m256i) -> __m256i {
        _mm256_shuffle_epi8(
            x,
            _mm256_set_epi8(
                13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2, 13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7,
                6, 1, 0, 3, 2,
            ),
        )
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn rot8(x: __m256i) -> __m256i {
        _mm256_shuffle_epi8(
            x,
            _mm256_set_epi8(
                12, 15, 14, 13, 8, 11, 10, 9, 4, 7, 6, 5, 0, 3, 2, 1, 12, 15, 14, 13, 8, 11, 10, 9, 4, 7, 6,
                5, 0, 3, 2, 1,
            ),
        )
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn rot12(x: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_srli_epi32::<12>(x), _mm256_slli_epi32::<20>(x))
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn rot7(x: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_srli_epi32::<7>(x), _mm256_slli_epi32::<25>(x))
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn g(v: &mut [__m256i; 16], a: usize, b: usize, c: usize, d: usize, x: __m256i, y: __m256i) {
        v[a] = _mm256_add_epi32(_mm256_add_epi32(v[a], v[b]), x);
        v[d] = rot16(_mm256_xor_si256(v[d], v[a]));
        v[c] = _mm256_add_epi32(v[c], v[d]);
        v[b] = rot12(_mm256_xor_si256(v[b], v[c]));
        v[a] = _mm256_add_epi32(_mm256_add_epi32(v[a], v[b]), y);
        v[d] = rot8(_mm256_xor_si256(v[d], v[a]));
        v[c] = _mm256_add_epi32(v[c], v[d]);
        v[b] = rot7(_mm256_xor_si256(v[b], v[c]));
    }

    /// Transposes an 8×8 matrix of 32-bit words held as eight rows.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn transpose(rows: &mut [__m256i; 8]) {
        let ab_0145 = _mm256_unpacklo_epi32(rows[0], rows[1]);
        let ab_2367 = _mm256_unpackhi_epi32(rows[0], rows[1]);
        let cd_0145 = _mm256_unpacklo_epi32(rows[2], rows[3]);
        let cd_2367 = _mm256_unpackhi_epi32(rows[2], rows[3]);
        let ef_0145 = _mm256_unpacklo_epi32(rows[4], rows[5]);
        let ef_2367 = _mm256_unpackhi_epi32(rows[4], rows[5]);
        let gh_0145 = _mm256_unpacklo_epi32(rows[6], rows[7]);
        let gh_2367 = _mm256_unpackhi_epi32(rows[6], rows[7]);
        let abcd_04 = _mm256_unpacklo_epi64(ab_0145, cd_0145);
        let abcd_15 = _mm256_unpackhi_epi64(ab_0145, cd_0145);
        let abcd_26 = _mm256_unpacklo_epi64(ab_2367, cd_2367);
        let abcd_37 = _mm256_unpackhi_epi64(ab_2367, cd_2367);
        let efgh_04 = _mm256_unpacklo_epi64(ef_0145, gh_0145);
        let efgh_15 = _mm256_unpackhi_epi64(ef_0145, gh_0145);
        let efgh_26 = _mm256_unpacklo_epi64(ef_2367, gh_2367);
        let efgh_37 = _mm256_unpackhi_epi64(ef_2367, gh_2367);
        rows[0] = _mm256_permute2x128_si256::<0x20>(abcd_04, efgh_04);
        rows[1] = _mm256_permute2x128_si256::<0x20>(abcd_15, efgh_15);
        rows[2] = _mm256_permute2x128_si256::<0x20>(abcd_26, efgh_26);
        rows[3] = _mm256_permute2x128_si256::<0x20>(abcd_37, efgh_37);
        rows[4] = _mm256_permute2x128_si256::<0x31>(abcd_04, efgh_04);
        rows[5] = _mm256_permute2x128_si256::<0x31>(abcd_15, efgh_15);
        rows[6] = _mm256_permute2x128_si256::<0x31>(abcd_26, efgh_26);
        rows[7] = _mm256_permute2x128_si256::<0x31>(abcd_37, efgh_37);
    }

    /// The compression of one block per lane: the final state words, before the output XOR.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn compress(key: &[u32; 8], message: &[__m256i; 16], block_len: u32, flags: u32) -> [__m256i; 16] {
        let splat = |word: u32| _mm256_set1_epi32(word as i32);
        let mut v: [__m256i; 16] = std::array::from_fn(|word| match word {
            0..8 => splat(key[word]),
            8..12 => splat(IV[word - 8]),
            14 => splat(block_len),
            15 => splat(flags),
            _ => _mm256_setzero_si256(),
        });
        for schedule in &SCHEDULE {
            let m = |i: usize| message[schedule[i]];
            g(&mut v, 0, 4, 8, 12, m(0), m(1));
            g(&mut v, 1, 5, 9, 13, m(2), m(3));
            g(&mut v, 2, 6, 10, 14, m(4), m(5));
            g(&mut v, 3, 7, 11, 15, m(6), m(7));
            g(&mut v, 0, 5, 10, 15, m(8), m(9));
            g(&mut v, 1, 6, 11, 12, m(10), m(11));
            g(&mut v, 2, 7, 8, 13, m(12), m(13));
            g(&mut v, 3, 4, 9, 14, m(14), m(15));
        }
        v
    }

    /// Loads 32 bytes of each lane's input as message words, transposed (word `w` of every lane in
    /// register `w`).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn load_words(inputs: [&[u8; 32]; LANES]) -> [__m256i; 8] {
        let mut rows: [__m256i; 8] = std::array::from_fn(|lane| {
            // SAFETY: each input is 32 readable bytes; the unaligned 32-byte load stays inside it.
            unsafe { _mm256_loadu_si256(inputs[lane].as_ptr().cast()) }
        });
        transpose(&mut rows);
        rows
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn hash_lanes(
        key: &[u32; 8],
        blocks: &[[u8; 64]; LANES],
        block_len: u32,
        flags: u32,
        out: &mut [[u8; 32]; LANES],
    ) {
        let halves = |offset: usize| -> [&[u8; 32]; LANES] {
            std::array::from_fn(|lane| {
                blocks[lane][offset..offset + 32]
                    .try_into()
                    .expect("32 of a block's 64 bytes")
            })
        };
        let low = load_words(halves(0));
        let high = load_words(halves(32));
        let message: [__m256i; 16] =
            std::array::from_fn(|word| if word < 8 { low[word] } else { high[word - 8] });
        let v = compress(key, &message, block_len, flags);
        let mut words: [__m256i; 8] = std::array::from_fn(|word| _mm256_xor_si256(v[word], v[word + 8]));
        transpose(&mut words);
        for (lane, out) in out.iter_mut().enumerate() {
            // SAFETY: `out` is 32 writable bytes; the unaligned 32-byte store stays inside it.
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), words[lane]) };
        }
    }

    /// The first 8 bytes (LE) of each lane's one-block keyed hash of a 32-byte input: the message's upper
    /// half is zero and only output words 0 and 1 are formed.
    #[target_feature(enable = "avx2")]
    pub(super) fn prefix_lanes_32(key: &[u32; 8], inputs: &[[u8; 32]; LANES]) -> [u64; LANES] {
        let low = load_words(std::array::from_fn(|lane| &inputs[lane]));
        let message: [__m256i; 16] = std::array::from_fn(|word| {
            if word < 8 {
                low[word]
            } else {
                _mm256_setzero_si256()
            }
        });
        let v = compress(key, &message, 32, KEYED);
        let mut first = [0u32; LANES];
        let mut second = [0u32; LANES];
        // SAFETY: each array is 32 writable bytes; the unaligned 32-byte stores stay inside them.
        unsafe {
            _mm256_storeu_si256(first.as_mut_ptr().cast(), _mm256_xor_si256(v[0], v[8]));
            _mm256_storeu_si256(second.as_mut_ptr().cast(), _mm256_xor_si256(v[1], v[9]));
        }
        std::array::from_fn(|lane| u64::from(first[lane]) | u64::from(second[lane]) << 32)
    }
}

/// `out[i] = BLAKE3-keyed(key, blocks[i])` for [`LANES`] independent 64-byte blocks.
pub fn keyed_hash_lanes(key: &[u8; 32], blocks: &[[u8; 64]; LANES], out: &mut [[u8; 32]; LANES]) {
    hash_lanes(&words(key), blocks, 64, KEYED, out);
}

/// `out[i] = BLAKE3(blocks[i][..len])` for [`LANES`] independent inputs of the same length `len ≤ 64`.
/// The bytes of each block past `len` must be zero (BLAKE3 pads a short block with zeros).
pub fn hash_short_lanes(blocks: &[[u8; 64]; LANES], len: usize, out: &mut [[u8; 32]; LANES]) {
    assert!(len <= 64, "one block holds at most 64 bytes");
    debug_assert!(
        blocks
            .iter()
            .all(|block| block[len..].iter().all(|&byte| byte == 0))
    );
    // Casts: `len` ≤ 64, checked above.
    #[allow(clippy::cast_possible_truncation)]
    hash_lanes(&IV, blocks, len as u32, ONE_BLOCK, out);
}

/// The first 8 bytes (little-endian) of `BLAKE3-keyed(key, inputs[i])` for [`LANES`] independent
/// 32-byte inputs: audit values.
pub fn keyed_hash_32_prefix_lanes(key: &[u8; 32], inputs: &[[u8; 32]; LANES]) -> [u64; LANES] {
    let key_words = words(key);
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        #[allow(unsafe_code)]
        // SAFETY: `avx2::prefix_lanes_32` only requires AVX2, which was detected on this CPU just above.
        return unsafe { avx2::prefix_lanes_32(&key_words, inputs) };
    }
    // A 32-byte input is one block of length 32, zero-padded.
    let blocks: [[u8; 64]; LANES] = std::array::from_fn(|lane| {
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&inputs[lane]);
        block
    });
    let mut out = [[0u8; 32]; LANES];
    hash_lanes_generic(&key_words, &blocks, 32, KEYED, &mut out);
    out.map(|hash| u64::from_le_bytes(hash[..8].try_into().expect("eight bytes")))
}

fn words(key: &[u8; 32]) -> [u32; 8] {
    std::array::from_fn(|i| u32::from_le_bytes([key[4 * i], key[4 * i + 1], key[4 * i + 2], key[4 * i + 3]]))
}

/// Whether the hashes run on AVX2 on this CPU (for benches).
pub fn lanes_accelerated() -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        return true;
    }
    false
}

fn hash_lanes(
    key: &[u32; 8],
    blocks: &[[u8; 64]; LANES],
    block_len: u32,
    flags: u32,
    out: &mut [[u8; 32]; LANES],
) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        #[allow(unsafe_code)]
        // SAFETY: `avx2::hash_lanes` only requires AVX2, which was detected on this CPU just above.
        unsafe {
            avx2::hash_lanes(key, blocks, block_len, flags, out)
        };
        return;
    }
    hash_lanes_generic(key, blocks, block_len, flags, out);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn matches_the_blake3_crate_for_both_lengths(
            key in any::<[u8; 32]>(),
            halves in any::<[[[u8; 32]; 2]; LANES]>(),
        ) {
            let blocks: [[u8; 64]; LANES] = std::array::from_fn(|lane| {
                let mut block = [0u8; 64];
                block[..32].copy_from_slice(&halves[lane][0]);
                block[32..].copy_from_slice(&halves[lane][1]);
                block
            });
            let mut out = [[0u8; 32]; LANES];
            keyed_hash_lanes(&key, &blocks, &mut out);
            for (block, out) in blocks.iter().zip(&out) {
                prop_assert_eq!(*out, *blake3::keyed_hash(&key, block).as_bytes());
            }
            let key_words: [u32; 8] =
                std::array::from_fn(|i| u32::from_le_bytes(key[4 * i..4 * i + 4].try_into().expect("4")));
            let mut generic = [[0u8; 32]; LANES];
            hash_lanes_generic(&key_words, &blocks, 64, KEYED, &mut generic);
            prop_assert_eq!(generic, out);

            let inputs: [[u8; 32]; LANES] = std::array::from_fn(|lane| halves[lane][0]);
            let prefixes = keyed_hash_32_prefix_lanes(&key, &inputs);
            for (input, prefix) in inputs.iter().zip(prefixes) {
                let hash = blake3::keyed_hash(&key, input);
                prop_assert_eq!(prefix, u64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8")));
            }
        }

        #[test]
        fn short_inputs_match_the_blake3_crate(
            len in 0usize..=64,
            inputs in any::<[[[u8; 32]; 2]; LANES]>(),
        ) {
            let blocks: [[u8; 64]; LANES] = std::array::from_fn(|lane| {
                let mut block = [0u8; 64];
                block[..32].copy_from_slice(&inputs[lane][0]);
                block[32..].copy_from_slice(&inputs[lane][1]);
                block[len..].fill(0);
                block
            });
            let mut out = [[0u8; 32]; LANES];
            hash_short_lanes(&blocks, len, &mut out);
            for (block, out) in blocks.iter().zip(&out) {
                prop_assert_eq!(*out, *blake3::hash(&block[..len]).as_bytes());
            }
            let mut generic = [[0u8; 32]; LANES];
            hash_lanes_generic(&IV, &blocks, len as u32, ONE_BLOCK, &mut generic);
            prop_assert_eq!(generic, out);
        }
    }
}
