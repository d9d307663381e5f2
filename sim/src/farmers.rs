//! Simulated farmers: each plots one sector of the genesis history with the farmer crate's real
//! plotting, audits it every slot with the real audit and proves wins with the real proving code.
//!
//! Proving a win builds the record's proof-of-space table (tens of milliseconds at `dev`'s k = 16), and a
//! run proves thousands of votes. A table depends only on the record, so each farmer builds it once per
//! record, on the record's first win, and keeps that record's proofs and chunk proofs for every s-bucket:
//! the same [`Solution`]s `acre_farmer::proving::prove` would return, at a lookup's cost.

use std::collections::HashMap;

use acre_consensus::sectors::{PublicKey, SectorId};
use acre_consensus::solutions::Solution;
use acre_consensus::{
    Blake3Hash, HistorySize, PieceOffset, ProtocolParams, SBucket, SectorIndex, SolutionRange,
};
use acre_farmer::auditing::{AuditWin, audit_sector};
use acre_farmer::piece_source::InMemoryPieceSource;
use acre_farmer::plotting::{PlottedSector, plot_sector};
use acre_farmer::reading::{decode_record, read_record_metadata};
use acre_storage::record::chunk_proof;
use ed25519_dalek::SigningKey;
use rayon::prelude::*;

use crate::SimError;

/// How a farmer behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Follows the protocol.
    Honest,
    /// Seals two different blocks for every slot it wins (spec 8: an equivocation).
    Equivocating,
}

/// What a record's proofs are, once its table is built.
#[derive(Debug, Clone)]
struct RecordProofs {
    record_root: acre_consensus::RecordRoot,
    record_proof: Vec<acre_consensus::merkle::Node>,
    /// By s-bucket: the proof of space and the chunk's proof in the record root.
    by_s_bucket: HashMap<SBucket, (Vec<u8>, Vec<acre_consensus::merkle::Node>)>,
}

/// One farmer: a key, a sector, and how it behaves.
#[derive(Debug)]
pub struct Farmer {
    /// The farmer's signing key.
    pub key: SigningKey,
    /// Its public key.
    pub public_key: PublicKey,
    /// Where its rewards go.
    pub reward_address: [u8; 32],
    /// Honest or not.
    pub behaviour: Behaviour,
    /// Pieces it plotted: its share of the pledged space.
    pub pieces: u16,
    /// Milliseconds its clock is off (it sees each slot this much later, or earlier if negative).
    pub skew_ms: i64,
    sector_id: SectorId,
    sector: PlottedSector,
    proofs: HashMap<PieceOffset, RecordProofs>,
}

impl Farmer {
    /// Plots a sector of `pieces` pieces of `source` for the farmer with secret `seed`.
    pub fn plot(
        params: &ProtocolParams,
        seed: [u8; 32],
        pieces: u16,
        behaviour: Behaviour,
        skew_ms: i64,
        source: &InMemoryPieceSource,
    ) -> Result<Self, SimError> {
        let key = SigningKey::from_bytes(&seed);
        let public_key = PublicKey(key.verifying_key().to_bytes());
        let sector = plot_sector(
            params,
            &public_key.hash(),
            SectorIndex(0),
            HistorySize::ONE,
            pieces,
            source,
        )?;
        let sector_id = SectorId::new(&public_key.hash(), SectorIndex(0), HistorySize::ONE);
        Ok(Self {
            reward_address: *blake3::hash(&public_key.0).as_bytes(),
            key,
            public_key,
            behaviour,
            pieces,
            skew_ms,
            sector_id,
            sector,
            proofs: HashMap::new(),
        })
    }

    /// Plots many farmers in parallel (plotting is deterministic, so the thread count changes nothing).
    pub fn plot_all(
        params: &ProtocolParams,
        specs: Vec<([u8; 32], u16, Behaviour, i64)>,
        source: &InMemoryPieceSource,
    ) -> Result<Vec<Self>, SimError> {
        specs
            .into_par_iter()
            .map(|(seed, pieces, behaviour, skew)| Self::plot(params, seed, pieces, behaviour, skew, source))
            .collect()
    }

    /// Chunks stored in each s-bucket of the farmer's sector.
    pub fn s_bucket_sizes(&self) -> &[u16] {
        &self.sector.metadata.s_bucket_sizes
    }

    /// The best win of the slot with `challenge` within `range`, if any.
    pub fn audit(
        &self,
        params: &ProtocolParams,
        challenge: &Blake3Hash,
        range: SolutionRange,
    ) -> Result<Option<AuditWin>, SimError> {
        let wins = audit_sector(
            params,
            &self.sector_id,
            &self.sector.metadata,
            &self.sector.bytes,
            challenge,
            range,
        )?;
        Ok(wins.into_iter().min_by_key(|win| win.distance))
    }

    /// The solution for `win`, paying `reward_address`; `None` if the win's s-bucket has no proof.
    pub fn solution(
        &mut self,
        params: &ProtocolParams,
        win: &AuditWin,
        reward_address: [u8; 32],
    ) -> Result<Option<Solution>, SimError> {
        let metadata = &self.sector.metadata;
        let records = read_record_metadata(params, metadata, &self.sector.bytes)?;
        let s = usize::from(win.s_bucket.0);
        let Some(offset) = records
            .iter()
            .enumerate()
            .filter(|(_, record)| record.has(s))
            .nth(win.position)
            .map(|(offset, _)| PieceOffset(offset as u16))
        else {
            return Ok(None);
        };
        if !self.proofs.contains_key(&offset) {
            let decoded = decode_record(
                params,
                &self.sector_id,
                metadata,
                &records,
                &self.sector.bytes,
                offset,
            )?;
            let mut by_s_bucket = HashMap::new();
            for s_bucket in (0..params.s_buckets()).map(|s| SBucket(s as u16)) {
                if !decoded.metadata.has(usize::from(s_bucket.0)) {
                    continue;
                }
                let Some(proof) = decoded.table.find_proof(params, s_bucket)? else {
                    continue;
                };
                let Some(chunk) = chunk_proof(&decoded.extended, s_bucket) else {
                    continue;
                };
                by_s_bucket.insert(s_bucket, (proof.bytes, chunk));
            }
            self.proofs.insert(
                offset,
                RecordProofs {
                    record_root: decoded.metadata.record_root,
                    record_proof: decoded.metadata.record_proof,
                    by_s_bucket,
                },
            );
        }
        let record = &self.proofs[&offset];
        let Some((proof_of_space, chunk_proof)) = record.by_s_bucket.get(&win.s_bucket) else {
            return Ok(None);
        };
        Ok(Some(Solution {
            public_key: self.public_key,
            reward_address,
            sector_index: metadata.sector_index,
            history_size: metadata.history_size,
            piece_offset: offset,
            record_root: record.record_root,
            record_proof: record.record_proof.clone(),
            chunk: win.chunk,
            chunk_proof: chunk_proof.clone(),
            proof_of_space: proof_of_space.clone(),
        }))
    }
}
