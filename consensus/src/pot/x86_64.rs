//! Proof-of-time kernels on x86-64 AES instructions: AES-NI (one block per instruction) and VAES on
//! 256-bit registers (two blocks per instruction), chosen at run time.
//!
//! Two tricks make these faster than running whole AES encryptions one after another:
//!
//! - **Merged whitening.** An AES-128 encryption is `k0` XOR, nine rounds, and a last round ending in a
//!   `k10` XOR. Iterating, the `k10` XOR of one encryption and the `k0` XOR of the next are one XOR with
//!   `k10 ^ k0`, which the last round can apply itself. The state is kept "pre-whitened" (`x ^ k0`), so
//!   an iteration is exactly ten dependent AES instructions: the latency bound.
//! - **Meeting in the middle.** A checkpoint segment `c_{i+1} = E^n(c_i)` is checked by encrypting
//!   `c_i` forward `⌈n/2⌉` times and decrypting `c_{i+1}` backward `⌊n/2⌋` times (AES is a permutation)
//!   and comparing in the middle: 16 independent chains for one slot's 8 segments instead of 8, enough to
//!   fill a core's AES units when an instruction carries two blocks.
//!
//! This is the only `unsafe` in the crate: calling `#[target_feature]` functions after the run-time
//! check, and reinterpreting 16-byte arrays as SIMD registers. Every kernel is checked bit for bit
//! against the portable `aes`-crate path (`super::portable`) in the tests below.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::chain::Block;

/// Which instructions the kernels run on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// VAES on 256-bit registers (with AVX2): two blocks per instruction.
    Vaes256,
    /// AES-NI: one block per instruction.
    AesNi,
}

impl Kernel {
    /// The best kernel this CPU supports, if any.
    pub(crate) fn detect() -> Option<Self> {
        if is_x86_feature_detected!("vaes")
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("aes")
        {
            Some(Self::Vaes256)
        } else if is_x86_feature_detected!("aes") {
            Some(Self::AesNi)
        } else {
            None
        }
    }
}

/// An AES-128 key schedule in the form the kernels use.
#[derive(Clone, Copy)]
pub(crate) struct Keys {
    /// `k0`: whitening on the way in and out of the pre-whitened form.
    k0: __m128i,
    /// `k1 ..= k9`: the encryption rounds.
    enc: [__m128i; 9],
    /// `InvMixColumns(k9) ..= InvMixColumns(k1)`: the equivalent inverse cipher's rounds.
    dec: [__m128i; 9],
    /// `k10 ^ k0`: the last round's key with the next encryption's whitening merged in.
    merged: __m128i,
    /// `k10`: the backward chains' whitening.
    k10: __m128i,
}

fn to_register(block: &Block) -> __m128i {
    // SAFETY: `__m128i` and `[u8; 16]` have the same size and every bit pattern is valid for both.
    unsafe { std::mem::transmute::<Block, __m128i>(*block) }
}

fn to_block(register: __m128i) -> Block {
    // SAFETY: as in `to_register`.
    unsafe { std::mem::transmute::<__m128i, Block>(register) }
}

#[target_feature(enable = "aes")]
fn expand_round<const RCON: i32>(previous: __m128i) -> __m128i {
    let assist = _mm_shuffle_epi32::<0xff>(_mm_aeskeygenassist_si128::<RCON>(previous));
    let mut key = previous;
    key = _mm_xor_si128(key, _mm_slli_si128::<4>(key));
    key = _mm_xor_si128(key, _mm_slli_si128::<4>(key));
    key = _mm_xor_si128(key, _mm_slli_si128::<4>(key));
    _mm_xor_si128(key, assist)
}

#[target_feature(enable = "aes")]
fn expand(key: &Block) -> Keys {
    let mut round = [_mm_setzero_si128(); 11];
    round[0] = to_register(key);
    round[1] = expand_round::<0x01>(round[0]);
    round[2] = expand_round::<0x02>(round[1]);
    round[3] = expand_round::<0x04>(round[2]);
    round[4] = expand_round::<0x08>(round[3]);
    round[5] = expand_round::<0x10>(round[4]);
    round[6] = expand_round::<0x20>(round[5]);
    round[7] = expand_round::<0x40>(round[6]);
    round[8] = expand_round::<0x80>(round[7]);
    round[9] = expand_round::<0x1b>(round[8]);
    round[10] = expand_round::<0x36>(round[9]);
    Keys {
        k0: round[0],
        enc: std::array::from_fn(|index| round[index + 1]),
        dec: std::array::from_fn(|index| _mm_aesimc_si128(round[9 - index])),
        merged: _mm_xor_si128(round[10], round[0]),
        k10: round[10],
    }
}

impl Keys {
    /// Expands `key`; `None` without AES-NI.
    pub(crate) fn new(key: &Block) -> Option<Self> {
        // SAFETY: `expand` needs AES-NI, checked first.
        is_x86_feature_detected!("aes").then(|| unsafe { expand(key) })
    }
}

/// One pre-whitened forward iteration: ten dependent AES instructions.
#[target_feature(enable = "aes")]
#[inline]
fn forward(state: __m128i, keys: &Keys) -> __m128i {
    let mut state = state;
    for key in &keys.enc {
        state = _mm_aesenc_si128(state, *key);
    }
    _mm_aesenclast_si128(state, keys.merged)
}

/// Proves: `per_checkpoint` encryptions of the running state, recorded 8 times.
#[target_feature(enable = "aes")]
fn prove_ni(seed: &Block, keys: &Keys, per_checkpoint: u32) -> [Block; 8] {
    let mut state = _mm_xor_si128(to_register(seed), keys.k0);
    let mut checkpoints = [[0u8; 16]; 8];
    for checkpoint in &mut checkpoints {
        for _ in 0..per_checkpoint {
            state = forward(state, keys);
        }
        *checkpoint = to_block(_mm_xor_si128(state, keys.k0));
    }
    checkpoints
}

/// Proves one slot with AES-NI.
pub(crate) fn prove(seed: &Block, keys: &Keys, per_checkpoint: u32) -> [Block; 8] {
    // SAFETY: `Keys` exist only where AES-NI was detected (`Keys::new`), the only feature needed.
    unsafe { prove_ni(seed, keys, per_checkpoint) }
}

/// Meets in the middle on `N` segments with AES-NI: `starts[i]` forward, `ends[i]` backward. Returns a
/// bit per segment that does not meet.
#[target_feature(enable = "aes")]
fn verify_ni<const N: usize>(starts: &[Block; N], ends: &[Block; N], keys: &Keys, iterations: u32) -> u32 {
    let mut forward_states = starts.map(|start| _mm_xor_si128(to_register(&start), keys.k0));
    let mut backward_states = ends.map(|end| _mm_xor_si128(to_register(&end), keys.k10));
    for _ in 0..iterations / 2 {
        for round in 0..9 {
            for state in &mut forward_states {
                *state = _mm_aesenc_si128(*state, keys.enc[round]);
            }
            for state in &mut backward_states {
                *state = _mm_aesdec_si128(*state, keys.dec[round]);
            }
        }
        for state in &mut forward_states {
            *state = _mm_aesenclast_si128(*state, keys.merged);
        }
        for state in &mut backward_states {
            *state = _mm_aesdeclast_si128(*state, keys.merged);
        }
    }
    if iterations % 2 == 1 {
        for state in &mut forward_states {
            *state = forward(*state, keys);
        }
    }
    // Forward states are `m ^ k0`, backward ones `m ^ k10`: they meet where they differ by `k10 ^ k0`.
    let mut mismatches = 0;
    for (index, (forward, backward)) in forward_states.iter().zip(&backward_states).enumerate() {
        let difference = _mm_xor_si128(_mm_xor_si128(*forward, *backward), keys.merged);
        let zero = _mm_movemask_epi8(_mm_cmpeq_epi8(difference, _mm_setzero_si128())) == 0xffff;
        mismatches |= u32::from(!zero) << index;
    }
    mismatches
}

fn pair(low: &Block, high: &Block) -> __m256i {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(low);
    bytes[16..].copy_from_slice(high);
    // SAFETY: `__m256i` and `[u8; 32]` have the same size and every bit pattern is valid for both.
    unsafe { std::mem::transmute::<[u8; 32], __m256i>(bytes) }
}

fn unpair(register: __m256i) -> [u8; 32] {
    // SAFETY: as in `pair`.
    unsafe { std::mem::transmute::<__m256i, [u8; 32]>(register) }
}

/// Meets in the middle on `2 × H` segments with VAES, two segments per 256-bit register. Returns a bit
/// per segment that does not meet.
#[target_feature(enable = "aes,avx2,vaes")]
fn verify_vaes<const H: usize>(
    starts: &[[Block; 2]; H],
    ends: &[[Block; 2]; H],
    keys: &Keys,
    iterations: u32,
) -> u32 {
    let wide = |key: __m128i| _mm256_broadcastsi128_si256(key);
    let (k0, k10, merged) = (wide(keys.k0), wide(keys.k10), wide(keys.merged));
    let enc = keys.enc.map(wide);
    let dec = keys.dec.map(wide);
    let mut forward_states = starts.map(|[low, high]| _mm256_xor_si256(pair(&low, &high), k0));
    let mut backward_states = ends.map(|[low, high]| _mm256_xor_si256(pair(&low, &high), k10));
    for _ in 0..iterations / 2 {
        for round in 0..9 {
            for state in &mut forward_states {
                *state = _mm256_aesenc_epi128(*state, enc[round]);
            }
            for state in &mut backward_states {
                *state = _mm256_aesdec_epi128(*state, dec[round]);
            }
        }
        for state in &mut forward_states {
            *state = _mm256_aesenclast_epi128(*state, merged);
        }
        for state in &mut backward_states {
            *state = _mm256_aesdeclast_epi128(*state, merged);
        }
    }
    if iterations % 2 == 1 {
        for state in &mut forward_states {
            for key in &enc {
                *state = _mm256_aesenc_epi128(*state, *key);
            }
            *state = _mm256_aesenclast_epi128(*state, merged);
        }
    }
    let mut mismatches = 0;
    for (index, (forward, backward)) in forward_states.iter().zip(&backward_states).enumerate() {
        let difference = unpair(_mm256_xor_si256(_mm256_xor_si256(*forward, *backward), merged));
        for (half, bytes) in difference.chunks_exact(16).enumerate() {
            mismatches |= u32::from(bytes.iter().any(|byte| *byte != 0)) << (2 * index + half);
        }
    }
    mismatches
}

/// Checks a slot's 8 segments: segment `i` must lead from `starts[i]` to `ends[i]` in `iterations`
/// encryptions. Returns a bit per segment that does not.
pub(crate) fn verify(
    kernel: Kernel,
    starts: &[Block; 8],
    ends: &[Block; 8],
    keys: &Keys,
    iterations: u32,
) -> u32 {
    match kernel {
        Kernel::Vaes256 => {
            let pairs = |blocks: &[Block; 8]| -> [[Block; 2]; 4] {
                std::array::from_fn(|pair| [blocks[2 * pair], blocks[2 * pair + 1]])
            };
            // SAFETY: `Kernel::Vaes256` is only detected where AES-NI, AVX2 and VAES are all present.
            unsafe { verify_vaes(&pairs(starts), &pairs(ends), keys, iterations) }
        }
        // AES-NI carries one block per instruction, so 8 chains already fill the AES units, and 16
        // would not fit the 16 XMM registers: two passes of 4 segments from both ends.
        Kernel::AesNi => {
            let half = |blocks: &[Block; 8], from: usize| -> [Block; 4] {
                std::array::from_fn(|i| blocks[from + i])
            };
            // SAFETY: `Keys` exist only where AES-NI was detected, the only feature `verify_ni` needs.
            let (low, high) = unsafe {
                (
                    verify_ni(&half(starts, 0), &half(ends, 0), keys, iterations),
                    verify_ni(&half(starts, 4), &half(ends, 4), keys, iterations),
                )
            };
            low | high << 4
        }
    }
}
