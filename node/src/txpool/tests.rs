use std::collections::HashMap;

use acre_execution::Transfer;
use ed25519_dalek::SigningKey;

use super::*;

const GENESIS: Blake3Hash = Blake3Hash([4; 32]);
const DEPOSIT: u128 = 10_000;
const FUNDS: u128 = 1_000_000_000;

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

fn min_fee() -> u128 {
    config().minimum_fee(SignedTransaction::TRANSFER_SIZE)
}

fn key(index: u32) -> SigningKey {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&index.to_le_bytes());
    seed[31] = 1;
    SigningKey::from_bytes(&seed)
}

/// A live recipient, so transfers of any amount to it may apply.
const RECIPIENT: Address = Address([9; 32]);

fn signed(key: &SigningKey, nonce: u64, fee: u128, amount: u128) -> SignedTransaction {
    SignedTransaction::sign(
        Transfer {
            from: Address::of(key),
            to: RECIPIENT,
            amount,
            fee,
            nonce,
        },
        GENESIS,
        key,
    )
}

fn tx(key: &SigningKey, nonce: u64, fee: u128) -> Vec<u8> {
    signed(key, nonce, fee, 10).encode()
}

/// Every account is funded with nonce `nonce`, and the recipient exists.
fn accounts(nonce: u64) -> impl Fn(&Address) -> Account {
    move |_| Account {
        balance: FUNDS,
        nonce,
    }
}

fn limits(capacity: usize) -> PoolLimits {
    PoolLimits {
        capacity,
        ..PoolLimits::default()
    }
}

fn nonces(pool: &TxPool, nonce: u64) -> Vec<u64> {
    pool.candidates(accounts(nonce))
        .iter()
        .map(|tx| tx.transaction.nonce)
        .collect()
}

#[test]
fn admits_orders_and_prunes() {
    let alice = key(1);
    let pool = TxPool::with_limits(limits(8));
    for nonce in [2, 1, 4] {
        pool.submit(&tx(&alice, nonce, min_fee()), &config(), accounts(1))
            .expect("admitted");
    }
    assert_eq!(nonces(&pool, 1), vec![1, 2], "the gap at 3 stops the run");
    pool.prune(accounts(3));
    assert_eq!(pool.len(), 1);
    assert_eq!(nonces(&pool, 3), Vec::<u64>::new());
}

#[test]
fn pool_refuses_garbage_unknown_versions_and_bad_signatures() {
    let alice = key(1);
    let pool = TxPool::new(8);
    assert!(matches!(
        pool.submit(&[SignedTransaction::VERSION, 2, 3], &config(), accounts(0)),
        Err(PoolError::Undecodable(ExecutionError::Malformed(_)))
    ));
    let mut future = tx(&alice, 0, min_fee());
    future[0] = 3;
    assert!(matches!(
        pool.submit(&future, &config(), accounts(0)),
        Err(PoolError::Undecodable(ExecutionError::UnsupportedVersion {
            version: 3
        }))
    ));
    let mut forged = tx(&alice, 0, min_fee());
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert!(matches!(
        pool.submit(&forged, &config(), accounts(0)),
        Err(PoolError::BadSignature(ExecutionError::BadSignature(_)))
    ));
    assert!(pool.is_empty());
}

#[test]
fn pool_refuses_transactions_for_another_chain() {
    let alice = key(1);
    let other = RuntimeConfig {
        genesis_hash: Blake3Hash([5; 32]),
        ..config()
    };
    let pool = TxPool::new(8);
    assert!(matches!(
        pool.submit(&tx(&alice, 0, min_fee()), &other, accounts(0)),
        Err(PoolError::WrongChain { expected, got }) if expected == other.genesis_hash && got == GENESIS
    ));
}

#[test]
fn pool_refuses_fees_below_the_minimum() {
    let alice = key(1);
    let pool = TxPool::new(8);
    assert!(matches!(
        pool.submit(&tx(&alice, 0, min_fee() - 1), &config(), accounts(0)),
        Err(PoolError::FeeTooLow { fee, minimum }) if fee == min_fee() - 1 && minimum == min_fee()
    ));
}

#[test]
fn pool_refuses_stale_nonces() {
    let pool = TxPool::new(8);
    assert!(matches!(
        pool.submit(&tx(&key(1), 0, min_fee()), &config(), accounts(1)),
        Err(PoolError::StaleNonce { expected: 1, got: 0 })
    ));
}

#[test]
fn pool_refuses_nonces_beyond_the_window() {
    let alice = key(1);
    let pool = TxPool::new(8);
    let window = pool.limits().nonce_window;
    pool.submit(&tx(&alice, 5 + window - 1, min_fee()), &config(), accounts(5))
        .expect("the last nonce inside the window");
    assert!(matches!(
        pool.submit(&tx(&alice, 5 + window, min_fee()), &config(), accounts(5)),
        Err(PoolError::NonceTooFarAhead { next: 5, got, .. }) if got == 5 + window
    ));
    assert!(matches!(
        pool.submit(&tx(&alice, u64::MAX, min_fee()), &config(), accounts(5)),
        Err(PoolError::NonceTooFarAhead { .. })
    ));
}

#[test]
fn pool_refuses_senders_who_cannot_pay_for_their_pending_run() {
    let alice = key(1);
    let pool = TxPool::new(8);
    let fee = min_fee();
    let balance = 3 * (100 + fee);
    let poor = move |_: &Address| Account { balance, nonce: 0 };
    assert!(matches!(
        pool.submit(&signed(&alice, 0, fee, balance).encode(), &config(), poor),
        Err(PoolError::InsufficientBalance { needed, .. }) if needed == balance + fee
    ));
    for nonce in 0..3 {
        pool.submit(&signed(&alice, nonce, fee, 100).encode(), &config(), poor)
            .expect("affordable");
    }
    // Each alone is affordable; on top of the three pending ones it is not.
    assert!(matches!(
        pool.submit(&signed(&alice, 3, fee, 100).encode(), &config(), poor),
        Err(PoolError::InsufficientBalance { needed, .. }) if needed == balance + 100 + fee
    ));
}

#[test]
fn pool_refuses_transfers_that_would_create_a_dust_account() {
    let alice = key(1);
    let pool = TxPool::new(8);
    let fresh = Address([7; 32]);
    let only_alice = |address: &Address| {
        if *address == fresh {
            Account::default()
        } else {
            Account {
                balance: FUNDS,
                nonce: 0,
            }
        }
    };
    let dust = SignedTransaction::sign(
        Transfer {
            from: Address::of(&alice),
            to: fresh,
            amount: DEPOSIT - 1,
            fee: min_fee(),
            nonce: 0,
        },
        GENESIS,
        &alice,
    );
    assert!(matches!(
        pool.submit(&dust.encode(), &config(), only_alice),
        Err(PoolError::BelowExistentialDeposit { amount, deposit: DEPOSIT }) if amount == DEPOSIT - 1
    ));
}

#[test]
fn pool_refuses_a_transaction_already_pending() {
    let pool = TxPool::new(8);
    let bytes = tx(&key(1), 0, min_fee());
    let hash = pool.submit(&bytes, &config(), accounts(0)).expect("admitted");
    assert!(matches!(
        pool.submit(&bytes, &config(), accounts(0)),
        Err(PoolError::AlreadyPending(pending)) if pending == hash
    ));
}

#[test]
fn pool_replaces_a_pending_nonce_only_for_a_clearly_higher_fee() {
    let alice = key(1);
    let pool = TxPool::new(8);
    let fee = 10_000;
    pool.submit(&tx(&alice, 0, fee), &config(), accounts(0))
        .expect("admitted");
    assert!(matches!(
        pool.submit(&signed(&alice, 0, fee + 999, 11).encode(), &config(), accounts(0)),
        Err(PoolError::ReplacementUnderpriced {
            pending_fee: 10_000,
            minimum: 11_000
        })
    ));
    pool.submit(&tx(&alice, 0, fee + 1000), &config(), accounts(0))
        .expect("replaces");
    assert_eq!(pool.len(), 1);
    let candidates = pool.candidates(accounts(0));
    assert_eq!(candidates[0].transaction.fee, fee + 1000);
}

#[test]
fn pool_caps_pending_transactions_per_sender() {
    let alice = key(1);
    let pool = TxPool::new(64);
    let limit = pool.limits().per_sender;
    for nonce in 0..limit as u64 {
        pool.submit(&tx(&alice, nonce, min_fee()), &config(), accounts(0))
            .expect("admitted");
    }
    assert!(matches!(
        pool.submit(&tx(&alice, limit as u64, min_fee()), &config(), accounts(0)),
        Err(PoolError::SenderLimit { limit: l }) if l == limit
    ));
    // Replacing a pending nonce is still possible at the cap.
    pool.submit(&tx(&alice, 0, 2 * min_fee()), &config(), accounts(0))
        .expect("replaces");
    pool.submit(&tx(&key(2), 0, min_fee()), &config(), accounts(0))
        .expect("other senders are unaffected");
}

#[test]
fn a_full_pool_evicts_its_cheapest_transaction_for_a_better_paying_one() {
    let pool = TxPool::new(3);
    let fee = min_fee();
    pool.submit(&tx(&key(1), 0, fee + 5), &config(), accounts(0))
        .expect("admitted");
    pool.submit(&tx(&key(2), 0, fee), &config(), accounts(0))
        .expect("admitted");
    pool.submit(&tx(&key(2), 1, fee + 9), &config(), accounts(0))
        .expect("admitted");
    assert!(matches!(
        pool.submit(&tx(&key(3), 0, fee), &config(), accounts(0)),
        Err(PoolError::PoolFull { capacity: 3, lowest_fee }) if lowest_fee == fee
    ));
    // Evicting key 2's nonce 0 also drops its nonce 1, which could no longer be included.
    pool.submit(&tx(&key(3), 0, fee + 1), &config(), accounts(0))
        .expect("evicts");
    assert_eq!(pool.len(), 2);
    let senders: Vec<Address> = pool
        .candidates(accounts(0))
        .iter()
        .map(|tx| tx.transaction.from)
        .collect();
    assert_eq!(senders, vec![Address::of(&key(1)), Address::of(&key(3))]);
}

#[test]
fn a_full_pool_never_evicts_a_senders_earlier_nonce_for_its_later_one() {
    let pool = TxPool::new(2);
    let fee = min_fee();
    pool.submit(&tx(&key(1), 0, fee), &config(), accounts(0))
        .expect("admitted");
    pool.submit(&tx(&key(2), 0, fee + 5), &config(), accounts(0))
        .expect("admitted");
    assert!(matches!(
        pool.submit(&tx(&key(1), 1, fee + 50), &config(), accounts(0)),
        Err(PoolError::PoolFull { .. })
    ));
    assert_eq!(nonces(&pool, 0), vec![0, 0]);
}

#[test]
fn candidates_put_the_best_paying_first_and_keep_each_senders_order() {
    let pool = TxPool::new(16);
    let fee = min_fee();
    pool.submit(&tx(&key(1), 0, fee), &config(), accounts(0))
        .expect("admitted");
    pool.submit(&tx(&key(1), 1, fee + 100), &config(), accounts(0))
        .expect("admitted");
    pool.submit(&tx(&key(2), 0, fee + 10), &config(), accounts(0))
        .expect("admitted");
    let order: Vec<(Address, u64)> = pool
        .candidates(accounts(0))
        .iter()
        .map(|tx| (tx.transaction.from, tx.transaction.nonce))
        .collect();
    let (one, two) = (Address::of(&key(1)), Address::of(&key(2)));
    assert_eq!(order, vec![(two, 0), (one, 0), (one, 1)]);
}

#[test]
fn runs_ending_at_the_largest_nonce_do_not_overflow() {
    let alice = key(1);
    let pool = TxPool::new(8);
    let start = u64::MAX - 1;
    for nonce in [start, u64::MAX] {
        pool.submit(&tx(&alice, nonce, min_fee()), &config(), accounts(start))
            .expect("admitted");
    }
    assert_eq!(nonces(&pool, start), vec![start, u64::MAX]);
    assert_eq!(pool.next_nonce(&Address::of(&alice), start), u64::MAX);
}

#[test]
fn next_nonce_follows_the_senders_consecutive_pending_run() {
    let alice = key(1);
    let address = Address::of(&alice);
    let pool = TxPool::new(16);
    assert_eq!(pool.next_nonce(&address, 3), 3);
    for nonce in [3, 4, 6] {
        pool.submit(&tx(&alice, nonce, min_fee()), &config(), accounts(3))
            .expect("admitted");
    }
    assert_eq!(pool.next_nonce(&address, 3), 5, "the gap at 5 is next");
    assert_eq!(pool.next_nonce(&address, 5), 5);
    assert_eq!(pool.next_nonce(&Address([1; 32]), 0), 0);
}

#[test]
fn pool_stays_open_to_honest_senders_under_a_future_nonce_flood() {
    let pool = TxPool::new(256);
    let limit = pool.limits().per_sender;
    let window = pool.limits().nonce_window;
    let mut funded: HashMap<Address, Account> = HashMap::new();
    let honest = key(0);
    funded.insert(
        Address::of(&honest),
        Account {
            balance: FUNDS,
            nonce: 0,
        },
    );
    let flooders: Vec<SigningKey> = (1..=64).map(key).collect();
    for flooder in &flooders {
        funded.insert(
            Address::of(flooder),
            Account {
                balance: FUNDS,
                nonce: 0,
            },
        );
    }
    funded.insert(
        RECIPIENT,
        Account {
            balance: FUNDS,
            nonce: 0,
        },
    );
    let lookup = |address: &Address| funded.get(address).copied().unwrap_or_default();

    // 10,000 zero-fee, far-future transactions from fresh keys: all refused, none held.
    let mut refused = 0;
    for index in 100..10_100u32 {
        let fresh = key(index);
        let nonce = 1_000 + u64::from(index);
        match pool.submit(&tx(&fresh, nonce, 0), &config(), lookup) {
            Err(PoolError::FeeTooLow { .. }) => refused += 1,
            other => panic!("a zero-fee flood transaction got {other:?}"),
        }
    }
    assert_eq!(refused, 10_000);
    assert!(pool.is_empty());
    // The same flood paying the minimum fee from fresh (unfunded) keys: still nothing held.
    for index in 100..1_100u32 {
        assert!(matches!(
            pool.submit(&tx(&key(index), u64::from(index), min_fee()), &config(), lookup),
            Err(PoolError::NonceTooFarAhead { .. } | PoolError::InsufficientBalance { .. })
        ));
    }
    // Funded flooders park never-includable future nonces (nonce 0 is missing) until the pool is full.
    for flooder in &flooders {
        for nonce in 1..window {
            match pool.submit(&tx(flooder, nonce, min_fee()), &config(), lookup) {
                Ok(_) | Err(PoolError::SenderLimit { .. } | PoolError::PoolFull { .. }) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(pool.len(), 256, "the flood filled the pool");
    assert!(
        flooders
            .iter()
            .all(|flooder| pool.next_nonce(&Address::of(flooder), 0) == 0),
        "no flood transaction is includable"
    );
    assert!(pool.len() <= flooders.len() * limit);

    // An honest transfer paying a little more than the minimum still gets in and is a candidate.
    let honest_tx = signed(&honest, 0, min_fee() + 1, 50_000);
    pool.submit(&honest_tx.encode(), &config(), lookup)
        .expect("the honest transfer is admitted");
    assert_eq!(pool.len(), 256);
    assert_eq!(pool.candidates(lookup), vec![honest_tx]);
    assert_eq!(pool.next_nonce(&Address::of(&honest), 0), 1);
}
