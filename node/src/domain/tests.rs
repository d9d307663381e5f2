//! The EVM domain chain: derivation matches the module-generic path, the head only moves forward by
//! `push`, reverts, state pruning, and the pending pool's admission rules and bundle selection. The
//! helpers here (a funded dev account, signing, bundles in the signer's transaction range) serve the
//! Ethereum JSON-RPC tests too.

use alloy_consensus::TxEip1559;
use alloy_eips::eip2930::AccessList;
use alloy_primitives::{Address, Bytes, TxKind, U256};
use k256::ecdsa::SigningKey;

use acre_consensus::hashing::Blake3Hash;
use acre_consensus::pot::PotOutput;
use acre_consensus::{BlockNumber, SlotNumber};
use acre_execution::ExecutionError;
use acre_execution::domains::bundle::{Bundle, BundleHeader, extrinsics_root};
use acre_execution::domains::derive::{
    ConsensusFacts, INITIAL_TX_RANGE, InboxBundle, derive_block, in_tx_range,
};
use acre_execution::domains::election::VrfProof;
use acre_execution::domains::evm::{EvmModule, EvmTransaction, address_of, contracts};
use acre_execution::domains::receipt::ExecutionReceipt;
use acre_execution::domains::{DomainId, OperatorId};

use super::dev_accounts;
use super::evm_chain::{EvmBlock, EvmChain, MAX_SENDER_TRANSACTIONS, STATE_HISTORY};
use crate::error::NodeError;

/// The test domain's chain id.
pub(crate) const CHAIN_ID: u64 = 870;

const ETHER: u128 = 1_000_000_000_000_000_000;
const GWEI: u128 = 1_000_000_000;

/// Development account `index`'s key.
pub(crate) fn dev_key(index: usize) -> SigningKey {
    SigningKey::from_bytes(&dev_accounts()[index].1.into()).expect("a valid dev key")
}

/// A chain whose genesis funds dev accounts 0 and 1 with 1000 ether each.
pub(crate) fn funded_chain() -> EvmChain {
    let balances: Vec<_> = (0..2)
        .map(|index| (address_of(&dev_key(index)).to_vec(), 1_000 * ETHER))
        .collect();
    EvmChain::genesis(EvmModule::for_domain(CHAIN_ID), &balances).expect("genesis")
}

/// An EIP-1559 transaction of `chain_id` signed by `key` (2 gwei maximum, 1 gwei tip).
pub(crate) fn sign_for(
    chain_id: u64,
    key: &SigningKey,
    nonce: u64,
    to: TxKind,
    input: Vec<u8>,
    gas: u64,
) -> EvmTransaction {
    EvmTransaction::sign(
        TxEip1559 {
            chain_id,
            nonce,
            gas_limit: gas,
            max_fee_per_gas: 2 * GWEI,
            max_priority_fee_per_gas: GWEI,
            to,
            value: U256::ZERO,
            access_list: AccessList::default(),
            input: Bytes::from(input),
        },
        key,
    )
}

/// [`sign_for`] on the test chain.
pub(crate) fn sign(key: &SigningKey, nonce: u64, to: TxKind, input: Vec<u8>, gas: u64) -> EvmTransaction {
    sign_for(CHAIN_ID, key, nonce, to, input, gas)
}

/// The facts of consensus block `number`.
pub(crate) fn facts(number: u64) -> ConsensusFacts {
    ConsensusFacts {
        number: BlockNumber(number),
        hash: Blake3Hash([u8::try_from(number % 256).expect("below 256"); 32]),
        pot_output: PotOutput([7; 16]),
        timestamp_ms: 1_700_000_000_000 + number * 6_000,
        byte_fee: 1,
        storage_fees: 0,
    }
}

/// A bundle carrying `body` (signature and election are not checked by derivation) and a VRF output
/// whose transaction range holds every signer of `body`.
pub(crate) fn bundle(module: &EvmModule, body: Vec<Vec<u8>>) -> (Bundle, [u8; 32]) {
    let decoded: Vec<_> = body
        .iter()
        .map(|raw| EvmTransaction::decode(raw, module.chain_id).expect("decodes"))
        .collect();
    let weight = decoded.iter().map(EvmTransaction::gas_limit).sum();
    // The election value is the first 16 bytes, little-endian: stepping its top byte sweeps the ring.
    let vrf_output = (0u8..=255)
        .map(|seed| {
            let mut output = [0; 32];
            output[15] = seed;
            output
        })
        .find(|output| {
            decoded
                .iter()
                .all(|transaction| in_tx_range(transaction.signer().as_slice(), output, INITIAL_TX_RANGE))
        })
        .expect("some output covers the signers");
    let size = body.iter().map(Vec::len).sum::<usize>();
    let bundle = Bundle {
        header: BundleHeader {
            version: Bundle::VERSION,
            domain_id: DomainId(0),
            operator_id: OperatorId(0),
            slot: SlotNumber(1),
            pot_output: PotOutput([0; 16]),
            vrf: VrfProof {
                output: vrf_output,
                proof: [0; 64],
            },
            receipt: ExecutionReceipt::genesis(Blake3Hash::ZERO, BlockNumber(0), Blake3Hash::ZERO),
            extrinsics_root: extrinsics_root(&body),
            size: u32::try_from(size).expect("small"),
            weight,
        },
        signature: [0; 64],
        body,
    };
    (bundle, vrf_output)
}

/// Derives and pushes the next block from everything pending, one bundle per signer (two signers need
/// not fit in one transaction range); no bundle if nothing is pending.
pub(crate) fn produce(chain: &mut EvmChain) -> EvmBlock {
    let consensus = facts(chain.head().number() + 1);
    let mut signers: Vec<Address> = chain
        .pending(1 << 20)
        .iter()
        .map(|raw| EvmTransaction::decode(raw, CHAIN_ID).expect("decodes").signer())
        .collect();
    signers.dedup();
    let bundles: Vec<_> = signers
        .iter()
        .map(|signer| {
            let body = chain.pending_where(1 << 20, u64::MAX, |who| who == signer.as_slice());
            bundle(chain.module(), body)
        })
        .collect();
    let inboxed: Vec<_> = bundles
        .iter()
        .map(|(bundle, vrf_output)| InboxBundle {
            bundle,
            vrf_output: *vrf_output,
        })
        .collect();
    let block = chain.derive(&consensus, &inboxed).expect("derives");
    chain.push(block.clone()).expect("extends the head");
    block
}

fn who(index: usize) -> Address {
    address_of(&dev_key(index))
}

#[test]
fn derive_gives_the_header_and_receipt_of_derive_block() {
    let mut chain = funded_chain();
    let key = dev_key(0);
    for nonce in 0..3 {
        let deploy = sign(&key, nonce, TxKind::Create, contracts::store_init_code(), 200_000);
        chain.submit(deploy.raw().to_vec()).expect("admitted");
    }
    let transfer = sign(&dev_key(1), 0, TxKind::Call(who(0)), Vec::new(), 21_000);
    chain.submit(transfer.raw().to_vec()).expect("admitted");
    // One bundle per signer: two signers need not fit in one transaction range.
    let bundles: Vec<_> = (0..2)
        .map(|index| {
            let body = chain.pending_where(1 << 20, u64::MAX, |signer| signer == who(index).as_slice());
            bundle(chain.module(), body)
        })
        .collect();
    assert_eq!(bundles[0].0.body.len(), 3);
    assert_eq!(bundles[1].0.body.len(), 1);
    let inboxed: Vec<_> = bundles
        .iter()
        .map(|(bundle, vrf_output)| InboxBundle {
            bundle,
            vrf_output: *vrf_output,
        })
        .collect();
    let block = chain.derive(&facts(1), &inboxed).expect("derives");
    let head = chain.head();
    let generic = derive_block(
        chain.module(),
        head.state.as_ref().expect("the head keeps its state"),
        &head.header,
        head.receipt.hash(),
        &facts(1),
        &inboxed,
        INITIAL_TX_RANGE,
    )
    .expect("derives");
    assert_eq!(block.header, generic.header);
    assert_eq!(block.receipt, generic.receipt);
    assert_eq!(block.transactions, generic.transactions);
    assert_eq!(block.receipts.len(), 4);
    assert!(block.receipts.iter().all(|receipt| receipt.success));
    assert_eq!(block.gas_used, block.receipts[3].cumulative_gas_used);
    assert_eq!(block.receipt.parent_receipt, head.receipt.hash());
}

#[test]
fn push_extends_only_the_head_and_indexes_transactions() {
    let mut chain = funded_chain();
    let deploy = sign(
        &dev_key(0),
        0,
        TxKind::Create,
        contracts::store_init_code(),
        200_000,
    );
    let hash = chain.submit(deploy.raw().to_vec()).expect("admitted");
    assert_eq!(hash, deploy.hash());
    assert_eq!(chain.pending_count(), 1);
    let block = produce(&mut chain);
    assert_eq!(chain.head().number(), 1);
    assert_eq!(chain.pending_count(), 0, "the included transaction left the pool");
    let (found, index) = chain.transaction(&hash).expect("indexed");
    assert_eq!((found.number(), index), (1, 0));
    assert_eq!(chain.block_by_hash(&block.hash()).map(EvmBlock::number), Some(1));
    assert!(matches!(
        chain.push(block.clone()),
        Err(NodeError::DomainNotNext {
            head_number: 1,
            number: 1,
            ..
        })
    ));
    let mut orphan = chain.derive(&facts(2), &[]).expect("derives");
    orphan.header.parent_hash = Blake3Hash([1; 32]);
    assert!(matches!(chain.push(orphan), Err(NodeError::DomainNotNext { .. })));
}

#[test]
fn the_pool_refuses_each_bad_transaction_with_its_reason() {
    let mut chain = funded_chain();
    let key = dev_key(0);
    assert!(matches!(
        chain.submit(vec![0x02, 0xc0, 0x01]),
        Err(NodeError::EvmTransactionRefused(_))
    ));
    let other_chain = sign_for(CHAIN_ID + 1, &key, 0, TxKind::Call(who(1)), Vec::new(), 21_000);
    assert!(matches!(
        chain.submit(other_chain.raw().to_vec()),
        Err(NodeError::EvmTransactionRefused(
            ExecutionError::EvmWrongChainId { .. }
        ))
    ));
    let over_block = sign(&key, 0, TxKind::Call(who(1)), Vec::new(), 30_000_001);
    assert!(matches!(
        chain.submit(over_block.raw().to_vec()),
        Err(NodeError::EvmTransactionRefused(
            ExecutionError::EvmGasLimitAboveBlock { .. }
        ))
    ));
    let unfunded = sign(&dev_key(5), 0, TxKind::Call(who(1)), Vec::new(), 21_000);
    assert!(matches!(
        chain.submit(unfunded.raw().to_vec()),
        Err(NodeError::EvmTransactionRefused(
            ExecutionError::EvmInsufficientFunds { .. }
        ))
    ));
    let far = sign(
        &key,
        MAX_SENDER_TRANSACTIONS as u64,
        TxKind::Call(who(1)),
        Vec::new(),
        21_000,
    );
    assert!(matches!(
        chain.submit(far.raw().to_vec()),
        Err(NodeError::EvmNonceTooHigh { next: 0, .. })
    ));
    let first = sign(&key, 0, TxKind::Call(who(1)), Vec::new(), 21_000);
    chain.submit(first.raw().to_vec()).expect("admitted");
    assert!(matches!(
        chain.submit(first.raw().to_vec()),
        Err(NodeError::EvmAlreadyKnown(hash)) if hash == first.hash()
    ));
    // Same nonce, same fees, other contents: not a 10% bump.
    let rival = sign(&key, 0, TxKind::Call(who(1)), vec![1], 22_000);
    assert!(matches!(
        chain.submit(rival.raw().to_vec()),
        Err(NodeError::EvmReplacementUnderpriced { nonce: 0, .. })
    ));
    produce(&mut chain);
    assert!(matches!(
        chain.submit(rival.raw().to_vec()),
        Err(NodeError::EvmNonceTooLow { next: 1, got: 0 })
    ));
    assert!(matches!(
        chain.submit(first.raw().to_vec()),
        Err(NodeError::EvmNonceTooLow { .. })
    ));
}

#[test]
fn pending_follows_on_from_the_head_nonce_within_the_byte_bound() {
    let mut chain = funded_chain();
    let key = dev_key(0);
    let transactions: Vec<_> = (0..4)
        .map(|nonce| sign(&key, nonce, TxKind::Call(who(1)), Vec::new(), 21_000))
        .collect();
    for index in [0, 1, 3] {
        chain
            .submit(transactions[index].raw().to_vec())
            .expect("admitted");
    }
    let raw = |index: usize| transactions[index].raw().to_vec();
    assert_eq!(
        chain.pending(1 << 20),
        vec![raw(0), raw(1)],
        "nonce 3 waits for 2"
    );
    assert_eq!(chain.pending(raw(0).len() + 1), vec![raw(0)]);
    assert!(chain.pending(raw(0).len() - 1).is_empty());
    assert_eq!(chain.pending_nonce(&who(0)).expect("head state"), 2);
    chain.submit(raw(2)).expect("admitted");
    assert_eq!(chain.pending(1 << 20).len(), 4);
    assert_eq!(chain.pending_where(1 << 20, 21_000 * 2, |_| true).len(), 2);
    assert!(
        chain
            .pending_where(1 << 20, u64::MAX, |signer| signer != who(0).as_slice())
            .is_empty()
    );
    produce(&mut chain);
    assert_eq!(chain.head().transactions.len(), 4);
    assert_eq!(chain.pending_count(), 0);
}

#[test]
fn revert_drops_blocks_and_returns_their_transactions_to_the_pool() {
    let mut chain = funded_chain();
    let transfer = sign(&dev_key(0), 0, TxKind::Call(who(1)), Vec::new(), 21_000);
    chain.submit(transfer.raw().to_vec()).expect("admitted");
    let first = produce(&mut chain);
    produce(&mut chain);
    assert_eq!(chain.head().number(), 2);
    chain.revert_to(5);
    assert_eq!(
        chain.head().number(),
        2,
        "reverting above the head changes nothing"
    );
    chain.revert_to(0);
    assert_eq!(chain.head().number(), 0);
    assert!(chain.block(1).is_none());
    assert!(chain.block_by_hash(&first.hash()).is_none());
    assert!(chain.transaction(&transfer.hash()).is_none());
    assert!(
        chain.pending_transaction(&transfer.hash()).is_some(),
        "back in the pool"
    );
    let again = produce(&mut chain);
    assert_eq!(again.hashes, vec![transfer.hash()]);
}

#[test]
fn only_the_newest_states_are_kept() {
    let mut chain = funded_chain();
    for _ in 0..STATE_HISTORY + 2 {
        produce(&mut chain);
    }
    let head = chain.head().number();
    assert_eq!(head, STATE_HISTORY + 2);
    assert_eq!(chain.oldest_state(), 3);
    assert!(chain.state_at(head).is_ok());
    assert!(chain.state_at(3).is_ok());
    assert!(matches!(
        chain.state_at(2),
        Err(NodeError::DomainStatePruned { number: 2, oldest: 3 })
    ));
    assert!(chain.block(0).is_some_and(|genesis| genesis.state.is_none()));
    assert!(chain.block(2).is_some_and(|block| block.state.is_none()));
}
