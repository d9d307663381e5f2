//! Canonical encoding helpers.
//!
//! Every hashed or signed structure is encoded with borsh (fixed little-endian layouts, strict ordering).
//! Decoding untrusted bytes always goes through [`decode_bounded`]: the input must be a whole slice no
//! longer than the type's maximum encoding, and borsh rejects truncation and trailing bytes.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::error::DecodeError;

/// Encodes a value canonically.
pub fn encode<T: BorshSerialize>(value: &T) -> Vec<u8> {
    borsh::to_vec(value).expect("writing to a Vec never fails")
}

/// Decodes a value from exactly `bytes`, refusing inputs longer than `max_len` before parsing.
pub fn decode_bounded<T: BorshDeserialize>(
    what: &'static str,
    bytes: &[u8],
    max_len: usize,
) -> Result<T, DecodeError> {
    if bytes.len() > max_len {
        return Err(DecodeError::TooLong {
            what,
            len: bytes.len(),
            max: max_len,
        });
    }
    borsh::from_slice(bytes).map_err(|error| DecodeError::Malformed {
        what,
        reason: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_trailing_and_truncated_bytes() {
        let bytes = encode(&(7u64, 9u32));
        assert_eq!(decode_bounded::<(u64, u32)>("pair", &bytes, 12), Ok((7, 9)));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            decode_bounded::<(u64, u32)>("pair", &long, 64),
            Err(DecodeError::Malformed { .. })
        ));
        assert!(matches!(
            decode_bounded::<(u64, u32)>("pair", &bytes[..11], 64),
            Err(DecodeError::Malformed { .. })
        ));
        assert!(matches!(
            decode_bounded::<(u64, u32)>("pair", &long, 12),
            Err(DecodeError::TooLong { .. })
        ));
    }
}
