use schnorrkel::{ExpansionMode, Keypair, MiniSecretKey};

use super::*;
use crate::domains::balances::BalancesModule;
use crate::domains::bundle::{Bundle, BundleHeader, body_size, extrinsics_root};
use crate::domains::election::{VrfProof, is_elected, threshold};
use crate::domains::module::ExecutionModule;
use crate::staking::ACRE;
use acre_consensus::codec;
use acre_consensus::pot::slot_challenge;

pub(crate) fn operator_key(seed: u8) -> Keypair {
    MiniSecretKey::from_bytes(&[seed; 32])
        .expect("32 bytes")
        .expand_to_keypair(ExpansionMode::Ed25519)
}

fn pot(slot: SlotNumber) -> PotOutput {
    PotOutput([slot.get() as u8; 16])
}

fn known_pot(slot: SlotNumber) -> Option<PotOutput> {
    Some(pot(slot))
}

fn consensus_hash(number: BlockNumber) -> Option<Blake3Hash> {
    Some(Blake3Hash([number.get() as u8; 32]))
}

pub(crate) struct Fixture {
    pub(crate) domains: Domains,
    pub(crate) keys: Vec<Keypair>,
}

pub(crate) fn config() -> DomainConfig {
    DomainConfig {
        name: "test".into(),
        module: ModuleId::Balances,
        slot_probability: SlotProbability {
            numerator: 1,
            denominator: 1,
        },
        max_bundle_size: Some(1_000),
        max_bundle_weight: Some(100),
        allow_list: AllowList::Anyone,
        initial_balances: vec![(vec![1; 32], 500)],
        evm_chain_id: None,
    }
}

/// One domain with two operators of equal stake, electable (their first epoch ended).
pub(crate) fn fixture() -> Fixture {
    let mut domains = Domains::new(DomainParams::dev());
    let module = BalancesModule {
        chain: Blake3Hash::ZERO,
    };
    let state = module.genesis(&config().initial_balances).expect("genesis");
    let (id, burned) = domains
        .instantiate(
            Address([1; 32]),
            config(),
            BlockNumber(0),
            Blake3Hash([0; 32]),
            module.state_root(&state),
        )
        .expect("instantiates");
    assert_eq!((id, burned), (DomainId(0), 500));
    let keys = vec![operator_key(1), operator_key(2)];
    for (index, key) in keys.iter().enumerate() {
        let operator = domains
            .register_operator(
                id,
                Address([10 + index as u8; 32]),
                key.public.to_bytes(),
                100 * ACRE,
                10,
                ACRE,
            )
            .expect("registers");
        assert_eq!(operator, OperatorId(index as u64));
    }
    domains
        .domains
        .get_mut(&id)
        .expect("exists")
        .staking
        .end_epoch(DomainBlockNumber(0))
        .expect("epoch");
    Fixture { domains, keys }
}

fn context(slot: u64) -> BundleContext<'static> {
    BundleContext {
        number: BlockNumber(slot),
        slot: SlotNumber(slot),
        future_slots: 2,
        oldest_slot: SlotNumber(slot.saturating_sub(5)),
        byte_fee: 1,
        pot_output: &known_pot,
        consensus_hash: &consensus_hash,
    }
}

impl Fixture {
    /// Whether `operator` is elected in `slot`.
    pub(crate) fn elected(&self, operator: usize, slot: SlotNumber) -> bool {
        let domain = self.domains.domain(DomainId(0)).expect("exists");
        let stakes = domain.staking.election_stakes();
        let total = stakes.values().sum();
        let (_, output) = VrfProof::prove(
            &self.keys[operator],
            DomainId(0),
            &slot_challenge(&pot(slot), slot),
        );
        is_elected(
            &output,
            threshold(
                domain.config.slot_probability,
                total,
                stakes[&OperatorId(operator as u64)],
            ),
        )
    }

    /// A signed bundle of `operator` for `slot` with `body`, carrying the head receipt.
    pub(crate) fn bundle(&self, operator: usize, slot: SlotNumber, body: Vec<Vec<u8>>) -> Bundle {
        let domain = self.domains.domain(DomainId(0)).expect("exists");
        let receipt = domain.block_tree.head().expect("head").1.receipt.clone();
        let (vrf, _) = VrfProof::prove(
            &self.keys[operator],
            DomainId(0),
            &slot_challenge(&pot(slot), slot),
        );
        let header = BundleHeader {
            version: Bundle::VERSION,
            domain_id: DomainId(0),
            operator_id: OperatorId(operator as u64),
            slot,
            pot_output: pot(slot),
            vrf,
            receipt,
            extrinsics_root: extrinsics_root(&body),
            size: body_size(&body).expect("small"),
            weight: body.len() as u64,
        };
        Bundle::sign(header, body, &self.keys[operator])
    }

    /// The first slot from `from` where `operator` is (or is not) elected.
    pub(crate) fn slot_where(&self, operator: usize, elected: bool, from: u64) -> SlotNumber {
        (from..from + 200)
            .map(SlotNumber)
            .find(|slot| self.elected(operator, *slot) == elected)
            .expect("an even chance each slot")
    }
}

#[test]
fn a_valid_bundle_is_accepted_and_defines_a_domain_block() {
    let mut fixture = fixture();
    let slot = fixture.slot_where(0, true, 10);
    let bundle = fixture.bundle(0, slot, vec![vec![7; 40]]);
    let mut block = BlockBundles::default();
    let fund_before = fixture.domains.domains[&DomainId(0)].staking.operators[&OperatorId(0)].storage_fund;
    let held_before = fixture.domains.held();
    let accepted = fixture
        .domains
        .accept_bundle(&bundle, &context(slot.get()), &mut block)
        .expect("accepted");
    assert_eq!(accepted.domain_number, DomainBlockNumber(1));
    assert_eq!(accepted.storage_fee, codec::encode(&bundle).len() as u128);
    let domain = &fixture.domains.domains[&DomainId(0)];
    assert_eq!(
        domain.staking.operators[&OperatorId(0)].storage_fund,
        fund_before - accepted.storage_fee
    );
    // The fee left the domains' holdings for the block author: nothing else moved.
    assert_eq!(fixture.domains.held(), held_before - accepted.storage_fee);
    assert_eq!(
        domain.inbox[&DomainBlockNumber(1)],
        (BlockNumber(slot.get()), vec![bundle.header.extrinsics_root])
    );
    assert_eq!(domain.last_slots[&OperatorId(0)], slot);
    // The genesis receipt was endorsed.
    let (_, head) = domain.block_tree.head().expect("head");
    assert!(head.operators.contains(&OperatorId(0)));
}

#[test]
fn every_invalid_bundle_gets_its_own_error_and_changes_nothing() {
    let mut fixture = fixture();
    let slot = fixture.slot_where(0, true, 10);
    let ctx = context(slot.get());
    let check = |fixture: &Fixture, bundle: &Bundle, block: &BlockBundles| {
        let before = fixture.domains.clone();
        let result = fixture.domains.check_bundle(bundle, &ctx, block);
        assert_eq!(fixture.domains, before);
        result.map(|_| ())
    };
    let empty = BlockBundles::default();
    let good = fixture.bundle(0, slot, vec![vec![7; 40]]);
    assert_eq!(check(&fixture, &good, &empty), Ok(()));

    // Bad signature.
    let mut forged = good.clone();
    forged.signature = fixture.bundle(1, slot, vec![vec![7; 40]]).signature;
    assert_eq!(
        check(&fixture, &forged, &empty),
        Err(ExecutionError::BadBundleSignature)
    );
    // Bad VRF: another slot's proof, re-signed so only the VRF is wrong.
    let other_slot = SlotNumber(slot.get() + 1);
    let mut header = good.header.clone();
    header.vrf = fixture.bundle(0, other_slot, Vec::new()).header.vrf;
    let bad_vrf = Bundle::sign(header, good.body.clone(), &fixture.keys[0]);
    assert_eq!(check(&fixture, &bad_vrf, &empty), Err(ExecutionError::BadVrf));
    // Wrong threshold: a slot the operator did not win.
    let lost = fixture.slot_where(0, false, 10);
    let not_elected = fixture.bundle(0, lost, Vec::new());
    assert_eq!(
        fixture
            .domains
            .check_bundle(&not_elected, &context(lost.get()), &empty)
            .map(|_| ()),
        Err(ExecutionError::BundleThreshold(0))
    );
    // Oversize body, and a size or root that lies about the body.
    let big = fixture.bundle(0, slot, vec![vec![7; 1_001]]);
    assert_eq!(
        check(&fixture, &big, &empty),
        Err(ExecutionError::BundleTooLarge {
            size: 1_001,
            max: 1_000
        })
    );
    let mut lying = good.header.clone();
    lying.size += 1;
    let lying = Bundle::sign(lying, good.body.clone(), &fixture.keys[0]);
    assert_eq!(
        check(&fixture, &lying, &empty),
        Err(ExecutionError::BundleSizeMismatch {
            declared: 41,
            actual: 40
        })
    );
    let mut swapped = good.clone();
    swapped.body = vec![vec![8; 40]];
    assert_eq!(
        check(&fixture, &swapped, &empty),
        Err(ExecutionError::ExtrinsicsRootMismatch)
    );
    let mut heavy = good.header.clone();
    heavy.weight = 101;
    let heavy = Bundle::sign(heavy, good.body.clone(), &fixture.keys[0]);
    assert_eq!(
        check(&fixture, &heavy, &empty),
        Err(ExecutionError::BundleTooHeavy {
            weight: 101,
            max: 100
        })
    );
    // Stale and future slots; a PoT output that is not the chain's.
    let old = fixture.bundle(0, slot, Vec::new());
    assert_eq!(
        fixture
            .domains
            .check_bundle(&old, &context(slot.get() + 6), &empty)
            .map(|_| ()),
        Err(ExecutionError::BundleTooOld {
            slot: slot.get(),
            oldest: slot.get() + 1
        })
    );
    assert_eq!(
        fixture
            .domains
            .check_bundle(&old, &context(slot.get() - 3), &empty)
            .map(|_| ()),
        Err(ExecutionError::BundleFromFuture {
            slot: slot.get(),
            block_slot: slot.get() - 3
        })
    );
    let mut wrong_pot = good.header.clone();
    wrong_pot.pot_output = PotOutput([0xEE; 16]);
    let wrong_pot = Bundle::sign(wrong_pot, good.body.clone(), &fixture.keys[0]);
    assert_eq!(
        check(&fixture, &wrong_pot, &empty),
        Err(ExecutionError::BundlePot { slot: slot.get() })
    );
    // Unknown domain and operator; unsupported version.
    let mut elsewhere = good.header.clone();
    elsewhere.domain_id = DomainId(9);
    let elsewhere = Bundle::sign(elsewhere, good.body.clone(), &fixture.keys[0]);
    assert_eq!(
        check(&fixture, &elsewhere, &empty),
        Err(ExecutionError::UnknownDomain(9))
    );
    let mut stranger = good.header.clone();
    stranger.operator_id = OperatorId(7);
    let stranger = Bundle::sign(stranger, good.body.clone(), &fixture.keys[0]);
    assert_eq!(
        check(&fixture, &stranger, &empty),
        Err(ExecutionError::OperatorNotOnDomain {
            operator: 7,
            domain: 0
        })
    );
    let mut future = good.header.clone();
    future.version = 2;
    let future = Bundle::sign(future, good.body.clone(), &fixture.keys[0]);
    assert_eq!(
        check(&fixture, &future, &empty),
        Err(ExecutionError::UnsupportedBundleVersion { version: 2 })
    );
    // Wrong receipts: one from the future, one whose inbox does not exist.
    let mut ahead = good.header.clone();
    ahead.receipt.domain_number = DomainBlockNumber(2);
    let ahead = Bundle::sign(ahead, good.body.clone(), &fixture.keys[0]);
    assert_eq!(
        check(&fixture, &ahead, &empty),
        Err(ExecutionError::ReceiptInFuture { number: 2 })
    );
    let mut next = good.header.clone();
    next.receipt.domain_number = DomainBlockNumber(1);
    let next = Bundle::sign(next, good.body.clone(), &fixture.keys[0]);
    assert_eq!(
        check(&fixture, &next, &empty),
        Err(ExecutionError::ReceiptInbox { number: 1 })
    );
    let mut forked = good.header.clone();
    forked.receipt.final_state_root = Blake3Hash([5; 32]);
    let forked = Bundle::sign(forked, good.body.clone(), &fixture.keys[0]);
    assert_eq!(
        check(&fixture, &forked, &empty),
        Err(ExecutionError::ReceiptPruned { number: 0 })
    );

    // Equivocation in a block, and a slot reused in a later block.
    let mut block = BlockBundles::default();
    fixture
        .domains
        .accept_bundle(&good, &ctx, &mut block)
        .expect("accepted");
    let twin = fixture.bundle(0, slot, vec![vec![9; 10]]);
    assert_eq!(
        check(&fixture, &twin, &block),
        Err(ExecutionError::BundleEquivocation {
            operator: 0,
            slot: slot.get()
        })
    );
    assert_eq!(
        check(&fixture, &twin, &empty),
        Err(ExecutionError::BundleSlotReused {
            slot: slot.get(),
            last: slot.get()
        })
    );
}

#[test]
fn receipts_confirm_after_the_challenge_period_and_pay_their_operators() {
    // Drive the domain with receipt-carrying bundles over many blocks: operator 0 submits the next
    // receipt each block once the previous block's inbox exists.
    let mut fixture = fixture();
    let challenge_period = fixture.domains.params.challenge_period;
    let mut slot = 10;
    let mut confirmed = Vec::new();
    let mut paid_fee = 0;
    for round in 1..=challenge_period + 5 {
        let elected = fixture.slot_where(0, true, slot);
        slot = elected.get() + 1;
        let domain = &fixture.domains.domains[&DomainId(0)];
        let mut bundle = fixture.bundle(0, elected, Vec::new());
        // The receipt for the block defined last round, built from the inbox.
        if let Some((consensus_number, roots)) = domain.inbox.get(&DomainBlockNumber(round - 1)) {
            let (parent_hash, _) = domain.block_tree.head().expect("head");
            let trace = vec![Blake3Hash([round as u8; 32])];
            let receipt = ExecutionReceipt {
                domain_number: DomainBlockNumber(round - 1),
                domain_hash: Blake3Hash([round as u8; 32]),
                extrinsics_root: Blake3Hash::ZERO,
                parent_receipt: *parent_hash,
                consensus_number: *consensus_number,
                consensus_hash: consensus_hash(*consensus_number).expect("known"),
                bundles: roots
                    .iter()
                    .map(|root| crate::domains::receipt::InboxedBundle {
                        validity: crate::domains::receipt::BundleValidity::Valid(Blake3Hash::ZERO),
                        extrinsics_root: *root,
                    })
                    .collect(),
                final_state_root: trace[0],
                trace_root: crate::domains::receipt::trace_root(&trace),
                trace,
                fees: crate::domains::receipt::BlockFees {
                    execution_fee: 10,
                    ..Default::default()
                },
                transfers: Default::default(),
            };
            let mut header = bundle.header.clone();
            header.receipt = receipt;
            bundle = Bundle::sign(header, Vec::new(), &fixture.keys[0]);
        }
        let mut block = BlockBundles::default();
        let accepted = fixture
            .domains
            .accept_bundle(&bundle, &context(elected.get()), &mut block)
            .unwrap_or_else(|error| panic!("round {round}: {error}"));
        if let Some(node) = accepted.confirmed {
            confirmed.push(node.receipt.domain_number.0);
            paid_fee += 10;
        }
    }
    assert_eq!(confirmed, (1..=4).collect::<Vec<_>>());
    let domain = &fixture.domains.domains[&DomainId(0)];
    assert_eq!(domain.balance, 500 - paid_fee);
    // Inbox entries of confirmed blocks are gone.
    assert!(domain.inbox.keys().all(|number| number.0 > 4));
}

#[test]
fn instantiation_refuses_bad_configs() {
    let mut domains = Domains::new(DomainParams::dev());
    let owner = Address([1; 32]);
    let mut instantiate = |config: DomainConfig| {
        domains.instantiate(owner, config, BlockNumber(0), Blake3Hash::ZERO, Blake3Hash::ZERO)
    };
    let long = DomainConfig {
        name: "x".repeat(33),
        ..config()
    };
    assert_eq!(
        instantiate(long),
        Err(ExecutionError::DomainName { len: 33, max: 32 })
    );
    let odds = DomainConfig {
        slot_probability: SlotProbability {
            numerator: 2,
            denominator: 1,
        },
        ..config()
    };
    assert_eq!(
        instantiate(odds),
        Err(ExecutionError::SlotProbability {
            numerator: 2,
            denominator: 1
        })
    );
    let evm = DomainConfig {
        module: ModuleId::Evm,
        ..config()
    };
    assert_eq!(instantiate(evm), Err(ExecutionError::MissingChainId));
    let many = DomainConfig {
        initial_balances: vec![(vec![1; 20], 1); 11],
        ..config()
    };
    assert_eq!(
        instantiate(many),
        Err(ExecutionError::TooManyInitialBalances { count: 11, max: 10 })
    );
    let derived = DomainConfig {
        max_bundle_size: None,
        max_bundle_weight: None,
        ..config()
    };
    let (id, _) = instantiate(derived).expect("instantiates");
    // One bundle per slot, six slots per block: a sixth of the block each.
    assert_eq!(
        domains.domains[&id].bundle_limits,
        (64 * 1024 / 6, 30_000_000 / 6)
    );
    let allow = DomainConfig {
        allow_list: AllowList::Only(BTreeSet::from([owner])),
        ..config()
    };
    let (id, _) = domains
        .instantiate(owner, allow, BlockNumber(0), Blake3Hash::ZERO, Blake3Hash::ZERO)
        .expect("instantiates");
    let stranger = Address([2; 32]);
    assert_eq!(
        domains.register_operator(
            id,
            stranger,
            operator_key(1).public.to_bytes(),
            100 * ACRE,
            0,
            ACRE
        ),
        Err(ExecutionError::NotAllowedToOperate(stranger))
    );
    assert_eq!(
        domains.register_operator(id, owner, [0xFF; 32], 100 * ACRE, 0, ACRE),
        Err(ExecutionError::InvalidOperatorKey)
    );
}

#[test]
fn while_receipts_trail_by_more_than_one_block_bundles_are_singleton_receipts() {
    let mut fixture = fixture();
    // Two blocks whose bundles only endorse the genesis receipt: two domain blocks, no new receipt.
    let mut slot = 10;
    for expected in 1..=2 {
        let won = fixture.slot_where(0, true, slot);
        let bundle = fixture.bundle(0, won, Vec::new());
        let accepted = fixture
            .domains
            .accept_bundle(&bundle, &context(won.get()), &mut BlockBundles::default())
            .expect("accepted");
        assert!(!accepted.singleton);
        assert_eq!(accepted.domain_number, DomainBlockNumber(expected));
        slot = won.get() + 1;
    }
    let domain = fixture.domains.domain(DomainId(0)).expect("exists");
    assert_eq!(domain.receipt_gap(), 2);
    let inbox_before = domain.inbox.clone();

    // Now a bundle with transactions is refused, and an empty one is a singleton receipt: it defines no
    // domain block and is not inboxed.
    let won = fixture.slot_where(0, true, slot);
    let with_body = fixture.bundle(0, won, vec![vec![7; 40]]);
    assert_eq!(
        fixture
            .domains
            .check_bundle(&with_body, &context(won.get()), &BlockBundles::default()),
        Err(ExecutionError::ReceiptGap { gap: 2 })
    );
    let singleton = fixture.bundle(0, won, Vec::new());
    let accepted = fixture
        .domains
        .accept_bundle(&singleton, &context(won.get()), &mut BlockBundles::default())
        .expect("accepted");
    assert!(accepted.singleton);
    let domain = fixture.domains.domain(DomainId(0)).expect("exists");
    assert_eq!(domain.head_domain_number, DomainBlockNumber(2));
    assert_eq!(domain.inbox, inbox_before);
}
