//! The farm ledger: what each farm did, slot by slot, kept in a small rolling file per farm.
//!
//! The farming loop counts into one [`Tally`] per farm (slots audited or skipped and why, candidates,
//! proofs and the ones that missed their deadline, submissions and the node's verdicts, blocks sealed).
//! Every flush interval the daemon appends each farm's tally since the last flush as one JSON line to
//! `ledger.jsonl` in the farm's directory, and starts a new one. Readers (`acre-farmer why`, `info`) sum
//! the lines of the window they are asked about. Notable events (a missed deadline with its figures, a
//! rejection with the node's reason, an unreadable plot) ride along in the line, bounded per flush.
//!
//! The file is append-only, so a crash loses at most the last flush interval, and a torn last line is
//! skipped when read. It rolls once it passes [`ROLL_AT`] bytes: the newest half is rewritten to a
//! temporary file, synced and renamed over it. Readers treat the file as untrusted: they read at most
//! [`READ_LIMIT`] bytes from its end and skip lines that do not parse.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The ledger's file name inside a farm directory.
pub const LEDGER_FILE: &str = "ledger.jsonl";
/// Size past which the ledger rolls (keeps its newest half): about a week of 10-second lines.
pub const ROLL_AT: u64 = 8 << 20;
/// Most bytes read from a ledger's end.
pub const READ_LIMIT: u64 = 16 << 20;
/// Most notable events kept per farm and flush; later ones are only counted.
pub const EVENTS_PER_FLUSH: usize = 32;
/// Longest reason text kept from the node.
pub const MAX_REASON: usize = 300;

/// Why a slot was not audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The previous slot was still being worked on.
    Busy,
    /// The slot's notification came after its deadline had passed.
    Late,
    /// Reading the plot failed.
    Unreadable,
    /// The farm is disabled after repeated disk failures.
    Disabled,
}

impl SkipReason {
    /// Every reason, for metrics that list them all from the start.
    pub const ALL: [Self; 4] = [Self::Busy, Self::Late, Self::Unreadable, Self::Disabled];

    /// A short, stable name (metric label).
    pub fn name(self) -> &'static str {
        match self {
            Self::Busy => "busy",
            Self::Late => "late",
            Self::Unreadable => "unreadable",
            Self::Disabled => "disabled",
        }
    }
}

/// What a submission claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimKind {
    /// A block solution.
    Block,
    /// A vote.
    Vote,
}

impl ClaimKind {
    /// A short, stable name (metric label).
    pub fn name(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Vote => "vote",
        }
    }
}

/// Something worth telling the operator about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A proof was ready only after its slot's deadline.
    Missed {
        /// The slot.
        slot: u64,
        /// From the slot's announcement to the proof, ms.
        taken_ms: u64,
        /// The time the slot allowed (authoring delay × measured slot time), ms.
        allowed_ms: u64,
        /// Of which auditing every farm, ms.
        audit_ms: u64,
        /// Of which proving, ms.
        prove_ms: u64,
        /// Whether a sector was being plotted meanwhile.
        plotting: bool,
        /// Plotting threads, and the machine's cores.
        plotting_threads: u32,
        /// The machine's cores.
        cores: u32,
    },
    /// The node refused a solution or vote.
    Rejected {
        /// The slot.
        slot: u64,
        /// Block or vote.
        kind: ClaimKind,
        /// The node's reason (truncated to [`MAX_REASON`] bytes).
        reason: String,
    },
    /// Reading the plot failed during an audit or proof.
    Unreadable {
        /// The slot.
        slot: u64,
        /// The sector.
        sector: u16,
        /// The error.
        error: String,
    },
    /// A sector was found damaged on disk and freed for plotting again.
    Damaged {
        /// The sector.
        sector: u16,
        /// Its byte range in the plot file.
        offset: u64,
        /// The range's end (exclusive).
        end: u64,
    },
    /// The farm was disabled.
    Disabled {
        /// Why.
        reason: String,
    },
}

/// A farm's state at flush time (for `info`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The history size the farmer knew.
    pub history_size: u64,
    /// Sectors in the farm.
    pub sectors: u32,
    /// Sectors plotted.
    pub plotted: u32,
    /// Plotted sectors expiring with the next segment.
    pub expiring: u32,
    /// Plotted sectors expired (waiting to be replotted).
    pub expired: u32,
}

/// One farm's activity over `[from_ms, to_ms)` (Unix time). Lines are deltas: readers sum them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tally {
    /// Start, ms since the Unix epoch.
    pub from_ms: u64,
    /// End, ms since the Unix epoch.
    pub to_ms: u64,
    /// Slots whose challenge this farm's sectors were audited against.
    pub audited: u64,
    /// Slots skipped because the previous one was still being worked on.
    pub skipped_busy: u64,
    /// Slots skipped because their notification came too late.
    pub skipped_late: u64,
    /// Slots whose audit of this farm failed to read the plot.
    pub skipped_unreadable: u64,
    /// Slots skipped because the farm was disabled.
    pub skipped_disabled: u64,
    /// Winning chunks found.
    pub candidates: u64,
    /// Proofs made.
    pub proofs: u64,
    /// Proofs that were ready only after their deadline (dropped, not submitted).
    pub missed: u64,
    /// Block solutions submitted.
    pub solutions: u64,
    /// Votes submitted.
    pub votes: u64,
    /// Submissions the node accepted.
    pub accepted: u64,
    /// Submissions the node refused.
    pub rejected: u64,
    /// Blocks sealed with this farm's solutions (each credits the block reward).
    pub sealed: u64,
    /// Sectors found damaged and freed for plotting again.
    pub damaged: u64,
    /// Notable events (at most [`EVENTS_PER_FLUSH`]).
    pub events: Vec<Event>,
    /// Events beyond the bound, counted only.
    pub events_dropped: u64,
    /// The farm's state at the end.
    pub snapshot: Option<Snapshot>,
}

impl Tally {
    /// An empty tally starting at `from_ms`.
    pub fn starting(from_ms: u64) -> Self {
        Self {
            from_ms,
            to_ms: from_ms,
            ..Self::default()
        }
    }

    /// Counts a skipped slot.
    pub fn skipped(&mut self, reason: SkipReason) {
        let counter = match reason {
            SkipReason::Busy => &mut self.skipped_busy,
            SkipReason::Late => &mut self.skipped_late,
            SkipReason::Unreadable => &mut self.skipped_unreadable,
            SkipReason::Disabled => &mut self.skipped_disabled,
        };
        *counter += 1;
    }

    /// Keeps `event` if there is room, else counts it.
    pub fn event(&mut self, event: Event) {
        if self.events.len() < EVENTS_PER_FLUSH {
            self.events.push(event);
        } else {
            self.events_dropped += 1;
        }
    }

    /// Whether nothing happened (a line for it would say nothing).
    pub fn is_idle(&self) -> bool {
        let empty = Self {
            from_ms: self.from_ms,
            to_ms: self.to_ms,
            snapshot: self.snapshot.clone(),
            ..Self::default()
        };
        *self == empty
    }

    /// Adds `other`'s counts and events to this one (the span widens to cover both; the newer
    /// snapshot wins).
    pub fn absorb(&mut self, other: &Self) {
        if self.from_ms == 0 || other.from_ms < self.from_ms {
            self.from_ms = other.from_ms;
        }
        self.to_ms = self.to_ms.max(other.to_ms);
        for (mine, theirs) in [
            (&mut self.audited, other.audited),
            (&mut self.skipped_busy, other.skipped_busy),
            (&mut self.skipped_late, other.skipped_late),
            (&mut self.skipped_unreadable, other.skipped_unreadable),
            (&mut self.skipped_disabled, other.skipped_disabled),
            (&mut self.candidates, other.candidates),
            (&mut self.proofs, other.proofs),
            (&mut self.missed, other.missed),
            (&mut self.solutions, other.solutions),
            (&mut self.votes, other.votes),
            (&mut self.accepted, other.accepted),
            (&mut self.rejected, other.rejected),
            (&mut self.sealed, other.sealed),
            (&mut self.damaged, other.damaged),
            (&mut self.events_dropped, other.events_dropped),
        ] {
            *mine = mine.saturating_add(theirs);
        }
        self.events.extend(other.events.iter().cloned());
        if other.snapshot.is_some() {
            self.snapshot.clone_from(&other.snapshot);
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| {
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
    })
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub fn truncate(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// A farm's ledger file.
#[derive(Debug, Clone)]
pub struct LedgerFile {
    path: PathBuf,
}

impl LedgerFile {
    /// The ledger of the farm in `dir`.
    pub fn in_farm(dir: &Path) -> Self {
        Self {
            path: dir.join(LEDGER_FILE),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `tally` as one line (synced), rolling the file first if it is too large.
    pub fn append(&self, tally: &Tally) -> Result<(), Error> {
        let size = std::fs::metadata(&self.path).map_or(0, |metadata| metadata.len());
        if size >= ROLL_AT {
            self.roll()?;
        }
        let mut line = serde_json::to_vec(tally).map_err(|error| Error::InvalidConfig(error.to_string()))?;
        line.push(b'\n');
        let context = || format!("appending to {}", self.path.display());
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(Error::io(context()))?;
        file.write_all(&line).map_err(Error::io(context()))?;
        file.sync_data().map_err(Error::io(context()))
    }

    /// Keeps the newest half of the file: written to a temporary file, synced, renamed over the ledger,
    /// and the directory synced.
    fn roll(&self) -> Result<(), Error> {
        let bytes = read_tail(&self.path, ROLL_AT / 2)?;
        let keep = match bytes.iter().position(|&b| b == b'\n') {
            // The tail starts mid-line unless it is the whole file.
            Some(newline) if bytes.len() as u64 >= ROLL_AT / 2 => &bytes[newline + 1..],
            _ => &bytes[..],
        };
        let temporary = self.path.with_extension("jsonl.tmp");
        let context = |what: &str| format!("{what} {}", temporary.display());
        let mut file = File::create(&temporary).map_err(Error::io(context("creating")))?;
        file.write_all(keep).map_err(Error::io(context("writing")))?;
        file.sync_all().map_err(Error::io(context("syncing")))?;
        std::fs::rename(&temporary, &self.path).map_err(Error::io(context("renaming")))?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)
                .and_then(|dir| dir.sync_all())
                .map_err(Error::io(format!("syncing {}", dir.display())))?;
        }
        Ok(())
    }

    /// The tallies that end at or after `since_ms`, oldest first, and how many lines were unreadable.
    /// A missing file is an empty ledger.
    pub fn read_since(&self, since_ms: u64) -> Result<(Vec<Tally>, usize), Error> {
        let bytes = match read_tail(&self.path, READ_LIMIT) {
            Ok(bytes) => bytes,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Vec::new(), 0));
            }
            Err(error) => return Err(error),
        };
        let mut tallies = Vec::new();
        let mut unreadable = 0;
        for line in bytes.split(|&b| b == b'\n').filter(|line| !line.is_empty()) {
            match serde_json::from_slice::<Tally>(line) {
                Ok(tally) if tally.to_ms >= since_ms => tallies.push(tally),
                Ok(_) => {}
                Err(_) => unreadable += 1,
            }
        }
        Ok((tallies, unreadable))
    }
}

/// The last `limit` bytes of `path` (all of it if shorter).
fn read_tail(path: &Path, limit: u64) -> Result<Vec<u8>, Error> {
    let context = || format!("reading {}", path.display());
    let mut file = File::open(path).map_err(Error::io(context()))?;
    let size = file.metadata().map_err(Error::io(context()))?.len();
    let start = size.saturating_sub(limit);
    file.seek(SeekFrom::Start(start)).map_err(Error::io(context()))?;
    let mut bytes = Vec::with_capacity((size - start) as usize);
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(Error::io(context()))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(from_ms: u64, audited: u64) -> Tally {
        Tally {
            from_ms,
            to_ms: from_ms + 10,
            audited,
            ..Tally::default()
        }
    }

    #[test]
    fn lines_round_trip_and_torn_or_foreign_lines_are_skipped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ledger = LedgerFile::in_farm(dir.path());
        assert_eq!(ledger.read_since(0).expect("missing is empty"), (Vec::new(), 0));
        let mut first = tally(100, 3);
        first.event(Event::Rejected {
            slot: 7,
            kind: ClaimKind::Vote,
            reason: "too late".into(),
        });
        ledger.append(&first).expect("appended");
        ledger.append(&tally(200, 5)).expect("appended");
        let mut file = OpenOptions::new().append(true).open(ledger.path()).expect("open");
        file.write_all(b"not json\n{\"from_ms\":").expect("torn line");
        let (read, unreadable) = ledger.read_since(0).expect("read");
        assert_eq!((read, unreadable), (vec![first, tally(200, 5)], 2));
        assert_eq!(ledger.read_since(150).expect("read").0, vec![tally(200, 5)]);
    }

    #[test]
    fn events_are_bounded_and_tallies_absorb() {
        let mut total = tally(100, 1);
        for slot in 0..EVENTS_PER_FLUSH as u64 + 3 {
            total.event(Event::Disabled {
                reason: format!("{slot}"),
            });
        }
        assert_eq!((total.events.len(), total.events_dropped), (EVENTS_PER_FLUSH, 3));
        let mut later = tally(50, 2);
        later.skipped(SkipReason::Busy);
        later.snapshot = Some(Snapshot {
            plotted: 4,
            ..Snapshot::default()
        });
        total.absorb(&later);
        assert_eq!((total.from_ms, total.to_ms, total.audited), (50, 110, 3));
        assert_eq!(total.skipped_busy, 1);
        assert_eq!(total.snapshot.map(|s| s.plotted), Some(4));
        assert!(Tally::starting(5).is_idle());
        assert!(!later.is_idle());
    }

    #[test]
    fn the_ledger_rolls_to_its_newest_half() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ledger = LedgerFile::in_farm(dir.path());
        // One line past the roll size: the next append rolls it away.
        let mut big = tally(1, 1);
        big.event(Event::Disabled {
            reason: "x".repeat(ROLL_AT as usize),
        });
        ledger.append(&big).expect("appended");
        ledger.append(&tally(2, 2)).expect("appended");
        ledger.append(&tally(3, 3)).expect("appended after rolling");
        let (read, unreadable) = ledger.read_since(0).expect("read");
        assert_eq!((read, unreadable), (vec![tally(2, 2), tally(3, 3)], 0));
        assert!(std::fs::metadata(ledger.path()).expect("size").len() < ROLL_AT / 2);
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
