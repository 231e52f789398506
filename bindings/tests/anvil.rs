//! The bindings against a real anvil: deploy both contracts, set up a 5-node, threshold-3
//! cluster and a black box as governance, then create, delegate, revoke, expire and shred a
//! secret, decoding every event and the custom errors of reverting calls.
//!
//! anvil is the native binary installed by `npm install` (`node_modules/@foundry-rs/
//! anvil-linux-amd64/bin/anvil`); set `CIFER_ANVIL` to use another one (other platforms).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs, reason = "tests")]

use std::path::PathBuf;

use alloy::contract::Error as ContractError;
use alloy::eips::BlockId;
use alloy::network::EthereumWallet;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::sol_types::SolEventInterface;
use cifer_bindings::ClusterRegistry::{self, ClusterRegistryErrors, ClusterRegistryEvents};
use cifer_bindings::SecretsController::{self, SecretsControllerErrors, SecretsControllerEvents};
use cifer_bindings::{secret_state, suite};

const CHAIN_ID: u64 = 11_155_111;
const EK_LEN: usize = 1184;

type Controller = SecretsController::SecretsControllerInstance<DynProvider>;
type Registry = ClusterRegistry::ClusterRegistryInstance<DynProvider>;

fn anvil_path() -> PathBuf {
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

fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).expect("getrandom");
    b
}

/// A running anvil (killed on drop) with both contracts deployed and cluster 1 set up.
struct Chain {
    // Dropped last: the provider's connections go first.
    provider: DynProvider,
    registry: Registry,
    controller: Controller,
    /// anvil's dev accounts: 0 deployer/governance/admin, 1 owner, 2 and 3 delegates,
    /// 4 stranger, 5..=9 node operators, 7 also the black box.
    accounts: Vec<Address>,
    _anvil: AnvilInstance,
}

async fn mined(
    pending: alloy::contract::Result<
        alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
    >,
) -> TransactionReceipt {
    let receipt = pending.expect("send").get_receipt().await.expect("receipt");
    assert!(receipt.status(), "transaction reverted: {receipt:?}");
    receipt
}

fn controller_events(receipt: &TransactionReceipt) -> Vec<SecretsControllerEvents> {
    receipt
        .inner
        .logs()
        .iter()
        .map(|log| SecretsControllerEvents::decode_log(&log.inner).expect("known event").data)
        .collect()
}

fn registry_events(receipt: &TransactionReceipt) -> Vec<ClusterRegistryEvents> {
    receipt
        .inner
        .logs()
        .iter()
        .map(|log| ClusterRegistryEvents::decode_log(&log.inner).expect("known event").data)
        .collect()
}

/// The error of a call that must revert.
fn reverted<T>(result: Result<T, ContractError>) -> ContractError {
    match result {
        Ok(_) => panic!("the call did not revert"),
        Err(e) => e,
    }
}

fn controller_error(err: &ContractError) -> SecretsControllerErrors {
    err.as_decoded_interface_error::<SecretsControllerErrors>()
        .unwrap_or_else(|| panic!("not a SecretsController error: {err:?}"))
}

impl Chain {
    async fn start() -> Self {
        let anvil = Anvil::at(anvil_path())
            .chain_id(CHAIN_ID)
            .try_spawn()
            .unwrap_or_else(|e| panic!("cannot start anvil ({}): {e}", anvil_path().display()));
        let wallet: EthereumWallet = anvil.wallet().expect("anvil dev keys");
        let accounts = anvil.addresses().to_vec();
        assert!(accounts.len() >= 10);
        let provider =
            ProviderBuilder::new().wallet(wallet).connect_http(anvil.endpoint_url()).erased();
        assert_eq!(provider.get_chain_id().await.unwrap(), CHAIN_ID);

        let governance = accounts[0];
        let registry = ClusterRegistry::deploy(provider.clone(), governance).await.unwrap();
        let controller =
            SecretsController::deploy(provider.clone(), governance, *registry.address())
                .await
                .unwrap();
        assert_eq!(controller.clusterRegistry().call().await.unwrap(), *registry.address());
        assert_eq!(registry.owner().call().await.unwrap(), governance);
        // ClusterRegistry has no immutables: the chain runs exactly the committed runtime code.
        assert_eq!(
            provider.get_code_at(*registry.address()).await.unwrap(),
            ClusterRegistry::DEPLOYED_BYTECODE.clone()
        );

        let chain = Self { provider, registry, controller, accounts, _anvil: anvil };
        chain.set_up_cluster().await;
        chain
    }

    /// As governance: 5 nodes, cluster 1 of them with threshold 3, and a black box.
    async fn set_up_cluster(&self) {
        let governance = self.accounts[0];
        let mut node_ids = Vec::new();
        for i in 0..5 {
            let operator = self.accounts[5 + i];
            let endpoint = format!("https://node{}.cifer.test", i + 1);
            let key = Bytes::from(random_bytes(EK_LEN));
            let attestation = B256::from_slice(&random_bytes(32));
            let receipt = mined(
                self.registry
                    .registerNode(operator, endpoint.clone(), key.clone(), attestation)
                    .from(governance)
                    .send()
                    .await,
            )
            .await;
            let [ClusterRegistryEvents::NodeRegistered(ev)] = &registry_events(&receipt)[..] else {
                panic!("expected one NodeRegistered");
            };
            assert_eq!(ev.operator, operator);
            assert_eq!(ev.endpoint, endpoint);
            assert_eq!(ev.publicKey, key, "the event carries the node's full key");
            assert_eq!(ev.publicKeyHash, keccak256(&key));
            assert_eq!(ev.attestationHash, attestation);
            let node = self.registry.node(ev.nodeId).call().await.unwrap();
            assert_eq!(node.publicKeyHash, keccak256(&key));
            assert_eq!(node.operator, operator);
            node_ids.push(ev.nodeId);
        }
        assert_eq!(node_ids, [1, 2, 3, 4, 5]);

        // A stranger cannot change membership (OpenZeppelin's Ownable error, in the same ABI).
        let err = reverted(
            self.registry.createCluster(node_ids.clone(), 3).from(self.accounts[4]).call().await,
        );
        match err.as_decoded_interface_error::<ClusterRegistryErrors>() {
            Some(ClusterRegistryErrors::OwnableUnauthorizedAccount(e)) => {
                assert_eq!(e.account, self.accounts[4]);
            }
            other => panic!("expected OwnableUnauthorizedAccount, got {other:?} ({err:?})"),
        }

        let receipt =
            mined(self.registry.createCluster(node_ids.clone(), 3).from(governance).send().await)
                .await;
        let [ClusterRegistryEvents::ClusterCreated(ev)] = &registry_events(&receipt)[..] else {
            panic!("expected one ClusterCreated");
        };
        assert_eq!((ev.clusterId, ev.threshold, &ev.members), (1, 3, &node_ids));
        assert!(self.registry.isClusterActive(1).call().await.unwrap());
        assert_eq!(self.registry.clusterThreshold(1).call().await.unwrap(), 3);
        assert_eq!(self.registry.clusterMembers(1).call().await.unwrap(), node_ids);
        let cluster = self.registry.cluster(1).call().await.unwrap();
        assert_eq!((cluster.size, cluster.activeMembers), (5, 5));

        let black_box = self.accounts[7];
        let signer = self.accounts[8];
        let attestation = B256::from_slice(&random_bytes(32));
        let receipt = mined(
            self.registry
                .registerBlackBox(black_box, signer, attestation)
                .from(governance)
                .send()
                .await,
        )
        .await;
        let [ClusterRegistryEvents::BlackBoxRegistered(ev)] = &registry_events(&receipt)[..] else {
            panic!("expected one BlackBoxRegistered");
        };
        assert_eq!((ev.blackBox, ev.signer, ev.attestationHash), (black_box, signer, attestation));
        assert!(self.registry.isBlackBox(black_box).call().await.unwrap());
        assert!(!self.registry.isBlackBox(self.accounts[4]).call().await.unwrap());
    }

    async fn authorized(&self, id: U256, who: Address, block: Option<u64>) -> bool {
        let call = self.controller.isAuthorized(id, who);
        let call = match block {
            Some(n) => call.block(BlockId::number(n)),
            None => call,
        };
        call.call().await.unwrap()
    }

    async fn latest_timestamp(&self) -> u64 {
        self.provider
            .get_block(BlockId::latest())
            .await
            .unwrap()
            .expect("latest block")
            .header
            .timestamp
    }

    /// Creates a suite-0x01 secret owned by `owner` with a random 1,184-byte key.
    async fn create_secret(&self, owner: Address) -> (U256, Bytes) {
        let key = Bytes::from(random_bytes(EK_LEN));
        let receipt = mined(
            self.controller
                .createSecret(1, suite::ML_KEM_768, key.clone())
                .from(owner)
                .send()
                .await,
        )
        .await;
        let [SecretsControllerEvents::SecretCreated(ev)] = &controller_events(&receipt)[..] else {
            panic!("expected one SecretCreated");
        };
        assert_eq!(ev.owner, owner);
        assert_eq!(ev.clusterId, 1);
        assert_eq!(ev.suite, suite::ML_KEM_768);
        assert_eq!(ev.publicKey, key, "SecretCreated carries the full key");
        assert_eq!(ev.publicKeyHash, keccak256(&key));
        (ev.secretId, key)
    }
}

#[tokio::test]
async fn secret_lifecycle_create_delegate_revoke_expire_shred() {
    let chain = Chain::start().await;
    let c = &chain.controller;
    let [_, owner, delegate, delegate2, stranger, ..] = chain.accounts[..] else { unreachable!() };

    // createSecret: the caller owns it, only the key's hash is stored.
    let (id, key) = chain.create_secret(owner).await;
    assert_eq!(id, U256::from(1));
    assert_eq!(c.secretCount().call().await.unwrap(), id);
    let s = c.secret(id).call().await.unwrap();
    assert_eq!(s.owner, owner);
    assert_eq!(s.clusterId, 1);
    assert_eq!(s.state, secret_state::ACTIVE);
    assert_eq!(s.suite, suite::ML_KEM_768);
    assert_eq!(s.publicKeyHash, keccak256(&key));
    assert_eq!(s.pendingOwner, Address::ZERO);

    // isAuthorized: owner yes, stranger no, address(0) never.
    assert!(chain.authorized(id, owner, None).await);
    assert!(!chain.authorized(id, stranger, None).await);
    assert!(!chain.authorized(id, Address::ZERO, None).await);
    assert!(!chain.authorized(U256::from(99), owner, None).await, "unknown secret");

    // addDelegate (no expiry) → the delegate is authorized.
    let receipt = mined(c.addDelegate(id, delegate, 0).from(owner).send().await).await;
    let [SecretsControllerEvents::DelegateAdded(ev)] = &controller_events(&receipt)[..] else {
        panic!("expected one DelegateAdded");
    };
    assert_eq!((ev.secretId, ev.delegate, ev.expiresAt), (id, delegate, 0));
    assert!(chain.authorized(id, delegate, None).await);
    let d = c.delegation(id, delegate).call().await.unwrap();
    assert!(d.isDelegate);
    assert_eq!(d.expiresAt, 0);

    // revokeDelegate → authorized up to the block before, not from the revocation's block on.
    let receipt = mined(c.revokeDelegate(id, delegate).from(owner).send().await).await;
    let revoked_in = receipt.block_number.expect("mined");
    let [SecretsControllerEvents::DelegateRevoked(ev)] = &controller_events(&receipt)[..] else {
        panic!("expected one DelegateRevoked");
    };
    assert_eq!((ev.secretId, ev.delegate), (id, delegate));
    assert!(chain.authorized(id, delegate, Some(revoked_in - 1)).await);
    assert!(!chain.authorized(id, delegate, Some(revoked_in)).await);
    chain.provider.evm_mine(None).await.unwrap();
    assert_eq!(chain.provider.get_block_number().await.unwrap(), revoked_in + 1);
    assert!(!chain.authorized(id, delegate, None).await, "not authorized in the next block");
    assert!(!c.delegation(id, delegate).call().await.unwrap().isDelegate);
    assert!(chain.authorized(id, owner, None).await, "the owner is unaffected");

    // Expiry: a delegation is valid while block.timestamp < expiresAt.
    let now = chain.latest_timestamp().await;
    let expires_at = now + 1_000;
    let receipt = mined(c.addDelegate(id, delegate2, expires_at).from(owner).send().await).await;
    let [SecretsControllerEvents::DelegateAdded(ev)] = &controller_events(&receipt)[..] else {
        panic!("expected one DelegateAdded");
    };
    assert_eq!(ev.expiresAt, expires_at);
    assert!(chain.authorized(id, delegate2, None).await);
    chain.provider.anvil_set_next_block_timestamp(expires_at - 1).await.unwrap();
    chain.provider.evm_mine(None).await.unwrap();
    let before = chain.provider.get_block_number().await.unwrap();
    assert_eq!(chain.latest_timestamp().await, expires_at - 1);
    assert!(chain.authorized(id, delegate2, Some(before)).await, "one second before expiry");
    chain.provider.anvil_set_next_block_timestamp(expires_at).await.unwrap();
    chain.provider.evm_mine(None).await.unwrap();
    let at = chain.provider.get_block_number().await.unwrap();
    assert_eq!(chain.latest_timestamp().await, expires_at);
    assert!(!chain.authorized(id, delegate2, Some(at)).await, "expired at expiresAt");
    assert!(!chain.authorized(id, delegate2, None).await);
    assert!(chain.authorized(id, delegate2, Some(before)).await, "history is unchanged");
    // The record stays (expired, not revoked) until the owner revokes or renews it.
    let d = c.delegation(id, delegate2).call().await.unwrap();
    assert!(d.isDelegate);
    assert_eq!(d.expiresAt, expires_at);

    // A delegation that cannot expire in the future is rejected with its typed error.
    let err = reverted(c.addDelegate(id, delegate2, expires_at).from(owner).call().await);
    match controller_error(&err) {
        SecretsControllerErrors::SecretsControllerInvalidExpiry(e) => {
            assert_eq!(e.expiresAt, expires_at);
        }
        other => panic!("expected SecretsControllerInvalidExpiry, got {other:?}"),
    }

    // Re-delegate without expiry, then shred: nobody is authorized any more.
    mined(c.addDelegate(id, delegate, 0).from(owner).send().await).await;
    assert!(chain.authorized(id, delegate, None).await);
    let receipt = mined(c.shred(id).from(owner).send().await).await;
    let [SecretsControllerEvents::SecretShredded(ev)] = &controller_events(&receipt)[..] else {
        panic!("expected one SecretShredded");
    };
    assert_eq!((ev.secretId, ev.owner), (id, owner));
    for who in [owner, delegate, delegate2, stranger, Address::ZERO] {
        assert!(!chain.authorized(id, who, None).await, "{who} authorized after shred");
    }
    assert_eq!(c.secret(id).call().await.unwrap().state, secret_state::SHREDDED);

    // Shredding is final: the owner cannot delegate or shred again.
    for err in [
        reverted(c.addDelegate(id, delegate, 0).from(owner).call().await),
        reverted(c.shred(id).from(owner).call().await),
    ] {
        match controller_error(&err) {
            SecretsControllerErrors::SecretsControllerSecretNotActive(e) => {
                assert_eq!(e.secretId, id);
            }
            other => panic!("expected SecretsControllerSecretNotActive, got {other:?}"),
        }
    }

    // Ids are never reused.
    let (next, _) = chain.create_secret(owner).await;
    assert_eq!(next, U256::from(2));
}

#[tokio::test]
async fn reverts_decode_into_typed_custom_errors() {
    let chain = Chain::start().await;
    let c = &chain.controller;
    let [_, owner, delegate, _, stranger, ..] = chain.accounts[..] else { unreachable!() };
    let (id, _) = chain.create_secret(owner).await;

    // A stranger changing the delegates: eth_call reverts with the typed error ...
    let err = reverted(c.addDelegate(id, delegate, 0).from(stranger).call().await);
    let expected =
        SecretsController::SecretsControllerUnauthorizedAccount { secretId: id, account: stranger };
    assert_eq!(
        controller_error(&err),
        SecretsControllerErrors::SecretsControllerUnauthorizedAccount(expected.clone())
    );
    assert_eq!(
        err.as_decoded_error::<SecretsController::SecretsControllerUnauthorizedAccount>(),
        Some(expected.clone())
    );
    // ... and so does sending it (gas estimation fails before anything is signed).
    let err = reverted(c.revokeDelegate(id, owner).from(stranger).send().await);
    assert_eq!(
        controller_error(&err),
        SecretsControllerErrors::SecretsControllerUnauthorizedAccount(expected)
    );
    assert!(!chain.authorized(id, delegate, None).await);

    // Wrong key length for the suite, unsupported suite, inactive cluster, zero delegate.
    let short = Bytes::from(random_bytes(EK_LEN - 1));
    let err = reverted(c.createSecret(1, suite::ML_KEM_768, short).from(owner).call().await);
    match controller_error(&err) {
        SecretsControllerErrors::SecretsControllerInvalidPublicKey(e) => {
            assert_eq!((e.suite, e.length), (suite::ML_KEM_768, U256::from(EK_LEN - 1)));
        }
        other => panic!("expected SecretsControllerInvalidPublicKey, got {other:?}"),
    }
    let key = Bytes::from(random_bytes(EK_LEN));
    let err = reverted(c.createSecret(1, 0x7f, key.clone()).from(owner).call().await);
    assert_eq!(
        controller_error(&err),
        SecretsControllerErrors::SecretsControllerUnsupportedSuite(
            SecretsController::SecretsControllerUnsupportedSuite { suite: 0x7f }
        )
    );
    let err = reverted(c.createSecret(2, suite::ML_KEM_768, key).from(owner).call().await);
    assert_eq!(
        controller_error(&err),
        SecretsControllerErrors::SecretsControllerClusterNotActive(
            SecretsController::SecretsControllerClusterNotActive { clusterId: 2 }
        )
    );
    let err = reverted(c.addDelegate(id, Address::ZERO, 0).from(owner).call().await);
    assert_eq!(
        controller_error(&err),
        SecretsControllerErrors::SecretsControllerInvalidDelegate(
            SecretsController::SecretsControllerInvalidDelegate { delegate: Address::ZERO }
        )
    );

    // A revert of the other contract is not mistaken for one of this contract.
    assert!(err.as_decoded_interface_error::<ClusterRegistryErrors>().is_none());
}

#[tokio::test]
async fn ownership_transfer_voids_delegations() {
    let chain = Chain::start().await;
    let c = &chain.controller;
    let [_, owner, delegate, new_owner, stranger, ..] = chain.accounts[..] else { unreachable!() };
    let (id, _) = chain.create_secret(owner).await;
    mined(c.addDelegate(id, delegate, 0).from(owner).send().await).await;

    let receipt = mined(c.transferSecretOwnership(id, new_owner).from(owner).send().await).await;
    let [SecretsControllerEvents::SecretOwnershipTransferStarted(ev)] =
        &controller_events(&receipt)[..]
    else {
        panic!("expected one SecretOwnershipTransferStarted");
    };
    assert_eq!((ev.secretId, ev.owner, ev.pendingOwner), (id, owner, new_owner));
    assert!(!chain.authorized(id, new_owner, None).await, "pending owner is not authorized yet");

    let err = reverted(c.acceptSecretOwnership(id).from(stranger).call().await);
    assert_eq!(
        controller_error(&err),
        SecretsControllerErrors::SecretsControllerNotPendingOwner(
            SecretsController::SecretsControllerNotPendingOwner { secretId: id, account: stranger }
        )
    );

    let receipt = mined(c.acceptSecretOwnership(id).from(new_owner).send().await).await;
    let [SecretsControllerEvents::SecretOwnershipTransferred(ev)] =
        &controller_events(&receipt)[..]
    else {
        panic!("expected one SecretOwnershipTransferred");
    };
    assert_eq!((ev.secretId, ev.previousOwner, ev.newOwner), (id, owner, new_owner));
    assert!(chain.authorized(id, new_owner, None).await);
    assert!(!chain.authorized(id, owner, None).await);
    assert!(!chain.authorized(id, delegate, None).await, "delegations are voided");
    assert_eq!(c.secret(id).call().await.unwrap().owner, new_owner);
}
