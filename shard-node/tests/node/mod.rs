//! A real shard node process against a real anvil with the real contracts: the fixture
//! (`cifer_bindings::test_utils::TestChain` with every node's registered key replaced by a
//! real ML-KEM-768 key), the node's key files and config, the process (killed on drop), and
//! the requests a black box and a user would send.

#![allow(dead_code, unreachable_pub, reason = "shared by several test binaries")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::Provider;
use cifer_bindings::SecretsController::SecretsControllerEvents;
use cifer_bindings::suite;
use cifer_bindings::test_utils::{
    CHAIN_ID, CLUSTER_ID, TestChain, controller_events, mined, test_bytes,
};
use cifer_core::{EncapsulationKey, Seed};
use cifer_custody::{Bundle, create_bundle, release_key_digest, sign_digest};
use k256::ecdsa::SigningKey;
use serde_json::{Value, json};

/// The fixture node this process plays (index into the cluster; slot = index + 1).
pub const OUR_INDEX: usize = 1;
/// Its slot.
pub const OUR_SLOT: u8 = 2;
/// Generous deadlines: the machine is shared with builds.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// anvil + contracts + real node keys + this node's key files.
pub struct Fixture {
    pub chain: TestChain,
    pub dir: tempfile::TempDir,
    /// The five nodes' encapsulation keys, in slot order (ours at [`OUR_INDEX`]).
    pub node_eks: Vec<EncapsulationKey>,
    pub identity: PathBuf,
    pub sealing_key: PathBuf,
    /// The registered black box's signer (anvil account 8).
    pub bb_key: SigningKey,
    pub bb_account: Address,
}

/// anvil dev account `i`'s key as a k256 0.14 key (alloy's is k256 0.13: through bytes).
pub fn dev_key(chain: &TestChain, i: usize) -> SigningKey {
    let bytes: [u8; 32] = chain.anvil.keys()[i].to_bytes().into();
    SigningKey::from_slice(&bytes).unwrap()
}

impl Fixture {
    pub async fn new() -> Self {
        let chain = TestChain::start().await;
        let dir = tempfile::tempdir().unwrap();
        let identity = dir.path().join("node.identity");
        let sealing_key = dir.path().join("sealing.key");
        let ours = cifer_shard_node::identity::generate(&identity).unwrap();
        cifer_store::SealingKey::generate(&sealing_key).unwrap();
        let mut node_eks = Vec::new();
        for i in 0..5 {
            let ek = if i == OUR_INDEX {
                ours.encapsulation_key()
            } else {
                Seed::generate_os().unwrap().encapsulation_key()
            };
            mined(
                chain
                    .registry
                    .updateNode(
                        chain.node_ids[i],
                        format!("http://node{}.cifer.test", i + 1),
                        Bytes::copy_from_slice(ek.as_bytes()),
                        B256::from_slice(&test_bytes(&[b'u', u8::try_from(i).unwrap()], 32)),
                    )
                    .from(chain.governance())
                    .send()
                    .await,
            )
            .await;
            node_eks.push(ek);
        }
        let bb_key = dev_key(&chain, 8);
        let bb_account = chain.accounts[7];
        Self { chain, dir, node_eks, identity, sealing_key, bb_key, bb_account }
    }

    pub fn sqlite_url(&self) -> String {
        format!("sqlite:{}", self.dir.path().join("shard.db").display())
    }

    /// A config file for a node on `port` with `db_url`, extra TOML lines, and the
    /// fixture's anvil (plus `extra_rpcs`) as RPC.
    pub fn write_config(
        &self,
        name: &str,
        port: u16,
        db_url: &str,
        window: u64,
        extra: &str,
        extra_rpcs: &[String],
    ) -> PathBuf {
        let mut rpcs = vec![self.chain.endpoint()];
        rpcs.extend_from_slice(extra_rpcs);
        let text = format!(
            r#"listen = "127.0.0.1:{port}"
database_url = "{db_url}"
sealing_key = "{}"
identity = "{}"
node_id = {}
log_format = "compact"
max_body_bytes = 65536
{extra}

[[chains]]
chain_id = {CHAIN_ID}
rpc_urls = {rpcs:?}
secrets_controller = "{}"
cluster_registry = "{}"
start_block = {}
freshness_window = {window}
max_lag_secs = 3600
poll_interval_ms = 100
rpc_timeout_ms = 1000
"#,
            self.sealing_key.display(),
            self.identity.display(),
            self.chain.node_ids[OUR_INDEX],
            self.chain.controller.address(),
            self.chain.registry.address(),
            self.chain.deploy_block,
        );
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A fresh creation bundle for cluster 1, signed by the registered black box.
    pub fn bundle(&self) -> Bundle {
        create_bundle(CHAIN_ID, CLUSTER_ID, 3, &self.node_eks, &self.bb_key).unwrap()
    }

    /// Registers `bundle`'s key on chain as a secret owned by `owner`; returns its id.
    pub async fn create_secret(&self, owner: Address, bundle: &Bundle) -> U256 {
        let receipt = mined(
            self.chain
                .controller
                .createSecret(
                    CLUSTER_ID,
                    suite::ML_KEM_768,
                    Bytes::from(bundle.encapsulation_key.clone()),
                )
                .from(owner)
                .send()
                .await,
        )
        .await;
        let [SecretsControllerEvents::SecretCreated(ev)] = &controller_events(&receipt)[..] else {
            panic!("expected one SecretCreated");
        };
        ev.secretId
    }

    pub async fn latest(&self) -> u64 {
        self.chain.provider.get_block_number().await.unwrap()
    }

    pub fn owner(&self) -> (Address, SigningKey) {
        (self.chain.accounts[1], dev_key(&self.chain, 1))
    }

    pub fn delegate(&self) -> (Address, SigningKey) {
        (self.chain.accounts[2], dev_key(&self.chain, 2))
    }

    pub fn stranger(&self) -> (Address, SigningKey) {
        (self.chain.accounts[4], dev_key(&self.chain, 4))
    }
}

/// A localhost port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The node process; killed (SIGKILL) on drop unless stopped before. Its log is printed
/// when a test panics.
pub struct NodeProcess {
    child: Option<Child>,
    pub base: String,
    pub log: PathBuf,
}

impl NodeProcess {
    pub fn spawn(config: &Path, port: u16) -> Self {
        let log = config.with_extension(format!("{port}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cifer-shard-node"))
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn cifer-shard-node");
        Self { child: Some(child), base: format!("http://127.0.0.1:{port}"), log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Waits until `/health` answers with this node's head at least `min_head`.
    pub async fn wait_healthy(&mut self, client: &reqwest::Client, min_head: u64) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("node exited with {status}; log:\n{}", self.log_text());
            }
            if let Ok(r) = client.get(self.url("/health")).send().await {
                let body: Value = r.json().await.unwrap();
                if body["status"] == "ok" && body["chains"][0]["head"].as_u64() >= Some(min_head) {
                    return body;
                }
            }
            assert!(
                Instant::now() < deadline,
                "node not healthy at head {min_head}; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `/health` answers at all (any status).
    pub async fn wait_up(&mut self, client: &reqwest::Client) -> (u16, Value) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("node exited with {status}; log:\n{}", self.log_text());
            }
            if let Ok(r) = client.get(self.url("/health")).send().await {
                return (r.status().as_u16(), r.json().await.unwrap());
            }
            assert!(Instant::now() < deadline, "node not up; log:\n{}", self.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then waits for a graceful exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let mut child = self.child.take().unwrap();
        let status =
            Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL (no shutdown at all), waiting for the process to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("---- node log ({}) ----\n{}", self.log.display(), self.log_text());
        }
    }
}

/// `0x`-hex.
pub fn hx(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// The `POST /v1/fragments` body.
pub fn delivery(secret_id: U256, black_box: Address, bundle: &Bundle) -> Value {
    json!({
        "chainId": bundle.chain_id,
        "secretId": secret_id.to_string(),
        "blackBox": black_box.to_string(),
        "bundle": {
            "chainId": bundle.chain_id,
            "clusterId": bundle.cluster_id,
            "encapsulationKey": hx(&bundle.encapsulation_key),
            "commitments": hx(&bundle.commitments),
            "sealed": bundle.sealed.iter().map(|s| hx(s)).collect::<Vec<_>>(),
            "signature": hx(&bundle.signature),
        }
    })
}

/// A user request under construction.
#[derive(Clone, Debug)]
pub enum UserRequest {
    Typed(cifer_auth::TypedRequest),
    Seed(String),
}

impl UserRequest {
    pub fn typed(f: &Fixture, secret_id: U256, requester: Address, block: u64) -> Self {
        let mut nonce = [0u8; 32];
        getrandom::fill(&mut nonce).unwrap();
        Self::Typed(cifer_auth::TypedRequest {
            chain_id: CHAIN_ID,
            verifying_contract: f.chain.controller.address().0.0,
            secret_id: secret_id.to_be_bytes::<32>(),
            requester: requester.0.0,
            block_number: block,
            envelope_hash: [0x11; 32],
            response_key_hash: [0x22; 32],
            nonce,
        })
    }

    pub fn seed(secret_id: U256, signer: Address, block: u64) -> Self {
        Self::Seed(format!("{CHAIN_ID}_{secret_id}_{}_{block}", hx(signer.as_slice())))
    }

    pub fn digest(&self) -> [u8; 32] {
        match self {
            Self::Typed(r) => r.digest(),
            Self::Seed(text) => cifer_auth::eip191_hash(text.as_bytes()),
        }
    }

    pub fn chain_and_secret(&self) -> (u64, [u8; 32]) {
        match self {
            Self::Typed(r) => (r.chain_id, r.secret_id),
            Self::Seed(text) => {
                let r = cifer_auth::SeedRequest::parse(text).unwrap();
                (r.chain_id, r.secret_id)
            }
        }
    }

    pub fn json(&self) -> Value {
        match self {
            Self::Typed(r) => json!({
                "kind": "typed",
                "chainId": r.chain_id,
                "verifyingContract": hx(&r.verifying_contract),
                "secretId": U256::from_be_bytes(r.secret_id).to_string(),
                "requester": hx(&r.requester),
                "blockNumber": r.block_number,
                "envelopeHash": hx(&r.envelope_hash),
                "responseKeyHash": hx(&r.response_key_hash),
                "nonce": hx(&r.nonce),
            }),
            Self::Seed(text) => json!({ "kind": "seed", "payload": text }),
        }
    }
}

/// A complete release request: the user's signed request and the black box's fresh,
/// signed response key. Keeps the response seed to open the reply.
pub struct Release {
    pub request: UserRequest,
    pub signature: Vec<u8>,
    pub bb_account: Address,
    pub response_seed: Seed,
    pub response_key: Vec<u8>,
    pub bb_signature: [u8; 65],
}

impl Release {
    /// `request` signed by `user`, the response key signed by `bb_key`.
    pub fn new(
        request: UserRequest,
        user: &SigningKey,
        bb_account: Address,
        bb_key: &SigningKey,
    ) -> Self {
        let signature = sign_digest(user, &request.digest()).unwrap().to_vec();
        let response_seed = Seed::generate_os().unwrap();
        let response_key = response_seed.encapsulation_key().as_bytes().to_vec();
        let (chain_id, secret_id) = request.chain_and_secret();
        let bound = release_key_digest(chain_id, &secret_id, &request.digest(), &response_key);
        let bb_signature = sign_digest(bb_key, &bound).unwrap();
        Self { request, signature, bb_account, response_seed, response_key, bb_signature }
    }

    /// What the black box signs for this request alone.
    pub fn bound(&self) -> [u8; 32] {
        let (chain_id, secret_id) = self.request.chain_and_secret();
        release_key_digest(chain_id, &secret_id, &self.request.digest(), &self.response_key)
    }

    /// This request as an item of `POST /v1/releases`.
    pub fn item_json(&self) -> Value {
        json!({
            "request": self.request.json(),
            "signature": hx(&self.signature),
            "responseKey": hx(&self.response_key),
        })
    }

    pub fn json(&self) -> Value {
        json!({
            "request": self.request.json(),
            "signature": hx(&self.signature),
            "blackBox": {
                "account": self.bb_account.to_string(),
                "responseKey": hx(&self.response_key),
                "signature": hx(&self.bb_signature),
            }
        })
    }
}

/// A `POST /v1/releases` body: `items` in order under one signature by `bb_key` over the
/// batch digest of `signed` (the items' own bindings unless a test forges it).
pub fn batch_json(
    items: &[&Release],
    signed: &[[u8; 32]],
    bb_account: Address,
    bb_key: &SigningKey,
) -> Value {
    let signature = sign_digest(bb_key, &cifer_custody::release_batch_digest(signed)).unwrap();
    json!({
        "blackBox": { "account": bb_account.to_string(), "signature": hx(&signature) },
        "items": items.iter().map(|r| r.item_json()).collect::<Vec<_>>(),
    })
}

/// [`batch_json`] signed over the items' own bindings.
pub fn batch(items: &[&Release], bb_account: Address, bb_key: &SigningKey) -> Value {
    let bounds: Vec<[u8; 32]> = items.iter().map(|r| r.bound()).collect();
    batch_json(items, &bounds, bb_account, bb_key)
}

/// The `(status, code)` of each result of a batch answer (`code` is `""` for a release).
pub fn batch_outcomes(body: &Value) -> Vec<(u64, String)> {
    body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results in {body}"))
        .iter()
        .map(|r| (r["status"].as_u64().unwrap(), code(r).replace("<none>", "")))
        .collect()
}

/// POSTs `body` as JSON; returns status and JSON body.
pub async fn post(client: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    let r = client.post(url).json(body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The error code of a refusal body.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<none>")
}

/// Asserts a refusal with `status` and `code`.
#[track_caller]
pub fn assert_refused(got: &(u16, Value), status: u16, expected: &str) {
    assert_eq!((got.0, code(&got.1)), (status, expected), "body: {}", got.1);
    assert!(got.1["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", got.1);
}

/// Opens a release reply and checks it against the bundle: our slot, the bundle's
/// commitments and signature, and a fragment that verifies.
pub fn check_reply(body: &Value, release: &Release, bundle: &Bundle) {
    let hex_reply = body["fragment"].as_str().expect("fragment in reply");
    let reply = hex::decode(hex_reply.strip_prefix("0x").unwrap()).unwrap();
    let (chain_id, secret_id) = release.request.chain_and_secret();
    let opened = cifer_custody::open_release(&reply, &release.response_seed, chain_id, &secret_id)
        .expect("the reply opens with the black box's per-request key");
    assert_eq!(opened.fragment.index(), OUR_SLOT);
    assert_eq!(opened.commitments.to_bytes(), bundle.commitments);
    assert_eq!(opened.bundle_signature, bundle.signature);
    opened.commitments.verify(&opened.fragment).expect("fragment verifies");
    // Another seed does not open it.
    assert!(
        cifer_custody::open_release(&reply, &Seed::generate_os().unwrap(), chain_id, &secret_id)
            .is_err()
    );
}

/// A metric's value from the Prometheus text.
pub async fn metric(client: &reqwest::Client, node: &NodeProcess, name: &str) -> u64 {
    let text = client.get(node.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("metric {name} not found in:\n{text}"))
        .parse()
        .unwrap()
}
