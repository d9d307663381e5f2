//! The simulated network: a full mesh of FIFO links (as TCP connections are) over virtual time.
//!
//! Each link has its own latency, drawn once. A lost message is retransmitted and arrives one
//! retransmission timeout later; later messages on the link queue behind it, so order is kept. During a
//! partition, messages between the two halves wait until the heal and then arrive in order, as a
//! reconnecting peer's would.

use std::collections::BTreeMap;

use acre_consensus::blocks::{Body, Header};
use acre_consensus::votes::SignedVote;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Milliseconds before a lost message is sent again.
pub const RETRANSMIT_MS: u64 = 1_000;

/// Something that happens at a moment of virtual time.
#[derive(Debug, Clone)]
pub enum Event {
    /// Farmer `farmer`'s clock reaches `slot`.
    Tick {
        /// The farmer.
        farmer: usize,
        /// The slot.
        slot: u64,
    },
    /// A block reaches node `to`.
    Block {
        /// The receiving node.
        to: usize,
        /// The block's header.
        header: Box<Header>,
        /// The block's body.
        body: Box<Body>,
    },
    /// A vote reaches node `to`.
    Vote {
        /// The receiving node.
        to: usize,
        /// The vote.
        vote: Box<SignedVote>,
    },
}

/// Links, partitions and the event queue.
#[derive(Debug)]
pub struct Network {
    nodes: usize,
    latency: Vec<u64>,
    last_delivery: Vec<u64>,
    loss: f64,
    /// The partition window in milliseconds; nodes below `nodes / 2` are one side.
    partition: Option<(u64, u64)>,
    queue: BTreeMap<(u64, u64), Event>,
    sequence: u64,
    /// Messages sent (blocks and votes, per receiving node).
    pub messages: u64,
    /// Messages that were lost once and retransmitted.
    pub retransmitted: u64,
}

impl Network {
    /// A mesh of `nodes` with latencies drawn from `latency_ms`.
    pub fn new(
        nodes: usize,
        latency_ms: (u64, u64),
        loss: f64,
        partition: Option<(u64, u64)>,
        rng: &mut ChaCha8Rng,
    ) -> Self {
        let (low, high) = (latency_ms.0.min(latency_ms.1), latency_ms.0.max(latency_ms.1));
        let latency = (0..nodes * nodes).map(|_| rng.random_range(low..=high)).collect();
        Self {
            nodes,
            latency,
            last_delivery: vec![0; nodes * nodes],
            loss,
            partition,
            queue: BTreeMap::new(),
            sequence: 0,
            messages: 0,
            retransmitted: 0,
        }
    }

    /// Schedules `event` at `time`.
    pub fn schedule(&mut self, time: u64, event: Event) {
        self.sequence += 1;
        self.queue.insert((time, self.sequence), event);
    }

    /// The next event, with its time.
    pub fn pop(&mut self) -> Option<(u64, Event)> {
        self.queue.pop_first().map(|((time, _), event)| (time, event))
    }

    /// Whether `a` and `b` are on different sides of the partition.
    fn split(&self, a: usize, b: usize) -> bool {
        (a < self.nodes / 2) != (b < self.nodes / 2)
    }

    /// Sends from `from` to every other node at `now`; `event(to)` makes each copy.
    pub fn broadcast(&mut self, from: usize, now: u64, rng: &mut ChaCha8Rng, event: impl Fn(usize) -> Event) {
        for to in (0..self.nodes).filter(|&to| to != from) {
            let link = from * self.nodes + to;
            let mut time = now + self.latency[link];
            if rng.random_bool(self.loss) {
                time += RETRANSMIT_MS;
                self.retransmitted += 1;
            }
            if let Some((start, end)) = self.partition
                && self.split(from, to)
                && now < end
                && time >= start
            {
                time = time.max(end + self.latency[link]);
            }
            time = time.max(self.last_delivery[link]);
            self.last_delivery[link] = time;
            self.messages += 1;
            self.schedule(time, event(to));
        }
    }
}
