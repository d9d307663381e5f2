use super::*;
use crate::domains::balances::tests::{genesis, module, transfer, who};
use crate::domains::balances::{BalancesModule, TRANSFER_WEIGHT};
use crate::domains::bundle::BundleHeader;
use crate::domains::election::VrfProof;
use crate::domains::{DomainId, OperatorId};
use acre_consensus::SlotNumber;

fn bundle(body: Vec<Vec<u8>>, weight: u64) -> Bundle {
    let genesis = ExecutionReceipt::genesis(Blake3Hash::ZERO, BlockNumber(0), Blake3Hash::ZERO);
    Bundle {
        header: BundleHeader {
            version: Bundle::VERSION,
            domain_id: DomainId(0),
            operator_id: OperatorId(0),
            slot: SlotNumber(1),
            pot_output: PotOutput([0; 16]),
            vrf: VrfProof {
                output: [0; 32],
                proof: [0; 64],
            },
            receipt: genesis,
            extrinsics_root: extrinsics_root(&body),
            size: 0,
            weight,
        },
        signature: [0; 64],
        body,
    }
}

fn facts(pot: u8) -> ConsensusFacts {
    ConsensusFacts {
        number: BlockNumber(4),
        hash: Blake3Hash([4; 32]),
        pot_output: PotOutput([pot; 16]),
        timestamp_ms: 4_000,
        byte_fee: 1,
        storage_fees: 30,
    }
}

fn derive(
    bundles: &[Bundle],
    pot: u8,
    tx_range: u128,
) -> DerivedBlock<crate::domains::balances::BalancesState> {
    let module: BalancesModule = module();
    let state = genesis();
    let parent = DomainHeader::genesis(module.state_root(&state));
    let inboxed: Vec<_> = bundles
        .iter()
        .map(|bundle| InboxBundle {
            bundle,
            vrf_output: [9; 32],
        })
        .collect();
    derive_block(
        &module,
        &state,
        &parent,
        Blake3Hash([1; 32]),
        &facts(pot),
        &inboxed,
        tx_range,
    )
    .expect("derives")
}

#[test]
fn each_invalid_bundle_is_judged_by_its_first_broken_rule() {
    let good = bundle(
        vec![transfer(1, 3, 10, 0).encode(), transfer(1, 3, 10, 1).encode()],
        2 * TRANSFER_WEIGHT,
    );
    let undecodable = bundle(vec![transfer(2, 3, 1, 0).encode(), vec![1, 2, 3]], 2);
    let illegal = bundle(
        vec![transfer(2, 3, 1, 0).encode(), transfer(2, 3, 1, 7).encode()],
        2,
    );
    let heavy = bundle(vec![transfer(2, 3, 1, 0).encode()], 5);
    let derived = derive(&[good, undecodable, illegal, heavy], 1, u128::MAX);
    let validity: Vec<_> = derived.receipt.bundles.iter().map(|b| b.validity).collect();
    assert!(matches!(validity[0], BundleValidity::Valid(_)));
    assert_eq!(
        validity[1..],
        [
            BundleValidity::Invalid {
                kind: InvalidBundleKind::Undecodable,
                index: 1
            },
            BundleValidity::Invalid {
                kind: InvalidBundleKind::Illegal,
                index: 1
            },
            BundleValidity::Invalid {
                kind: InvalidBundleKind::InvalidWeight,
                index: 0
            },
        ]
    );
    // Only the valid bundle's transactions ran.
    assert_eq!(derived.transactions.len(), 2);
    assert_eq!(derived.receipt.trace.len(), 4);
    assert_eq!(derived.receipt.check_self(), Ok(()));
    assert_eq!(derived.receipt.fees.execution_fee, 2);
    assert_eq!(derived.receipt.fees.consensus_storage_fee, 30);
    assert_eq!(derived.header.number, DomainBlockNumber(1));
    assert_eq!(derived.receipt.domain_hash, derived.header.hash());
}

#[test]
fn signers_outside_the_transaction_range_invalidate_the_bundle() {
    let vrf = [9u8; 32];
    let fits = (1..=60u8)
        .filter(|seed| in_tx_range(&who(*seed), &vrf, INITIAL_TX_RANGE))
        .count();
    // About a third of the signer space is in range.
    assert!((8..=32).contains(&fits), "{fits}");
    let outsider = (1..=60u8)
        .find(|seed| !in_tx_range(&who(*seed), &vrf, INITIAL_TX_RANGE))
        .expect("some do not fit");
    let module = module();
    let funded = module.genesis(&[(who(outsider).to_vec(), 100)]).expect("genesis");
    let out = bundle(vec![transfer(outsider, 3, 1, 0).encode()], 1);
    let derived = derive_block(
        &module,
        &funded,
        &DomainHeader::genesis(module.state_root(&funded)),
        Blake3Hash::ZERO,
        &facts(1),
        &[InboxBundle {
            bundle: &out,
            vrf_output: vrf,
        }],
        INITIAL_TX_RANGE,
    )
    .expect("derives");
    assert_eq!(
        derived.receipt.bundles[0].validity,
        BundleValidity::Invalid {
            kind: InvalidBundleKind::OutOfRange,
            index: 0
        }
    );
}

#[test]
fn duplicates_are_dropped_and_the_shuffle_keeps_each_signers_order() {
    let a: Vec<_> = (0..4).map(|nonce| transfer(1, 3, 1, nonce).encode()).collect();
    let b: Vec<_> = (0..4).map(|nonce| transfer(2, 3, 1, nonce).encode()).collect();
    let first = bundle(a.clone(), 4);
    // The second bundle repeats two of the first's transactions, then has its own.
    let second = bundle(
        [a[0].clone(), a[1].clone()]
            .into_iter()
            .chain(b.clone())
            .collect(),
        6,
    );
    let mut orders = BTreeSet::new();
    for pot in 0..8 {
        let derived = derive(&[first.clone(), second.clone()], pot, u128::MAX);
        assert_eq!(derived.transactions.len(), 8, "duplicates dropped");
        assert!(
            derived.execution.outcomes.iter().all(|o| o.success),
            "nonces stay in order"
        );
        let of = |list: &[Vec<u8>]| -> Vec<Vec<u8>> {
            derived
                .transactions
                .iter()
                .filter(|tx| list.contains(tx))
                .cloned()
                .collect()
        };
        assert_eq!(of(&a), a);
        assert_eq!(of(&b), b);
        orders.insert(derived.transactions.clone());
        // Same inputs, same block.
        assert_eq!(
            derive(&[first.clone(), second.clone()], pot, u128::MAX).receipt,
            derived.receipt
        );
    }
    assert!(orders.len() > 1, "the PoT output seeds the shuffle");
}

#[test]
fn shuffle_is_frozen() {
    // The shuffle is consensus: this pins its algorithm.
    let slots: Vec<u8> = (0..10).collect();
    assert_eq!(
        shuffled_slots(&slots, &PotOutput([0; 16])),
        vec![3, 4, 8, 2, 1, 5, 6, 9, 7, 0]
    );
    let mut sorted = shuffled_slots(&slots, &PotOutput([0; 16]));
    sorted.sort();
    assert_eq!(sorted, slots);
}
