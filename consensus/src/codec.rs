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

/// Decodes a value from the start of `bytes` (reading at most `max_len` of them) and returns it with the
/// number of bytes it took: for encodings laid end to end, such as an archived block's header and body.
pub fn decode_prefix<T: BorshDeserialize>(
    what: &'static str,
    bytes: &[u8],
    max_len: usize,
) -> Result<(T, usize), DecodeError> {
    let window = &bytes[..bytes.len().min(max_len)];
    let mut reader = window;
    let value = T::deserialize_reader(&mut reader).map_err(|error| DecodeError::Malformed {
        what,
        reason: error.to_string(),
    })?;
    Ok((value, window.len() - reader.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_decodes_and_says_how_much_it_took() {
        let mut bytes = encode(&(7u64, 9u32));
        bytes.extend([1, 2, 3]);
        assert_eq!(decode_prefix::<(u64, u32)>("pair", &bytes, 64), Ok(((7, 9), 12)));
        assert!(matches!(
            decode_prefix::<(u64, u32)>("pair", &bytes, 11),
            Err(DecodeError::Malformed { .. })
        ));
    }

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
