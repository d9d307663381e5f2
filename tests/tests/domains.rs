//! An EVM domain end to end with the real binaries: two `acre-node`s, each running one of the domain's
//! two genesis operators (stakes 2:1), one farmer. The domain advances with bundles from both in
//! proportion to stake; a contract deployed and called with raw transactions signed by alloy changes
//! its storage, seen through `eth_getStorageAt` and a receipt with its log; both nodes derive the same
//! domain blocks and receipts over 200 consensus blocks; a third operator registers with `acre operator
//! register`, becomes active at the next epoch, withdraws and is paid after the unlock.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use acre_execution::domains::election::operator_keypair;
use acre_execution::domains::evm::contracts;
use acre_rpc_api::ChainApiClient;
use acre_tests::cluster::{Cluster, NodeOptions, binary};
use acre_tests::free_port;
use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_eips::eip2930::AccessList;
use alloy_primitives::{Address, B256, Bytes, Signature, TxKind, U256};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::rpc_params;
use k256::ecdsa::SigningKey;
use serde_json::Value;

const ACRE: u128 = 1_000_000_000_000_000_000;
const REWARD: &str = "1111111111111111111111111111111111111111111111111111111111111111";
/// Anvil's account 0 (the dev chain's EVM domain funds it).
const DEPLOYER_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const CHAIN_ID: u64 = 31_337;

/// A dev account's key secret, as `acre_node::chain_spec::dev_key` derives it.
fn dev_secret(name: &str) -> [u8; 32] {
    blake3::derive_key("acre dev account v1", name.as_bytes())
}

fn write_key(dir: &Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.key"));
    std::fs::write(&path, hex::encode(dev_secret(name))).expect("writes the key");
    path
}

fn account(name: &str) -> String {
    let key = ed25519_dalek::SigningKey::from_bytes(&dev_secret(name));
    hex::encode(key.verifying_key().to_bytes())
}

fn spec() -> Value {
    Cluster::dev_spec(|spec| {
        spec["name"] = "domains-test".into();
        spec["params"]["pot_iterations"] = 12_000_000.into();
        let rich = (10_000_000 * ACRE).to_string();
        spec["endowments"] = serde_json::json!([
            {"address": account("alice"), "balance": rich},
            {"address": account("bob"), "balance": rich},
            {"address": account("carol"), "balance": rich},
        ]);
        let operator = |name: &str, stake: u128| {
            serde_json::json!({
                "owner": account(name),
                "signing_key": hex::encode(operator_keypair(&dev_secret(name)).public.to_bytes()),
                "stake": (stake * ACRE).to_string(),
                "nomination_tax": 5,
                "minimum_nominator_stake": ACRE.to_string(),
            })
        };
        spec["domains"]["genesis"][0]["operators"] =
            serde_json::json!([operator("alice", 1_000), operator("bob", 500)]);
    })
}

async fn eth(client: &HttpClient, method: &str, params: jsonrpsee::core::params::ArrayParams) -> Value {
    client
        .request::<Value, _>(method, params)
        .await
        .unwrap_or_else(|error| panic!("{method}: {error}"))
}

fn quantity(value: &Value) -> u64 {
    u64::from_str_radix(value.as_str().expect("a quantity").trim_start_matches("0x"), 16).expect("hex")
}

/// Signs an EIP-1559 transaction with alloy and k256, as Ethereum tools do; returns the raw bytes.
fn raw_transaction(key: &SigningKey, nonce: u64, to: TxKind, input: Vec<u8>, gas: u64) -> Bytes {
    let transaction = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: 2_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to,
        value: U256::ZERO,
        access_list: AccessList::default(),
        input: Bytes::from(input),
    };
    let (signature, recovery) = key
        .sign_prehash_recoverable(transaction.signature_hash().as_slice())
        .expect("signs");
    let signature = Signature::from_signature_and_parity(signature, recovery.is_y_odd());
    Bytes::from(TxEnvelope::from(transaction.into_signed(signature)).encoded_2718())
}

/// Sends `raw` and waits for its receipt.
async fn send_and_wait(cluster: &Cluster, client: &HttpClient, raw: Bytes) -> Value {
    let hash: B256 = serde_json::from_value(eth(client, "eth_sendRawTransaction", rpc_params![raw]).await)
        .expect("a transaction hash");
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        let receipt = eth(client, "eth_getTransactionReceipt", rpc_params![hash]).await;
        if !receipt.is_null() {
            return receipt;
        }
        if std::time::Instant::now() > deadline {
            cluster.dump_logs();
            panic!("no receipt for {hash} in 180 s");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn acre(args: &[&str]) -> String {
    let output = Command::new(binary("acre"))
        .args(args)
        .output()
        .expect("acre runs");
    assert!(
        output.status.success(),
        "acre {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evm_domain_runs_end_to_end_with_two_operator_nodes() {
    let mut cluster = Cluster::new(&spec());
    let dir = cluster.dir().to_path_buf();
    let (alice_key, bob_key, carol_key) = (
        write_key(&dir, "alice"),
        write_key(&dir, "bob"),
        write_key(&dir, "carol"),
    );
    let (eth_a, eth_b) = (free_port(), free_port());
    let operator_args = |id: u64, key: &Path, port: u16| {
        vec![
            "--domain-id".to_owned(),
            "0".to_owned(),
            "--operator-id".to_owned(),
            id.to_string(),
            "--operator-key".to_owned(),
            key.display().to_string(),
            "--eth-rpc-port".to_owned(),
            port.to_string(),
        ]
    };
    let a = cluster.start_node(
        "alice",
        &NodeOptions {
            timekeeper: true,
            extra: operator_args(0, &alice_key, eth_a),
            ..NodeOptions::default()
        },
    );
    let bootstrap = cluster.nodes[a].p2p_address();
    let b = cluster.start_node(
        "bob",
        &NodeOptions {
            bootstrap: vec![bootstrap],
            extra: operator_args(1, &bob_key, eth_b),
            ..NodeOptions::default()
        },
    );
    cluster.start_farmer(a, "4M", REWARD);
    let client_a = HttpClientBuilder::default()
        .build(format!("http://127.0.0.1:{eth_a}"))
        .expect("client");
    let client_b = HttpClientBuilder::default()
        .build(format!("http://127.0.0.1:{eth_b}"))
        .expect("client");
    cluster
        .wait_for("the domain's first blocks", Duration::from_secs(120), || {
            let client = client_a.clone();
            async move {
                match client.request::<Value, _>("eth_blockNumber", rpc_params![]).await {
                    Ok(number) => quantity(&number) >= 2,
                    Err(_) => false,
                }
            }
        })
        .await;
    assert_eq!(
        quantity(&eth(&client_a, "eth_chainId", rpc_params![]).await),
        CHAIN_ID
    );

    // A contract deployed and called with transactions signed by alloy.
    let deployer = SigningKey::from_slice(&hex::decode(DEPLOYER_KEY).expect("hex")).expect("a key");
    let deployed = send_and_wait(
        &cluster,
        &client_a,
        raw_transaction(
            &deployer,
            0,
            TxKind::Create,
            contracts::store_init_code(),
            200_000,
        ),
    )
    .await;
    assert_eq!(deployed["status"], "0x1", "{deployed}");
    let contract: Address = serde_json::from_value(deployed["contractAddress"].clone()).expect("an address");
    let value = B256::repeat_byte(0x42);
    let called = send_and_wait(
        &cluster,
        &client_a,
        raw_transaction(&deployer, 1, TxKind::Call(contract), value.to_vec(), 100_000),
    )
    .await;
    assert_eq!(called["status"], "0x1", "{called}");
    let logs = called["logs"].as_array().expect("logs");
    assert_eq!(logs.len(), 1, "{called}");
    assert_eq!(
        logs[0]["topics"][0],
        serde_json::to_value(contracts::stored_topic()).expect("json")
    );
    let stored = eth(
        &client_a,
        "eth_getStorageAt",
        rpc_params![contract, "0x0", "latest"],
    )
    .await;
    assert_eq!(stored, serde_json::to_value(value).expect("json"));

    // A third operator: registered by carol, active from the next epoch, withdrawn, unlocked, paid.
    let ws = format!("ws://127.0.0.1:{}", cluster.nodes[a].rpc_port);
    let stake = (50 * ACRE).to_string();
    let carol_path = carol_key.display().to_string();
    acre(&[
        "operator",
        "register",
        "--domain",
        "0",
        "--stake",
        &stake,
        "--nomination-tax",
        "0",
        "--minimum-nominator-stake",
        &ACRE.to_string(),
        "--key",
        &carol_path,
        "--node",
        &ws,
        "--wait",
    ]);
    let node_a = cluster.nodes[a].client().await;
    let carol_operator = |domains: &acre_rpc_api::DomainsInfo| {
        domains.domains[0]
            .operators
            .iter()
            .find(|operator| operator.owner.to_string() == account("carol"))
            .cloned()
    };
    let registered =
        carol_operator(&node_a.domains().await.expect("rpc").expect("domains")).expect("registered");
    cluster
        .wait_for("carol's operator to be active", Duration::from_secs(180), || {
            let node_a = &node_a;
            async move {
                let domains = node_a.domains().await.expect("rpc").expect("domains");
                carol_operator(&domains).is_some_and(|operator| operator.stake.0 > 0)
            }
        })
        .await;
    let carol_address = acre_rpc_api::Hex32(
        hex::decode(account("carol"))
            .expect("hex")
            .try_into()
            .expect("32"),
    );
    let position = node_a
        .nominator(registered.id, carol_address)
        .await
        .expect("rpc")
        .expect("a position");
    // Half the shares: an owner keeps at least the minimum operator stake while registered.
    let before = node_a.account(carol_address).await.expect("rpc").balance.0;
    acre(&[
        "operator",
        "withdraw",
        "--operator",
        &registered.id.to_string(),
        "--shares",
        &(position.shares.0 / 2).to_string(),
        "--key",
        &carol_path,
        "--node",
        &ws,
        "--wait",
    ]);
    cluster
        .wait_for("carol's withdrawal to unlock", Duration::from_secs(240), || {
            let node_a = &node_a;
            async move {
                let info = node_a.nominator(registered.id, carol_address).await.expect("rpc");
                info.is_some_and(|info| {
                    info.unlocking
                        .iter()
                        .any(|(_, at)| *at <= info.head_domain_number)
                })
            }
        })
        .await;
    acre(&[
        "operator",
        "unlock",
        "--operator",
        &registered.id.to_string(),
        "--key",
        &carol_path,
        "--node",
        &ws,
        "--wait",
    ]);
    let after = node_a.account(carol_address).await.expect("rpc").balance.0;
    assert!(
        after > before + 20 * ACRE,
        "the unlocked stake (about 25 of the 50 staked, storage deposit included) is paid: {before} then \
         {after}"
    );

    // 200 consensus blocks: bundles from both operators in proportion to stake, and both nodes derive
    // the same domain blocks and receipts.
    cluster
        .wait_for(
            "200 consensus blocks on both nodes",
            Duration::from_secs(600),
            || {
                let cluster = &cluster;
                async move {
                    cluster.nodes[a].head().await.best_number >= 200
                        && cluster.nodes[b].head().await.best_number >= 200
                }
            },
        )
        .await;
    let mut by_operator = [0u64; 2];
    for number in 1..=200 {
        let block = node_a
            .block_by_number(number)
            .await
            .expect("rpc")
            .expect("a block");
        for bundle in &block.bundles {
            if let Some(count) = by_operator.get_mut(usize::try_from(bundle.operator).expect("small")) {
                *count += 1;
            }
        }
    }
    let total = by_operator[0] + by_operator[1];
    eprintln!("bundles in consensus blocks 1..=200 by operator (alice, bob): {by_operator:?}");
    let bob_share = by_operator[1] as f64 / total as f64;
    assert!(total >= 100, "bundles in 200 blocks: {by_operator:?}");
    // Stakes 1000:500 (carol's 50 came and went): bob's expected share is a third; the bounds are
    // about four standard deviations for this many bundles.
    assert!(
        (0.2..0.47).contains(&bob_share),
        "bundles by operator {by_operator:?}"
    );
    let head = quantity(&eth(&client_a, "eth_blockNumber", rpc_params![]).await)
        .min(quantity(&eth(&client_b, "eth_blockNumber", rpc_params![]).await));
    assert!(head >= 100, "domain blocks: {head}");
    eprintln!(
        "domain blocks compared between the two nodes: {}",
        head.saturating_sub(3)
    );
    for number in 0..head.saturating_sub(3) {
        let tag = format!("0x{number:x}");
        let ours = eth(&client_a, "eth_getBlockByNumber", rpc_params![&tag, false]).await;
        let theirs = eth(&client_b, "eth_getBlockByNumber", rpc_params![&tag, false]).await;
        assert_eq!(ours["hash"], theirs["hash"], "domain block {number}");
        assert_eq!(
            ours["receiptsRoot"], theirs["receiptsRoot"],
            "receipt of domain block {number}"
        );
    }
    for node in &cluster.nodes {
        let log = std::fs::read_to_string(cluster.dir().join(format!("{}.log", node.name))).expect("log");
        assert!(
            !log.contains("RECEIPT MISMATCH"),
            "{} saw a receipt mismatch",
            node.name
        );
        assert!(
            log.contains("bundle produced"),
            "{} produced no bundle",
            node.name
        );
    }
}
