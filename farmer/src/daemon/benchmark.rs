//! `acre-farmer benchmark audit|prove FARM`: how long this disk and CPU take to audit a farm for one slot,
//! and to prove one win, against the time the protocol allows, with a plain verdict.
//!
//! Auditing reads one s-bucket of every plotted sector per slot; it must finish well within a slot (half
//! of it here, so proving has the rest). A proof must be ready `block_authoring_delay` slots after its
//! slot. The slot time is set by the proof-of-time chain (about a second on mainnet) and is given with
//! `--slot-ms`. Challenges are derived from a counter, so runs are repeatable.

use std::time::{Duration, Instant};

use acre_consensus::hashing::Blake3Hash;
use acre_consensus::sectors::{PublicKey, SectorId};
use acre_consensus::{ProtocolParams, SolutionRange};

use crate::auditing::{AuditWin, audit_sector};
use crate::error::Error;
use crate::plot_file::Farm;
use crate::proving::prove;
use crate::sector::SectorMetadata;

/// The challenge of benchmark slot `n`.
fn challenge(n: u64) -> Blake3Hash {
    Blake3Hash(*blake3::hash(&n.to_le_bytes()).as_bytes())
}

/// Audits every plotted sector of `farm` against `challenge` within `range`; the wins with their
/// sectors.
fn audit_all(
    params: &ProtocolParams,
    farm: &Farm,
    challenge: &Blake3Hash,
    range: SolutionRange,
) -> Result<Vec<(SectorMetadata, AuditWin)>, Error> {
    let public_key_hash = farm.header().public_key_hash;
    let mut wins = Vec::new();
    for metadata in farm.plotted() {
        let sector_id = SectorId::new(&public_key_hash, metadata.sector_index, metadata.history_size);
        let reader = farm.reader(metadata.sector_index);
        let found = audit_sector(params, &sector_id, metadata, &reader, challenge, range)?;
        wins.extend(found.into_iter().map(|win| (metadata.clone(), win)));
    }
    Ok(wins)
}

/// Times auditing the whole farm for `slots` slots.
pub fn audit(params: &ProtocolParams, farm: &Farm, slots: u64) -> Result<Vec<Duration>, Error> {
    (0..slots)
        .map(|n| {
            let started = Instant::now();
            audit_all(params, farm, &challenge(n), SolutionRange(0))?;
            Ok(started.elapsed())
        })
        .collect()
}

/// Times `proofs` proofs of wins found in the farm (any chunk wins: the range is the widest).
pub fn prove_wins(
    params: &ProtocolParams,
    farm: &Farm,
    public_key: &PublicKey,
    proofs: usize,
) -> Result<Vec<Duration>, Error> {
    if public_key.hash() != farm.header().public_key_hash {
        return Err(Error::InvalidConfig(
            "the key given is not the key this farm was plotted for".into(),
        ));
    }
    let mut timings = Vec::new();
    for n in 0..(proofs as u64) * 4 {
        if timings.len() >= proofs {
            break;
        }
        let wins = audit_all(params, farm, &challenge(n), SolutionRange(u64::MAX))?;
        if let Some((metadata, win)) = wins.first() {
            let reader = farm.reader(metadata.sector_index);
            let started = Instant::now();
            prove(params, public_key, [0; 32], metadata, &reader, win)?;
            timings.push(started.elapsed());
        }
    }
    Ok(timings)
}

/// The median and the worst of `timings`.
pub fn median_and_worst(timings: &[Duration]) -> Option<(Duration, Duration)> {
    let mut sorted = timings.to_vec();
    sorted.sort();
    Some((*sorted.get(sorted.len() / 2)?, *sorted.last()?))
}

/// A plain verdict: `what` took `median`/`worst` of `allowed`.
pub fn verdict(what: &str, timings: &[Duration], allowed: Duration) -> String {
    let Some((median, worst)) = median_and_worst(timings) else {
        return format!("{what}: nothing to measure (no plotted sector, or no win found)");
    };
    let share = worst.as_secs_f64() / allowed.as_secs_f64().max(1e-9) * 100.0;
    let judgement = if worst <= allowed / 2 {
        "OK: well within the time allowed"
    } else if worst <= allowed {
        "TIGHT: within the time allowed, but a busier machine will miss some"
    } else {
        "TOO SLOW: this will miss deadlines; use a faster disk or CPU, a smaller farm, or fewer plotting threads"
    };
    format!(
        "{what}: median {:.1} ms, worst {:.1} ms over {} runs, of {} ms allowed ({share:.0} %). {judgement}.",
        median.as_secs_f64() * 1000.0,
        worst.as_secs_f64() * 1000.0,
        timings.len(),
        allowed.as_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_compare_the_worst_case_with_the_allowance() {
        let ms = Duration::from_millis;
        let allowed = ms(1000);
        assert!(
            verdict("audit", &[ms(10), ms(20), ms(30)], allowed)
                .contains("median 20.0 ms, worst 30.0 ms over 3 runs, of 1000 ms allowed (3 %). OK")
        );
        assert!(verdict("audit", &[ms(700)], allowed).contains("TIGHT"));
        assert!(verdict("prove", &[ms(1500)], allowed).contains("TOO SLOW"));
        assert!(verdict("prove", &[], allowed).contains("nothing to measure"));
    }
}
