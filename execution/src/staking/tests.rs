use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn address(byte: u8) -> Address {
    Address([byte; 32])
}

fn params() -> StakingParams {
    StakingParams::dev()
}

#[test]
fn a_worked_epoch_deposits_rewards_and_withdraws_at_the_epochs_price() {
    let mut staking = Staking::new(params());
    let owner = address(1);
    let nominator = address(2);
    let id = OperatorId(0);
    staking
        .register(id, owner, [7; 32], 100 * ACRE, 10, ACRE)
        .expect("registers");
    // A fifth to the storage fund, the rest becomes shares 1:1 at the first epoch's end.
    assert_eq!(staking.operators[&id].storage_fund, 20 * ACRE);
    assert!(
        staking.election_stakes().is_empty(),
        "no stake before the epoch ends"
    );
    staking.end_epoch(DomainBlockNumber(10)).expect("epoch");
    let pool = &staking.operators[&id];
    assert_eq!((pool.total_stake, pool.total_shares), (80 * ACRE, 80 * ACRE));
    assert_eq!(staking.election_stakes()[&id], 80 * ACRE);

    // A reward of 10: 1 to the owner as a deposit (0.2 of it to the fund), 9 into the stake.
    staking.reward(id, 10 * ACRE).expect("rewards");
    staking.nominate(id, nominator, 10 * ACRE).expect("nominates");
    staking.end_epoch(DomainBlockNumber(20)).expect("epoch");
    let pool = &staking.operators[&id];
    let price = staking.share_prices[&(id, EpochIndex(1))];
    assert_eq!(
        price,
        SharePrice {
            stake: 89 * ACRE,
            shares: 80 * ACRE
        }
    );
    // The nominator's 8 staked bought 8 × 80 / 89 shares (rounded down) at that price.
    let nominator_shares = pool.nominators[&nominator].shares;
    assert_eq!(
        nominator_shares,
        mul_div(8 * ACRE, 80 * ACRE, 89 * ACRE).expect("fits")
    );
    assert_eq!(pool.total_stake, 89 * ACRE + 8 * ACRE + 8 * ACRE / 10);

    // Withdrawing everything pays the shares' worth plus the storage deposit, after the delay.
    staking
        .withdraw(id, nominator, nominator_shares)
        .expect("withdraws");
    staking.end_epoch(DomainBlockNumber(30)).expect("epoch");
    assert_eq!(
        staking
            .unlock(id, nominator, DomainBlockNumber(49))
            .expect("unlock"),
        0
    );
    let paid = staking
        .unlock(id, nominator, DomainBlockNumber(50))
        .expect("unlock");
    let price = staking.share_prices[&(id, EpochIndex(2))];
    let expected = mul_div(nominator_shares, price.stake, price.shares).expect("fits") + 2 * ACRE;
    assert_eq!(paid, expected);
    assert!(
        paid < 10 * ACRE && paid > 9 * ACRE,
        "rounding kept dust in the pool: {paid}"
    );
}

#[test]
fn every_refusal_has_its_error() {
    let mut staking = Staking::new(params());
    let owner = address(1);
    assert_eq!(
        staking.register(OperatorId(0), owner, [0; 32], ACRE, 5, ACRE),
        Err(ExecutionError::StakeTooLow {
            amount: ACRE,
            minimum: 10 * ACRE
        })
    );
    assert_eq!(
        staking.register(OperatorId(0), owner, [0; 32], 10 * ACRE, 101, ACRE),
        Err(ExecutionError::NominationTax(101))
    );
    let id = OperatorId(0);
    staking
        .register(id, owner, [0; 32], 10 * ACRE, 5, 2 * ACRE)
        .expect("registers");
    assert_eq!(
        staking.register(id, owner, [0; 32], 10 * ACRE, 5, 2 * ACRE),
        Err(ExecutionError::OperatorExists(0))
    );
    assert_eq!(
        staking.nominate(id, address(2), ACRE),
        Err(ExecutionError::StakeTooLow {
            amount: ACRE,
            minimum: 2 * ACRE
        })
    );
    assert_eq!(
        staking.nominate(OperatorId(9), address(2), ACRE),
        Err(ExecutionError::UnknownOperator(9))
    );
    assert_eq!(
        staking.withdraw(id, address(3), 1),
        Err(ExecutionError::NotANominator(0))
    );
    staking.end_epoch(DomainBlockNumber(1)).expect("epoch");
    // The owner keeps the minimum stake while registered.
    let shares = staking.operators[&id].nominators[&owner].shares;
    assert!(matches!(
        staking.withdraw(id, owner, 1),
        Err(ExecutionError::StakeTooLow { .. })
    ));
    assert_eq!(
        staking.withdraw(id, owner, shares + 1),
        Err(ExecutionError::InsufficientShares {
            held: shares,
            asked: shares + 1
        })
    );
    staking.deregister(id, DomainBlockNumber(2)).expect("deregisters");
    assert_eq!(
        staking.nominate(id, address(2), 5 * ACRE),
        Err(ExecutionError::OperatorNotRegistered(0))
    );
    assert_eq!(
        staking.reward(id, 1),
        Err(ExecutionError::OperatorNotRegistered(0))
    );
}

#[test]
fn mul_div_takes_products_past_128_bits() {
    assert_eq!(mul_div(u128::MAX, u128::MAX, u128::MAX), Some(u128::MAX));
    assert_eq!(
        mul_div(10u128.pow(27), 10u128.pow(27), 10u128.pow(27)),
        Some(10u128.pow(27))
    );
    assert_eq!(mul_div(7, 3, 2), Some(10));
    assert_eq!(mul_div(1, 1, 0), None);
    assert_eq!(mul_div(u128::MAX, 2, 1), None);
}

/// One random operation (indices are taken modulo what exists).
#[derive(Debug, Clone)]
enum Op {
    Register { who: u8, amount: u128, tax: u8 },
    Nominate { operator: u8, who: u8, amount: u128 },
    Withdraw { operator: u8, who: u8, percent: u8 },
    Reward { operator: u8, amount: u128 },
    EndEpoch,
    Advance(u64),
    Unlock { operator: u8, who: u8 },
    Deregister { operator: u8 },
    Slash { operator: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    let amount = 1u128..1_000 * ACRE;
    prop_oneof![
        1 => (0u8..6, 10 * ACRE..500 * ACRE, 0u8..=100).prop_map(|(who, amount, tax)| Op::Register { who, amount, tax }),
        4 => (any::<u8>(), 0u8..6, amount.clone()).prop_map(|(operator, who, amount)| Op::Nominate { operator, who, amount }),
        3 => (any::<u8>(), 0u8..6, 1u8..=100).prop_map(|(operator, who, percent)| Op::Withdraw { operator, who, percent }),
        3 => (any::<u8>(), amount).prop_map(|(operator, amount)| Op::Reward { operator, amount }),
        3 => Just(Op::EndEpoch),
        2 => (1u64..30).prop_map(Op::Advance),
        3 => (any::<u8>(), 0u8..6).prop_map(|(operator, who)| Op::Unlock { operator, who }),
        1 => any::<u8>().prop_map(|operator| Op::Deregister { operator }),
        1 => any::<u8>().prop_map(|operator| Op::Slash { operator }),
    ]
}

/// `a/b ≤ c/d` for share prices, in 256 bits.
fn price_at_most(a: &SharePrice, b: &SharePrice) -> bool {
    U256::from(a.stake) * U256::from(b.shares) <= U256::from(b.stake) * U256::from(a.shares)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(41), failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever the sequence, every unit is in an account or held by staking, except what rewards
    /// minted and slashes burned; each pool's books add up; and a pool's share price never falls
    /// (deposits and withdrawals round in the pool's favour, rewards raise it).
    #[test]
    fn no_operation_creates_or_loses_balance(ops in prop::collection::vec(op(), 1..80)) {
        let mut staking = Staking::new(params());
        let mut accounts: BTreeMap<Address, Balance> = (0..6).map(|i| (address(i), 10_000 * ACRE)).collect();
        let initial: Balance = accounts.values().sum();
        let (mut minted, mut burned) = (0u128, 0u128);
        let mut head = DomainBlockNumber(0);
        let mut next_id = 0u64;
        for op in ops {
            let ids: Vec<OperatorId> = staking.operators.keys().copied().collect();
            let pick = |index: u8| (!ids.is_empty()).then(|| ids[usize::from(index) % ids.len()]);
            let before: BTreeMap<OperatorId, SharePrice> = staking
                .operators
                .iter()
                .map(|(id, pool)| (*id, SharePrice { stake: pool.total_stake, shares: pool.total_shares }))
                .collect();
            match op {
                Op::Register { who, amount, tax } => {
                    let owner = address(who);
                    if accounts[&owner] >= amount && staking.register(OperatorId(next_id), owner, [who; 32], amount, tax, ACRE).is_ok() {
                        next_id += 1;
                        *accounts.get_mut(&owner).expect("account") -= amount;
                    }
                }
                Op::Nominate { operator, who, amount } => {
                    let who = address(who);
                    if let Some(id) = pick(operator)
                        && accounts[&who] >= amount
                        && staking.nominate(id, who, amount).is_ok()
                    {
                        *accounts.get_mut(&who).expect("account") -= amount;
                    }
                }
                Op::Withdraw { operator, who, percent } => {
                    if let Some(id) = pick(operator) {
                        let who = address(who);
                        let held = staking.operators[&id].nominators.get(&who).map_or(0, |n| n.shares - n.withdrawing);
                        let shares = mul_div(held, u128::from(percent), 100).unwrap_or(0);
                        let _ = staking.withdraw(id, who, shares);
                    }
                }
                Op::Reward { operator, amount } => {
                    if let Some(id) = pick(operator) && staking.reward(id, amount).is_ok() {
                        minted += amount;
                    }
                }
                Op::EndEpoch => staking.end_epoch(head).expect("an epoch always ends"),
                Op::Advance(blocks) => head = DomainBlockNumber(head.0 + blocks),
                Op::Unlock { operator, who } => {
                    if let Some(id) = pick(operator) {
                        let who = address(who);
                        let paid = staking.unlock(id, who, head).expect("unlocks");
                        *accounts.get_mut(&who).expect("account") += paid;
                    }
                }
                Op::Deregister { operator } => {
                    if let Some(id) = pick(operator) {
                        let _ = staking.deregister(id, head);
                    }
                }
                Op::Slash { operator } => {
                    if let Some(id) = pick(operator) {
                        burned += staking.slash(id).expect("slashes");
                    }
                }
            }
            let in_accounts: Balance = accounts.values().sum();
            prop_assert_eq!(in_accounts + staking.held(), initial + minted - burned);
            for (id, pool) in &staking.operators {
                prop_assert_eq!(pool.nominators.values().map(|n| n.shares).sum::<u128>(), pool.total_shares);
                prop_assert_eq!(pool.nominators.values().map(|n| n.storage_deposit).sum::<u128>(), pool.storage_deposits);
                prop_assert_eq!(pool.nominators.values().map(|n| n.pending_deposit).sum::<u128>(), pool.pending_deposits);
                let now = SharePrice { stake: pool.total_stake, shares: pool.total_shares };
                if let Some(was) = before.get(id)
                    && pool.status != OperatorStatus::Slashed
                    && was.shares > 0
                    && now.shares > 0
                {
                    prop_assert!(price_at_most(was, &now), "share price fell: {was:?} → {now:?}");
                }
            }
        }
    }
}
