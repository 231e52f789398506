//! The replay set: keys of accepted requests (PROTOCOL.md §4.3 check 5), kept until the
//! freshness window has passed.

use super::error::Result;
use super::{Store, to_i64};

impl Store {
    /// Records `key` (from `cifer-auth`: signer and signed digest, never signature
    /// bytes) until `expires_at_block`. Returns `true` only for the first claim of a key:
    /// concurrent claims of the same key, from any number of tasks or processes, see
    /// exactly one `true`. The claim is durable when this returns.
    ///
    /// # Errors
    /// [`StoreError::OutOfRange`](super::StoreError::OutOfRange),
    /// [`StoreError::Database`](super::StoreError::Database).
    pub async fn claim_replay(&self, key: [u8; 32], expires_at_block: u64) -> Result<bool> {
        let expires = to_i64("expires_at_block", expires_at_block)?;
        let inserted = dispatch!(&self.backend, pool => sqlx::query(
            "INSERT INTO replays (replay_key, expires_at_block) VALUES ($1, $2) \
             ON CONFLICT (replay_key) DO NOTHING",
        )
        .bind(key.as_slice())
        .bind(expires)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(inserted == 1)
    }

    /// Forgets replay keys that expire below `below_block`; returns how many. Call it
    /// with `head - W` once requests older than that are refused as stale anyway.
    ///
    /// # Errors
    /// [`StoreError::OutOfRange`](super::StoreError::OutOfRange),
    /// [`StoreError::Database`](super::StoreError::Database).
    pub async fn prune_replays(&self, below_block: u64) -> Result<u64> {
        let below = to_i64("below_block", below_block)?;
        let pruned = dispatch!(&self.backend, pool => sqlx::query(
            "DELETE FROM replays WHERE expires_at_block < $1",
        )
        .bind(below)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(pruned)
    }
}
