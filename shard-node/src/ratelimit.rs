//! Per-signer token buckets, in memory (one node process; the replay set, not this, is
//! what must hold across processes).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::config::RateLimit;

/// Buckets kept before full ones are forgotten.
const PRUNE_AT: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A token bucket per key: `burst` tokens, refilled at `per_second`.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<[u8; 20], Bucket>>,
}

impl RateLimiter {
    /// A limiter with `limit` per key.
    #[must_use]
    pub fn new(limit: RateLimit) -> Self {
        Self { limit, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `key` at `now`; `false` if its bucket is empty.
    pub fn allow_at(&self, key: [u8; 20], now: Instant) -> bool {
        let burst = f64::from(self.limit.burst);
        let rate = self.limit.per_second;
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= PRUNE_AT {
            // Forget buckets that have refilled: they are indistinguishable from new ones.
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(key).or_insert(Bucket { tokens: burst, at: now });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// [`allow_at`](Self::allow_at) now.
    pub fn allow(&self, key: [u8; 20]) -> bool {
        self.allow_at(key, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn bucket_drains_and_refills() {
        let l = RateLimiter::new(RateLimit { burst: 3, per_second: 2.0 });
        let t0 = Instant::now();
        let a = [1u8; 20];
        assert!(l.allow_at(a, t0) && l.allow_at(a, t0) && l.allow_at(a, t0));
        assert!(!l.allow_at(a, t0));
        // Another signer has its own bucket.
        assert!(l.allow_at([2u8; 20], t0));
        // Half a second refills one token.
        assert!(l.allow_at(a, t0 + Duration::from_millis(500)));
        assert!(!l.allow_at(a, t0 + Duration::from_millis(500)));
        // Never above the burst.
        let later = t0 + Duration::from_secs(100);
        assert!(l.allow_at(a, later) && l.allow_at(a, later) && l.allow_at(a, later));
        assert!(!l.allow_at(a, later));
    }
}
