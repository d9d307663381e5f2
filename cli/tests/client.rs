//! `acre balance`, `acre transfer`, `acre chain`, `acre block` against an in-process mock node.
//!
//! The mock serves the real `acre_rpc_api::ChainApi` on loopback over WebSocket. Its accounts are an
//! `InMemoryAccounts` that submitted transactions really go through (`SignedTransaction::decode`, then
//! `apply_transaction` with a real `RuntimeConfig`, so bad signatures, wrong chains, low fees, nonces and
//! overdrafts are refused with the runtime's message), and each accepted transaction is announced shortly
//! after in a new head that lists its hash, as a node's next block would. A mock that does not author keeps
//! accepted transactions pending: `chain_account` does not see them, `chain_nextNonce` does, like a node's
//! pool. The real `acre` binary runs against it. Keys are fixed, so hashes are deterministic.

use std::process::{Command, Output};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use acre_execution::{
    Account, AccountStore, Address, InMemoryAccounts, RuntimeConfig, SignedTransaction, Transfer,
    apply_transaction,
};
use acre_rpc_api::{
    AccountInfo, Balance, BlockInfo, ChainApiServer, ChainHead, DomainsInfo, FarmerReport, Hex32, HexBytes,
    NetworkInfo, NodeApiServer, NominatorInfo, PeerSummary, RawBlock, SyncInfo, error, error_codes,
};
use ed25519_dalek::SigningKey;
use jsonrpsee::core::{SubscriptionResult, async_trait};
use jsonrpsee::server::{PendingSubscriptionSink, Server, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;
use tokio::sync::broadcast;

const ALICE_FUNDS: u128 = 1_000_000;
/// What the mock reports as space pledged: 1.5 GiB.
const SPACE_PLEDGED: u64 = 3 << 29;

fn alice() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

fn bob() -> SigningKey {
    SigningKey::from_bytes(&[2; 32])
}

/// The mock chain's runtime: the genesis hash it reports, and the dev chain's fees.
fn runtime() -> RuntimeConfig {
    RuntimeConfig {
        genesis_hash: acre_consensus::Blake3Hash(block_hash(0).0),
        min_fee: 1_000,
        byte_fee: 1,
        existential_deposit: 1,
        block_reward: 0,
        vote_reward: 0,
    }
}

/// The fee `acre transfer` pays by default.
const DEFAULT_FEE: u128 = 10_000;

/// A recognisable hash for block `number`.
fn block_hash(number: u64) -> Hex32 {
    let mut hash = [0xbb; 32];
    hash[..8].copy_from_slice(&number.to_le_bytes());
    Hex32(hash)
}

#[derive(Debug)]
struct Chain {
    /// The state of the best block.
    accounts: InMemoryAccounts,
    /// The state after every accepted transaction, included or pending (what a node's pool sees).
    pooled: InMemoryAccounts,
    blocks: Vec<BlockInfo>,
}

#[derive(Debug, Clone)]
struct MockNode {
    chain: Arc<Mutex<Chain>>,
    heads: broadcast::Sender<BlockInfo>,
    /// Whether accepted transactions get into blocks (off to test `--wait` timing out).
    authoring: bool,
}

impl MockNode {
    fn new(authoring: bool) -> Self {
        let mut accounts = InMemoryAccounts::default();
        accounts.set_account(
            Address::of(&alice()),
            Account {
                balance: ALICE_FUNDS,
                nonce: 0,
            },
        );
        let genesis = BlockInfo {
            number: 0,
            hash: block_hash(0),
            parent_hash: Hex32::default(),
            slot: 0,
            state_root: Hex32([0x5e; 32]),
            author: None,
            reward_address: None,
            solution_range: 1 << 40,
            transactions: Vec::new(),
            segment_headers: vec![0],
            votes: Vec::new(),
            bundles: Vec::new(),
        };
        Self {
            chain: Arc::new(Mutex::new(Chain {
                pooled: accounts.clone(),
                accounts,
                blocks: vec![genesis],
            })),
            heads: broadcast::channel(16).0,
            authoring,
        }
    }

    fn chain(&self) -> MutexGuard<'_, Chain> {
        self.chain.lock().expect("mock node lock")
    }

    /// Appends a block holding `transaction` and announces it.
    fn author(&self, transaction: Hex32) {
        let block = {
            let mut chain = self.chain();
            let parent = chain.blocks.last().expect("genesis").clone();
            let number = parent.number + 1;
            let block = BlockInfo {
                number,
                hash: block_hash(number),
                parent_hash: parent.hash,
                slot: number * 6,
                state_root: Hex32([0x5e; 32]),
                author: Some(Hex32([9; 32])),
                reward_address: Some(Hex32([9; 32])),
                solution_range: 1 << 40,
                transactions: vec![transaction],
                segment_headers: Vec::new(),
                votes: Vec::new(),
                bundles: Vec::new(),
            };
            chain.blocks.push(block.clone());
            block
        };
        // No subscriber is fine: nobody is waiting for this block.
        let _ = self.heads.send(block);
    }
}

/// The mock's place on the network: a timekeeper with one peer, caught up.
struct MockNetwork;

#[async_trait]
impl NodeApiServer for MockNetwork {
    async fn farmers(&self) -> Result<Vec<FarmerReport>, ErrorObjectOwned> {
        Ok(Vec::new())
    }

    async fn network(&self) -> Result<NetworkInfo, ErrorObjectOwned> {
        Ok(NetworkInfo {
            peer_id: Some("12D3KooWMock".into()),
            listening: vec!["/ip4/127.0.0.1/tcp/30333/p2p/12D3KooWMock".into()],
            peers: vec![PeerSummary {
                peer_id: "12D3KooWPeer".into(),
                agent: "acre/0.1.0".into(),
                score: -5,
            }],
            timekeeper: true,
            sync: SyncInfo {
                state: "idle".into(),
                best: 1,
                target: 1,
                blocks_per_second: 0.0,
                eta_seconds: None,
            },
        })
    }
}

#[async_trait]
impl ChainApiServer for MockNode {
    async fn head(&self) -> Result<ChainHead, ErrorObjectOwned> {
        let chain = self.chain();
        let best = chain.blocks.last().expect("genesis");
        let finalized = best.number.saturating_sub(1);
        Ok(ChainHead {
            chain: "mock".to_owned(),
            genesis_hash: block_hash(0),
            best_number: best.number,
            best_hash: best.hash,
            best_slot: best.slot,
            finalized_number: finalized,
            archived_number: None,
            finalized_or_archived_number: finalized,
            segment_count: 1,
            current_slot: best.slot + 1,
            solution_range: best.solution_range,
            space_pledged: SPACE_PLEDGED,
        })
    }

    async fn block_by_number(&self, number: u64) -> Result<Option<BlockInfo>, ErrorObjectOwned> {
        let index = usize::try_from(number).map_err(|_| error(error_codes::BAD_ENCODING, "number"))?;
        Ok(self.chain().blocks.get(index).cloned())
    }

    async fn block_by_hash(&self, hash: Hex32) -> Result<Option<BlockInfo>, ErrorObjectOwned> {
        Ok(self
            .chain()
            .blocks
            .iter()
            .find(|block| block.hash == hash)
            .cloned())
    }

    async fn raw_block(&self, _hash: Hex32) -> Result<Option<RawBlock>, ErrorObjectOwned> {
        // The mock keeps summaries only, no encoded blocks.
        Ok(None)
    }

    async fn submit_block(&self, _block: RawBlock) -> Result<Hex32, ErrorObjectOwned> {
        Err(error(
            error_codes::INVALID_BLOCK,
            "the mock node imports no blocks",
        ))
    }

    async fn account(&self, address: Hex32) -> Result<AccountInfo, ErrorObjectOwned> {
        let account = self.chain().accounts.account(&Address(address.0));
        Ok(AccountInfo {
            balance: Balance(account.balance),
            nonce: account.nonce,
        })
    }

    async fn next_nonce(&self, address: Hex32) -> Result<u64, ErrorObjectOwned> {
        Ok(self.chain().pooled.account(&Address(address.0)).nonce)
    }

    async fn domains(&self) -> Result<Option<DomainsInfo>, ErrorObjectOwned> {
        Ok(None)
    }

    async fn nominator(
        &self,
        _operator: u64,
        _address: Hex32,
    ) -> Result<Option<NominatorInfo>, ErrorObjectOwned> {
        Ok(None)
    }

    async fn submit_bundle(&self, _bundle: HexBytes) -> Result<Hex32, ErrorObjectOwned> {
        Err(error(
            error_codes::INVALID_TRANSACTION,
            "this mock chain has no domains",
        ))
    }

    async fn submit_transaction(&self, transaction: HexBytes) -> Result<Hex32, ErrorObjectOwned> {
        let transaction = SignedTransaction::decode(&transaction.0)
            .map_err(|refusal| error(error_codes::BAD_ENCODING, refusal.to_string()))?;
        {
            let mut chain = self.chain();
            apply_transaction(&mut chain.pooled, &runtime(), &transaction)
                .map_err(|refusal| error(error_codes::INVALID_TRANSACTION, refusal.to_string()))?;
            if self.authoring {
                apply_transaction(&mut chain.accounts, &runtime(), &transaction)
                    .expect("the best state is the pooled state when authoring");
            }
        }
        let hash = Hex32(transaction.hash().0);
        if self.authoring {
            let node = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                node.author(hash);
            });
        }
        Ok(hash)
    }

    async fn subscribe_new_heads(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        let mut heads = self.heads.subscribe();
        let sink = pending.accept().await?;
        loop {
            tokio::select! {
                () = sink.closed() => return Ok(()),
                head = heads.recv() => {
                    let Ok(head) = head else { return Ok(()) };
                    sink.send(serde_json::value::to_raw_value(&head)?).await?;
                }
            }
        }
    }
}

/// A running mock node and a directory with Alice's and Bob's key files.
struct Harness {
    url: String,
    handle: ServerHandle,
    dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

impl Harness {
    fn start(authoring: bool) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let (url, handle) = runtime.block_on(async {
            let server = Server::builder().build("127.0.0.1:0").await.expect("binds");
            let address = server.local_addr().expect("bound address");
            (
                format!("ws://{address}"),
                server.start({
                    let mut methods = MockNode::new(authoring).into_rpc();
                    methods.merge(MockNetwork.into_rpc()).expect("distinct methods");
                    methods
                }),
            )
        });
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, seed) in [("alice.key", 1u8), ("bob.key", 2)] {
            std::fs::write(dir.path().join(name), format!("{}\n", hex::encode([seed; 32]))).expect("key");
        }
        Self {
            url,
            handle,
            dir,
            _runtime: runtime,
        }
    }

    fn key(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().expect("utf-8").to_owned()
    }

    /// Runs `acre ARGS --node URL`.
    fn acre(&self, args: &[&str]) -> Output {
        acre(&[args, &["--node", &self.url]].concat(), &[])
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // Already stopped is fine.
        let _ = self.handle.stop();
    }
}

/// Runs the `acre` binary with `ACRE_NODE` only as given.
fn acre(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_acre"))
        .args(args)
        .env_remove("ACRE_NODE")
        .envs(env.iter().copied())
        .output()
        .expect("running acre")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "acre failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("utf-8")
}

fn stderr_of_failure(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "acre succeeded: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stderr.clone()).expect("utf-8")
}

/// The hash `acre transfer` must report: signing is deterministic.
fn transfer_hash(key: &SigningKey, to: &SigningKey, amount: u128, fee: u128, nonce: u64) -> String {
    let transfer = Transfer {
        from: Address::of(key),
        to: Address::of(to),
        amount,
        fee,
        nonce,
    };
    hex::encode(
        SignedTransaction::sign(transfer, runtime().genesis_hash, key)
            .hash()
            .0,
    )
}

fn account_json(output: &Output) -> serde_json::Value {
    serde_json::from_str(stdout(output).trim()).expect("AccountInfo JSON")
}

#[test]
fn transfer_with_wait_moves_the_balance() {
    let node = Harness::start(true);
    let alice_key = node.key("alice.key");
    let bob_address = Address::of(&bob()).to_string();

    let before = stdout(&node.acre(&["balance", &alice_key]));
    assert!(before.contains(&format!("balance  {ALICE_FUNDS}")), "{before}");
    assert!(before.contains("nonce    0"), "{before}");

    let sent = stdout(&node.acre(&[
        "transfer",
        "--key",
        &alice_key,
        "--to",
        &bob_address,
        "--amount",
        "250",
        "--fee",
        "2000",
        "--wait",
    ]));
    let lines: Vec<&str> = sent.lines().collect();
    assert_eq!(lines.len(), 2, "{sent}");
    assert_eq!(lines[0], transfer_hash(&alice(), &bob(), 250, 2000, 0));
    assert!(lines[1].starts_with("included in block 1 ("), "{sent}");

    let bob_account = account_json(&node.acre(&["balance", &bob_address, "--json"]));
    assert_eq!(bob_account, serde_json::json!({ "balance": "250", "nonce": 0 }));
    let alice_account = account_json(&node.acre(&["balance", &alice_key, "--json"]));
    assert_eq!(
        alice_account,
        serde_json::json!({ "balance": (ALICE_FUNDS - 2250).to_string(), "nonce": 1 })
    );

    // The node from ACRE_NODE, the recipient as a key file, the nonce from the node.
    let env = [("ACRE_NODE", node.url.as_str())];
    let bob_key = node.key("bob.key");
    let again = stdout(&acre(
        &[
            "transfer", "--key", &alice_key, "--to", &bob_key, "--amount", "50", "--wait",
        ],
        &env,
    ));
    assert_eq!(
        again.lines().next(),
        Some(transfer_hash(&alice(), &bob(), 50, DEFAULT_FEE, 1).as_str())
    );
    assert!(again.contains("included in block 2 ("), "{again}");
    let bob_account = account_json(&acre(&["balance", &bob_key, "--json"], &env));
    assert_eq!(bob_account["balance"], "300");
}

#[test]
fn chain_and_block_queries_print_the_node_view() {
    let node = Harness::start(true);
    let bob_address = Address::of(&bob()).to_string();
    stdout(&node.acre(&[
        "transfer",
        "--key",
        &node.key("alice.key"),
        "--to",
        &bob_address,
        "--amount",
        "7",
        "--wait",
    ]));

    let json = stdout(&node.acre(&["chain", "--json"]));
    assert_eq!(json.lines().count(), 1, "{json}");
    let head: serde_json::Value = serde_json::from_str(&json).expect("one JSON object");
    assert!(head.is_object());
    assert_eq!(head["best_number"], 1);
    assert_eq!(head["best_hash"], block_hash(1).to_string());
    assert_eq!(head["finalized_or_archived_number"], 0);
    assert_eq!(head["segment_count"], 1);

    let human = stdout(&node.acre(&["chain"]));
    assert!(
        human.contains(&format!("best block      #1 {} (slot 6)", block_hash(1))),
        "{human}"
    );
    assert!(human.contains("archived        none yet"), "{human}");
    // The node's place on the network: a timekeeper with one peer.
    assert!(
        human.contains("proof of time   timekeeper (proves it)"),
        "{human}"
    );
    assert!(human.contains("peers           1\n"), "{human}");
    assert!(human.contains("12D3KooWPeer acre/0.1.0 (score -5)"), "{human}");
    assert!(
        human.contains("sync            idle (best #1, peers' best #1)"),
        "{human}"
    );
    assert!(
        human.contains("listening       /ip4/127.0.0.1/tcp/30333/p2p/12D3KooWMock"),
        "{human}"
    );
    assert_eq!(head["network"]["timekeeper"], true, "{json}");
    assert_eq!(head["network"]["sync"]["state"], "idle", "{json}");
    assert!(
        human.contains("space pledged   1.50 GiB (1610612736 bytes)"),
        "{human}"
    );

    let hash = transfer_hash(&alice(), &bob(), 7, DEFAULT_FEE, 0);
    let by_number = stdout(&node.acre(&["block", "1", "--json"]));
    let block: serde_json::Value = serde_json::from_str(&by_number).expect("BlockInfo JSON");
    assert_eq!(block["transactions"], serde_json::json!([hash]));
    let by_hash = stdout(&node.acre(&["block", &block_hash(1).to_string()]));
    assert!(by_hash.contains("number          1\n"), "{by_hash}");
    assert!(by_hash.contains(&hash), "{by_hash}");
    let genesis = stdout(&node.acre(&["block", "0"]));
    assert!(genesis.contains("author          none (genesis)"), "{genesis}");

    let missing = stderr_of_failure(&node.acre(&["block", "7"]));
    assert!(
        missing.contains(&format!("the node at {} has no block #7", node.url)),
        "{missing}"
    );
    let garbage = stderr_of_failure(&node.acre(&["block", "seven"]));
    assert!(
        garbage.contains("neither a block number nor a block hash"),
        "{garbage}"
    );
}

#[test]
fn failures_exit_nonzero_with_clear_messages() {
    let node = Harness::start(true);
    let alice_key = node.key("alice.key");
    let bob_address = Address::of(&bob()).to_string();

    let bad_address = stderr_of_failure(&node.acre(&["balance", "xyz"]));
    assert!(
        bad_address.contains("\"xyz\" is not an account address"),
        "{bad_address}"
    );
    let bad_recipient =
        stderr_of_failure(&node.acre(&["transfer", "--key", &alice_key, "--to", "abcd", "--amount", "1"]));
    assert!(bad_recipient.contains("the recipient"), "{bad_recipient}");

    // A port that was just free: nothing listens there.
    let port = acre_tests::free_port();
    let unreachable = format!("ws://127.0.0.1:{port}");
    let refused = stderr_of_failure(&acre(&["balance", &bob_address, "--node", &unreachable], &[]));
    assert!(
        refused.contains(&format!("cannot reach the node at {unreachable}")),
        "{refused}"
    );

    let overdraft = node.acre(&[
        "transfer",
        "--key",
        &alice_key,
        "--to",
        &bob_address,
        "--amount",
        "2000000",
    ]);
    let message = stderr_of_failure(&overdraft);
    assert!(
        message.contains(&format!("the node at {} refused", node.url)),
        "{message}"
    );
    assert!(
        message.contains("needs 2010000 (error 1001, invalid transaction)"),
        "{message}"
    );
    assert!(overdraft.stdout.is_empty(), "no hash for a refused transaction");

    let replay = stderr_of_failure(&node.acre(&[
        "transfer",
        "--key",
        &alice_key,
        "--to",
        &bob_address,
        "--amount",
        "1",
        "--nonce",
        "5",
    ]));
    assert!(replay.contains("nonce 5, expected 0"), "{replay}");

    // Nothing was applied.
    let alice_account = account_json(&node.acre(&["balance", &alice_key, "--json"]));
    assert_eq!(
        alice_account,
        serde_json::json!({ "balance": ALICE_FUNDS.to_string(), "nonce": 0 })
    );
}

#[test]
fn waiting_gives_up_when_no_block_includes_the_transaction() {
    let node = Harness::start(false);
    let output = node.acre(&[
        "transfer",
        "--key",
        &node.key("alice.key"),
        "--to",
        &node.key("bob.key"),
        "--amount",
        "3",
        "--wait",
        "--timeout",
        "1",
    ]);
    let message = stderr_of_failure(&output);
    assert!(
        message.contains("was not included in a block within 1 s"),
        "{message}"
    );
    // The node accepted it, so its hash was printed before waiting.
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        transfer_hash(&alice(), &bob(), 3, DEFAULT_FEE, 0)
    );
}

#[test]
fn back_to_back_transfers_take_their_nonces_from_the_pool() {
    // The mock does not author: both transfers stay pending, and the account's nonce stays 0.
    let node = Harness::start(false);
    let send = |amount: &str| {
        stdout(&node.acre(&[
            "transfer",
            "--key",
            &node.key("alice.key"),
            "--to",
            &node.key("bob.key"),
            "--amount",
            amount,
        ]))
    };
    assert_eq!(
        send("3").trim(),
        transfer_hash(&alice(), &bob(), 3, DEFAULT_FEE, 0)
    );
    assert_eq!(
        send("4").trim(),
        transfer_hash(&alice(), &bob(), 4, DEFAULT_FEE, 1)
    );
    let alice_account = account_json(&node.acre(&["balance", &node.key("alice.key"), "--json"]));
    assert_eq!(alice_account["nonce"], 0, "nothing was included");
}

#[test]
fn fees_below_the_chains_minimum_are_refused_with_the_minimum() {
    let node = Harness::start(true);
    let refused = stderr_of_failure(&node.acre(&[
        "transfer",
        "--key",
        &node.key("alice.key"),
        "--to",
        &node.key("bob.key"),
        "--amount",
        "3",
        "--fee",
        "1",
    ]));
    assert!(
        refused.contains("fee 1 is below the minimum of 1202"),
        "{refused}"
    );
}
