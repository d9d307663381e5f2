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
use acre_execution::domains::bundle::Bundle;

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
        let hash = bundle.hash();
        {
            let inner = self.lock();
            if inner.hashes.contains(&hash) {
                return Err(BundlePoolError::AlreadyPending(hash));
            }
            if inner.bundles.len() >= MAX_BUNDLES || inner.bytes + bytes.len() > MAX_BUNDLE_BYTES {
                return Err(BundlePoolError::Full {
                    capacity: MAX_BUNDLES,
                });
            }
        }
        // The signature check runs outside the lock.
        check(&bundle).map_err(BundlePoolError::Refused)?;
        let mut inner = self.lock();
        if !inner.hashes.insert(hash) {
            return Err(BundlePoolError::AlreadyPending(hash));
        }
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
