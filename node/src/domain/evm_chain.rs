//! An EVM domain's chain, in memory: its blocks (header, execution receipt, transactions, Ethereum
//! receipts), an index of transactions by hash, the states of the newest blocks, and the pending pool.
//!
//! Data flow: a raw transaction arrives through [`EvmChain::submit`] (the Ethereum JSON-RPC's
//! `eth_sendRawTransaction`) and waits in the pool; an elected operator takes [`EvmChain::pending`] into a
//! bundle; when a consensus block carries bundles of the domain, [`EvmChain::derive`] derives the next
//! domain block from them (a pure function of the head, as every domain node derives it) and
//! [`EvmChain::push`] makes it the head, which drops the included transactions from the pool. A consensus
//! reorg reverts the domain chain with [`EvmChain::revert_to`].
//!
//! Memory: every block keeps its header, receipts and transactions; only the newest [`STATE_HISTORY`]
//! blocks keep their state (states share structure, but each block's changed paths add up). Queries at
//! an older block fail with [`NodeError::DomainStatePruned`], and so would a reorg deeper than that.

mod pool;

use std::collections::{BTreeSet, HashMap};

use alloy_primitives::{Address, B256, U256};

use acre_consensus::BlockNumber;
use acre_consensus::hashing::Blake3Hash;
use acre_execution::ExecutionError;
use acre_execution::domains::DomainBlockNumber;
use acre_execution::domains::derive::{
    ConsensusFacts, DomainHeader, INITIAL_TX_RANGE, InboxBundle, order_block, seal_block,
};
use acre_execution::domains::evm::{EvmModule, EvmReceipt, EvmState, EvmTransaction};
use acre_execution::domains::module::{BlockContext, ExecutionModule};
use acre_execution::domains::receipt::ExecutionReceipt;

use crate::error::NodeError;

pub use pool::{MAX_POOL_TRANSACTIONS, MAX_SENDER_TRANSACTIONS, REPLACEMENT_PERCENT};

/// How many of the newest blocks keep their state.
pub const STATE_HISTORY: u64 = 256;

/// A block of an EVM domain, with what the Ethereum JSON-RPC serves about it.
#[derive(Debug, Clone)]
pub struct EvmBlock {
    /// The domain header.
    pub header: DomainHeader,
    /// The execution receipt an honest operator submits for it.
    pub receipt: ExecutionReceipt,
    /// The consensus block that defined it.
    pub consensus_number: u64,
    /// That consensus block's timestamp (milliseconds since the Unix epoch).
    pub timestamp_ms: u64,
    /// Its transactions' raw EIP-2718 bytes, in execution order.
    pub transactions: Vec<Vec<u8>>,
    /// Their Ethereum hashes (keccak-256 of the raw bytes).
    pub hashes: Vec<B256>,
    /// Their signers.
    pub senders: Vec<Address>,
    /// Their Ethereum receipts.
    pub receipts: Vec<EvmReceipt>,
    /// Gas the block used.
    pub gas_used: u64,
    /// The state after the block; `None` once the block is more than [`STATE_HISTORY`] below the head.
    pub state: Option<EvmState>,
}

impl EvmBlock {
    /// The block number.
    pub fn number(&self) -> u64 {
        self.header.number.0
    }

    /// The block's Ethereum-facing hash: the domain header's hash bytes.
    pub fn hash(&self) -> B256 {
        B256::from(self.header.hash().0)
    }

    /// The parent's Ethereum-facing hash (zero for genesis).
    pub fn parent_hash(&self) -> B256 {
        B256::from(self.header.parent_hash.0)
    }

    /// The context an `eth_call` "at" this block runs in: its own number, timestamp and parent.
    pub fn call_context(&self) -> BlockContext {
        BlockContext {
            number: self.header.number,
            parent_hash: self.header.parent_hash,
            timestamp_ms: self.timestamp_ms,
            consensus_byte_fee: 0,
        }
    }
}

/// The head of an [`EvmChain`] as derivation needs it ([`EvmChain::derive_base`]).
#[derive(Debug, Clone)]
pub struct DeriveBase {
    module: EvmModule,
    header: DomainHeader,
    receipt_hash: Blake3Hash,
    state: EvmState,
}

impl DeriveBase {
    /// Derives the block the consensus block described by `consensus` defines over this head, from its
    /// inboxed `bundles` (DOMAINS.md 6, transaction range [`INITIAL_TX_RANGE`]). The transactions execute
    /// once, with receipts ([`EvmModule::execute_block_with_receipts`]); header and receipt are what
    /// [`derive_block`](acre_execution::domains::derive::derive_block) gives.
    pub fn derive(
        &self,
        consensus: &ConsensusFacts,
        bundles: &[InboxBundle<'_>],
    ) -> Result<EvmBlock, NodeError> {
        let parent = &self.state;
        let ordered = order_block(
            &self.module,
            parent,
            &self.header,
            consensus,
            bundles,
            INITIAL_TX_RANGE,
        );
        let output = self
            .module
            .execute_block_with_receipts(parent, &ordered.context, &ordered.transactions)
            .map_err(NodeError::DomainExecution)?;
        let hashes = ordered.transactions.iter().map(EvmTransaction::hash).collect();
        let senders = ordered.transactions.iter().map(EvmTransaction::signer).collect();
        let derived = seal_block(
            &self.module,
            ordered,
            output.execution,
            self.receipt_hash,
            consensus,
        );
        Ok(EvmBlock {
            header: derived.header,
            receipt: derived.receipt,
            consensus_number: consensus.number.0,
            timestamp_ms: consensus.timestamp_ms,
            transactions: derived.transactions,
            hashes,
            senders,
            receipts: output.receipts,
            gas_used: output.gas_used,
            state: Some(derived.execution.state),
        })
    }
}

/// An EVM domain's chain and pending pool (see the module docs).
#[derive(Debug)]
pub struct EvmChain {
    module: EvmModule,
    /// Every block, by number.
    blocks: Vec<EvmBlock>,
    by_hash: HashMap<B256, u64>,
    /// Included transactions: block number and index.
    transactions: HashMap<B256, (u64, usize)>,
    pool: pool::Pool,
}

impl EvmChain {
    /// A chain holding the genesis block of a domain whose genesis accounts are `balances` (20-byte
    /// addresses, wei), with the genesis receipt of a domain created in consensus block 0 with a zero hash.
    pub fn genesis(module: EvmModule, balances: &[(Vec<u8>, u128)]) -> Result<Self, NodeError> {
        Self::genesis_created_at(module, balances, BlockNumber(0), Blake3Hash::ZERO)
    }

    /// [`Self::genesis`] for a domain instantiated in consensus block `created_at` (hash
    /// `created_hash`): the genesis receipt is then the one the consensus registry holds
    /// (`ExecutionReceipt::genesis`), so the first block's parent receipt hash matches the block tree.
    pub fn genesis_created_at(
        module: EvmModule,
        balances: &[(Vec<u8>, u128)],
        created_at: BlockNumber,
        created_hash: Blake3Hash,
    ) -> Result<Self, NodeError> {
        let state = module.genesis(balances).map_err(NodeError::DomainExecution)?;
        let root = module.state_root(&state);
        let genesis = EvmBlock {
            header: DomainHeader::genesis(root),
            receipt: ExecutionReceipt::genesis(root, created_at, created_hash),
            consensus_number: created_at.0,
            timestamp_ms: 0,
            transactions: Vec::new(),
            hashes: Vec::new(),
            senders: Vec::new(),
            receipts: Vec::new(),
            gas_used: 0,
            state: Some(state),
        };
        Ok(Self {
            module,
            by_hash: HashMap::from([(genesis.hash(), 0)]),
            blocks: vec![genesis],
            transactions: HashMap::new(),
            pool: pool::Pool::default(),
        })
    }

    /// The domain's module (chain id, gas limit, base fee).
    pub fn module(&self) -> &EvmModule {
        &self.module
    }

    /// The head block.
    pub fn head(&self) -> &EvmBlock {
        self.blocks
            .last()
            .expect("the chain always holds its genesis block")
    }

    /// The block numbered `number`.
    pub fn block(&self, number: u64) -> Option<&EvmBlock> {
        self.blocks.get(usize::try_from(number).ok()?)
    }

    /// The block whose Ethereum-facing hash is `eth_hash`.
    pub fn block_by_hash(&self, eth_hash: &B256) -> Option<&EvmBlock> {
        self.by_hash.get(eth_hash).and_then(|number| self.block(*number))
    }

    /// The included transaction with Ethereum hash `hash`: its block and index.
    pub fn transaction(&self, hash: &B256) -> Option<(&EvmBlock, usize)> {
        let (number, index) = self.transactions.get(hash)?;
        Some((self.block(*number)?, *index))
    }

    /// The pending transaction with Ethereum hash `hash`: its sender and raw bytes.
    pub fn pending_transaction(&self, hash: &B256) -> Option<(Address, &[u8])> {
        self.pool
            .get(hash)
            .map(|(sender, _, pending)| (sender, pending.raw.as_slice()))
    }

    /// How many transactions are pending.
    pub fn pending_count(&self) -> usize {
        self.pool.len()
    }

    /// The state after block `number`: an error if the block is unknown or its state pruned.
    pub fn state_at(&self, number: u64) -> Result<&EvmState, NodeError> {
        let oldest = self.oldest_state();
        self.block(number)
            .and_then(|block| block.state.as_ref())
            .ok_or(NodeError::DomainStatePruned { number, oldest })
    }

    /// The oldest block whose state is kept.
    pub fn oldest_state(&self) -> u64 {
        self.head().number().saturating_sub(STATE_HISTORY - 1)
    }

    fn head_state(&self) -> Result<&EvmState, NodeError> {
        self.state_at(self.head().number())
    }

    /// The next nonce of `address` counting its pending transactions that follow on from the head state.
    pub fn pending_nonce(&self, address: &Address) -> Result<u64, NodeError> {
        let mut nonce = self.module.nonce(self.head_state()?, address);
        if let Some(queue) = self.pool.of(address) {
            for queued in queue.range(nonce..).map(|(nonce, _)| *nonce) {
                if queued != nonce {
                    break;
                }
                nonce += 1;
            }
        }
        Ok(nonce)
    }

    /// Derives the block the consensus block described by `consensus` defines over the head, from its
    /// inboxed `bundles` (DOMAINS.md 6, transaction range [`INITIAL_TX_RANGE`]). Pure: the chain does not
    /// change. See [`DeriveBase::derive`].
    pub fn derive(
        &self,
        consensus: &ConsensusFacts,
        bundles: &[InboxBundle<'_>],
    ) -> Result<EvmBlock, NodeError> {
        self.derive_base()?.derive(consensus, bundles)
    }

    /// What deriving the next block needs of the chain, taken out (cheap: the state is persistent) so
    /// that derivation runs without holding a lock on the chain.
    pub fn derive_base(&self) -> Result<DeriveBase, NodeError> {
        let head = self.head();
        Ok(DeriveBase {
            module: self.module.clone(),
            header: head.header.clone(),
            receipt_hash: head.receipt.hash(),
            state: self.head_state()?.clone(),
        })
    }

    /// Makes `block` (from [`Self::derive`]) the head: it must be numbered one above the head and name it
    /// as parent, and carry its state. Indexes its transactions, drops the pool's transactions its
    /// senders' new nonces make stale (those it included among them), and the state of the block
    /// [`STATE_HISTORY`] below it.
    pub fn push(&mut self, block: EvmBlock) -> Result<(), NodeError> {
        let head = self.head();
        if block.number() != head.number() + 1 || block.header.parent_hash != head.header.hash() {
            return Err(NodeError::DomainNotNext {
                head_number: head.number(),
                head: head.header.hash(),
                number: block.number(),
                parent: block.header.parent_hash,
            });
        }
        let Some(state) = &block.state else {
            return Err(NodeError::DomainStatePruned {
                number: block.number(),
                oldest: self.oldest_state(),
            });
        };
        let number = block.number();
        for (index, hash) in block.hashes.iter().enumerate() {
            self.transactions.insert(*hash, (number, index));
        }
        let senders: BTreeSet<Address> = block.senders.iter().copied().collect();
        for sender in senders {
            let next = self.module.nonce(state, &sender);
            self.pool.remove_below(&sender, next);
        }
        self.by_hash.insert(block.hash(), number);
        self.blocks.push(block);
        if let Some(pruned) = number.checked_sub(STATE_HISTORY)
            && let Some(old) = usize::try_from(pruned)
                .ok()
                .and_then(|at| self.blocks.get_mut(at))
        {
            old.state = None;
        }
        Ok(())
    }

    /// Drops the blocks above `number` (a consensus reorg) with their index entries; their transactions
    /// return to the pool where the new head's state still admits them. Nothing happens if `number` is at
    /// or above the head. A revert below the oldest kept state leaves a head without state: deriving and
    /// submitting then fail with [`NodeError::DomainStatePruned`] (consensus reorgs are far shallower).
    pub fn revert_to(&mut self, number: u64) {
        let Some(keep) = number.checked_add(1).and_then(|keep| usize::try_from(keep).ok()) else {
            return;
        };
        if keep >= self.blocks.len() {
            return;
        }
        let removed = self.blocks.split_off(keep);
        for block in &removed {
            self.by_hash.remove(&block.hash());
            for hash in &block.hashes {
                self.transactions.remove(hash);
            }
        }
        for raw in removed.into_iter().flat_map(|block| block.transactions) {
            // Best effort: a transaction the reverted head no longer admits is simply dropped.
            let _ = self.submit(raw);
        }
    }

    /// Admits a raw EIP-2718 transaction into the pool and returns its Ethereum hash. Refused: bytes that
    /// do not decode, another chain id, a bad signature, a gas limit above the block's, a fee below the
    /// base fee (or a priority fee above the maximum), a sender who cannot pay its maximum cost in the
    /// head state, a nonce below the sender's next, an already known transaction, and what the pool's
    /// bounds refuse (nonce too far ahead, underpriced replacement, sender or pool full).
    pub fn submit(&mut self, raw: Vec<u8>) -> Result<B256, NodeError> {
        let transaction =
            EvmTransaction::decode(&raw, self.module.chain_id).map_err(NodeError::EvmTransactionRefused)?;
        self.submit_decoded(&transaction)
    }

    /// [`Self::submit`] for a transaction already decoded with this chain's id (so a caller can recover
    /// the signer, the costly part, without holding a lock on the chain).
    pub fn submit_decoded(&mut self, transaction: &EvmTransaction) -> Result<B256, NodeError> {
        // The module's gas, fee and funds rules against the head state; nonces beyond the next one are
        // for the pool to hold.
        let state = self.head_state()?;
        let sender = transaction.signer();
        let next = self.module.nonce(state, &sender);
        if transaction.nonce() < next {
            return Err(NodeError::EvmNonceTooLow {
                next,
                got: transaction.nonce(),
            });
        }
        if self.transactions.contains_key(&transaction.hash()) {
            return Err(NodeError::EvmAlreadyKnown(transaction.hash()));
        }
        self.check_rules(state, transaction)?;
        let max_cost = transaction.max_cost().map_err(NodeError::EvmTransactionRefused)?;
        let pending = pool::Pending::new(transaction, max_cost);
        self.pool.insert(sender, transaction.nonce(), next, pending)
    }

    /// The gas and fee rules, and funds for this transaction alone, as the module checks them.
    fn check_rules(&self, state: &EvmState, transaction: &EvmTransaction) -> Result<(), NodeError> {
        let module = &self.module;
        if transaction.gas_limit() > module.block_gas_limit {
            return Err(NodeError::EvmTransactionRefused(
                ExecutionError::EvmGasLimitAboveBlock {
                    gas_limit: transaction.gas_limit(),
                    block_gas_limit: module.block_gas_limit,
                },
            ));
        }
        let max_fee = transaction.max_fee_per_gas();
        if max_fee < module.base_fee {
            return Err(NodeError::EvmTransactionRefused(
                ExecutionError::EvmFeeBelowBaseFee {
                    max_fee,
                    base_fee: module.base_fee,
                },
            ));
        }
        if let Some(priority_fee) = transaction.max_priority_fee_per_gas()
            && priority_fee > max_fee
        {
            return Err(NodeError::EvmTransactionRefused(
                ExecutionError::EvmPriorityFeeAboveMaxFee {
                    priority_fee,
                    max_fee,
                },
            ));
        }
        let needed = transaction.max_cost().map_err(NodeError::EvmTransactionRefused)?;
        let balance = module.balance_of(state, &transaction.signer());
        if balance < needed {
            return Err(NodeError::EvmTransactionRefused(
                ExecutionError::EvmInsufficientFunds { balance, needed },
            ));
        }
        Ok(())
    }

    /// Pending transactions a bundle over the head can carry, at most `max_bytes` in total and at most
    /// the block gas limit in gas: [`Self::pending_where`] for every sender.
    pub fn pending(&self, max_bytes: usize) -> Vec<Vec<u8>> {
        self.pending_where(max_bytes, self.module.block_gas_limit, |_| true)
    }

    /// Pending transactions of the senders `include` accepts (given the 20-byte address, the module's
    /// signer encoding, e.g. to keep a bundle's transaction range), senders in address order, each
    /// sender's in nonce order from its next nonce in the head state without a gap, and only while the
    /// sender can pay each one's maximum cost after the earlier ones: what the module's pre-dispatch check
    /// over the head state accepts. Stops a sender's run at the first that would exceed `max_bytes` or
    /// `max_gas` in total. Empty if the head's state is pruned.
    pub fn pending_where(
        &self,
        max_bytes: usize,
        max_gas: u64,
        include: impl Fn(&[u8]) -> bool,
    ) -> Vec<Vec<u8>> {
        let Ok(state) = self.head_state() else {
            return Vec::new();
        };
        let (mut out, mut bytes, mut gas) = (Vec::new(), 0usize, 0u64);
        for (sender, queue) in self.pool.senders() {
            if !include(sender.as_slice()) {
                continue;
            }
            let next = self.module.nonce(state, sender);
            let mut balance: U256 = self.module.balance_of(state, sender);
            for (expected, (queued, pending)) in (next..).zip(queue.range(next..)) {
                let fits = *queued == expected
                    && bytes.saturating_add(pending.raw.len()) <= max_bytes
                    && gas.saturating_add(pending.gas_limit) <= max_gas;
                let Some(left) = balance.checked_sub(pending.max_cost).filter(|_| fits) else {
                    break;
                };
                out.push(pending.raw.clone());
                bytes += pending.raw.len();
                gas += pending.gas_limit;
                balance = left;
            }
        }
        out
    }

    /// The number of the block after the head.
    pub fn next_number(&self) -> DomainBlockNumber {
        DomainBlockNumber(self.head().number() + 1)
    }
}
