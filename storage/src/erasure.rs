//! Reed-Solomon erasure coding over GF(2^16) with `reed-solomon-simd`.
//!
//! Two codes are used, both systematic (source shards first, then as many parity shards) and both
//! recoverable from any half of their shards:
//! - a record's chunks are extended 2× ([`extend_chunks`], [`recover_chunks`]): every chunk is a 32-byte
//!   shard, so a farmer can prove any s-bucket and decode a record from whichever half it kept;
//! - a segment's source records are extended 2× into parity records ([`encode_records`],
//!   [`recover_records`]). Records are large, so they are coded in stripes of [`STRIPE_BYTES`]: each stripe
//!   is an independent code over the same byte range of every record, which keeps the coder's working set
//!   in cache (4.5× faster than whole-record shards here) and lets rayon code stripes in parallel.
//!
//! The parity bytes are consensus: record roots commit to them. The crate version is pinned exactly in the
//! workspace manifest and conformance tests freeze the output.

use std::cell::RefCell;

use rayon::prelude::*;
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

use acre_consensus::params::{CHUNK_SIZE, Chunk};

use crate::error::Error;

/// Width of one stripe of record coding, in bytes.
pub const STRIPE_BYTES: usize = 8 * 1024;

thread_local! {
    static ENCODER: RefCell<Option<ReedSolomonEncoder>> = const { RefCell::new(None) };
    static DECODER: RefCell<Option<ReedSolomonDecoder>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's encoder reset to the given shape (the working space is reused).
fn with_encoder<T>(
    originals: usize,
    shard_bytes: usize,
    f: impl FnOnce(&mut ReedSolomonEncoder) -> Result<T, Error>,
) -> Result<T, Error> {
    ENCODER.with_borrow_mut(|slot| {
        let encoder = match slot {
            Some(encoder) => {
                encoder.reset(originals, originals, shard_bytes)?;
                encoder
            }
            None => slot.insert(ReedSolomonEncoder::new(originals, originals, shard_bytes)?),
        };
        f(encoder)
    })
}

/// Runs `f` with this thread's decoder reset to the given shape.
fn with_decoder<T>(
    originals: usize,
    shard_bytes: usize,
    f: impl FnOnce(&mut ReedSolomonDecoder) -> Result<T, Error>,
) -> Result<T, Error> {
    DECODER.with_borrow_mut(|slot| {
        let decoder = match slot {
            Some(decoder) => {
                decoder.reset(originals, originals, shard_bytes)?;
                decoder
            }
            None => slot.insert(ReedSolomonDecoder::new(originals, originals, shard_bytes)?),
        };
        f(decoder)
    })
}

/// Computes the parity chunks of a record: `parity.len() == source.len()`.
pub fn extend_chunks(source: &[Chunk], parity: &mut [Chunk]) -> Result<(), Error> {
    if parity.len() != source.len() {
        return Err(Error::WrongCount {
            what: "parity chunks",
            expected: source.len(),
            got: parity.len(),
        });
    }
    with_encoder(source.len(), CHUNK_SIZE, |encoder| {
        for chunk in source {
            encoder.add_original_shard(chunk)?;
        }
        let result = encoder.encode()?;
        for (out, shard) in parity.iter_mut().zip(result.recovery_iter()) {
            out.copy_from_slice(shard);
        }
        Ok(())
    })
}

/// Recovers a record's source chunks from its extended chunks, of which at least half are present
/// (`extended.len()` is twice the source count; source first, then parity).
pub fn recover_chunks(extended: &[Option<Chunk>]) -> Result<Vec<Chunk>, Error> {
    let originals = extended.len() / 2;
    let present = extended.iter().flatten().count();
    if !extended.len().is_multiple_of(2) || present < originals {
        return Err(Error::WrongCount {
            what: "present chunks",
            expected: originals,
            got: present,
        });
    }
    let mut source: Vec<Chunk> = extended[..originals]
        .iter()
        .map(|chunk| chunk.unwrap_or_default())
        .collect();
    if extended[..originals].iter().all(Option::is_some) {
        return Ok(source);
    }
    with_decoder(originals, CHUNK_SIZE, |decoder| {
        for (index, chunk) in extended.iter().enumerate() {
            if let Some(chunk) = chunk {
                if index < originals {
                    decoder.add_original_shard(index, chunk)?;
                } else {
                    decoder.add_recovery_shard(index - originals, chunk)?;
                }
            }
        }
        let result = decoder.decode()?;
        for (index, shard) in result.restored_original_iter() {
            source[index].copy_from_slice(shard);
        }
        Ok(())
    })?;
    Ok(source)
}

/// Byte ranges of the stripes of a `len`-byte record.
fn stripes(len: usize) -> impl IndexedParallelIterator<Item = std::ops::Range<usize>> {
    (0..len.div_ceil(STRIPE_BYTES))
        .into_par_iter()
        .map(move |stripe| stripe * STRIPE_BYTES..((stripe + 1) * STRIPE_BYTES).min(len))
}

/// Copies per-stripe outputs (`outputs[stripe][record]`) back into whole records of `len` bytes.
fn assemble(len: usize, count: usize, outputs: Vec<Vec<Vec<u8>>>) -> Vec<Vec<Chunk>> {
    let mut records = vec![vec![[0u8; CHUNK_SIZE]; len / CHUNK_SIZE]; count];
    for (stripe, stripe_outputs) in outputs.into_iter().enumerate() {
        let start = stripe * STRIPE_BYTES;
        for (record, bytes) in records.iter_mut().zip(stripe_outputs) {
            record.as_flattened_mut()[start..start + bytes.len()].copy_from_slice(&bytes);
        }
    }
    records
}

/// Computes as many parity records as there are source records (all of equal length), striped and in
/// parallel on the current rayon pool.
pub fn encode_records(source: &[&[Chunk]]) -> Result<Vec<Vec<Chunk>>, Error> {
    let chunks = source.first().map_or(0, |record| record.len());
    if let Some(record) = source.iter().find(|record| record.len() != chunks) {
        return Err(Error::WrongCount {
            what: "record chunks",
            expected: chunks,
            got: record.len(),
        });
    }
    let len = chunks * CHUNK_SIZE;
    let outputs = stripes(len)
        .map(|range| {
            with_encoder(source.len(), range.len(), |encoder| {
                for record in source {
                    encoder.add_original_shard(&record.as_flattened()[range.clone()])?;
                }
                Ok(encoder.encode()?.recovery_iter().map(<[u8]>::to_vec).collect())
            })
        })
        .collect::<Result<Vec<Vec<Vec<u8>>>, Error>>()?;
    Ok(assemble(len, source.len(), outputs))
}

/// Recovers every source record from any half of a segment's records (`records.len()` is twice the
/// source count; source first, then parity; all present records of equal length).
pub fn recover_records(records: &[Option<&[Chunk]>]) -> Result<Vec<Vec<Chunk>>, Error> {
    let originals = records.len() / 2;
    let present = records.iter().flatten().count();
    if !records.len().is_multiple_of(2) || present < originals {
        return Err(Error::WrongCount {
            what: "present records",
            expected: originals,
            got: present,
        });
    }
    let chunks = records.iter().flatten().next().map_or(0, |record| record.len());
    if let Some(record) = records.iter().flatten().find(|record| record.len() != chunks) {
        return Err(Error::WrongCount {
            what: "record chunks",
            expected: chunks,
            got: record.len(),
        });
    }
    let len = chunks * CHUNK_SIZE;
    if records[..originals].iter().all(Option::is_some) {
        return Ok(records[..originals]
            .iter()
            .flatten()
            .map(|record| record.to_vec())
            .collect());
    }
    let restored = stripes(len)
        .map(|range| {
            with_decoder(originals, range.len(), |decoder| {
                for (index, record) in records.iter().enumerate() {
                    let Some(record) = record else { continue };
                    let shard = &record.as_flattened()[range.clone()];
                    if index < originals {
                        decoder.add_original_shard(index, shard)?;
                    } else {
                        decoder.add_recovery_shard(index - originals, shard)?;
                    }
                }
                let result = decoder.decode()?;
                let mut stripe: Vec<Vec<u8>> = records[..originals]
                    .iter()
                    .map(|record| {
                        record.map_or_else(Vec::new, |record| record.as_flattened()[range.clone()].to_vec())
                    })
                    .collect();
                for (index, shard) in result.restored_original_iter() {
                    stripe[index] = shard.to_vec();
                }
                Ok(stripe)
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(assemble(len, originals, restored))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::seq::SliceRandom;
    use rand::{RngCore, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn random_chunks(rng: &mut ChaCha8Rng, count: usize) -> Vec<Chunk> {
        (0..count)
            .map(|_| {
                let mut chunk = [0u8; 32];
                rng.fill_bytes(&mut chunk);
                chunk
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, rng_seed: proptest::test_runner::RngSeed::Fixed(11), ..ProptestConfig::default() })]

        #[test]
        fn any_half_of_extended_chunks_recovers_the_source(seed: u64, log_count in 1u32..9) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let count = 1usize << log_count;
            let source = random_chunks(&mut rng, count);
            let mut parity = vec![[0u8; 32]; count];
            extend_chunks(&source, &mut parity).expect("valid shape");
            let mut extended: Vec<Option<Chunk>> = source.iter().chain(&parity).copied().map(Some).collect();
            let mut indices: Vec<usize> = (0..2 * count).collect();
            indices.shuffle(&mut rng);
            for &index in &indices[..count] {
                extended[index] = None;
            }
            prop_assert_eq!(recover_chunks(&extended).expect("half present"), source.clone());
            extended[indices[count]] = None;
            prop_assert!(recover_chunks(&extended).is_err());
        }

        #[test]
        fn any_half_of_records_recovers_the_source(seed: u64, log_count in 0u32..5, chunks in 1usize..800) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let count = 1usize << log_count;
            let source: Vec<Vec<Chunk>> = (0..count).map(|_| random_chunks(&mut rng, chunks)).collect();
            let refs: Vec<&[Chunk]> = source.iter().map(Vec::as_slice).collect();
            let parity = encode_records(&refs).expect("valid shape");
            let mut all: Vec<Option<&[Chunk]>> = refs.iter().copied().chain(parity.iter().map(Vec::as_slice)).map(Some).collect();
            let mut indices: Vec<usize> = (0..2 * count).collect();
            indices.shuffle(&mut rng);
            for &index in &indices[..count] {
                all[index] = None;
            }
            prop_assert_eq!(recover_records(&all).expect("half present"), source);
        }
    }
}
