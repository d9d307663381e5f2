//! Domains through consensus transactions, in-process: a genesis domain and operator from the chain
//! spec; a second operator registered and nominated by transactions in authored blocks; a call the
//! registry refuses is refused at submission with its reason; another node importing the same blocks
//! holds the same registry; the registry survives a restart.

use crate::common::authoring::{Farmer, fast_spec, timekeeper};
use acre_execution::domains::election::{SlotProbability, operator_keypair};
use acre_execution::domains::module::ModuleId;
use acre_execution::domains::{DomainId, OperatorId};
use acre_execution::staking::ACRE;
use acre_execution::{Address, Call, DomainCall, ExecutionError, SignedTransaction, Transaction};
use acre_node::chain_spec::{
    DomainBalance, DomainPreset, DomainsSpec, GenesisDomain, GenesisOperator, dev_key,
};
use acre_node::{Chain, ChainSpec};
use acre_rpc_api::{Balance, Hex32, HexBytes};

const FEE: u128 = 10_000;
const ENDOWMENT: u128 = 1_000 * ACRE;

fn spec() -> ChainSpec {
    let mut spec = fast_spec("domains");
    for endowment in &mut spec.endowments {
        endowment.balance = Balance(ENDOWMENT);
    }
    let alice = dev_key("alice");
    spec.domains = Some(DomainsSpec {
        params: DomainPreset::Dev,
        genesis: vec![GenesisDomain {
            name: "test".into(),
            module: ModuleId::Balances,
            owner: Hex32(Address::of(&alice).0),
            slot_probability: SlotProbability {
                numerator: 1,
                denominator: 1,
            },
            evm_chain_id: None,
            balances: vec![DomainBalance {
                account: HexBytes(vec![7; 32]),
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

fn call(chain: &Chain, who: &str, nonce: u64, call: DomainCall) -> SignedTransaction {
    let key = dev_key(who);
    let transaction = Transaction {
        from: Address::of(&key),
        nonce,
        fee: FEE,
        call: Call::Domain(call),
    };
    SignedTransaction::sign(transaction, chain.genesis_hash(), &key)
}

#[test]
fn operators_register_and_nominate_through_blocks_and_the_registry_persists() {
    let spec = spec();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("chain.redb");
    let chain = Chain::open(spec.clone(), Some(&path)).expect("opens");
    let follower = Chain::open(spec.clone(), None).expect("opens in memory");
    let timekeeper = timekeeper(&chain);
    let farmer = Farmer::new(&spec, 1, [9; 32]);

    let genesis = chain.domains().expect("a chain with domains");
    let domain = genesis.domain(DomainId(0)).expect("the genesis domain");
    assert_eq!(domain.balance, ACRE);
    assert_eq!(genesis.operator_domain(OperatorId(0)), Ok(DomainId(0)));

    let bob = dev_key("bob");
    let register = call(
        &chain,
        "bob",
        0,
        DomainCall::RegisterOperator {
            domain: DomainId(0),
            signing_key: operator_keypair(&bob.to_bytes()).public.to_bytes(),
            amount: 50 * ACRE,
            nomination_tax: 10,
            minimum_nominator_stake: ACRE,
        },
    );
    chain.check_call(&register).expect("the registration applies");
    let (header, body) = farmer.author(&chain, &timekeeper, &[register]);
    follower.import(&header, &body, &timekeeper).expect("imports");

    let nominate = call(
        &chain,
        "alice",
        0,
        DomainCall::Nominate {
            operator: OperatorId(1),
            amount: 20 * ACRE,
        },
    );
    let (header, body) = farmer.author(&chain, &timekeeper, &[nominate]);
    follower.import(&header, &body, &timekeeper).expect("imports");

    let registry = chain.domains().expect("domains");
    let pools = &registry.domain(DomainId(0)).expect("domain").staking;
    let operator = &pools.operators[&OperatorId(1)];
    assert_eq!(operator.owner, Address::of(&bob));
    assert!(operator.nominators.contains_key(&Address::of(&dev_key("alice"))));
    assert_eq!(
        chain.account(&Address::of(&bob)).balance,
        ENDOWMENT - 50 * ACRE - FEE
    );
    assert_eq!(
        follower.domains(),
        chain.domains(),
        "the same blocks, the same registry"
    );

    // Only its owner deregisters an operator: refused before it reaches a pool or a block.
    let deregister = call(
        &chain,
        "alice",
        1,
        DomainCall::Deregister {
            operator: OperatorId(1),
        },
    );
    assert_eq!(
        chain.check_call(&deregister),
        Err(ExecutionError::NotOperatorOwner(1))
    );

    let before = chain.domains();
    let best = chain.best().0;
    drop(chain);
    let reopened = Chain::open(spec, Some(&path)).expect("reopens");
    assert_eq!(reopened.best().0.hash, best.hash);
    assert_eq!(reopened.domains(), before, "the registry survives a restart");
}
