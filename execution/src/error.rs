//! The crate's error type.

use acre_consensus::DecodeError;
use acre_consensus::hashing::Blake3Hash;
use thiserror::Error;

use crate::transaction::Address;

/// Why a transaction cannot be applied. A block containing one is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExecutionError {
    /// The transaction's bytes are malformed.
    #[error("malformed transaction: {0}")]
    Malformed(#[from] DecodeError),
    /// The transaction's format version is not one this runtime knows.
    #[error("unsupported transaction version {version}")]
    UnsupportedVersion {
        /// The version found.
        version: u8,
    },
    /// The transaction was signed for another chain.
    #[error("transaction is for the chain with genesis {got}, this chain's genesis is {expected}")]
    WrongChain {
        /// What the rule requires.
        expected: Blake3Hash,
        /// What was found.
        got: Blake3Hash,
    },
    /// The fee is below `min_fee + byte_fee × size`.
    #[error("fee {fee} is below the minimum of {minimum}")]
    FeeTooLow {
        /// The fee offered.
        fee: u128,
        /// The least allowed.
        minimum: u128,
    },
    /// The sender is not a valid ed25519 public key.
    #[error("sender {0} is not a valid ed25519 public key")]
    InvalidSender(Address),
    /// The signature does not verify (strictly) against the sender.
    #[error("bad signature from {0}")]
    BadSignature(Address),
    /// The nonce is not the sender's next nonce (a replay or a double spend).
    #[error("sender {sender}: nonce {got}, expected {expected}")]
    BadNonce {
        /// The sender's address.
        sender: Address,
        /// What the rule requires.
        expected: u64,
        /// What was found.
        got: u64,
    },
    /// The sender has used every nonce.
    #[error("sender {0} has no nonce left")]
    NonceExhausted(Address),
    /// The sender cannot pay the amount plus the fee.
    #[error("sender {sender} has {balance}, needs {needed}")]
    InsufficientBalance {
        /// The sender's address.
        sender: Address,
        /// The account's balance.
        balance: u128,
        /// What the transaction needs.
        needed: u128,
    },
    /// The transfer would create an account with less than the existential deposit.
    #[error("transfer of {amount} would create account {recipient} below the existential deposit {deposit}")]
    BelowExistentialDeposit {
        /// The recipient's address.
        recipient: Address,
        /// The amount.
        amount: u128,
        /// The existential deposit.
        deposit: u128,
    },
    /// A balance would overflow.
    #[error("balance of {0} would overflow")]
    Overflow(Address),
    /// No operator has this id.
    #[error("no operator {0}")]
    UnknownOperator(u64),
    /// The operator is deregistered or slashed: it takes no deposits, withdrawals or rewards.
    #[error("operator {0} is not registered")]
    OperatorNotRegistered(u64),
    /// A nomination tax over 100 percent.
    #[error("a nomination tax of {0} % is over 100 %")]
    NominationTax(u8),
    /// A stake below the minimum (an operator's, a new nominator's, or what an owner would keep).
    #[error("a stake of {amount} is below the minimum of {minimum}")]
    StakeTooLow {
        /// The stake.
        amount: u128,
        /// The least allowed.
        minimum: u128,
    },
    /// The account holds nothing with this operator.
    #[error("not a nominator of operator {0}")]
    NotANominator(u64),
    /// A withdrawal of more shares than are held and not already being withdrawn (or of none).
    #[error("cannot withdraw {asked} shares of the {held} free")]
    InsufficientShares {
        /// Shares held and not being withdrawn.
        held: u128,
        /// Shares asked for.
        asked: u128,
    },
    /// A pool's amount would overflow.
    #[error("a staking amount would overflow")]
    StakeOverflow,
    /// An operator id already taken.
    #[error("operator {0} already exists")]
    OperatorExists(u64),

    // Domains: the registry and operators.
    /// A block's bundle failed its checks (the inner error says which).
    #[error("bundle {index}: {source}")]
    InvalidBundle {
        /// Its index in the block's bundles.
        index: usize,
        /// Why.
        source: Box<ExecutionError>,
    },
    /// A domain call on a chain whose state has no domain registry.
    #[error("this chain has no domains")]
    NoDomains,
    /// The module cannot be instantiated by this runtime yet.
    #[error("the {0} module is not available on this chain")]
    ModuleUnavailable(&'static str),
    /// No domain has this id.
    #[error("no domain {0}")]
    UnknownDomain(u32),
    /// A domain name that is empty or too long.
    #[error("a domain name of {len} bytes (1 to {max} allowed)")]
    DomainName {
        /// Its length.
        len: usize,
        /// The most allowed.
        max: usize,
    },
    /// A bundle slot probability that is zero or above one.
    #[error("bundle slot probability {numerator}/{denominator} is not in (0, 1]")]
    SlotProbability {
        /// n.
        numerator: u64,
        /// d.
        denominator: u64,
    },
    /// Too many initial balances.
    #[error("{count} initial balances (at most {max})")]
    TooManyInitialBalances {
        /// How many.
        count: usize,
        /// The most allowed.
        max: usize,
    },
    /// An EVM domain without a chain id.
    #[error("an EVM domain needs a chain id")]
    MissingChainId,
    /// A domain account of an impossible length.
    #[error("a domain account of {len} bytes")]
    DomainAccount {
        /// Its length.
        len: usize,
    },
    /// Bundle limits above the block's.
    #[error("bundle limits (size {size}, weight {weight}) exceed the domain block's")]
    BundleLimits {
        /// The size limit.
        size: u32,
        /// The weight limit.
        weight: u64,
    },
    /// The domain's allow list does not name this owner.
    #[error("{0} may not operate on this domain")]
    NotAllowedToOperate(Address),
    /// Nothing has unlocked for this holder yet.
    #[error("nothing to unlock from operator {0} yet")]
    NothingToUnlock(u64),
    /// Only an operator's owner may deregister it.
    #[error("only the owner of operator {0} may do this")]
    NotOperatorOwner(u64),
    /// Not a valid sr25519 public key.
    #[error("not a valid sr25519 operator key")]
    InvalidOperatorKey,

    // Bundles, in the order consensus checks them (DOMAINS.md 5).
    /// A bundle format this chain does not know.
    #[error("unsupported bundle version {version}")]
    UnsupportedBundleVersion {
        /// The version found.
        version: u8,
    },
    /// More transactions than any bundle may hold.
    #[error("a bundle of {count} transactions (at most {max})")]
    BundleTooManyTransactions {
        /// How many.
        count: usize,
        /// The most allowed.
        max: usize,
    },
    /// The operator does not stake on the bundle's domain.
    #[error("operator {operator} is not an operator of domain {domain}")]
    OperatorNotOnDomain {
        /// The operator.
        operator: u64,
        /// The domain.
        domain: u32,
    },
    /// The domain is more than one block ahead of its receipts and the bundle carries transactions.
    #[error("receipts are {gap} domain blocks behind: only receipt-only bundles are accepted")]
    ReceiptGap {
        /// Domain blocks without receipts.
        gap: u64,
    },
    /// The operator's storage fund cannot pay the bundle's storage fee.
    #[error("storage fee {fee} exceeds the operator's storage fund of {fund}")]
    StorageFeeUnpayable {
        /// The fee.
        fee: u128,
        /// The fund.
        fund: u128,
    },
    /// The domain is frozen.
    #[error("domain {0} is frozen")]
    DomainFrozen(u32),
    /// The header's size is not the body's.
    #[error("bundle declares {declared} bytes, its body has {actual}")]
    BundleSizeMismatch {
        /// Declared.
        declared: u32,
        /// Actual.
        actual: u32,
    },
    /// The body is over the domain's bundle size limit.
    #[error("bundle body of {size} bytes (at most {max})")]
    BundleTooLarge {
        /// Its size.
        size: u32,
        /// The limit.
        max: u32,
    },
    /// The declared weight is over the domain's bundle weight limit.
    #[error("bundle weight {weight} (at most {max})")]
    BundleTooHeavy {
        /// Its weight.
        weight: u64,
        /// The limit.
        max: u64,
    },
    /// The header's extrinsics root is not the body's.
    #[error("the bundle's extrinsics root does not match its body")]
    ExtrinsicsRootMismatch,
    /// The operator has no election stake this epoch (new, deregistered or slashed).
    #[error("operator {0} is not electable this epoch")]
    OperatorNotElectable(u64),
    /// The operator's signature over the bundle header does not verify.
    #[error("bad bundle signature")]
    BadBundleSignature,
    /// A second bundle of one operator for one slot in a block.
    #[error("operator {operator} equivocated: two bundles for slot {slot}")]
    BundleEquivocation {
        /// The operator.
        operator: u64,
        /// The slot.
        slot: u64,
    },
    /// A slot not after the operator's newest bundle slot in an earlier block.
    #[error("bundle slot {slot} is not after the operator's last bundle slot {last}")]
    BundleSlotReused {
        /// The bundle's slot.
        slot: u64,
        /// The operator's last.
        last: u64,
    },
    /// A slot beyond the authoring delay past the block's.
    #[error("bundle slot {slot} is in the future of block slot {block_slot}")]
    BundleFromFuture {
        /// The bundle's slot.
        slot: u64,
        /// The block's slot.
        block_slot: u64,
    },
    /// A slot older than the bundle longevity allows.
    #[error("bundle slot {slot} is older than {oldest}")]
    BundleTooOld {
        /// The bundle's slot.
        slot: u64,
        /// The oldest allowed.
        oldest: u64,
    },
    /// The header's PoT output is not the chain's for that slot.
    #[error("the bundle's PoT output is not the chain's for slot {slot}")]
    BundlePot {
        /// The slot.
        slot: u64,
    },
    /// The VRF proof does not verify.
    #[error("bad bundle election VRF")]
    BadVrf,
    /// The VRF output is not below the operator's threshold.
    #[error("operator {0} was not elected in the bundle's slot")]
    BundleThreshold(u64),

    // Receipts (DOMAINS.md 7).
    /// A receipt beyond the head's successor.
    #[error("receipt {number} is in the future")]
    ReceiptInFuture {
        /// Its domain number.
        number: u64,
    },
    /// A receipt at or below the confirmed one.
    #[error("receipt {number} is already pruned")]
    ReceiptPruned {
        /// Its domain number.
        number: u64,
    },
    /// An unknown receipt at a known number (a fork: a fraud proof must come first).
    #[error("receipt {number} starts a new branch")]
    ReceiptNewBranch {
        /// Its domain number.
        number: u64,
    },
    /// A known receipt below the head.
    #[error("receipt {number} is stale")]
    ReceiptStale {
        /// Its domain number.
        number: u64,
    },
    /// A second, different new head receipt in one block.
    #[error("receipt {number} conflicts with another new head in this block")]
    ReceiptConflictsInBlock {
        /// Its domain number.
        number: u64,
    },
    /// The receipt names a consensus block that is not this branch's.
    #[error("receipt {number} names a consensus block not on this chain")]
    ReceiptConsensusHash {
        /// Its domain number.
        number: u64,
    },
    /// The receipt's bundles are not the execution inbox's.
    #[error("receipt {number}'s bundles do not match the execution inbox")]
    ReceiptInbox {
        /// Its domain number.
        number: u64,
    },
    /// The receipt's parent is not in the block tree.
    #[error("receipt {number}'s parent is unknown")]
    ReceiptUnknownParent {
        /// Its domain number.
        number: u64,
    },
    /// The trace root is not the trace's Merkle root.
    #[error("the receipt's trace root is not its trace's")]
    ReceiptTraceRoot,
    /// The final state root is not the trace's last entry.
    #[error("the receipt's final state root is not its trace's last entry")]
    ReceiptFinalStateRoot,

    // Domain transactions and module execution.
    /// A domain transaction for another domain.
    #[error("the transaction is for another domain")]
    WrongDomainChain,
    /// A domain transaction's signature does not verify.
    #[error("bad domain transaction signature")]
    BadDomainSignature,
    /// A domain transaction's nonce is not the sender's next.
    #[error("domain transaction nonce {got}, expected {expected}")]
    DomainNonce {
        /// What the rule requires.
        expected: u64,
        /// What was found.
        got: u64,
    },
    /// A domain transaction's sender cannot pay for it.
    #[error("the sender cannot pay for the domain transaction")]
    DomainFunds,
    /// A step's witness does not cover a key the step touches.
    #[error("the witness does not cover a key the step touches")]
    WitnessIncomplete,
    /// A witness value does not match its leaf (or does not decode).
    #[error("a witness value does not match the witness")]
    WitnessValue,

    // The EVM module (`domains::evm`).
    /// An EVM transaction larger than the module accepts (checked before decoding).
    #[error("EVM transaction of {size} bytes exceeds the limit of {max}")]
    EvmTransactionTooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// An EVM transaction's bytes are not a canonical EIP-2718 envelope.
    #[error("undecodable EVM transaction: {reason}")]
    EvmTransactionDecode {
        /// What the decoder reported.
        reason: String,
    },
    /// An EVM transaction of a type the module does not execute (blob and set-code transactions).
    #[error("unsupported EVM transaction type {ty}")]
    EvmUnsupportedTransactionType {
        /// The EIP-2718 type byte.
        ty: u8,
    },
    /// An EVM transaction's signature recovers no signer (malformed or high-s signature).
    #[error("bad EVM transaction signature")]
    EvmBadSignature,
    /// A legacy EVM transaction without an EIP-155 chain id (replayable on every chain).
    #[error("EVM transaction without a chain id")]
    EvmMissingChainId,
    /// An EVM transaction for another chain id.
    #[error("EVM transaction for chain id {got}, this domain's is {expected}")]
    EvmWrongChainId {
        /// The domain's chain id.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// An EVM transaction's nonce is not the sender's next.
    #[error("EVM transaction nonce {got}, expected {expected}")]
    EvmNonce {
        /// The sender's next nonce.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    #[cfg(feature = "evm")]
    /// The sender cannot pay `gas_limit × max_fee + value`.
    #[error("EVM sender has {balance}, the transaction may cost {needed}")]
    EvmInsufficientFunds {
        /// The sender's balance (after the earlier transactions of the sequence).
        balance: alloy_primitives::U256,
        /// The transaction's maximum cost.
        needed: alloy_primitives::U256,
    },
    /// An EVM transaction's gas limit above the block gas limit.
    #[error("EVM transaction gas limit {gas_limit} exceeds the block gas limit {block_gas_limit}")]
    EvmGasLimitAboveBlock {
        /// The transaction's gas limit.
        gas_limit: u64,
        /// The module's block gas limit.
        block_gas_limit: u64,
    },
    /// An EVM transaction's maximum fee per gas below the base fee.
    #[error("EVM transaction max fee per gas {max_fee} is below the base fee {base_fee}")]
    EvmFeeBelowBaseFee {
        /// The transaction's maximum fee per gas.
        max_fee: u128,
        /// The module's base fee.
        base_fee: u128,
    },
    /// An EIP-1559 transaction whose priority fee exceeds its maximum fee.
    #[error("EVM transaction priority fee {priority_fee} exceeds its max fee {max_fee}")]
    EvmPriorityFeeAboveMaxFee {
        /// The maximum priority fee per gas.
        priority_fee: u128,
        /// The maximum fee per gas.
        max_fee: u128,
    },
    /// `gas_limit × max_fee + value` does not fit in 256 bits.
    #[error("EVM transaction cost overflows")]
    EvmCostOverflow,
    /// The module's base fee does not fit revm's 64-bit block base fee.
    #[error("EVM base fee {base_fee} does not fit in 64 bits")]
    EvmBaseFeeTooLarge {
        /// The configured base fee.
        base_fee: u128,
    },
    /// An EVM state entry of the wrong kind under a key (a corrupt state).
    #[error("corrupt EVM state entry")]
    EvmStateCorrupt,
    /// revm failed for a reason that is not the transaction's (a bug or a corrupt state).
    #[error("EVM execution failed: {reason}")]
    EvmInternal {
        /// What revm reported.
        reason: String,
    },
    /// A read-only call or gas estimate that revm rejects before executing it.
    #[error("invalid EVM call: {reason}")]
    EvmInvalidCall {
        /// What revm reported.
        reason: String,
    },
}
