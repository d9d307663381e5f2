//! Bundle election (DOMAINS.md 4): which operators may submit a bundle in a slot.
//!
//! Each operator proves a schnorrkel VRF over a transcript of the domain and the slot's global challenge
//! (PROTOCOL.md 6) with its operator key. Nobody can predict another operator's output or choose its own,
//! and anybody can check it against the operator's public key. The operator wins when the output, as a
//! number, is below its threshold, a fraction of `u128::MAX` proportional to its share of the domain's
//! stake, scaled so that `n/d` operators win per slot on average whatever the stake split.
//!
//! **The output.** Schnorrkel's VRF yields a curve point (the pre-output, which travels in the bundle
//! header) from which uniform bytes are derived with `make_bytes`, binding input and output (the 2Hash-DH
//! construction). The spec's "VRF output" is those 32 derived bytes under the label
//! `acre-bundle-vrf-output` ([`VrfProof::verify`] returns them): the election reads their first 16 bytes
//! as a little-endian `u128`, and the transaction range measures from the same number
//! (docs/decisions.md, "Bundle election").

use borsh::{BorshDeserialize, BorshSerialize};
use merlin::Transcript;
use schnorrkel::vrf::{VRFPreOut, VRFProof};
use schnorrkel::{Keypair, PublicKey};

use acre_consensus::hashing::Blake3Hash;

use crate::domains::DomainId;
use crate::error::ExecutionError;
use crate::staking::Balance;

/// The transcript label (DOMAINS.md 4).
pub const ELECTION_LABEL: &[u8] = b"acre-bundle-election";

/// The `make_bytes` label of the election output.
const OUTPUT_LABEL: &[u8] = b"acre-bundle-vrf-output";

/// The VRF transcript of `domain` in the slot with global challenge `challenge`.
pub fn transcript(domain: DomainId, challenge: &Blake3Hash) -> Transcript {
    let mut transcript = Transcript::new(ELECTION_LABEL);
    transcript.append_message(b"domain", &domain.0.to_le_bytes());
    transcript.append_message(b"challenge", &challenge.0);
    transcript
}

/// A VRF pre-output and its proof, as bundle headers carry them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct VrfProof {
    /// The pre-output (a compressed Ristretto point).
    pub output: [u8; 32],
    /// The DLEQ proof.
    pub proof: [u8; 64],
}

/// The election's number from a verified VRF output: its first 16 bytes, little-endian.
pub fn election_value(output: &[u8; 32]) -> u128 {
    let mut low = [0u8; 16];
    low.copy_from_slice(&output[..16]);
    u128::from_le_bytes(low)
}

impl VrfProof {
    /// Proves the election of `domain` for `challenge` with `keypair`; also returns the VRF output.
    pub fn prove(keypair: &Keypair, domain: DomainId, challenge: &Blake3Hash) -> (Self, [u8; 32]) {
        let (inout, proof, _) = keypair.vrf_sign(transcript(domain, challenge));
        let output: [u8; 32] = inout.make_bytes(OUTPUT_LABEL);
        (
            Self {
                output: inout.to_preout().to_bytes(),
                proof: proof.to_bytes(),
            },
            output,
        )
    }

    /// Verifies the proof against `public_key` for `domain` and `challenge`; returns the VRF output.
    /// Every malformed part (key, point, proof) and a proof that does not verify are one error: the
    /// proof is bad.
    pub fn verify(
        &self,
        public_key: &[u8; 32],
        domain: DomainId,
        challenge: &Blake3Hash,
    ) -> Result<[u8; 32], ExecutionError> {
        let public = PublicKey::from_bytes(public_key).map_err(|_| ExecutionError::InvalidOperatorKey)?;
        let preout = VRFPreOut::from_bytes(&self.output).map_err(|_| ExecutionError::BadVrf)?;
        let proof = VRFProof::from_bytes(&self.proof).map_err(|_| ExecutionError::BadVrf)?;
        let (inout, _) = public
            .vrf_verify(transcript(domain, challenge), &preout, &proof)
            .map_err(|_| ExecutionError::BadVrf)?;
        Ok(inout.make_bytes(OUTPUT_LABEL))
    }
}

/// The slot-probability `numerator / denominator` of a domain's bundles (expected bundles per slot).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, serde::Serialize, serde::Deserialize,
)]
pub struct SlotProbability {
    /// n.
    pub numerator: u64,
    /// d.
    pub denominator: u64,
}

/// An operator's threshold: `(u128::MAX / d) × n / total_stake × operator_stake`, left to right in
/// `u128` with integer division (DOMAINS.md 4). Zero when there is no stake, no operator stake, or the
/// probability is invalid (`d = 0` or `n > d`, which the registry refuses); never overflows otherwise,
/// since `n ≤ d` and `operator_stake ≤ total_stake`.
pub fn threshold(probability: SlotProbability, total_stake: Balance, operator_stake: Balance) -> u128 {
    let SlotProbability {
        numerator,
        denominator,
    } = probability;
    if denominator == 0 || numerator > denominator || total_stake == 0 || operator_stake > total_stake {
        return 0;
    }
    (u128::MAX / u128::from(denominator))
        .checked_mul(u128::from(numerator))
        .and_then(|scaled| (scaled / total_stake).checked_mul(operator_stake))
        .unwrap_or(0)
}

/// Whether an operator with `threshold` won with VRF `output`: strictly below.
pub fn is_elected(output: &[u8; 32], threshold: u128) -> bool {
    election_value(output) < threshold
}

/// The operator (sr25519) keypair derived from a 32-byte account secret:
/// `MiniSecretKey(blake3::derive_key("acre operator key v1", secret))`, expanded the ed25519 way. One
/// key file then serves both as the owner's consensus account and as its operator's signing key, and
/// the two never share key material.
pub fn operator_keypair(secret: &[u8; 32]) -> schnorrkel::Keypair {
    let seed = blake3::derive_key("acre operator key v1", secret);
    schnorrkel::MiniSecretKey::from_bytes(&seed)
        .map(|key| key.expand_to_keypair(schnorrkel::ExpansionMode::Ed25519))
        .unwrap_or_else(|_| unreachable!("a mini secret key is any 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use schnorrkel::{ExpansionMode, MiniSecretKey};

    fn keypair(seed: u8) -> Keypair {
        MiniSecretKey::from_bytes(&[seed; 32])
            .expect("32 bytes")
            .expand_to_keypair(ExpansionMode::Ed25519)
    }

    #[test]
    fn proofs_verify_for_their_key_domain_and_challenge_only() {
        let key = keypair(1);
        let challenge = Blake3Hash([7; 32]);
        let (proof, output) = VrfProof::prove(&key, DomainId(0), &challenge);
        let public = key.public.to_bytes();
        assert_eq!(proof.verify(&public, DomainId(0), &challenge), Ok(output));
        assert_eq!(
            proof.verify(&public, DomainId(1), &challenge),
            Err(ExecutionError::BadVrf)
        );
        assert_eq!(
            proof.verify(&public, DomainId(0), &Blake3Hash([8; 32])),
            Err(ExecutionError::BadVrf)
        );
        assert_eq!(
            proof.verify(&keypair(2).public.to_bytes(), DomainId(0), &challenge),
            Err(ExecutionError::BadVrf)
        );
        let mut tampered = proof;
        tampered.proof[3] ^= 1;
        assert_eq!(
            tampered.verify(&public, DomainId(0), &challenge),
            Err(ExecutionError::BadVrf)
        );
        let mut tampered = proof;
        tampered.output[0] ^= 1;
        assert_eq!(
            tampered.verify(&public, DomainId(0), &challenge),
            Err(ExecutionError::BadVrf)
        );
        // The output is a function of key and input: proving again gives the same.
        assert_eq!(VrfProof::prove(&key, DomainId(0), &challenge).1, output);
    }

    #[test]
    fn thresholds_follow_the_spec_formula() {
        let one = SlotProbability {
            numerator: 1,
            denominator: 1,
        };
        assert_eq!(threshold(one, 100, 100), u128::MAX / 100 * 100);
        assert_eq!(threshold(one, 100, 25), u128::MAX / 100 * 25);
        let half = SlotProbability {
            numerator: 1,
            denominator: 2,
        };
        assert_eq!(threshold(half, 3, 1), u128::MAX / 2 / 3);
        assert_eq!(threshold(half, 0, 0), 0);
        assert_eq!(
            threshold(
                SlotProbability {
                    numerator: 3,
                    denominator: 2
                },
                1,
                1
            ),
            0
        );
        // Stakes in the 10^27 range do not overflow.
        let total = 10u128.pow(27);
        assert_eq!(threshold(one, total, total / 4), u128::MAX / total * (total / 4));
    }

    #[test]
    fn operators_win_in_proportion_to_stake() {
        // Two operators with stakes 3:1 and one expected winner per slot: over 4,000 slots the first
        // wins about 3/4 of the slots, the second 1/4 (each within 5 standard deviations).
        let probability = SlotProbability {
            numerator: 1,
            denominator: 1,
        };
        let (big, small) = (keypair(1), keypair(2));
        let (big_threshold, small_threshold) = (threshold(probability, 4, 3), threshold(probability, 4, 1));
        let slots = 4_000u32;
        let (mut big_wins, mut small_wins) = (0u32, 0u32);
        for slot in 0..slots {
            let challenge = acre_consensus::hashing::hash(
                acre_consensus::hashing::HashContext::SlotChallenge,
                &slot.to_le_bytes(),
            );
            if is_elected(&VrfProof::prove(&big, DomainId(0), &challenge).1, big_threshold) {
                big_wins += 1;
            }
            if is_elected(
                &VrfProof::prove(&small, DomainId(0), &challenge).1,
                small_threshold,
            ) {
                small_wins += 1;
            }
        }
        // Binomial(4000, 3/4): mean 3000, sd 27.4; Binomial(4000, 1/4): mean 1000, sd 27.4.
        assert!((2863..=3137).contains(&big_wins), "{big_wins}");
        assert!((863..=1137).contains(&small_wins), "{small_wins}");
    }
}
