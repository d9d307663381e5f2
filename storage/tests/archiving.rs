//! Property tests of the archiving pipeline with the `dev` parameters: archive → reconstruct is the
//! identity, pieces verify exactly where they belong, any half rebuilds a segment, and restarts never
//! change the segments produced.

use acre_consensus::{BlockNumber, Piece, PiecePosition, ProtocolParams, SegmentHeader, SegmentRoot};
use acre_storage::{
    ArchivedSegment, Archiver, BlockReconstructor, rebuild_piece, rebuild_pieces, recover_segment,
};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(0xac3e),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Random blocks: mostly small, some empty, some larger than a whole segment.
fn random_blocks(seed: u64, count: usize, segment_size: usize) -> Vec<Vec<u8>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let len = match rng.random_range(0..10) {
                0 => 0,
                1 => rng.random_range(segment_size..3 * segment_size),
                2 => segment_size - rng.random_range(0..200),
                _ => rng.random_range(1..segment_size / 3),
            };
            let mut block = vec![0u8; len];
            rng.fill_bytes(&mut block);
            block
        })
        .collect()
}

fn archive(params: &ProtocolParams, blocks: &[Vec<u8>]) -> Vec<ArchivedSegment> {
    let mut archiver = Archiver::new(params.clone()).expect("valid params");
    let mut segments = Vec::new();
    for (number, block) in blocks.iter().enumerate() {
        segments.extend(
            archiver
                .add_block(BlockNumber(number as u64), block)
                .expect("archives"),
        );
    }
    segments.extend(archiver.close_segment().expect("closes"));
    segments
}

fn reconstruct(
    params: &ProtocolParams,
    segments: &[ArchivedSegment],
    drop_seed: u64,
) -> Vec<(BlockNumber, Vec<u8>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(drop_seed);
    let mut reconstructor = BlockReconstructor::new();
    let mut blocks = Vec::new();
    for segment in segments {
        let mut pieces: Vec<Option<Piece>> = segment.pieces.iter().cloned().map(Some).collect();
        let mut positions: Vec<usize> = (0..pieces.len()).collect();
        positions.shuffle(&mut rng);
        for &position in &positions[..pieces.len() / 2] {
            pieces[position] = None;
        }
        let recovered = recover_segment(params, &segment.header, &pieces).expect("half the pieces suffice");
        blocks.extend(
            reconstructor
                .add_segment(&segment.header, &recovered.segment_bytes())
                .expect("valid segment"),
        );
    }
    blocks
}

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn archive_then_reconstruct_is_the_identity(seed: u64, count in 1usize..12) {
        let params = ProtocolParams::dev();
        let blocks = random_blocks(seed, count, params.segment_size());
        let segments = archive(&params, &blocks);
        for pair in segments.windows(2) {
            prop_assert!(pair[1].header.follows(&pair[0].header));
        }
        let rebuilt = reconstruct(&params, &segments, seed ^ 1);
        let expected: Vec<_> = blocks.into_iter().enumerate().map(|(n, b)| (BlockNumber(n as u64), b)).collect();
        prop_assert_eq!(rebuilt, expected);
    }

    #[test]
    fn resuming_from_any_header_produces_the_same_segments(seed: u64, count in 1usize..10) {
        let params = ProtocolParams::dev();
        let blocks = random_blocks(seed, count, params.segment_size());
        let mut archiver = Archiver::new(params.clone()).expect("valid params");
        let mut reference = Vec::new();
        for (number, block) in blocks.iter().enumerate() {
            reference.extend(archiver.add_block(BlockNumber(number as u64), block).expect("archives"));
        }
        // Restart after every sealed segment and replay the blocks after it.
        for (i, segment) in reference.iter().enumerate() {
            let last = segment.header.last_archived_block;
            let partial = (!last.is_complete()).then(|| blocks[last.number.0 as usize].as_slice());
            let (mut resumed, mut produced) = Archiver::resume(params.clone(), segment.header, partial).expect("resumes");
            for (number, block) in blocks.iter().enumerate().skip(last.number.0 as usize + 1) {
                produced.extend(resumed.add_block(BlockNumber(number as u64), block).expect("archives"));
            }
            let produced_headers: Vec<SegmentHeader> = produced.iter().map(|s| s.header).collect();
            let expected_headers: Vec<SegmentHeader> = reference[i + 1..].iter().map(|s| s.header).collect();
            prop_assert_eq!(produced_headers, expected_headers);
        }
    }
}

/// A segment filled with random data, so all its records differ. (Identical records, such as the zero
/// records of padding, verify at each other's positions: they are the same bytes.)
fn one_segment(seed: u64) -> (ProtocolParams, ArchivedSegment) {
    let params = ProtocolParams::dev();
    let mut block = vec![0u8; params.segment_size() + 1000];
    ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut block);
    let segment = archive(&params, &[block]).swap_remove(0);
    (params, segment)
}

proptest! {
    #![proptest_config(config(16))]

    #[test]
    fn pieces_verify_only_at_their_position_and_root(seed: u64) {
        let (params, segment) = one_segment(seed);
        let root = segment.header.segment_root;
        let mut other_root = root;
        other_root.0.0[0] ^= 1;
        for (position, piece) in segment.pieces.iter().enumerate() {
            let position = PiecePosition(position as u16);
            prop_assert!(piece.verify(&params, &root, position).is_ok());
            prop_assert!(piece.verify(&params, &other_root, position).is_err());
            let elsewhere = PiecePosition((position.0 + 1) % params.pieces_per_segment() as u16);
            prop_assert!(piece.verify(&params, &root, elsewhere).is_err());
        }
    }

    #[test]
    fn any_flipped_bit_fails_verification(seed: u64, position in 0usize..32, bit: prop::sample::Index) {
        let (params, segment) = one_segment(seed);
        let mut bytes = segment.pieces[position].encode();
        let bit = bit.index(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        let piece = Piece::decode(&params, &bytes).expect("same size decodes");
        prop_assert!(piece.verify(&params, &segment.header.segment_root, PiecePosition(position as u16)).is_err());
    }

    #[test]
    fn piece_decoding_is_exact(seed: u64, cut in 1usize..100) {
        let (params, segment) = one_segment(seed);
        let bytes = segment.pieces[0].encode();
        prop_assert_eq!(bytes.len(), params.piece_size());
        prop_assert_eq!(Piece::decode(&params, &bytes).expect("decodes"), segment.pieces[0].clone());
        prop_assert!(Piece::decode(&params, &bytes[..bytes.len() - cut]).is_err());
        let mut long = bytes;
        long.extend(std::iter::repeat_n(0, cut));
        prop_assert!(Piece::decode(&params, &long).is_err());
    }

    #[test]
    fn any_half_rebuilds_every_piece(seed: u64) {
        let (params, segment) = one_segment(seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut pieces: Vec<Option<Piece>> = segment.pieces.iter().cloned().map(Some).collect();
        let mut positions: Vec<usize> = (0..pieces.len()).collect();
        positions.shuffle(&mut rng);
        for &position in &positions[..pieces.len() / 2] {
            pieces[position] = None;
        }
        prop_assert_eq!(&rebuild_pieces(&params, &segment.header, &pieces).expect("rebuilds"), &segment.pieces);
        let missing = PiecePosition(positions[0] as u16);
        prop_assert_eq!(
            &rebuild_piece(&params, &segment.header, &pieces, missing).expect("rebuilds"),
            &segment.pieces[positions[0]]
        );
    }
}

#[test]
fn corrupted_pieces_are_rejected_not_trusted() {
    let (params, segment) = one_segment(5);
    let mut pieces: Vec<Option<Piece>> = segment.pieces.iter().cloned().map(Some).collect();
    // Corrupt two pieces: recovery still succeeds from the rest and names them.
    for position in [3usize, 20] {
        if let Some(piece) = pieces[position].as_mut() {
            piece.record.chunks_mut()[0][0] ^= 0xff;
        }
    }
    let recovered = recover_segment(&params, &segment.header, &pieces).expect("enough valid pieces");
    let rejected: Vec<u16> = recovered
        .rejected
        .iter()
        .map(|(position, _)| position.0)
        .collect();
    assert_eq!(rejected, vec![3, 20]);

    // Drop pieces until only half remain, one of them corrupted: not enough.
    for piece in pieces.iter_mut().skip(1).take(16) {
        *piece = None;
    }
    let error = recover_segment(&params, &segment.header, &pieces).expect_err("too few valid pieces");
    assert!(
        error.to_string().contains("15 valid pieces, 16 needed"),
        "{error}"
    );
}

#[test]
fn wrong_segment_root_rejects_everything() {
    let (params, segment) = one_segment(9);
    let mut header = segment.header;
    header.segment_root = SegmentRoot::default();
    let pieces: Vec<Option<Piece>> = segment.pieces.iter().cloned().map(Some).collect();
    assert!(recover_segment(&params, &header, &pieces).is_err());
}

#[test]
fn genesis_segment_is_produced_at_once_when_closed() {
    let params = ProtocolParams::dev();
    let mut archiver = Archiver::new(params.clone()).expect("valid params");
    assert!(
        archiver
            .add_block(BlockNumber(0), b"genesis")
            .expect("archives")
            .is_empty()
    );
    let genesis = archiver.close_segment().expect("closes").expect("has block data");
    assert_eq!(genesis.header.segment_index.0, 0);
    assert!(genesis.header.last_archived_block.is_complete());
    assert_eq!(genesis.pieces.len(), params.pieces_per_segment() as usize);
    assert!(archiver.close_segment().expect("nothing to close").is_none());
    assert!(archiver.add_block(BlockNumber(5), b"gap").is_err());
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn decoders_never_panic_on_garbage(bytes in prop::collection::vec(any::<u8>(), 0..600), len in 0usize..600) {
        let params = ProtocolParams::dev();
        let _ = acre_storage::segment::decode_items(acre_consensus::SegmentIndex(1), &bytes);
        let _ = SegmentHeader::decode(&bytes[..len.min(bytes.len())]);
        let _ = Piece::decode(&params, &bytes);
        // A reconstructor fed a garbage "segment" errors or yields blocks; it never panics.
        let header = SegmentHeader {
            version: SegmentHeader::VERSION,
            segment_index: acre_consensus::SegmentIndex(0),
            segment_root: SegmentRoot::default(),
            prev_segment_header_hash: acre_consensus::Blake3Hash::ZERO,
            last_archived_block: acre_consensus::LastArchivedBlock { number: BlockNumber(0), archived_progress: 0 },
        };
        let _ = BlockReconstructor::new().add_segment(&header, &bytes);
    }
}

/// An item as the archiver frames it, for building valid segments to damage.
#[derive(Debug, Clone)]
enum Framed {
    Item(u8, Vec<u8>),
    Parent(SegmentHeader),
}

fn framed_item() -> impl Strategy<Value = Framed> {
    prop_oneof![
        (1u8..=3, prop::collection::vec(any::<u8>(), 0..48))
            .prop_map(|(tag, payload)| Framed::Item(tag, payload)),
        (any::<u64>(), any::<[u8; 32]>()).prop_map(|(index, root)| Framed::Parent(SegmentHeader {
            version: SegmentHeader::VERSION,
            segment_index: acre_consensus::SegmentIndex(index),
            segment_root: SegmentRoot(acre_consensus::Blake3Hash(root)),
            prev_segment_header_hash: acre_consensus::Blake3Hash([1; 32]),
            last_archived_block: acre_consensus::LastArchivedBlock {
                number: BlockNumber(index),
                archived_progress: 0
            },
        })),
    ]
}

fn expected_item(framed: &Framed) -> acre_storage::segment::SegmentItem {
    use acre_storage::segment::SegmentItem;
    match framed {
        Framed::Item(1, payload) => SegmentItem::Block(payload.clone()),
        Framed::Item(2, payload) => SegmentItem::BlockStart(payload.clone()),
        Framed::Item(_, payload) => SegmentItem::BlockContinuation(payload.clone()),
        Framed::Parent(header) => SegmentItem::ParentSegmentHeader(*header),
    }
}

fn frame(items: &[Framed], padding: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    for item in items {
        let (tag, payload) = match item {
            Framed::Item(tag, payload) => (*tag, payload.clone()),
            Framed::Parent(header) => (4, header.encode()),
        };
        bytes.push(tag);
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&payload);
    }
    bytes.resize(bytes.len() + padding, 0);
    bytes
}

/// A real piece of a dev segment (archived once).
fn real_piece() -> &'static (ProtocolParams, Piece) {
    static PIECE: std::sync::OnceLock<(ProtocolParams, Piece)> = std::sync::OnceLock::new();
    PIECE.get_or_init(|| {
        let params = ProtocolParams::dev();
        let mut archiver = Archiver::new(params.clone()).expect("dev params");
        archiver.add_block(BlockNumber(0), &[7; 100]).expect("archives");
        let segment = archiver.close_segment().expect("closes").expect("has data");
        (params, segment.pieces[3].clone())
    })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn damaged_valid_segments_decode_exactly_or_fail_without_panicking(
        items in prop::collection::vec(framed_item(), 0..6),
        padding in 0usize..16,
        at in any::<usize>(),
        value in prop_oneof![Just(0u32), Just(u32::MAX), any::<u32>()],
        flip in 1..=u8::MAX,
    ) {
        let bytes = frame(&items, padding);
        let mut expected: Vec<_> = items.iter().map(expected_item).collect();
        if padding > 0 {
            expected.push(acre_storage::segment::SegmentItem::Padding);
        }
        let index = acre_consensus::SegmentIndex(1);
        prop_assert_eq!(acre_storage::segment::decode_items(index, &bytes).expect("valid framing"), expected);
        if !bytes.is_empty() {
            let at = at % bytes.len();
            let mut flipped = bytes.clone();
            flipped[at] ^= flip;
            let _ = acre_storage::segment::decode_items(index, &flipped);
            let mut length = bytes.clone();
            let end = (at + 4).min(length.len());
            length[at..end].copy_from_slice(&value.to_le_bytes()[..end - at]);
            let _ = acre_storage::segment::decode_items(index, &length);
            let _ = acre_storage::segment::decode_items(index, &bytes[..at]);
        }
    }

    #[test]
    fn damaged_real_pieces_are_rejected_or_canonical(at in any::<usize>(), flip in 1..=u8::MAX, cut in 1usize..64) {
        let (params, piece) = real_piece();
        let bytes = piece.encode();
        let round_trip = Piece::decode(params, &bytes);
        prop_assert_eq!(round_trip.as_ref(), Ok(piece));
        let mut flipped = bytes.clone();
        flipped[at % bytes.len()] ^= flip;
        if let Ok(decoded) = Piece::decode(params, &flipped) {
            prop_assert_eq!(decoded.encode(), flipped);
        }
        prop_assert!(Piece::decode(params, &bytes[..bytes.len() - cut]).is_err());
        let mut long = bytes.clone();
        long.resize(bytes.len() + cut, 0);
        prop_assert!(Piece::decode(params, &long).is_err());
    }
}
