//! The HTTP API (axum): delivery, release, health, metrics and the OpenAPI document.
//!
//! | route | what |
//! | --- | --- |
//! | `POST /v1/fragments` | accept this node's fragment of a creation bundle (write-once) |
//! | `POST /v1/release` | the eight release checks of `docs/services.md`, then the fragment sealed to the black box's per-request key |
//! | `POST /v1/releases` | the same for up to [`MAX_BATCH`] requests at once, under one black-box signature over all their bindings (what the black box sends) |
//! | `GET /v1/identity` | this node's id and ML-KEM-768 transport key (the black box checks it against the registry before sealing a fragment to it) |
//! | `GET /health` | store round trip and every chain view's health (503 unless all are fine) |
//! | `GET /metrics` | Prometheus text |
//! | `GET /openapi.json` | the OpenAPI 3 description (`shard-node/openapi.json`) |
//!
//! Every refusal is `{ "error": { "code", "message" } }` ([`ApiError`]) and an audit
//! record; every release is an audit record written before the reply leaves.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cifer_auth::{check_freshness, replay_key};
use cifer_chain::alloy::primitives::{Address, U256};
use cifer_chain::{ChainError, ChainView, Health, Pinned, SecretState};
use cifer_core::{EncapsulationKey, Seed, keccak256};
use cifer_custody::{Bundle, open_delivery, release_key_digest, seal_release};
use cifer_service::http::json_body;
use cifer_service::verify::{Verified, VerifyError, verify_user};
use cifer_service::wire::{self, FieldError, RequestJson, UserRequest};
use serde::Deserialize;

use crate::error::{ApiError, ErrorCode};
use crate::metrics::{ChainGauge, Metrics};
use crate::ratelimit::RateLimiter;
use cifer_store::{AuditEntry, AuditKind, FragmentRecord, PutOutcome, Store, StoreError};

/// The OpenAPI document served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Most sealed fragments a bundle may carry (a cluster has at most 255 members).
const MAX_SEALED: usize = 255;
/// Longest user signature accepted (EIP-1271 wallets may send long ones).
const MAX_SIGNATURE: usize = 4096;
/// Most requests a release batch may carry.
pub const MAX_BATCH: usize = 32;

/// One served chain.
#[derive(Debug, Clone)]
pub struct Chain {
    /// Its view.
    pub view: ChainView,
    /// Freshness window `W` in blocks.
    pub window: u64,
}

/// What every handler shares.
pub struct AppState {
    /// The storage.
    pub store: Store,
    /// The node's transport identity (opens deliveries).
    pub seed: Seed,
    /// `keccak256` of the node's encapsulation key, as it must be registered.
    pub ek_hash: [u8; 32],
    /// This node's id in `ClusterRegistry`.
    pub node_id: u32,
    /// Served chains by id.
    pub chains: HashMap<u64, Chain>,
    /// Per-signer rate limit of releases.
    pub limiter: RateLimiter,
    /// Counters.
    pub metrics: Metrics,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .field("node_id", &self.node_id)
            .field("chains", &self.chains.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The router over `state`, refusing bodies above `max_body_bytes` (`MAX_BATCH` times that
/// for a release batch).
pub fn router(state: Arc<AppState>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/v1/fragments", post(deliver))
        .route("/v1/release", post(release))
        // A batch may carry up to MAX_BATCH requests, each as large as a single release.
        .route(
            "/v1/releases",
            post(release_batch)
                .layer(DefaultBodyLimit::max(max_body_bytes.saturating_mul(MAX_BATCH))),
        )
        .route("/v1/identity", get(identity))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

// ---------------------------------------------------------------------------------------
// Wire types

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DeliveryBody {
    chain_id: u64,
    secret_id: String,
    black_box: String,
    bundle: BundleBody,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BundleBody {
    chain_id: u64,
    cluster_id: u32,
    encapsulation_key: String,
    commitments: String,
    sealed: Vec<String>,
    signature: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReleaseBody {
    request: RequestJson,
    signature: String,
    black_box: BlackBoxBody,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BlackBoxBody {
    account: String,
    response_key: String,
    signature: String,
}

/// `POST /v1/releases`: several requests, each with its own response key, and one
/// black-box signature over [`cifer_custody::release_batch_digest`] of their bindings.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BatchBody {
    black_box: BatchBinding,
    items: Vec<BatchItem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BatchBinding {
    account: String,
    signature: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BatchItem {
    request: RequestJson,
    signature: String,
    response_key: String,
}

// ---------------------------------------------------------------------------------------
// Field parsing: errors name the field and the rule, never echo the value.

fn hex_field(name: &str, text: &str, len: Option<usize>, max: usize) -> Result<Vec<u8>, ApiError> {
    wire::hex_bytes(name, text, len, max).map_err(bad_field)
}

fn fixed<const N: usize>(name: &str, text: &str) -> Result<[u8; N], ApiError> {
    wire::fixed(name, text).map_err(bad_field)
}

fn address_field(name: &str, text: &str) -> Result<[u8; 20], ApiError> {
    wire::address(name, text).map_err(bad_field)
}

fn u256_field(name: &str, text: &str) -> Result<[u8; 32], ApiError> {
    wire::uint256(name, text).map_err(bad_field)
}

#[allow(clippy::needless_pass_by_value, reason = "used with map_err")]
fn bad_field(e: FieldError) -> ApiError {
    ApiError::bad_request(e.0)
}

/// Any chain view failure is a denial; the message is the view's (URLs redacted).
fn chain_error(e: &ChainError) -> ApiError {
    ApiError::new(ErrorCode::ChainUnavailable, format!("chain view: {e}"))
}

fn pin(chain: &Chain) -> Result<Pinned, ApiError> {
    chain.view.pinned().map_err(|e| chain_error(&e))
}

// ---------------------------------------------------------------------------------------
// Audit

/// What an audit record says about a request, filled in as it is parsed.
#[derive(Clone, Default)]
struct AuditCtx {
    chain_id: u64,
    secret_id: [u8; 32],
    actor: [u8; 20],
    digest: [u8; 32],
    /// The outcome's record was already written (with the replay claim, in one
    /// transaction), so the handler must not append another.
    audited: bool,
}

impl AuditCtx {
    fn entry(&self, kind: AuditKind, code: String) -> AuditEntry {
        AuditEntry {
            kind,
            chain_id: self.chain_id,
            secret_id: self.secret_id,
            actor: self.actor,
            digest: self.digest,
            code,
        }
    }
}

async fn audit(state: &AppState, entry: AuditEntry) -> Result<(), StoreError> {
    let result = state.store.append_audit(entry).await;
    if let Err(e) = &result {
        state.metrics.audit_failure();
        tracing::error!(error = %e, "cannot append an audit record");
    }
    result.map(|_| ())
}

// ---------------------------------------------------------------------------------------
// Delivery

async fn deliver(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut ctx = AuditCtx::default();
    match deliver_checked(&state, body, &mut ctx).await {
        Ok(outcome) => {
            let (status, code) = match outcome {
                PutOutcome::Stored => (StatusCode::CREATED, "stored"),
                PutOutcome::AlreadyStored => (StatusCode::OK, "already_stored"),
            };
            state.metrics.delivered(outcome == PutOutcome::Stored);
            tracing::info!(
                chain_id = ctx.chain_id,
                secret_id = %hex::encode(ctx.secret_id),
                black_box = %hex::encode(ctx.actor),
                outcome = code,
                "fragment delivered"
            );
            // The fragment is durably stored either way; an audit failure is logged.
            let _ = audit(&state, ctx.entry(AuditKind::Store, code.to_owned())).await;
            (status, Json(serde_json::json!({ "status": code }))).into_response()
        }
        Err(e) => {
            state.metrics.delivery_refused(e.code);
            tracing::info!(
                chain_id = ctx.chain_id,
                secret_id = %hex::encode(ctx.secret_id),
                code = e.code.as_str(),
                "delivery refused"
            );
            let _ = audit(
                &state,
                ctx.entry(AuditKind::Refusal, format!("delivery:{}", e.code.as_str())),
            )
            .await;
            e.into_response()
        }
    }
}

async fn deliver_checked(
    state: &Arc<AppState>,
    body: Result<Bytes, BytesRejection>,
    ctx: &mut AuditCtx,
) -> Result<PutOutcome, ApiError> {
    // 1. Shape.
    let req: DeliveryBody = json_body(body)?;
    let secret_id = u256_field("secretId", &req.secret_id)?;
    let black_box = address_field("blackBox", &req.black_box)?;
    ctx.chain_id = req.chain_id;
    ctx.secret_id = secret_id;
    ctx.actor = black_box;
    let b = req.bundle;
    if b.sealed.len() > MAX_SEALED || b.sealed.is_empty() {
        return Err(ApiError::bad_request("bundle.sealed: expected 1 to 255 envelopes"));
    }
    let bundle = Bundle {
        chain_id: b.chain_id,
        cluster_id: b.cluster_id,
        encapsulation_key: hex_field(
            "bundle.encapsulationKey",
            &b.encapsulation_key,
            Some(cifer_core::keys::EK_LEN),
            cifer_core::keys::EK_LEN,
        )?,
        commitments: hex_field("bundle.commitments", &b.commitments, None, 8192)?,
        sealed: b
            .sealed
            .iter()
            .map(|s| hex_field("bundle.sealed[]", s, None, 8192))
            .collect::<Result<_, _>>()?,
        signature: fixed::<65>("bundle.signature", &b.signature)?,
    };
    ctx.digest = bundle.digest();
    if bundle.chain_id != req.chain_id {
        return Err(ApiError::bad_request("bundle.chainId differs from chainId"));
    }

    // 2. Chain served.
    let chain = state
        .chains
        .get(&req.chain_id)
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownChain, "chain not served by this node"))?;
    let at = pin(chain)?;

    // 3. The secret on chain: exists, active, suite 1, same key.
    let secret = at
        .secret(U256::from_be_bytes(secret_id))
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
    let ek_hash = keccak256(&bundle.encapsulation_key);
    if secret.public_key_hash.0 != ek_hash {
        return Err(ApiError::new(
            ErrorCode::KeyMismatch,
            "keccak256(bundle.encapsulationKey) is not the secret's publicKeyHash",
        ));
    }

    // 4. The cluster, and this node's slot in it.
    if secret.cluster_id != bundle.cluster_id {
        return Err(ApiError::new(
            ErrorCode::ClusterMismatch,
            "bundle.clusterId is not the secret's cluster",
        ));
    }
    let cluster = at
        .cluster(bundle.cluster_id)
        .await
        .map_err(|e| chain_error(&e))?
        .ok_or_else(|| ApiError::new(ErrorCode::ClusterMismatch, "unknown cluster"))?;
    let position = cluster.members.iter().position(|m| *m == state.node_id).ok_or_else(|| {
        ApiError::new(ErrorCode::ClusterMismatch, "this node is not a member of the cluster")
    })?;
    let slot = u8::try_from(position + 1)
        .map_err(|_| ApiError::new(ErrorCode::ClusterMismatch, "cluster too large"))?;
    let node = at.node(state.node_id).await.map_err(|e| chain_error(&e))?;
    if node.is_none_or(|n| n.public_key_hash.0 != state.ek_hash) {
        tracing::error!(
            node_id = state.node_id,
            "this node's identity is not the key registered for its node id; check node_id and identity"
        );
        return Err(ApiError::new(
            ErrorCode::NodeKeyMismatch,
            "this node's registered key is not the key it holds",
        ));
    }

    // 5. The black box: registered, and its signer signed the bundle.
    let registered = at
        .black_box(Address::from(black_box))
        .await
        .map_err(|e| chain_error(&e))?
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownBlackBox, "black box not registered"))?;
    let signer = bundle
        .signer()
        .map_err(|e| ApiError::new(ErrorCode::InvalidBundle, format!("bundle.signature: {e}")))?;
    if registered.signer.as_slice() != signer.as_slice() {
        return Err(ApiError::new(
            ErrorCode::UnknownBlackBox,
            "the bundle is not signed by the black box's registered signer",
        ));
    }

    // 6. Open and verify the fragment (ML-KEM decapsulation and commitments: off the
    // async workers).
    let size = cluster.members.len();
    let st = Arc::clone(state);
    let (delivered, bundle) = tokio::task::spawn_blocking(move || {
        let d = open_delivery(&bundle, &st.seed, slot, size);
        (d, bundle)
    })
    .await
    .map_err(|e| ApiError::internal(&e))?;
    let delivered =
        delivered.map_err(|e| ApiError::new(ErrorCode::InvalidBundle, format!("bundle: {e}")))?;

    // 7. Write once.
    let record = FragmentRecord {
        chain_id: req.chain_id,
        secret_id,
        ek_hash: delivered.ek_hash,
        commitments: delivered.commitments,
        fragment: delivered.fragment,
        bundle_signature: Some(bundle.signature),
    };
    match state.store.put_fragment(&record).await {
        Ok(outcome) => Ok(outcome),
        Err(StoreError::Conflict { .. }) => Err(ApiError::new(
            ErrorCode::Conflict,
            "a different fragment is already stored for this secret",
        )),
        Err(StoreError::InvalidFragment(_)) => {
            Err(ApiError::new(ErrorCode::InvalidBundle, "fragment does not verify"))
        }
        Err(e) => Err(ApiError::internal(&e)),
    }
}

// ---------------------------------------------------------------------------------------
// Release

async fn release(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut ctx = AuditCtx::default();
    let result = match parse_release(body, &mut ctx) {
        Ok((parsed, bb_signature)) => {
            release_checked(&state, parsed, Binding::Own(bb_signature), &mut ctx).await
        }
        Err(e) => Err(e),
    };
    match finish_release(&state, result, &ctx).await {
        Ok(reply) => fragment_reply(&reply),
        Err(e) => e.into_response(),
    }
}

/// Counts, logs and (for a refusal not yet recorded) audits one release's outcome.
async fn finish_release(
    state: &AppState,
    result: Result<Vec<u8>, ApiError>,
    ctx: &AuditCtx,
) -> Result<Vec<u8>, ApiError> {
    match result {
        Ok(reply) => {
            // The release record was made durable with the replay claim, in one commit,
            // before release_checked returned: it precedes the fragment leaving.
            state.metrics.release();
            // Debug, not info: one line per success is the audit log's job (every decision
            // is a hash-chained record there), and at hundreds per second the formatting and
            // the write cost as much as a signature check. Refusals stay at info.
            tracing::debug!(
                chain_id = ctx.chain_id,
                secret_id = %hex::encode(ctx.secret_id),
                signer = %hex::encode(ctx.actor),
                "fragment released"
            );
            Ok(reply)
        }
        Err(e) => {
            state.metrics.release_refused(e.code);
            tracing::info!(
                chain_id = ctx.chain_id,
                secret_id = %hex::encode(ctx.secret_id),
                signer = %hex::encode(ctx.actor),
                code = e.code.as_str(),
                "release refused"
            );
            if !ctx.audited {
                let _ =
                    audit(state, ctx.entry(AuditKind::Refusal, e.code.as_str().to_owned())).await;
            }
            Err(e)
        }
    }
}

/// A release request with its fields parsed (step 1 of the checks).
struct ParsedRelease {
    request: UserRequest,
    signature: Vec<u8>,
    bb_account: [u8; 20],
    response_key_bytes: Vec<u8>,
    response_key: EncapsulationKey,
}

impl ParsedRelease {
    /// Parses the request, its signature and the response key; `bb_account` is left for
    /// the caller to fill in (a batch names it once for all its items).
    fn parse(
        request: &RequestJson,
        signature: &str,
        response_key: &str,
        ctx: &mut AuditCtx,
    ) -> Result<Self, ApiError> {
        let request = request.parse().map_err(bad_field)?;
        ctx.chain_id = request.chain_id();
        ctx.secret_id = request.secret_id();
        ctx.actor = request.signer();
        let signature = hex_field("signature", signature, None, MAX_SIGNATURE)?;
        let response_key_bytes = hex_field(
            "blackBox.responseKey",
            response_key,
            Some(cifer_core::keys::EK_LEN),
            cifer_core::keys::EK_LEN,
        )?;
        let response_key = EncapsulationKey::from_bytes(&response_key_bytes).map_err(|_| {
            ApiError::bad_request("blackBox.responseKey: not a valid ML-KEM-768 encapsulation key")
        })?;
        Ok(Self { request, signature, bb_account: [0; 20], response_key_bytes, response_key })
    }

    /// What the black box signs for this request: [`release_key_digest`] over the digest
    /// the wallet signed (computed, not yet checked).
    fn binding(&self) -> [u8; 32] {
        release_key_digest(
            self.request.chain_id(),
            &self.request.secret_id(),
            &self.request.signing_digest(),
            &self.response_key_bytes,
        )
    }
}

/// How the black box bound its response key to the request (step 6).
#[derive(Clone, Copy)]
enum Binding {
    /// `POST /v1/release`: its signature over this request's [`release_key_digest`].
    Own([u8; 65]),
    /// `POST /v1/releases`: the signer recovered from the batch signature over
    /// [`cifer_custody::release_batch_digest`] (`None` if it did not recover), and the
    /// request digest that batch digest was computed from.
    Batch { signer: Option<[u8; 20]>, request_digest: [u8; 32] },
}

fn parse_release(
    body: Result<Bytes, BytesRejection>,
    ctx: &mut AuditCtx,
) -> Result<(ParsedRelease, [u8; 65]), ApiError> {
    // 1. Body size and JSON shape.
    let req: ReleaseBody = json_body(body)?;
    let mut parsed =
        ParsedRelease::parse(&req.request, &req.signature, &req.black_box.response_key, ctx)?;
    parsed.bb_account = address_field("blackBox.account", &req.black_box.account)?;
    let bb_signature = fixed::<65>("blackBox.signature", &req.black_box.signature)?;
    Ok((parsed, bb_signature))
}

async fn release_checked(
    state: &Arc<AppState>,
    parsed: ParsedRelease,
    binding: Binding,
    ctx: &mut AuditCtx,
) -> Result<Vec<u8>, ApiError> {
    let ParsedRelease { request, signature, bb_account, response_key_bytes, response_key } = parsed;
    let (chain_id, contract, secret_id, block) = (
        request.chain_id(),
        request.verifying_contract(),
        request.secret_id(),
        request.block_number(),
    );

    // 2. Chain served, and the request is for its SecretsController.
    let chain = state
        .chains
        .get(&chain_id)
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownChain, "chain not served by this node"))?;
    if let Some(contract) = contract
        && contract != chain.view.config().secrets_controller.0.0
    {
        return Err(ApiError::new(
            ErrorCode::UnknownChain,
            "request.verifyingContract is not this chain's SecretsController",
        ));
    }

    // 3. The user signature (EIP-1271 through the chain view for contract wallets).
    let Verified { signer, digest, pinned } =
        verify_user(&request, &signature, &chain.view).await.map_err(|e| match e {
            VerifyError::Chain(e) => chain_error(&e),
            other => ApiError::new(ErrorCode::BadSignature, other.to_string()),
        })?;
    ctx.digest = digest;

    // 4. Freshness against this node's head, which must be trusted.
    let at = match pinned {
        Some(at) => at,
        None => pin(chain)?,
    };
    let head = at.head().number;
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

    // 5. Authorization at the same head.
    let authorized = at
        .is_authorized(U256::from_be_bytes(secret_id), Address::from(signer))
        .await
        .map_err(|e| chain_error(&e))?;
    if !authorized {
        return Err(ApiError::new(
            ErrorCode::NotAuthorized,
            "the signer is not the owner or a current delegate of the secret",
        ));
    }

    // 6. The black box: registered, and its signer bound this response key to this request.
    let registered = at
        .black_box(Address::from(bb_account))
        .await
        .map_err(|e| chain_error(&e))?
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownBlackBox, "black box not registered"))?;
    let recovered = match binding {
        Binding::Own(bb_signature) => {
            let bound = release_key_digest(chain_id, &secret_id, &digest, &response_key_bytes);
            cifer_auth::ecdsa::Signature::from_bytes(&bb_signature)
                .and_then(|s| s.recover_address(&bound))
                .ok()
        }
        // The batch digest was computed from this request's digest: it must be the one the
        // wallet's signature was just checked over.
        Binding::Batch { signer, request_digest } => signer.filter(|_| request_digest == digest),
    };
    if recovered.is_none_or(|a| a.as_slice() != registered.signer.as_slice()) {
        return Err(ApiError::new(
            ErrorCode::UnknownBlackBox,
            "blackBox.signature is not the registered signer's over this request's response key",
        ));
    }

    // 7. The reply, prepared before the claim: reading and sealing have no side effect,
    // and the claim's transaction must not wait on them. Its error, if any, is reported
    // only after the claim, as the order of the checks requires.
    let prepared = prepare_reply(state, chain_id, secret_id, &response_key).await;

    // 8. Replay claim, per-signer rate limit and the outcome's audit record, in one
    // transaction with one durable commit. The claim is kept until the request would be
    // stale anyway; a claimed request that is then refused (rate limit, no fragment)
    // stays claimed, and its refusal record is the one written with the claim.
    let refusal = prepared.as_ref().err().map(|e| e.code);
    let (limiter_state, record_ctx) = (Arc::clone(state), ctx.clone());
    let claimed = state
        .store
        .claim_replay_and_append_audit(
            replay_key(&signer, &digest),
            block.saturating_add(chain.window),
            move || {
                let code = if limiter_state.limiter.allow(signer) {
                    refusal
                } else {
                    Some(ErrorCode::RateLimited)
                };
                match code {
                    None => record_ctx.entry(AuditKind::Release, "released".into()),
                    Some(code) => record_ctx.entry(AuditKind::Refusal, code.as_str().to_owned()),
                }
            },
        )
        .await;
    match claimed {
        Err(e) => Err(ApiError::internal(&e)),
        Ok(None) => Err(ApiError::new(ErrorCode::Replayed, "this request was already accepted")),
        Ok(Some(record)) => {
            ctx.audited = true;
            if record.entry.kind == AuditKind::Release {
                prepared
            } else if record.entry.code == ErrorCode::RateLimited.as_str() {
                Err(ApiError::new(ErrorCode::RateLimited, "too many requests from this signer"))
            } else {
                // The refusal recorded is the prepared reply's error.
                Err(prepared.err().unwrap_or_else(|| ApiError::internal(&"refusal without error")))
            }
        }
    }
}

/// `POST /v1/releases`. The batch as a whole must be well formed (else one refusal for
/// it, `bad_request`, and one audit record); then every item goes through the same checks
/// as `POST /v1/release`, concurrently (their claims share group commits), with the black
/// box's signature recovered once for all of them, and gets its own answer and its own
/// audit record. The answer is `{"results":[…]}`, one per item in order: `{"status":200,
/// "fragment":"0x…"}` or `{"status":<the single route's status>,"error":{"code","message"}}`.
async fn release_batch(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let items = match parse_batch(body) {
        Ok(items) => items,
        Err(e) => {
            state.metrics.release_refused(e.code);
            tracing::info!(code = e.code.as_str(), "release batch refused");
            let entry =
                AuditCtx::default().entry(AuditKind::Refusal, format!("batch:{}", e.code.as_str()));
            let _ = audit(&state, entry).await;
            return e.into_response();
        }
    };
    let results =
        futures_util::future::join_all(items.into_iter().map(|(parsed, binding, mut ctx)| {
            let state = &state;
            async move {
                let result = release_checked(state, parsed, binding, &mut ctx).await;
                finish_release(state, result, &ctx).await
            }
        }))
        .await;
    batch_reply(&results)
}

/// Step 1 for a batch: every item parsed, every binding computed, the black box's one
/// signature recovered. Items come back with their own audit context.
fn parse_batch(
    body: Result<Bytes, BytesRejection>,
) -> Result<Vec<(ParsedRelease, Binding, AuditCtx)>, ApiError> {
    let batch: BatchBody = json_body(body)?;
    if batch.items.is_empty() || batch.items.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!("items: expected 1 to {MAX_BATCH} requests")));
    }
    let bb_account = address_field("blackBox.account", &batch.black_box.account)?;
    let bb_signature = fixed::<65>("blackBox.signature", &batch.black_box.signature)?;
    let mut parsed = Vec::with_capacity(batch.items.len());
    for (i, item) in batch.items.iter().enumerate() {
        let mut item_ctx = AuditCtx::default();
        let mut p =
            ParsedRelease::parse(&item.request, &item.signature, &item.response_key, &mut item_ctx)
                .map_err(|e| ApiError::new(e.code, format!("items[{i}]: {}", e.message)))?;
        p.bb_account = bb_account;
        parsed.push((p, item_ctx));
    }
    let bounds: Vec<[u8; 32]> = parsed.iter().map(|(p, _)| p.binding()).collect();
    let batch_digest = cifer_custody::release_batch_digest(&bounds);
    let signer = cifer_auth::ecdsa::Signature::from_bytes(&bb_signature)
        .and_then(|s| s.recover_address(&batch_digest))
        .ok();
    Ok(parsed
        .into_iter()
        .map(|(p, ctx)| {
            let request_digest = p.request.signing_digest();
            (p, Binding::Batch { signer, request_digest }, ctx)
        })
        .collect())
}

/// `{"results":[…]}`, written directly like [`fragment_reply`].
fn batch_reply(results: &[Result<Vec<u8>, ApiError>]) -> Response {
    let mut body = String::with_capacity(16 + results.len() * 3_300);
    body.push_str("{\"results\":[");
    for (i, r) in results.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        match r {
            Ok(sealed) => {
                body.push_str("{\"status\":200,\"fragment\":\"");
                body.push_str(&wire::hex0x(sealed));
                body.push_str("\"}");
            }
            Err(e) => {
                let item = serde_json::json!({
                    "status": e.code.status().as_u16(),
                    "error": { "code": e.code.as_str(), "message": e.message },
                });
                body.push_str(&item.to_string());
            }
        }
    }
    body.push_str("]}");
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The release's answer, `{"fragment":"0x<hex>"}`, written directly: hex digits need no
/// JSON escaping, and going through a `serde_json::Value` cost a copy and an escape scan of
/// the ~3.2 KB string on every release.
fn fragment_reply(sealed: &[u8]) -> Response {
    let body = format!("{{\"fragment\":\"{}\"}}", wire::hex0x(sealed));
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Step 7: the stored fragment, sealed to the black box's response key.
async fn prepare_reply(
    state: &AppState,
    chain_id: u64,
    secret_id: [u8; 32],
    response_key: &EncapsulationKey,
) -> Result<Vec<u8>, ApiError> {
    let stored = state
        .store
        .get_fragment(chain_id, secret_id)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(|| {
            ApiError::new(ErrorCode::NoFragment, "no fragment stored for this secret")
        })?;
    let bundle_signature = stored
        .bundle_signature
        .ok_or_else(|| ApiError::internal(&"stored fragment has no bundle signature"))?;
    seal_release(
        chain_id,
        secret_id,
        &stored.fragment,
        &stored.commitments,
        &bundle_signature,
        response_key,
    )
    .map_err(|e| ApiError::internal(&e))
}

// ---------------------------------------------------------------------------------------
// Health, metrics, OpenAPI

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let store_ok = matches!(
        tokio::time::timeout(Duration::from_secs(3), state.store.ping()).await,
        Ok(Ok(()))
    );
    let mut chains: Vec<serde_json::Value> = state
        .chains
        .iter()
        .map(|(id, c)| match c.view.health() {
            Health::Healthy(head) => serde_json::json!({
                "chainId": id, "healthy": true, "head": head.number,
                "headHash": head.hash.to_string(),
            }),
            Health::Unavailable(reason) => serde_json::json!({
                "chainId": id, "healthy": false, "reason": reason.to_string(),
            }),
        })
        .collect();
    chains.sort_by_key(|c| c["chainId"].as_u64());
    let all_chains = chains.iter().all(|c| c["healthy"] == true);
    let ok = store_ok && all_chains;
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "degraded" },
        "store": if store_ok { "ok" } else { "unavailable" },
        "nodeId": state.node_id,
        "chains": chains,
    });
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut gauges: Vec<ChainGauge> = state
        .chains
        .iter()
        .map(|(id, c)| {
            let head = c.view.health().head().ok().map(|h| h.number);
            ChainGauge {
                chain_id: *id,
                healthy: head.is_some(),
                head,
                queries: c.view.query_stats(),
            }
        })
        .collect();
    gauges.sort_by_key(|g| g.chain_id);
    let fragments = tokio::time::timeout(Duration::from_secs(3), state.store.count_fragments())
        .await
        .ok()
        .and_then(Result::ok);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(&gauges, fragments),
    )
        .into_response()
}

async fn identity(State(state): State<Arc<AppState>>) -> Response {
    let ek = state.seed.encapsulation_key();
    Json(serde_json::json!({
        "nodeId": state.node_id,
        "encapsulationKey": wire::hex0x(ek.as_bytes()),
        "publicKeyHash": wire::hex0x(&state.ek_hash),
    }))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[tokio::test]
    async fn fragment_reply_is_the_json_the_black_box_reads() {
        let sealed: Vec<u8> = (0..=255u8).cycle().take(1_601).collect();
        let response = fragment_reply(&sealed);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({ "fragment": format!("0x{}", hex::encode(&sealed)) })
        );
        assert_eq!(body.len(), 17 + 2 * sealed.len(), "nothing but the one field");
    }
}
