//! Bundles through consensus blocks, in-process: a genesis balances domain with one operator; blocks
//! carrying an invalid bundle (bad signature, bad VRF, a lost election, a stale slot, an equivocation,
//! an oversize body, a receipt from the future) are each refused with their own error and the chain
//! goes on; a valid bundle defines domain block 1, whose derived receipt a later bundle puts on chain;
//! a second node importing the same blocks holds the same registry.

use acre_consensus::SlotNumber;
use acre_consensus::blocks::Header;
use acre_consensus::pot::slot_challenge;
use acre_execution::domains::balances::{BalancesModule, DomainTransfer, SignedTransfer};
use acre_execution::domains::bundle::{Bundle, BundleHeader, body_size, extrinsics_root};
use acre_execution::domains::derive::{
    ConsensusFacts, DomainHeader, INITIAL_TX_RANGE, InboxBundle, derive_block,
};
use acre_execution::domains::election::{SlotProbability, VrfProof, is_elected, operator_keypair, threshold};
use acre_execution::domains::module::{ExecutionModule, ModuleId};
use acre_execution::domains::receipt::ExecutionReceipt;
use acre_execution::domains::{DomainBlockNumber, DomainId, OperatorId, domain_chain};
use acre_execution::staking::ACRE;
use acre_execution::{Address, ExecutionError};
use acre_node::chain_spec::{
    DomainBalance, DomainPreset, DomainsSpec, GenesisDomain, GenesisOperator, dev_key,
};
use acre_node::timekeeper::Timekeeper;
use acre_node::{Chain, ChainSpec, ImportError};
use acre_rpc_api::{Balance, Hex32, HexBytes};
use schnorrkel::Keypair;

use crate::common::authoring::{Farmer, fast_spec, timekeeper};

const DOMAIN: DomainId = DomainId(0);
const OPERATOR: OperatorId = OperatorId(0);

fn sender() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[77; 32])
}

fn spec() -> ChainSpec {
    let mut spec = fast_spec("bundles");
    let alice = dev_key("alice");
    spec.domains = Some(DomainsSpec {
        params: DomainPreset::Dev,
        genesis: vec![GenesisDomain {
            name: "bundles".into(),
            module: ModuleId::Balances,
            owner: Hex32(Address::of(&alice).0),
            slot_probability: SlotProbability {
                numerator: 1,
                denominator: 2,
            },
            evm_chain_id: None,
            balances: vec![DomainBalance {
                account: HexBytes(sender().verifying_key().to_bytes().to_vec()),
                balance: Balance(ACRE),
            }],
            operators: vec![GenesisOperator {
                owner: Hex32(Address::of(&alice).0),
                signing_key: Hex32(operator_keypair(&alice.to_bytes()).public.to_bytes()),
                stake: Balance(100 * ACRE),
                nomination_tax: 5,
                minimum_nominator_stake: Balance(ACRE),
            }],
        }],
    });
    spec
}

/// Whether the operator wins `slot` under the best registry.
fn elected(chain: &Chain, timekeeper: &Timekeeper, keypair: &Keypair, slot: SlotNumber) -> bool {
    let domains = chain.domains().expect("domains");
    let domain = domains.domain(DOMAIN).expect("domain");
    let stakes = domain.staking.election_stakes();
    let total: u128 = stakes.values().sum();
    let output = timekeeper.output(slot).expect("proved");
    let (_, vrf_output) = VrfProof::prove(keypair, DOMAIN, &slot_challenge(&output, slot));
    is_elected(
        &vrf_output,
        threshold(domain.config.slot_probability, total, stakes[&OPERATOR]),
    )
}

fn bundle(
    timekeeper: &Timekeeper,
    keypair: &Keypair,
    slot: SlotNumber,
    receipt: ExecutionReceipt,
    body: Vec<Vec<u8>>,
) -> Bundle {
    let pot_output = timekeeper.output(slot).expect("proved");
    let (vrf, _) = VrfProof::prove(keypair, DOMAIN, &slot_challenge(&pot_output, slot));
    let header = BundleHeader {
        version: Bundle::VERSION,
        domain_id: DOMAIN,
        operator_id: OPERATOR,
        slot,
        pot_output,
        vrf,
        receipt,
        extrinsics_root: extrinsics_root(&body),
        size: body_size(&body).expect("small"),
        weight: body.len() as u64,
    };
    Bundle::sign(header, body, keypair)
}

/// Imports a block on the best block carrying exactly `bundles` (sealed after replacing the body's
/// bundles, so checks other than the state root see them).
fn import_with(
    chain: &Chain,
    timekeeper: &Timekeeper,
    farmer: &Farmer,
    bundles: &[Bundle],
) -> Result<(Header, acre_consensus::blocks::Body), ImportError> {
    let (_, mut proposal) = farmer.propose_after(chain, timekeeper, SlotNumber(0), &[]);
    proposal.body.bundles = bundles.iter().map(Bundle::encode).collect();
    proposal.header.body_root = proposal.body.root();
    let header = proposal.header.seal(&farmer.key);
    chain
        .import(&header, &proposal.body, timekeeper)
        .map(|_| (header, proposal.body))
}

fn invalid_bundle(
    result: Result<(Header, acre_consensus::blocks::Body), ImportError>,
) -> (usize, ExecutionError) {
    match result {
        Err(ImportError::Execution(ExecutionError::InvalidBundle { index, source })) => (index, *source),
        other => panic!(
            "expected an invalid bundle, got {:?}",
            other.map(|(header, _)| header.hash())
        ),
    }
}

#[test]
fn bundles_define_domain_blocks_and_each_invalid_bundle_is_refused_with_its_reason() {
    let spec = spec();
    let chain = Chain::open(spec.clone(), None).expect("opens");
    let follower = Chain::open(spec.clone(), None).expect("opens");
    let timekeeper = timekeeper(&chain);
    let farmer = Farmer::new(&spec, 1, [9; 32]);
    let keypair = operator_keypair(&dev_key("alice").to_bytes());

    // Longer than the bundle longevity (5 blocks), so a stale slot exists.
    for _ in 0..7 {
        let (header, body) = farmer.author(&chain, &timekeeper, &[]);
        follower.import(&header, &body, &timekeeper).expect("imports");
    }
    let best = chain.best().0;
    let oldest = chain
        .block(
            &chain
                .canonical_hash(acre_consensus::BlockNumber(best.number.0 - 4))
                .unwrap()
                .unwrap(),
        )
        .unwrap()
        .unwrap()
        .0
        .unsealed
        .slot;
    let delay = chain.params().block_authoring_delay;
    let window: Vec<SlotNumber> = (oldest.0..=best.slot.0 + delay).map(SlotNumber).collect();
    let won = *window
        .iter()
        .find(|slot| elected(&chain, &timekeeper, &keypair, **slot))
        .expect("a won slot in the window");
    let lost = *window
        .iter()
        .find(|slot| !elected(&chain, &timekeeper, &keypair, **slot))
        .expect("a lost slot in the window");

    let domains = chain.domains().expect("domains");
    let domain = domains.domain(DOMAIN).expect("domain");
    let genesis_receipt = domain
        .block_tree
        .head()
        .expect("genesis receipt")
        .1
        .receipt
        .clone();
    let module = BalancesModule {
        chain: domain_chain(&chain.genesis_hash(), DOMAIN),
    };
    let transfer = SignedTransfer::sign(
        DomainTransfer {
            chain: module.chain,
            from: sender().verifying_key().to_bytes(),
            to: [5; 32],
            amount: 1000,
            fee: 10,
            nonce: 0,
        },
        &sender(),
    )
    .encode();
    let valid = bundle(
        &timekeeper,
        &keypair,
        won,
        genesis_receipt.clone(),
        vec![transfer.clone()],
    );

    let mut bad_signature = valid.clone();
    bad_signature.signature[0] ^= 1;
    let mut bad_vrf = valid.clone();
    bad_vrf.header.vrf = bundle(&timekeeper, &keypair, lost, genesis_receipt.clone(), Vec::new())
        .header
        .vrf;
    let bad_vrf = Bundle::sign(bad_vrf.header, bad_vrf.body, &keypair);
    let max_size = domain.bundle_limits.0;
    let cases: Vec<(&str, Vec<Bundle>, usize, ExecutionError)> = vec![
        (
            "bad signature",
            vec![bad_signature],
            0,
            ExecutionError::BadBundleSignature,
        ),
        ("bad VRF", vec![bad_vrf], 0, ExecutionError::BadVrf),
        (
            "lost election",
            vec![bundle(
                &timekeeper,
                &keypair,
                lost,
                genesis_receipt.clone(),
                Vec::new(),
            )],
            0,
            ExecutionError::BundleThreshold(0),
        ),
        (
            "stale slot",
            vec![bundle(
                &timekeeper,
                &keypair,
                SlotNumber(oldest.0 - 1),
                genesis_receipt.clone(),
                Vec::new(),
            )],
            0,
            ExecutionError::BundleTooOld {
                slot: oldest.0 - 1,
                oldest: oldest.0,
            },
        ),
        (
            "equivocation",
            vec![
                valid.clone(),
                bundle(&timekeeper, &keypair, won, genesis_receipt.clone(), Vec::new()),
            ],
            1,
            ExecutionError::BundleEquivocation {
                operator: 0,
                slot: won.0,
            },
        ),
        (
            "oversize",
            vec![bundle(
                &timekeeper,
                &keypair,
                won,
                genesis_receipt.clone(),
                vec![vec![0; max_size as usize + 1]],
            )],
            0,
            ExecutionError::BundleTooLarge {
                size: max_size + 1,
                max: max_size,
            },
        ),
        (
            "receipt from the future",
            vec![bundle(
                &timekeeper,
                &keypair,
                won,
                ExecutionReceipt {
                    domain_number: DomainBlockNumber(2),
                    ..genesis_receipt.clone()
                },
                Vec::new(),
            )],
            0,
            ExecutionError::ReceiptInFuture { number: 2 },
        ),
    ];
    for (name, bundles, index, expected) in cases {
        let refused = invalid_bundle(import_with(&chain, &timekeeper, &farmer, &bundles));
        assert_eq!(refused, (index, expected), "{name}");
        assert_eq!(
            chain.best().0.hash,
            best.hash,
            "{name}: the chain keeps its best block"
        );
    }

    // Proposal leaves out what cannot pass and includes the valid bundle.
    let (slot, proposal) = farmer.propose_with_bundles(
        &chain,
        &timekeeper,
        SlotNumber(0),
        &[],
        &[
            valid.clone(),
            bundle(&timekeeper, &keypair, lost, genesis_receipt.clone(), Vec::new()),
        ],
    );
    assert_eq!(proposal.body.bundles, vec![valid.encode()]);
    assert_eq!(proposal.dropped_bundles.len(), 1, "the lost election is dropped");
    farmer.signed.lock().expect("lock").insert(slot);
    let author = Address(farmer.reward_address);
    let author_before = chain.account(&author).balance;
    let header = proposal.header.clone().seal(&farmer.key);
    chain
        .import(&header, &proposal.body, &timekeeper)
        .expect("the block with the valid bundle imports");
    follower
        .import(&header, &proposal.body, &timekeeper)
        .expect("the follower imports it");
    let domains = chain.domains().expect("domains");
    let domain = domains.domain(DOMAIN).expect("domain");
    assert_eq!(domain.head_domain_number, DomainBlockNumber(1));
    assert_eq!(
        domain.inbox.get(&DomainBlockNumber(1)),
        Some(&(header.unsealed.number, vec![valid.header.extrinsics_root]))
    );
    let storage_fee = spec.runtime_config(chain.genesis_hash()).byte_fee * valid.encode().len() as u128;
    assert_eq!(
        chain.account(&author).balance,
        author_before + spec.block_reward.0 + storage_fee,
        "the author earns the block reward and the storage fee"
    );

    // Derive domain block 1 as an operator does and put its receipt on chain.
    let genesis_state = module
        .genesis(&[(sender().verifying_key().to_bytes().to_vec(), ACRE)])
        .expect("genesis");
    assert_eq!(
        module.state_root(&genesis_state),
        genesis_receipt.final_state_root
    );
    let vrf_output = valid
        .header
        .vrf
        .verify(
            &keypair.public.to_bytes(),
            DOMAIN,
            &slot_challenge(&valid.header.pot_output, won),
        )
        .expect("verifies");
    let facts = ConsensusFacts {
        number: header.unsealed.number,
        hash: header.hash(),
        pot_output: chain.slot_output(&header.hash()).unwrap().expect("an output"),
        timestamp_ms: header.unsealed.slot.0 * 1000,
        byte_fee: spec.runtime_config(chain.genesis_hash()).byte_fee,
        storage_fees: storage_fee,
    };
    let derived = derive_block(
        &module,
        &genesis_state,
        &DomainHeader::genesis(genesis_receipt.final_state_root),
        genesis_receipt.hash(),
        &facts,
        &[InboxBundle {
            bundle: &valid,
            vrf_output,
        }],
        INITIAL_TX_RANGE,
    )
    .expect("derives");
    assert_eq!(derived.transactions, vec![transfer], "the transfer executed");
    let next_won = (header.unsealed.slot.0 + 1..)
        .map(SlotNumber)
        .find(|slot| {
            crate::common::authoring::wait_until_proved(&timekeeper, *slot);
            elected(&chain, &timekeeper, &keypair, *slot)
        })
        .expect("a later win");
    let with_receipt = bundle(
        &timekeeper,
        &keypair,
        next_won,
        derived.receipt.clone(),
        Vec::new(),
    );
    let (_, proposal) = farmer.propose_with_bundles(
        &chain,
        &timekeeper,
        SlotNumber(0),
        &[],
        std::slice::from_ref(&with_receipt),
    );
    assert_eq!(proposal.body.bundles, vec![with_receipt.encode()]);
    let header = proposal.header.clone().seal(&farmer.key);
    chain
        .import(&header, &proposal.body, &timekeeper)
        .expect("imports");
    follower
        .import(&header, &proposal.body, &timekeeper)
        .expect("imports");
    let domains = chain.domains().expect("domains");
    let tree = &domains.domain(DOMAIN).expect("domain").block_tree;
    assert_eq!(tree.head_receipt_number, DomainBlockNumber(1));
    assert_eq!(tree.head().expect("head").0, &derived.receipt.hash());
    assert_eq!(
        follower.domains(),
        chain.domains(),
        "the same blocks, the same registry"
    );
}
