//! The AES-128 iteration engine behind proof of time.
//!
//! One iteration is one AES-128 encryption of the 16-byte state under the slot's key. Proving is one long
//! dependent chain, so its speed is the latency of the AES rounds; verifying re-runs the 8 checkpoint
//! segments, which are independent chains under the same key, so they are interleaved to fill the AES
//! pipeline instead of waiting on each round's latency.
//!
//! The `aes` crate detects AES-NI (and VAES) at run time. Its closure API runs our loop inside its own
//! `#[target_feature]` function, so the whole iteration loop is compiled with the AES instructions inlined
//! and the state kept in registers, without any `unsafe` in this crate.

use aes::Aes128;
use aes::cipher::consts::U16;
use aes::cipher::{
    Array, BlockCipherEncBackend, BlockCipherEncClosure, BlockCipherEncrypt, BlockSizeUser, KeyInit,
};

/// A 16-byte AES block.
pub(super) type Block = [u8; 16];

/// Runs `iterations` encryptions on each of `N` independent states in lock step.
struct Chains<'a, const N: usize> {
    states: &'a mut [Array<u8, U16>; N],
    iterations: u32,
}

impl<const N: usize> BlockSizeUser for Chains<'_, N> {
    type BlockSize = U16;
}

impl<const N: usize> BlockCipherEncClosure for Chains<'_, N> {
    #[inline(always)]
    fn call<B: BlockCipherEncBackend<BlockSize = U16>>(self, backend: &B) {
        let mut states = *self.states;
        for _ in 0..self.iterations {
            // The N encryptions are independent: the CPU overlaps their rounds.
            for state in &mut states {
                backend.encrypt_block_inplace(state);
            }
        }
        *self.states = states;
    }
}

/// An expanded AES-128 key.
pub(super) struct Cipher(Aes128);

impl Cipher {
    /// Expands `key`.
    pub(super) fn new(key: &Block) -> Self {
        Self(Aes128::new(&Array::from(*key)))
    }

    /// Encrypts each of the `N` states `iterations` times, interleaving the chains.
    pub(super) fn iterate<const N: usize>(&self, states: [Block; N], iterations: u32) -> [Block; N] {
        let mut arrays = states.map(Array::from);
        self.0.encrypt_with_backend(Chains {
            states: &mut arrays,
            iterations,
        });
        arrays.map(Into::into)
    }
}

/// Whether AES runs on hardware instructions on this machine (for diagnostics and benches).
pub fn hardware_accelerated() -> bool {
    aes::hardware_accelerated()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_fips_197_and_single_block_api() {
        // FIPS-197 appendix C.1 (AES-128).
        let key: Block = hex::decode("000102030405060708090a0b0c0d0e0f")
            .expect("valid hex")
            .try_into()
            .expect("16 bytes");
        let plaintext: Block = hex::decode("00112233445566778899aabbccddeeff")
            .expect("valid hex")
            .try_into()
            .expect("16 bytes");
        let expected = hex::decode("69c4e0d86a7b0430d8cdb78070b4c55a").expect("valid hex");
        let cipher = Cipher::new(&key);
        assert_eq!(cipher.iterate([plaintext], 1)[0].as_slice(), expected.as_slice());

        let mut block = Array::from(plaintext);
        for _ in 0..5 {
            cipher.0.encrypt_block(&mut block);
        }
        assert_eq!(cipher.iterate([plaintext], 5)[0], <Block>::from(block));
    }

    #[test]
    fn interleaved_chains_equal_separate_chains() {
        let cipher = Cipher::new(&[7; 16]);
        let starts: [Block; 8] = [
            [0; 16], [1; 16], [2; 16], [3; 16], [4; 16], [5; 16], [6; 16], [7; 16],
        ];
        let together = cipher.iterate(starts, 100);
        for (start, end) in starts.iter().zip(together) {
            assert_eq!(cipher.iterate([*start], 100)[0], end);
        }
    }
}
