//! Proof of time (spec section 6): iterated AES-128 with checkpoints, and the slot challenges derived from it.
//!
//! A timekeeper turns each slot's [`PotSeed`] into [`PotCheckpoints`] by encrypting the seed `iterations`
//! times with AES-128 under the slot's [`PotKey`] (derived from the seed), recording the state after every
//! `iterations / 8` encryptions. The last checkpoint is the slot's [`PotOutput`]; it yields the next slot's
//! seed ([`PotOutput::next_seed`], or [`PotOutput::next_seed_with_entropy`] at an entropy injection) and the
//! slot's global challenge ([`slot_challenge`]) that farmers audit against.
//!
//! Proving is inherently sequential: every encryption depends on the previous one, so its speed is the
//! latency of the AES rounds on one core. Verifying is not: the 8 checkpoint segments start from known
//! states and are independent chains under one key, and each can also be run backward from its end
//! (AES is a permutation) to meet in the middle, so [`verify`] runs 16 interleaved chains and costs about
//! a sixteenth of proving where the CPU's AES units are wide enough (VAES). [`PotKernel`] names the
//! implementations: hand-written AES-NI and VAES kernels on x86-64, the `aes` crate elsewhere.
//!
//! Everything here is a pure function of its inputs.

mod chain;
mod engine;
#[cfg(target_arch = "x86_64")]
mod x86_64;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::hashing::{self, Blake3Hash, HashContext};
use crate::quantities::SlotNumber;

pub use chain::hardware_accelerated;
pub use engine::PotKernel;

use chain::Block;
use engine::Engine;

/// Checkpoints per slot (the spec fixes 8; `ProtocolParams::pot_checkpoints` must equal it).
pub const POT_CHECKPOINTS: usize = 8;

/// Size of a seed, key, checkpoint or output: one AES block.
pub const POT_BLOCK_SIZE: usize = 16;

macro_rules! pot_bytes {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash,
            BorshSerialize, BorshDeserialize, Serialize, Deserialize,
        )]
        pub struct $name(pub [u8; POT_BLOCK_SIZE]);

        impl $name {
            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; POT_BLOCK_SIZE] {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), hex::encode(self.0))
            }
        }

        impl From<[u8; POT_BLOCK_SIZE]> for $name {
            fn from(bytes: [u8; POT_BLOCK_SIZE]) -> Self {
                Self(bytes)
            }
        }
    };
}

pot_bytes!(
    /// A slot's seed: the plaintext of the first AES encryption.
    PotSeed
);
pot_bytes!(
    /// A slot's AES-128 key: the first 16 bytes of `H(pot_key_ctx, seed)`.
    PotKey
);
pot_bytes!(
    /// The AES state after a checkpoint's worth of iterations; the last checkpoint is the slot's output.
    PotOutput
);

/// A checkpoint is the state after each `iterations / 8` encryptions.
pub type PotCheckpoint = PotOutput;

/// Why proof-of-time inputs were rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PotError {
    /// The iteration count is zero or not a multiple of the checkpoint count.
    #[error("pot iterations {iterations} must be a non-zero multiple of {POT_CHECKPOINTS}")]
    InvalidIterations {
        /// The proof-of-time iterations.
        iterations: u32,
    },
    /// Re-computing checkpoint `index` from its predecessor gave a different state.
    #[error("pot checkpoint {index} does not follow from its predecessor")]
    CheckpointMismatch {
        /// Which one (counting from zero).
        index: usize,
    },
}

impl PotSeed {
    /// The seed's AES key: the first 16 bytes of `H(pot_key_ctx, seed)`.
    pub fn key(&self) -> PotKey {
        PotKey(truncate(&hashing::hash(HashContext::PotKey, &self.0)))
    }
}

impl PotOutput {
    /// The next slot's seed: the first 16 bytes of `H(pot_seed_ctx, output)`.
    pub fn next_seed(&self) -> PotSeed {
        PotSeed(truncate(&hashing::hash(HashContext::PotSeed, &self.0)))
    }

    /// The next slot's seed at an entropy injection: the first 16 bytes of
    /// `H(pot_seed_ctx, output ‖ entropy)`, `entropy` being the PoT output a block carried.
    pub fn next_seed_with_entropy(&self, entropy: &PotOutput) -> PotSeed {
        let mut input = [0u8; 2 * POT_BLOCK_SIZE];
        input[..POT_BLOCK_SIZE].copy_from_slice(&self.0);
        input[POT_BLOCK_SIZE..].copy_from_slice(&entropy.0);
        PotSeed(truncate(&hashing::hash(HashContext::PotSeed, &input)))
    }
}

/// A slot's 8 checkpoints, in order; the last is the slot's output.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct PotCheckpoints(pub [PotCheckpoint; POT_CHECKPOINTS]);

impl PotCheckpoints {
    /// The slot's output: the last checkpoint.
    pub fn output(&self) -> PotOutput {
        self.0[POT_CHECKPOINTS - 1]
    }

    /// The checkpoints in order.
    pub fn as_slice(&self) -> &[PotCheckpoint] {
        &self.0
    }
}

/// The global challenge of `slot`: `H(challenge_ctx, pot_output ‖ slot number as LE u64)`.
pub fn slot_challenge(output: &PotOutput, slot: SlotNumber) -> Blake3Hash {
    let mut input = [0u8; POT_BLOCK_SIZE + 8];
    input[..POT_BLOCK_SIZE].copy_from_slice(&output.0);
    input[POT_BLOCK_SIZE..].copy_from_slice(&slot.get().to_le_bytes());
    hashing::hash(HashContext::SlotChallenge, &input)
}

/// Iterations between two checkpoints, after checking `iterations` is a non-zero multiple of 8.
fn checkpoint_iterations(iterations: u32) -> Result<u32, PotError> {
    let checkpoints = u32::try_from(POT_CHECKPOINTS).expect("8 fits in u32");
    if iterations == 0 || !iterations.is_multiple_of(checkpoints) {
        return Err(PotError::InvalidIterations { iterations });
    }
    Ok(iterations / checkpoints)
}

/// Proves one slot: encrypts `seed` `iterations` times under `key` and returns the state after every
/// `iterations / 8` encryptions. Sequential by nature; runs on the calling thread, on the fastest
/// [`PotKernel`] this CPU has.
pub fn prove(seed: &PotSeed, key: &PotKey, iterations: u32) -> Result<PotCheckpoints, PotError> {
    prove_with_kernel(PotKernel::detected(), seed, key, iterations)
}

/// [`prove`] on a chosen kernel (the portable one where this CPU cannot run it): for tests and benches.
pub fn prove_with_kernel(
    kernel: PotKernel,
    seed: &PotSeed,
    key: &PotKey,
    iterations: u32,
) -> Result<PotCheckpoints, PotError> {
    let per_checkpoint = checkpoint_iterations(iterations)?;
    let checkpoints = Engine::new(kernel, &key.0).prove(&seed.0, per_checkpoint);
    Ok(PotCheckpoints(checkpoints.map(PotOutput)))
}

/// Verifies a slot's checkpoints: each of the 8 segments must lead from its predecessor (the seed for
/// the first) to its checkpoint exactly. The caller derives `key` from `seed` (or takes it from the
/// chain state); this function checks nothing else.
///
/// It runs on the calling thread, on the fastest [`PotKernel`] this CPU has: with AES instructions all
/// 8 segments are checked from both ends at once (16 independent chains), which fills one core's AES
/// units; splitting one slot across threads would leave each core's units half idle, so callers
/// verifying many slots run them in parallel instead ([`verify_many`] with the `parallel` feature).
pub fn verify(
    seed: &PotSeed,
    key: &PotKey,
    iterations: u32,
    checkpoints: &PotCheckpoints,
) -> Result<(), PotError> {
    verify_with_kernel(PotKernel::detected(), seed, key, iterations, checkpoints)
}

/// [`verify`] (kept for callers written when `verify` could use two threads: the same function).
pub fn verify_sequential(
    seed: &PotSeed,
    key: &PotKey,
    iterations: u32,
    checkpoints: &PotCheckpoints,
) -> Result<(), PotError> {
    verify(seed, key, iterations, checkpoints)
}

/// [`verify`] on a chosen kernel (the portable one where this CPU cannot run it): for tests and benches.
pub fn verify_with_kernel(
    kernel: PotKernel,
    seed: &PotSeed,
    key: &PotKey,
    iterations: u32,
    checkpoints: &PotCheckpoints,
) -> Result<(), PotError> {
    let per_checkpoint = checkpoint_iterations(iterations)?;
    let starts: [Block; POT_CHECKPOINTS] = std::array::from_fn(|index| match index.checked_sub(1) {
        None => seed.0,
        Some(previous) => checkpoints.0[previous].0,
    });
    let ends = checkpoints.0.map(|checkpoint| checkpoint.0);
    let mismatches = Engine::new(kernel, &key.0).mismatches(&starts, &ends, per_checkpoint);
    match mismatches.trailing_zeros() as usize {
        index if index < POT_CHECKPOINTS => Err(PotError::CheckpointMismatch { index }),
        _ => Ok(()),
    }
}

/// One slot to verify: its seed, key and checkpoints.
pub type PotSlot<'a> = (&'a PotSeed, &'a PotKey, &'a PotCheckpoints);

/// Verifies many slots (a syncing node's backlog), each as [`verify`] does; with the `parallel`
/// feature they run on the current rayon pool, one slot per thread at a time.
pub fn verify_many(slots: &[PotSlot<'_>], iterations: u32) -> Vec<Result<(), PotError>> {
    let one = |(seed, key, checkpoints): &PotSlot<'_>| verify(seed, key, iterations, checkpoints);
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        slots.par_iter().map(one).collect()
    }
    #[cfg(not(feature = "parallel"))]
    {
        slots.iter().map(one).collect()
    }
}

fn truncate(hash: &Blake3Hash) -> [u8; POT_BLOCK_SIZE] {
    let mut out = [0u8; POT_BLOCK_SIZE];
    out.copy_from_slice(&hash.0[..POT_BLOCK_SIZE]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ITERATIONS: u32 = 8 * 1000;

    fn sample() -> (PotSeed, PotKey, PotCheckpoints) {
        let seed = PotSeed([0x5a; 16]);
        let key = seed.key();
        let checkpoints = prove(&seed, &key, ITERATIONS).expect("valid iterations");
        (seed, key, checkpoints)
    }

    #[test]
    fn proof_verifies_and_output_is_last_checkpoint() {
        let (seed, key, checkpoints) = sample();
        assert_eq!(verify(&seed, &key, ITERATIONS, &checkpoints), Ok(()));
        assert_eq!(verify_sequential(&seed, &key, ITERATIONS, &checkpoints), Ok(()));
        assert_eq!(checkpoints.output(), checkpoints.0[7]);
        let all_at_once = chain::Cipher::new(&key.0).iterate([seed.0], ITERATIONS)[0];
        assert_eq!(checkpoints.output().0, all_at_once);
    }

    #[test]
    fn rejects_every_single_bit_flip() {
        let (seed, key, checkpoints) = sample();
        for index in 0..POT_CHECKPOINTS {
            for bit in 0..128 {
                let mut bad = checkpoints;
                bad.0[index].0[bit / 8] ^= 1 << (bit % 8);
                assert_eq!(
                    verify(&seed, &key, ITERATIONS, &bad),
                    Err(PotError::CheckpointMismatch { index }),
                    "checkpoint {index} bit {bit}"
                );
                assert!(verify_sequential(&seed, &key, ITERATIONS, &bad).is_err());
            }
        }
    }

    #[test]
    fn rejects_wrong_iterations_key_and_seed() {
        let (seed, key, checkpoints) = sample();
        assert!(verify(&seed, &key, ITERATIONS + 8, &checkpoints).is_err());
        assert!(verify(&seed, &key, ITERATIONS - 8, &checkpoints).is_err());
        assert_eq!(
            verify(&seed, &key, ITERATIONS + 1, &checkpoints),
            Err(PotError::InvalidIterations {
                iterations: ITERATIONS + 1
            })
        );
        assert!(verify(&seed, &PotKey([1; 16]), ITERATIONS, &checkpoints).is_err());
        assert_eq!(
            verify(&PotSeed([1; 16]), &key, ITERATIONS, &checkpoints),
            Err(PotError::CheckpointMismatch { index: 0 })
        );
        assert!(prove(&seed, &key, 0).is_err());
    }

    #[test]
    fn seeds_and_challenges_are_domain_separated() {
        let (_, _, checkpoints) = sample();
        let output = checkpoints.output();
        assert_ne!(
            output.next_seed(),
            output.next_seed_with_entropy(&PotOutput::default())
        );
        assert_ne!(output.next_seed().0, output.next_seed().key().0);
        assert_ne!(
            slot_challenge(&output, SlotNumber(1)),
            slot_challenge(&output, SlotNumber(2))
        );
    }

    #[test]
    fn every_kernel_proves_and_verifies_bit_for_bit_like_the_portable_one() {
        // Odd, even and single-iteration checkpoints: the meet-in-the-middle split handles each.
        for iterations in [8, 8 * 7, 8 * 200] {
            for seed_byte in [0u8, 0x5a, 0xff] {
                let seed = PotSeed([seed_byte; 16]);
                let key = seed.key();
                let reference =
                    prove_with_kernel(PotKernel::Portable, &seed, &key, iterations).expect("valid");
                for kernel in PotKernel::available() {
                    let checkpoints = prove_with_kernel(kernel, &seed, &key, iterations).expect("valid");
                    assert_eq!(checkpoints, reference, "{} at {iterations}", kernel.name());
                    assert_eq!(
                        verify_with_kernel(kernel, &seed, &key, iterations, &reference),
                        Ok(()),
                        "{} at {iterations}",
                        kernel.name()
                    );
                }
            }
        }
    }

    #[test]
    fn every_kernel_names_the_first_bad_checkpoint() {
        let (seed, key, checkpoints) = sample();
        for kernel in PotKernel::available() {
            for index in 0..POT_CHECKPOINTS {
                for bit in [0, 63, 64, 127] {
                    let mut bad = checkpoints;
                    bad.0[index].0[bit / 8] ^= 1 << (bit % 8);
                    assert_eq!(
                        verify_with_kernel(kernel, &seed, &key, ITERATIONS, &bad),
                        Err(PotError::CheckpointMismatch { index }),
                        "{} checkpoint {index} bit {bit}",
                        kernel.name()
                    );
                }
            }
            let mut two_bad = checkpoints;
            two_bad.0[6].0[0] ^= 1;
            two_bad.0[3].0[15] ^= 0x80;
            assert_eq!(
                verify_with_kernel(kernel, &seed, &key, ITERATIONS, &two_bad),
                Err(PotError::CheckpointMismatch { index: 3 })
            );
        }
    }

    #[test]
    fn the_detected_kernel_is_available_and_verify_many_agrees_with_verify() {
        assert!(PotKernel::available().contains(&PotKernel::detected()));
        assert_eq!(PotKernel::available()[0], PotKernel::Portable);
        let (seed, key, checkpoints) = sample();
        let mut bad = checkpoints;
        bad.0[5].0[9] ^= 4;
        let slots = [(&seed, &key, &checkpoints), (&seed, &key, &bad)];
        assert_eq!(
            verify_many(&slots, ITERATIONS),
            vec![Ok(()), Err(PotError::CheckpointMismatch { index: 5 })]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn kernels_agree_on_random_seeds_keys_and_lengths(
            seed in proptest::prelude::any::<[u8; 16]>(),
            key in proptest::prelude::any::<[u8; 16]>(),
            per_checkpoint in 1u32..40,
        ) {
            let (seed, key) = (PotSeed(seed), PotKey(key));
            let iterations = 8 * per_checkpoint;
            let reference = prove_with_kernel(PotKernel::Portable, &seed, &key, iterations).expect("valid");
            for kernel in PotKernel::available() {
                proptest::prop_assert_eq!(prove_with_kernel(kernel, &seed, &key, iterations).expect("valid"), reference);
                proptest::prop_assert_eq!(verify_with_kernel(kernel, &seed, &key, iterations, &reference), Ok(()));
            }
        }
    }
}
