//! Structure-aware fuzzing of the decoders of untrusted bytes.
//!
//! Each [`Target`] generates a random *value* (a header, a body with votes and equivocation proofs, a
//! transaction…), encodes it, damages the encoding with one to three [mutations](mutate) and decodes the
//! result. Two properties are checked per input:
//!
//! - **no crash**: the decoder returns an error or a value, it never panics;
//! - **canonical**: for binary encodings, a value the decoder accepts re-encodes to exactly the input, so
//!   no two byte strings decode to one value (no malleable hashes) and damaged input is never mistaken
//!   for the original. (JSON, with its free whitespace, is checked for crashes only.)
//!
//! Runs are seeded: the same seed and input count give the same inputs.

use std::panic::{AssertUnwindSafe, catch_unwind};

use acre_consensus::blocks::{Body, Header, UnsealedHeader};
use acre_consensus::equivocation::{EquivocationProof, SignedClaim};
use acre_consensus::pieces::RecordRoot;
use acre_consensus::pot::{PotCheckpoints, PotOutput};
use acre_consensus::sectors::PublicKey;
use acre_consensus::segments::{LastArchivedBlock, SegmentHeader, SegmentRoot};
use acre_consensus::solutions::Solution;
use acre_consensus::votes::{SignedVote, Vote};
use acre_consensus::{
    Blake3Hash, BlockNumber, HistorySize, Piece, PieceOffset, ProtocolParams, SectorIndex, SegmentIndex,
    SlotNumber, SolutionRange, codec,
};
use acre_execution::{Address, SignedTransaction, Transfer};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What a decoder made of an input: rejected, or accepted with its re-encoding (`None` when the format
/// has no canonical form to compare, as JSON).
type Decoded = Result<Option<Vec<u8>>, ()>;

/// One decoder under test.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Its name in the table.
    pub name: &'static str,
    generate: fn(&mut ChaCha8Rng) -> Vec<u8>,
    decode: fn(&[u8]) -> Decoded,
}

/// What fuzzing one target found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The target's name.
    pub target: &'static str,
    /// Inputs decoded.
    pub inputs: u64,
    /// Inputs the decoder accepted (the rest it refused with an error).
    pub accepted: u64,
    /// Inputs that made the decoder panic.
    pub crashes: u64,
    /// Accepted inputs that do not re-encode to themselves.
    pub non_canonical: u64,
    /// The first input that crashed or was accepted non-canonically, for reproduction.
    pub first_failure: Option<Vec<u8>>,
}

/// Every target.
pub fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "header",
            generate: |rng| header(rng).encode(),
            decode: |bytes| binary(Header::decode(bytes).map(|value| value.encode())),
        },
        Target {
            name: "body",
            generate: |rng| body(rng).encode(),
            decode: |bytes| binary(Body::decode(bytes).map(|value| value.encode())),
        },
        Target {
            name: "segment_header",
            generate: |rng| codec::encode(&segment_header(rng)),
            decode: |bytes| binary(SegmentHeader::decode(bytes).map(|value| codec::encode(&value))),
        },
        Target {
            name: "piece",
            generate: |rng| {
                let mut bytes = vec![0u8; ProtocolParams::dev().piece_size()];
                rng.fill_bytes(&mut bytes);
                bytes
            },
            decode: |bytes| binary(Piece::decode(&ProtocolParams::dev(), bytes).map(|value| value.encode())),
        },
        Target {
            name: "solution",
            generate: |rng| codec::encode(&solution(rng)),
            decode: |bytes| {
                binary(
                    codec::decode_bounded::<Solution>("solution", bytes, 1 << 16)
                        .map(|value| codec::encode(&value)),
                )
            },
        },
        Target {
            name: "vote",
            generate: |rng| vote(rng).encode(),
            decode: |bytes| binary(SignedVote::decode(bytes).map(|value| value.encode())),
        },
        Target {
            name: "equivocation_proof",
            generate: |rng| codec::encode(&equivocation(rng)),
            decode: |bytes| {
                binary(
                    codec::decode_bounded::<EquivocationProof>("equivocation proof", bytes, 1 << 20)
                        .map(|value| codec::encode(&value)),
                )
            },
        },
        Target {
            name: "transaction",
            generate: |rng| transaction(rng).encode(),
            decode: |bytes| binary(SignedTransaction::decode(bytes).map(|value| value.encode())),
        },
        Target {
            name: "rpc_solution_submission",
            generate: |rng| {
                serde_json::to_vec(&acre_rpc_api::SolutionSubmission {
                    slot: rng.random(),
                    solution: acre_rpc_api::HexBytes(codec::encode(&solution(rng))),
                })
                .expect("serialises")
            },
            decode: |bytes| json::<acre_rpc_api::SolutionSubmission>(bytes),
        },
        Target {
            name: "rpc_block_seal",
            generate: |rng| {
                let mut signature = vec![0u8; 64];
                rng.fill_bytes(&mut signature);
                serde_json::to_vec(&acre_rpc_api::BlockSeal {
                    header_hash: acre_rpc_api::Hex32(rng.random()),
                    signature: acre_rpc_api::HexBytes(signature),
                })
                .expect("serialises")
            },
            decode: |bytes| json::<acre_rpc_api::BlockSeal>(bytes),
        },
    ]
}

fn binary<E>(result: Result<Vec<u8>, E>) -> Decoded {
    result.map(Some).map_err(|_| ())
}

fn json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Decoded {
    serde_json::from_slice::<T>(bytes).map(|_| None).map_err(|_| ())
}

/// Fuzzes `target` with `inputs` damaged encodings from `seed`.
pub fn fuzz(target: &Target, inputs: u64, seed: u64) -> Outcome {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ u64::from_le_bytes(*b"acrefuzz"));
    let mut outcome = Outcome {
        target: target.name,
        inputs: 0,
        accepted: 0,
        crashes: 0,
        non_canonical: 0,
        first_failure: None,
    };
    let mut valid = (target.generate)(&mut rng);
    for round in 0..inputs {
        // A fresh value every few inputs, several damages of each.
        if round % 8 == 0 {
            valid = (target.generate)(&mut rng);
        }
        let input = mutate(&mut rng, &valid);
        outcome.inputs += 1;
        match catch_unwind(AssertUnwindSafe(|| (target.decode)(&input))) {
            Err(_) => {
                outcome.crashes += 1;
                outcome.first_failure.get_or_insert(input);
            }
            Ok(Err(())) => {}
            Ok(Ok(reencoded)) => {
                outcome.accepted += 1;
                if reencoded.is_some_and(|reencoded| reencoded != input) {
                    outcome.non_canonical += 1;
                    outcome.first_failure.get_or_insert(input);
                }
            }
        }
    }
    outcome
}

/// Damages `bytes` one to three times: flip bits, truncate, extend, overwrite four bytes with a
/// length-like `u32` (borsh's length prefixes), duplicate or delete a run.
pub fn mutate(rng: &mut ChaCha8Rng, bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for _ in 0..rng.random_range(1..=3) {
        let len = out.len().max(1);
        let at = rng.random_range(0..len);
        match rng.random_range(0..6) {
            0 => {
                if let Some(byte) = out.get_mut(at) {
                    *byte ^= rng.random_range(1..=u8::MAX);
                }
            }
            1 => out.truncate(at),
            2 => {
                let extra: Vec<u8> = (0..rng.random_range(1..16)).map(|_| rng.random()).collect();
                out.extend(extra);
            }
            3 => {
                let value: u32 = match rng.random_range(0..5) {
                    0 => 0,
                    1 => 1,
                    2 => u32::MAX,
                    3 => rng.random_range(0..4096),
                    _ => rng.random(),
                };
                let end = (at + 4).min(out.len());
                if at < end {
                    out[at..end].copy_from_slice(&value.to_le_bytes()[..end - at]);
                }
            }
            4 => {
                let end = (at + rng.random_range(1..64)).min(out.len());
                let run = out.get(at..end).map(<[u8]>::to_vec).unwrap_or_default();
                out.splice(at..at, run);
            }
            _ => {
                let end = (at + rng.random_range(1..64)).min(out.len());
                if at < end {
                    out.drain(at..end);
                }
            }
        }
    }
    out
}

fn hash(rng: &mut ChaCha8Rng) -> Blake3Hash {
    Blake3Hash(rng.random())
}

fn bytes(rng: &mut ChaCha8Rng, max: usize) -> Vec<u8> {
    (0..rng.random_range(0..=max)).map(|_| rng.random()).collect()
}

fn nodes(rng: &mut ChaCha8Rng, max: usize) -> Vec<[u8; 32]> {
    (0..rng.random_range(0..=max)).map(|_| rng.random()).collect()
}

fn segment_header(rng: &mut ChaCha8Rng) -> SegmentHeader {
    SegmentHeader {
        version: SegmentHeader::VERSION,
        segment_index: SegmentIndex(rng.random()),
        segment_root: SegmentRoot(hash(rng)),
        prev_segment_header_hash: hash(rng),
        last_archived_block: LastArchivedBlock {
            number: BlockNumber(rng.random()),
            archived_progress: rng.random(),
        },
    }
}

fn solution(rng: &mut ChaCha8Rng) -> Solution {
    Solution {
        public_key: PublicKey(rng.random()),
        reward_address: rng.random(),
        sector_index: SectorIndex(rng.random()),
        history_size: HistorySize::new(rng.random_range(1..u64::MAX)).unwrap_or(HistorySize::ONE),
        piece_offset: PieceOffset(rng.random()),
        record_root: RecordRoot(hash(rng)),
        record_proof: nodes(rng, 8),
        chunk: rng.random(),
        chunk_proof: nodes(rng, 8),
        proof_of_space: bytes(rng, 160),
    }
}

fn unsealed(rng: &mut ChaCha8Rng) -> UnsealedHeader {
    UnsealedHeader {
        version: Header::VERSION,
        parent_hash: hash(rng),
        number: BlockNumber(rng.random()),
        slot: SlotNumber(rng.random()),
        pot_checkpoints: (0..rng.random_range(0..3))
            .map(|_| PotCheckpoints([PotOutput(rng.random()); 8]))
            .collect(),
        solution: rng.random_bool(0.8).then(|| solution(rng)),
        solution_range: SolutionRange(rng.random()),
        next_solution_range: rng.random_bool(0.2).then(|| SolutionRange(rng.random())),
        state_root: hash(rng),
        body_root: hash(rng),
    }
}

fn header(rng: &mut ChaCha8Rng) -> Header {
    let mut seal = [0u8; 64];
    rng.fill_bytes(&mut seal);
    Header {
        unsealed: unsealed(rng),
        seal,
    }
}

fn vote(rng: &mut ChaCha8Rng) -> SignedVote {
    let mut signature = [0u8; 64];
    rng.fill_bytes(&mut signature);
    SignedVote {
        vote: Vote {
            parent_hash: hash(rng),
            slot: SlotNumber(rng.random()),
            solution: solution(rng),
        },
        signature,
    }
}

fn claim(rng: &mut ChaCha8Rng) -> SignedClaim {
    if rng.random_bool(0.5) {
        SignedClaim::Block(header(rng))
    } else {
        SignedClaim::Vote(vote(rng))
    }
}

fn equivocation(rng: &mut ChaCha8Rng) -> EquivocationProof {
    EquivocationProof {
        first: claim(rng),
        second: claim(rng),
    }
}

fn transaction(rng: &mut ChaCha8Rng) -> SignedTransaction {
    let mut signature = [0u8; 64];
    rng.fill_bytes(&mut signature);
    SignedTransaction {
        version: SignedTransaction::VERSION,
        genesis_hash: hash(rng),
        transaction: Transfer {
            from: Address(rng.random()),
            to: Address(rng.random()),
            amount: rng.random(),
            fee: rng.random(),
            nonce: rng.random(),
        }
        .into(),
        signature,
    }
}

fn body(rng: &mut ChaCha8Rng) -> Body {
    Body {
        transactions: (0..rng.random_range(0..4))
            .map(|_| transaction(rng).encode())
            .collect(),
        segment_headers: (0..rng.random_range(0..3)).map(|_| segment_header(rng)).collect(),
        votes: (0..rng.random_range(0..3)).map(|_| vote(rng)).collect(),
        equivocations: (0..rng.random_range(0..2)).map(|_| equivocation(rng)).collect(),
        bundles: (0..rng.random_range(0..2))
            .map(|_| (0..rng.random_range(0..64)).map(|_| rng.random()).collect())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The harness finds what it is meant to find: a decoder that panics on some inputs, and one that
    /// accepts trailing bytes (a non-canonical encoding).
    #[test]
    fn crashes_and_non_canonical_acceptances_are_counted() {
        std::panic::set_hook(Box::new(|_| {}));
        let panicking = Target {
            name: "panicking",
            generate: |rng| bytes(rng, 32),
            decode: |bytes| {
                assert!(bytes.len() % 5 != 0, "a planted bug");
                Err(())
            },
        };
        let lenient = Target {
            name: "lenient",
            generate: |rng| codec::encode(&segment_header(rng)),
            decode: |bytes| {
                let header: SegmentHeader =
                    borsh::BorshDeserialize::deserialize(&mut &bytes[..]).map_err(|_| ())?;
                Ok(Some(codec::encode(&header)))
            },
        };
        assert!(fuzz(&panicking, 2_000, 0).crashes > 0);
        assert!(fuzz(&lenient, 2_000, 0).non_canonical > 0);
        assert_eq!(
            fuzz(&targets()[2], 2_000, 0).non_canonical,
            0,
            "the real decoder is strict"
        );
    }
}
