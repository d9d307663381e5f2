//! Wire types of the API.

use std::fmt;
use std::str::FromStr;

use acre_consensus::ProtocolParams;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// 32 bytes as 64 lowercase hex characters: hashes, public keys, addresses.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hex32(pub [u8; 32]);

impl fmt::Display for Hex32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Hex32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Hex32 {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.strip_prefix("0x").unwrap_or(text);
        let bytes = hex::decode(text).map_err(|error| format!("{text:?} is not hex: {error}"))?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|bytes: Vec<u8>| {
            format!("expected 32 bytes (64 hex characters), got {}", bytes.len())
        })?;
        Ok(Self(bytes))
    }
}

impl Serialize for Hex32 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Hex32 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Arbitrary bytes as lowercase hex: canonical encodings of consensus objects.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HexBytes(pub Vec<u8>);

impl fmt::Debug for HexBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HexBytes({} bytes)", self.0.len())
    }
}

impl Serialize for HexBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let text = text.strip_prefix("0x").unwrap_or(&text);
        hex::decode(text).map(Self).map_err(serde::de::Error::custom)
    }
}

/// A `u128` balance as a decimal string.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Balance(pub u128);

impl fmt::Display for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Serialize for Balance {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for Balance {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map(Self).map_err(serde::de::Error::custom)
    }
}

/// What a farmer needs to know about the chain before plotting and farming.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FarmerInfo {
    /// The chain spec's name.
    pub chain: String,
    /// Hash of the genesis block (plots are bound to it).
    pub genesis_hash: Hex32,
    /// The chain's protocol parameters.
    pub params: ProtocolParams,
    /// Number of archived segments (the current history size).
    pub segment_count: u64,
    /// The node's peer-to-peer addresses (with its `/p2p/` id), which the farmer dials to join the
    /// distributed storage network; empty for a node without a network.
    #[serde(default)]
    pub p2p_addresses: Vec<String>,
}

/// A new slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotInfo {
    /// The slot number.
    pub slot: u64,
    /// The slot's global challenge.
    pub global_challenge: Hex32,
    /// The solution range of a block authored at this slot on the best chain.
    pub solution_range: u64,
    /// The voting range: chunks within it but outside the solution range make votes (spec 7).
    pub voting_range: u64,
    /// The best block when the slot was announced: what a vote for this slot builds on.
    pub parent_hash: Hex32,
}

/// A vote for a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteSubmission {
    /// The borsh-encoded `acre_consensus::votes::SignedVote`.
    pub vote: HexBytes,
}

/// A vote included in a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteInfo {
    /// The voting farmer's public key.
    pub public_key: Hex32,
    /// Where the vote reward went.
    pub reward_address: Hex32,
    /// The slot voted in.
    pub slot: u64,
}

/// A solution for a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SolutionSubmission {
    /// The slot the solution answers.
    pub slot: u64,
    /// The borsh-encoded `acre_consensus::solutions::Solution`.
    pub solution: HexBytes,
}

/// The node asks the holder of `public_key` to seal a block it authored with that key's solution. The
/// farmer decodes `header` itself and seals only a header whose solution it submitted, once per slot: it
/// never signs a bare hash a node hands it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealRequest {
    /// Hash of the unsealed header.
    pub header_hash: Hex32,
    /// The borsh-encoded `acre_consensus::blocks::UnsealedHeader` to seal.
    pub header: HexBytes,
    /// The solution's public key, which must sign.
    pub public_key: Hex32,
    /// The block's number.
    pub number: u64,
    /// The block's slot.
    pub slot: u64,
}

/// A farmer's answer to a [`SealRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockSeal {
    /// The header hash being sealed.
    pub header_hash: Hex32,
    /// The ed25519 seal: a signature of the header hash as a block-seal message (64 bytes).
    pub signature: HexBytes,
}

/// The state of the chain as one node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// The chain spec's name.
    pub chain: String,
    /// Hash of the genesis block.
    pub genesis_hash: Hex32,
    /// Number of the best block.
    pub best_number: u64,
    /// Hash of the best block.
    pub best_hash: Hex32,
    /// Slot of the best block.
    pub best_slot: u64,
    /// Number of the last final block.
    pub finalized_number: u64,
    /// Number of the last block archived (completely) into a segment, if any.
    pub archived_number: Option<u64>,
    /// The newer of the finalized and the last archived block: history below it will not change.
    pub finalized_or_archived_number: u64,
    /// Number of archived segments.
    pub segment_count: u64,
    /// The newest slot whose proof of time the node knows.
    pub current_slot: u64,
    /// The solution range of the next block.
    pub solution_range: u64,
    /// Estimated space pledged to the chain, in bytes, from the solution range.
    pub space_pledged: u64,
}

/// A block, summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockInfo {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: Hex32,
    /// Parent's hash.
    pub parent_hash: Hex32,
    /// The slot it was authored at.
    pub slot: u64,
    /// The state root after it.
    pub state_root: Hex32,
    /// The farmer's public key (none for genesis).
    pub author: Option<Hex32>,
    /// Where the reward went (none for genesis).
    pub reward_address: Option<Hex32>,
    /// The solution range it was authored under.
    pub solution_range: u64,
    /// Hashes of its transactions, in order.
    pub transactions: Vec<Hex32>,
    /// Indices of the segment headers it carries.
    pub segment_headers: Vec<u64>,
    /// Votes the block carries (each paid the vote reward).
    #[serde(default)]
    pub votes: Vec<VoteInfo>,
    /// Domain bundles the block carries, in order.
    #[serde(default)]
    pub bundles: Vec<BundleInfo>,
}

/// A domain bundle in a block, summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleInfo {
    /// The bundle's hash.
    pub hash: Hex32,
    /// Its domain.
    pub domain: u32,
    /// The operator that submitted it.
    pub operator: u64,
    /// The slot it was elected in.
    pub slot: u64,
    /// Its domain transactions.
    pub transactions: u32,
    /// The domain block number of its receipt.
    pub receipt_number: u64,
}

/// A block's canonical encodings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawBlock {
    /// The encoded `Header`.
    pub header: HexBytes,
    /// The encoded `Body`.
    pub body: HexBytes,
}

/// An account in the best state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    /// Spendable balance.
    pub balance: Balance,
    /// The nonce the account's next transaction must carry.
    pub nonce: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_forms_round_trip_and_reject_garbage() {
        let hash = Hex32([0xab; 32]);
        let json = serde_json::to_string(&hash).expect("serialises");
        assert_eq!(json, format!("\"{}\"", "ab".repeat(32)));
        assert_eq!(serde_json::from_str::<Hex32>(&json).expect("parses"), hash);
        assert!(serde_json::from_str::<Hex32>("\"abcd\"").is_err());
        assert!(serde_json::from_str::<Hex32>("\"zz\"").is_err());

        let balance = Balance(u128::MAX);
        let json = serde_json::to_string(&balance).expect("serialises");
        assert_eq!(json, format!("\"{}\"", u128::MAX));
        assert_eq!(serde_json::from_str::<Balance>(&json).expect("parses"), balance);
        assert!(serde_json::from_str::<Balance>("\"-1\"").is_err());

        let bytes = HexBytes(vec![1, 2, 255]);
        let json = serde_json::to_string(&bytes).expect("serialises");
        assert_eq!(json, "\"0102ff\"");
        assert_eq!(
            serde_json::from_str::<HexBytes>("\"0x0102ff\"").expect("parses"),
            bytes
        );
        assert!(serde_json::from_str::<HexBytes>("\"012\"").is_err());
    }
}

/// One farm's state as its farmer reports it to the node (shown on the node's dashboard). Counts are since
/// the farmer started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FarmReport {
    /// The farm's position on the farmer's command line.
    pub index: u32,
    /// Bytes pledged.
    pub size_bytes: u64,
    /// Sectors the farm holds when full.
    pub sectors_total: u32,
    /// Sectors plotted.
    pub sectors_plotted: u32,
    /// Slots audited.
    pub slots_audited: u64,
    /// Solutions and votes the node accepted.
    pub slots_won: u64,
    /// Proofs that missed their deadline.
    pub slots_missed: u64,
    /// Submissions the node refused.
    pub solutions_rejected: u64,
    /// Why the farm is disabled, if it is.
    pub disabled: Option<String>,
}

/// A farmer's report of its farms (`farmer_reportStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FarmerStatus {
    /// The farmer's public key.
    pub public_key: Hex32,
    /// Its farms (at most [`MAX_REPORTED_FARMS`]).
    pub farms: Vec<FarmReport>,
}

/// Most farms one status report may carry.
pub const MAX_REPORTED_FARMS: usize = 64;

/// A farmer's latest report as the node holds it (`node_farmers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FarmerReport {
    /// The farmer's public key.
    pub public_key: Hex32,
    /// How long ago the report came, ms.
    pub age_ms: u64,
    /// Its farms.
    pub farms: Vec<FarmReport>,
}

/// The node's place on the peer-to-peer network (`node_network`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkInfo {
    /// This node's peer id (none when it runs without a network).
    pub peer_id: Option<String>,
    /// The addresses it listens on, with its peer id: what others pass to `--bootstrap`.
    pub listening: Vec<String>,
    /// Connected peers of this chain.
    pub peers: Vec<PeerSummary>,
    /// Whether this node proves time itself (`--timekeeper`) rather than following its peers' proofs.
    pub timekeeper: bool,
    /// Where sync stands.
    pub sync: SyncInfo,
}

/// A connected peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerSummary {
    /// Its peer id.
    pub peer_id: String,
    /// The software it says it runs.
    pub agent: String,
    /// Its reputation with this node (0 is clean; it is banned at -100).
    pub score: i32,
}

/// Where sync stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncInfo {
    /// `idle` (caught up with every peer), `snap` (snap sync: downloading a recent block's state),
    /// `syncing`, `forked` (this node's chain forks from the longer chain of its peers below its archived
    /// history: restart it with `--resync`), or `off` (no network).
    pub state: String,
    /// The own best block number.
    pub best: u64,
    /// The best block number peers report (at least `best`).
    pub target: u64,
    /// Blocks per second imported since this run of syncing started.
    pub blocks_per_second: f64,
    /// Seconds left at that speed, while syncing.
    pub eta_seconds: Option<u64>,
}
