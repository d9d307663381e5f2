//! Proof-of-space tables for the parameter set's `k`, behind one type.
//!
//! `acre_consensus::pos::Table` is monomorphised over `k`; the farmer only knows `params.pos_k` at run
//! time, so this enum dispatches once per table instead of making every farmer function generic.

use acre_consensus::ProtocolParams;
use acre_consensus::SBucket;
use acre_consensus::pos::{ChallengeIndex, PosError, PosSeed, Proof, ProofQuality, Table};

/// A proof-of-space table for one record.
#[derive(Debug)]
pub enum PosTable {
    /// `k = 12` (the spec's original dev size).
    K12(Table<12>),
    /// `k = 16` (dev).
    K16(Table<16>),
    /// `k = 20` (mainnet).
    K20(Table<20>),
}

/// A proof found in a table: its bytes and its quality (the chunk mask).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundProof {
    /// The proof's encoding (`8·k` bytes).
    pub bytes: Vec<u8>,
    /// `H(pos_ctx, bytes)`.
    pub quality: ProofQuality,
}

impl PosTable {
    /// Builds the table for `seed` (single-threaded: plotting parallelises across records).
    pub fn generate(params: &ProtocolParams, seed: &PosSeed) -> Result<Self, PosError> {
        match params.pos_k {
            12 => Ok(Self::K12(Table::generate(seed))),
            16 => Ok(Self::K16(Table::generate(seed))),
            20 => Ok(Self::K20(Table::generate(seed))),
            k => Err(PosError::UnsupportedParams {
                k,
                s_buckets: params.s_buckets(),
            }),
        }
    }

    /// Builds the table for `seed` with every thread of the current rayon pool (proving: one table
    /// inside a slot's deadline); equal to [`Self::generate`].
    #[cfg(feature = "parallel")]
    pub fn generate_parallel(params: &ProtocolParams, seed: &PosSeed) -> Result<Self, PosError> {
        match params.pos_k {
            12 => Ok(Self::K12(Table::generate_parallel(seed))),
            16 => Ok(Self::K16(Table::generate_parallel(seed))),
            20 => Ok(Self::K20(Table::generate_parallel(seed))),
            k => Err(PosError::UnsupportedParams {
                k,
                s_buckets: params.s_buckets(),
            }),
        }
    }

    /// [`Self::generate_parallel`] if `all_cores` and the `parallel` feature is on, else [`Self::generate`].
    pub(crate) fn generate_on(
        params: &ProtocolParams,
        seed: &PosSeed,
        all_cores: bool,
    ) -> Result<Self, PosError> {
        #[cfg(feature = "parallel")]
        if all_cores {
            return Self::generate_parallel(params, seed);
        }
        let _ = all_cores;
        Self::generate(params, seed)
    }

    /// The canonical proof for `s_bucket`, if one exists.
    pub fn find_proof(
        &self,
        params: &ProtocolParams,
        s_bucket: SBucket,
    ) -> Result<Option<FoundProof>, PosError> {
        let challenge = ChallengeIndex::for_s_bucket(params, s_bucket)?;
        fn found<const K: u8>(proof: Option<Proof<K>>) -> Option<FoundProof> {
            proof.map(|proof| FoundProof {
                bytes: proof.as_bytes().to_vec(),
                quality: proof.quality(),
            })
        }
        Ok(match self {
            Self::K12(table) => found(table.find_proof(challenge)),
            Self::K16(table) => found(table.find_proof(challenge)),
            Self::K20(table) => found(table.find_proof(challenge)),
        })
    }

    /// The masks of every s-bucket in order (`None` where no proof exists), found in one batched search.
    pub fn masks(&self, params: &ProtocolParams) -> Result<Vec<Option<ProofQuality>>, PosError> {
        self.masks_on(params, false)
    }

    /// [`Self::masks`] with every thread of the current rayon pool (proving); the result is the same.
    #[cfg(feature = "parallel")]
    pub fn masks_parallel(&self, params: &ProtocolParams) -> Result<Vec<Option<ProofQuality>>, PosError> {
        self.masks_on(params, true)
    }

    /// [`Self::masks`], on every thread if `parallel` and the `parallel` feature is on.
    pub(crate) fn masks_on(
        &self,
        params: &ProtocolParams,
        parallel: bool,
    ) -> Result<Vec<Option<ProofQuality>>, PosError> {
        let challenges = (0..params.s_buckets())
            .map(|s| {
                ChallengeIndex::for_s_bucket(params, SBucket(u16::try_from(s).expect("s-buckets fit in u16")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        fn qualities<const K: u8>(proofs: Vec<Option<Proof<K>>>) -> Vec<Option<ProofQuality>> {
            proofs
                .into_iter()
                .map(|proof| proof.map(|proof| proof.quality()))
                .collect()
        }
        fn search<const K: u8>(
            table: &Table<K>,
            challenges: &[ChallengeIndex],
            parallel: bool,
        ) -> Vec<Option<Proof<K>>> {
            #[cfg(feature = "parallel")]
            if parallel {
                return table.find_proofs_parallel(challenges);
            }
            let _ = parallel;
            table.find_proofs(challenges)
        }
        Ok(match self {
            Self::K12(table) => qualities(search(table, &challenges, parallel)),
            Self::K16(table) => qualities(search(table, &challenges, parallel)),
            Self::K20(table) => qualities(search(table, &challenges, parallel)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_tables_have_proofs_for_more_than_half_the_s_buckets() {
        let params = ProtocolParams::dev();
        let mut total = 0;
        for seed in 0..4u8 {
            let table = PosTable::generate(&params, &PosSeed([seed; 32])).expect("dev k");
            total += table.masks(&params).expect("masks").iter().flatten().count();
        }
        let share = total as f64 / f64::from(4 * params.s_buckets());
        assert!(share > 0.52 && share < 0.66, "share {share}");
    }

    #[cfg(feature = "parallel")]
    #[test]
    fn parallel_tables_and_masks_equal_the_single_threaded_ones() {
        let params = ProtocolParams::dev();
        let seed = PosSeed([9; 32]);
        let single = PosTable::generate(&params, &seed).expect("dev k");
        let parallel = PosTable::generate_parallel(&params, &seed).expect("dev k");
        let masks = single.masks(&params).expect("masks");
        assert_eq!(parallel.masks(&params).expect("masks"), masks);
        assert_eq!(single.masks_parallel(&params).expect("masks"), masks);
    }
}
