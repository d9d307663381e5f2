//! Signed, versioned transactions bound to one chain.
//!
//! A transaction is `version ‖ genesis hash ‖ transaction ‖ signature`, where the transaction is its
//! sender, nonce, fee and call (a transfer or a domains call). The signature is a context-prefixed
//! ed25519 signature ([`acre_consensus::signing`], [`SigningContext::Transaction`]) over
//! `H(transaction_ctx, version ‖ genesis hash ‖ borsh(transaction))`, checked with `verify_strict`, so:
//! - a transaction signed for one chain (a dev chain, a testnet) never verifies on another: the genesis hash
//!   is part of what is signed, and because it also travels in the clear, a node refuses a foreign
//!   transaction with a precise error ([`ExecutionError::WrongChain`]) before spending a signature check;
//! - a transaction signature can never pass as a block seal or a vote, nor the other way round;
//! - a transaction has exactly one valid encoding and one valid signature per key.
//!
//! The version byte comes first so a decoder refuses a format it does not know before parsing the rest.

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use acre_consensus::codec;
use acre_consensus::hashing::{self, Blake3Hash, HashContext};
use acre_consensus::signing::{self, SignatureError, SigningContext};

use crate::domains::registry::DomainConfig;
use crate::domains::{DomainId, OperatorId};
use crate::error::ExecutionError;

/// An account address: the owner's ed25519 public key.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct Address(pub [u8; 32]);

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl Address {
    /// The address of a signing key.
    pub fn of(key: &SigningKey) -> Self {
        Self(key.verifying_key().to_bytes())
    }
}

/// A plain transfer: moves `amount` from `from` to `to`, paying `fee` to the block's author. A builder of
/// the common [`Transaction`] (`Transaction::from(transfer)`); it is not itself encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The sender (and signer).
    pub from: Address,
    /// The recipient.
    pub to: Address,
    /// Amount moved.
    pub amount: u128,
    /// Fee paid to the block author.
    pub fee: u128,
    /// The sender's next nonce.
    pub nonce: u64,
}

impl From<Transfer> for Transaction {
    fn from(transfer: Transfer) -> Self {
        Self {
            from: transfer.from,
            nonce: transfer.nonce,
            fee: transfer.fee,
            call: Call::Transfer {
                to: transfer.to,
                amount: transfer.amount,
            },
        }
    }
}

/// A call on the domains part of the runtime (DOMAINS.md 2 and 3). Every one is signed by its sender,
/// who is the owner, nominator or withdrawer it names.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum DomainCall {
    /// Creates a domain owned by the sender; its initial balances are burned from the sender.
    Instantiate(DomainConfig),
    /// Registers an operator on `domain` owned by the sender, staking `amount` from the sender.
    RegisterOperator {
        /// The domain it operates.
        domain: DomainId,
        /// Its sr25519 signing (and VRF) key.
        signing_key: [u8; 32],
        /// The first stake, taken from the sender.
        amount: u128,
        /// Percent of rewards the operator keeps before sharing with nominators.
        nomination_tax: u8,
        /// The least a nominator may deposit.
        minimum_nominator_stake: u128,
    },
    /// The sender deposits `amount` with `operator`.
    Nominate {
        /// The operator.
        operator: OperatorId,
        /// The deposit, taken from the sender.
        amount: u128,
    },
    /// The sender asks to withdraw `shares` from `operator` at the end of the epoch.
    Withdraw {
        /// The operator.
        operator: OperatorId,
        /// Shares to withdraw.
        shares: u128,
    },
    /// Pays the sender what it has unlocked with `operator`.
    Unlock {
        /// The operator.
        operator: OperatorId,
    },
    /// Deregisters `operator` (its owner only).
    Deregister {
        /// The operator.
        operator: OperatorId,
    },
}

/// What a transaction does.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Call {
    /// Moves `amount` to `to`.
    Transfer {
        /// The recipient.
        to: Address,
        /// Amount moved.
        amount: u128,
    },
    /// A domains call.
    Domain(DomainCall),
}

/// A transaction: its sender, nonce and fee, and what it does.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Transaction {
    /// The sender (and signer).
    pub from: Address,
    /// The sender's next nonce.
    pub nonce: u64,
    /// Fee paid to the block author.
    pub fee: u128,
    /// What it does.
    pub call: Call,
}

impl Transaction {
    /// What the transaction takes from its sender at most besides the fee: the amount of a transfer,
    /// the stake of a registration or nomination (a domain's initial balances are added by the
    /// runtime). The transaction pool adds it to the fee to check that the sender can pay.
    pub fn debit(&self) -> u128 {
        match &self.call {
            Call::Transfer { amount, .. } => *amount,
            Call::Domain(
                DomainCall::RegisterOperator { amount, .. } | DomainCall::Nominate { amount, .. },
            ) => *amount,
            Call::Domain(DomainCall::Instantiate(config)) => config
                .initial_balances
                .iter()
                .fold(0u128, |total, (_, amount)| total.saturating_add(*amount)),
            Call::Domain(_) => 0,
        }
    }

    /// The recipient of a transfer.
    pub fn recipient(&self) -> Option<(Address, u128)> {
        match self.call {
            Call::Transfer { to, amount } => Some((to, amount)),
            Call::Domain(_) => None,
        }
    }
}

/// What a transaction signature covers (borrowed, so signing does not clone the transaction).
#[derive(BorshSerialize)]
struct SignedPayload<'a> {
    version: u8,
    genesis_hash: &'a Blake3Hash,
    transaction: &'a Transaction,
}

/// A transaction for one chain, with its signature.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedTransaction {
    /// The transaction format ([`SignedTransaction::VERSION`]).
    pub version: u8,
    /// The genesis hash of the chain this transaction is for.
    pub genesis_hash: Blake3Hash,
    /// The transaction.
    pub transaction: Transaction,
    /// Context-prefixed ed25519 signature over [`SignedTransaction::signing_hash`].
    pub signature: [u8; 64],
}

impl SignedTransaction {
    /// The only transaction format this runtime accepts (2: calls; 1 was transfers only).
    pub const VERSION: u8 = 2;

    /// Size of a transfer's canonical encoding.
    pub const TRANSFER_SIZE: usize = 1 + 32 + (32 + 8 + 16 + 1 + 32 + 16) + 64;

    /// The largest encoding accepted (a domain instantiation with its initial balances fits).
    pub const MAX_ENCODED_SIZE: usize = 2048;

    /// Signs `transaction` for the chain with `genesis_hash` with `key` (which must own its sender).
    pub fn sign(transaction: impl Into<Transaction>, genesis_hash: Blake3Hash, key: &SigningKey) -> Self {
        let transaction = transaction.into();
        let digest = Self::digest(Self::VERSION, &genesis_hash, &transaction);
        let signature = signing::sign(key, SigningContext::Transaction, &digest);
        Self {
            version: Self::VERSION,
            genesis_hash,
            transaction,
            signature,
        }
    }

    fn digest(version: u8, genesis_hash: &Blake3Hash, transaction: &Transaction) -> Blake3Hash {
        let payload = SignedPayload {
            version,
            genesis_hash,
            transaction,
        };
        hashing::hash(HashContext::Transaction, &codec::encode(&payload))
    }

    /// The digest the signature signs: `H(transaction_ctx, version ‖ genesis hash ‖ borsh(transaction))`.
    pub fn signing_hash(&self) -> Blake3Hash {
        Self::digest(self.version, &self.genesis_hash, &self.transaction)
    }

    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// The length of the canonical encoding (what the byte fee is charged on).
    pub fn encoded_len(&self) -> usize {
        // borsh writes into a counter without allocating the bytes.
        borsh::object_length(self).unwrap_or(usize::MAX)
    }

    /// Decodes exactly one transaction from untrusted bytes: size bound, then the version byte, then the
    /// rest (borsh rejects truncation and trailing bytes).
    pub fn decode(bytes: &[u8]) -> Result<Self, ExecutionError> {
        if bytes.len() > Self::MAX_ENCODED_SIZE {
            return Err(acre_consensus::DecodeError::TooLong {
                what: "transaction",
                len: bytes.len(),
                max: Self::MAX_ENCODED_SIZE,
            }
            .into());
        }
        if let Some(&version) = bytes.first()
            && version != Self::VERSION
        {
            return Err(ExecutionError::UnsupportedVersion { version });
        }
        Ok(codec::decode_bounded(
            "transaction",
            bytes,
            Self::MAX_ENCODED_SIZE,
        )?)
    }

    /// The transaction's hash (its identity in the pool and in blocks).
    pub fn hash(&self) -> Blake3Hash {
        hashing::hash(HashContext::Transaction, &self.encode())
    }

    /// Checks that the transaction is for the chain with `genesis_hash` (cheap, so first), then the
    /// signature strictly against the sender.
    pub fn verify(&self, genesis_hash: &Blake3Hash) -> Result<(), ExecutionError> {
        if self.genesis_hash != *genesis_hash {
            return Err(ExecutionError::WrongChain {
                expected: *genesis_hash,
                got: self.genesis_hash,
            });
        }
        let sender = self.transaction.from;
        signing::verify(
            &sender.0,
            SigningContext::Transaction,
            &self.signing_hash(),
            &self.signature,
        )
        .map_err(|error| match error {
            SignatureError::InvalidPublicKey => ExecutionError::InvalidSender(sender),
            SignatureError::BadSignature => ExecutionError::BadSignature(sender),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENESIS: Blake3Hash = Blake3Hash([5; 32]);

    fn transfer(key: &SigningKey) -> Transfer {
        Transfer {
            from: Address::of(key),
            to: Address([2; 32]),
            amount: 10,
            fee: 1,
            nonce: 0,
        }
    }

    #[test]
    fn signatures_bind_every_field() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let signed = SignedTransaction::sign(transfer(&key), GENESIS, &key);
        assert_eq!(signed.verify(&GENESIS), Ok(()));
        let mut changed = signed.clone();
        changed.transaction.fee += 1;
        assert_eq!(
            changed.verify(&GENESIS),
            Err(ExecutionError::BadSignature(signed.transaction.from))
        );
        let mut changed = signed.clone();
        changed.version = 3;
        assert_eq!(
            changed.verify(&GENESIS),
            Err(ExecutionError::BadSignature(signed.transaction.from))
        );
        let other = SigningKey::from_bytes(&[8; 32]);
        let forged = SignedTransaction::sign(transfer(&key), GENESIS, &other);
        assert_eq!(
            forged.verify(&GENESIS),
            Err(ExecutionError::BadSignature(signed.transaction.from))
        );
    }

    #[test]
    fn a_transaction_signed_for_another_chain_is_refused() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let other_chain = Blake3Hash([6; 32]);
        let foreign = SignedTransaction::sign(transfer(&key), other_chain, &key);
        assert_eq!(
            foreign.verify(&GENESIS),
            Err(ExecutionError::WrongChain {
                expected: GENESIS,
                got: other_chain
            })
        );
        // Relabelling it with this chain's genesis hash breaks the signature, which covers the hash.
        let mut relabelled = foreign;
        relabelled.genesis_hash = GENESIS;
        assert_eq!(
            relabelled.verify(&GENESIS),
            Err(ExecutionError::BadSignature(Address::of(&key)))
        );
    }

    #[test]
    fn transaction_signatures_are_context_prefixed() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let signed = SignedTransaction::sign(transfer(&key), GENESIS, &key);
        let digest = signed.signing_hash();
        // The same digest signed as a seal (or bare) does not pass as a transaction signature.
        for context in [SigningContext::Seal, SigningContext::Vote] {
            let mut other = signed.clone();
            other.signature = signing::sign(&key, context, &digest);
            assert_eq!(
                other.verify(&GENESIS),
                Err(ExecutionError::BadSignature(signed.transaction.from))
            );
        }
        let mut bare = signed.clone();
        bare.signature = ed25519_dalek::Signer::sign(&key, &digest.0).to_bytes();
        assert!(bare.verify(&GENESIS).is_err());
    }

    #[test]
    fn unknown_versions_are_refused_at_decode() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut bytes = SignedTransaction::sign(transfer(&key), GENESIS, &key).encode();
        assert_eq!(bytes[0], SignedTransaction::VERSION);
        for version in [1, 3] {
            bytes[0] = version;
            assert_eq!(
                SignedTransaction::decode(&bytes),
                Err(ExecutionError::UnsupportedVersion { version })
            );
        }
        bytes[0] = 2;
        assert!(SignedTransaction::decode(&bytes).is_ok());
    }

    #[test]
    fn decoding_is_exact() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let signed = SignedTransaction::sign(transfer(&key), GENESIS, &key);
        let bytes = signed.encode();
        assert_eq!(bytes.len(), SignedTransaction::TRANSFER_SIZE);
        assert_eq!(signed.encoded_len(), bytes.len());
        assert_eq!(SignedTransaction::decode(&bytes), Ok(signed));
        for len in 0..bytes.len() {
            assert!(matches!(
                SignedTransaction::decode(&bytes[..len]),
                Err(ExecutionError::Malformed(_))
            ));
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            SignedTransaction::decode(&long),
            Err(ExecutionError::Malformed(_))
        ));
        long.resize(SignedTransaction::MAX_ENCODED_SIZE + 1, 0);
        assert!(matches!(
            SignedTransaction::decode(&long),
            Err(ExecutionError::Malformed(
                acre_consensus::DecodeError::TooLong { .. }
            ))
        ));
    }

    #[test]
    fn the_layout_is_version_genesis_transfer_signature() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let signed = SignedTransaction::sign(transfer(&key), GENESIS, &key);
        assert_eq!(
            signed.signing_hash(),
            hashing::hash(
                HashContext::Transaction,
                &[&[2u8][..], &[5; 32], &codec::encode(&signed.transaction)].concat()
            )
        );
        let bytes = signed.encode();
        assert_eq!(bytes[..33], [&[2u8][..], &[5; 32]].concat()[..]);
        assert_eq!(bytes[33..138], codec::encode(&signed.transaction)[..]);
        assert_eq!(bytes[138..], signed.signature[..]);
    }
}

#[cfg(test)]
mod call_tests {
    use super::*;

    #[test]
    fn domain_calls_roundtrip_and_sign() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let from = Address::of(&key);
        let calls = [
            DomainCall::RegisterOperator {
                domain: DomainId(0),
                signing_key: [3; 32],
                amount: 5,
                nomination_tax: 10,
                minimum_nominator_stake: 1,
            },
            DomainCall::Nominate {
                operator: OperatorId(1),
                amount: 9,
            },
            DomainCall::Withdraw {
                operator: OperatorId(1),
                shares: 4,
            },
            DomainCall::Unlock {
                operator: OperatorId(2),
            },
            DomainCall::Deregister {
                operator: OperatorId(2),
            },
        ];
        for (nonce, call) in calls.into_iter().enumerate() {
            let transaction = Transaction {
                from,
                nonce: nonce as u64,
                fee: 1,
                call: Call::Domain(call),
            };
            let signed = SignedTransaction::sign(transaction, Blake3Hash([5; 32]), &key);
            let bytes = signed.encode();
            assert_eq!(signed.encoded_len(), bytes.len());
            let decoded = SignedTransaction::decode(&bytes).expect("decodes");
            assert_eq!(decoded, signed);
            assert_eq!(decoded.verify(&Blake3Hash([5; 32])), Ok(()));
        }
    }
}
