//! Operator staking pools for domains (DOMAINS.md section 3): deposits, withdrawals, epochs, rewards,
//! deregistration and slashing, as a pure state machine over balances the caller moves.
//!
//! **Pools of shares.** Each operator is a pool: its stake is owned by share holders (the operator's
//! owner and its nominators), and a share is worth `total_stake / total_shares`. Rewards raise the stake
//! without minting shares, so every holder gains in proportion without the pool touching each of them;
//! a slash takes the whole pool at once. This is Subspace's design, and the reason the state is constant
//! per operator however many nominators it has.
//!
//! **Epochs.** Deposits and withdrawals made during an epoch only take effect at its end, all at that
//! epoch's share price (snapshotted per operator and epoch), so nobody can time a deposit against a
//! reward landing in the same epoch. Stake → shares and shares → stake both round down: the pool keeps the
//! dust, so rounding can never pay out more than is there.
//!
//! **Storage fund.** A fifth of every deposit goes to the operator's storage fund (it pays the bundles'
//! storage fees), not to the stake. Each holder's part of the fund is its storage deposit's share of all
//! deposits; a withdrawal takes the same fraction of the holder's deposit as of its shares.
//!
//! **Accounting.** Nothing here creates or destroys balance except rewards (minted, [`Staking::reward`]),
//! and slashes (burned, [`Staking::slash`]): what callers pay in is held ([`Staking::held`]) until paid
//! out. The property tests check that exactly, over random sequences of every operation.
//!
//! Amounts are `u128`, and products of two amounts are taken in 256 bits ([`mul_div`]): a stake of
//! 10^27 units times as many shares does not fit 128 bits.

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};
use ruint::aliases::U256;

use crate::error::ExecutionError;
use crate::transaction::Address;

#[cfg(test)]
mod tests;

/// An amount of the chain's currency, in its smallest unit.
pub type Balance = u128;

/// One ACRE in the smallest unit (18 decimals).
pub const ACRE: Balance = 1_000_000_000_000_000_000;

/// An operator's sequential id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct OperatorId(pub u64);

/// A domain block number: never compared with a consensus block number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct DomainBlockNumber(pub u64);

/// A staking epoch's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct EpochIndex(pub u64);

/// The staking rules' numbers (DOMAINS.md section 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct StakingParams {
    /// Least stake an operator registers with, and keeps while registered.
    pub min_operator_stake: Balance,
    /// Least a nominator's first deposit with any operator.
    pub min_nominator_stake: Balance,
    /// Percent of every deposit that goes to the operator's storage fund.
    pub storage_fund_percent: u8,
    /// Domain blocks between a withdrawal taking effect and its funds unlocking (the challenge period).
    pub unlock_delay: u64,
}

impl StakingParams {
    /// Mainnet's numbers.
    pub fn mainnet() -> Self {
        Self {
            min_operator_stake: 100 * ACRE,
            min_nominator_stake: ACRE,
            storage_fund_percent: 20,
            unlock_delay: 14_400,
        }
    }

    /// The development chain's numbers.
    pub fn dev() -> Self {
        Self {
            min_operator_stake: 10 * ACRE,
            min_nominator_stake: ACRE,
            storage_fund_percent: 20,
            unlock_delay: 20,
        }
    }
}

/// Where an operator stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum OperatorStatus {
    /// Electable from the next epoch on.
    Registered,
    /// Deregistered: its holders' funds unlock at this domain block.
    Deregistered {
        /// When everything unlocks.
        unlock_at: DomainBlockNumber,
    },
    /// Slashed: its pool was burned.
    Slashed,
}

/// One holder's position in a pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Nominator {
    /// Shares held.
    pub shares: u128,
    /// Shares asked to be withdrawn at the end of this epoch.
    pub withdrawing: u128,
    /// Stake deposited this epoch, converted to shares at its end.
    pub pending_deposit: Balance,
    /// This holder's deposits into the storage fund, less what withdrawals took out.
    pub storage_deposit: Balance,
}

/// An operator's pool.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Operator {
    /// The owner's account.
    pub owner: Address,
    /// The schnorrkel public key it signs bundles and proves elections with.
    pub signing_key: [u8; 32],
    /// Percent of each epoch's rewards paid to the owner (as a deposit) before the rest goes to all.
    pub nomination_tax: u8,
    /// Least a new nominator deposits with this operator (at least the chain's).
    pub minimum_nominator_stake: Balance,
    /// Where it stands.
    pub status: OperatorStatus,
    /// Stake owned by the shares.
    pub total_stake: Balance,
    /// Shares issued.
    pub total_shares: u128,
    /// The storage fund's balance.
    pub storage_fund: Balance,
    /// The holders' storage deposits, summed.
    pub storage_deposits: Balance,
    /// Rewards of the current epoch, not yet in the stake.
    pub epoch_rewards: Balance,
    /// Deposits of the current epoch, not yet shares.
    pub pending_deposits: Balance,
    /// The holders.
    pub nominators: BTreeMap<Address, Nominator>,
}

/// Funds that left a pool and unlock at a domain block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Withdrawal {
    /// What is paid out.
    pub amount: Balance,
    /// From when.
    pub unlock_at: DomainBlockNumber,
}

/// A pool's share price at the end of an epoch: `stake / shares` (both zero before the first deposit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SharePrice {
    /// The pool's stake.
    pub stake: Balance,
    /// Its shares.
    pub shares: u128,
}

/// Every operator's pool, the epoch, and the funds waiting to unlock.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Staking {
    /// The rules' numbers.
    pub params: StakingParams,
    /// The pools.
    pub operators: BTreeMap<OperatorId, Operator>,
    /// The current epoch.
    pub epoch: EpochIndex,
    /// Each pool's share price at the end of each epoch.
    pub share_prices: BTreeMap<(OperatorId, EpochIndex), SharePrice>,
    /// Withdrawals waiting to unlock, by pool and holder.
    pub withdrawals: BTreeMap<(OperatorId, Address), Vec<Withdrawal>>,
}

/// `⌊a × b / c⌋` in 256 bits; `None` if `c` is zero or the result does not fit 128 bits.
pub fn mul_div(a: u128, b: u128, c: u128) -> Option<u128> {
    if c == 0 {
        return None;
    }
    let result = U256::from(a) * U256::from(b) / U256::from(c);
    u128::try_from(result).ok()
}

impl Staking {
    /// No operator yet, epoch 0.
    pub fn new(params: StakingParams) -> Self {
        Self {
            params,
            operators: BTreeMap::new(),
            epoch: EpochIndex(0),
            share_prices: BTreeMap::new(),
            withdrawals: BTreeMap::new(),
        }
    }

    fn operator_mut(&mut self, id: OperatorId) -> Result<&mut Operator, ExecutionError> {
        self.operators
            .get_mut(&id)
            .ok_or(ExecutionError::UnknownOperator(id.0))
    }

    fn registered_mut(&mut self, id: OperatorId) -> Result<&mut Operator, ExecutionError> {
        let operator = self.operator_mut(id)?;
        if operator.status != OperatorStatus::Registered {
            return Err(ExecutionError::OperatorNotRegistered(id.0));
        }
        Ok(operator)
    }

    /// Registers operator `id` (allocated by the caller: ids are global across domains, pools are per
    /// domain) whose owner deposits `amount` (the caller takes it from the owner); its stake counts from
    /// the end of the epoch.
    #[allow(clippy::too_many_arguments)]
    pub fn register(
        &mut self,
        id: OperatorId,
        owner: Address,
        signing_key: [u8; 32],
        amount: Balance,
        nomination_tax: u8,
        minimum_nominator_stake: Balance,
    ) -> Result<(), ExecutionError> {
        if nomination_tax > 100 {
            return Err(ExecutionError::NominationTax(nomination_tax));
        }
        if amount < self.params.min_operator_stake {
            return Err(ExecutionError::StakeTooLow {
                amount,
                minimum: self.params.min_operator_stake,
            });
        }
        if self.operators.contains_key(&id) {
            return Err(ExecutionError::OperatorExists(id.0));
        }
        self.operators.insert(
            id,
            Operator {
                owner,
                signing_key,
                nomination_tax,
                minimum_nominator_stake: minimum_nominator_stake.max(self.params.min_nominator_stake),
                status: OperatorStatus::Registered,
                total_stake: 0,
                total_shares: 0,
                storage_fund: 0,
                storage_deposits: 0,
                epoch_rewards: 0,
                pending_deposits: 0,
                nominators: BTreeMap::new(),
            },
        );
        self.deposit(id, owner, amount)
    }

    /// `who` deposits `amount` with operator `id` (the caller takes it from `who`): the storage part
    /// goes to the fund now, the rest becomes shares at the end of the epoch. A new holder deposits at
    /// least the operator's minimum.
    pub fn nominate(&mut self, id: OperatorId, who: Address, amount: Balance) -> Result<(), ExecutionError> {
        let operator = self.registered_mut(id)?;
        let is_new = operator
            .nominators
            .get(&who)
            .is_none_or(|nominator| nominator.shares == 0 && nominator.pending_deposit == 0);
        if is_new && amount < operator.minimum_nominator_stake {
            return Err(ExecutionError::StakeTooLow {
                amount,
                minimum: operator.minimum_nominator_stake,
            });
        }
        self.deposit(id, who, amount)
    }

    fn deposit(&mut self, id: OperatorId, who: Address, amount: Balance) -> Result<(), ExecutionError> {
        let percent = Balance::from(self.params.storage_fund_percent);
        let operator = self.registered_mut(id)?;
        let storage = amount / 100 * percent + amount % 100 * percent / 100;
        let staked = amount - storage;
        let nominator = operator.nominators.entry(who).or_default();
        nominator.storage_deposit += storage;
        nominator.pending_deposit += staked;
        operator.storage_fund += storage;
        operator.storage_deposits += storage;
        operator.pending_deposits += staked;
        Ok(())
    }

    /// `who` asks to withdraw `shares` from operator `id` at the end of the epoch. The owner keeps at
    /// least the minimum operator stake while the operator is registered.
    pub fn withdraw(&mut self, id: OperatorId, who: Address, shares: u128) -> Result<(), ExecutionError> {
        let min_operator_stake = self.params.min_operator_stake;
        let operator = self.registered_mut(id)?;
        let (total_stake, total_shares, owner) =
            (operator.total_stake, operator.total_shares, operator.owner);
        let nominator = operator
            .nominators
            .get_mut(&who)
            .ok_or(ExecutionError::NotANominator(id.0))?;
        let free = nominator.shares - nominator.withdrawing;
        if shares == 0 || shares > free {
            return Err(ExecutionError::InsufficientShares {
                held: free,
                asked: shares,
            });
        }
        if who == owner {
            let left = mul_div(free - shares, total_stake, total_shares).unwrap_or(0);
            if left < min_operator_stake {
                return Err(ExecutionError::StakeTooLow {
                    amount: left,
                    minimum: min_operator_stake,
                });
            }
        }
        nominator.withdrawing += shares;
        Ok(())
    }

    /// Rewards operator `id`'s pool with `amount` (minted by the caller's accounting): paid out at the
    /// end of the epoch.
    pub fn reward(&mut self, id: OperatorId, amount: Balance) -> Result<(), ExecutionError> {
        let operator = self.registered_mut(id)?;
        operator.epoch_rewards = operator
            .epoch_rewards
            .checked_add(amount)
            .ok_or(ExecutionError::StakeOverflow)?;
        Ok(())
    }

    /// Ends the epoch at domain block `head`: each registered pool takes its rewards (the tax to the
    /// owner as a deposit, the rest into the stake), snapshots its share price, and converts the epoch's
    /// withdrawals and deposits at that price.
    pub fn end_epoch(&mut self, head: DomainBlockNumber) -> Result<(), ExecutionError> {
        let ids: Vec<OperatorId> = self
            .operators
            .iter()
            .filter(|(_, operator)| operator.status == OperatorStatus::Registered)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.settle(id, head)?;
        }
        self.epoch = EpochIndex(self.epoch.0 + 1);
        Ok(())
    }

    /// Settles one pool at the end of an epoch (see [`Staking::end_epoch`]).
    fn settle(&mut self, id: OperatorId, head: DomainBlockNumber) -> Result<(), ExecutionError> {
        let (epoch, unlock_delay) = (self.epoch, self.params.unlock_delay);
        let operator = self.operator_mut(id)?;
        let rewards = std::mem::take(&mut operator.epoch_rewards);
        let tax = mul_div(rewards, Balance::from(operator.nomination_tax), 100).unwrap_or(0);
        operator.total_stake += rewards - tax;
        let owner = operator.owner;
        if tax > 0 {
            self.deposit(id, owner, tax)?;
        }
        let operator = self.operator_mut(id)?;
        let price = SharePrice {
            stake: operator.total_stake,
            shares: operator.total_shares,
        };
        let mut paid = Vec::new();
        for (who, nominator) in &mut operator.nominators {
            if nominator.withdrawing > 0 {
                let shares = std::mem::take(&mut nominator.withdrawing);
                let stake =
                    mul_div(shares, price.stake, price.shares).ok_or(ExecutionError::StakeOverflow)?;
                let storage = mul_div(nominator.storage_deposit, shares, nominator.shares)
                    .ok_or(ExecutionError::StakeOverflow)?;
                let refund = mul_div(operator.storage_fund, storage, operator.storage_deposits).unwrap_or(0);
                nominator.shares -= shares;
                nominator.storage_deposit -= storage;
                operator.total_shares -= shares;
                operator.total_stake -= stake;
                operator.storage_deposits -= storage;
                operator.storage_fund -= refund;
                paid.push((*who, stake + refund));
            }
            if nominator.pending_deposit > 0 {
                let amount = std::mem::take(&mut nominator.pending_deposit);
                let shares = if price.shares == 0 || price.stake == 0 {
                    amount
                } else {
                    mul_div(amount, price.shares, price.stake).ok_or(ExecutionError::StakeOverflow)?
                };
                nominator.shares += shares;
                operator.total_shares += shares;
                operator.total_stake += amount;
                operator.pending_deposits -= amount;
            }
        }
        operator
            .nominators
            .retain(|_, nominator| *nominator != Nominator::default());
        self.share_prices.insert((id, epoch), price);
        let unlock_at = DomainBlockNumber(head.0.saturating_add(unlock_delay));
        for (who, amount) in paid {
            self.withdrawals
                .entry((id, who))
                .or_default()
                .push(Withdrawal { amount, unlock_at });
        }
        Ok(())
    }

    /// Pays `who` its withdrawals from operator `id` that unlocked by domain block `head` (the caller
    /// credits it); after deregistration, everything it held in the pool once that unlocks.
    pub fn unlock(
        &mut self,
        id: OperatorId,
        who: Address,
        head: DomainBlockNumber,
    ) -> Result<Balance, ExecutionError> {
        let mut paid = 0;
        if let Some(waiting) = self.withdrawals.get_mut(&(id, who)) {
            waiting.retain(|withdrawal| {
                let due = withdrawal.unlock_at <= head;
                if due {
                    paid += withdrawal.amount;
                }
                !due
            });
            if waiting.is_empty() {
                self.withdrawals.remove(&(id, who));
            }
        }
        let operator = self.operator_mut(id)?;
        if let OperatorStatus::Deregistered { unlock_at } = operator.status
            && unlock_at <= head
            && let Some(nominator) = operator.nominators.remove(&who)
        {
            let stake = mul_div(nominator.shares, operator.total_stake, operator.total_shares).unwrap_or(0);
            let refund = mul_div(
                operator.storage_fund,
                nominator.storage_deposit,
                operator.storage_deposits,
            )
            .unwrap_or(0);
            operator.total_shares -= nominator.shares;
            operator.total_stake -= stake;
            operator.storage_deposits -= nominator.storage_deposit;
            operator.storage_fund -= refund;
            operator.pending_deposits -= nominator.pending_deposit;
            paid += stake + refund + nominator.pending_deposit;
        }
        Ok(paid)
    }

    /// Deregisters operator `id` at domain block `head`: the epoch's rewards and conversions settle now,
    /// and every holder's funds unlock after the delay.
    pub fn deregister(&mut self, id: OperatorId, head: DomainBlockNumber) -> Result<(), ExecutionError> {
        self.registered_mut(id)?;
        self.settle(id, head)?;
        let unlock_at = DomainBlockNumber(head.0.saturating_add(self.params.unlock_delay));
        self.operator_mut(id)?.status = OperatorStatus::Deregistered { unlock_at };
        Ok(())
    }

    /// Slashes operator `id`: its whole pool (stake, storage fund, the epoch's deposits and rewards) is
    /// burned; returns how much. Withdrawals that already left the pool are not touched.
    pub fn slash(&mut self, id: OperatorId) -> Result<Balance, ExecutionError> {
        let operator = self.operator_mut(id)?;
        if operator.status == OperatorStatus::Slashed {
            return Ok(0);
        }
        let burned =
            operator.total_stake + operator.storage_fund + operator.pending_deposits + operator.epoch_rewards;
        operator.status = OperatorStatus::Slashed;
        operator.total_stake = 0;
        operator.total_shares = 0;
        operator.storage_fund = 0;
        operator.storage_deposits = 0;
        operator.pending_deposits = 0;
        operator.epoch_rewards = 0;
        operator.nominators.clear();
        Ok(burned)
    }

    /// Takes a bundle's storage fee of `amount` from operator `id`'s storage fund (the caller credits the
    /// block author).
    pub fn charge_storage_fee(&mut self, id: OperatorId, amount: Balance) -> Result<(), ExecutionError> {
        let operator = self.operator_mut(id)?;
        operator.storage_fund =
            operator
                .storage_fund
                .checked_sub(amount)
                .ok_or(ExecutionError::StorageFeeUnpayable {
                    fee: amount,
                    fund: operator.storage_fund,
                })?;
        Ok(())
    }

    /// Everything the pools and the unlock queue hold: what callers paid in plus rewards, less what was
    /// paid out and burned.
    pub fn held(&self) -> Balance {
        let pools: Balance = self
            .operators
            .values()
            .map(|operator| {
                operator.total_stake
                    + operator.storage_fund
                    + operator.pending_deposits
                    + operator.epoch_rewards
            })
            .sum();
        let waiting: Balance = self
            .withdrawals
            .values()
            .flatten()
            .map(|withdrawal| withdrawal.amount)
            .sum();
        pools + waiting
    }

    /// The stake each registered operator is elected with this epoch (its pool's stake; deposits and
    /// withdrawals count from the end of the epoch).
    pub fn election_stakes(&self) -> BTreeMap<OperatorId, Balance> {
        self.operators
            .iter()
            .filter(|(_, operator)| operator.status == OperatorStatus::Registered && operator.total_stake > 0)
            .map(|(id, operator)| (*id, operator.total_stake))
            .collect()
    }
}
