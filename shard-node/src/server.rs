//! Starting and stopping the node: keys, store, chain views, watchers, HTTP server.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use cifer_chain::ChainView;
use tokio::task::JoinSet;

use crate::api::{AppState, Chain, router};
use crate::config::{Config, redact_url};
use crate::identity;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use cifer_store::{SealingKey, Store};

/// Why the node could not start or stopped with an error. Holds no secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The sealing key or the store.
    #[error(transparent)]
    Store(#[from] cifer_store::StoreError),
    /// The identity file.
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    /// A chain view could not start.
    #[error("chain {chain_id}: {source}")]
    Chain {
        /// The chain.
        chain_id: u64,
        /// The cause.
        #[source]
        source: cifer_chain::ChainError,
    },
    /// Binding or serving HTTP.
    #[error("http server: {0}")]
    Io(#[from] std::io::Error),
    /// A background task ended; the node stops rather than run without it.
    #[error("background task ended: {0}")]
    Background(String),
}

/// Runs the node until `shutdown` resolves (then drains in-flight requests) or a
/// background task fails.
///
/// # Errors
/// [`RunError`].
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let key = SealingKey::load(&config.sealing_key)?;
    let seed = identity::load(&config.identity)?;
    let ek_hash = cifer_core::keccak256(seed.encapsulation_key().as_bytes());
    let store = Store::open(&config.database_url, key).await?;
    tracing::info!(
        database = %redact_url(&config.database_url),
        node_id = config.node_id,
        public_key_hash = %format!("0x{}", hex::encode(ek_hash)),
        "store open"
    );

    let mut chains = HashMap::new();
    let mut subscriptions = Vec::new();
    for settings in &config.chains {
        let chain_id = settings.view.chain_id;
        let view = ChainView::start(settings.view.clone())
            .await
            .map_err(|source| RunError::Chain { chain_id, source })?;
        // Subscribe before the first poll delivers events: the first subscriber misses
        // nothing from the deployment block on, so shreds during downtime are replayed.
        subscriptions.push((chain_id, view.subscribe()));
        tracing::info!(chain_id, health = ?view.health(), "chain view started");
        chains.insert(chain_id, Chain { view, window: settings.freshness_window });
    }

    let state = Arc::new(AppState {
        store: store.clone(),
        seed,
        ek_hash,
        node_id: config.node_id,
        chains,
        limiter: RateLimiter::new(config.rate_limit),
        metrics: Metrics::default(),
    });

    let mut background = JoinSet::new();
    for (chain_id, events) in subscriptions {
        background.spawn(crate::watcher::watch_events(Arc::clone(&state), chain_id, events));
    }
    background.spawn(crate::watcher::prune_replays(Arc::clone(&state), config.prune_interval));

    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, "listening");
    let app = cifer_service::http::with_limits(
        router(Arc::clone(&state), config.max_body_bytes),
        config.limits,
    );
    let server = axum::serve(listener, app).with_graceful_shutdown(shutdown);

    let result = tokio::select! {
        served = server => served.map_err(RunError::Io),
        ended = background.join_next() => {
            let why = match ended {
                Some(Err(e)) if e.is_panic() => "a background task panicked".to_owned(),
                Some(Err(e)) => format!("a background task failed: {e}"),
                Some(Ok(())) | None => "a background task returned".to_owned(),
            };
            tracing::error!(reason = %why, "stopping the node");
            Err(RunError::Background(why))
        }
    };
    background.abort_all();
    store.close().await;
    tracing::info!("stopped");
    result
}
