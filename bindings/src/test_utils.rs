//! A real-anvil harness for tests of the crates that talk to the contracts (feature
//! `test-utils`; never enable it in production builds).
//!
//! [`TestChain::start`] spawns the anvil installed by `npm install`
//! (`node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil`, or `$CIFER_ANVIL`), deploys both
//! contracts through the typed bindings and sets up what every service test needs: five
//! registered nodes in cluster 1 (threshold 3) and a registered black box. Everything here
//! panics on failure: it is test code, and a broken fixture must stop the test loudly.
//!
//! Account roles (anvil's dev accounts): 0 governance/admin, 1 owner, 2 and 3 delegates,
//! 4 stranger, 5..=9 node operators, 7 also the black box account, 8 its signer.
#![allow(clippy::panic, clippy::expect_used, reason = "test fixture: fail loudly")]

use std::path::PathBuf;

use alloy::network::{Ethereum, EthereumWallet};
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{DynProvider, PendingTransactionBuilder, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::sol_types::SolEventInterface;

use crate::ClusterRegistry::{self, ClusterRegistryEvents};
use crate::SecretsController::{self, SecretsControllerEvents};
use crate::suite;

/// The chain id the fixture's anvil runs with by default (Sepolia's, as in `scripts/`).
pub const CHAIN_ID: u64 = 11_155_111;
/// Length of an ML-KEM-768 encapsulation key (suite 0x01).
pub const EK_LEN: usize = 1184;
/// The cluster [`TestChain`] creates.
pub const CLUSTER_ID: u32 = 1;

/// The `SecretsController` handle of the fixture.
pub type Controller = SecretsController::SecretsControllerInstance<DynProvider>;
/// The `ClusterRegistry` handle of the fixture.
pub type Registry = ClusterRegistry::ClusterRegistryInstance<DynProvider>;

/// The anvil binary: `$CIFER_ANVIL`, else the one `npm install` put in `node_modules`.
pub fn anvil_path() -> PathBuf {
    if let Some(p) = std::env::var_os("CIFER_ANVIL") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    assert!(
        p.is_file(),
        "anvil not found at {}: run `npm install` (or `make setup`) in the repository root, \
         or set CIFER_ANVIL to an anvil 1.7.1 binary",
        p.display()
    );
    p
}

/// An anvil builder for [`anvil_path`] and `chain_id`; add arguments, then
/// [`spawn_anvil`] or [`TestChain::deploy`].
pub fn anvil(chain_id: u64) -> Anvil {
    Anvil::at(anvil_path()).chain_id(chain_id)
}

/// Spawns `builder` (see [`anvil`]), panicking with the binary's path on failure.
pub fn spawn_anvil(builder: Anvil) -> AnvilInstance {
    builder
        .try_spawn()
        .unwrap_or_else(|e| panic!("cannot start anvil ({}): {e}", anvil_path().display()))
}

/// `n` deterministic pseudo-random bytes derived from `seed` (keys and attestation hashes for
/// tests; the contracts only check lengths and hash them).
pub fn test_bytes(seed: &[u8], n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 32);
    let mut block = keccak256(seed);
    while out.len() < n {
        out.extend_from_slice(block.as_slice());
        block = keccak256(block);
    }
    out.truncate(n);
    out
}

/// Waits for a sent transaction and asserts that it succeeded.
pub async fn mined(
    pending: alloy::contract::Result<PendingTransactionBuilder<Ethereum>>,
) -> TransactionReceipt {
    let receipt = pending.expect("send").get_receipt().await.expect("receipt");
    assert!(receipt.status(), "transaction reverted: {receipt:?}");
    receipt
}

/// The `SecretsController` events of a receipt.
pub fn controller_events(receipt: &TransactionReceipt) -> Vec<SecretsControllerEvents> {
    receipt
        .inner
        .logs()
        .iter()
        .map(|log| SecretsControllerEvents::decode_log(&log.inner).expect("known event").data)
        .collect()
}

/// The `ClusterRegistry` events of a receipt.
pub fn registry_events(receipt: &TransactionReceipt) -> Vec<ClusterRegistryEvents> {
    receipt
        .inner
        .logs()
        .iter()
        .map(|log| ClusterRegistryEvents::decode_log(&log.inner).expect("known event").data)
        .collect()
}

/// A running anvil with both contracts deployed, cluster 1 and a black box registered.
///
/// The anvil process is killed when `anvil` is dropped (drop the field, or the whole
/// fixture, to simulate an RPC going away).
#[derive(Debug)]
pub struct TestChain {
    /// A provider with every dev account's key as wallet (send with `.from(account)`).
    pub provider: DynProvider,
    /// The deployed `ClusterRegistry`.
    pub registry: Registry,
    /// The deployed `SecretsController`.
    pub controller: Controller,
    /// anvil's dev accounts (roles in the module doc).
    pub accounts: Vec<Address>,
    /// The registered node ids, in cluster order.
    pub node_ids: Vec<u32>,
    /// The nodes' ML-KEM keys (as registered), in cluster order.
    pub node_keys: Vec<Bytes>,
    /// The block of the registry's deployment (where log scans start).
    pub deploy_block: u64,
    /// The anvil process.
    pub anvil: AnvilInstance,
}

impl TestChain {
    /// Spawns anvil with [`CHAIN_ID`] and [`deploy`](Self::deploy)s.
    pub async fn start() -> Self {
        Self::deploy(spawn_anvil(anvil(CHAIN_ID))).await
    }

    /// Deploys both contracts on `anvil`, registers five nodes (operators accounts 5..=9),
    /// creates cluster 1 (threshold 3) and registers account 7 as black box with signer 8.
    pub async fn deploy(anvil: AnvilInstance) -> Self {
        let wallet: EthereumWallet = anvil.wallet().expect("anvil dev keys");
        let accounts = anvil.addresses().to_vec();
        assert!(accounts.len() >= 10, "anvil has fewer than 10 dev accounts");
        let provider =
            ProviderBuilder::new().wallet(wallet).connect_http(anvil.endpoint_url()).erased();
        let governance = accounts[0];
        let registry = ClusterRegistry::deploy(provider.clone(), governance)
            .await
            .expect("deploy ClusterRegistry");
        let deploy_block = provider.get_block_number().await.expect("block number");
        let controller =
            SecretsController::deploy(provider.clone(), governance, *registry.address())
                .await
                .expect("deploy SecretsController");

        let mut node_ids = Vec::new();
        let mut node_keys = Vec::new();
        for i in 0..5u8 {
            let key = Bytes::from(test_bytes(&[b'n', i], EK_LEN));
            let attestation = B256::from_slice(&test_bytes(&[b'a', i], 32));
            let receipt = mined(
                registry
                    .registerNode(
                        accounts[5 + usize::from(i)],
                        format!("https://node{}.cifer.test", i + 1),
                        key.clone(),
                        attestation,
                    )
                    .from(governance)
                    .send()
                    .await,
            )
            .await;
            let [ClusterRegistryEvents::NodeRegistered(ev)] = &registry_events(&receipt)[..] else {
                panic!("expected one NodeRegistered");
            };
            node_ids.push(ev.nodeId);
            node_keys.push(key);
        }
        mined(registry.createCluster(node_ids.clone(), 3).from(governance).send().await).await;
        mined(
            registry
                .registerBlackBox(
                    accounts[7],
                    accounts[8],
                    B256::from_slice(&test_bytes(b"bb", 32)),
                )
                .from(governance)
                .send()
                .await,
        )
        .await;
        Self { provider, registry, controller, accounts, node_ids, node_keys, deploy_block, anvil }
    }

    /// The anvil's HTTP endpoint.
    pub fn endpoint(&self) -> String {
        self.anvil.endpoint()
    }

    /// Account 0: governance of the registry, admin of the controller.
    pub fn governance(&self) -> Address {
        self.accounts[0]
    }

    /// Creates a suite-0x01 secret in cluster 1 owned by `owner`, with a key derived from
    /// `seed`; returns its id and key.
    pub async fn create_secret(&self, owner: Address, seed: &[u8]) -> (U256, Bytes) {
        let key = Bytes::from(test_bytes(seed, EK_LEN));
        let receipt = mined(
            self.controller
                .createSecret(CLUSTER_ID, suite::ML_KEM_768, key.clone())
                .from(owner)
                .send()
                .await,
        )
        .await;
        let [SecretsControllerEvents::SecretCreated(ev)] = &controller_events(&receipt)[..] else {
            panic!("expected one SecretCreated");
        };
        (ev.secretId, key)
    }

    /// Mines one empty block.
    pub async fn mine(&self) {
        self.provider.evm_mine(None).await.expect("evm_mine");
    }
}
