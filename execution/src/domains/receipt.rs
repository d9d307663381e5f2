//! Execution receipts and the per-domain block tree (DOMAINS.md 7).
//!
//! A receipt is an operator's claim about one domain block: which bundles it took and whether each was
//! valid, the state root after every step (the trace) and the fees and transfers it produced. Consensus
//! does not execute; it keeps, per domain, a tree of the receipts it has seen by domain number, checks
//! only what it can check cheaply (the receipt names a consensus block of this chain, the bundles it
//! inboxed, a trace root that is the trace's Merkle root, a parent it knows) and leaves everything else to
//! fraud proofs. A receipt `challenge_period` numbers below the head is confirmed: final.

use std::collections::{BTreeMap, BTreeSet};

use borsh::{BorshDeserialize, BorshSerialize};

use acre_consensus::codec;
use acre_consensus::hashing::{self, Blake3Hash, HashContext};
use acre_consensus::{BlockNumber, merkle};

use crate::domains::{DomainBlockNumber, OperatorId};
use crate::error::ExecutionError;
use crate::staking::Balance;

/// Why derivation dropped a bundle (DOMAINS.md 6, step 2), in the order the rules are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum InvalidBundleKind {
    /// A transaction does not decode.
    Undecodable,
    /// A signed transaction's signer is outside the bundle's transaction range.
    OutOfRange,
    /// A transaction only inherents may make.
    InherentOnly,
    /// An invalid cross-domain message.
    InvalidCrossDomainMessage,
    /// A transaction fails the module's pre-dispatch check (run over the bundle's prefix in sequence).
    Illegal,
    /// The declared weight is not the exact sum of the transactions' weights.
    InvalidWeight,
}

/// What derivation made of one inboxed bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum BundleValidity {
    /// Valid; the digest is the Merkle root of its transactions' hashes with their signers.
    Valid(Blake3Hash),
    /// Invalid by the first rule its transaction at `index` breaks.
    Invalid {
        /// The rule.
        kind: InvalidBundleKind,
        /// The offending transaction's index in the bundle (0 for the weight rule).
        index: u32,
    },
}

/// A bundle as a receipt records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct InboxedBundle {
    /// Valid or why not.
    pub validity: BundleValidity,
    /// The bundle's extrinsics root, as inboxed on consensus.
    pub extrinsics_root: Blake3Hash,
}

/// A domain block's fees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BlockFees {
    /// Storage fees paid on consensus for the block's bundles.
    pub consensus_storage_fee: Balance,
    /// Execution fees charged by the domain.
    pub execution_fee: Balance,
    /// Balance the domain burned.
    pub burned: Balance,
}

/// Balance that crossed between the domain and consensus in the block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Transfers {
    /// Into the domain.
    pub incoming: Balance,
    /// Out of the domain.
    pub outgoing: Balance,
    /// Refused and refunded.
    pub rejected: Balance,
}

/// An execution receipt (DOMAINS.md 7).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ExecutionReceipt {
    /// The domain block's number.
    pub domain_number: DomainBlockNumber,
    /// The domain block's hash.
    pub domain_hash: Blake3Hash,
    /// The domain block's extrinsics root.
    pub extrinsics_root: Blake3Hash,
    /// The parent block's receipt hash (zero for the genesis receipt).
    pub parent_receipt: Blake3Hash,
    /// The consensus block that defined the domain block.
    pub consensus_number: BlockNumber,
    /// Its hash.
    pub consensus_hash: Blake3Hash,
    /// The bundles the consensus block inboxed for the domain, in order.
    pub bundles: Vec<InboxedBundle>,
    /// The state root after the block (the trace's last entry).
    pub final_state_root: Blake3Hash,
    /// State roots after initialization, each transaction and finalization.
    pub trace: Vec<Blake3Hash>,
    /// Merkle root of the trace.
    pub trace_root: Blake3Hash,
    /// The block's fees.
    pub fees: BlockFees,
    /// The block's transfers.
    pub transfers: Transfers,
}

/// Merkle root of a trace: hashed leaves of the roots.
pub fn trace_root(trace: &[Blake3Hash]) -> Blake3Hash {
    let leaves: Vec<_> = trace.iter().map(|root| merkle::leaf(&root.0)).collect();
    Blake3Hash(merkle::root(&leaves))
}

impl ExecutionReceipt {
    /// `H(receipt_ctx, encoding)`.
    pub fn hash(&self) -> Blake3Hash {
        hashing::hash(HashContext::Receipt, &codec::encode(self))
    }

    /// The unchallengeable genesis receipt of a domain whose genesis state has `state_root`, created in
    /// consensus block `consensus_number` (`consensus_hash`).
    pub fn genesis(
        state_root: Blake3Hash,
        consensus_number: BlockNumber,
        consensus_hash: Blake3Hash,
    ) -> Self {
        let trace = vec![state_root];
        Self {
            domain_number: DomainBlockNumber(0),
            domain_hash: Blake3Hash::ZERO,
            extrinsics_root: Blake3Hash::ZERO,
            parent_receipt: Blake3Hash::ZERO,
            consensus_number,
            consensus_hash,
            bundles: Vec::new(),
            final_state_root: state_root,
            trace_root: trace_root(&trace),
            trace,
            fees: BlockFees::default(),
            transfers: Transfers::default(),
        }
    }

    /// The self-consistency checks that need nothing else: the trace root is the trace's Merkle root and
    /// the final state root is the trace's last entry.
    pub fn check_self(&self) -> Result<(), ExecutionError> {
        if trace_root(&self.trace) != self.trace_root {
            return Err(ExecutionError::ReceiptTraceRoot);
        }
        if self.trace.last() != Some(&self.final_state_root) {
            return Err(ExecutionError::ReceiptFinalStateRoot);
        }
        Ok(())
    }
}

/// Where a receipt stands against the block tree (DOMAINS.md 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptClass {
    /// Beyond the head's successor.
    InFuture,
    /// The head's successor: it extends the tree.
    NewHead,
    /// At or below the confirmed receipt: settled, nothing to do.
    Pruned,
    /// An unknown hash at a known number: a fork of the tree (a fraud proof must remove the other first).
    NewBranch,
    /// The current head, already known: an endorsement by another operator.
    CurrentHead,
    /// A known receipt below the head.
    Stale,
}

/// A receipt in the tree, with the operators that submitted or endorsed it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct TreeNode {
    /// The receipt.
    pub receipt: ExecutionReceipt,
    /// Who submitted or endorsed it.
    pub operators: BTreeSet<OperatorId>,
}

/// A domain's receipts on consensus.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BlockTree {
    /// The newest receipt's domain number.
    pub head_receipt_number: DomainBlockNumber,
    /// The newest confirmed receipt's number and hash.
    pub confirmed: (DomainBlockNumber, Blake3Hash),
    /// Unconfirmed receipts (and the newest confirmed one), by number and hash.
    pub nodes: BTreeMap<DomainBlockNumber, BTreeMap<Blake3Hash, TreeNode>>,
}

impl BlockTree {
    /// A tree holding only the genesis receipt, confirmed.
    pub fn new(genesis: ExecutionReceipt) -> Self {
        let hash = genesis.hash();
        let mut nodes = BTreeMap::new();
        nodes.insert(
            DomainBlockNumber(0),
            BTreeMap::from([(
                hash,
                TreeNode {
                    receipt: genesis,
                    operators: BTreeSet::new(),
                },
            )]),
        );
        Self {
            head_receipt_number: DomainBlockNumber(0),
            confirmed: (DomainBlockNumber(0), hash),
            nodes,
        }
    }

    /// The receipt with `hash` at `number`, if the tree holds it.
    pub fn get(&self, number: DomainBlockNumber, hash: &Blake3Hash) -> Option<&TreeNode> {
        self.nodes.get(&number).and_then(|at| at.get(hash))
    }

    /// The head receipt (the tree always holds one at the head's number).
    pub fn head(&self) -> Option<(&Blake3Hash, &TreeNode)> {
        self.nodes
            .get(&self.head_receipt_number)
            .and_then(|at| at.iter().next())
    }

    /// Classifies `receipt` (with hash `hash`).
    pub fn classify(&self, receipt: &ExecutionReceipt, hash: &Blake3Hash) -> ReceiptClass {
        let number = receipt.domain_number;
        let head = self.head_receipt_number;
        if number.0 > head.0.saturating_add(1) {
            ReceiptClass::InFuture
        } else if number.0 == head.0.saturating_add(1) {
            ReceiptClass::NewHead
        } else if number == head && self.get(number, hash).is_some() {
            // Before pruning: the head is endorsable even while it is also the confirmed receipt (a
            // domain's genesis receipt, before any other).
            ReceiptClass::CurrentHead
        } else if number <= self.confirmed.0 {
            ReceiptClass::Pruned
        } else if self.get(number, hash).is_none() {
            ReceiptClass::NewBranch
        } else {
            ReceiptClass::Stale
        }
    }

    /// Adds a new head receipt submitted by `operator` (classified [`ReceiptClass::NewHead`] and checked
    /// by the caller); returns the receipt confirmed by it, `challenge_period` numbers below, if any,
    /// with its submitters and endorsers.
    pub fn add_head(
        &mut self,
        receipt: ExecutionReceipt,
        operator: OperatorId,
        challenge_period: u64,
    ) -> Option<TreeNode> {
        let number = receipt.domain_number;
        let hash = receipt.hash();
        self.nodes.entry(number).or_default().insert(
            hash,
            TreeNode {
                receipt,
                operators: BTreeSet::from([operator]),
            },
        );
        self.head_receipt_number = number;
        let confirm = DomainBlockNumber(number.0.checked_sub(challenge_period)?);
        if confirm <= self.confirmed.0 {
            return None;
        }
        let (&confirmed_hash, node) = self.nodes.get(&confirm)?.iter().next()?;
        let node = node.clone();
        self.confirmed = (confirm, confirmed_hash);
        // Prune everything below the newly confirmed receipt.
        self.nodes = self.nodes.split_off(&confirm);
        Some(node)
    }

    /// Records that `operator` endorsed the receipt with `hash` at `number`.
    pub fn endorse(&mut self, number: DomainBlockNumber, hash: &Blake3Hash, operator: OperatorId) {
        if let Some(node) = self.nodes.get_mut(&number).and_then(|at| at.get_mut(hash)) {
            node.operators.insert(operator);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(number: u64, parent: Blake3Hash, salt: u8) -> ExecutionReceipt {
        let trace = vec![Blake3Hash([salt; 32]), Blake3Hash([salt.wrapping_add(1); 32])];
        ExecutionReceipt {
            domain_number: DomainBlockNumber(number),
            domain_hash: Blake3Hash([salt; 32]),
            extrinsics_root: Blake3Hash::ZERO,
            parent_receipt: parent,
            consensus_number: BlockNumber(number),
            consensus_hash: Blake3Hash([number as u8; 32]),
            bundles: Vec::new(),
            final_state_root: trace[1],
            trace_root: trace_root(&trace),
            trace,
            fees: BlockFees::default(),
            transfers: Transfers::default(),
        }
    }

    #[test]
    fn receipts_check_their_own_trace() {
        let good = receipt(1, Blake3Hash::ZERO, 3);
        assert_eq!(good.check_self(), Ok(()));
        let mut bad = good.clone();
        bad.trace[0] = Blake3Hash([9; 32]);
        assert_eq!(bad.check_self(), Err(ExecutionError::ReceiptTraceRoot));
        let mut bad = good;
        bad.final_state_root = Blake3Hash([9; 32]);
        assert_eq!(bad.check_self(), Err(ExecutionError::ReceiptFinalStateRoot));
    }

    #[test]
    fn classification_and_confirmation_follow_the_head() {
        let genesis = ExecutionReceipt::genesis(Blake3Hash([1; 32]), BlockNumber(0), Blake3Hash::ZERO);
        let mut tree = BlockTree::new(genesis.clone());
        let mut parent = genesis.hash();
        let challenge_period = 3;
        let mut confirmed = Vec::new();
        for number in 1..=6u64 {
            let next = receipt(number, parent, number as u8);
            let hash = next.hash();
            assert_eq!(tree.classify(&next, &hash), ReceiptClass::NewHead);
            assert_eq!(
                tree.classify(&receipt(number + 1, hash, 0), &Blake3Hash::ZERO),
                ReceiptClass::InFuture
            );
            if let Some(done) = tree.add_head(next.clone(), OperatorId(0), challenge_period) {
                confirmed.push(done.receipt.domain_number.0);
            }
            assert_eq!(tree.classify(&next, &hash), ReceiptClass::CurrentHead);
            tree.endorse(next.domain_number, &hash, OperatorId(1));
            assert_eq!(
                tree.get(next.domain_number, &hash)
                    .map(|node| node.operators.len()),
                Some(2)
            );
            parent = hash;
        }
        assert_eq!(confirmed, vec![1, 2, 3]);
        assert_eq!(tree.confirmed.0, DomainBlockNumber(3));
        // Numbers 0..=2 were pruned; 3 is the confirmed one kept as a parent.
        assert_eq!(tree.nodes.keys().next(), Some(&DomainBlockNumber(3)));
        let old = receipt(2, Blake3Hash::ZERO, 2);
        assert_eq!(tree.classify(&old, &old.hash()), ReceiptClass::Pruned);
        let at_five = tree.nodes[&DomainBlockNumber(5)]
            .values()
            .next()
            .map(|node| node.receipt.clone());
        let at_five = at_five.expect("kept");
        assert_eq!(tree.classify(&at_five, &at_five.hash()), ReceiptClass::Stale);
        let fork = receipt(5, Blake3Hash::ZERO, 77);
        assert_eq!(tree.classify(&fork, &fork.hash()), ReceiptClass::NewBranch);
    }
}
