//! The runtime's per-chain configuration.
//!
//! Everything the state transition needs that is not in the state or the block: which chain this is (its
//! genesis hash, which every transaction signs) and the economic constants from the chain spec. The node
//! builds it once from its chain spec; tests build it directly.

use acre_consensus::hashing::Blake3Hash;

/// Per-chain constants of the consensus runtime (spec section 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// The chain's genesis hash; transactions for any other chain are refused.
    pub genesis_hash: Blake3Hash,
    /// Fee every transaction pays at least, whatever its size.
    pub min_fee: u128,
    /// Fee per byte of the transaction's canonical encoding, on top of `min_fee`.
    pub byte_fee: u128,
    /// Smallest balance an account may hold; below it the account's balance is burnt (see
    /// `docs/decisions.md` for what remains of the account).
    pub existential_deposit: u128,
    /// Reward of each block's author, on top of the block's fees.
    pub block_reward: u128,
    /// Reward of each vote included in a block, paid to the vote's reward address.
    pub vote_reward: u128,
}

impl RuntimeConfig {
    /// The least fee a transaction of `encoded_size` bytes pays: `min_fee + byte_fee × encoded_size`.
    /// Saturates: a fee that overflows `u128` can never be paid, which is what saturation expresses.
    pub fn minimum_fee(&self, encoded_size: usize) -> u128 {
        let size = u128::try_from(encoded_size).unwrap_or(u128::MAX);
        self.min_fee.saturating_add(self.byte_fee.saturating_mul(size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_fee_grows_with_size_and_saturates() {
        let config = RuntimeConfig {
            genesis_hash: Blake3Hash::ZERO,
            min_fee: 1000,
            byte_fee: 2,
            existential_deposit: 1,
            block_reward: 0,
            vote_reward: 0,
        };
        assert_eq!(config.minimum_fee(0), 1000);
        assert_eq!(config.minimum_fee(201), 1402);
        let huge = RuntimeConfig {
            byte_fee: u128::MAX / 2,
            ..config
        };
        assert_eq!(huge.minimum_fee(201), u128::MAX);
    }
}
