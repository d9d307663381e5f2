//! `acre-sim`: a deterministic many-farmer simulator over Acre's real protocol code.
//!
//! Researchers studying proof-of-archival-storage need experiments they can repeat. A run here is a
//! pure function of its [`Config`] (seed included): single-threaded, virtual time, no clock, no disk, no
//! network. It drives the real code end to end: farmers plot the genesis history with `acre-farmer`'s
//! plotting ([`farmers`]), audit every slot and prove their wins; blocks carry real proof of time (tiny
//! iterations, same chain), real solutions, votes, segment headers and equivocation proofs; every block is
//! judged by `acre-consensus`'s chain state machine, executed by `acre-execution` and archived by
//! `acre-storage` ([`world`]); nodes pick the heaviest chain by the real fork-choice rule and keep their
//! own view of blocks, claims, votes and evidence ([`node`]). The network ([`network`]) is a full mesh of
//! FIFO links with per-link latency, retransmitted losses, clock skew and partitions.
//!
//! What it reports ([`Report`]): chain growth against what the farmers' space predicts, forks and their
//! depth, orphaned blocks, each space class's reward share against its space share, time to finality, and
//! what became of equivocations. Two runs with one seed give the same `final_hash`.
//!
//! Two simplifications, recorded in docs/decisions.md: the proof-of-time chain runs without entropy
//! injections (a real chain injects every `pot_entropy_injection_interval` blocks, which makes each branch
//! prove its own slots after an injection), and sectors do not expire within a run (farmers plot the
//! genesis history once; a real farmer replots expiring sectors). [`params`] sets both beyond any run.

pub mod farmers;
pub mod network;
pub mod node;
pub mod report;
mod run;
pub mod world;

use thiserror::Error;

pub use report::{Report, SlotRow, SpaceClass};
pub use run::{MAX_FARMERS, SLOT_MS, Simulation, params, run};

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Farmers (each runs its own node).
    pub farmers: usize,
    /// Slots to simulate.
    pub slots: u64,
    /// The seed every random choice derives from.
    pub seed: u64,
    /// Slots during which the network is split in two halves (messages across wait for the heal).
    pub partition: Option<std::ops::Range<u64>>,
    /// Fraction of farmers that equivocate (seal two blocks for every slot they win).
    pub byzantine: f64,
    /// One-way link latency range in milliseconds (per link, drawn once).
    pub latency_ms: (u64, u64),
    /// Probability that a message is lost once and retransmitted (arriving a retransmission later).
    pub loss: f64,
    /// Largest clock skew of a farmer, in milliseconds.
    pub max_skew_ms: u64,
    /// Pieces per farmer: each farmer plots one sector of between these many pieces (inclusive).
    pub pieces: (u16, u16),
}

impl Default for Config {
    fn default() -> Self {
        Self {
            farmers: 100,
            slots: 2_000,
            seed: 0,
            partition: None,
            byzantine: 0.0,
            latency_ms: (20, 300),
            loss: 0.01,
            max_skew_ms: 200,
            pieces: (1, 4),
        }
    }
}

/// What can go wrong in a run (all of it a bug or an impossible configuration: the simulated world
/// itself has no failures).
#[derive(Debug, Error)]
pub enum SimError {
    /// The configuration cannot be simulated.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Setting up the world failed.
    #[error("setup: {0}")]
    Setup(&'static str),
    /// A block the simulator expected to be known is not.
    #[error("a block the simulator relies on is unknown")]
    Unknown,
    /// The consensus code refused its input.
    #[error(transparent)]
    Consensus(#[from] acre_consensus::Error),
    /// Proof of time refused its input.
    #[error(transparent)]
    Pot(#[from] acre_consensus::pot::PotError),
    /// Proof of space refused its input.
    #[error(transparent)]
    Pos(#[from] acre_consensus::pos::PosError),
    /// Archiving failed.
    #[error(transparent)]
    Storage(#[from] acre_storage::Error),
    /// Plotting, auditing or proving failed.
    #[error(transparent)]
    Farmer(#[from] acre_farmer::Error),
    /// Executing a block failed.
    #[error(transparent)]
    Execution(#[from] acre_execution::ExecutionError),
}
