//! Domain calls as consensus transactions: what each does to balances and the registry, their errors,
//! and the conservation property over random call sequences.

use acre_consensus::hashing::Blake3Hash;
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

use super::*;
use crate::domains::registry::tests::{config as domain_config, operator_key};
use crate::domains::registry::{DomainParams, Domains};
use crate::domains::{DomainBlockNumber, DomainId, OperatorId};
use crate::staking::ACRE;
use crate::state::{InMemoryAccounts, InMemoryState};
use crate::transaction::Transaction;

const GENESIS: Blake3Hash = Blake3Hash([9; 32]);
const FEE: u128 = 10_000;

fn config() -> RuntimeConfig {
    RuntimeConfig {
        genesis_hash: GENESIS,
        min_fee: 1000,
        byte_fee: 1,
        existential_deposit: 10_000,
        block_reward: 1_000_000,
        vote_reward: 100_000,
    }
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn state(keys: &[u8], balance: u128) -> InMemoryState {
    let mut state = InMemoryState::new(DomainParams::dev());
    for &seed in keys {
        state.set_account(Address::of(&key(seed)), Account { balance, nonce: 0 });
    }
    state
}

fn call(state: &InMemoryState, seed: u8, call: DomainCall) -> SignedTransaction {
    let from = Address::of(&key(seed));
    let transaction = Transaction {
        from,
        nonce: state.account(&from).nonce,
        fee: FEE,
        call: Call::Domain(call),
    };
    SignedTransaction::sign(transaction, GENESIS, &key(seed))
}

fn register(domain: u32, operator_seed: u8, amount: u128) -> DomainCall {
    DomainCall::RegisterOperator {
        domain: DomainId(domain),
        signing_key: operator_key(operator_seed).public.to_bytes(),
        amount,
        nomination_tax: 10,
        minimum_nominator_stake: ACRE,
    }
}

/// Ends domain 0's epoch at `head` (what accepting bundles does on chain).
fn end_epoch(domains: &mut Domains, head: u64) {
    let domain = domains.domains.get_mut(&DomainId(0)).expect("domain 0");
    domain.head_domain_number = DomainBlockNumber(head);
    domain
        .staking
        .end_epoch(DomainBlockNumber(head))
        .expect("epoch ends");
}

fn balance(state: &InMemoryState, seed: u8) -> u128 {
    state.account(&Address::of(&key(seed))).balance
}

#[test]
fn a_domain_is_instantiated_and_staked_on_through_transactions() {
    let config = config();
    let mut state = state(&[1, 2, 3], 1_000 * ACRE);
    state.block = (BlockNumber(5), Blake3Hash([4; 32]));
    let total = state.total_issuance();

    let tx = call(&state, 1, DomainCall::Instantiate(domain_config()));
    apply_transaction(&mut state, &config, &tx).expect("instantiates");
    let domain = state.domains.domain(DomainId(0)).expect("exists");
    assert_eq!(domain.owner, Address::of(&key(1)));
    assert_eq!(domain.balance, 500);
    // The domain refers to the parent of the block creating it.
    assert_eq!(domain.created_at, BlockNumber(4));
    assert_eq!(balance(&state, 1), 1_000 * ACRE - FEE - 500);

    let tx = call(&state, 2, register(0, 1, 100 * ACRE));
    apply_transaction(&mut state, &config, &tx).expect("registers");
    assert_eq!(state.domains.operator_domain(OperatorId(0)), Ok(DomainId(0)));
    assert_eq!(balance(&state, 2), 900 * ACRE - FEE);

    let nominate = DomainCall::Nominate {
        operator: OperatorId(0),
        amount: 50 * ACRE,
    };
    let tx = call(&state, 3, nominate);
    apply_transaction(&mut state, &config, &tx).expect("nominates");
    assert_eq!(balance(&state, 3), 950 * ACRE - FEE);
    // Only fees left the accounts; everything else is held by the domains.
    assert_eq!(state.total_issuance(), total - 3 * FEE);

    end_epoch(&mut state.domains, 10);
    let shares = state
        .domains
        .domain(DomainId(0))
        .expect("exists")
        .staking
        .operators[&OperatorId(0)]
        .nominators[&Address::of(&key(3))]
        .shares;
    let withdraw = DomainCall::Withdraw {
        operator: OperatorId(0),
        shares,
    };
    let tx = call(&state, 3, withdraw);
    apply_transaction(&mut state, &config, &tx).expect("withdraws");
    end_epoch(&mut state.domains, 20);
    let unlock = DomainCall::Unlock {
        operator: OperatorId(0),
    };
    // Not before the unlock delay (the challenge period) has passed.
    let tx = call(&state, 3, unlock.clone());
    assert_eq!(
        apply_transaction(&mut state, &config, &tx),
        Err(ExecutionError::NothingToUnlock(0))
    );
    state
        .domains
        .domains
        .get_mut(&DomainId(0))
        .expect("domain")
        .head_domain_number = DomainBlockNumber(40);
    let before = balance(&state, 3);
    apply_transaction(&mut state, &config, &tx).expect("unlocks");
    let paid = balance(&state, 3) + FEE - before;
    // The nominator's stake, less its storage-fund share, comes back.
    assert!((40 * ACRE..=50 * ACRE).contains(&paid), "paid {paid}");
    assert_eq!(state.total_issuance(), total - 5 * FEE);
}

#[test]
fn failing_domain_calls_name_their_reason_and_change_nothing() {
    let config = config();
    let mut state = state(&[1, 2], 1_000 * ACRE);
    let tx = call(&state, 1, DomainCall::Instantiate(domain_config()));
    apply_transaction(&mut state, &config, &tx).expect("instantiates");
    let tx = call(&state, 1, register(0, 1, 100 * ACRE));
    apply_transaction(&mut state, &config, &tx).expect("registers");

    let cases = [
        (
            call(
                &state,
                2,
                DomainCall::Deregister {
                    operator: OperatorId(0),
                },
            ),
            ExecutionError::NotOperatorOwner(0),
        ),
        (
            call(
                &state,
                2,
                DomainCall::Nominate {
                    operator: OperatorId(7),
                    amount: ACRE,
                },
            ),
            ExecutionError::UnknownOperator(7),
        ),
        (
            call(&state, 2, register(3, 2, 100 * ACRE)),
            ExecutionError::UnknownDomain(3),
        ),
        (
            call(&state, 2, register(0, 2, 2_000 * ACRE)),
            ExecutionError::InsufficientBalance {
                sender: Address::of(&key(2)),
                balance: 1_000 * ACRE,
                needed: 2_000 * ACRE + FEE,
            },
        ),
        (
            call(
                &state,
                2,
                DomainCall::Withdraw {
                    operator: OperatorId(0),
                    shares: 1,
                },
            ),
            ExecutionError::NotANominator(0),
        ),
    ];
    for (tx, error) in cases {
        let before = state.clone();
        assert_eq!(apply_transaction(&mut state, &config, &tx), Err(error));
        assert_eq!(state, before, "a failed call changed state");
    }

    let mut evm = domain_config();
    evm.module = crate::domains::module::ModuleId::AutoId;
    let tx = call(&state, 2, DomainCall::Instantiate(evm));
    assert_eq!(
        apply_transaction(&mut state, &config, &tx),
        Err(ExecutionError::ModuleUnavailable("auto-id"))
    );

    // A state without a registry refuses domain calls.
    let mut accounts = InMemoryAccounts::default();
    accounts.set_account(
        Address::of(&key(2)),
        Account {
            balance: ACRE,
            nonce: 0,
        },
    );
    let tx = call(
        &state,
        2,
        DomainCall::Unlock {
            operator: OperatorId(0),
        },
    );
    assert_eq!(
        apply_transaction(&mut accounts, &config, &tx),
        Err(ExecutionError::NoDomains)
    );
}

/// One step of the conservation property.
#[derive(Debug, Clone)]
enum Step {
    Register { who: u8, amount: u128 },
    Nominate { who: u8, operator: u64, amount: u128 },
    Withdraw { who: u8, operator: u64, percent: u128 },
    Unlock { who: u8, operator: u64 },
    Deregister { who: u8, operator: u64 },
    Reward { operator: u64, amount: u128 },
    Epoch,
    Block { author: u8 },
}

fn step() -> impl Strategy<Value = Step> {
    let who = 1..5u8;
    let operator = 0..4u64;
    prop_oneof![
        (who.clone(), 5..200u128).prop_map(|(who, acre)| Step::Register {
            who,
            amount: acre * ACRE
        }),
        (who.clone(), operator.clone(), 0..80u128).prop_map(|(who, operator, acre)| Step::Nominate {
            who,
            operator,
            amount: acre * ACRE / 2
        }),
        (who.clone(), operator.clone(), 1..=100u128).prop_map(|(who, operator, percent)| Step::Withdraw {
            who,
            operator,
            percent
        }),
        (who.clone(), operator.clone()).prop_map(|(who, operator)| Step::Unlock { who, operator }),
        (who.clone(), operator.clone()).prop_map(|(who, operator)| Step::Deregister { who, operator }),
        (operator, 0..400u128).prop_map(|(operator, amount)| Step::Reward { operator, amount }),
        Just(Step::Epoch),
        who.prop_map(|author| Step::Block { author }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, rng_seed: RngSeed::Fixed(13), failure_persistence: None, ..ProptestConfig::default() })]

    /// Over random registrations, nominations, withdrawals, unlocks, deregistrations, rewards, epochs
    /// and blocks (valid calls or not), accounts plus what the domains hold change by exactly what blocks
    /// mint minus what they burn: staking creates and loses nothing.
    #[test]
    fn domain_calls_conserve_every_balance(steps in proptest::collection::vec(step(), 1..80)) {
        let config = config();
        let mut state = state(&[1, 2, 3, 4], 1_000 * ACRE);
        let tx = call(&state, 1, DomainCall::Instantiate(domain_config()));
        let mut pending = vec![tx];
        let mut expected = state.total_issuance();
        let mut head = 0;
        for step in steps {
            let domain_call = match step {
                Step::Register { who, amount } => Some((who, register(0, who, amount))),
                Step::Nominate { who, operator, amount } => {
                    Some((who, DomainCall::Nominate { operator: OperatorId(operator), amount }))
                }
                Step::Withdraw { who, operator, percent } => {
                    let shares = state
                        .domains
                        .domains
                        .get(&DomainId(0))
                        .and_then(|domain| domain.staking.operators.get(&OperatorId(operator)))
                        .and_then(|pool| pool.nominators.get(&Address::of(&key(who))))
                        .map_or(1, |position| (position.shares * percent / 100).max(1));
                    Some((who, DomainCall::Withdraw { operator: OperatorId(operator), shares }))
                }
                Step::Unlock { who, operator } => Some((who, DomainCall::Unlock { operator: OperatorId(operator) })),
                Step::Deregister { who, operator } => {
                    Some((who, DomainCall::Deregister { operator: OperatorId(operator) }))
                }
                Step::Reward { operator, amount } => {
                    // A confirmed receipt pays rewards out of the domain's balance into a pool.
                    if let Some(domain) = state.domains.domains.get_mut(&DomainId(0)) {
                        let amount = amount.min(domain.balance);
                        if domain.staking.reward(OperatorId(operator), amount).is_ok() {
                            domain.balance -= amount;
                        }
                    }
                    None
                }
                Step::Epoch => {
                    if state.domains.domains.contains_key(&DomainId(0)) {
                        head += 10;
                        end_epoch(&mut state.domains, head);
                    }
                    None
                }
                Step::Block { author } => {
                    let outcome = apply_block(&mut state, &config, Address::of(&key(author)), &[], &pending)
                        .expect("checked transactions apply");
                    pending.clear();
                    expected = expected + outcome.minted - outcome.burnt;
                    prop_assert_eq!(state.total_issuance(), expected);
                    None
                }
            };
            if let Some((who, domain_call)) = domain_call {
                // Built against a scratch state, as authoring does: failing calls are left out.
                let mut scratch = state.clone();
                for tx in &pending {
                    apply_transaction(&mut scratch, &config, tx).expect("already checked");
                }
                let tx = call(&scratch, who, domain_call);
                let before = scratch.clone();
                match apply_transaction(&mut scratch, &config, &tx) {
                    Ok(_) => pending.push(tx),
                    Err(_) => prop_assert_eq!(&scratch, &before, "a failed call changed state"),
                }
            }
        }
        let outcome = apply_block(&mut state, &config, Address::of(&key(1)), &[], &pending)
            .expect("checked transactions apply");
        expected = expected + outcome.minted - outcome.burnt;
        prop_assert_eq!(state.total_issuance(), expected);
    }
}
