//! The daemon's farms: opened (or created) once for the chain the node serves, then shared between the
//! plotting loop (which writes sectors) and the farming loop (which audits them).
//!
//! Each farm sits behind its own lock: audits hold it for reading, and the plotter takes it for writing
//! only for [`Farm::write_sector`]; plotting itself happens outside the lock.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use acre_consensus::ProtocolParams;
use acre_consensus::hashing::Blake3Hash;
use acre_consensus::sectors::PublicKey;

use crate::error::Error;
use crate::plot_file::{Farm, FarmHeader, params_id};
use crate::sector::SectorLayout;

/// Name of the plot file inside a farm directory.
pub const PLOT_FILE: &str = "farm.plot";

/// The share of a new farm kept for the piece cache by default, in percent (spec 9).
pub const DEFAULT_CACHE_PERCENTAGE: u8 = 1;

/// The most of a farm the piece cache may take, in percent.
pub const MAX_CACHE_PERCENTAGE: u8 = 50;

/// Bytes of a `size`-byte farm set aside for the piece cache at `cache_percentage` percent.
pub fn cache_bytes(size: u64, cache_percentage: u8) -> u64 {
    (u128::from(size) * u128::from(cache_percentage.min(MAX_CACHE_PERCENTAGE)) / 100) as u64
}

/// Sectors of `pieces_per_sector` pieces that fit in a `size`-byte farm besides its piece cache (at most
/// `u16::MAX`).
pub fn sector_count(params: &ProtocolParams, size: u64, cache_percentage: u8) -> u16 {
    let sector_size = sector_size(params);
    let plots = size - cache_bytes(size, cache_percentage);
    u16::try_from(plots / sector_size.max(1)).unwrap_or(u16::MAX)
}

/// Pieces the cache of a `size`-byte farm with `sectors` sectors may hold: its share at
/// `cache_percentage`, but never more than the space the sectors leave (a farm created before the cache
/// existed was sized without one).
pub fn cache_capacity(params: &ProtocolParams, size: u64, sectors: u16, cache_percentage: u8) -> usize {
    let left = size.saturating_sub(u64::from(sectors) * sector_size(params));
    let bytes = cache_bytes(size, cache_percentage).min(left);
    usize::try_from(bytes / crate::daemon::cache::file_size(params.piece_size())).unwrap_or(usize::MAX)
}

/// Bytes of one full sector.
pub fn sector_size(params: &ProtocolParams) -> u64 {
    SectorLayout::new(params, params.max_pieces_per_sector).sector_size() as u64
}

/// One open farm.
#[derive(Debug)]
pub struct SharedFarm {
    dir: PathBuf,
    farm: RwLock<Farm>,
    /// Times the farm was taken for writing (what serves pieces from plots knows its index is stale).
    writes: std::sync::atomic::AtomicU64,
    /// Why the farm was disabled (its disk failed), if it was.
    disabled: Mutex<Option<String>>,
}

impl SharedFarm {
    /// The farm's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The farm, for reading (auditing, proving).
    pub fn read(&self) -> RwLockReadGuard<'_, Farm> {
        // A panic while holding the lock cannot leave a `Farm` half-updated in memory: its sector table
        // is only changed after the disk writes succeed.
        self.farm.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Why the farm is disabled, if it is.
    pub fn disabled(&self) -> Option<String> {
        self.disabled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Disables the farm (no more audits or plotting until the farmer restarts); `false` if it already was.
    pub fn disable(&self, reason: String) -> bool {
        let mut disabled = self.disabled.lock().unwrap_or_else(PoisonError::into_inner);
        if disabled.is_some() {
            return false;
        }
        tracing::error!(target: "acre::farm", farm = %self.dir.display(), %reason, "farm disabled; the other farms keep farming");
        *disabled = Some(reason);
        true
    }

    /// The farm, for writing a sector.
    pub fn write(&self) -> RwLockWriteGuard<'_, Farm> {
        self.writes.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.farm.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// All farms of one farmer on one chain.
#[derive(Debug)]
pub struct Farms {
    /// The chain's parameters.
    pub params: ProtocolParams,
    /// The farmer's public key.
    pub public_key: PublicKey,
    /// Its hash, which sectors are bound to.
    pub public_key_hash: Blake3Hash,
    /// The farms, in configuration order.
    pub farms: Vec<SharedFarm>,
}

impl Farms {
    /// Opens each `(dir, size)` farm, creating its plot file for this chain if absent; refuses a farm
    /// plotted for another genesis, parameter set or key.
    pub fn open(
        params: &ProtocolParams,
        genesis_hash: Blake3Hash,
        public_key: PublicKey,
        specs: &[(PathBuf, u64)],
        cache_percentage: u8,
    ) -> Result<Self, Error> {
        let public_key_hash = public_key.hash();
        let farms = specs
            .iter()
            .map(|(dir, size)| {
                let farm = open_one(
                    params,
                    genesis_hash,
                    public_key_hash,
                    dir,
                    *size,
                    cache_percentage,
                )?;
                Ok(SharedFarm {
                    dir: dir.clone(),
                    farm: RwLock::new(farm),
                    writes: std::sync::atomic::AtomicU64::new(0),
                    disabled: Mutex::new(None),
                })
            })
            .collect::<Result<_, Error>>()?;
        Ok(Self {
            params: params.clone(),
            public_key,
            public_key_hash,
            farms,
        })
    }

    /// A number that changes whenever any farm may have changed (a sector written or freed).
    pub fn generation(&self) -> u64 {
        self.farms
            .iter()
            .map(|farm| farm.writes.load(std::sync::atomic::Ordering::Acquire))
            .sum()
    }
}

/// How long opening a farm waits for another writer to let go of it (a farmer restarting, whose last
/// blocking tasks still hold its farms for a moment).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn lock_farm(farm: &Farm) -> Result<(), Error> {
    let started = std::time::Instant::now();
    loop {
        match farm.lock_exclusive() {
            Err(Error::FarmInUse { .. }) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

fn open_one(
    params: &ProtocolParams,
    genesis_hash: Blake3Hash,
    public_key_hash: Blake3Hash,
    dir: &Path,
    size: u64,
    cache_percentage: u8,
) -> Result<Farm, Error> {
    std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    let path = dir.join(PLOT_FILE);
    let existing = if path.exists() {
        match Farm::open(&path, params) {
            Err(Error::UnfinishedFarm { path }) => {
                tracing::warn!(target: "acre::farm", path = %path.display(), "the farm's creation was interrupted; creating it again");
                std::fs::remove_file(&path).map_err(Error::io(format!("removing {}", path.display())))?;
                None
            }
            other => Some(other),
        }
    } else {
        None
    };
    let farm = if let Some(opened) = existing {
        opened.map_err(|error| match error {
            Error::InvalidFarm { path, reason } if reason.contains("parameter set") => Error::FarmMismatch {
                path,
                what: "protocol parameter set",
            },
            other => other,
        })?
    } else {
        let sectors = sector_count(params, size, cache_percentage);
        if sectors == 0 {
            return Err(Error::FarmTooSmall {
                path: dir.to_owned(),
                size,
                sector_size: sector_size(params),
            });
        }
        let header = FarmHeader {
            params_id: params_id(params),
            public_key_hash,
            genesis_hash,
            sector_count: sectors,
            pieces_per_sector: params.max_pieces_per_sector,
        };
        Farm::create(&path, params, header)?
    };
    lock_farm(&farm)?;
    let header = farm.header();
    if header.genesis_hash != genesis_hash {
        return Err(Error::FarmMismatch {
            path,
            what: "chain (genesis hash)",
        });
    }
    if header.public_key_hash != public_key_hash {
        return Err(Error::FarmMismatch {
            path,
            what: "farmer key",
        });
    }
    Ok(farm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn farms_for_another_chain_or_key_are_refused() {
        let params = ProtocolParams::dev();
        let dir = tempfile::tempdir().expect("temp dir");
        let specs = [(dir.path().join("farm"), 3 * sector_size(&params))];
        let (genesis, key) = (Blake3Hash([1; 32]), PublicKey([2; 32]));
        let farms = Farms::open(&params, genesis, key, &specs, 0).expect("created");
        assert_eq!(farms.farms[0].read().header().sector_count, 3);
        drop(farms);
        Farms::open(&params, genesis, key, &specs, 0).expect("reopened");
        let refused = |result: Result<Farms, Error>| match result {
            Err(Error::FarmMismatch { what, .. }) => what,
            other => panic!("expected a mismatch, got {other:?}"),
        };
        assert_eq!(
            refused(Farms::open(&params, Blake3Hash([9; 32]), key, &specs, 0)),
            "chain (genesis hash)"
        );
        assert_eq!(
            refused(Farms::open(&params, genesis, PublicKey([9; 32]), &specs, 0)),
            "farmer key"
        );
        assert_eq!(
            refused(Farms::open(&ProtocolParams::mainnet(), genesis, key, &specs, 0)),
            "protocol parameter set"
        );
        let small = [(dir.path().join("small"), 100)];
        assert!(matches!(
            Farms::open(&params, genesis, key, &small, 0),
            Err(Error::FarmTooSmall { .. })
        ));
    }

    #[test]
    fn the_cache_share_comes_out_of_new_farms_and_never_out_of_sectors() {
        let params = ProtocolParams::dev();
        let sector = sector_size(&params);
        let size = 100 * sector;
        assert_eq!(sector_count(&params, size, 0), 100);
        assert_eq!(sector_count(&params, size, 1), 99);
        assert_eq!(sector_count(&params, size, 10), 90);
        let piece_file = crate::daemon::cache::file_size(params.piece_size());
        assert_eq!(
            cache_capacity(&params, size, 99, 1),
            (size / 100 / piece_file) as usize
        );
        // A farm plotted full before the cache existed has no room for one.
        assert_eq!(cache_capacity(&params, size, 100, 1), 0);
        // The share is capped.
        assert_eq!(sector_count(&params, size, 90), 50);
    }
}
