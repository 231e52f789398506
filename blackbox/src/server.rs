//! Starting and stopping the black box: signer, store, chain views, event watchers, HTTP.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use cifer_chain::{ChainEvent, ChainEventKind, ChainView};
use cifer_core::CommitmentsCache;
use cifer_core::fragment::VerificationMemo;
use cifer_store::{SealingKey, Store};
use k256::ecdsa::SigningKey;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinSet;

use crate::api::{AppState, Chain, Settings, router};
use crate::cache::KeyCache;
use crate::config::{Config, redact_url};
use crate::metrics::Metrics;
use crate::nodes::Nodes;

/// Entries of the verification memo (32-byte digests; five per hot secret and cluster).
const MEMO_CAPACITY: usize = 1 << 16;
/// Decoded commitment sets kept (one per hot secret; about 1.5 KiB each when decoded).
const COMMITMENTS_CAPACITY: usize = 1 << 12;

/// Prefix of the signer key file.
pub const SIGNER_KEY_PREFIX: &str = "CIFER-SECP256K1-KEY-1:";

/// Why the black box could not start or stopped. Holds no secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The store.
    #[error(transparent)]
    Store(#[from] cifer_store::StoreError),
    /// The signer key file.
    #[error(transparent)]
    Key(#[from] cifer_service::keyfile::KeyFileError),
    /// The signer key is not a valid secp256k1 scalar.
    #[error("the signer key is not a valid secp256k1 key")]
    BadKey,
    /// A chain view could not start.
    #[error("chain {chain_id}: {source}")]
    Chain {
        /// The chain.
        chain_id: u64,
        /// The cause.
        #[source]
        source: cifer_chain::ChainError,
    },
    /// The HTTP client or server.
    #[error("http: {0}")]
    Http(String),
    /// A background task ended.
    #[error("background task ended: {0}")]
    Background(String),
}

/// Loads the signer key file.
///
/// # Errors
/// [`RunError::Key`], [`RunError::BadKey`].
pub fn load_signer(path: &std::path::Path) -> Result<SigningKey, RunError> {
    let bytes = cifer_service::keyfile::read::<32>(path, SIGNER_KEY_PREFIX)?;
    SigningKey::from_slice(&bytes[..]).map_err(|_| RunError::BadKey)
}

/// The Ethereum address of `key`.
#[must_use]
pub fn address_of(key: &SigningKey) -> [u8; 20] {
    let point = key.verifying_key().to_sec1_point(false);
    cifer_auth::ecdsa::address_from_public_key(point.as_bytes()).unwrap_or([0; 20])
}

/// Runs the black box until `shutdown` resolves (then drains in-flight requests) or a
/// background task fails.
///
/// # Errors
/// [`RunError`].
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let signer = load_signer(&config.signer_key)?;
    let signer_address = address_of(&signer);
    // The black box stores no fragment; the store's sealing key is unused and ephemeral.
    let mut ephemeral = [0u8; 32];
    getrandom::fill(&mut ephemeral).map_err(|_| RunError::BadKey)?;
    let store = Store::open(&config.database_url, SealingKey::from_bytes(ephemeral)).await?;
    tracing::info!(
        database = %redact_url(&config.database_url),
        account = %config.account,
        signer = %format!("0x{}", hex::encode(signer_address)),
        "store open"
    );
    let mut chains = HashMap::new();
    let mut subscriptions = Vec::new();
    for settings in &config.chains {
        let chain_id = settings.view.chain_id;
        let view = ChainView::start(settings.view.clone())
            .await
            .map_err(|source| RunError::Chain { chain_id, source })?;
        subscriptions.push((chain_id, view.subscribe()));
        chains.insert(chain_id, Chain { view, window: settings.freshness_window });
    }
    let state = Arc::new(AppState {
        store: store.clone(),
        signer,
        signer_address,
        account: config.account,
        chains,
        nodes: Nodes::new(config.node_timeout).map_err(|e| RunError::Http(e.to_string()))?,
        releases: crate::release::Releases::default(),
        cache: KeyCache::new(config.key_cache_ttl),
        memo: VerificationMemo::new(&mut cifer_core::os_rng(), MEMO_CAPACITY),
        commitments: Arc::new(CommitmentsCache::new(COMMITMENTS_CAPACITY)),
        public_keys: RwLock::new(HashMap::new()),
        metrics: Metrics::default(),
        settings: Settings {
            gather_deadline: config.gather_deadline,
            rate_limit: config.rate_limit,
            thin_mode: config.thin_mode,
            thin_max_bytes: config.thin_max_bytes,
            trusted_black_boxes: config.trusted_black_boxes.clone(),
        },
    });
    let mut background = JoinSet::new();
    for (chain_id, events) in subscriptions {
        background.spawn(watch_events(Arc::clone(&state), chain_id, events));
    }
    background.spawn(prune(Arc::clone(&state), config.prune_interval));

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| RunError::Http(e.to_string()))?;
    tracing::info!(listen = %config.listen, "listening");
    let app = cifer_service::http::with_limits(
        router(Arc::clone(&state), config.max_body_bytes),
        config.limits,
    );
    let server = axum::serve(listener, app).with_graceful_shutdown(shutdown);
    let result = tokio::select! {
        served = server => served.map_err(|e| RunError::Http(e.to_string())),
        ended = background.join_next() => {
            let why = match ended {
                Some(Err(e)) if e.is_panic() => "a background task panicked".to_owned(),
                Some(Err(e)) => format!("a background task failed: {e}"),
                Some(Ok(())) | None => "a background task returned".to_owned(),
            };
            tracing::error!(reason = %why, "stopping");
            Err(RunError::Background(why))
        }
    };
    background.abort_all();
    state.cache.clear();
    store.close().await;
    tracing::info!("stopped");
    result
}

/// Indexes public keys, and wipes cached keys on revocation, transfer and shred.
async fn watch_events(state: Arc<AppState>, chain_id: u64, mut events: Receiver<ChainEvent>) {
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(missed)) => {
                state.cache.clear();
                tracing::error!(chain_id, missed, "event subscription lagged: key cache wiped");
                continue;
            }
            Err(RecvError::Closed) => {
                tracing::error!(chain_id, "event subscription closed");
                return;
            }
        };
        let touched = match event.kind {
            ChainEventKind::SecretCreated { secret_id, public_key, .. } => {
                state
                    .public_keys
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert((chain_id, secret_id.to_be_bytes::<32>()), public_key.to_vec());
                None
            }
            ChainEventKind::DelegateRevoked { secret_id, .. }
            | ChainEventKind::SecretOwnershipTransferred { secret_id, .. }
            | ChainEventKind::SecretShredded { secret_id, .. } => Some(secret_id),
            _ => None,
        };
        if let Some(id) = touched
            && state.cache.evict(&(chain_id, id.to_be_bytes::<32>()))
        {
            tracing::info!(chain_id, secret_id = %id, "cached key wiped after an on-chain change");
        }
    }
}

/// Forgets replay keys past every chain's window and old rate counters.
async fn prune(state: Arc<AppState>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let lowest = state
            .chains
            .values()
            .filter_map(|c| c.view.head().ok().map(|h| h.number.saturating_sub(c.window)))
            .min();
        if let Some(below) = lowest
            && let Err(e) = state.store.prune_replays(below).await
        {
            tracing::warn!(error = %e, "cannot prune replay keys");
        }
        let keep = state.settings.rate_limit.window_ms.saturating_mul(2);
        if let Err(e) = state.store.prune_rate_counters(keep).await {
            tracing::warn!(error = %e, "cannot prune rate counters");
        }
    }
}
