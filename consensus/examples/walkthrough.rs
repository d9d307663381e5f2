//! The whole protocol in one short, synchronous program: archive → plot → audit → prove → seal →
//! validate, with the real code of `acre-consensus`, `acre-storage` (without its database) and
//! `acre-farmer` (without its daemon), on the `dev` parameters with a fast proof of time.
//!
//! ```text
//! cargo run --release -p acre-consensus --example walkthrough
//! ```
//!
//! 1. **Archive**: genesis becomes segment 0: erasure-coded pieces committed to by a segment root.
//! 2. **Plot**: a farmer turns the pieces into a sector bound to its key, masked with proof-of-space.
//! 3. **Time**: a proof-of-time chain (sequential AES) ticks slots; each slot's output is its challenge.
//! 4. **Audit and prove**: each slot, the farmer audits one s-bucket of its sector; a chunk close enough
//!    to the challenge wins, and the farmer proves it into a solution.
//! 5. **Seal**: the solution goes into a header, which the farmer signs.
//! 6. **Validate**: the chain state machine judges the block from its parent's context alone and yields
//!    the child's context; the next block builds on it. A tampered block is refused with its reason.
//!
//! Nothing here is async, touches the disk or talks to a network.

use std::time::Instant;

use acre_consensus::blocks::{Body, Header, UnsealedHeader};
use acre_consensus::chain_state::{ChainContext, check_block};
use acre_consensus::pot::{self, PotCheckpoints, PotSeed, slot_challenge};
use acre_consensus::pot_chain::{NoPotCache, next_seed};
use acre_consensus::sectors::{PublicKey, SectorId};
use acre_consensus::{
    Blake3Hash, BlockNumber, HistorySize, ProtocolParams, SectorIndex, SegmentHeader, SlotNumber,
    SolutionRange,
};
use acre_farmer::auditing::audit_sector;
use acre_farmer::piece_source::InMemoryPieceSource;
use acre_farmer::plotting::plot_sector;
use acre_farmer::proving::prove;
use acre_storage::Archiver;
use ed25519_dalek::SigningKey;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let params = ProtocolParams {
        // Enough sequential AES to be a real chain, little enough to run in a blink.
        pot_iterations: 80_000,
        ..ProtocolParams::dev()
    };
    params.validate()?;

    // 1. Archive genesis into segment 0.
    let started = Instant::now();
    let mut archiver = Archiver::new(params.clone())?;
    archiver.add_block(BlockNumber(0), b"genesis: the history farmers will store")?;
    let segment = archiver.close_segment()?.ok_or("genesis fills a segment")?;
    let headers: Vec<SegmentHeader> = vec![segment.header];
    println!(
        "archived genesis into segment 0: {} pieces, root {} ({:.0?})",
        segment.pieces.len(),
        segment.header.segment_root.0,
        started.elapsed()
    );
    let source = InMemoryPieceSource::new(params.clone(), [segment]);

    // 2. Plot one sector for a farmer.
    let started = Instant::now();
    let key = SigningKey::from_bytes(&[42; 32]);
    let public_key = PublicKey(key.verifying_key().to_bytes());
    let sector = plot_sector(
        &params,
        &public_key.hash(),
        SectorIndex(0),
        HistorySize::ONE,
        params.max_pieces_per_sector,
        &source,
    )?;
    let sector_id = SectorId::new(&public_key.hash(), SectorIndex(0), HistorySize::ONE);
    println!(
        "plotted sector 0: {} pieces, {} KiB ({:.0?})",
        sector.metadata.pieces_in_sector,
        sector.bytes.len() / 1024,
        started.elapsed()
    );

    // 3–6. Slots tick; the farmer wins some; each win becomes a block the state machine judges.
    let genesis_seed = PotSeed([5; 16]);
    let mut slots: Vec<PotCheckpoints> = Vec::new();
    // A wide solution range so that a single sector wins every few slots.
    let mut context = ChainContext::genesis(Blake3Hash([9; 32]), SolutionRange(u64::MAX / 8));
    let mut slot = 0u64;
    let mut first_block = None;
    while context.number().0 < 3 {
        slot += 1;
        let covered = slot + params.block_authoring_delay;
        while (slots.len() as u64) < covered {
            let number = SlotNumber(slots.len() as u64 + 1);
            let seed = slots
                .last()
                .map_or(genesis_seed, |last| next_seed(&last.output(), number, &[]));
            slots.push(pot::prove(&seed, &seed.key(), params.pot_iterations)?);
        }
        let challenge = slot_challenge(&slots[slot as usize - 1].output(), SlotNumber(slot));
        let solution_range = context.child.era.solution_range;
        let wins = audit_sector(
            &params,
            &sector_id,
            &sector.metadata,
            &sector.bytes,
            &challenge,
            solution_range,
        )?;
        let Some(solution) = wins.iter().find_map(|win| {
            prove(
                &params,
                &public_key,
                [7; 32],
                &sector.metadata,
                &sector.bytes,
                win,
            )
            .ok()
        }) else {
            println!("slot {slot}: audited, no win");
            continue;
        };
        // Block 1 carries genesis' segment header: the branch's history so far.
        let body = Body {
            segment_headers: if context.number().0 == 0 {
                headers.clone()
            } else {
                Vec::new()
            },
            ..Body::default()
        };
        let parent = &context.child;
        let header = UnsealedHeader {
            version: Header::VERSION,
            parent_hash: parent.hash,
            number: BlockNumber(parent.number.0 + 1),
            slot: SlotNumber(slot),
            pot_checkpoints: slots[parent.pot_covered_slot.0 as usize..covered as usize].to_vec(),
            solution: Some(solution),
            solution_range,
            next_solution_range: None,
            // Executing transactions is the execution crate's job; the state machine leaves it to the
            // caller (`chain_state::check_state_root`).
            state_root: Blake3Hash([0; 32]),
            body_root: body.root(),
        }
        .seal(&key);
        let started = Instant::now();
        let verdict = check_block(
            &params,
            &genesis_seed,
            &context,
            &header,
            &body,
            &headers,
            &NoPotCache,
        )?;
        println!(
            "slot {slot}: won; block #{} {} is valid ({} slot(s) of proof of time verified in {:.0?})",
            header.unsealed.number.0,
            verdict.header.hash,
            verdict.header.slot_outputs.len(),
            started.elapsed()
        );
        first_block.get_or_insert((context.clone(), header, body));
        context = verdict.context;
    }

    // A tampered copy of the first block: the reward address is not the one the farmer sealed.
    let (parent, header, body) = first_block.ok_or("a first block")?;
    let mut tampered = header.clone();
    if let Some(solution) = tampered.unsealed.solution.as_mut() {
        solution.reward_address = [6; 32];
    }
    match check_block(
        &params,
        &genesis_seed,
        &parent,
        &tampered,
        &body,
        &headers,
        &NoPotCache,
    ) {
        Ok(_) => return Err("a tampered block must be refused".into()),
        Err(error) => println!("a tampered copy of block #1 is refused: {error}"),
    }
    Ok(())
}
