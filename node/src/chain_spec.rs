//! Chain specs: everything that defines a chain before its first block, and the genesis built from it.
//!
//! A spec is JSON (`acre-node --chain FILE`) or built in (`dev`). The genesis block commits to the whole
//! spec: its body's single entry is the spec's canonical (borsh) encoding, so two chains that differ in any
//! parameter, seed, reward or endowment have different genesis hashes and plots bound to one are refused by
//! the other. Genesis is never executed; its state is the endowments.

use std::path::Path;

use acre_consensus::ProtocolParams;
use acre_consensus::audit::initial_solution_range;
use acre_consensus::blocks::{Body, Header, UnsealedHeader};
use acre_consensus::hashing::Blake3Hash;
use acre_consensus::pot::PotSeed;
use acre_consensus::{BlockNumber, SlotNumber, codec};
use acre_execution::{Account, Address, InMemoryAccounts, RuntimeConfig};
use acre_rpc_api::{Balance, Hex32};
use borsh::BorshSerialize;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::state;

mod domains;

pub use domains::{
    DEV_EVM_BALANCE, DEV_EVM_CHAIN_ID, DEV_OPERATOR_STAKE, DomainBalance, DomainPreset, DomainsSpec,
    GenesisDomain, GenesisOperator, dev_domains,
};

/// Names of the built-in dev accounts, endowed in the `dev` spec. Their keys are public knowledge.
pub const DEV_ACCOUNTS: [&str; 2] = ["alice", "bob"];

/// Balance of each dev account at genesis.
pub const DEV_ENDOWMENT: u128 = 1_000_000_000_000;

/// The dev chain's block reward.
pub const DEV_BLOCK_REWARD: u128 = 1_000_000;

/// The dev chain's fee floor per transaction.
pub const DEV_MIN_FEE: u128 = 1_000;

/// The dev chain's fee per encoded byte.
pub const DEV_BYTE_FEE: u128 = 1;

/// The dev chain's existential deposit.
pub const DEV_EXISTENTIAL_DEPOSIT: u128 = 10_000;

/// The dev chain's reward per included vote.
pub const DEV_VOTE_REWARD: u128 = 100_000;

/// The well-known key of a dev account (`H("acre dev account", name)`): for tests and `acre dev` only.
pub fn dev_key(name: &str) -> SigningKey {
    SigningKey::from_bytes(&blake3::derive_key("acre dev account v1", name.as_bytes()))
}

/// An account funded at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endowment {
    /// The account's address (its ed25519 public key).
    pub address: Hex32,
    /// Its balance.
    pub balance: Balance,
}

/// What defines a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainSpec {
    /// The chain's name (also the default data directory's name).
    pub name: String,
    /// Protocol parameters.
    pub params: ProtocolParams,
    /// The seed of slot 1's proof of time (16 bytes, hex).
    pub genesis_seed: String,
    /// Reward of every block's author, on top of fees.
    pub block_reward: Balance,
    /// Reward of every included vote, paid to the vote's reward address.
    pub vote_reward: Balance,
    /// Fee every transaction pays at least, on top of `byte_fee` per encoded byte.
    pub min_fee: Balance,
    /// Fee per byte of a transaction's canonical encoding.
    pub byte_fee: Balance,
    /// Smallest balance an account may hold (non-zero): creating an account costs at least this much.
    pub existential_deposit: Balance,
    /// Accounts funded at genesis.
    pub endowments: Vec<Endowment>,
    /// Domains: the rules' numbers and the genesis domains. A chain without this section has no
    /// domain registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domains: Option<DomainsSpec>,
}

/// The genesis block and state of a spec.
#[derive(Debug, Clone)]
pub struct Genesis {
    /// The genesis header (no solution, zero seal).
    pub header: Header,
    /// The genesis body (the encoded spec).
    pub body: Body,
    /// The endowed accounts.
    pub state: InMemoryAccounts,
    /// The domain registry at genesis (chains with domains).
    pub domains: Option<acre_execution::domains::registry::Domains>,
}

/// The canonical encoding genesis commits to.
#[derive(BorshSerialize)]
struct CanonicalSpec<'a> {
    name: &'a str,
    params: &'a ProtocolParams,
    genesis_seed: [u8; 16],
    block_reward: u128,
    vote_reward: u128,
    min_fee: u128,
    byte_fee: u128,
    existential_deposit: u128,
    endowments: Vec<([u8; 32], u128)>,
}

impl ChainSpec {
    /// The built-in development chain: dev parameters and the endowed dev accounts.
    pub fn dev() -> Self {
        Self {
            name: "dev".into(),
            params: ProtocolParams::dev(),
            genesis_seed: hex::encode(&blake3::hash(b"acre dev genesis seed").as_bytes()[..16]),
            block_reward: Balance(DEV_BLOCK_REWARD),
            vote_reward: Balance(DEV_VOTE_REWARD),
            min_fee: Balance(DEV_MIN_FEE),
            byte_fee: Balance(DEV_BYTE_FEE),
            existential_deposit: Balance(DEV_EXISTENTIAL_DEPOSIT),
            endowments: DEV_ACCOUNTS
                .iter()
                .map(|name| Endowment {
                    address: Hex32(Address::of(&dev_key(name)).0),
                    balance: Balance(DEV_ENDOWMENT),
                })
                .collect(),
            domains: Some(domains::dev_domains()),
        }
    }

    /// `dev`, or a JSON spec file.
    pub fn load(name_or_path: &str) -> Result<Self, Error> {
        if name_or_path == "dev" {
            return Ok(Self::dev());
        }
        let path = Path::new(name_or_path);
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            context: format!("reading chain spec {}", path.display()),
            source,
        })?;
        let spec: Self = serde_json::from_str(&text)
            .map_err(|error| Error::ChainSpec(format!("{}: {error}", path.display())))?;
        spec.validate()?;
        Ok(spec)
    }

    /// Checks the parameters and fields.
    pub fn validate(&self) -> Result<(), Error> {
        self.params
            .validate()
            .map_err(|error| Error::ChainSpec(error.to_string()))?;
        self.seed()?;
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::ChainSpec(format!(
                "name {:?} must be non-empty ASCII letters, digits, '-' or '_'",
                self.name
            )));
        }
        if self.existential_deposit.0 == 0 {
            return Err(Error::ChainSpec(
                "existential_deposit must be greater than zero".into(),
            ));
        }
        if let Some(endowment) = self
            .endowments
            .iter()
            .find(|endowment| endowment.balance.0 < self.existential_deposit.0)
        {
            return Err(Error::ChainSpec(format!(
                "endowment of {} is {}, below the existential deposit {}",
                endowment.address, endowment.balance.0, self.existential_deposit.0
            )));
        }
        if let Some(domains) = &self.domains {
            domains.registry()?;
        }
        Ok(())
    }

    /// The runtime's configuration for the chain with this spec and `genesis_hash` (the hash of
    /// [`ChainSpec::genesis`]'s header; pass [`Chain::genesis_hash`](crate::chain::Chain::genesis_hash)
    /// to avoid rebuilding genesis).
    pub fn runtime_config(&self, genesis_hash: Blake3Hash) -> RuntimeConfig {
        RuntimeConfig {
            genesis_hash,
            min_fee: self.min_fee.0,
            byte_fee: self.byte_fee.0,
            existential_deposit: self.existential_deposit.0,
            block_reward: self.block_reward.0,
            vote_reward: self.vote_reward.0,
        }
    }

    /// The hash of this spec's genesis block: what every transaction for the chain signs.
    pub fn genesis_hash(&self) -> Result<Blake3Hash, Error> {
        Ok(self.genesis()?.header.hash())
    }

    /// The genesis proof-of-time seed.
    pub fn seed(&self) -> Result<PotSeed, Error> {
        let bytes = hex::decode(&self.genesis_seed)
            .ok()
            .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok())
            .ok_or_else(|| Error::ChainSpec("genesis_seed must be 16 bytes of hex".into()))?;
        Ok(PotSeed(bytes))
    }

    /// Builds the genesis block and state.
    pub fn genesis(&self) -> Result<Genesis, Error> {
        let mut state = InMemoryAccounts::default();
        for endowment in &self.endowments {
            let address = Address(endowment.address.0);
            let mut account = acre_execution::AccountStore::account(&state, &address);
            account.balance = account
                .balance
                .checked_add(endowment.balance.0)
                .ok_or_else(|| Error::ChainSpec(format!("endowment of {address} overflows")))?;
            state.0.insert(address, Account { ..account });
        }
        let canonical = CanonicalSpec {
            name: &self.name,
            params: &self.params,
            genesis_seed: self.seed()?.0,
            block_reward: self.block_reward.0,
            vote_reward: self.vote_reward.0,
            min_fee: self.min_fee.0,
            byte_fee: self.byte_fee.0,
            existential_deposit: self.existential_deposit.0,
            endowments: self
                .endowments
                .iter()
                .map(|endowment| (endowment.address.0, endowment.balance.0))
                .collect(),
        };
        let domains = self.domains.as_ref().map(DomainsSpec::registry).transpose()?;
        // The registry follows the rest of the spec only where there is one, so chains without
        // domains keep their genesis.
        let mut encoded = codec::encode(&canonical);
        if let Some(domains) = &domains {
            encoded.extend(codec::encode(domains));
        }
        let body = Body {
            transactions: vec![encoded],
            ..Body::default()
        };
        let unsealed = UnsealedHeader {
            version: Header::VERSION,
            parent_hash: Blake3Hash::ZERO,
            number: BlockNumber(0),
            slot: SlotNumber(0),
            pot_checkpoints: Vec::new(),
            solution: None,
            solution_range: initial_solution_range(&self.params),
            next_solution_range: None,
            state_root: state::BranchState::from_accounts(state.0.iter().map(|(a, b)| (*a, *b)))
                .with_domains(domains.clone())
                .root(),
            body_root: body.root(),
        };
        Ok(Genesis {
            header: Header {
                unsealed,
                seal: [0; 64],
            },
            body,
            state,
            domains,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_spec_round_trips_and_genesis_commits_to_every_field() {
        let spec = ChainSpec::dev();
        spec.validate().expect("valid");
        let json = serde_json::to_string_pretty(&spec).expect("serialises");
        let parsed: ChainSpec = serde_json::from_str(&json).expect("parses");
        assert_eq!(parsed, spec);
        let genesis = spec.genesis().expect("genesis");
        assert_eq!(genesis.state.0.len(), DEV_ACCOUNTS.len());
        assert_eq!(
            genesis.header.hash(),
            spec.genesis().expect("genesis").header.hash()
        );

        let mut other = spec.clone();
        other.block_reward = Balance(DEV_BLOCK_REWARD + 1);
        assert_ne!(
            other.genesis().expect("genesis").header.hash(),
            genesis.header.hash()
        );
        for change in [
            |spec: &mut ChainSpec| spec.vote_reward.0 += 1,
            |spec: &mut ChainSpec| spec.min_fee.0 += 1,
            |spec: &mut ChainSpec| spec.byte_fee.0 += 1,
            |spec: &mut ChainSpec| spec.existential_deposit.0 += 1,
        ] {
            let mut other = spec.clone();
            change(&mut other);
            assert_ne!(
                other.genesis().expect("genesis").header.hash(),
                genesis.header.hash()
            );
        }
        let config = spec.runtime_config(genesis.header.hash());
        assert_eq!(config.genesis_hash, genesis.header.hash());
        assert_eq!(config.min_fee, DEV_MIN_FEE);
        assert_eq!(config.existential_deposit, DEV_EXISTENTIAL_DEPOSIT);
        assert_eq!(config.vote_reward, DEV_VOTE_REWARD);
        assert_eq!(spec.genesis_hash().expect("genesis"), genesis.header.hash());
        let mut other = spec;
        other.params.pot_iterations /= 2;
        assert_ne!(
            other.genesis().expect("genesis").header.hash(),
            genesis.header.hash()
        );
    }

    #[test]
    fn bad_specs_are_refused() {
        let mut spec = ChainSpec::dev();
        spec.genesis_seed = "abcd".into();
        assert!(matches!(spec.validate(), Err(Error::ChainSpec(_))));
        let mut spec = ChainSpec::dev();
        spec.name = "../etc".into();
        assert!(matches!(spec.validate(), Err(Error::ChainSpec(_))));
        let mut spec = ChainSpec::dev();
        spec.params.pot_checkpoints = 3;
        assert!(matches!(spec.validate(), Err(Error::ChainSpec(_))));
    }

    #[test]
    fn specs_without_an_existential_deposit_or_with_dust_endowments_are_refused() {
        let mut spec = ChainSpec::dev();
        spec.existential_deposit = Balance(0);
        assert!(
            matches!(spec.validate(), Err(Error::ChainSpec(message)) if message.contains("existential_deposit"))
        );
        let mut spec = ChainSpec::dev();
        spec.endowments[0].balance = Balance(DEV_EXISTENTIAL_DEPOSIT - 1);
        assert!(
            matches!(spec.validate(), Err(Error::ChainSpec(message)) if message.contains("below the existential deposit"))
        );
    }
}
