//! The EVM development accounts every Ethereum tool knows (Hardhat's, Anvil's): the first ten keys of the
//! mnemonic `test test … junk` on the path `m/44'/60'/0'/0/i`. The BIP-39 seed is PBKDF2-HMAC-SHA512 of
//! the phrase with salt `"mnemonic"` and 2048 rounds (the `pbkdf2` crate; `bip32`'s own mnemonic type
//! only takes 24-word phrases), and the keys are its BIP-32 derivation over `k256` (the `bip32` crate).
//! Dev chains fund them so wallets and scripts work unchanged.

use alloy_primitives::Address;
use bip32::{DerivationPath, XPrv};
use sha2::Sha512;

use acre_execution::domains::evm::address_of;

/// The well-known development mnemonic.
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// BIP-39's PBKDF2 rounds.
const BIP39_ROUNDS: u32 = 2048;

/// How many development accounts [`dev_accounts`] derives.
pub const DEV_ACCOUNTS: u32 = 10;

/// The ten development accounts: address and 32-byte secp256k1 private key, account `i` at
/// `m/44'/60'/0'/0/i` of [`DEV_MNEMONIC`].
pub fn dev_accounts() -> Vec<(Address, [u8; 32])> {
    // BIP-39 seed with an empty passphrase.
    let mut seed = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<Sha512>(DEV_MNEMONIC.as_bytes(), b"mnemonic", BIP39_ROUNDS, &mut seed);
    (0..DEV_ACCOUNTS)
        .map(|index| {
            let path: DerivationPath = format!("m/44'/60'/0'/0/{index}")
                .parse()
                .expect("a well-formed derivation path");
            let key = XPrv::derive_from_path(seed, &path)
                .expect("derivation fails only with negligible probability, never for this mnemonic");
            let signing = key.private_key();
            (address_of(signing), signing.to_bytes().into())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{address, b256};

    use super::*;

    #[test]
    fn the_dev_accounts_are_the_well_known_ones() {
        let accounts = dev_accounts();
        assert_eq!(accounts.len(), 10);
        assert_eq!(
            accounts[0].0,
            address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
        );
        assert_eq!(
            accounts[0].1,
            b256!("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80").0
        );
        assert_eq!(
            accounts[1].0,
            address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
        );
        assert_eq!(
            accounts[9].0,
            address!("0xa0Ee7A142d267C1f36714E4a8F75612F20a79720")
        );
    }
}
