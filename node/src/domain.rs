//! EVM domains on the node: the domain chain an operator or a domain node keeps ([`evm_chain`]), its
//! Ethereum JSON-RPC ([`eth_rpc`]) and the development accounts dev chains fund ([`dev_accounts`]).

pub mod dev_accounts;
pub mod eth_rpc;
pub mod evm_chain;

pub use dev_accounts::{DEV_MNEMONIC, dev_accounts};
pub use eth_rpc::{DEFAULT_ETH_RPC_ADDR, start_eth_rpc};
pub use evm_chain::{EvmBlock, EvmChain, STATE_HISTORY};

#[cfg(test)]
pub(crate) mod tests;
