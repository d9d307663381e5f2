//! EVM domain benchmarks: a block of 1,000 transactions executed by our EVM module (revm over the
//! protocol state tree, with a state root after every transaction: the execution trace receipts commit
//! to) against the same transactions executed by plain revm over its in-memory `CacheDB<EmptyDB>` (no
//! roots, no trace), in the same run; the ratio is what traces and state roots cost. Two kinds of block:
//! ETH transfers (100 senders × 10 transfers each, to 1,000 fresh accounts) and ERC-20-like token
//! transfers (the hand-assembled token of `evm::contracts`, 1,000 transfers from its deployer).
//!
//! Also the consensus-side cost of a bundle: `Domains::check_bundle` on a bundle of 100 EVM transfers
//! (decode bound, limits, extrinsics root, sr25519 signature, VRF, threshold, receipt).

use std::hint::black_box;

use acre_consensus::hashing::Blake3Hash;
use acre_consensus::pot::{PotOutput, slot_challenge};
use acre_consensus::{BlockNumber, SlotNumber};
use acre_execution::Address as ConsensusAddress;
use acre_execution::domains::bundle::{Bundle, BundleHeader, body_size, extrinsics_root};
use acre_execution::domains::election::{SlotProbability, VrfProof, operator_keypair};
use acre_execution::domains::evm::{EvmModule, EvmState, EvmTransaction, address_of, contracts};
use acre_execution::domains::module::{BlockContext, ExecutionModule, ModuleId};
use acre_execution::domains::registry::{
    AllowList, BlockBundles, BundleContext, DomainConfig, DomainParams, Domains,
};
use acre_execution::domains::{DomainBlockNumber, OperatorId};
use acre_execution::staking::ACRE;
use alloy_consensus::TxEip1559;
use alloy_eips::eip2930::AccessList;
use alloy_primitives::{Address, Bytes, TxKind, U256};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use k256::ecdsa::SigningKey;
use revm::context::Context;
use revm::database::{CacheDB, EmptyDB};
use revm::handler::{MainBuilder, MainContext};
use revm::state::AccountInfo;
use revm::{DatabaseCommit, ExecuteEvm};

const CHAIN_ID: u64 = 31_337;
const ETHER: u128 = 1_000_000_000_000_000_000;
const SENDERS: u8 = 100;
const PER_SENDER: u64 = 10;

fn module() -> EvmModule {
    EvmModule::for_domain(CHAIN_ID)
}

fn key(seed: u8) -> SigningKey {
    let mut bytes = [seed; 32];
    bytes[0] = 1;
    SigningKey::from_bytes(&bytes.into()).expect("a valid scalar")
}

fn sign(key: &SigningKey, nonce: u64, to: TxKind, value: u128, input: Vec<u8>, gas: u64) -> EvmTransaction {
    EvmTransaction::sign(
        TxEip1559 {
            chain_id: CHAIN_ID,
            nonce,
            gas_limit: gas,
            max_fee_per_gas: 2_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            to,
            value: U256::from(value),
            access_list: AccessList::default(),
            input: Bytes::from(input),
        },
        key,
    )
}

fn recipient(index: u64) -> Address {
    let mut bytes = [0x55; 20];
    bytes[12..].copy_from_slice(&index.to_be_bytes());
    Address::from(bytes)
}

fn context(number: u64) -> BlockContext {
    BlockContext {
        number: DomainBlockNumber(number),
        parent_hash: Blake3Hash([9; 32]),
        timestamp_ms: 12_000 * number,
        consensus_byte_fee: 1,
    }
}

/// The ETH-transfer block and the funded senders.
fn eth_block() -> (Vec<(Address, u128)>, Vec<EvmTransaction>) {
    let senders: Vec<_> = (1..=SENDERS).map(key).collect();
    let funded = senders
        .iter()
        .map(|key| (address_of(key), 1_000 * ETHER))
        .collect();
    let transactions = (0..PER_SENDER)
        .flat_map(|nonce| {
            senders.iter().enumerate().map(move |(index, key)| {
                let to = recipient(nonce * u64::from(SENDERS) + index as u64);
                sign(key, nonce, TxKind::Call(to), 1_000, Vec::new(), 21_000)
            })
        })
        .collect();
    (funded, transactions)
}

/// A plain revm database with `funded` accounts.
fn plain_db(funded: &[(Address, u128)]) -> CacheDB<EmptyDB> {
    let mut db = CacheDB::new(EmptyDB::default());
    for (address, balance) in funded {
        db.insert_account_info(*address, AccountInfo::from_balance(U256::from(*balance)));
    }
    db
}

/// Executes `transactions` with plain revm over `db` (committing each), as our block executor does
/// over the state tree.
fn plain_block(
    module: &EvmModule,
    db: CacheDB<EmptyDB>,
    transactions: &[EvmTransaction],
) -> CacheDB<EmptyDB> {
    let mut evm = Context::mainnet()
        .with_db(db)
        .modify_cfg_chained(|cfg| {
            cfg.chain_id = module.chain_id;
            cfg.spec = acre_execution::domains::evm::SPEC;
        })
        .modify_block_chained(|block| {
            block.basefee = 1_000_000_000;
            block.gas_limit = module.block_gas_limit;
            block.number = U256::from(1);
        })
        .build_mainnet();
    for transaction in transactions {
        let outcome = evm.transact(transaction.tx_env()).expect("executes");
        assert!(outcome.result.is_success());
        evm.ctx.journaled_state.database.commit(outcome.state);
    }
    evm.ctx.journaled_state.database
}

fn ours(module: &EvmModule, parent: &EvmState, transactions: &[EvmTransaction]) -> Blake3Hash {
    let executed = module
        .execute_block(parent, &context(2), transactions)
        .expect("executes");
    assert!(executed.outcomes.iter().all(|outcome| outcome.success));
    *executed.trace.last().expect("a trace")
}

fn evm_blocks(c: &mut Criterion) {
    let module = module();
    let mut group = c.benchmark_group("evm_block_1000");
    group.sample_size(20);

    let (funded, transfers) = eth_block();
    let genesis = module
        .genesis(
            &funded
                .iter()
                .map(|(address, balance)| (address.to_vec(), *balance))
                .collect::<Vec<_>>(),
        )
        .expect("genesis");
    group.bench_function("eth_transfers/ours", |b| {
        b.iter(|| black_box(ours(&module, &genesis, &transfers)));
    });
    let db = plain_db(&funded);
    group.bench_function("eth_transfers/plain_revm", |b| {
        b.iter_batched(
            || db.clone(),
            |db| black_box(plain_block(&module, db, &transfers)),
            BatchSize::LargeInput,
        );
    });

    // Token transfers: the deployer (sender 1) deploys the token, then sends 1,000 transfers.
    let deployer = key(1);
    let deploy = sign(
        &deployer,
        0,
        TxKind::Create,
        0,
        contracts::token_init_code(U256::from(u64::MAX)),
        1_000_000,
    );
    let token = deployer_contract(&address_of(&deployer));
    let token_transfers: Vec<_> = (0..1_000u64)
        .map(|index| {
            sign(
                &deployer,
                index + 1,
                TxKind::Call(token),
                0,
                contracts::transfer_call(recipient(index), U256::from(10)),
                100_000,
            )
        })
        .collect();
    let deployed = module
        .execute_block(&genesis, &context(1), std::slice::from_ref(&deploy))
        .expect("deploys")
        .state;
    assert_eq!(module.code(&deployed, &token), contracts::token_runtime());
    group.bench_function("token_transfers/ours", |b| {
        b.iter(|| black_box(ours(&module, &deployed, &token_transfers)));
    });
    let deployed_db = plain_block(&module, plain_db(&funded), std::slice::from_ref(&deploy));
    group.bench_function("token_transfers/plain_revm", |b| {
        b.iter_batched(
            || deployed_db.clone(),
            |db| black_box(plain_block(&module, db, &token_transfers)),
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

/// The address a sender's first creation deploys to.
fn deployer_contract(sender: &Address) -> Address {
    sender.create(0)
}

fn bundle_verification(c: &mut Criterion) {
    let mut domains = Domains::new(DomainParams::dev());
    let config = DomainConfig {
        name: "bench".into(),
        module: ModuleId::Evm,
        slot_probability: SlotProbability {
            numerator: 1,
            denominator: 1,
        },
        // 100 transfers (11 KiB) exceed the dev limit derived from the block size for one bundle a slot
        // (10.7 KiB): the bench's domain allows a whole block's 64 KiB in one bundle.
        max_bundle_size: Some(64 * 1024),
        max_bundle_weight: None,
        allow_list: AllowList::Anyone,
        initial_balances: Vec::new(),
        evm_chain_id: Some(CHAIN_ID),
    };
    let root = acre_execution::domains::genesis_state_root(&config).expect("a root");
    let (domain, _) = domains
        .instantiate(
            ConsensusAddress([1; 32]),
            config,
            BlockNumber(0),
            Blake3Hash::ZERO,
            root,
        )
        .expect("instantiates");
    let keypair = operator_keypair(&[7; 32]);
    let operator = domains
        .register_operator(
            domain,
            ConsensusAddress([2; 32]),
            keypair.public.to_bytes(),
            100 * ACRE,
            5,
            ACRE,
        )
        .expect("registers");
    domains
        .domains
        .get_mut(&domain)
        .expect("the domain")
        .staking
        .end_epoch(DomainBlockNumber(0))
        .expect("the first epoch ends");
    let receipt = domains
        .domain(domain)
        .expect("the domain")
        .block_tree
        .head()
        .expect("genesis")
        .1
        .receipt
        .clone();
    let slot = SlotNumber(10);
    let pot = PotOutput([3; 16]);
    let (vrf, _) = VrfProof::prove(&keypair, domain, &slot_challenge(&pot, slot));
    let (_, transfers) = eth_block();
    let body: Vec<Vec<u8>> = transfers[..100].iter().map(|tx| tx.raw().to_vec()).collect();
    let header = BundleHeader {
        version: Bundle::VERSION,
        domain_id: domain,
        operator_id: operator,
        slot,
        pot_output: pot,
        vrf,
        receipt,
        extrinsics_root: extrinsics_root(&body),
        size: body_size(&body).expect("small"),
        weight: 100 * 21_000,
    };
    let bundle = Bundle::sign(header, body, &keypair);
    let encoded = bundle.encode();
    let known_pot = move |at: SlotNumber| (at == slot).then_some(pot);
    let hash = |number: BlockNumber| Some(Blake3Hash([number.0 as u8; 32]));
    let context = BundleContext {
        number: BlockNumber(10),
        slot,
        future_slots: 4,
        oldest_slot: SlotNumber(5),
        byte_fee: 1,
        pot_output: &known_pot,
        consensus_hash: &hash,
    };
    let block = BlockBundles::default();
    domains
        .check_bundle(&bundle, &context, &block)
        .expect("a valid bundle");
    let mut group = c.benchmark_group("bundle_verification");
    group.bench_function("decode_and_check_100_transfers", |b| {
        b.iter(|| {
            let bundle = Bundle::decode(black_box(&encoded)).expect("decodes");
            black_box(domains.check_bundle(&bundle, &context, &block).expect("valid"))
        });
    });
    // The floor: the two curve operations every bundle costs (its signature and its VRF), alone.
    let public = keypair.public.to_bytes();
    group.bench_function("reference_signature_and_vrf_only", |b| {
        b.iter(|| {
            bundle.verify_signature(black_box(&public)).expect("signed");
            black_box(
                bundle
                    .header
                    .vrf
                    .verify(&public, domain, &slot_challenge(&pot, slot))
                    .expect("a VRF"),
            )
        });
    });
    group.finish();
    assert_eq!(operator, OperatorId(0));
}

criterion_group!(benches, evm_blocks, bundle_verification);
criterion_main!(benches);
