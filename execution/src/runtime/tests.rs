use acre_consensus::hashing::Blake3Hash;
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

use super::*;
use crate::state::{Account, InMemoryAccounts};
use crate::transaction::Transfer;

const GENESIS: Blake3Hash = Blake3Hash([9; 32]);
const DEPOSIT: u128 = 10_000;

fn config() -> RuntimeConfig {
    RuntimeConfig {
        genesis_hash: GENESIS,
        min_fee: 1000,
        byte_fee: 1,
        existential_deposit: DEPOSIT,
        block_reward: 1_000_000,
        vote_reward: 100_000,
    }
}

/// The least fee a transaction pays under [`config`].
fn min_fee() -> u128 {
    config().minimum_fee(SignedTransaction::TRANSFER_SIZE)
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn funded(keys: &[&SigningKey], balance: u128) -> InMemoryAccounts {
    let mut state = InMemoryAccounts::default();
    for key in keys {
        state.set_account(Address::of(key), Account { balance, nonce: 0 });
    }
    state
}

fn pay(key: &SigningKey, to: Address, amount: u128, fee: u128, nonce: u64) -> SignedTransaction {
    SignedTransaction::sign(
        Transfer {
            from: Address::of(key),
            to,
            amount,
            fee,
            nonce,
        },
        GENESIS,
        key,
    )
}

#[test]
fn transfers_move_balances_and_fees_and_rewards_reach_the_author_and_voters() {
    let alice = key(1);
    let bob = Address([2; 32]);
    let author = Address([3; 32]);
    let voter = Address([4; 32]);
    let mut state = funded(&[&alice], 1_000_000);
    let fee = min_fee();
    let txs = [pay(&alice, bob, 30_000, fee, 0), pay(&alice, bob, 10, fee + 1, 1)];
    let outcome = apply_block(&mut state, &config(), author, &[voter, voter], &txs).expect("valid block");
    assert_eq!(
        outcome,
        BlockOutcome {
            fees: 2 * fee + 1,
            credited: 1_000_000 + 2 * fee + 1,
            votes_paid: 200_000,
            minted: 1_200_000,
            burnt: 0,
        }
    );
    assert_eq!(
        state.account(&Address::of(&alice)),
        Account {
            balance: 1_000_000 - 30_010 - 2 * fee - 1,
            nonce: 2
        }
    );
    assert_eq!(state.account(&bob).balance, 30_010);
    assert_eq!(state.account(&author).balance, outcome.credited);
    assert_eq!(state.account(&voter).balance, 200_000);
}

#[test]
fn double_spends_and_overdrafts_are_rejected_without_effect() {
    let alice = key(1);
    let bob = Address([2; 32]);
    let mut state = funded(&[&alice], 100_000);
    let tx = pay(&alice, bob, 60_000, min_fee(), 0);
    apply_transaction(&mut state, &config(), &tx).expect("first spend");
    let before = state.clone();
    assert!(matches!(
        apply_transaction(&mut state, &config(), &tx),
        Err(ExecutionError::BadNonce {
            expected: 1,
            got: 0,
            ..
        })
    ));
    let overdraft = pay(&alice, bob, 60_000, min_fee(), 1);
    assert!(matches!(
        apply_transaction(&mut state, &config(), &overdraft),
        Err(ExecutionError::InsufficientBalance { .. })
    ));
    let overflow = pay(&alice, bob, u128::MAX, min_fee(), 1);
    assert!(matches!(
        apply_transaction(&mut state, &config(), &overflow),
        Err(ExecutionError::Overflow(_))
    ));
    assert_eq!(state, before);
}

#[test]
fn fees_below_the_minimum_are_refused() {
    let alice = key(1);
    let mut state = funded(&[&alice], 1_000_000);
    let cheap = pay(&alice, Address([2; 32]), DEPOSIT, min_fee() - 1, 0);
    assert_eq!(
        apply_transaction(&mut state, &config(), &cheap),
        Err(ExecutionError::FeeTooLow {
            fee: min_fee() - 1,
            minimum: 1000 + SignedTransaction::TRANSFER_SIZE as u128,
        })
    );
    let free = pay(&alice, Address([2; 32]), DEPOSIT, 0, 0);
    assert!(matches!(
        apply_transaction(&mut state, &config(), &free),
        Err(ExecutionError::FeeTooLow { fee: 0, .. })
    ));
    assert_eq!(state, funded(&[&alice], 1_000_000));
}

#[test]
fn transactions_for_another_chain_or_version_are_refused() {
    let alice = key(1);
    let mut state = funded(&[&alice], 1_000_000);
    let other = Blake3Hash([8; 32]);
    let foreign = SignedTransaction::sign(
        Transfer {
            from: Address::of(&alice),
            to: Address([2; 32]),
            amount: DEPOSIT,
            fee: min_fee(),
            nonce: 0,
        },
        other,
        &alice,
    );
    assert_eq!(
        apply_transaction(&mut state, &config(), &foreign),
        Err(ExecutionError::WrongChain {
            expected: GENESIS,
            got: other
        })
    );
    let mut future = pay(&alice, Address([2; 32]), DEPOSIT, min_fee(), 0);
    future.version = 3;
    assert_eq!(
        apply_transaction(&mut state, &config(), &future),
        Err(ExecutionError::UnsupportedVersion { version: 3 })
    );
}

#[test]
fn bad_signatures_and_invalid_senders_are_refused() {
    let alice = key(1);
    let mut state = funded(&[&alice], 1_000_000);
    let mut tx = pay(&alice, Address([2; 32]), DEPOSIT, min_fee(), 0);
    tx.signature[0] ^= 1;
    assert_eq!(
        apply_transaction(&mut state, &config(), &tx),
        Err(ExecutionError::BadSignature(Address::of(&alice)))
    );
    // A y-coordinate that is not on the curve: not a public key at all.
    let mut not_a_key = [0xff; 32];
    not_a_key[31] = 0x7f;
    let mut tx = pay(&alice, Address([2; 32]), DEPOSIT, min_fee(), 0);
    tx.transaction.from = Address(not_a_key);
    assert!(matches!(
        apply_transaction(&mut state, &config(), &tx),
        Err(ExecutionError::InvalidSender(_) | ExecutionError::BadSignature(_))
    ));
}

#[test]
fn an_exhausted_nonce_is_refused() {
    let alice = key(1);
    let mut state = InMemoryAccounts::default();
    state.set_account(
        Address::of(&alice),
        Account {
            balance: 1_000_000,
            nonce: u64::MAX,
        },
    );
    let tx = pay(&alice, Address([2; 32]), DEPOSIT, min_fee(), u64::MAX);
    assert_eq!(
        apply_transaction(&mut state, &config(), &tx),
        Err(ExecutionError::NonceExhausted(Address::of(&alice)))
    );
}

#[test]
fn transfers_creating_an_account_below_the_deposit_are_refused() {
    let alice = key(1);
    let bob = Address([2; 32]);
    let mut state = funded(&[&alice], 1_000_000);
    let dust = pay(&alice, bob, DEPOSIT - 1, min_fee(), 0);
    assert_eq!(
        apply_transaction(&mut state, &config(), &dust),
        Err(ExecutionError::BelowExistentialDeposit {
            recipient: bob,
            amount: DEPOSIT - 1,
            deposit: DEPOSIT
        })
    );
    let zero = pay(&alice, bob, 0, min_fee(), 0);
    assert!(matches!(
        apply_transaction(&mut state, &config(), &zero),
        Err(ExecutionError::BelowExistentialDeposit { amount: 0, .. })
    ));
    assert_eq!(state, funded(&[&alice], 1_000_000));
    // Exactly the deposit creates the account; after that, any amount may follow.
    apply_transaction(&mut state, &config(), &pay(&alice, bob, DEPOSIT, min_fee(), 0)).expect("creates");
    apply_transaction(&mut state, &config(), &pay(&alice, bob, 1, min_fee(), 1)).expect("tops up");
    assert_eq!(state.account(&bob).balance, DEPOSIT + 1);
}

#[test]
fn a_sender_left_below_the_deposit_loses_its_dust_but_keeps_its_nonce() {
    let alice = key(1);
    let bob = key(2);
    let mut state = funded(&[&alice, &bob], 100_000);
    let fee = min_fee();
    // Leaves alice with DEPOSIT - 1: burnt.
    let drain = pay(&alice, Address::of(&bob), 100_000 - fee - (DEPOSIT - 1), fee, 0);
    let outcome = apply_transaction(&mut state, &config(), &drain).expect("drains");
    assert_eq!(
        outcome,
        TransactionOutcome {
            fee,
            burnt: DEPOSIT - 1
        }
    );
    assert_eq!(
        state.account(&Address::of(&alice)),
        Account { balance: 0, nonce: 1 }
    );
    // Funded again, alice's old transaction cannot be replayed: her nonce survived.
    let refund = pay(&bob, Address::of(&alice), 100_000, fee, 0);
    apply_transaction(&mut state, &config(), &refund).expect("refunds");
    assert!(matches!(
        apply_transaction(&mut state, &config(), &drain),
        Err(ExecutionError::BadNonce {
            expected: 1,
            got: 0,
            ..
        })
    ));
}

#[test]
fn rewards_too_small_to_create_an_account_are_burnt() {
    let small = RuntimeConfig {
        block_reward: DEPOSIT - 1,
        vote_reward: DEPOSIT - 1,
        ..config()
    };
    let author = Address([3; 32]);
    let voter = Address([4; 32]);
    let mut state = InMemoryAccounts::default();
    let outcome = apply_block(&mut state, &small, author, &[voter], &[]).expect("valid");
    assert_eq!(outcome.credited, 0);
    assert_eq!(outcome.votes_paid, 0);
    assert_eq!(outcome.minted, 2 * (DEPOSIT - 1));
    assert_eq!(outcome.burnt, 2 * (DEPOSIT - 1));
    assert!(state.0.is_empty(), "no dust account was created");
    // An existing account receives them.
    state.set_account(
        voter,
        Account {
            balance: DEPOSIT,
            nonce: 0,
        },
    );
    apply_block(&mut state, &small, author, &[voter], &[]).expect("valid");
    assert_eq!(state.account(&voter).balance, 2 * DEPOSIT - 1);
}

#[test]
fn a_failing_transaction_invalidates_the_block() {
    let alice = key(1);
    let mut state = funded(&[&alice], 1_000_000);
    let txs = [pay(&alice, Address([2; 32]), DEPOSIT, min_fee(), 1)];
    assert!(matches!(
        apply_block(&mut state, &config(), Address([3; 32]), &[], &txs),
        Err(ExecutionError::BadNonce { .. })
    ));
}

/// One step of the issuance property: a transfer between the test's accounts, or a block boundary.
#[derive(Debug, Clone)]
enum Step {
    Transfer {
        from: usize,
        to: usize,
        amount: u128,
        extra_fee: u128,
    },
    Block {
        author: usize,
        voters: Vec<usize>,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..6usize, 0..8usize, 0..300_000u128, 0..5_000u128).prop_map(|(from, to, amount, extra_fee)| {
            Step::Transfer { from, to, amount, extra_fee }
        }),
        1 => (0..8usize, proptest::collection::vec(0..8usize, 0..4))
            .prop_map(|(author, voters)| Step::Block { author, voters }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, rng_seed: RngSeed::Fixed(11), failure_persistence: None, ..ProptestConfig::default() })]

    /// Over random transfers (valid or not) and blocks, total issuance changes by exactly the rewards
    /// minted minus what was burnt, and no account ever holds dust.
    #[test]
    fn issuance_changes_by_exactly_rewards_minus_burnt_dust(steps in proptest::collection::vec(step(), 1..60)) {
        let keys: Vec<SigningKey> = (1..=6).map(key).collect();
        let addresses: Vec<Address> = (1..=8u8)
            .map(|seed| if seed <= 6 { Address::of(&key(seed)) } else { Address([seed; 32]) })
            .collect();
        let config = config();
        let mut state = funded(&keys.iter().collect::<Vec<_>>(), 200_000);
        let mut pending = Vec::new();
        let mut expected = state.total_issuance();
        for step in steps {
            match step {
                Step::Transfer { from, to, amount, extra_fee } => {
                    // Build against a scratch state, as block authoring does: failing ones are left out.
                    let mut scratch = state.clone();
                    for tx in &pending {
                        apply_transaction(&mut scratch, &config, tx).expect("already checked");
                    }
                    let nonce = scratch.account(&addresses[from]).nonce;
                    let tx = pay(&keys[from], addresses[to], amount, min_fee() + extra_fee, nonce);
                    let before = scratch.clone();
                    match apply_transaction(&mut scratch, &config, &tx) {
                        Ok(_) => pending.push(tx),
                        Err(_) => prop_assert_eq!(&scratch, &before, "a failed transaction changed state"),
                    }
                }
                Step::Block { author, voters } => {
                    let voters: Vec<Address> = voters.iter().map(|&i| addresses[i]).collect();
                    let outcome = apply_block(&mut state, &config, addresses[author], &voters, &pending)
                        .expect("checked transactions apply");
                    pending.clear();
                    expected = expected + outcome.minted - outcome.burnt;
                    prop_assert_eq!(state.total_issuance(), expected);
                    prop_assert_eq!(outcome.minted, config.block_reward + config.vote_reward * voters.len() as u128);
                    for account in state.0.values() {
                        prop_assert!(account.balance == 0 || account.balance >= DEPOSIT, "dust {:?}", account);
                    }
                }
            }
        }
    }
}
