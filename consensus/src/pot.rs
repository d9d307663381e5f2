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
//! states and are independent chains under one key, so [`verify`] runs them interleaved (and, with the
//! `parallel` feature, on two threads of four chains each) and costs about an eighth of proving.
//!
//! Everything here is a pure function of its inputs.

mod chain;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::hashing::{self, Blake3Hash, HashContext};
use crate::quantities::SlotNumber;

pub use chain::hardware_accelerated;

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
/// `iterations / 8` encryptions. Sequential by nature; runs on the calling thread.
pub fn prove(seed: &PotSeed, key: &PotKey, iterations: u32) -> Result<PotCheckpoints, PotError> {
    let per_checkpoint = checkpoint_iterations(iterations)?;
    let cipher = chain::Cipher::new(&key.0);
    let mut state = seed.0;
    let mut checkpoints = [PotOutput::default(); POT_CHECKPOINTS];
    for checkpoint in &mut checkpoints {
        state = cipher.iterate([state], per_checkpoint)[0];
        *checkpoint = PotOutput(state);
    }
    Ok(PotCheckpoints(checkpoints))
}

/// Verifies a slot's checkpoints: each of the 8 segments is re-computed from its predecessor (the seed for
/// the first) and must reproduce the checkpoint exactly. The caller derives `key` from `seed` (or takes it
/// from the chain state); this function checks nothing else.
///
/// Without the `parallel` feature it interleaves all 8 chains on the calling thread; with it, it runs two
/// threads (of the current rayon pool) of four interleaved chains each.
pub fn verify(
    seed: &PotSeed,
    key: &PotKey,
    iterations: u32,
    checkpoints: &PotCheckpoints,
) -> Result<(), PotError> {
    verify_with(seed, key, iterations, checkpoints, run_segments)
}

/// [`verify`] on the calling thread only, interleaving all 8 chains whatever the features (for callers
/// that already verify many slots in parallel).
pub fn verify_sequential(
    seed: &PotSeed,
    key: &PotKey,
    iterations: u32,
    checkpoints: &PotCheckpoints,
) -> Result<(), PotError> {
    verify_with(
        seed,
        key,
        iterations,
        checkpoints,
        |cipher, starts, iterations| cipher.iterate(starts, iterations),
    )
}

type Segments = [chain::Block; POT_CHECKPOINTS];

fn verify_with(
    seed: &PotSeed,
    key: &PotKey,
    iterations: u32,
    checkpoints: &PotCheckpoints,
    run: impl FnOnce(&chain::Cipher, Segments, u32) -> Segments,
) -> Result<(), PotError> {
    let per_checkpoint = checkpoint_iterations(iterations)?;
    let cipher = chain::Cipher::new(&key.0);
    let starts: [[u8; POT_BLOCK_SIZE]; POT_CHECKPOINTS] =
        std::array::from_fn(|index| match index.checked_sub(1) {
            None => seed.0,
            Some(previous) => checkpoints.0[previous].0,
        });
    let ends = run(&cipher, starts, per_checkpoint);
    match ends
        .iter()
        .zip(&checkpoints.0)
        .position(|(end, checkpoint)| *end != checkpoint.0)
    {
        Some(index) => Err(PotError::CheckpointMismatch { index }),
        None => Ok(()),
    }
}

#[cfg(not(feature = "parallel"))]
fn run_segments(cipher: &chain::Cipher, starts: Segments, iterations: u32) -> Segments {
    cipher.iterate(starts, iterations)
}

#[cfg(feature = "parallel")]
fn run_segments(cipher: &chain::Cipher, starts: Segments, iterations: u32) -> Segments {
    const HALF: usize = POT_CHECKPOINTS / 2;
    let (first, second) = starts.split_at(HALF);
    let first: [chain::Block; HALF] = first.try_into().expect("split at half of 8");
    let second: [chain::Block; HALF] = second.try_into().expect("split at half of 8");
    let (first, second) = rayon::join(
        || cipher.iterate(first, iterations),
        || cipher.iterate(second, iterations),
    );
    std::array::from_fn(|index| match index.checked_sub(HALF) {
        None => first[index],
        Some(offset) => second[offset],
    })
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
}
