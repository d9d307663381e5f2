//! EVM transactions: raw EIP-2718 bytes (legacy with an EIP-155 chain id, EIP-2930, EIP-1559), decoded
//! with a size bound, restricted to this domain's chain id, and with their secp256k1 signer recovered.
//!
//! The raw bytes are kept beside the decoded envelope: they are what bundles carry and what the
//! transaction hash (keccak-256 of the EIP-2718 encoding, as Ethereum tools expect) is computed over.

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::{SignableTransaction, Signed, Transaction as _, TxEnvelope};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::{Address, B256, Bytes, Signature, TxKind, U256};
use k256::ecdsa::SigningKey;
use revm::context::TxEnv;

use crate::error::ExecutionError;

/// Largest raw EVM transaction the module decodes (the usual Ethereum pool limit, 128 KiB): longer
/// inputs are rejected before the decoder sees them.
pub const MAX_TRANSACTION_SIZE: usize = 128 * 1024;

/// A decoded, signature-checked EVM transaction for one chain id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvmTransaction {
    envelope: TxEnvelope,
    signer: Address,
    raw: Bytes,
}

impl EvmTransaction {
    /// Decodes raw EIP-2718 bytes: size bound, canonical decoding with no trailing bytes, a supported
    /// type, chain id `chain_id` (EIP-155 for legacy transactions) and a recoverable low-s signature.
    pub fn decode(bytes: &[u8], chain_id: u64) -> Result<Self, ExecutionError> {
        if bytes.len() > MAX_TRANSACTION_SIZE {
            return Err(ExecutionError::EvmTransactionTooLarge {
                size: bytes.len(),
                max: MAX_TRANSACTION_SIZE,
            });
        }
        let envelope =
            TxEnvelope::decode_2718_exact(bytes).map_err(|error| ExecutionError::EvmTransactionDecode {
                reason: error.to_string(),
            })?;
        Self::from_envelope(envelope, Bytes::copy_from_slice(bytes), chain_id)
    }

    fn from_envelope(envelope: TxEnvelope, raw: Bytes, chain_id: u64) -> Result<Self, ExecutionError> {
        match &envelope {
            TxEnvelope::Legacy(_) | TxEnvelope::Eip2930(_) | TxEnvelope::Eip1559(_) => {}
            other => {
                return Err(ExecutionError::EvmUnsupportedTransactionType {
                    ty: other.tx_type() as u8,
                });
            }
        }
        match envelope.chain_id() {
            None => return Err(ExecutionError::EvmMissingChainId),
            Some(got) if got != chain_id => {
                return Err(ExecutionError::EvmWrongChainId {
                    expected: chain_id,
                    got,
                });
            }
            Some(_) => {}
        }
        let signer = envelope
            .recover_signer()
            .map_err(|_| ExecutionError::EvmBadSignature)?;
        Ok(Self {
            envelope,
            signer,
            raw,
        })
    }

    /// Signs `transaction` (a `TxLegacy` with its chain id set, a `TxEip2930` or a `TxEip1559`) with
    /// `key`: for tests, benches and tools. The result is what [`EvmTransaction::decode`] gives for its
    /// [`raw`](EvmTransaction::raw) bytes.
    pub fn sign<T>(transaction: T, key: &SigningKey) -> Self
    where
        T: SignableTransaction<Signature>,
        TxEnvelope: From<Signed<T>>,
    {
        let digest = transaction.signature_hash();
        let (signature, recovery) = key
            .sign_prehash_recoverable(digest.as_slice())
            .expect("a 32-byte prehash always signs");
        let signature = Signature::from_signature_and_parity(signature, recovery.is_y_odd());
        let envelope = TxEnvelope::from(transaction.into_signed(signature));
        let raw = Bytes::from(envelope.encoded_2718());
        Self {
            envelope,
            signer: address_of(key),
            raw,
        }
    }

    /// The transaction hash: keccak-256 of the EIP-2718 encoding.
    pub fn hash(&self) -> B256 {
        *self.envelope.tx_hash()
    }

    /// The raw EIP-2718 bytes.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The recovered signer.
    pub fn signer(&self) -> Address {
        self.signer
    }

    /// The decoded envelope.
    pub fn envelope(&self) -> &TxEnvelope {
        &self.envelope
    }

    /// The EIP-2718 type byte (0 legacy, 1 EIP-2930, 2 EIP-1559).
    pub fn tx_type(&self) -> u8 {
        self.envelope.tx_type() as u8
    }

    /// The sender's nonce.
    pub fn nonce(&self) -> u64 {
        self.envelope.nonce()
    }

    /// The gas limit.
    pub fn gas_limit(&self) -> u64 {
        self.envelope.gas_limit()
    }

    /// The maximum fee per gas (the gas price of legacy and EIP-2930 transactions).
    pub fn max_fee_per_gas(&self) -> u128 {
        self.envelope.max_fee_per_gas()
    }

    /// The maximum priority fee per gas (EIP-1559 only).
    pub fn max_priority_fee_per_gas(&self) -> Option<u128> {
        self.envelope.max_priority_fee_per_gas()
    }

    /// The price per gas paid at base fee `base_fee`.
    pub fn effective_gas_price(&self, base_fee: u64) -> u128 {
        self.envelope.effective_gas_price(Some(base_fee))
    }

    /// The value transferred.
    pub fn value(&self) -> U256 {
        self.envelope.value()
    }

    /// Call or create.
    pub fn kind(&self) -> TxKind {
        self.envelope.kind()
    }

    /// The call data or init code.
    pub fn input(&self) -> &Bytes {
        self.envelope.input()
    }

    /// The most the transaction can cost its sender: `gas_limit × max_fee + value`.
    pub fn max_cost(&self) -> Result<U256, ExecutionError> {
        U256::from(self.gas_limit())
            .checked_mul(U256::from(self.max_fee_per_gas()))
            .and_then(|fee| fee.checked_add(self.value()))
            .ok_or(ExecutionError::EvmCostOverflow)
    }

    /// The transaction as revm's transaction environment.
    pub fn tx_env(&self) -> TxEnv {
        TxEnv {
            tx_type: self.tx_type(),
            caller: self.signer,
            gas_limit: self.gas_limit(),
            gas_price: self.max_fee_per_gas(),
            kind: self.kind(),
            value: self.value(),
            data: self.input().clone(),
            nonce: self.nonce(),
            chain_id: self.envelope.chain_id(),
            access_list: self.envelope.access_list().cloned().unwrap_or_default(),
            gas_priority_fee: self.max_priority_fee_per_gas(),
            blob_hashes: Vec::new(),
            max_fee_per_blob_gas: 0,
            authorization_list: Vec::new(),
        }
    }
}

/// The Ethereum address of `key`: the last 20 bytes of keccak-256 of its uncompressed public key.
pub fn address_of(key: &SigningKey) -> Address {
    Address::from_public_key(key.verifying_key())
}
