//! Domain block derivation (DOMAINS.md 6): the one domain block a consensus block's bundles define.
//!
//! Every domain node derives it the same way, and fraud-proof verification re-runs parts of it, so this is
//! a pure function of the parent domain state and header, the consensus block's facts and its bundles:
//! 1. each bundle is judged against the parent state: the first offending transaction and the first rule
//!    it breaks (undecodable, out of the bundle's transaction range, failing the module's pre-dispatch
//!    check over the bundle's prefix in sequence), else a declared weight that is not the exact sum;
//! 2. valid bundles' transactions are concatenated, exact duplicates dropped (the first wins);
//! 3. the list is shuffled by signer with a seed from the consensus block's PoT output, keeping each
//!    signer's own order (so nonces stay in sequence and no operator chooses the order);
//! 4. the module executes the block with its trace; the header and the receipt follow.
//!
//! Inherent-only calls and cross-domain messages are not transactions our modules decode, so those two
//! rules of the spec cannot fire yet; they join with cross-domain messaging.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use borsh::{BorshDeserialize, BorshSerialize};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use acre_consensus::hashing::{self, Blake3Hash, HashContext};
use acre_consensus::pot::PotOutput;
use acre_consensus::{BlockNumber, codec, merkle};

use crate::domains::DomainBlockNumber;
use crate::domains::bundle::{Bundle, extrinsics_root, transaction_hash};
use crate::domains::election::election_value;
use crate::domains::module::{BlockContext, BlockExecution, ExecutionModule};
use crate::domains::receipt::{
    BlockFees, BundleValidity, ExecutionReceipt, InboxedBundle, InvalidBundleKind, Transfers, trace_root,
};
use crate::error::ExecutionError;
use crate::staking::Balance;

/// The initial transaction range: a third of the signer space (DOMAINS.md 4).
pub const INITIAL_TX_RANGE: u128 = u128::MAX / 3;

/// A domain block header.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct DomainHeader {
    /// Its number.
    pub number: DomainBlockNumber,
    /// The parent's hash (zero for genesis).
    pub parent_hash: Blake3Hash,
    /// The consensus block that defined it (zero for genesis).
    pub consensus_hash: Blake3Hash,
    /// Merkle root of its transactions' hashes, in execution order.
    pub extrinsics_root: Blake3Hash,
    /// The state root after it.
    pub state_root: Blake3Hash,
}

impl DomainHeader {
    /// `H(domain_block_ctx, encoding)`.
    pub fn hash(&self) -> Blake3Hash {
        hashing::hash(HashContext::DomainBlock, &codec::encode(self))
    }

    /// The genesis header of a domain whose genesis state has `state_root`.
    pub fn genesis(state_root: Blake3Hash) -> Self {
        Self {
            number: DomainBlockNumber(0),
            parent_hash: Blake3Hash::ZERO,
            consensus_hash: Blake3Hash::ZERO,
            extrinsics_root: extrinsics_root::<Vec<u8>>(&[]),
            state_root,
        }
    }
}

/// What derivation needs from the consensus block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsensusFacts {
    /// Its number.
    pub number: BlockNumber,
    /// Its hash.
    pub hash: Blake3Hash,
    /// Its slot's PoT output (the shuffle seed).
    pub pot_output: PotOutput,
    /// Its timestamp in milliseconds.
    pub timestamp_ms: u64,
    /// The consensus byte fee.
    pub byte_fee: Balance,
    /// Storage fees its bundles of this domain paid.
    pub storage_fees: Balance,
}

/// A bundle accepted by consensus, with its verified VRF output (for the transaction range).
#[derive(Debug, Clone, Copy)]
pub struct InboxBundle<'a> {
    /// The bundle.
    pub bundle: &'a Bundle,
    /// Its VRF output.
    pub vrf_output: [u8; 32],
}

/// A derived domain block.
#[derive(Debug, Clone)]
pub struct DerivedBlock<S> {
    /// Its header.
    pub header: DomainHeader,
    /// Its transactions' bytes in execution order.
    pub transactions: Vec<Vec<u8>>,
    /// The execution, with the post state and the trace.
    pub execution: BlockExecution<S>,
    /// The receipt an honest operator submits for it.
    pub receipt: ExecutionReceipt,
}

/// Whether `signer` may go into a bundle with VRF output `vrf_output`: the wrapping distance between
/// the first 16 bytes (LE) of `H(signer_ctx, signer)` and of the VRF output is at most `tx_range / 2`.
pub fn in_tx_range(signer: &[u8], vrf_output: &[u8; 32], tx_range: u128) -> bool {
    let signer = election_value(&hashing::hash(HashContext::DomainSigner, signer).0);
    let vrf = election_value(vrf_output);
    let distance = signer.wrapping_sub(vrf).min(vrf.wrapping_sub(signer));
    distance <= tx_range / 2
}

/// A valid bundle's digest: the Merkle root of `H(tx) ‖ signer` leaves.
fn bundle_digest<T>(transactions: &[Judged<T>]) -> Blake3Hash {
    let leaves: Vec<_> = transactions
        .iter()
        .map(|judged| {
            let mut leaf = transaction_hash(&judged.bytes).0.to_vec();
            leaf.extend(judged.signer.as_deref().unwrap_or_default());
            merkle::leaf(&leaf)
        })
        .collect();
    Blake3Hash(merkle::root(&leaves))
}

/// A transaction of a valid bundle: its bytes, decoded, and its signer.
#[derive(Debug, Clone)]
struct Judged<T> {
    bytes: Vec<u8>,
    transaction: T,
    signer: Option<Vec<u8>>,
}

/// Judges one bundle against `parent` (step 2); on success returns its decoded transactions.
fn judge<M: ExecutionModule>(
    module: &M,
    parent: &M::State,
    inboxed: &InboxBundle<'_>,
    tx_range: u128,
) -> Result<Vec<Judged<M::Transaction>>, (InvalidBundleKind, u32)> {
    let index = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
    let mut decoded = Vec::with_capacity(inboxed.bundle.body.len());
    for (i, bytes) in inboxed.bundle.body.iter().enumerate() {
        let transaction = module
            .decode_transaction(bytes)
            .map_err(|_| (InvalidBundleKind::Undecodable, index(i)))?;
        decoded.push(transaction);
    }
    for (i, transaction) in decoded.iter().enumerate() {
        if let Some(signer) = module.signer(transaction)
            && !in_tx_range(&signer, &inboxed.vrf_output, tx_range)
        {
            return Err((InvalidBundleKind::OutOfRange, index(i)));
        }
    }
    module
        .check_transactions(parent, &decoded)
        .map_err(|(i, _)| (InvalidBundleKind::Illegal, index(i)))?;
    let weight = decoded.iter().try_fold(0u64, |sum, transaction| {
        sum.checked_add(module.weight(transaction))
    });
    if weight != Some(inboxed.bundle.header.weight) {
        return Err((InvalidBundleKind::InvalidWeight, 0));
    }
    Ok(inboxed
        .bundle
        .body
        .iter()
        .cloned()
        .zip(decoded)
        .map(|(bytes, transaction)| Judged {
            signer: module.signer(&transaction),
            bytes,
            transaction,
        })
        .collect())
}

/// The shuffle of step 4: `order[k]` is the signer slot of position `k`. Fisher–Yates from the last
/// position down, `j = next_u64 mod (i + 1)` from `ChaCha8Rng` seeded with `H(shuffle_ctx, PoT output)`.
pub fn shuffled_slots<T: Clone>(slots: &[T], pot_output: &PotOutput) -> Vec<T> {
    let seed = hashing::hash(HashContext::DomainShuffle, &pot_output.0);
    let mut rng = ChaCha8Rng::from_seed(seed.0);
    let mut order = slots.to_vec();
    for i in (1..order.len()).rev() {
        let bound = u64::try_from(i + 1).unwrap_or(u64::MAX);
        let j = usize::try_from(rng.next_u64() % bound).unwrap_or(0);
        order.swap(i, j);
    }
    order
}

/// A domain block's transactions, judged and ordered (steps 1–4) but not yet executed: what a module
/// with a richer executor than [`ExecutionModule::execute_block`] (the EVM's receipts) runs itself
/// before [`seal_block`] gives the header and receipt [`derive_block`] would.
#[derive(Debug, Clone)]
pub struct OrderedBlock<T> {
    /// The inboxed bundles, each valid (with its digest) or why not, in block order.
    pub inboxed: Vec<InboxedBundle>,
    /// The transactions' bytes in execution order.
    pub bytes: Vec<Vec<u8>>,
    /// The decoded transactions in execution order.
    pub transactions: Vec<T>,
    /// The block context they execute in.
    pub context: BlockContext,
}

/// Steps 1–4 of derivation: judges `bundles` against `parent_state`, concatenates the valid ones'
/// transactions without duplicates and shuffles them by signer.
pub fn order_block<M: ExecutionModule>(
    module: &M,
    parent_state: &M::State,
    parent_header: &DomainHeader,
    consensus: &ConsensusFacts,
    bundles: &[InboxBundle<'_>],
    tx_range: u128,
) -> OrderedBlock<M::Transaction> {
    let mut inboxed = Vec::with_capacity(bundles.len());
    let mut seen = BTreeSet::new();
    let mut list: Vec<Judged<M::Transaction>> = Vec::new();
    for bundle in bundles {
        let validity = match judge(module, parent_state, bundle, tx_range) {
            Ok(transactions) => {
                let digest = bundle_digest(&transactions);
                for transaction in transactions {
                    if seen.insert(transaction_hash(&transaction.bytes)) {
                        list.push(transaction);
                    }
                }
                BundleValidity::Valid(digest)
            }
            Err((kind, index)) => BundleValidity::Invalid { kind, index },
        };
        inboxed.push(InboxedBundle {
            validity,
            extrinsics_root: bundle.bundle.header.extrinsics_root,
        });
    }
    // Step 4: one slot per transaction, named by its signer; each slot takes its signer's next.
    let slots: Vec<Option<Vec<u8>>> = list.iter().map(|judged| judged.signer.clone()).collect();
    let mut queues: BTreeMap<Option<Vec<u8>>, VecDeque<Judged<M::Transaction>>> = BTreeMap::new();
    for judged in list {
        queues.entry(judged.signer.clone()).or_default().push_back(judged);
    }
    let mut bytes = Vec::with_capacity(slots.len());
    let mut transactions = Vec::with_capacity(slots.len());
    for slot in shuffled_slots(&slots, &consensus.pot_output) {
        if let Some(judged) = queues.get_mut(&slot).and_then(VecDeque::pop_front) {
            bytes.push(judged.bytes);
            transactions.push(judged.transaction);
        }
    }
    let context = BlockContext {
        number: DomainBlockNumber(parent_header.number.0 + 1),
        parent_hash: parent_header.hash(),
        timestamp_ms: consensus.timestamp_ms,
        consensus_byte_fee: consensus.byte_fee,
    };
    OrderedBlock {
        inboxed,
        bytes,
        transactions,
        context,
    }
}

/// Step 6 and the receipt: the header and receipt of `ordered` executed as `execution`, with parent
/// receipt hash `parent_receipt`.
pub fn seal_block<M: ExecutionModule>(
    module: &M,
    ordered: OrderedBlock<M::Transaction>,
    execution: BlockExecution<M::State>,
    parent_receipt: Blake3Hash,
    consensus: &ConsensusFacts,
) -> DerivedBlock<M::State> {
    let OrderedBlock {
        inboxed,
        bytes,
        context,
        ..
    } = ordered;
    let state_root = execution
        .trace
        .last()
        .copied()
        .unwrap_or_else(|| module.state_root(&execution.state));
    let header = DomainHeader {
        number: context.number,
        parent_hash: context.parent_hash,
        consensus_hash: consensus.hash,
        extrinsics_root: extrinsics_root(&bytes),
        state_root,
    };
    let receipt = ExecutionReceipt {
        domain_number: context.number,
        domain_hash: header.hash(),
        extrinsics_root: header.extrinsics_root,
        parent_receipt,
        consensus_number: consensus.number,
        consensus_hash: consensus.hash,
        bundles: inboxed,
        final_state_root: state_root,
        trace_root: trace_root(&execution.trace),
        trace: execution.trace.clone(),
        fees: BlockFees {
            consensus_storage_fee: consensus.storage_fees,
            execution_fee: execution.execution_fee,
            burned: execution.burned,
        },
        transfers: Transfers::default(),
    };
    DerivedBlock {
        header,
        transactions: bytes,
        execution,
        receipt,
    }
}

/// Derives the domain block defined by a consensus block whose inboxed bundles of this domain are
/// `bundles` (in block order), over the parent block `parent_header` with state `parent_state` and
/// receipt hash `parent_receipt`: [`order_block`], the module's
/// [`execute_block`](ExecutionModule::execute_block), then [`seal_block`].
pub fn derive_block<M: ExecutionModule>(
    module: &M,
    parent_state: &M::State,
    parent_header: &DomainHeader,
    parent_receipt: Blake3Hash,
    consensus: &ConsensusFacts,
    bundles: &[InboxBundle<'_>],
    tx_range: u128,
) -> Result<DerivedBlock<M::State>, ExecutionError> {
    let ordered = order_block(module, parent_state, parent_header, consensus, bundles, tx_range);
    let execution = module.execute_block(parent_state, &ordered.context, &ordered.transactions)?;
    Ok(seal_block(module, ordered, execution, parent_receipt, consensus))
}

#[cfg(test)]
mod tests;
