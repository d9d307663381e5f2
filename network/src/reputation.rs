//! Peer reputation: a score per peer that faults lower and time restores, and bans (spec 9).
//!
//! Pure bookkeeping (the runner applies the verdicts to the swarm), bounded in memory: at most
//! [`MAX_TRACKED`] scores and as many bans are kept; when full, the least informative entry (the score
//! nearest zero, the ban ending soonest) makes room.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// A score at or below this bans the peer.
pub const BAN_THRESHOLD: i32 = -100;

/// How long a ban lasts.
pub const BAN_DURATION: Duration = Duration::from_secs(10 * 60);

/// Score points restored per second of good behaviour (a peer at the threshold is back to zero after
/// about 100 s without faults).
const RECOVERY_PER_SECOND: f64 = 1.0;

/// Peers whose scores and bans are remembered.
pub const MAX_TRACKED: usize = 4096;

/// Something a peer did wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// A message that does not decode.
    Undecodable,
    /// A message over its protocol's size limit.
    Oversized,
    /// A block that fails validation.
    InvalidBlock,
    /// A piece that fails verification against its segment.
    InvalidPiece,
    /// A proof of time that does not verify.
    InvalidPot,
    /// A page of state whose proof does not hold against its block's state root (snap sync).
    InvalidState,
    /// A transaction that fails its checks.
    InvalidTransaction,
    /// A peer of another chain (its identify names another genesis hash).
    WrongGenesis,
    /// A breach of a protocol's rules (an unasked-for response, a request over the limits).
    ProtocolViolation,
    /// A request it did not answer in time.
    Timeout,
}

impl Fault {
    /// How much the fault costs.
    pub fn penalty(self) -> i32 {
        match self {
            Self::Timeout => 5,
            Self::Undecodable | Self::Oversized | Self::ProtocolViolation => 25,
            Self::InvalidTransaction => 10,
            Self::InvalidBlock
            | Self::InvalidPiece
            | Self::InvalidPot
            | Self::InvalidState
            | Self::WrongGenesis => 1000,
        }
    }

    /// Whether the fault bans at once: blocks and proofs that cannot be wrong by accident (an honest peer
    /// forwards only what it verified), and another chain.
    pub fn is_fatal(self) -> bool {
        matches!(
            self,
            Self::InvalidBlock
                | Self::InvalidPiece
                | Self::InvalidPot
                | Self::InvalidState
                | Self::WrongGenesis
        )
    }

    /// Every fault, in a fixed order.
    pub const ALL: [Self; 10] = [
        Self::Undecodable,
        Self::Oversized,
        Self::InvalidBlock,
        Self::InvalidPiece,
        Self::InvalidPot,
        Self::InvalidState,
        Self::InvalidTransaction,
        Self::WrongGenesis,
        Self::ProtocolViolation,
        Self::Timeout,
    ];

    /// A short, stable name (for metric labels).
    pub fn label(self) -> &'static str {
        match self {
            Self::Undecodable => "undecodable",
            Self::Oversized => "oversized",
            Self::InvalidBlock => "invalid_block",
            Self::InvalidPiece => "invalid_piece",
            Self::InvalidPot => "invalid_pot",
            Self::InvalidState => "invalid_state",
            Self::InvalidTransaction => "invalid_transaction",
            Self::WrongGenesis => "wrong_genesis",
            Self::ProtocolViolation => "protocol_violation",
            Self::Timeout => "timeout",
        }
    }

    /// A reason for logs and events.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Undecodable => "sent a message that does not decode",
            Self::Oversized => "sent a message over the size limit",
            Self::InvalidBlock => "sent an invalid block",
            Self::InvalidPiece => "sent an invalid piece",
            Self::InvalidPot => "sent an invalid proof of time",
            Self::InvalidState => "sent state that does not match its proof",
            Self::InvalidTransaction => "sent an invalid transaction",
            Self::WrongGenesis => "is on another chain (its genesis hash differs)",
            Self::ProtocolViolation => "broke a protocol's rules",
            Self::Timeout => "did not answer in time",
        }
    }
}

/// What a fault leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The peer stays, with this score.
    Kept {
        /// Its score now.
        score: i32,
    },
    /// The peer is banned until then.
    Banned {
        /// When the ban ends.
        until: Instant,
    },
}

#[derive(Debug, Clone, Copy)]
struct Score {
    value: f64,
    updated: Instant,
}

impl Score {
    fn at(self, now: Instant) -> f64 {
        let recovered = now.saturating_duration_since(self.updated).as_secs_f64() * RECOVERY_PER_SECOND;
        if self.value < 0.0 {
            (self.value + recovered).min(0.0)
        } else {
            self.value
        }
    }
}

/// Scores and bans of peers `K`.
#[derive(Debug)]
pub struct Reputation<K> {
    scores: HashMap<K, Score>,
    bans: HashMap<K, Instant>,
}

impl<K> Default for Reputation<K> {
    fn default() -> Self {
        Self {
            scores: HashMap::new(),
            bans: HashMap::new(),
        }
    }
}

impl<K: Clone + Eq + Hash> Reputation<K> {
    /// Records `fault` by `peer` at `now`.
    pub fn report(&mut self, peer: &K, fault: Fault, now: Instant) -> Verdict {
        if let Some(until) = self.banned_until(peer, now) {
            return Verdict::Banned { until };
        }
        let before = self.scores.get(peer).map_or(0.0, |score| score.at(now));
        let value = before - f64::from(fault.penalty());
        if fault.is_fatal() || value <= f64::from(BAN_THRESHOLD) {
            self.scores.remove(peer);
            let until = now + BAN_DURATION;
            let full = self.bans.len() >= MAX_TRACKED && !self.bans.contains_key(peer);
            if full
                && let Some(soonest) = self
                    .bans
                    .iter()
                    .min_by_key(|(_, until)| **until)
                    .map(|(key, _)| key.clone())
            {
                self.bans.remove(&soonest);
            }
            self.bans.insert(peer.clone(), until);
            return Verdict::Banned { until };
        }
        if self.scores.len() >= MAX_TRACKED && !self.scores.contains_key(peer) {
            let mildest = self
                .scores
                .iter()
                .max_by(|a, b| a.1.at(now).total_cmp(&b.1.at(now)))
                .map(|(key, _)| key.clone());
            if let Some(mildest) = mildest {
                self.scores.remove(&mildest);
            }
        }
        self.scores.insert(peer.clone(), Score { value, updated: now });
        Verdict::Kept {
            // The value is between the threshold and zero here.
            score: value.round() as i32,
        }
    }

    /// When `peer`'s ban ends, if it is banned at `now`.
    pub fn banned_until(&self, peer: &K, now: Instant) -> Option<Instant> {
        self.bans.get(peer).copied().filter(|until| *until > now)
    }

    /// `peer`'s score at `now` (0 for a peer with no faults; banned peers are not scored).
    pub fn score(&self, peer: &K, now: Instant) -> i32 {
        self.scores
            .get(peer)
            .map_or(0, |score| score.at(now).round() as i32)
    }

    /// Forgets the bans that ended by `now` and returns their peers (to let them in again), and forgets
    /// scores that have recovered fully.
    pub fn expire(&mut self, now: Instant) -> Vec<K> {
        let ended: Vec<K> = self
            .bans
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(key, _)| key.clone())
            .collect();
        for key in &ended {
            self.bans.remove(key);
        }
        self.scores.retain(|_, score| score.at(now) < 0.0);
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fatal_faults_ban_at_once_and_bans_end() {
        let mut reputation = Reputation::default();
        let now = Instant::now();
        assert_eq!(
            reputation.report(&1, Fault::InvalidPot, now),
            Verdict::Banned {
                until: now + BAN_DURATION
            }
        );
        assert!(reputation.banned_until(&1, now).is_some());
        assert!(
            reputation
                .expire(now + BAN_DURATION - Duration::from_secs(1))
                .is_empty()
        );
        assert_eq!(reputation.expire(now + BAN_DURATION), vec![1]);
        assert_eq!(reputation.banned_until(&1, now + BAN_DURATION), None);
    }

    #[test]
    fn repeated_faults_cross_the_threshold_and_time_heals_scores() {
        let mut reputation = Reputation::default();
        let now = Instant::now();
        assert_eq!(
            reputation.report(&7, Fault::Undecodable, now),
            Verdict::Kept { score: -25 }
        );
        assert_eq!(
            reputation.report(&7, Fault::Undecodable, now),
            Verdict::Kept { score: -50 }
        );
        // 30 s later, 30 points are back.
        let later = now + Duration::from_secs(30);
        assert_eq!(reputation.score(&7, later), -20);
        assert_eq!(
            reputation.report(&7, Fault::ProtocolViolation, later),
            Verdict::Kept { score: -45 }
        );
        assert_eq!(
            reputation.report(&7, Fault::Undecodable, later),
            Verdict::Kept { score: -70 }
        );
        assert!(matches!(
            reputation.report(&7, Fault::Oversized, later),
            Verdict::Kept { score: -95 }
        ));
        assert!(matches!(
            reputation.report(&7, Fault::Timeout, later),
            Verdict::Banned { .. }
        ));
        // A fully healed score is forgotten.
        assert_eq!(
            reputation.report(&8, Fault::Timeout, now),
            Verdict::Kept { score: -5 }
        );
        reputation.expire(now + Duration::from_secs(5));
        assert!(!reputation.scores.contains_key(&8));
    }

    #[test]
    fn memory_is_bounded() {
        let mut reputation = Reputation::default();
        let now = Instant::now();
        for peer in 0..MAX_TRACKED + 10 {
            reputation.report(&peer, Fault::Timeout, now);
            reputation.report(&(peer + 1_000_000), Fault::WrongGenesis, now);
        }
        assert_eq!(reputation.scores.len(), MAX_TRACKED);
        assert_eq!(reputation.bans.len(), MAX_TRACKED);
        // The newest ban is kept.
        assert!(
            reputation
                .banned_until(&(MAX_TRACKED + 9 + 1_000_000), now)
                .is_some()
        );
    }
}
