//! The farmer's piece cache: a share of each farm (default 1 %) holding the archived pieces whose DSN keys
//! are nearest the farmer's peer key (spec 9).
//!
//! Because every farmer keeps the pieces nearest its own key, a piece is found by asking the peers nearest
//! its key, with no announcements. The cache's contents are a pure function of the history size and the
//! farmer's key ([`Wanted`]): as history grows, nearer pieces displace the farthest ones.
//!
//! On disk each cached piece is one file, `cache/<index>.piece` in a farm, holding the piece's bytes and
//! their BLAKE3 hash. Files are written to a temporary name, synced, renamed and the directory synced, so a
//! crash leaves a whole piece or none; the hash catches bytes changed on disk since, and such a piece is
//! dropped (and fetched again) instead of being served to a peer, who would ban us for it.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use acre_consensus::PieceIndex;
use acre_consensus::hashing::Blake3Hash;

use crate::error::Error;

/// The cache directory inside a farm.
pub const CACHE_DIR: &str = "cache";

/// Bytes a cached piece of `piece_size` bytes takes on disk (the piece and its checksum).
pub fn file_size(piece_size: usize) -> u64 {
    piece_size as u64 + 32
}

/// The XOR distance of a piece's DSN key from the farmer's key, comparable as a 256-bit integer.
pub fn piece_distance(own_key: &Blake3Hash, index: PieceIndex) -> [u8; 32] {
    let key = acre_network::dsn::piece_key(index);
    std::array::from_fn(|byte| own_key.0[byte] ^ key.0[byte])
}

/// The `capacity` pieces of the history nearest a key, kept current as the history grows.
#[derive(Debug, Clone)]
pub struct Wanted {
    own_key: Blake3Hash,
    capacity: usize,
    /// Nearest first.
    nearest: BTreeSet<([u8; 32], PieceIndex)>,
    /// Pieces of history considered so far (indices `0..considered`).
    considered: u64,
}

impl Wanted {
    /// An empty set for `own_key` holding at most `capacity` pieces.
    pub fn new(own_key: Blake3Hash, capacity: usize) -> Self {
        Self {
            own_key,
            capacity,
            nearest: BTreeSet::new(),
            considered: 0,
        }
    }

    /// Takes pieces up to (not including) `history_pieces` into account: each new piece enters if it is
    /// nearer than the farthest held, which then leaves.
    pub fn grow_to(&mut self, history_pieces: u64) {
        if self.capacity == 0 {
            self.considered = self.considered.max(history_pieces);
            return;
        }
        for index in self.considered..history_pieces {
            let entry = (
                piece_distance(&self.own_key, PieceIndex(index)),
                PieceIndex(index),
            );
            if self.nearest.len() < self.capacity {
                self.nearest.insert(entry);
            } else if self.nearest.last().is_some_and(|farthest| entry < *farthest) {
                self.nearest.pop_last();
                self.nearest.insert(entry);
            }
        }
        self.considered = self.considered.max(history_pieces);
    }

    /// Whether `index` is among the nearest.
    pub fn contains(&self, index: PieceIndex) -> bool {
        self.nearest
            .contains(&(piece_distance(&self.own_key, index), index))
    }

    /// The wanted pieces, nearest first.
    pub fn iter(&self) -> impl Iterator<Item = PieceIndex> + '_ {
        self.nearest.iter().map(|(_, index)| *index)
    }

    /// How many pieces are wanted.
    pub fn len(&self) -> usize {
        self.nearest.len()
    }

    /// Whether no piece is wanted.
    pub fn is_empty(&self) -> bool {
        self.nearest.is_empty()
    }
}

/// One farm's share of the cache.
#[derive(Debug, Clone)]
pub struct CacheDir {
    /// `cache/` in the farm.
    pub dir: PathBuf,
    /// Pieces it may hold.
    pub capacity: usize,
}

#[derive(Debug, Default)]
struct Stored {
    /// Which cache directory holds each piece.
    pieces: HashMap<PieceIndex, usize>,
    /// Pieces held per directory.
    used: Vec<usize>,
}

/// The cache over all of a farmer's farms.
#[derive(Debug)]
pub struct PieceCache {
    dirs: Vec<CacheDir>,
    stored: Mutex<Stored>,
}

fn file_name(index: PieceIndex) -> String {
    format!("{}.piece", index.0)
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl PieceCache {
    /// Opens the cache directories (creating them), finding the pieces already held and deleting what an
    /// interrupted write left behind. Pieces beyond a directory's capacity are kept until the next
    /// [`PieceCache::plan`] evicts them.
    pub fn open(dirs: Vec<CacheDir>) -> Result<Self, Error> {
        let mut stored = Stored {
            pieces: HashMap::new(),
            used: vec![0; dirs.len()],
        };
        for (slot, cache) in dirs.iter().enumerate() {
            std::fs::create_dir_all(&cache.dir)
                .map_err(Error::io(format!("creating {}", cache.dir.display())))?;
            let entries = std::fs::read_dir(&cache.dir)
                .map_err(Error::io(format!("listing {}", cache.dir.display())))?;
            for entry in entries {
                let entry = entry.map_err(Error::io(format!("listing {}", cache.dir.display())))?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let index = name
                    .strip_suffix(".piece")
                    .and_then(|digits| digits.parse::<u64>().ok())
                    .filter(|index| name == file_name(PieceIndex(*index)));
                match index {
                    Some(index) if !stored.pieces.contains_key(&PieceIndex(index)) => {
                        stored.pieces.insert(PieceIndex(index), slot);
                        stored.used[slot] += 1;
                    }
                    // A duplicate in another farm, or an interrupted write: not ours to keep.
                    _ if name.ends_with(".piece") || name.ends_with(".tmp") => {
                        let _ = std::fs::remove_file(entry.path());
                    }
                    _ => {}
                }
            }
        }
        Ok(Self {
            dirs,
            stored: Mutex::new(stored),
        })
    }

    fn stored(&self) -> std::sync::MutexGuard<'_, Stored> {
        self.stored.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Pieces the cache may hold over all farms.
    pub fn capacity(&self) -> usize {
        self.dirs.iter().map(|dir| dir.capacity).sum()
    }

    /// Pieces it holds.
    pub fn len(&self) -> usize {
        self.stored().pieces.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether piece `index` is held (its file may still turn out missing or damaged when read).
    pub fn contains(&self, index: PieceIndex) -> bool {
        self.stored().pieces.contains_key(&index)
    }

    /// The bytes of piece `index`, if held and intact. A file that is gone or whose checksum fails is
    /// forgotten (and deleted), so the next [`PieceCache::plan`] fetches the piece again. Blocking I/O.
    pub fn get(&self, index: PieceIndex) -> Option<Vec<u8>> {
        let slot = *self.stored().pieces.get(&index)?;
        let path = self.dirs[slot].dir.join(file_name(index));
        let intact = std::fs::read(&path).ok().and_then(|mut bytes| {
            let split = bytes.len().checked_sub(32)?;
            let checksum = bytes.split_off(split);
            (blake3::hash(&bytes).as_bytes()[..] == checksum[..]).then_some(bytes)
        });
        if intact.is_none() {
            tracing::warn!(target: "acre::cache", piece = index.0, path = %path.display(), "a cached piece is missing or damaged; dropping it");
            self.forget(index, slot, &path);
        }
        intact
    }

    fn forget(&self, index: PieceIndex, slot: usize, path: &Path) {
        let mut stored = self.stored();
        if stored.pieces.remove(&index).is_some() {
            stored.used[slot] -= 1;
        }
        drop(stored);
        let _ = std::fs::remove_file(path);
    }

    /// What to change for `wanted`: the wanted pieces not held (nearest first) and the held pieces not
    /// wanted.
    pub fn plan(&self, wanted: &Wanted) -> (Vec<PieceIndex>, Vec<PieceIndex>) {
        let stored = self.stored();
        let missing = wanted
            .iter()
            .filter(|index| !stored.pieces.contains_key(index))
            .collect();
        let unwanted = stored
            .pieces
            .keys()
            .copied()
            .filter(|index| !wanted.contains(*index))
            .collect();
        (missing, unwanted)
    }

    /// Deletes piece `index` from the cache. Blocking I/O.
    pub fn evict(&self, index: PieceIndex) {
        let Some(slot) = self.stored().pieces.get(&index).copied() else {
            return;
        };
        let path = self.dirs[slot].dir.join(file_name(index));
        self.forget(index, slot, &path);
    }

    /// Stores piece `index` (already verified by the caller) in the farm with the most room, crash-safely;
    /// `false` if every farm's share is full. Blocking I/O.
    pub fn insert(&self, index: PieceIndex, bytes: &[u8]) -> Result<bool, Error> {
        let slot = {
            let mut stored = self.stored();
            if stored.pieces.contains_key(&index) {
                return Ok(true);
            }
            let room = (0..self.dirs.len())
                .filter(|slot| stored.used[*slot] < self.dirs[*slot].capacity)
                .max_by_key(|slot| self.dirs[*slot].capacity - stored.used[*slot]);
            let Some(slot) = room else { return Ok(false) };
            // Reserved now so that concurrent inserts do not overfill the directory.
            stored.used[slot] += 1;
            slot
        };
        let dir = &self.dirs[slot].dir;
        let path = dir.join(file_name(index));
        let temporary = dir.join(format!("{}.tmp", file_name(index)));
        let written = (|| {
            let mut file = File::create(&temporary)?;
            file.write_all(bytes)?;
            file.write_all(blake3::hash(bytes).as_bytes())?;
            file.sync_all()?;
            drop(file);
            std::fs::rename(&temporary, &path)?;
            fsync_dir(dir)
        })();
        let mut stored = self.stored();
        match written {
            Ok(()) => {
                stored.pieces.insert(index, slot);
                Ok(true)
            }
            Err(error) => {
                stored.used[slot] -= 1;
                drop(stored);
                let _ = std::fs::remove_file(&temporary);
                Err(Error::io(format!("writing {}", path.display()))(error))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key(seed: u8) -> Blake3Hash {
        Blake3Hash([seed; 32])
    }

    proptest! {
        /// Growing step by step keeps exactly the nearest pieces a full sort would pick.
        #[test]
        fn wanted_is_the_nearest_whatever_the_steps(
            seed in any::<u8>(), capacity in 0usize..40, steps in proptest::collection::vec(0u64..50, 1..6),
        ) {
            let mut wanted = Wanted::new(key(seed), capacity);
            let mut total = 0;
            for step in steps {
                total += step;
                wanted.grow_to(total);
            }
            let mut all: Vec<_> = (0..total).map(|index| (piece_distance(&key(seed), PieceIndex(index)), PieceIndex(index))).collect();
            all.sort();
            let expected: Vec<PieceIndex> = all.into_iter().take(capacity).map(|(_, index)| index).collect();
            prop_assert_eq!(wanted.iter().collect::<Vec<_>>(), expected);
        }
    }

    #[test]
    fn pieces_survive_reopening_and_damaged_ones_are_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let dirs = vec![
            CacheDir {
                dir: dir.path().join("a"),
                capacity: 2,
            },
            CacheDir {
                dir: dir.path().join("b"),
                capacity: 1,
            },
        ];
        let cache = PieceCache::open(dirs.clone()).expect("opened");
        assert_eq!(cache.capacity(), 3);
        for index in 0..3 {
            assert!(
                cache
                    .insert(PieceIndex(index), &[index as u8; 100])
                    .expect("written")
            );
        }
        assert!(
            !cache.insert(PieceIndex(9), &[9; 100]).expect("no room"),
            "every share is full"
        );
        // A leftover of an interrupted write is cleaned up on opening.
        std::fs::write(dirs[0].dir.join("7.piece.tmp"), b"half").expect("written");
        drop(cache);
        let cache = PieceCache::open(dirs.clone()).expect("reopened");
        assert_eq!(cache.len(), 3);
        assert!(!dirs[0].dir.join("7.piece.tmp").exists());
        assert_eq!(cache.get(PieceIndex(1)), Some(vec![1; 100]));
        // A flipped byte on disk: the piece is not served, and forgotten.
        let holder = dirs
            .iter()
            .find(|d| d.dir.join("2.piece").exists())
            .expect("held");
        let path = holder.dir.join("2.piece");
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[5] ^= 1;
        std::fs::write(&path, bytes).expect("written");
        assert_eq!(cache.get(PieceIndex(2)), None);
        assert!(!cache.contains(PieceIndex(2)) && !path.exists());
        // A wiped file likewise.
        let holder = dirs
            .iter()
            .find(|d| d.dir.join("0.piece").exists())
            .expect("held");
        std::fs::remove_file(holder.dir.join("0.piece")).expect("removed");
        assert_eq!(cache.get(PieceIndex(0)), None);
        assert_eq!(cache.len(), 1);
        // The room they held is free again.
        assert!(cache.insert(PieceIndex(5), &[5; 100]).expect("written"));
        assert!(cache.insert(PieceIndex(6), &[6; 100]).expect("written"));
    }

    #[test]
    fn the_plan_fetches_the_nearest_missing_and_evicts_the_unwanted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = PieceCache::open(vec![CacheDir {
            dir: dir.path().join("a"),
            capacity: 4,
        }])
        .expect("opened");
        let mut wanted = Wanted::new(key(3), 4);
        wanted.grow_to(4);
        let (missing, unwanted) = cache.plan(&wanted);
        assert_eq!(missing.len(), 4);
        assert!(unwanted.is_empty());
        for index in &missing {
            cache.insert(*index, &[1; 10]).expect("written");
        }
        wanted.grow_to(200);
        let (missing, unwanted) = cache.plan(&wanted);
        // Of the first four pieces, at most a few are still among the nearest 4 of 200.
        assert_eq!(missing.len(), unwanted.len());
        for index in &unwanted {
            assert!(!wanted.contains(*index));
            cache.evict(*index);
        }
        for index in &missing {
            assert!(cache.insert(*index, &[1; 10]).expect("written"));
        }
        assert_eq!(cache.plan(&wanted), (Vec::new(), Vec::new()));
    }
}
