//! The Ethereum JSON-RPC over HTTP, as a tool uses it: a contract deployed and called through
//! `eth_sendRawTransaction`, blocks produced from bundles of the pending transactions, and every answer
//! parsed back into alloy's types (what alloy, and so Foundry's `cast`, parse) as well as checked field
//! by field; then each refusal's error code.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use alloy_primitives::{Address, B256, Bytes, TxKind, U64, U256};
use alloy_rpc_types_eth::{Block, BlockTransactions, FeeHistory, Log, Transaction, TransactionReceipt};
use jsonrpsee::core::ClientError;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::rpc_params;
use serde_json::{Value, json};

use acre_execution::domains::evm::{EvmTransaction, address_of, contracts};

use super::*;
use crate::domain::tests::{CHAIN_ID, dev_key, funded_chain, produce, sign, sign_for};

async fn serve() -> (Arc<RwLock<EvmChain>>, HttpClient, ServerHandle) {
    let chain = Arc::new(RwLock::new(funded_chain()));
    let address = "127.0.0.1:0".parse().expect("an address");
    let (handle, local) = start_eth_rpc(address, Arc::clone(&chain))
        .await
        .expect("the server starts");
    let client = HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(20))
        .build(format!("http://{local}"))
        .expect("a client");
    (chain, client, handle)
}

fn hex(transaction: &EvmTransaction) -> String {
    format!("0x{}", hex::encode(transaction.raw()))
}

/// The error code and message of a failed call.
fn error(result: Result<impl std::fmt::Debug, ClientError>) -> (i32, String, Option<String>) {
    match result {
        Err(ClientError::Call(error)) => (
            error.code(),
            error.message().to_owned(),
            error.data().map(|data| data.get().to_owned()),
        ),
        other => panic!("expected an error response, got {other:?}"),
    }
}

async fn send(client: &HttpClient, transaction: &EvmTransaction) -> B256 {
    let hash: B256 = client
        .request("eth_sendRawTransaction", rpc_params![hex(transaction)])
        .await
        .expect("admitted");
    assert_eq!(hash, transaction.hash());
    hash
}

#[tokio::test]
async fn a_contract_is_deployed_called_and_queried_over_http() {
    let (chain, client, handle) = serve().await;
    let key = dev_key(0);
    let me = address_of(&key);

    let id: U64 = client
        .request("eth_chainId", rpc_params![])
        .await
        .expect("answers");
    assert_eq!(id, U64::from(CHAIN_ID));
    let version: String = client
        .request("net_version", rpc_params![])
        .await
        .expect("answers");
    assert_eq!(version, CHAIN_ID.to_string());
    let number: Value = client
        .request("eth_blockNumber", rpc_params![])
        .await
        .expect("answers");
    assert_eq!(number, json!("0x0"));
    let syncing: bool = client
        .request("eth_syncing", rpc_params![])
        .await
        .expect("answers");
    assert!(!syncing);

    // Deploy the store contract: pending first, then in block 1.
    let deploy = sign(&key, 0, TxKind::Create, contracts::store_init_code(), 200_000);
    let deploy_hash = send(&client, &deploy).await;
    let pending: Transaction = client
        .request("eth_getTransactionByHash", rpc_params![deploy_hash])
        .await
        .expect("pending");
    assert_eq!(pending.block_number, None);
    assert_eq!(pending.inner.signer(), me);
    let nonce: U64 = client
        .request("eth_getTransactionCount", rpc_params![me, "pending"])
        .await
        .expect("answers");
    assert_eq!(nonce, U64::from(1));
    let nonce: U64 = client
        .request("eth_getTransactionCount", rpc_params![me, "latest"])
        .await
        .expect("answers");
    assert_eq!(nonce, U64::ZERO);
    let none: Option<TransactionReceipt> = client
        .request("eth_getTransactionReceipt", rpc_params![deploy_hash])
        .await
        .expect("answers");
    assert!(none.is_none());

    let block = produce(&mut chain.write().expect("lock"));
    let raw: Value = client
        .request("eth_getTransactionReceipt", rpc_params![deploy_hash])
        .await
        .expect("answers");
    assert_eq!(raw["status"], json!("0x1"));
    assert_eq!(raw["type"], json!("0x2"));
    let store = me.create(0);
    let receipt: TransactionReceipt = serde_json::from_value(raw).expect("alloy parses the receipt");
    assert!(receipt.status());
    assert_eq!(receipt.contract_address, Some(store));
    assert_eq!(receipt.from, me);
    assert_eq!(receipt.to, None);
    assert_eq!(receipt.block_hash, Some(block.hash()));
    assert_eq!(receipt.block_number, Some(1));
    assert_eq!(receipt.transaction_index, Some(0));
    assert_eq!(receipt.gas_used, block.receipts[0].gas_used);
    // Base fee 1 gwei plus the whole 1 gwei tip (the maximum is 2 gwei).
    assert_eq!(receipt.effective_gas_price, 2_000_000_000);
    let code: Bytes = client
        .request("eth_getCode", rpc_params![store, "latest"])
        .await
        .expect("answers");
    assert_eq!(code.to_vec(), contracts::store_runtime());

    // Estimate, then store a word: its log, bloom and storage follow.
    let word = U256::from(0x00c0_ffee_u64);
    let data = Bytes::from(word.to_be_bytes::<32>().to_vec());
    let request = json!({"from": me, "to": store, "data": data});
    let estimate: U64 = client
        .request("eth_estimateGas", rpc_params![request.clone()])
        .await
        .expect("estimates");
    assert!(
        estimate > U64::from(21_000) && estimate < U64::from(100_000),
        "{estimate}"
    );
    let gas = u64::try_from(estimate).expect("small");
    let call = sign(&key, 1, TxKind::Call(store), data.to_vec(), gas);
    let call_hash = send(&client, &call).await;
    let block = produce(&mut chain.write().expect("lock"));
    let receipt: TransactionReceipt = client
        .request("eth_getTransactionReceipt", rpc_params![call_hash])
        .await
        .expect("answers");
    assert!(receipt.status(), "the estimate is enough gas");
    let logs = receipt.inner.logs();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].address(), store);
    assert_eq!(logs[0].topics(), &[contracts::stored_topic()]);
    assert_eq!(logs[0].block_hash, Some(block.hash()));
    assert_eq!(logs[0].block_number, Some(2));
    assert_eq!(logs[0].transaction_hash, Some(call_hash));
    assert_eq!(logs[0].transaction_index, Some(0));
    assert_eq!(logs[0].log_index, Some(0));
    let bloom = receipt.inner.logs_bloom();
    assert!(bloom.contains_input(alloy_primitives::BloomInput::Raw(store.as_slice())));
    assert!(bloom.contains_input(alloy_primitives::BloomInput::Raw(
        contracts::stored_topic().as_slice()
    )));
    let slot: B256 = client
        .request("eth_getStorageAt", rpc_params![store, "0x0", "latest"])
        .await
        .expect("answers");
    assert_eq!(slot, B256::from(word));
    let before: B256 = client
        .request("eth_getStorageAt", rpc_params![store, "0x0", "0x1"])
        .await
        .expect("answers");
    assert_eq!(before, B256::ZERO, "block 1's state is before the call");
    let returned: Bytes = client
        .request("eth_call", rpc_params![json!({"to": store}), "latest"])
        .await
        .expect("calls");
    assert_eq!(returned.to_vec(), word.to_be_bytes::<32>().to_vec());

    // Blocks, by number and hash, with hashes or full transactions; the bloom covers the log.
    let full: Block = client
        .request("eth_getBlockByNumber", rpc_params!["latest", true])
        .await
        .expect("answers");
    assert_eq!(full.header.hash, block.hash());
    assert_eq!(full.header.number, 2);
    assert_eq!(full.header.parent_hash, block.parent_hash());
    assert_eq!(full.header.gas_used, block.gas_used);
    assert_eq!(&full.header.logs_bloom, bloom);
    let BlockTransactions::Full(transactions) = &full.transactions else {
        panic!("full transactions asked for");
    };
    assert_eq!(transactions.len(), 1);
    assert_eq!(*transactions[0].inner.tx_hash(), call_hash);
    assert_eq!(transactions[0].block_number, Some(2));
    let by_hash: Block = client
        .request("eth_getBlockByHash", rpc_params![block.hash(), false])
        .await
        .expect("answers");
    assert_eq!(by_hash.transactions, BlockTransactions::Hashes(vec![call_hash]));
    let genesis: Block = client
        .request("eth_getBlockByNumber", rpc_params!["earliest", false])
        .await
        .expect("answers");
    assert_eq!(genesis.header.number, 0);
    let missing: Option<Block> = client
        .request("eth_getBlockByNumber", rpc_params!["0x99", false])
        .await
        .expect("answers");
    assert!(missing.is_none());

    // Logs by range, address and topics.
    let found: Vec<Log> = client
        .request(
            "eth_getLogs",
            rpc_params![json!({"fromBlock": "0x0", "toBlock": "latest", "address": store})],
        )
        .await
        .expect("answers");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].transaction_hash, Some(call_hash));
    let by_topic: Vec<Log> = client
        .request(
            "eth_getLogs",
            rpc_params![json!({"blockHash": block.hash(), "topics": [contracts::stored_topic()]})],
        )
        .await
        .expect("answers");
    assert_eq!(by_topic.len(), 1);
    let other_topic: Vec<Log> = client
        .request(
            "eth_getLogs",
            rpc_params![json!({"fromBlock": "0x1", "topics": [B256::ZERO]})],
        )
        .await
        .expect("answers");
    assert!(other_topic.is_empty());
    let other_address: Vec<Log> = client
        .request(
            "eth_getLogs",
            rpc_params![json!({"address": [Address::ZERO, me]})],
        )
        .await
        .expect("answers");
    assert!(other_address.is_empty());

    let history: FeeHistory = client
        .request("eth_feeHistory", rpc_params!["0x2", "latest", [50.0]])
        .await
        .expect("answers");
    assert_eq!(history.oldest_block, 1);
    assert_eq!(history.base_fee_per_gas, vec![1_000_000_000; 3]);
    assert_eq!(history.reward, Some(vec![vec![1_000_000_000]; 2]));
    let balance: U256 = client
        .request("eth_getBalance", rpc_params![me])
        .await
        .expect("answers");
    assert!(balance < U256::from(1_000u128 * 1_000_000_000_000_000_000) && balance > U256::ZERO);

    handle.stop().expect("stops");
}

#[tokio::test]
async fn refusals_and_bad_parameters_get_ethereum_error_codes() {
    let (chain, client, handle) = serve().await;
    let key = dev_key(0);

    let (code, message, _) = error(
        client
            .request::<B256, _>("eth_sendRawTransaction", rpc_params!["0x1234"])
            .await,
    );
    assert_eq!(code, codes::SERVER, "{message}");
    let wrong_chain = sign_for(
        CHAIN_ID + 1,
        &key,
        0,
        TxKind::Call(Address::ZERO),
        Vec::new(),
        21_000,
    );
    let (code, message, _) = error(
        client
            .request::<B256, _>("eth_sendRawTransaction", rpc_params![hex(&wrong_chain)])
            .await,
    );
    assert_eq!(code, codes::SERVER);
    assert!(message.contains("chain id"), "{message}");
    let transfer = sign(&key, 0, TxKind::Call(Address::ZERO), Vec::new(), 21_000);
    send(&client, &transfer).await;
    let (code, message, _) = error(
        client
            .request::<B256, _>("eth_sendRawTransaction", rpc_params![hex(&transfer)])
            .await,
    );
    assert_eq!(code, codes::SERVER);
    assert!(message.contains("already known"), "{message}");
    produce(&mut chain.write().expect("lock"));
    let (code, message, _) = error(
        client
            .request::<B256, _>("eth_sendRawTransaction", rpc_params![hex(&transfer)])
            .await,
    );
    assert_eq!(code, codes::SERVER);
    assert!(message.contains("nonce too low"), "{message}");

    // Malformed and missing parameters.
    let (code, _, _) = error(
        client
            .request::<U256, _>("eth_getBalance", rpc_params!["0xzz", "latest"])
            .await,
    );
    assert_eq!(code, codes::INVALID_PARAMS);
    let (code, _, _) = error(client.request::<U256, _>("eth_getBalance", rpc_params![]).await);
    assert_eq!(code, codes::INVALID_PARAMS);
    let (code, _, _) = error(
        client
            .request::<Value, _>("eth_getBlockByNumber", rpc_params!["newest", false])
            .await,
    );
    assert_eq!(code, codes::INVALID_PARAMS);
    let (code, _, _) = error(
        client
            .request::<B256, _>("eth_sendRawTransaction", rpc_params!["not hex"])
            .await,
    );
    assert_eq!(code, codes::INVALID_PARAMS);
    let (code, _, _) = error(
        client
            .request::<Value, _>("eth_feeHistory", rpc_params!["0x5", "latest", [90.0, 10.0]])
            .await,
    );
    assert_eq!(code, codes::INVALID_PARAMS);
    let (code, message, _) = error(
        client
            .request::<U256, _>("eth_getBalance", rpc_params![Address::ZERO, "0x77"])
            .await,
    );
    assert_eq!(code, codes::SERVER);
    assert!(message.contains("header not found"), "{message}");

    // Limits.
    let (code, _, _) = error(
        client
            .request::<Value, _>(
                "eth_getLogs",
                rpc_params![json!({"fromBlock": "0x0", "toBlock": "0x2710"})],
            )
            .await,
    );
    assert_eq!(code, codes::LIMIT_EXCEEDED);
    let (code, _, _) = error(
        client
            .request::<Value, _>(
                "eth_getLogs",
                rpc_params![json!({"fromBlock": "0x2", "toBlock": "0x1"})],
            )
            .await,
    );
    assert_eq!(code, codes::INVALID_PARAMS);

    // A reverting call: init code `PUSH1 0x2a PUSH1 0 MSTORE PUSH1 32 PUSH1 0 REVERT` reverts with the
    // word 42, which both eth_call and eth_estimateGas return as the error's data.
    let reverting = json!({"data": "0x602a60005260206000fd"});
    let word = format!("\"0x{}\"", hex::encode(U256::from(42).to_be_bytes::<32>()));
    let (code, message, data) = error(
        client
            .request::<Bytes, _>("eth_call", rpc_params![reverting.clone()])
            .await,
    );
    assert_eq!(
        (code, message.as_str()),
        (codes::EXECUTION_REVERTED, "execution reverted")
    );
    assert_eq!(data, Some(word.clone()));
    let (code, _, data) = error(
        client
            .request::<U64, _>("eth_estimateGas", rpc_params![reverting])
            .await,
    );
    assert_eq!(code, codes::EXECUTION_REVERTED);
    assert_eq!(data, Some(word));
    let (code, _, _) = error(
        client
            .request::<Bytes, _>(
                "eth_call",
                rpc_params![json!({"to": Address::ZERO}), "latest", json!({})],
            )
            .await,
    );
    assert_eq!(code, codes::INVALID_PARAMS, "state overrides are refused");

    handle.stop().expect("stops");
}

#[tokio::test]
async fn the_server_answers_over_websocket_too() {
    let chain = Arc::new(RwLock::new(funded_chain()));
    let address = "127.0.0.1:0".parse().expect("an address");
    let (handle, local) = start_eth_rpc(address, chain).await.expect("the server starts");
    let client = jsonrpsee::ws_client::WsClientBuilder::default()
        .build(format!("ws://{local}"))
        .await
        .expect("connects");
    let id: U64 = client
        .request("eth_chainId", rpc_params![])
        .await
        .expect("answers");
    assert_eq!(id, U64::from(CHAIN_ID));
    let head: Block = client
        .request("eth_getBlockByNumber", rpc_params!["latest", false])
        .await
        .expect("answers");
    assert_eq!(head.header.number, 0);
    handle.stop().expect("stops");
}
