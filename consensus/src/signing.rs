//! Context-prefixed signatures (spec section 8).
//!
//! Every ed25519 signature in the protocol signs `context string ‖ 32-byte digest`, never a bare digest,
//! and each kind of signed object has its own [`SigningContext`]. A signature made for one kind (a block
//! seal) therefore never verifies as another (a transfer), even though both are made with the same kind of
//! key over a digest of the same size. Verification is always `verify_strict` (no small-order keys, no
//! non-canonical signatures), so a signed object has exactly one valid signature per key and message.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::hashing::Blake3Hash;

/// What a signature is for. Adding a variant is a protocol change; never reuse a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningContext {
    /// A farmer's seal over a block header hash.
    Seal,
    /// A farmer's vote.
    Vote,
    /// A consensus-chain transaction.
    Transaction,
    /// A domain operator's bundle header.
    Bundle,
}

/// Length of every context prefix (fixed, so `prefix ‖ digest` is unambiguous).
pub const PREFIX_LEN: usize = 24;

impl SigningContext {
    /// The fixed-length prefix of signed messages of this kind.
    pub const fn prefix(self) -> &'static [u8; PREFIX_LEN] {
        match self {
            Self::Seal => b"acre/sig/v1/block-seal\0\0",
            Self::Vote => b"acre/sig/v1/vote\0\0\0\0\0\0\0\0",
            Self::Transaction => b"acre/sig/v1/transaction\0",
            Self::Bundle => b"acre/sig/v1/bundle\0\0\0\0\0\0",
        }
    }
}

/// The bytes a signature of kind `context` over `digest` signs.
pub fn message(context: SigningContext, digest: &Blake3Hash) -> [u8; PREFIX_LEN + 32] {
    let mut message = [0u8; PREFIX_LEN + 32];
    message[..PREFIX_LEN].copy_from_slice(context.prefix());
    message[PREFIX_LEN..].copy_from_slice(&digest.0);
    message
}

/// Signs `digest` as a `context` message.
pub fn sign(key: &SigningKey, context: SigningContext, digest: &Blake3Hash) -> [u8; 64] {
    key.sign(&message(context, digest)).to_bytes()
}

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The public key is not a valid ed25519 point.
    #[error("not a valid ed25519 public key")]
    InvalidPublicKey,
    /// The signature does not verify strictly for this context and digest.
    #[error("the signature does not verify")]
    BadSignature,
}

/// Verifies (strictly) that `signature` by `public_key` signs `digest` as a `context` message.
pub fn verify(
    public_key: &[u8; 32],
    context: SigningContext,
    digest: &Blake3Hash,
    signature: &[u8; 64],
) -> Result<(), SignatureError> {
    let key = VerifyingKey::from_bytes(public_key).map_err(|_| SignatureError::InvalidPublicKey)?;
    key.verify_strict(&message(context, digest), &Signature::from_bytes(signature))
        .map_err(|_| SignatureError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [SigningContext; 4] = [
        SigningContext::Seal,
        SigningContext::Vote,
        SigningContext::Transaction,
        SigningContext::Bundle,
    ];

    #[test]
    fn a_signature_of_one_kind_never_verifies_as_another() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let public = key.verifying_key().to_bytes();
        let digest = Blake3Hash([3; 32]);
        for signed_as in ALL {
            let signature = sign(&key, signed_as, &digest);
            for checked_as in ALL {
                let result = verify(&public, checked_as, &digest, &signature);
                if signed_as == checked_as {
                    assert_eq!(result, Ok(()));
                } else {
                    assert_eq!(result, Err(SignatureError::BadSignature));
                }
            }
            // Nor as a bare digest signature, the pre-context form.
            assert!(
                key.verifying_key()
                    .verify_strict(&digest.0, &Signature::from_bytes(&signature))
                    .is_err()
            );
        }
    }

    #[test]
    fn prefixes_are_distinct() {
        for (i, a) in ALL.iter().enumerate() {
            for b in &ALL[i + 1..] {
                assert_ne!(a.prefix(), b.prefix());
            }
        }
    }
}
