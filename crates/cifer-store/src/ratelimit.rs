//! Shared rate counters: fixed windows per subject, counted in the database so that every
//! process on it (black-box replicas behind a load balancer) enforces one limit.

use super::error::Result;
use super::{Store, now_ms};

/// Counts one request of `$1` in the window starting at `$2`; returns the new count.
pub(crate) const COUNT_SQL: &str = "INSERT INTO rate_counters (subject, window_start, count) VALUES ($1, $2, 1) \
     ON CONFLICT (subject, window_start) DO UPDATE SET count = rate_counters.count + 1 \
     RETURNING count";

impl Store {
    /// Counts one request by `subject` in the current window of `window_ms` milliseconds
    /// and returns whether it is within `limit` (the first `limit` requests of a window
    /// are allowed, every later one is refused). Counting is one atomic upsert, so
    /// concurrent callers in any number of processes never exceed the limit together.
    ///
    /// # Errors
    /// [`StoreError::Database`](super::StoreError::Database).
    pub async fn count_request(
        &self,
        subject: [u8; 20],
        window_ms: u64,
        limit: u32,
    ) -> Result<bool> {
        let width = i64::try_from(window_ms.max(1)).unwrap_or(i64::MAX);
        let window_start = now_ms() / width * width;
        let count: i64 = dispatch!(&self.backend, pool => sqlx::query_scalar(COUNT_SQL)
        .bind(subject.as_slice())
        .bind(window_start)
        .fetch_one(pool)
        .await?);
        Ok(count <= i64::from(limit))
    }

    /// Forgets counters of windows that started more than `older_than_ms` ago; returns
    /// how many rows went.
    ///
    /// # Errors
    /// [`StoreError::Database`](super::StoreError::Database).
    pub async fn prune_rate_counters(&self, older_than_ms: u64) -> Result<u64> {
        let cutoff = now_ms().saturating_sub(i64::try_from(older_than_ms).unwrap_or(i64::MAX));
        let pruned = dispatch!(&self.backend, pool => sqlx::query(
            "DELETE FROM rate_counters WHERE window_start < $1",
        )
        .bind(cutoff)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(pruned)
    }
}
