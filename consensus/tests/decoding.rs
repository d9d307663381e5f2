//! Decoders of untrusted bytes never panic and never accept trailing or truncated input.

use acre_consensus::blocks::{Body, Header};
use acre_consensus::segments::SegmentHeader;
use acre_consensus::solutions::Solution;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, rng_seed: RngSeed::Fixed(31), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Header::decode(&bytes);
        let _ = Body::decode(&bytes);
        let _ = SegmentHeader::decode(&bytes);
        let _ = acre_consensus::codec::decode_bounded::<Solution>("solution", &bytes, 4096);
    }

    #[test]
    fn bodies_round_trip_and_reject_truncation(
        transactions in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8),
        cut in 1usize..16,
    ) {
        let body = Body { transactions, ..Body::default() };
        let bytes = body.encode();
        prop_assert_eq!(Body::decode(&bytes), Ok(body));
        let mut long = bytes.clone();
        long.push(0);
        prop_assert!(Body::decode(&long).is_err());
        if cut <= bytes.len() {
            prop_assert!(Body::decode(&bytes[..bytes.len() - cut]).is_err());
        }
    }
}
