//! Many independent Merkle nodes hashed at once.
//!
//! Every interior node is `BLAKE3-keyed(node_key, left ‖ right)`: exactly one compression of one 64-byte
//! block. Hashed one at a time that compression is latency-bound (≈ 60 ns here); the nodes of a tree level
//! are independent, so this module runs the BLAKE3 compression function over [`LANES`] nodes at once, word
//! by word across lanes, which the compiler turns into SIMD instructions (SSE2 everywhere, AVX2 when the
//! CPU has it, chosen at run time). The output is bit-for-bit `blake3::keyed_hash`; a test checks it
//! against the `blake3` crate for random keys and blocks.

/// Nodes hashed per call.
pub(crate) const LANES: usize = 8;

type Lanes = [u32; LANES];

const IV: [u32; 8] = [
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
];
/// CHUNK_START | CHUNK_END | ROOT | KEYED_HASH: a one-block keyed hash.
const FLAGS: u32 = 1 | 2 | 8 | 16;
const BLOCK_LEN: u32 = 64;
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
fn hash_lanes_generic(key: &[u32; 8], blocks: &[[u8; 64]; LANES], out: &mut [[u8; 32]; LANES]) {
    let message: [Lanes; 16] = std::array::from_fn(|word| {
        std::array::from_fn(|lane| {
            let bytes = &blocks[lane][4 * word..4 * word + 4];
            u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
        })
    });
    let mut v: [Lanes; 16] = std::array::from_fn(|word| match word {
        0..8 => [key[word]; LANES],
        8..12 => [IV[word - 8]; LANES],
        14 => [BLOCK_LEN; LANES],
        15 => [FLAGS; LANES],
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
#[target_feature(enable = "avx2")]
fn hash_lanes_avx2(key: &[u32; 8], blocks: &[[u8; 64]; LANES], out: &mut [[u8; 32]; LANES]) {
    hash_lanes_generic(key, blocks, out);
}

/// `out[i] = BLAKE3-keyed(key, blocks[i])` for [`LANES`] independent 64-byte blocks.
pub(crate) fn hash_lanes(key: &[u8; 32], blocks: &[[u8; 64]; LANES], out: &mut [[u8; 32]; LANES]) {
    let key: [u32; 8] = std::array::from_fn(|i| {
        u32::from_le_bytes([key[4 * i], key[4 * i + 1], key[4 * i + 2], key[4 * i + 3]])
    });
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        #[allow(unsafe_code)]
        // SAFETY: `hash_lanes_avx2` only requires AVX2, which was detected on this CPU just above.
        unsafe {
            hash_lanes_avx2(&key, blocks, out)
        };
        return;
    }
    hash_lanes_generic(&key, blocks, out);
}

#[cfg(test)]
mod tests {
    use rand::{RngCore, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn matches_the_blake3_crate() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..50 {
            let mut key = [0u8; 32];
            rng.fill_bytes(&mut key);
            let mut blocks = [[0u8; 64]; LANES];
            blocks.iter_mut().for_each(|block| rng.fill_bytes(block));
            let mut out = [[0u8; 32]; LANES];
            hash_lanes(&key, &blocks, &mut out);
            for (block, out) in blocks.iter().zip(&out) {
                assert_eq!(out, blake3::keyed_hash(&key, block).as_bytes());
            }
            let key_words: [u32; 8] =
                std::array::from_fn(|i| u32::from_le_bytes(key[4 * i..4 * i + 4].try_into().unwrap()));
            let mut generic = [[0u8; 32]; LANES];
            hash_lanes_generic(&key_words, &blocks, &mut generic);
            assert_eq!(generic, out);
        }
    }
}
