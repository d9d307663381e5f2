//! Which AES implementation proves and verifies, chosen once per process from what the CPU has.
//!
//! On x86-64 the hand-written kernels (`x86_64.rs`: AES-NI, or VAES on 256-bit registers) run; elsewhere,
//! or without AES instructions, the `aes` crate does (`chain.rs`, no `unsafe`). All of them give the
//! same bits; [`PotKernel`] names them so that tests and benches can run each one.

use std::sync::OnceLock;

use super::chain::{Block, Cipher};
#[cfg(target_arch = "x86_64")]
use super::x86_64;

/// An implementation of the proof-of-time AES iterations.
/// Ordered slowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PotKernel {
    /// The `aes` crate (its own run-time AES-NI detection), eight forward chains when verifying.
    Portable,
    /// AES-NI, merged whitening, sixteen chains meeting in the middle when verifying.
    AesNi,
    /// As [`PotKernel::AesNi`], verifying two blocks per instruction with VAES on 256-bit registers.
    Vaes256,
}

impl PotKernel {
    /// The fastest kernel this CPU runs (what [`super::prove`] and [`super::verify`] use).
    pub fn detected() -> Self {
        static DETECTED: OnceLock<PotKernel> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            if let Some(kernel) = x86_64::Kernel::detect() {
                return match kernel {
                    x86_64::Kernel::Vaes256 => Self::Vaes256,
                    x86_64::Kernel::AesNi => Self::AesNi,
                };
            }
            Self::Portable
        })
    }

    /// Every kernel this CPU runs, slowest first.
    pub fn available() -> Vec<Self> {
        [Self::Portable, Self::AesNi, Self::Vaes256]
            .into_iter()
            .filter(|kernel| *kernel <= Self::detected())
            .collect()
    }

    /// A short name for logs and benches.
    pub fn name(self) -> &'static str {
        match self {
            Self::Portable => "portable",
            Self::AesNi => "aes-ni",
            Self::Vaes256 => "vaes-256",
        }
    }
}

/// A key prepared for one kernel.
pub(super) enum Engine {
    #[cfg(target_arch = "x86_64")]
    X86(x86_64::Kernel, x86_64::Keys),
    Portable(Cipher),
}

impl Engine {
    /// Prepares `key` for `kernel`, or for the portable path if this CPU cannot run `kernel`.
    pub(super) fn new(kernel: PotKernel, key: &Block) -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let x86_kernel = match kernel.min(PotKernel::detected()) {
                PotKernel::Vaes256 => Some(x86_64::Kernel::Vaes256),
                PotKernel::AesNi => Some(x86_64::Kernel::AesNi),
                PotKernel::Portable => None,
            };
            if let Some((x86_kernel, keys)) = x86_kernel.zip(x86_64::Keys::new(key)) {
                return Self::X86(x86_kernel, keys);
            }
        }
        let _ = kernel;
        Self::Portable(Cipher::new(key))
    }

    /// The state after every `per_checkpoint` encryptions of `seed`, 8 times.
    pub(super) fn prove(&self, seed: &Block, per_checkpoint: u32) -> [Block; 8] {
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::X86(_, keys) => x86_64::prove(seed, keys, per_checkpoint),
            Self::Portable(cipher) => {
                let mut state = *seed;
                std::array::from_fn(|_| {
                    state = cipher.iterate([state], per_checkpoint)[0];
                    state
                })
            }
        }
    }

    /// A bit per segment `i` that does not lead from `starts[i]` to `ends[i]` in `iterations`.
    pub(super) fn mismatches(&self, starts: &[Block; 8], ends: &[Block; 8], iterations: u32) -> u32 {
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::X86(kernel, keys) => x86_64::verify(*kernel, starts, ends, keys, iterations),
            Self::Portable(cipher) => cipher
                .iterate(*starts, iterations)
                .iter()
                .zip(ends)
                .enumerate()
                .fold(0, |mask, (index, (computed, end))| {
                    mask | (u32::from(computed != end) << index)
                }),
        }
    }
}
