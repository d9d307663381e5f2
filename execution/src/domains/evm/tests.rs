use alloy_consensus::{TxEip1559, TxEip2930, TxLegacy};
use alloy_eips::eip2930::{AccessList, AccessListItem};
use alloy_primitives::{B256, Bytes, TxKind};
use k256::ecdsa::SigningKey;
use proptest::prelude::*;

use super::contracts;
use super::*;
use crate::domains::DomainBlockNumber;

const CHAIN_ID: u64 = 1_337;
const BASE_FEE: u128 = 7;
const GWEI: u128 = 1_000_000_000;

fn module() -> EvmModule {
    EvmModule {
        chain_id: CHAIN_ID,
        block_gas_limit: 30_000_000,
        base_fee: BASE_FEE,
    }
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32].into()).expect("a valid scalar")
}

fn who(seed: u8) -> Address {
    address_of(&key(seed))
}

fn genesis() -> EvmState {
    module()
        .genesis(&[
            (who(1).to_vec(), 1_000 * GWEI * GWEI),
            (who(2).to_vec(), 1_000 * GWEI * GWEI),
            (who(3).to_vec(), 1_000),
        ])
        .expect("genesis")
}

fn context(number: u64) -> BlockContext {
    BlockContext {
        number: DomainBlockNumber(number),
        parent_hash: Blake3Hash([9; 32]),
        timestamp_ms: 12_000 * number,
        consensus_byte_fee: 1,
    }
}

fn eip1559(seed: u8, nonce: u64, to: TxKind, value: u128, input: Vec<u8>, gas: u64) -> EvmTransaction {
    EvmTransaction::sign(
        TxEip1559 {
            chain_id: CHAIN_ID,
            nonce,
            gas_limit: gas,
            max_fee_per_gas: 20,
            max_priority_fee_per_gas: 3,
            to,
            value: U256::from(value),
            access_list: AccessList::default(),
            input: Bytes::from(input),
        },
        &key(seed),
    )
}

fn transfer(seed: u8, nonce: u64, to: Address, value: u128) -> EvmTransaction {
    eip1559(seed, nonce, TxKind::Call(to), value, Vec::new(), 21_000)
}

fn legacy(nonce: u64, chain_id: Option<u64>) -> TxLegacy {
    TxLegacy {
        chain_id,
        nonce,
        gas_price: 10,
        gas_limit: 21_000,
        to: TxKind::Call(who(9)),
        value: U256::from(5),
        input: Bytes::new(),
    }
}

fn decode(transaction: &EvmTransaction) -> Result<EvmTransaction, ExecutionError> {
    module().decode_transaction(transaction.raw())
}

#[test]
fn an_eth_transfer_moves_value_and_splits_the_fee() {
    let module = module();
    let state = genesis();
    let tx = transfer(1, 0, who(5), 1_000_000);
    let output = module
        .execute_block_with_receipts(&state, &context(1), std::slice::from_ref(&tx))
        .expect("executes");
    let receipt = &output.receipts[0];
    assert!(receipt.success);
    assert_eq!(receipt.gas_used, 21_000);
    assert_eq!(output.gas_used, 21_000);
    let after = &output.execution.state;
    assert_eq!(module.balance_of(after, &who(5)), U256::from(1_000_000));
    assert_eq!(module.nonce(after, &who(1)), 1);
    // Effective price min(20, 7 + 3) = 10: 7 burned, 3 to the collector.
    assert_eq!(output.execution.execution_fee, 21_000 * 10);
    assert_eq!(output.execution.burned, 21_000 * 7);
    assert_eq!(module.balance_of(after, &FEE_COLLECTOR), U256::from(21_000 * 3));
    assert_eq!(
        module.balance_of(after, &who(1)),
        module.balance_of(&state, &who(1)) - U256::from(1_000_000 + 21_000 * 10)
    );
    assert_eq!(output.execution.trace.len(), 3);
    assert_eq!(output.execution.trace.last(), Some(&after.root()));
}

#[test]
fn deploy_and_call_change_storage_and_log() {
    let module = module();
    let state = genesis();
    let deploy = eip1559(1, 0, TxKind::Create, 0, contracts::store_init_code(), 200_000);
    let output = module
        .execute_block_with_receipts(&state, &context(1), &[deploy])
        .expect("executes");
    let store = output.receipts[0].contract_address.expect("deployed");
    assert_eq!(store, who(1).create(0));
    let state = output.execution.state;
    assert_eq!(module.code(&state, &store), contracts::store_runtime());

    let value = U256::from(0xabcdef_u64);
    let call = eip1559(
        1,
        1,
        TxKind::Call(store),
        0,
        value.to_be_bytes::<32>().to_vec(),
        100_000,
    );
    let output = module
        .execute_block_with_receipts(&state, &context(2), &[call])
        .expect("executes");
    let receipt = &output.receipts[0];
    assert!(receipt.success, "{receipt:?}");
    assert_eq!(
        receipt.logs,
        vec![EvmLog {
            address: store,
            topics: vec![contracts::stored_topic()],
            data: Bytes::from(value.to_be_bytes::<32>().to_vec()),
        }]
    );
    let state = output.execution.state;
    assert_eq!(module.storage(&state, &store, &U256::ZERO), value);
    // A read-only call sees it and changes nothing.
    let request = CallRequest {
        from: Some(who(3)),
        to: Some(store),
        ..CallRequest::default()
    };
    let outcome = module.call(&state, &context(3), &request).expect("calls");
    assert!(outcome.success);
    assert_eq!(outcome.output.as_ref(), value.to_be_bytes::<32>().as_slice());
    let estimate = module
        .estimate_gas(&state, &context(3), &request)
        .expect("estimates");
    assert!(estimate >= outcome.gas_used && estimate < outcome.gas_used + 3_000);
    let store_request = CallRequest {
        data: Bytes::from(vec![1; 32]),
        ..request
    };
    let estimate = module
        .estimate_gas(&state, &context(3), &store_request)
        .expect("estimates");
    let fits = CallRequest {
        gas: Some(estimate),
        ..store_request.clone()
    };
    assert!(module.call(&state, &context(3), &fits).expect("calls").success);
    let short = CallRequest {
        gas: Some(estimate - 1),
        ..store_request
    };
    assert!(!module.call(&state, &context(3), &short).expect("calls").success);
}

#[test]
fn the_token_transfers_and_emits_transfer_events() {
    let module = module();
    let state = genesis();
    let supply = U256::from(1_000_000);
    let deploy = eip1559(
        1,
        0,
        TxKind::Create,
        0,
        contracts::token_init_code(supply),
        300_000,
    );
    let token = who(1).create(0);
    let send = eip1559(
        1,
        1,
        TxKind::Call(token),
        0,
        contracts::transfer_call(who(2), U256::from(400)),
        100_000,
    );
    let too_much = eip1559(
        2,
        0,
        TxKind::Call(token),
        0,
        contracts::transfer_call(who(1), U256::from(401)),
        100_000,
    );
    let output = module
        .execute_block_with_receipts(&state, &context(1), &[deploy, send, too_much])
        .expect("executes");
    let [deployed, sent, reverted] = &output.receipts[..] else {
        panic!("three receipts")
    };
    assert!(deployed.success && sent.success);
    assert!(
        !reverted.success && reverted.gas_used > 0,
        "charged: {reverted:?}"
    );
    assert_eq!(
        sent.logs[0].topics,
        vec![
            contracts::transfer_topic(),
            B256::left_padding_from(who(1).as_slice()),
            B256::left_padding_from(who(2).as_slice()),
        ]
    );
    let state = &output.execution.state;
    let balance = |who| module.storage(state, &token, &contracts::token_balance_slot(who));
    assert_eq!(balance(who(1)), supply - U256::from(400));
    assert_eq!(balance(who(2)), U256::from(400));
    let call = CallRequest {
        to: Some(token),
        data: contracts::balance_of_call(who(2)).into(),
        ..CallRequest::default()
    };
    let outcome = module.call(state, &context(2), &call).expect("calls");
    assert_eq!(U256::from_be_slice(&outcome.output), U256::from(400));
    // The reverted transfer paid its gas but moved nothing.
    assert_eq!(module.nonce(state, &who(2)), 1);
    assert_eq!(
        output
            .execution
            .outcomes
            .iter()
            .map(|o| o.success)
            .collect::<Vec<_>>(),
        vec![true, true, false]
    );
}

#[test]
fn every_transaction_type_decodes_and_executes() {
    let module = module();
    let legacy = EvmTransaction::sign(legacy(0, Some(CHAIN_ID)), &key(1));
    let access_list = EvmTransaction::sign(
        TxEip2930 {
            chain_id: CHAIN_ID,
            nonce: 1,
            gas_price: 10,
            gas_limit: 30_000,
            to: TxKind::Call(who(9)),
            value: U256::from(5),
            access_list: AccessList(vec![AccessListItem {
                address: who(9),
                storage_keys: vec![B256::ZERO],
            }]),
            input: Bytes::new(),
        },
        &key(1),
    );
    let dynamic = transfer(1, 2, who(9), 5);
    for (transaction, ty) in [(&legacy, 0), (&access_list, 1), (&dynamic, 2)] {
        let decoded = decode(transaction).expect("decodes");
        assert_eq!(&decoded, transaction);
        assert_eq!(decoded.tx_type(), ty);
        assert_eq!(decoded.signer(), who(1));
        assert_eq!(decoded.hash(), alloy_primitives::keccak256(decoded.raw()));
    }
    let transactions = [legacy, access_list, dynamic];
    module
        .check_transactions(&genesis(), &transactions)
        .expect("valid");
    let output = module
        .execute_block_with_receipts(&genesis(), &context(1), &transactions)
        .expect("executes");
    assert!(output.receipts.iter().all(|receipt| receipt.success));
    assert_eq!(
        module.balance_of(&output.execution.state, &who(9)),
        U256::from(15)
    );
}

#[test]
fn decoding_rejects_each_bad_input_with_its_error() {
    let module = module();
    let good = transfer(1, 0, who(2), 1);
    // Garbage and truncation.
    assert!(matches!(
        module.decode_transaction(&[0x02, 0xff, 0x00]),
        Err(ExecutionError::EvmTransactionDecode { .. })
    ));
    assert!(matches!(
        module.decode_transaction(&good.raw()[..good.raw().len() - 1]),
        Err(ExecutionError::EvmTransactionDecode { .. })
    ));
    assert!(matches!(
        module.decode_transaction(&[]),
        Err(ExecutionError::EvmTransactionDecode { .. })
    ));
    // Oversize, before decoding.
    assert_eq!(
        module.decode_transaction(&vec![0; MAX_TRANSACTION_SIZE + 1]),
        Err(ExecutionError::EvmTransactionTooLarge {
            size: MAX_TRANSACTION_SIZE + 1,
            max: MAX_TRANSACTION_SIZE
        })
    );
    // Another chain; no chain id at all.
    let other = EvmModule {
        chain_id: 1,
        ..module.clone()
    };
    assert_eq!(
        other.decode_transaction(good.raw()),
        Err(ExecutionError::EvmWrongChainId {
            expected: 1,
            got: CHAIN_ID
        })
    );
    let pre_eip155 = EvmTransaction::sign(legacy(0, None), &key(1));
    assert_eq!(
        module.decode_transaction(pre_eip155.raw()),
        Err(ExecutionError::EvmMissingChainId)
    );
    // A signature that recovers nothing: r above the curve order.
    let mut bad = good.raw().to_vec();
    // r and s are the last two 32-byte strings, each with its 0xa0 prefix.
    let r_at = bad.len() - 65;
    assert_eq!((bad[r_at - 1], bad[r_at + 32]), (0xa0, 0xa0));
    bad[r_at..r_at + 32].fill(0xff);
    assert_eq!(
        module.decode_transaction(&bad),
        Err(ExecutionError::EvmBadSignature)
    );
}

#[test]
fn pre_dispatch_checks_name_the_rule_broken() {
    let module = module();
    let state = genesis();
    let check = |transactions: &[EvmTransaction]| module.check_transactions(&state, transactions);
    assert_eq!(
        check(&[transfer(1, 0, who(5), 1), transfer(1, 2, who(5), 1)]),
        Err((1, ExecutionError::EvmNonce { expected: 1, got: 2 }))
    );
    // Seed 3 holds 1,000 wei: 21,000 gas × 20 is far more.
    assert!(matches!(
        check(&[transfer(3, 0, who(5), 1)]),
        Err((0, ExecutionError::EvmInsufficientFunds { .. }))
    ));
    assert_eq!(
        check(&[eip1559(1, 0, TxKind::Call(who(5)), 0, Vec::new(), 30_000_001)]),
        Err((
            0,
            ExecutionError::EvmGasLimitAboveBlock {
                gas_limit: 30_000_001,
                block_gas_limit: 30_000_000
            }
        ))
    );
    let cheap = EvmTransaction::sign(
        TxLegacy {
            gas_price: 6,
            ..legacy(0, Some(CHAIN_ID))
        },
        &key(1),
    );
    assert_eq!(
        check(&[cheap]),
        Err((
            0,
            ExecutionError::EvmFeeBelowBaseFee {
                max_fee: 6,
                base_fee: BASE_FEE
            }
        ))
    );
}

/// A block with deploys, calls, transfers, a revert, a nonce gap (refused by revm) and an account
/// emptied to zero.
fn mixed_block() -> Vec<EvmTransaction> {
    let store = who(1).create(0);
    let token = who(2).create(0);
    vec![
        eip1559(1, 0, TxKind::Create, 0, contracts::store_init_code(), 200_000),
        eip1559(
            2,
            0,
            TxKind::Create,
            0,
            contracts::token_init_code(U256::from(50)),
            300_000,
        ),
        eip1559(1, 1, TxKind::Call(store), 0, vec![7; 32], 100_000),
        eip1559(
            2,
            1,
            TxKind::Call(token),
            0,
            contracts::transfer_call(who(4), U256::from(20)),
            100_000,
        ),
        eip1559(
            2,
            2,
            TxKind::Call(token),
            0,
            contracts::transfer_call(who(4), U256::from(99)),
            100_000,
        ),
        transfer(1, 9, who(6), 1),
        transfer(1, 2, who(6), 1_000),
        eip1559(1, 3, TxKind::Call(store), 0, Vec::new(), 100_000),
    ]
}

#[test]
fn the_stateless_executor_reproduces_every_trace_entry() {
    let module = module();
    let state = genesis();
    let context = context(4);
    let transactions = mixed_block();
    let executed = module
        .execute_block(&state, &context, &transactions)
        .expect("executes");
    assert_eq!(
        executed.outcomes.iter().map(|o| o.success).collect::<Vec<_>>(),
        vec![true, true, true, true, false, false, true, true]
    );
    assert_eq!(
        executed.outcomes[5].fee, 0,
        "a refused transaction is not charged"
    );
    assert_eq!(executed.trace[5], executed.trace[6], "and changes nothing");
    let mut steps = vec![Step::Initialize(&context)];
    for (index, transaction) in transactions.iter().enumerate() {
        steps.push(Step::Transaction {
            context: &context,
            index: u32::try_from(index).expect("small"),
            transaction,
        });
    }
    steps.push(Step::Finalize(&context));
    let mut pre = state;
    for (step, expected) in steps.into_iter().zip(&executed.trace) {
        let witness = module.step_witness(&pre, step).expect("witness");
        assert_eq!(witness.tree.root(), pre.root());
        assert_eq!(module.execute_step(&witness, step), Ok(*expected));
        pre = module.run_step(pre, step).expect("steps");
        assert_eq!(pre.root(), *expected);
    }
    // A witness missing a value cannot pass for the state.
    let step = Step::Transaction {
        context: &context,
        index: 0,
        transaction: &transactions[0],
    };
    let mut witness = module.step_witness(&genesis(), step).expect("witness");
    witness.values.clear();
    assert_eq!(
        module.execute_step(&witness, step),
        Err(ExecutionError::WitnessIncomplete)
    );
}

#[test]
fn execution_is_deterministic() {
    let module = module();
    let first = module
        .execute_block(&genesis(), &context(2), &mixed_block())
        .expect("executes");
    let second = module
        .execute_block(&genesis(), &context(2), &mixed_block())
        .expect("executes");
    assert_eq!(first.trace, second.trace);
    assert_eq!(first.outcomes, second.outcomes);
    assert_eq!(first.execution_fee, second.execution_fee);
    assert_ne!(
        first.trace[0],
        module
            .execute_block(&genesis(), &context(3), &[])
            .expect("executes")
            .trace[0],
        "initialization commits to the block"
    );
}

#[test]
fn genesis_takes_20_byte_accounts() {
    assert_eq!(
        module().genesis(&[(vec![1; 32], 5)]).map(|_| ()),
        Err(ExecutionError::DomainAccount { len: 32 })
    );
    assert_eq!(module().balance(&genesis(), who(3).as_slice()), 1_000);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = module().decode_transaction(&bytes);
        let mut typed = vec![2u8];
        typed.extend_from_slice(&bytes);
        let _ = module().decode_transaction(&typed);
    }

    #[test]
    fn signed_transactions_roundtrip(
        seed in 1u8..=254,
        nonce in any::<u64>(),
        value in any::<u128>(),
        input in proptest::collection::vec(any::<u8>(), 0..100),
        kind in 0u8..3,
    ) {
        let transaction = match kind {
            0 => EvmTransaction::sign(
                TxLegacy { input: input.into(), nonce, value: U256::from(value), ..legacy(0, Some(CHAIN_ID)) },
                &key(seed),
            ),
            1 => EvmTransaction::sign(
                TxEip2930 {
                    chain_id: CHAIN_ID, nonce, gas_price: 1, gas_limit: 50_000, to: TxKind::Create,
                    value: U256::from(value), access_list: AccessList::default(), input: input.into(),
                },
                &key(seed),
            ),
            _ => eip1559(seed, nonce, TxKind::Call(who(2)), value, input, 60_000),
        };
        let decoded = decode(&transaction).expect("decodes");
        prop_assert_eq!(&decoded, &transaction);
        prop_assert_eq!(decoded.signer(), who(seed));
        // Every truncation is rejected.
        let raw = transaction.raw();
        for len in [0, 1, raw.len() / 2, raw.len() - 1] {
            prop_assert!(module().decode_transaction(&raw[..len]).is_err());
        }
    }
}
