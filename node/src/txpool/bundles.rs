//! The bundle pool: signed bundles waiting for the next block this node authors.
//!
//! Admission is cheap and stateless apart from one lookup: the bundle decodes within its bounds, its
//! operator exists on its domain in the best registry, and the operator's signature verifies. The full
//! checks (election, slot window, receipt) need the block being built, so block proposal runs them and
//! leaves out the bundles that fail; those that can never pass are dropped then. Bounded by count and
//! bytes; when full, new bundles are refused (the oldest are the likeliest to be included soon).

use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use acre_consensus::hashing::Blake3Hash;
use acre_execution::ExecutionError;
use acre_execution::domains::bundle::{self, Bundle};

use crate::error::BundlePoolError;

/// Most bundles held.
pub const MAX_BUNDLES: usize = 256;

/// Most bytes of encoded bundles held.
pub const MAX_BUNDLE_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, Default)]
struct Inner {
    bundles: VecDeque<(Blake3Hash, Bundle, usize)>,
    hashes: HashSet<Blake3Hash>,
    bytes: usize,
}

impl Inner {
    /// Whether a bundle with `hash` and encoded size `len` may enter.
    fn admits(&self, hash: &Blake3Hash, len: usize) -> Result<(), BundlePoolError> {
        if self.hashes.contains(hash) {
            return Err(BundlePoolError::AlreadyPending(*hash));
        }
        if self.bundles.len() >= MAX_BUNDLES || self.bytes + len > MAX_BUNDLE_BYTES {
            return Err(BundlePoolError::Full {
                capacity: MAX_BUNDLES,
            });
        }
        Ok(())
    }
}

/// Bundles waiting for inclusion, in arrival order.
#[derive(Debug, Default)]
pub struct BundlePool {
    inner: Mutex<Inner>,
}

impl BundlePool {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits the encoded bundle `bytes` if it decodes and `check` (the signature against the best
    /// registry) accepts it; returns its hash.
    pub fn submit(
        &self,
        bytes: &[u8],
        check: impl FnOnce(&Bundle) -> Result<(), ExecutionError>,
    ) -> Result<Blake3Hash, BundlePoolError> {
        let bundle = Bundle::decode(bytes).map_err(BundlePoolError::Undecodable)?;
        let hash = bundle::encoded_hash(bytes);
        self.lock().admits(&hash, bytes.len())?;
        // The signature check runs outside the lock; the room is checked again after it, as other
        // submissions may have filled the pool meanwhile.
        check(&bundle).map_err(BundlePoolError::Refused)?;
        let mut inner = self.lock();
        inner.admits(&hash, bytes.len())?;
        inner.hashes.insert(hash);
        inner.bytes += bytes.len();
        inner.bundles.push_back((hash, bundle, bytes.len()));
        Ok(hash)
    }

    /// The pending bundles, oldest first.
    pub fn candidates(&self) -> Vec<Bundle> {
        self.lock()
            .bundles
            .iter()
            .map(|(_, bundle, _)| bundle.clone())
            .collect()
    }

    /// Drops the bundles whose hashes are in `hashes` (included in a block, or never includable).
    pub fn remove(&self, hashes: &HashSet<Blake3Hash>) {
        if hashes.is_empty() {
            return;
        }
        let mut inner = self.lock();
        let Inner {
            bundles,
            hashes: held,
            bytes,
        } = &mut *inner;
        bundles.retain(|(hash, _, len)| {
            let keep = !hashes.contains(hash);
            if !keep {
                held.remove(hash);
                *bytes -= len;
            }
            keep
        });
    }

    /// How many bundles are pending.
    pub fn len(&self) -> usize {
        self.lock().bundles.len()
    }

    /// Whether none is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use acre_consensus::{BlockNumber, SlotNumber};
    use acre_execution::domains::bundle::BundleHeader;
    use acre_execution::domains::election::VrfProof;
    use acre_execution::domains::receipt::ExecutionReceipt;
    use acre_execution::domains::{DomainId, OperatorId};

    use super::*;

    fn bundle(slot: u64) -> Bundle {
        Bundle {
            header: BundleHeader {
                version: Bundle::VERSION,
                domain_id: DomainId(0),
                operator_id: OperatorId(0),
                slot: SlotNumber(slot),
                pot_output: Default::default(),
                vrf: VrfProof {
                    output: [0; 32],
                    proof: [0; 64],
                },
                receipt: ExecutionReceipt::genesis(Blake3Hash::ZERO, BlockNumber(0), Blake3Hash::ZERO),
                extrinsics_root: bundle::extrinsics_root::<Vec<u8>>(&[]),
                size: 0,
                weight: 0,
            },
            signature: [0; 64],
            body: Vec::new(),
        }
    }

    #[test]
    fn hostile_bytes_duplicates_refusals_and_a_full_pool_are_refused_with_their_reason() {
        let pool = BundlePool::default();
        let accept = |_: &Bundle| Ok(());
        assert!(matches!(
            pool.submit(&[1, 2, 3], accept),
            Err(BundlePoolError::Undecodable(_))
        ));
        let mut oversized = bundle(1).encode();
        oversized.resize(acre_execution::domains::bundle::MAX_BUNDLE_ENCODED_SIZE + 1, 0);
        assert!(matches!(
            pool.submit(&oversized, accept),
            Err(BundlePoolError::Undecodable(_))
        ));
        assert!(matches!(
            pool.submit(&bundle(1).encode(), |_| Err(ExecutionError::BadBundleSignature)),
            Err(BundlePoolError::Refused(ExecutionError::BadBundleSignature))
        ));
        assert!(pool.is_empty(), "nothing refused is kept");

        let first = pool.submit(&bundle(1).encode(), accept).expect("admitted");
        assert_eq!(first, bundle(1).hash());
        assert!(matches!(
            pool.submit(&bundle(1).encode(), accept),
            Err(BundlePoolError::AlreadyPending(hash)) if hash == first
        ));
        for slot in 2..=MAX_BUNDLES as u64 {
            pool.submit(&bundle(slot).encode(), accept).expect("room");
        }
        assert!(matches!(
            pool.submit(&bundle(0).encode(), accept),
            Err(BundlePoolError::Full {
                capacity: MAX_BUNDLES
            })
        ));
        pool.remove(&HashSet::from([first]));
        assert_eq!(pool.len(), MAX_BUNDLES - 1);
        assert_eq!(
            pool.candidates().first().map(|bundle| bundle.header.slot),
            Some(SlotNumber(2))
        );
    }
}
