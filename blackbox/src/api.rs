//! The HTTP API (axum).
//!
//! | route | what |
//! | --- | --- |
//! | `POST /v1/secrets` | a creation bundle for a new secret in a cluster (fresh seed, split 3-of-5, fragments sealed to the nodes' registered keys, seed wiped) |
//! | `POST /v1/secrets/deliver` | forward a bundle to every node of the secret's cluster once the secret is on chain |
//! | `GET /v1/secrets/{chainId}/{secretId}/key` | the secret's encapsulation key as registered on chain (clients check its hash themselves) |
//! | `POST /v1/decrypt` | the checks of PROTOCOL.md §4.3, fan-out to the cluster, rebuild, and the envelope's stream key sealed to the requester's response key |
//! | `POST /v1/decrypt/thin` | thin mode (off by default): a small whole envelope in, its plaintext sealed to the response key out |
//! | `GET /v1/audit`, `GET /v1/audit/head` | the hash-chained audit log |
//! | `GET /health`, `GET /metrics`, `GET /openapi.json` | operations |
//!
//! Every refusal is `{ "error": { "code", "message" } }` ([`ApiError`]) and an audit record.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cifer_auth::{check_freshness, replay_key};
use cifer_chain::alloy::primitives::{Address, U256};
use cifer_chain::{ChainError, ChainView, Cluster, Health, Pinned, SecretState};
use cifer_core::envelope;
use cifer_core::fragment::VerificationMemo;
use cifer_core::header::EnvelopePrefix;
use cifer_core::{EncapsulationKey, Seed, StreamKey, Suite, keccak256};
use cifer_custody::{Bundle, Released};
use cifer_service::http::json_body;
use cifer_service::verify::{Verified, VerifyError, verify_user};
use cifer_service::wire::{self, FieldError, RequestJson, UserRequest, hex0x};
use cifer_store::{AuditEntry, AuditKind, Claim, Durable, RateCheck, Store};
use k256::ecdsa::SigningKey;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::cache::KeyCache;
use crate::config::RateLimit;
use crate::error::{ApiError, ErrorCode};
use crate::gather::{GatherError, NodeId, authenticate_commitments, gather_and_rebuild};
use crate::metrics::Metrics;
use crate::nodes::{NodeRef, Nodes};
use crate::release::{self, ReleaseAnswer, Releases};

/// The OpenAPI document served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Longest user signature accepted (EIP-1271 wallets may send long ones).
const MAX_SIGNATURE: usize = 4096;

/// One served chain.
#[derive(Debug, Clone)]
pub struct Chain {
    /// Its view.
    pub view: ChainView,
    /// Freshness window `W` in blocks.
    pub window: u64,
}

/// Tunables of the handlers.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Deadline of one gathering.
    pub gather_deadline: Duration,
    /// Per-signer rate limit.
    pub rate_limit: RateLimit,
    /// Whether thin mode is served.
    pub thin_mode: bool,
    /// Largest thin-mode envelope.
    pub thin_max_bytes: usize,
    /// Other black boxes whose bundles are trusted.
    pub trusted_black_boxes: Vec<Address>,
}

/// Public keys by `(chain id, secret id)`.
pub type PublicKeys = HashMap<(u64, [u8; 32]), Vec<u8>>;

/// What every handler shares.
pub struct AppState {
    /// Replay set, rate counters, audit log (shared by replicas).
    pub store: Store,
    /// The registered signer's key.
    pub signer: SigningKey,
    /// Its address.
    pub signer_address: [u8; 20],
    /// The registered black-box account.
    pub account: Address,
    /// Served chains.
    pub chains: HashMap<u64, Chain>,
    /// The node client.
    pub nodes: Nodes,
    /// The per-node release queues (batches to `POST /v1/releases`).
    pub releases: Releases,
    /// The key cache (off unless configured).
    pub cache: KeyCache,
    /// Checks already passed (fragments against commitments, bundle signatures): each is
    /// done once per process, not once per decryption. Digests only; see
    /// [`cifer_core::fragment::VerificationMemo`].
    pub memo: VerificationMemo,
    /// Commitments decoded from node replies, by their exact bytes (public), so that a
    /// hot secret's are decoded once per process rather than once per decryption.
    pub commitments: Arc<cifer_core::CommitmentsCache>,
    /// Secrets' public keys, from `SecretCreated` events.
    pub public_keys: RwLock<PublicKeys>,
    /// Counters.
    pub metrics: Metrics,
    /// Tunables.
    pub settings: Settings,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("account", &self.account)
            .field("chains", &self.chains.keys().collect::<Vec<_>>())
            .field("signer", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The router over `state`, refusing bodies above `max_body_bytes`.
pub fn router(state: Arc<AppState>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/v1/secrets", post(create))
        .route("/v1/secrets/deliver", post(deliver))
        .route("/v1/secrets/{chain_id}/{secret_id}/key", get(public_key))
        .route("/v1/decrypt", post(decrypt))
        .route("/v1/decrypt/thin", post(decrypt_thin))
        .route("/v1/audit", get(audit_log))
        .route("/v1/audit/head", get(audit_head))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

// ---------------------------------------------------------------------------------------
// Parsing helpers

fn bad_field(e: FieldError) -> ApiError {
    ApiError::bad_request(e.0)
}

fn chain_error(e: &ChainError) -> ApiError {
    ApiError::new(ErrorCode::ChainUnavailable, format!("chain view: {e}"))
}

fn served(state: &AppState, chain_id: u64) -> Result<&Chain, ApiError> {
    state
        .chains
        .get(&chain_id)
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownChain, "chain not served by this black box"))
}

/// The cluster's members with their registered endpoints and key hashes.
async fn members(at: &Pinned, cluster_id: u32) -> Result<(Cluster, Vec<NodeRef>), ApiError> {
    let cluster = at
        .cluster(cluster_id)
        .await
        .map_err(|e| chain_error(&e))?
        .filter(Cluster::is_active)
        .ok_or_else(|| {
            ApiError::new(ErrorCode::ClusterInactive, "the cluster is unknown or inactive")
        })?;
    let mut refs = Vec::with_capacity(cluster.members.len());
    for &id in &cluster.members {
        let node = at.node(id).await.map_err(|e| chain_error(&e))?;
        // A retired member keeps its slot; it is asked anyway and counted as missing.
        let (endpoint, key_hash) =
            node.map_or_else(|| (String::new(), [0; 32]), |n| (n.endpoint, n.public_key_hash.0));
        refs.push(NodeRef { id, endpoint, key_hash });
    }
    Ok((cluster, refs))
}

// ---------------------------------------------------------------------------------------
// Creating a secret

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateBody {
    chain_id: u64,
    cluster_id: u32,
}

async fn create(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match create_checked(&state, body).await {
        Ok(reply) => {
            state.metrics.created();
            (StatusCode::CREATED, Json(reply)).into_response()
        }
        Err(e) => {
            state.metrics.refused(e.code);
            e.into_response()
        }
    }
}

async fn create_checked(
    state: &Arc<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Value, ApiError> {
    let req: CreateBody = json_body(body)?;
    let chain = served(state, req.chain_id)?;
    let at = chain.view.pinned().map_err(|e| chain_error(&e))?;
    let (cluster, refs) = members(&at, req.cluster_id).await?;
    let mut keys = Vec::with_capacity(refs.len());
    for node in &refs {
        let key = state.nodes.key(node).await.map_err(|why| {
            ApiError::new(ErrorCode::NodeKeyMismatch, format!("node {}: {why}", node.id))
        })?;
        keys.push(key);
    }
    let st = Arc::clone(state);
    let (chain_id, cluster_id, threshold) = (req.chain_id, req.cluster_id, cluster.threshold);
    let bundle = tokio::task::spawn_blocking(move || {
        cifer_custody::create_bundle(chain_id, cluster_id, threshold, &keys, &st.signer)
    })
    .await
    .map_err(|e| ApiError::internal(&e))?
    .map_err(|e| ApiError::internal(&e))?;
    let entry = AuditEntry {
        kind: AuditKind::Create,
        chain_id,
        secret_id: [0; 32],
        actor: state.account.0.0,
        digest: bundle.digest(),
        code: "bundle".into(),
    };
    state.store.append_audit(entry).await.map_err(|e| ApiError::internal(&e))?;
    tracing::info!(chain_id, cluster_id, "creation bundle made");
    Ok(json!({
        "bundle": bundle_json(&bundle),
        "blackBox": hex0x(state.account.as_slice()),
        "publicKeyHash": hex0x(&keccak256(&bundle.encapsulation_key)),
        "members": refs.iter().map(|n| n.id).collect::<Vec<_>>(),
    }))
}

/// The JSON form of a bundle (as the shard node's `POST /v1/fragments` takes it).
#[must_use]
pub fn bundle_json(b: &Bundle) -> Value {
    json!({
        "chainId": b.chain_id,
        "clusterId": b.cluster_id,
        "encapsulationKey": hex0x(&b.encapsulation_key),
        "commitments": hex0x(&b.commitments),
        "sealed": b.sealed.iter().map(|s| hex0x(s)).collect::<Vec<_>>(),
        "signature": hex0x(&b.signature),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DeliverBody {
    chain_id: u64,
    secret_id: String,
    #[serde(default)]
    black_box: Option<String>,
    bundle: Value,
}

async fn deliver(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match deliver_checked(&state, body).await {
        Ok(reply) => Json(reply).into_response(),
        Err(e) => {
            state.metrics.refused(e.code);
            e.into_response()
        }
    }
}

async fn deliver_checked(
    state: &Arc<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Value, ApiError> {
    let req: DeliverBody = json_body(body)?;
    let secret_id = wire::uint256("secretId", &req.secret_id).map_err(bad_field)?;
    let black_box = match &req.black_box {
        Some(a) => wire::address("blackBox", a).map_err(bad_field)?,
        None => state.account.0.0,
    };
    let chain = served(state, req.chain_id)?;
    let at = chain.view.pinned().map_err(|e| chain_error(&e))?;
    let secret = at
        .secret(U256::from_be_bytes(secret_id))
        .await
        .map_err(|e| chain_error(&e))?
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownSecret, "no such secret on chain"))?;
    let (cluster, refs) = members(&at, secret.cluster_id).await?;
    let forward = json!({
        "chainId": req.chain_id,
        "secretId": U256::from_be_bytes(secret_id).to_string(),
        "blackBox": hex0x(&black_box),
        "bundle": req.bundle,
    });
    let calls = refs.iter().map(|n| {
        let forward = &forward;
        async move { (n.id, state.nodes.post(&n.endpoint, "/v1/fragments", forward).await) }
    });
    let results = futures_util::future::join_all(calls).await;
    let mut stored = 0usize;
    let mut report = Vec::with_capacity(results.len());
    for (id, result) in results {
        let (ok, status) = match result {
            Ok((code, body)) if code < 300 => {
                (true, body["status"].as_str().unwrap_or("stored").to_owned())
            }
            Ok((_, body)) => (false, body["error"]["code"].as_str().unwrap_or("error").to_owned()),
            Err(_) => (false, "unreachable".to_owned()),
        };
        stored += usize::from(ok);
        report.push(json!({ "nodeId": id, "ok": ok, "status": status }));
    }
    let complete = stored == refs.len();
    if stored < usize::from(cluster.threshold) {
        let mut e = ApiError::new(
            ErrorCode::DeliveryIncomplete,
            format!(
                "{stored} of {} nodes stored their fragment; retry (delivery is idempotent)",
                refs.len()
            ),
        );
        e.nodes = Some(json!(report));
        return Err(e);
    }
    Ok(json!({ "complete": complete, "stored": stored, "nodes": report }))
}

async fn public_key(
    State(state): State<Arc<AppState>>,
    path: Result<Path<(u64, String)>, PathRejection>,
) -> Response {
    let run = async {
        let Path((chain_id, secret_id)) = path.map_err(|_| {
            ApiError::bad_request("path: expected /v1/secrets/{chainId (u64)}/{secretId}/key")
        })?;
        let id = wire::uint256("secretId", &secret_id).map_err(bad_field)?;
        let chain = served(&state, chain_id)?;
        let at = chain.view.pinned().map_err(|e| chain_error(&e))?;
        let secret =
            at.secret(U256::from_be_bytes(id)).await.map_err(|e| chain_error(&e))?.ok_or_else(
                || ApiError::new(ErrorCode::UnknownSecret, "no such secret on chain"),
            )?;
        let key = state
            .public_keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(chain_id, id))
            .cloned()
            .filter(|k| keccak256(k) == secret.public_key_hash.0)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::UnknownSecret,
                    "the secret's key is not indexed yet; retry",
                )
            })?;
        Ok::<_, ApiError>(json!({
            "chainId": chain_id,
            "secretId": U256::from_be_bytes(id).to_string(),
            "suite": secret.suite,
            "encapsulationKey": hex0x(&key),
            "publicKeyHash": hex0x(&secret.public_key_hash.0),
            "owner": hex0x(secret.owner.as_slice()),
            "clusterId": secret.cluster_id,
            "active": secret.state == SecretState::Active,
        }))
    };
    match run.await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

// ---------------------------------------------------------------------------------------
// Decryption

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DecryptBody {
    request: RequestJson,
    signature: String,
    #[serde(default)]
    envelope_prefix: Option<String>,
    #[serde(default)]
    envelope: Option<String>,
    response_key: String,
}

/// One item of `POST /v1/releases` to a node: the user's signed request as received and
/// this black box's per-request response key (the batch's signature binds it).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReleaseItem<'a> {
    request: &'a RequestJson,
    signature: &'a str,
    response_key: String,
}

/// What the checks established about an accepted request.
struct Accepted {
    chain_id: u64,
    secret_id: [u8; 32],
    digest: [u8; 32],
    prefix: EnvelopePrefix,
    body: Vec<u8>,
    response_key: EncapsulationKey,
    ek_hash: [u8; 32],
    cluster_id: u32,
    at: Pinned,
    request: RequestJson,
    signature: String,
}

#[derive(Default, Clone, Copy)]
struct Ctx {
    chain_id: u64,
    secret_id: [u8; 32],
    signer: [u8; 20],
    digest: [u8; 32],
}

impl Ctx {
    fn entry(&self, kind: AuditKind, code: &str) -> AuditEntry {
        AuditEntry {
            kind,
            chain_id: self.chain_id,
            secret_id: self.secret_id,
            actor: self.signer,
            digest: self.digest,
            code: code.to_owned(),
        }
    }
}

async fn decrypt(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    serve_decrypt(state, body, false).await
}

async fn decrypt_thin(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if !state.settings.thin_mode {
        let e = ApiError::new(ErrorCode::ThinModeDisabled, "thin mode is not enabled here");
        state.metrics.refused(e.code);
        return e.into_response();
    }
    serve_decrypt(state, body, true).await
}

async fn serve_decrypt(
    state: Arc<AppState>,
    body: Result<Bytes, BytesRejection>,
    thin: bool,
) -> Response {
    let started = Instant::now();
    let mut ctx = Ctx::default();
    let result = match accept(&state, body, thin, &mut ctx).await {
        Ok((accepted, durable)) => {
            tracing::debug!(accept_us = started.elapsed().as_micros(), "request accepted");
            answer(&state, accepted, durable, thin).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok((reply, cached)) => {
            let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            state.metrics.decrypted(cached, micros);
            // Debug, not info: one line per success is the audit log's job (every decision
            // is a hash-chained record there), and at hundreds per second the formatting and
            // the write cost as much as a signature check. Refusals stay at info.
            tracing::debug!(
                chain_id = ctx.chain_id,
                secret_id = %hex::encode(ctx.secret_id),
                signer = %hex::encode(ctx.signer),
                cached,
                thin,
                "decryption served"
            );
            Json(reply).into_response()
        }
        Err(e) => {
            state.metrics.refused(e.code);
            tracing::info!(
                chain_id = ctx.chain_id,
                secret_id = %hex::encode(ctx.secret_id),
                signer = %hex::encode(ctx.signer),
                code = e.code.as_str(),
                "decryption refused"
            );
            // Refusals before the claim are recorded here; failures after it (the claim
            // wrote an `authorized` record) are recorded as a refusal that follows it.
            if let Err(err) =
                state.store.append_audit(ctx.entry(AuditKind::Refusal, e.code.as_str())).await
            {
                tracing::error!(error = %err, "cannot append an audit record");
            }
            e.into_response()
        }
    }
}

/// The checks of PROTOCOL.md §4.3, then the replay claim with its audit record: returned
/// once the claim is decided, with the commit that makes it durable still under way.
async fn accept(
    state: &Arc<AppState>,
    body: Result<Bytes, BytesRejection>,
    thin: bool,
    ctx: &mut Ctx,
) -> Result<(Accepted, Durable), ApiError> {
    // 1. Shape.
    let req: DecryptBody = json_body(body)?;
    let request = req.request.parse().map_err(bad_field)?;
    ctx.chain_id = request.chain_id();
    ctx.secret_id = request.secret_id();
    ctx.signer = request.signer();
    let signature =
        wire::hex_bytes("signature", &req.signature, None, MAX_SIGNATURE).map_err(bad_field)?;
    let response_key_bytes = wire::hex_bytes(
        "responseKey",
        &req.response_key,
        Some(cifer_core::keys::EK_LEN),
        cifer_core::keys::EK_LEN,
    )
    .map_err(bad_field)?;
    let response_key = EncapsulationKey::from_bytes(&response_key_bytes).map_err(|_| {
        ApiError::bad_request("responseKey: not a valid ML-KEM-768 encapsulation key")
    })?;
    let (prefix, rest) = match (thin, &req.envelope_prefix, &req.envelope) {
        (false, Some(p), None) => {
            let bytes = wire::hex_bytes("envelopePrefix", p, None, 4096).map_err(bad_field)?;
            let (prefix, used) = EnvelopePrefix::decode(&bytes)
                .map_err(|e| ApiError::bad_request(format!("envelopePrefix: {e}")))?;
            if used != bytes.len() {
                return Err(ApiError::bad_request(
                    "envelopePrefix: trailing bytes after the encapsulation",
                ));
            }
            (prefix, Vec::new())
        }
        (true, None, Some(env)) => {
            let max = state.settings.thin_max_bytes;
            let bytes = wire::hex_bytes("envelope", env, None, max).map_err(bad_field)?;
            let (prefix, used) = EnvelopePrefix::decode(&bytes)
                .map_err(|e| ApiError::bad_request(format!("envelope: {e}")))?;
            (prefix, bytes[used..].to_vec())
        }
        (false, ..) => return Err(ApiError::bad_request("give envelopePrefix (and not envelope)")),
        (true, ..) => return Err(ApiError::bad_request("give envelope (and not envelopePrefix)")),
    };

    // 2. The envelope and response key are the ones the request names.
    let header = prefix.header();
    if header.suite != Suite::MlKem768 {
        return Err(ApiError::new(
            ErrorCode::UnsupportedSuite,
            "the envelope's suite is not ML-KEM-768",
        ));
    }
    if header.chain_id != ctx.chain_id || header.secret_id != ctx.secret_id {
        return Err(ApiError::new(
            ErrorCode::EnvelopeMismatch,
            "the envelope header names another chain or secret than the request",
        ));
    }
    if let UserRequest::Typed(r) = &request {
        if r.envelope_hash != prefix.envelope_hash() {
            return Err(ApiError::new(
                ErrorCode::EnvelopeMismatch,
                "request.envelopeHash is not keccak256(header || encapsulation) of this envelope",
            ));
        }
        if r.response_key_hash != keccak256(&response_key_bytes) {
            return Err(ApiError::new(
                ErrorCode::EnvelopeMismatch,
                "request.responseKeyHash is not keccak256(responseKey)",
            ));
        }
    }

    // 3. Chain served and contract named.
    let chain = served(state, ctx.chain_id)?;
    if let Some(contract) = request.verifying_contract()
        && contract != chain.view.config().secrets_controller.0.0
    {
        return Err(ApiError::new(
            ErrorCode::UnknownChain,
            "request.verifyingContract is not this chain's SecretsController",
        ));
    }

    // 4. Signature.
    let Verified { signer, digest, pinned } =
        verify_user(&request, &signature, &chain.view).await.map_err(|e| match e {
            VerifyError::Chain(e) => chain_error(&e),
            other => ApiError::new(ErrorCode::BadSignature, other.to_string()),
        })?;
    ctx.digest = digest;

    // 5. Freshness.
    let at = match pinned {
        Some(at) => at,
        None => chain.view.pinned().map_err(|e| chain_error(&e))?,
    };
    let head = at.head().number;
    let block = request.block_number();
    check_freshness(block, head, chain.window).map_err(|e| match e {
        cifer_auth::Error::FromTheFuture { .. } => ApiError::new(
            ErrorCode::Future,
            format!("request block {block} is ahead of the head {head}"),
        ),
        _ => ApiError::new(
            ErrorCode::Stale,
            format!(
                "request block {block} is older than head {head} minus window {}",
                chain.window
            ),
        ),
    })?;

    // 6. The secret and the authorization at the same head.
    let id = U256::from_be_bytes(ctx.secret_id);
    let secret = at
        .secret(id)
        .await
        .map_err(|e| chain_error(&e))?
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownSecret, "no such secret on chain"))?;
    if secret.state != SecretState::Active {
        return Err(ApiError::new(ErrorCode::SecretInactive, "the secret is shredded"));
    }
    if secret.suite != cifer_bindings::suite::ML_KEM_768 {
        return Err(ApiError::new(
            ErrorCode::UnsupportedSuite,
            "the secret's suite is not ML-KEM-768",
        ));
    }
    if !at.is_authorized(id, Address::from(signer)).await.map_err(|e| chain_error(&e))? {
        return Err(ApiError::new(
            ErrorCode::NotAuthorized,
            "the signer is not the owner or a current delegate of the secret",
        ));
    }

    // 7. Rate limit (shared by replicas), then the replay claim with the audit record
    // that precedes any key leaving: one transaction, one durable commit. The claim is
    // decided (no replica can win it any more) before the commit is flushed; the fan-out
    // may start then, since what it brings back is sealed to a key only this request
    // holds, and `answer` waits for the commit before anything leaves.
    let limit = state.settings.rate_limit;
    let record = *ctx;
    let (claimed, durable) = state
        .store
        .count_and_decide_claim(
            RateCheck { subject: signer, window_ms: limit.window_ms, limit: limit.limit },
            replay_key(&signer, &digest),
            block.saturating_add(chain.window),
            move || record.entry(AuditKind::Decrypt, "authorized"),
        )
        .await
        .map_err(|e| ApiError::internal(&e))?;
    match claimed {
        Claim::Claimed(_) => {}
        Claim::RateLimited => {
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                "too many requests from this signer",
            ));
        }
        Claim::Replayed => {
            return Err(ApiError::new(ErrorCode::Replayed, "this request was already accepted"));
        }
    }
    let accepted = Accepted {
        chain_id: ctx.chain_id,
        secret_id: ctx.secret_id,
        digest,
        prefix,
        body: rest,
        response_key,
        ek_hash: secret.public_key_hash.0,
        cluster_id: secret.cluster_id,
        at,
        request: req.request,
        signature: req.signature,
    };
    Ok((accepted, durable))
}

/// The stream key (from the cache or the cluster), sealed to the requester once the
/// claim's audit record is durable.
async fn answer(
    state: &Arc<AppState>,
    a: Accepted,
    durable: Durable,
    thin: bool,
) -> Result<(Value, bool), ApiError> {
    let cache_key = (a.chain_id, a.secret_id);
    let gathered = match state.cache.get(&cache_key, &a.ek_hash) {
        Some(seed) => seed
            .stream_key(&a.prefix)
            .map(|key| (key, true, json!({ "liars": [], "unavailable": [] })))
            .map_err(|_| integrity("the envelope does not open with the secret's key")),
        None => from_cluster(state, &a).await.map(|(key, report)| (key, false, report)),
    };
    // Nothing is sealed to the requester, and no outcome is answered, before the
    // `authorized` record is committed; if the commit failed, the claim was not kept and
    // the rebuilt key is dropped (wiped) here.
    durable.wait().await.map_err(|e| ApiError::internal(&e))?;
    let (key, cached, report) = gathered?;
    let (field, sealed) = if thin {
        let plain =
            Zeroizing::new(envelope::open_body(&key, &a.prefix, &a.body).map_err(|_| {
                ApiError::new(ErrorCode::Integrity, "the envelope does not authenticate")
            })?);
        (
            "sealedPlaintext",
            cifer_custody::seal_plaintext_reply(a.chain_id, a.secret_id, &plain, &a.response_key),
        )
    } else {
        ("sealedKey", cifer_custody::seal_key_reply(a.chain_id, a.secret_id, &key, &a.response_key))
    };
    let sealed = sealed.map_err(|e| ApiError::internal(&e))?;
    Ok((json!({ field: hex0x(&sealed), "cached": cached, "nodes": report }), cached))
}

fn integrity(message: &str) -> ApiError {
    ApiError::new(ErrorCode::Integrity, message)
}

/// Fan-out to the cluster, first three valid fragments, rebuild, derive.
async fn from_cluster(state: &Arc<AppState>, a: &Accepted) -> Result<(StreamKey, Value), ApiError> {
    let t0 = Instant::now();
    let (cluster, refs) = members(&a.at, a.cluster_id).await?;
    let t_members = t0.elapsed();
    // The signers whose bundles we accept: ours and the configured peers' (at this head).
    let mut trusted = vec![state.signer_address];
    for peer in &state.settings.trusted_black_boxes {
        if let Some(bb) = a.at.black_box(*peer).await.map_err(|e| chain_error(&e))? {
            trusted.push(bb.signer.0.0);
        }
    }
    // A fresh response key for this request only, bound to it by our registered signer.
    let response_seed = Seed::generate_os().map_err(|e| ApiError::internal(&e))?;
    let opener =
        cifer_custody::ReleaseOpener::with_cache(&response_seed, Arc::clone(&state.commitments));
    drop(response_seed);
    let response_ek = opener.encapsulation_key();
    let bound = cifer_custody::release_key_digest(
        a.chain_id,
        &a.secret_id,
        &a.digest,
        response_ek.as_bytes(),
    );
    let item = ReleaseItem {
        request: &a.request,
        signature: &a.signature,
        response_key: hex0x(response_ek.as_bytes()),
    };
    // Serialized once for the five nodes, straight from the typed body (no JSON tree); the
    // node queues sign it, alone or in a batch (`crate::release`).
    let item = serde_json::to_vec(&item).map_err(|e| ApiError::internal(&e))?;
    let item = Arc::new(release::Item::new(item.into(), bound));
    let by_id: HashMap<NodeId, &NodeRef> = refs.iter().map(|n| (n.id, n)).collect();
    let ids: Vec<NodeId> = refs.iter().map(|n| n.id).collect();
    let (chain_id, secret_id, cluster_id, ek_hash) =
        (a.chain_id, a.secret_id, a.cluster_id, a.ek_hash);
    let fetch = |id: NodeId| {
        let node = by_id.get(&id).copied();
        let (item, opener) = (&item, &opener);
        async move {
            let node = node.ok_or("not in the cluster")?;
            // A node whose view trails ours answers `future` (nothing claimed): ask again
            // until the gather deadline cuts it off.
            let sealed = loop {
                match state.releases.ask(state, &node.endpoint, item).await? {
                    ReleaseAnswer::Future => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    ReleaseAnswer::Sealed(sealed) => break sealed,
                }
            };
            // A reply that does not open under this request's fresh key is reported as
            // this node's failure (it may be corruption in transit as well as a lie).
            opener.open(&sealed, chain_id, &secret_id).map_err(|_| "reply does not open".to_owned())
        }
    };
    let memo = &state.memo;
    let authenticate = |r: &Released| {
        trusted.iter().any(|signer| {
            let digest = memo.digest(
                b"bundle",
                &[
                    &chain_id.to_be_bytes(),
                    &cluster_id.to_be_bytes(),
                    &ek_hash,
                    &r.commitments.hash(),
                    &r.bundle_signature,
                    signer,
                ],
            );
            memo.passes(digest, || {
                authenticate_commitments(
                    chain_id,
                    cluster_id,
                    &ek_hash,
                    &r.commitments,
                    &r.bundle_signature,
                    signer,
                )
                .is_ok()
            })
        })
    };
    let cache = &state.cache;
    let prefix = &a.prefix;
    let rebuilt = gather_and_rebuild(
        &ids,
        cluster.threshold,
        state.settings.gather_deadline,
        fetch,
        authenticate,
        &ek_hash,
        memo,
        |seed, key| {
            cache.insert((chain_id, secret_id), seed, ek_hash);
            key.stream_key(prefix)
        },
    )
    .await
    .map_err(|e| gather_error(state, &e))?;
    let liars: Vec<NodeId> = rebuilt.liars.iter().map(|(n, _)| *n).collect();
    let missing: Vec<NodeId> = rebuilt.unavailable.iter().map(|(n, _)| *n).collect();
    state.metrics.node_failures(&liars, &missing);
    for (node, why) in &rebuilt.liars {
        tracing::warn!(node_id = node, reason = ?why, "node answered with an invalid fragment");
    }
    tracing::debug!(
        members_us = t_members.as_micros(),
        total_us = t0.elapsed().as_micros(),
        "fragments gathered and key rebuilt"
    );
    let key = rebuilt.value;
    Ok((key, json!({ "liars": liars, "unavailable": missing })))
}

fn gather_error(state: &AppState, e: &GatherError) -> ApiError {
    match e {
        GatherError::NotEnough { liars, unavailable, .. } => {
            state.metrics.node_failures(liars, unavailable);
            tracing::warn!(?liars, ?unavailable, "not enough valid fragments");
            // With liars among the answers, the failure is one of integrity, and says who.
            let code =
                if liars.is_empty() { ErrorCode::NotEnoughFragments } else { ErrorCode::Integrity };
            let mut err = ApiError::new(code, e.to_string());
            err.nodes = Some(json!({ "liars": liars, "unavailable": unavailable }));
            err
        }
        GatherError::Core(_) => integrity("the envelope does not open with the rebuilt key"),
        _ => integrity(&e.to_string()),
    }
}

// ---------------------------------------------------------------------------------------
// Audit, health, metrics, OpenAPI

#[derive(Deserialize)]
struct AuditQuery {
    #[serde(default)]
    after: u64,
    #[serde(default = "default_limit")]
    limit: u32,
}

const fn default_limit() -> u32 {
    100
}

async fn audit_log(
    State(state): State<Arc<AppState>>,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return ApiError::bad_request("query: after and limit must be unsigned integers")
            .into_response();
    };
    match state.store.read_audit(q.after, q.limit.min(1000)).await {
        Ok(records) => {
            let entries: Vec<Value> = records
                .iter()
                .map(|r| {
                    json!({
                        "seq": r.seq,
                        "atUnixMs": r.at_unix_ms,
                        "kind": format!("{:?}", r.entry.kind).to_lowercase(),
                        "chainId": r.entry.chain_id,
                        "secretId": U256::from_be_bytes(r.entry.secret_id).to_string(),
                        "actor": hex0x(&r.entry.actor),
                        "digest": hex0x(&r.entry.digest),
                        "code": r.entry.code,
                        "prevHash": hex0x(&r.prev_hash),
                        "hash": hex0x(&r.hash),
                    })
                })
                .collect();
            Json(json!({ "entries": entries })).into_response()
        }
        Err(e) => ApiError::internal(&e).into_response(),
    }
}

async fn audit_head(State(state): State<Arc<AppState>>) -> Response {
    match state.store.audit_head().await {
        Ok(h) => Json(json!({ "seq": h.seq, "hash": hex0x(&h.hash) })).into_response(),
        Err(e) => ApiError::internal(&e).into_response(),
    }
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let store_ok = matches!(
        tokio::time::timeout(Duration::from_secs(3), state.store.ping()).await,
        Ok(Ok(()))
    );
    let mut chains: Vec<Value> = Vec::with_capacity(state.chains.len());
    for (id, c) in &state.chains {
        chains.push(match c.view.health() {
            Health::Healthy(head) => {
                // Nodes accept only the signer registered for our account: say if it is not us.
                let registered = match c.view.pinned() {
                    Ok(at) => at
                        .black_box(state.account)
                        .await
                        .ok()
                        .flatten()
                        .is_some_and(|bb| bb.signer.0.0 == state.signer_address),
                    Err(_) => false,
                };
                json!({ "chainId": id, "healthy": registered, "head": head.number,
                        "registered": registered })
            }
            Health::Unavailable(reason) => {
                json!({ "chainId": id, "healthy": false, "reason": reason.to_string() })
            }
        });
    }
    chains.sort_by_key(|c| c["chainId"].as_u64());
    let ok = store_ok && chains.iter().all(|c| c["healthy"] == true);
    let body = json!({
        "status": if ok { "ok" } else { "degraded" },
        "store": if store_ok { "ok" } else { "unavailable" },
        "account": hex0x(state.account.as_slice()),
        "signer": hex0x(&state.signer_address),
        "keyCache": state.cache.enabled(),
        "thinMode": state.settings.thin_mode,
        "chains": chains,
    });
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(state.cache.len()),
    )
        .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, "this route does not take this method")
}
