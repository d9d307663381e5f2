//! Authoring and validating headers on a small dev chain: a farmer's real solutions, sealed with its key,
//! on top of a real proof-of-time chain, pass `validate_header`; every kind of tampering is caught.

use acre_consensus::blocks::{Body, Header, UnsealedHeader};
use acre_consensus::chain_rules::Era;
use acre_consensus::equivocation::{EquivocationError, EquivocationProof, SignedClaim};
use acre_consensus::hashing::Blake3Hash;
use acre_consensus::pot::{self, PotCheckpoints, PotSeed, slot_challenge};
use acre_consensus::pot_chain::next_seed;
use acre_consensus::sectors::{PublicKey, SectorId};
use acre_consensus::solutions::SegmentRoots;
use acre_consensus::validation::{HeaderError, ParentInfo, validate_header};
use acre_consensus::{
    BlockNumber, HistorySize, ProtocolParams, SectorIndex, SegmentIndex, SegmentRoot, SlotNumber,
    SolutionRange,
};
use acre_farmer::auditing::audit_sector;
use acre_farmer::piece_source::{InMemoryPieceSource, PieceSource};
use acre_farmer::plotting::{PlottedSector, plot_sector};
use acre_farmer::proving::prove;
use acre_storage::Archiver;
use ed25519_dalek::SigningKey;

struct Chain<'a>(&'a InMemoryPieceSource);

impl SegmentRoots for Chain<'_> {
    fn segment_root(&self, index: SegmentIndex) -> Option<SegmentRoot> {
        self.0.segment_root(index)
    }
    fn history_size(&self) -> HistorySize {
        self.0.history_size().expect("genesis segment")
    }
}

/// A timekeeper's slots, proved on demand from the genesis seed.
struct Timekeeper {
    params: ProtocolParams,
    seed: PotSeed,
    slots: Vec<PotCheckpoints>,
}

impl Timekeeper {
    fn up_to(&mut self, slot: u64) -> &[PotCheckpoints] {
        while (self.slots.len() as u64) < slot {
            let number = SlotNumber(self.slots.len() as u64 + 1);
            let seed = self
                .slots
                .last()
                .map_or(self.seed, |last| next_seed(&last.output(), number, &[]));
            self.slots
                .push(pot::prove(&seed, &seed.key(), self.params.pot_iterations).expect("iterations"));
        }
        &self.slots
    }
}

struct Farmer {
    key: SigningKey,
    sector: PlottedSector,
    id: SectorId,
}

/// Finds the next slot after `after` with a provable win and returns the sealed header for it.
fn author(
    params: &ProtocolParams,
    timekeeper: &mut Timekeeper,
    farmer: &Farmer,
    parent: &ParentInfo,
    after: u64,
) -> Header {
    for slot in after + 1.. {
        let covered = slot + params.block_authoring_delay;
        let outputs = timekeeper.up_to(covered).to_vec();
        let challenge = slot_challenge(&outputs[slot as usize - 1].output(), SlotNumber(slot));
        let wins = audit_sector(
            params,
            &farmer.id,
            &farmer.sector.metadata,
            &farmer.sector.bytes,
            &challenge,
            parent.era.solution_range,
        )
        .expect("audits");
        let public_key = PublicKey(farmer.key.verifying_key().to_bytes());
        let Some(solution) = wins.iter().find_map(|win| {
            prove(
                params,
                &public_key,
                [1; 32],
                &farmer.sector.metadata,
                &farmer.sector.bytes,
                win,
            )
            .ok()
        }) else {
            continue;
        };
        let unsealed = UnsealedHeader {
            version: Header::VERSION,
            parent_hash: parent.hash,
            number: BlockNumber(parent.number.0 + 1),
            slot: SlotNumber(slot),
            pot_checkpoints: outputs[parent.pot_covered_slot.0 as usize..covered as usize].to_vec(),
            solution: Some(solution),
            solution_range: parent.era.solution_range,
            next_solution_range: None,
            state_root: Blake3Hash([2; 32]),
            body_root: Body::default().root(),
        };
        return unsealed.seal(&farmer.key);
    }
    unreachable!("some slot wins")
}

#[test]
fn authored_headers_validate_and_tampering_is_caught() {
    let params = ProtocolParams {
        pot_iterations: 800,
        ..ProtocolParams::dev()
    };
    let mut archiver = Archiver::new(params.clone()).expect("valid params");
    archiver
        .add_block(BlockNumber(0), b"genesis block")
        .expect("archives");
    let genesis_segment = archiver.close_segment().expect("closes").expect("genesis data");
    let source = InMemoryPieceSource::new(params.clone(), [genesis_segment]);
    let chain = Chain(&source);

    let key = SigningKey::from_bytes(&[42; 32]);
    let public_key_hash = PublicKey(key.verifying_key().to_bytes()).hash();
    let sector = plot_sector(
        &params,
        &public_key_hash,
        SectorIndex(0),
        HistorySize::ONE,
        16,
        &source,
    )
    .expect("plots");
    let id = SectorId::new(&public_key_hash, SectorIndex(0), HistorySize::ONE);
    let farmer = Farmer { key, sector, id };

    let genesis_seed = PotSeed([5; 16]);
    let mut timekeeper = Timekeeper {
        params: params.clone(),
        seed: genesis_seed,
        slots: Vec::new(),
    };
    // A wide range so wins come every few slots.
    let era = Era {
        solution_range: SolutionRange(u64::MAX / 8),
        start_slot: SlotNumber(0),
    };
    let genesis = ParentInfo {
        hash: Blake3Hash([9; 32]),
        number: BlockNumber(0),
        slot: SlotNumber(0),
        pot_covered_slot: SlotNumber(0),
        pot_recent_outputs: Vec::new(),
        era,
    };

    // Three blocks in a row validate, each building on the last.
    let mut parent = genesis.clone();
    let mut headers = Vec::new();
    for _ in 0..3 {
        let header = author(&params, &mut timekeeper, &farmer, &parent, parent.slot.0);
        let valid =
            validate_header(&params, &header, &parent, &genesis_seed, &[], &chain).expect("valid header");
        assert_eq!(valid.hash, header.hash());
        headers.push((parent.clone(), header));
        parent = valid.child_parent_info;
    }

    let (first_parent, first) = &headers[0];
    let check = |header: &Header| validate_header(&params, header, first_parent, &genesis_seed, &[], &chain);

    let mut wrong_parent = first.unsealed.clone();
    wrong_parent.parent_hash = Blake3Hash([8; 32]);
    assert!(matches!(
        check(&wrong_parent.seal(&farmer.key)),
        Err(HeaderError::NotAChild(_))
    ));

    let mut bad_seal = first.clone();
    bad_seal.seal[0] ^= 1;
    assert!(matches!(check(&bad_seal), Err(HeaderError::Seal(_))));

    let mut bad_pot = first.unsealed.clone();
    bad_pot.pot_checkpoints[0].0[3].0[0] ^= 1;
    assert!(matches!(
        check(&bad_pot.seal(&farmer.key)),
        Err(HeaderError::ProofOfTime(_))
    ));

    let mut missing_pot = first.unsealed.clone();
    missing_pot.pot_checkpoints.pop();
    assert!(matches!(
        check(&missing_pot.seal(&farmer.key)),
        Err(HeaderError::PotSlotCount { .. })
    ));

    let mut bad_range = first.unsealed.clone();
    bad_range.solution_range = SolutionRange(bad_range.solution_range.0 - 1);
    assert!(matches!(
        check(&bad_range.seal(&farmer.key)),
        Err(HeaderError::SolutionRange { .. })
    ));

    let mut bad_solution = first.unsealed.clone();
    if let Some(solution) = bad_solution.solution.as_mut() {
        solution.chunk[0] ^= 1;
    }
    assert!(matches!(
        check(&bad_solution.seal(&farmer.key)),
        Err(HeaderError::Solution(_))
    ));

    // Another key sealing the same solution fails the seal, not the solution.
    let thief = SigningKey::from_bytes(&[43; 32]);
    assert!(matches!(
        check(&first.unsealed.clone().seal(&thief)),
        Err(HeaderError::Seal(_))
    ));

    // Two different blocks sealed by one key for one slot are an equivocation, whatever differs (here
    // only the state root; the reward address is not bound by the solution either), and the proof of it
    // needs only the two seals.
    let mut twin = first.unsealed.clone();
    twin.state_root = Blake3Hash([3; 32]);
    let twin = twin.seal(&farmer.key);
    assert!(check(&twin).is_ok(), "the twin is valid on its own");
    let proof = EquivocationProof {
        first: SignedClaim::Block(first.clone()),
        second: SignedClaim::Block(twin.clone()),
    };
    assert_eq!(
        proof.verify(),
        Ok(PublicKey(farmer.key.verifying_key().to_bytes()))
    );
    let same = EquivocationProof {
        first: SignedClaim::Block(first.clone()),
        second: SignedClaim::Block(first.clone()),
    };
    assert_eq!(same.verify(), Err(EquivocationError::Identical));
    let (_, later) = &headers[1];
    let other_slot = EquivocationProof {
        first: SignedClaim::Block(first.clone()),
        second: SignedClaim::Block(later.clone()),
    };
    assert_eq!(other_slot.verify(), Err(EquivocationError::NotTheSameSlot));
    let mut forged = twin;
    forged.seal[5] ^= 1;
    let forged = EquivocationProof {
        first: SignedClaim::Block(first.clone()),
        second: SignedClaim::Block(forged),
    };
    assert!(matches!(forged.verify(), Err(EquivocationError::Seal(_))));
}
