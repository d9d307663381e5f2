//! The proof-of-time timekeeper: proves slot after slot on a dedicated thread.
//!
//! Proof of time is the chain's clock, so it runs on its own OS thread at full speed (one AES chain is
//! inherently sequential; sharing a core with anything else only slows the clock). It starts after the best
//! block's last covered slot (or from the genesis seed), keeps the slots it proved recently (a bounded window), and publishes the
//! newest slot number on a `watch` channel.
//!
//! Entropy injections come from the best chain and may arrive after the timekeeper passed the slot they
//! apply to (a late block, a reorg): [`Timekeeper::follow_best`] then drops the slots proved with the
//! wrong seed and the thread re-proves them. Blocks verify their proof of time against what the
//! timekeeper proved ([`PotCache`]) instead of recomputing it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use acre_consensus::ProtocolParams;
use acre_consensus::SlotNumber;
use acre_consensus::pot::{self, PotCheckpoints, PotOutput, PotSeed};
use acre_consensus::pot_chain::{EntropyInjection, PotCache, PotStart, next_seed};
use tokio::sync::watch;

/// Proved slots kept for verification and authoring: far more than any block still importable needs
/// (blocks deeper than the confirmation depth are refused), at 128 bytes each.
const KEPT_SLOTS: usize = 4096;

#[derive(Debug)]
struct State {
    /// Where the proved slots start.
    start: PotStart,
    /// Seeds and checkpoints of consecutive slots from `start.first_slot()`.
    slots: Vec<(PotSeed, PotCheckpoints)>,
    injections: Vec<EntropyInjection>,
    /// Bumped whenever `slots` is truncated, so a proof started before is discarded.
    generation: u64,
    /// The newest slot this node proved itself (not verified from gossip); 0 before the first.
    proved: u64,
    stop: bool,
}

impl State {
    fn first_slot(&self) -> u64 {
        self.start.first_slot().0
    }

    fn seed_for(&self, index: usize) -> PotSeed {
        let slot = SlotNumber(self.first_slot() + index as u64);
        match index.checked_sub(1).and_then(|previous| self.slots.get(previous)) {
            Some((_, previous)) => next_seed(&previous.output(), slot, &self.injections),
            None => match self.start {
                PotStart::Genesis(seed) => seed,
                PotStart::After(_, output) => next_seed(&output, slot, &self.injections),
            },
        }
    }

    /// Forgets all but the newest [`KEPT_SLOTS`] slots once twice as many are held, so memory stays
    /// bounded however long the node runs. The newest forgotten slot becomes the start.
    fn prune(&mut self) {
        if self.slots.len() < 2 * KEPT_SLOTS {
            return;
        }
        let drop = self.slots.len() - KEPT_SLOTS;
        let last_dropped = SlotNumber(self.first_slot() + drop as u64 - 1);
        let output = self.slots[drop - 1].1.output();
        self.slots.drain(..drop);
        self.start = PotStart::After(last_dropped, output);
    }

    fn get(&self, slot: SlotNumber) -> Option<&(PotSeed, PotCheckpoints)> {
        let index = slot.0.checked_sub(self.first_slot())?;
        self.slots.get(usize::try_from(index).ok()?)
    }
}

/// Handle to the timekeeper thread; dropping it stops the thread.
///
/// A node that is not a timekeeper ([`Timekeeper::follower`]) runs no thread: it extends the same
/// window with slots its peers gossip ([`Timekeeper::accept`]), each verified before it is kept, so
/// everything downstream (slot announcements, block proposal, the [`PotCache`]) works the same.
#[derive(Debug)]
pub struct Timekeeper {
    state: Arc<Mutex<State>>,
    thread: Option<JoinHandle<()>>,
    newest: Arc<watch::Sender<SlotNumber>>,
    iterations: u32,
}

/// What [`Timekeeper::accept`] made of gossiped slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Followed {
    /// This many new slots were verified and kept.
    Extended(usize),
    /// Every slot was already known, and the newest of them is the newest proved.
    Current,
    /// Nothing usable: old slots, or seeds this node's chain does not lead to (its view of entropy
    /// injections differs). Not the sender's fault.
    Unusable,
    /// The slots start past this node's newest slot plus one: the slots between (from the one given)
    /// must be fetched and verified first. Not the sender's fault either: this node joined late, or
    /// missed messages.
    Behind(SlotNumber),
}

/// Gossiped proof of time that is wrong.
#[derive(Debug, thiserror::Error)]
#[error("invalid proof of time for slot {slot}: {reason}")]
pub struct InvalidPot {
    /// The slot.
    pub slot: SlotNumber,
    /// What is wrong.
    pub reason: String,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Timekeeper {
    /// Starts proving from `start` with the best chain's pending `injections`; the receiver sees the
    /// newest proved slot (the slot before the first until one is proved).
    pub fn spawn(
        params: &ProtocolParams,
        start: PotStart,
        injections: Vec<EntropyInjection>,
    ) -> std::io::Result<(Self, watch::Receiver<SlotNumber>)> {
        let (mut timekeeper, receiver) = Self::follower(params, start, injections);
        let shared = Arc::clone(&timekeeper.state);
        let sender = Arc::clone(&timekeeper.newest);
        let iterations = timekeeper.iterations;
        let thread = std::thread::Builder::new()
            .name("acre-timekeeper".into())
            .spawn(move || run(&shared, iterations, &sender))?;
        timekeeper.thread = Some(thread);
        Ok((timekeeper, receiver))
    }

    /// A timekeeper that proves nothing itself and follows the slots its peers gossip
    /// ([`Self::accept`]).
    pub fn follower(
        params: &ProtocolParams,
        start: PotStart,
        injections: Vec<EntropyInjection>,
    ) -> (Self, watch::Receiver<SlotNumber>) {
        let state = Arc::new(Mutex::new(State {
            start,
            slots: Vec::new(),
            injections,
            generation: 0,
            proved: 0,
            stop: false,
        }));
        let (sender, receiver) = watch::channel(SlotNumber(start.first_slot().0 - 1));
        (
            Self {
                state,
                thread: None,
                newest: Arc::new(sender),
                iterations: params.pot_iterations,
            },
            receiver,
        )
    }

    /// Whether this timekeeper proves slots itself.
    pub fn is_proving(&self) -> bool {
        self.thread.is_some()
    }

    /// Up to `count` held slots from `first` on, oldest first: what a follower that fell behind asks
    /// for. Empty if `first` is not held.
    pub fn range(&self, first: SlotNumber, count: usize) -> Vec<(SlotNumber, PotSeed, PotCheckpoints)> {
        let state = lock(&self.state);
        let Some(start) = first
            .0
            .checked_sub(state.first_slot())
            .and_then(|offset| usize::try_from(offset).ok())
            .filter(|start| *start < state.slots.len())
        else {
            return Vec::new();
        };
        let end = start.saturating_add(count).min(state.slots.len());
        state.slots[start..end]
            .iter()
            .zip(first.0..)
            .map(|((seed, checkpoints), slot)| (SlotNumber(slot), *seed, *checkpoints))
            .collect()
    }

    /// The newest `count` proved slots (fewer if fewer are held), oldest first: what a timekeeper
    /// gossips.
    pub fn recent(&self, count: usize) -> Vec<(SlotNumber, PotSeed, PotCheckpoints)> {
        let state = lock(&self.state);
        let first = state.slots.len().saturating_sub(count);
        state.slots[first..]
            .iter()
            .enumerate()
            .map(|(offset, (seed, checkpoints))| {
                (
                    SlotNumber(state.first_slot() + (first + offset) as u64),
                    *seed,
                    *checkpoints,
                )
            })
            .collect()
    }

    /// Takes gossiped consecutive slots (oldest first): known ones are compared, the next unknown ones
    /// verified (outside the lock: the AES work is the expensive part) and kept. A proving timekeeper
    /// keeps them too: verifying is several times quicker than proving, so one that fell behind (it
    /// restarted from an older block's proof after a reorganisation, or from genesis after a resync)
    /// catches up with the network's clock instead of trailing it for good; its prover drops the slot
    /// it was working on and goes on from the newest. Any slot whose seed is the one this node expects but whose checkpoints are wrong makes
    /// the whole message invalid: proof of time is deterministic, so no honest peer sends one.
    pub fn accept(&self, slots: &[(SlotNumber, PotSeed, PotCheckpoints)]) -> Result<Followed, InvalidPot> {
        let mut extended = 0;
        let mut current = false;
        let mut behind = None;
        for (slot, seed, checkpoints) in slots {
            let (expected, generation, index) = {
                let state = lock(&self.state);
                let newest = state.first_slot() + state.slots.len() as u64 - 1;
                if let Some((known_seed, known)) = state.get(*slot) {
                    if known_seed == seed && known != checkpoints {
                        return Err(InvalidPot {
                            slot: *slot,
                            reason: "checkpoints differ from this node's proof of the same seed".into(),
                        });
                    }
                    current = known_seed == seed && slot.0 == newest;
                    continue;
                }
                // Slots before the window (it restarted from a block's proof, past them) are passed
                // over: the message's later slots may extend it.
                if slot.0 <= newest {
                    continue;
                }
                if slot.0 > newest + 1 {
                    behind = Some(SlotNumber(newest + 1));
                    break;
                }
                let index = state.slots.len();
                (state.seed_for(index), state.generation, index)
            };
            if expected != *seed {
                tracing::debug!(%slot, "a gossiped slot's seed is not the one this node's chain leads to");
                break;
            }
            pot::verify(seed, &seed.key(), self.iterations, checkpoints).map_err(|error| InvalidPot {
                slot: *slot,
                reason: error.to_string(),
            })?;
            let mut state = lock(&self.state);
            if state.generation != generation || state.slots.len() != index {
                break;
            }
            state.slots.push((*seed, *checkpoints));
            state.prune();
            drop(state);
            extended += 1;
            current = true;
            self.newest.send_replace(*slot);
        }
        Ok(match (extended, current) {
            (0, true) => Followed::Current,
            (0, false) => behind.map_or(Followed::Unusable, Followed::Behind),
            (count, _) => Followed::Extended(count),
        })
    }

    /// The output of `slot`, if proved.
    pub fn output(&self, slot: SlotNumber) -> Option<PotOutput> {
        lock(&self.state)
            .get(slot)
            .map(|(_, checkpoints)| checkpoints.output())
    }

    /// The checkpoints of slots `first..=last`, if all are proved.
    pub fn checkpoints(&self, first: SlotNumber, last: SlotNumber) -> Option<Vec<PotCheckpoints>> {
        let state = lock(&self.state);
        (first.0..=last.0)
            .map(|slot| state.get(SlotNumber(slot)).map(|(_, checkpoints)| *checkpoints))
            .collect()
    }

    /// Whether the newest slot is one this node proved itself, not one it verified from a peer: only
    /// then does a timekeeper gossip (what it verified was gossiped already, and goes on by gossipsub's
    /// forwarding).
    pub fn proved_newest(&self) -> bool {
        let state = lock(&self.state);
        state.proved == state.first_slot() + state.slots.len() as u64 - 1
    }

    /// A receiver of the newest proved slot.
    pub fn subscribe_newest(&self) -> watch::Receiver<SlotNumber> {
        self.newest.subscribe()
    }

    /// The newest proved slot.
    pub fn newest_slot(&self) -> SlotNumber {
        let state = lock(&self.state);
        SlotNumber(state.first_slot() + state.slots.len() as u64 - 1)
    }

    /// Follows a new best block that covers slots up to `covered` (whose output is `output`) and has
    /// `pending` injections for later slots. Slots up to `covered` are the best chain's and stay as they
    /// are, unless the timekeeper's own output there differs (a reorg to a branch with other entropy): then
    /// it restarts from the block's output. Later slots proved with a seed `pending` changes are dropped
    /// and proved again.
    pub fn follow_best(
        &self,
        covered: SlotNumber,
        output: Option<PotOutput>,
        pending: Vec<EntropyInjection>,
    ) {
        let mut state = lock(&self.state);
        if let Some(output) = output
            && state.get(covered).map(|(_, checkpoints)| checkpoints.output()) != Some(output)
            && covered.0 >= state.first_slot()
        {
            if state.get(covered).is_some() {
                tracing::info!(slot = %covered, "best chain's proof of time differs; restarting from it");
            } else {
                // A block from a faster timekeeper (or gossip that is still on its way): start from it.
                tracing::debug!(slot = %covered, "best chain's proof of time is ahead; continuing from it");
            }
            state.start = PotStart::After(covered, output);
            state.slots.clear();
            state.injections = pending;
            state.generation += 1;
            return;
        }
        let mut injections: Vec<_> = state
            .injections
            .iter()
            .filter(|injection| injection.slot <= covered)
            .copied()
            .collect();
        injections.extend(pending.into_iter().filter(|injection| injection.slot > covered));
        if state.injections == injections {
            return;
        }
        state.injections = injections;
        let first_free =
            usize::try_from((covered.0 + 1).saturating_sub(state.first_slot())).unwrap_or(usize::MAX);
        let stale =
            (first_free..state.slots.len()).find(|&index| state.seed_for(index) != state.slots[index].0);
        if let Some(index) = stale {
            tracing::info!(
                slot = state.first_slot() + index as u64,
                "entropy injection changed proved slots; re-proving"
            );
            state.slots.truncate(index);
        }
        // Also when no stored slot is stale: the slot being proved (or verified from gossip) right now
        // was started from a seed of the old injections, and must not be stored.
        state.generation += 1;
    }

    /// Whether the proving thread has exited (after [`Self::stop`]); a follower has none.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Asks the thread to stop after the slot it is proving; dropping the handle waits for it.
    pub fn stop(&self) {
        lock(&self.state).stop = true;
    }
}

impl Drop for Timekeeper {
    fn drop(&mut self) {
        self.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl PotCache for Timekeeper {
    fn known(&self, slot: SlotNumber, seed: &PotSeed) -> Option<PotCheckpoints> {
        lock(&self.state)
            .get(slot)
            .filter(|(known_seed, _)| known_seed == seed)
            .map(|(_, checkpoints)| *checkpoints)
    }
}

fn run(state: &Mutex<State>, iterations: u32, newest: &watch::Sender<SlotNumber>) {
    loop {
        let (seed, generation, index) = {
            let state = lock(state);
            if state.stop {
                return;
            }
            let index = state.slots.len();
            (state.seed_for(index), state.generation, index)
        };
        let checkpoints = match pot::prove(&seed, &seed.key(), iterations) {
            Ok(checkpoints) => checkpoints,
            Err(error) => {
                tracing::error!(%error, "proof of time failed; the timekeeper stops");
                return;
            }
        };
        let mut state = lock(state);
        if state.generation != generation || state.slots.len() != index {
            continue;
        }
        state.slots.push((seed, checkpoints));
        let slot = SlotNumber(state.first_slot() + index as u64);
        state.proved = slot.0;
        state.prune();
        drop(state);
        tracing::trace!(%slot, "slot proved");
        newest.send_replace(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acre_consensus::pot_chain::verify_slots;

    #[test]
    fn proves_a_verifiable_chain_and_reproves_after_a_late_injection() {
        let params = ProtocolParams {
            pot_iterations: 1600,
            ..ProtocolParams::dev()
        };
        let genesis = PotSeed([7; 16]);
        let (timekeeper, mut newest) =
            Timekeeper::spawn(&params, PotStart::Genesis(genesis), Vec::new()).expect("spawns");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            while newest.borrow_and_update().0 < 12 {
                newest.changed().await.expect("running");
            }
        });
        let slots = timekeeper
            .checkpoints(SlotNumber(1), SlotNumber(12))
            .expect("proved");
        verify_slots(&params, PotStart::Genesis(genesis), &slots, &[]).expect("valid chain");
        let seed_3 = slots[1].output().next_seed();
        assert_eq!(timekeeper.known(SlotNumber(3), &seed_3), Some(slots[2]));
        assert_eq!(timekeeper.known(SlotNumber(3), &PotSeed([0; 16])), None);

        let injection = EntropyInjection {
            slot: SlotNumber(5),
            entropy: slots[0].output(),
        };
        timekeeper.follow_best(SlotNumber(0), None, vec![injection]);
        runtime.block_on(async {
            loop {
                if let Some(again) = timekeeper.checkpoints(SlotNumber(1), SlotNumber(12)) {
                    verify_slots(&params, PotStart::Genesis(genesis), &again, &[injection])
                        .expect("re-proved with the injection");
                    assert_eq!(again[..4], slots[..4]);
                    assert_ne!(again[4], slots[4]);
                    break;
                }
                newest.changed().await.expect("running");
            }
        });
        timekeeper.stop();
    }

    #[test]
    fn a_follower_keeps_verified_gossip_and_refuses_forged_checkpoints() {
        let params = ProtocolParams {
            pot_iterations: 1600,
            ..ProtocolParams::dev()
        };
        let genesis = PotStart::Genesis(PotSeed([9; 16]));
        let (prover, mut newest) = Timekeeper::spawn(&params, genesis, Vec::new()).expect("spawns");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            while newest.borrow_and_update().0 < 20 {
                newest.changed().await.expect("running");
            }
        });
        prover.stop();
        assert!(prover.proved_newest());
        let proved: Vec<_> = prover
            .recent(usize::MAX)
            .into_iter()
            .filter(|(slot, _, _)| slot.0 <= 20)
            .collect();
        assert_eq!(proved.len(), 20);
        assert!(prover.is_proving());

        let (follower, watch) = Timekeeper::follower(&params, genesis, Vec::new());
        assert!(!follower.is_proving());
        // A window that starts after slot 6 (restarted from a block's proof) takes the later slots of a
        // message that begins before it.
        let (restarted, _) = Timekeeper::follower(
            &params,
            PotStart::After(SlotNumber(6), proved[5].2.output()),
            Vec::new(),
        );
        assert_eq!(
            restarted.accept(&proved[2..12]).expect("valid"),
            Followed::Extended(6)
        );
        assert_eq!(restarted.newest_slot(), SlotNumber(12));
        // A gap (slots 5..) cannot be verified yet: not invalid, and the slots from 1 are wanted first.
        assert_eq!(
            follower.accept(&proved[4..8]).expect("no fault"),
            Followed::Behind(SlotNumber(1))
        );
        assert!(follower.range(SlotNumber(1), 4).is_empty());
        let held = prover.range(SlotNumber(3), 4);
        assert_eq!(held, proved[2..6]);
        assert_eq!(prover.range(SlotNumber(19), 2), proved[18..20]);
        let past = SlotNumber(prover.newest_slot().0 + 1);
        assert!(prover.range(past, 4).is_empty());
        assert!(
            prover.range(SlotNumber(0), 4).is_empty(),
            "slot 0 is never proved"
        );
        assert_eq!(
            follower.accept(&proved[..8]).expect("valid"),
            Followed::Extended(8)
        );
        assert_eq!(*watch.borrow(), SlotNumber(8));
        assert!(!follower.proved_newest(), "verified from gossip, not proved here");
        // Overlapping windows extend by the new slots only.
        assert_eq!(
            follower.accept(&proved[4..12]).expect("valid"),
            Followed::Extended(4)
        );
        assert_eq!(follower.accept(&proved[8..12]).expect("valid"), Followed::Current);
        assert_eq!(follower.accept(&proved[..4]).expect("valid"), Followed::Unusable);
        // Forged checkpoints for the next slot, and for a known slot, are invalid.
        let mut forged = proved[12];
        forged.2.0[3].0[0] ^= 1;
        let error = follower.accept(&[forged]).expect_err("forged");
        assert_eq!(error.slot, SlotNumber(13));
        let mut known = proved[2];
        known.2.0[0].0[0] ^= 1;
        assert!(follower.accept(&[known]).is_err());
        assert_eq!(follower.newest_slot(), SlotNumber(12));
        // A seed this chain does not lead to is not the sender's fault.
        let mut other = proved[12];
        other.1 = PotSeed([1; 16]);
        assert_eq!(follower.accept(&[other]).expect("no fault"), Followed::Unusable);
        assert_eq!(
            follower.accept(&proved[12..]).expect("valid"),
            Followed::Extended(8)
        );
        assert_eq!(
            follower
                .checkpoints(SlotNumber(1), SlotNumber(20))
                .expect("all held")
                .len(),
            20
        );
    }

    #[test]
    fn timekeeper_memory_stays_bounded() {
        let seed = PotSeed([3; 16]);
        let checkpoints = pot::prove(&seed, &seed.key(), 8).expect("proves");
        let mut state = State {
            start: PotStart::Genesis(seed),
            slots: Vec::new(),
            injections: Vec::new(),
            generation: 0,
            proved: 0,
            stop: false,
        };
        for _ in 0..5 * KEPT_SLOTS {
            let index = state.slots.len();
            let seed = state.seed_for(index);
            state.slots.push((seed, checkpoints));
            state.prune();
            assert!(state.slots.len() < 2 * KEPT_SLOTS);
        }
        // The window still chains: the newest slot's seed follows from the kept slots.
        let newest = SlotNumber(state.first_slot() + state.slots.len() as u64 - 1);
        assert_eq!(newest.0, 5 * KEPT_SLOTS as u64);
        assert!(state.get(newest).is_some());
        assert!(state.get(SlotNumber(1)).is_none(), "old slots are forgotten");
    }
}
