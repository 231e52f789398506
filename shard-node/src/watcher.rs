//! Background work: deleting fragments on `SecretShredded`, pruning the replay set.
//!
//! Each chain's watcher owns its event subscription; every event is handled in its own
//! task, so a panic while handling one is caught, logged, counted and retried, and the
//! subscription survives. If a watcher ends anyway, [`crate::server::run`] stops the node
//! with an error instead of running on without shred handling.

use std::sync::Arc;
use std::time::Duration;

use cifer_chain::{ChainEvent, ChainEventKind};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;

use crate::api::AppState;
use cifer_store::{AuditEntry, AuditKind};

/// Attempts at handling one event before it is given up (logged as an error).
const ATTEMPTS: u32 = 5;

/// Follows `events` of `chain_id` until the view's sender is gone.
pub async fn watch_events(state: Arc<AppState>, chain_id: u64, mut events: Receiver<ChainEvent>) {
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(missed)) => {
                state.metrics.watcher_failure();
                tracing::error!(
                    chain_id,
                    missed,
                    "event subscription lagged: shred events may have been missed; \
                     releases of shredded secrets are still refused (isAuthorized), but their \
                     fragments stay until the node restarts and rescans"
                );
                continue;
            }
            Err(RecvError::Closed) => {
                tracing::error!(chain_id, "event subscription closed");
                return;
            }
        };
        let ChainEventKind::SecretShredded { secret_id, .. } = event.kind else { continue };
        let secret_id = secret_id.to_be_bytes::<32>();
        for attempt in 1..=ATTEMPTS {
            let st = Arc::clone(&state);
            match tokio::spawn(shred(st, chain_id, secret_id)).await {
                Ok(Ok(())) => break,
                Ok(Err(e)) => {
                    state.metrics.watcher_failure();
                    tracing::error!(chain_id, secret_id = %hex::encode(secret_id), attempt, error = %e, "cannot delete a shredded fragment");
                }
                Err(e) => {
                    state.metrics.watcher_failure();
                    tracing::error!(chain_id, secret_id = %hex::encode(secret_id), attempt, error = %e, "shred handler panicked");
                }
            }
            tokio::time::sleep(Duration::from_millis(200) * attempt).await;
        }
    }
}

async fn shred(
    state: Arc<AppState>,
    chain_id: u64,
    secret_id: [u8; 32],
) -> Result<(), cifer_store::StoreError> {
    if state.store.delete_fragment(chain_id, secret_id).await? {
        state.metrics.shredded();
        tracing::info!(chain_id, secret_id = %hex::encode(secret_id), "fragment deleted (secret shredded)");
        state
            .store
            .append_audit(AuditEntry {
                kind: AuditKind::Delete,
                chain_id,
                secret_id,
                actor: [0; 20],
                digest: [0; 32],
                code: "shredded".into(),
            })
            .await?;
    }
    Ok(())
}

/// Every `every`, forgets replay keys that expire below the lowest trusted head of all
/// served chains (the keys are not per chain; a key below every head is stale on its own
/// chain). Skips a round while any chain is unavailable.
pub async fn prune_replays(state: Arc<AppState>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let heads: Option<Vec<u64>> =
            state.chains.values().map(|c| c.view.head().ok().map(|h| h.number)).collect();
        let Some(low) = heads.and_then(|h| h.into_iter().min()) else { continue };
        match state.store.prune_replays(low).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(pruned = n, below = low, "replay keys pruned"),
            Err(e) => tracing::warn!(error = %e, "cannot prune replay keys"),
        }
    }
}
