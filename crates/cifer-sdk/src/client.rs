//! The client: chain calls through alloy with the caller's wallet, black-box calls over
//! HTTP, and every envelope operation local.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::network::{EthereumWallet, TxSigner};
use alloy::primitives::{Address, B256, Signature, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::Signer;
use cifer_auth::{SeedPayload, SeedRequest, TypedRequest};
use cifer_bindings::SecretsController;
use cifer_core::positional::{ReadAt, ReadFrom};
use cifer_core::{
    EncapsulationKey, EnvelopePrefix, Header, Seed, StreamKey, Suite, envelope, keccak256,
};
use cifer_service::wire::{RequestJson, hex0x};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Error;

/// A secret's id in `SecretsController`.
pub type SecretId = U256;

/// Where a deployment lives (what `cifer devnet up` writes to `endpoints.json`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// An RPC URL of that chain (the SDK's own view; it does not trust the black box's).
    pub rpc_url: String,
    /// The black box's base URL.
    pub black_box_url: String,
    /// The `SecretsController`.
    pub secrets_controller: Address,
    /// The `ClusterRegistry`.
    pub cluster_registry: Address,
    /// The cluster new secrets go to.
    #[serde(default = "default_cluster")]
    pub cluster_id: u32,
}

const fn default_cluster() -> u32 {
    1
}

impl Endpoints {
    /// Reads an endpoints JSON file.
    ///
    /// # Errors
    /// [`Error::Config`].
    pub fn from_devnet_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("{}: {e} (is the devnet up?)", path.display())))?;
        serde_json::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }
}

/// Which signed form a decryption request takes (PROTOCOL.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestForm {
    /// EIP-712 `DecryptRequest`: binds the envelope and the response key (recommended).
    #[default]
    Typed,
    /// EIP-191 seed payload `chainId_secretId_signer_block`: binds neither.
    Seed,
}

/// A secret's on-chain record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    /// Its id.
    pub id: SecretId,
    /// Owner.
    pub owner: Address,
    /// Cluster holding its fragments.
    pub cluster_id: u32,
    /// Not shredded.
    pub active: bool,
    /// `keccak256` of its public key.
    pub public_key_hash: B256,
    /// Pending owner of a two-step transfer, or zero.
    pub pending_owner: Address,
}

/// One entry of the black box's audit log.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// Position from 1.
    pub seq: u64,
    /// When (Unix ms, black box clock).
    pub at_unix_ms: u64,
    /// `decrypt`, `refusal`, `create`, …
    pub kind: String,
    /// Chain.
    pub chain_id: u64,
    /// Secret (decimal).
    pub secret_id: String,
    /// Who asked.
    pub actor: String,
    /// Request digest.
    pub digest: String,
    /// Outcome code.
    pub code: String,
    /// Previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// One cluster member as [`Client::status`] sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// Node id.
    pub id: u32,
    /// Registered endpoint.
    pub endpoint: String,
    /// Answered `/health` with 200.
    pub healthy: bool,
}

/// What [`Client::status`] reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Chain id.
    pub chain_id: u64,
    /// Head of the SDK's RPC.
    pub head: u64,
    /// The cluster.
    pub cluster_id: u32,
    /// Its threshold.
    pub threshold: u8,
    /// `isClusterActive`.
    pub cluster_active: bool,
    /// Its members in slot order.
    pub members: Vec<NodeStatus>,
    /// The black box answered `/health` with 200.
    pub black_box_healthy: bool,
}

/// A creation bundle from [`Client::prepare_secret`], not yet registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedSecret {
    /// The cluster its fragments are for.
    pub cluster_id: u32,
    /// The new secret's ML-KEM-768 encapsulation key.
    pub encapsulation_key: Vec<u8>,
    /// The bundle as the black box returned it (JSON, nothing secret in it).
    pub bundle: Value,
    /// The black box that made it.
    pub black_box: Option<String>,
}

/// A connected client with one wallet.
pub struct Client {
    http: reqwest::Client,
    endpoints: Endpoints,
    provider: DynProvider,
    signer: Arc<dyn Signer + Send + Sync>,
    address: Address,
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client")
            .field("chain_id", &self.endpoints.chain_id)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

fn rpc(e: impl core::fmt::Display) -> Error {
    Error::Rpc(e.to_string())
}

fn tx_error(e: impl core::fmt::Display) -> Error {
    Error::Transaction { reason: e.to_string() }
}

impl Client {
    /// Connects with `signer` (any alloy signer that can also sign transactions) and checks
    /// that the RPC serves `endpoints.chain_id`.
    ///
    /// # Errors
    /// [`Error::Rpc`], [`Error::Config`].
    pub async fn connect<S>(endpoints: &Endpoints, signer: S) -> Result<Self, Error>
    where
        S: Signer + TxSigner<Signature> + Clone + Send + Sync + 'static,
    {
        let url = endpoints.rpc_url.parse().map_err(|_| Error::Config("invalid RPC URL".into()))?;
        let address = Signer::address(&signer);
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer.clone()))
            .connect_http(url)
            .erased();
        let chain_id = provider.get_chain_id().await.map_err(rpc)?;
        if chain_id != endpoints.chain_id {
            return Err(Error::Config(format!(
                "the RPC serves chain {chain_id}, the endpoints say {}",
                endpoints.chain_id
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(Self { http, endpoints: endpoints.clone(), provider, signer: Arc::new(signer), address })
    }

    /// The wallet's address.
    #[must_use]
    pub fn address(&self) -> Address {
        self.address
    }

    /// The endpoints this client uses.
    #[must_use]
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    fn controller(&self) -> SecretsController::SecretsControllerInstance<DynProvider> {
        SecretsController::new(self.endpoints.secrets_controller, self.provider.clone())
    }

    async fn call_bb(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Error> {
        let url = format!("{}{path}", self.endpoints.black_box_url.trim_end_matches('/'));
        let mut req = self.http.request(method, url);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| Error::Unreachable(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let value: Value =
            resp.json().await.map_err(|e| Error::Unreachable(e.without_url().to_string()))?;
        if status >= 400 {
            return Err(Error::Refused {
                status,
                code: value["error"]["code"].as_str().unwrap_or("unknown").to_owned(),
                message: value["error"]["message"].as_str().unwrap_or("").to_owned(),
            });
        }
        Ok(value)
    }

    /// Creates a secret in `cluster_id`: the black box makes the key and its fragments, the
    /// wallet registers the key on chain (and pays), then the fragments go to the nodes.
    /// Crash-safe: until delivery, nothing can be decrypted; delivery can be retried.
    /// ([`prepare_secret`](Self::prepare_secret) and [`register`](Self::register) are
    /// the two halves, for callers that keep the bundle in between.)
    ///
    /// # Errors
    /// [`Error::Refused`], [`Error::Transaction`], [`Error::Timeout`].
    pub async fn create_secret(&self, cluster_id: u32) -> Result<SecretId, Error> {
        let prepared = self.prepare_secret(cluster_id).await?;
        self.register(&prepared).await
    }

    /// Asks the black box for a creation bundle: a fresh key, its fragments sealed to the
    /// cluster's nodes, and the commitments, signed by the black box. Nothing secret is in
    /// it; keep it (e.g. on disk) to retry [`register`](Self::register) after a crash.
    ///
    /// # Errors
    /// [`Error::Refused`], [`Error::BadReply`].
    pub async fn prepare_secret(&self, cluster_id: u32) -> Result<PreparedSecret, Error> {
        let made = self
            .call_bb(
                reqwest::Method::POST,
                "/v1/secrets",
                Some(&json!({ "chainId": self.endpoints.chain_id, "clusterId": cluster_id })),
            )
            .await?;
        let bundle = made["bundle"].clone();
        let encapsulation_key = bundle["encapsulationKey"]
            .as_str()
            .and_then(|s| hex::decode(s.trim_start_matches("0x")).ok())
            .ok_or_else(|| Error::BadReply("bundle without encapsulationKey".into()))?;
        // The key must be a valid ML-KEM-768 key before it is registered for good.
        EncapsulationKey::from_bytes(&encapsulation_key)?;
        Ok(PreparedSecret {
            cluster_id,
            encapsulation_key,
            bundle,
            black_box: made["blackBox"].as_str().map(str::to_owned),
        })
    }

    /// Registers a prepared secret on chain (the wallet becomes its owner) and delivers
    /// its fragments.
    ///
    /// # Errors
    /// [`Error::Transaction`], [`Error::Refused`], [`Error::Timeout`].
    pub async fn register(&self, prepared: &PreparedSecret) -> Result<SecretId, Error> {
        let fee = self.controller().creationFee().call().await.map_err(rpc)?;
        let receipt = self
            .controller()
            .createSecret(
                prepared.cluster_id,
                cifer_bindings::suite::ML_KEM_768,
                prepared.encapsulation_key.clone().into(),
            )
            .value(fee)
            .send()
            .await
            .map_err(tx_error)?
            .get_receipt()
            .await
            .map_err(tx_error)?;
        if !receipt.status() {
            return Err(Error::Transaction { reason: "createSecret reverted".into() });
        }
        let id = receipt
            .decoded_log::<SecretsController::SecretCreated>()
            .map(|l| l.secretId)
            .ok_or_else(|| Error::Transaction { reason: "no SecretCreated event".into() })?;
        self.deliver(id, &prepared.bundle, prepared.black_box.as_deref()).await?;
        Ok(id)
    }

    /// Sends a bundle to the nodes through the black box, waiting (up to 30 s) for the
    /// services' chain views to see the secret.
    ///
    /// # Errors
    /// [`Error::Refused`], [`Error::Timeout`].
    pub async fn deliver(
        &self,
        id: SecretId,
        bundle: &Value,
        black_box: Option<&str>,
    ) -> Result<Value, Error> {
        let mut body = json!({ "chainId": self.endpoints.chain_id, "secretId": id.to_string(), "bundle": bundle });
        if let Some(bb) = black_box {
            body["blackBox"] = json!(bb);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.call_bb(reqwest::Method::POST, "/v1/secrets/deliver", Some(&body)).await {
                Ok(v) if v["complete"] == true => return Ok(v),
                Ok(v) => {
                    if Instant::now() > deadline {
                        return Ok(v);
                    }
                }
                Err(e) if retryable(&e) && Instant::now() < deadline => {}
                Err(Error::Refused { code, message, status }) if retryable_code(&code) => {
                    return Err(Error::Timeout(format!("delivery: {status} {code}: {message}")));
                }
                Err(e) => return Err(e),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The secret's on-chain record.
    ///
    /// # Errors
    /// [`Error::Rpc`], [`Error::UnknownSecret`].
    pub async fn secret(&self, id: SecretId) -> Result<SecretInfo, Error> {
        let s = self.controller().secret(id).call().await.map_err(rpc)?;
        if s.state == cifer_bindings::secret_state::NONE {
            return Err(Error::UnknownSecret(id.to_string()));
        }
        Ok(SecretInfo {
            id,
            owner: s.owner,
            cluster_id: s.clusterId,
            active: s.state == cifer_bindings::secret_state::ACTIVE,
            public_key_hash: s.publicKeyHash,
            pending_owner: s.pendingOwner,
        })
    }

    /// The secret's encapsulation key, served by the black box and checked here against
    /// the hash registered on chain.
    ///
    /// # Errors
    /// [`Error::KeyMismatch`], [`Error::UnknownSecret`], [`Error::Refused`].
    pub async fn public_key(&self, id: SecretId) -> Result<EncapsulationKey, Error> {
        let info = self.secret(id).await?;
        if !info.active {
            return Err(Error::UnknownSecret(format!("{id} (shredded)")));
        }
        let path = format!("/v1/secrets/{}/{id}/key", self.endpoints.chain_id);
        let deadline = Instant::now() + Duration::from_secs(30);
        let served = loop {
            match self.call_bb(reqwest::Method::GET, &path, None).await {
                Ok(v) => break v,
                Err(e) if retryable(&e) && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e),
            }
        };
        let bytes = served["encapsulationKey"]
            .as_str()
            .and_then(|s| hex::decode(s.trim_start_matches("0x")).ok())
            .ok_or_else(|| Error::BadReply("no encapsulationKey".into()))?;
        EncapsulationKey::from_bytes_checked(&bytes, &info.public_key_hash.0)
            .map_err(|_| Error::KeyMismatch(id.to_string()))
    }

    fn header(&self, id: SecretId, chunk_log2: u8) -> Result<Header, Error> {
        Ok(Header::new(
            Suite::MlKem768,
            chunk_log2,
            self.endpoints.chain_id,
            id.to_be_bytes::<32>(),
        )?)
    }

    /// Encrypts `data` to secret `id` (64 KiB chunks).
    ///
    /// # Errors
    /// As [`public_key`](Self::public_key).
    pub async fn encrypt_bytes(&self, id: SecretId, data: &[u8]) -> Result<Vec<u8>, Error> {
        let key = self.public_key(id).await?;
        Ok(envelope::seal(&key, self.header(id, 16)?, data)?)
    }

    /// Streams `input` into an envelope on `output` for secret `id`, in constant memory.
    /// Returns the plaintext length.
    ///
    /// # Errors
    /// As [`public_key`](Self::public_key); [`Error::Crypto`] / [`Error::Io`].
    pub async fn encrypt(
        &self,
        id: SecretId,
        chunk_log2: u8,
        input: &mut impl Read,
        output: &mut impl Write,
    ) -> Result<u64, Error> {
        let key = self.public_key(id).await?;
        Ok(envelope::encrypt(&key, self.header(id, chunk_log2)?, input, output)?)
    }

    /// [`encrypt`](Self::encrypt) of the `len` bytes of `input` (a regular file) from
    /// offset 0, read by the worker threads themselves
    /// ([`envelope::encrypt_positional`]): faster for large files.
    ///
    /// # Errors
    /// As [`encrypt`](Self::encrypt); [`Error::Io`] if the input ends before `len` bytes.
    pub async fn encrypt_positional<R: ReadAt + ?Sized>(
        &self,
        id: SecretId,
        chunk_log2: u8,
        input: &R,
        len: u64,
        output: &mut impl Write,
    ) -> Result<u64, Error> {
        let key = self.public_key(id).await?;
        Ok(envelope::encrypt_positional(&key, self.header(id, chunk_log2)?, input, 0, len, output)?)
    }

    /// Asks the black box for the stream key of the envelope whose prefix is `prefix`,
    /// signing a fresh request with the wallet. The reply opens only with this request's
    /// response key.
    ///
    /// # Errors
    /// [`Error::Refused`] (e.g. `not_authorized`, `not_enough_fragments`), [`Error::BadReply`].
    pub async fn request_key(
        &self,
        prefix: &EnvelopePrefix,
        form: RequestForm,
    ) -> Result<StreamKey, Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.request_key_once(prefix, form).await {
                // The services' views may trail the RPC by a poll interval.
                Err(Error::Refused { code, .. }) if code == "future" && attempt < 5 => {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                other => return other,
            }
        }
    }

    async fn request_key_once(
        &self,
        prefix: &EnvelopePrefix,
        form: RequestForm,
    ) -> Result<StreamKey, Error> {
        let header = prefix.header();
        // The head as this RPC sees it: a service whose view trails answers `future`, and
        // the request is retried (see `request_key`); dating it earlier would let a view
        // that has not yet seen a just-made delegation refuse it.
        let block = self.provider.get_block_number().await.map_err(rpc)?;
        // The response key pair, derived once: its encapsulation key goes with the request,
        // its decapsulation key opens the reply (the seed itself is not kept).
        let response_dk = Seed::generate_os()?.decapsulation_key();
        let response_key = response_dk.encapsulation_key();
        let (request, signature) = match form {
            RequestForm::Typed => {
                let mut nonce = [0u8; 32];
                getrandom::fill(&mut nonce)
                    .map_err(|_| Error::Wallet("the OS RNG failed".into()))?;
                let r = TypedRequest {
                    chain_id: header.chain_id,
                    verifying_contract: self.endpoints.secrets_controller.0.0,
                    secret_id: header.secret_id,
                    requester: self.address.0.0,
                    block_number: block,
                    envelope_hash: prefix.envelope_hash(),
                    response_key_hash: keccak256(response_key.as_bytes()),
                    nonce,
                };
                let sig = self
                    .signer
                    .sign_hash(&B256::from(r.digest()))
                    .await
                    .map_err(|e| Error::Wallet(e.to_string()))?;
                (RequestJson::typed(&r), sig)
            }
            RequestForm::Seed => {
                let r = SeedRequest {
                    chain_id: header.chain_id,
                    secret_id: header.secret_id,
                    signer: self.address.0.0,
                    block_number: block,
                };
                let text = r.message();
                let sig = self
                    .signer
                    .sign_message(text.as_bytes())
                    .await
                    .map_err(|e| Error::Wallet(e.to_string()))?;
                let payload =
                    SeedPayload::parse(&text).map_err(|e| Error::Wallet(e.to_string()))?;
                (RequestJson::seed(&payload), sig)
            }
        };
        let body = json!({
            "request": request,
            "signature": hex0x(&signature.as_bytes()),
            "envelopePrefix": hex0x(prefix.as_bytes()),
            "responseKey": hex0x(response_key.as_bytes()),
        });
        let reply = self.call_bb(reqwest::Method::POST, "/v1/decrypt", Some(&body)).await?;
        let sealed = reply["sealedKey"]
            .as_str()
            .and_then(|s| hex::decode(s.trim_start_matches("0x")).ok())
            .ok_or_else(|| Error::BadReply("no sealedKey".into()))?;
        cifer_custody::open_key_reply(&sealed, &response_dk, header.chain_id, &header.secret_id)
            .map_err(|e| Error::BadReply(e.to_string()))
    }

    /// Decrypts an envelope held in memory.
    ///
    /// # Errors
    /// As [`request_key`](Self::request_key); [`Error::Crypto`] if it does not authenticate.
    pub async fn decrypt_bytes(&self, sealed: &[u8]) -> Result<Vec<u8>, Error> {
        let prefix = envelope::read_prefix(&mut &sealed[..])?;
        let key = self.request_key(&prefix, RequestForm::Typed).await?;
        Ok(envelope::open_body(&key, &prefix, &sealed[prefix.as_bytes().len()..])?)
    }

    /// Streams an envelope from `input` to plaintext on `output`: only the prefix goes to
    /// the black box. Returns the plaintext length.
    ///
    /// # Errors
    /// As [`decrypt_bytes`](Self::decrypt_bytes).
    pub async fn decrypt(
        &self,
        form: RequestForm,
        input: &mut impl Read,
        output: &mut impl Write,
    ) -> Result<u64, Error> {
        let prefix = envelope::read_prefix(input)?;
        let key = self.request_key(&prefix, form).await?;
        Ok(envelope::decrypt_body(&key, &prefix, input, output)?)
    }

    /// [`decrypt`](Self::decrypt) of the envelope that fills `input` (a regular file, `len`
    /// bytes long), the body read by the worker threads themselves
    /// ([`envelope::decrypt_body_positional`]): faster for large files.
    ///
    /// # Errors
    /// As [`decrypt`](Self::decrypt).
    pub async fn decrypt_positional<R: ReadAt + ?Sized>(
        &self,
        form: RequestForm,
        input: &R,
        len: u64,
        output: &mut impl Write,
    ) -> Result<u64, Error> {
        let mut reader = ReadFrom::new(input, 0);
        let prefix = envelope::read_prefix(&mut reader)?;
        let key = self.request_key(&prefix, form).await?;
        Ok(envelope::decrypt_body_positional(&key, &prefix, input, reader.position(), len, output)?)
    }

    /// Adds (or updates) `delegate` of secret `id`, void from `expires_at` (Unix seconds;
    /// 0 for never). Owner only.
    ///
    /// # Errors
    /// [`Error::Transaction`] naming the contract error.
    pub async fn add_delegate(
        &self,
        id: SecretId,
        delegate: Address,
        expires_at: u64,
    ) -> Result<B256, Error> {
        confirm(self.controller().addDelegate(id, delegate, expires_at).send().await).await
    }

    /// Revokes `delegate`: every node refuses it from the next block on. Owner only.
    ///
    /// # Errors
    /// [`Error::Transaction`].
    pub async fn revoke_delegate(&self, id: SecretId, delegate: Address) -> Result<B256, Error> {
        confirm(self.controller().revokeDelegate(id, delegate).send().await).await
    }

    /// Proposes `new_owner` (two-step; zero cancels). Owner only.
    ///
    /// # Errors
    /// [`Error::Transaction`].
    pub async fn transfer(&self, id: SecretId, new_owner: Address) -> Result<B256, Error> {
        confirm(self.controller().transferSecretOwnership(id, new_owner).send().await).await
    }

    /// Accepts a proposed transfer (the pending owner's wallet). All delegations end.
    ///
    /// # Errors
    /// [`Error::Transaction`].
    pub async fn accept_ownership(&self, id: SecretId) -> Result<B256, Error> {
        confirm(self.controller().acceptSecretOwnership(id).send().await).await
    }

    /// Shreds the secret for good: nobody is authorized any more and nodes delete their
    /// fragments. Owner only.
    ///
    /// # Errors
    /// [`Error::Transaction`].
    pub async fn shred(&self, id: SecretId) -> Result<B256, Error> {
        confirm(self.controller().shred(id).send().await).await
    }

    /// Whether `account` may decrypt secret `id` now (owner or current delegate).
    ///
    /// # Errors
    /// [`Error::Rpc`].
    pub async fn is_authorized(&self, id: SecretId, account: Address) -> Result<bool, Error> {
        self.controller().isAuthorized(id, account).call().await.map_err(rpc)
    }

    /// Up to `limit` audit entries after `after`, with the hash chain checked link by link
    /// (each `prevHash` is the previous entry's `hash`; a page starting after 0 is linked
    /// to what the caller saw before).
    ///
    /// # Errors
    /// [`Error::Refused`], [`Error::BadReply`] if the chain of hashes is broken.
    pub async fn audit(&self, after: u64, limit: u32) -> Result<Vec<AuditRecord>, Error> {
        let v = self
            .call_bb(reqwest::Method::GET, &format!("/v1/audit?after={after}&limit={limit}"), None)
            .await?;
        let records: Vec<AuditRecord> = serde_json::from_value(v["entries"].clone())
            .map_err(|e| Error::BadReply(format!("audit entries: {e}")))?;
        for pair in records.windows(2) {
            if pair[1].prev_hash != pair[0].hash || pair[1].seq != pair[0].seq + 1 {
                return Err(Error::BadReply(format!(
                    "audit chain broken at entry {}",
                    pair[1].seq
                )));
            }
        }
        Ok(records)
    }

    /// The chain head, the cluster's members and whether each service answers `/health`.
    ///
    /// # Errors
    /// [`Error::Rpc`].
    pub async fn status(&self, cluster_id: u32) -> Result<Status, Error> {
        let registry = cifer_bindings::ClusterRegistry::new(
            self.endpoints.cluster_registry,
            self.provider.clone(),
        );
        let head = self.provider.get_block_number().await.map_err(rpc)?;
        let cluster = registry.cluster(cluster_id).call().await.map_err(rpc)?;
        let mut members = Vec::with_capacity(cluster.members.len());
        for id in cluster.members {
            let node = registry.node(id).call().await.map_err(rpc)?;
            let healthy = self.healthy(&node.endpoint).await;
            members.push(NodeStatus { id, endpoint: node.endpoint, healthy });
        }
        Ok(Status {
            chain_id: self.endpoints.chain_id,
            head,
            cluster_id,
            threshold: cluster.threshold,
            cluster_active: registry.isClusterActive(cluster_id).call().await.map_err(rpc)?,
            members,
            black_box_healthy: self.healthy(&self.endpoints.black_box_url).await,
        })
    }

    async fn healthy(&self, base: &str) -> bool {
        let url = format!("{}/health", base.trim_end_matches('/'));
        let probe = self.http.get(url).timeout(Duration::from_secs(3)).send().await;
        probe.is_ok_and(|r| r.status().is_success())
    }

    /// The current block number of the SDK's own RPC.
    ///
    /// # Errors
    /// [`Error::Rpc`].
    pub async fn block_number(&self) -> Result<u64, Error> {
        self.provider.get_block_number().await.map_err(rpc)
    }
}

async fn confirm(
    sent: Result<
        alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
        alloy::contract::Error,
    >,
) -> Result<B256, Error> {
    let pending = sent.map_err(|e| {
        let reason = e
            .as_decoded_interface_error::<SecretsController::SecretsControllerErrors>()
            .map_or_else(|| e.to_string(), |d| format!("{d:?}"));
        Error::Transaction { reason }
    })?;
    let receipt = pending.get_receipt().await.map_err(tx_error)?;
    if !receipt.status() {
        return Err(Error::Transaction { reason: "reverted".into() });
    }
    Ok(receipt.transaction_hash)
}

/// Transient refusals worth retrying while the services' chain views catch up.
fn retryable(e: &Error) -> bool {
    matches!(e, Error::Refused { code, .. } if retryable_code(code))
}

fn retryable_code(code: &str) -> bool {
    // `delivery_incomplete`: nodes whose views have not yet seen the new secret refuse it
    // for now; delivery is idempotent, so asking again is safe.
    matches!(code, "unknown_secret" | "chain_unavailable" | "future" | "delivery_incomplete")
}
