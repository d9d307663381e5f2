//! The EVM domain as an operator runs it: [`EvmChain`] behind [`DomainExecutor`].

use acre_execution::domains::derive::{ConsensusFacts, InboxBundle, in_tx_range};
use acre_execution::domains::evm::EvmTransaction;
use acre_execution::domains::receipt::ExecutionReceipt;

use super::DomainExecutor;
use crate::domain::evm_chain::{DeriveBase, EvmBlock, EvmChain};
use crate::error::Error;

impl DomainExecutor for EvmChain {
    type Block = EvmBlock;

    fn head_number(&self) -> u64 {
        self.head().number()
    }

    fn receipt(&self, number: u64) -> Option<&ExecutionReceipt> {
        self.block(number).map(|block| &block.receipt)
    }

    type Base = DeriveBase;

    fn derive_base(&self) -> Result<DeriveBase, Error> {
        EvmChain::derive_base(self)
    }

    fn derive(
        base: &DeriveBase,
        facts: &ConsensusFacts,
        bundles: &[InboxBundle<'_>],
    ) -> Result<EvmBlock, Error> {
        base.derive(facts, bundles)
    }

    fn block_receipt(block: &EvmBlock) -> &ExecutionReceipt {
        &block.receipt
    }

    fn push(&mut self, block: EvmBlock) -> Result<(), Error> {
        EvmChain::push(self, block)
    }

    fn revert_to(&mut self, number: u64) {
        EvmChain::revert_to(self, number);
    }

    fn bundle_body(
        &self,
        vrf_output: &[u8; 32],
        tx_range: u128,
        max_size: u32,
        max_weight: u64,
    ) -> (Vec<Vec<u8>>, u64) {
        let max_bytes = usize::try_from(max_size).unwrap_or(usize::MAX);
        let body = self.pending_where(max_bytes, max_weight, |signer| {
            in_tx_range(signer, vrf_output, tx_range)
        });
        let chain_id = self.module().chain_id;
        let weight = body
            .iter()
            .filter_map(|raw| EvmTransaction::decode(raw, chain_id).ok())
            .map(|transaction| transaction.gas_limit())
            .sum();
        (body, weight)
    }
}
