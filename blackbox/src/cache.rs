//! The key cache policy (issue 5): rebuilt seeds kept in memory for a configured time so
//! that repeated decryptions of one secret skip the cluster.
//!
//! - **Off by default** (`key_cache_ttl_secs = 0`): every decryption gathers fragments.
//! - **In memory only**, as [`Seed`] (zeroized on drop and on eviction); never written.
//! - **Wiped at once** when the chain shows a revocation, an ownership transfer or a shred
//!   touching the secret (the event watcher calls [`KeyCache::evict`]), and wholesale
//!   if the event stream lags ([`KeyCache::clear`]): on doubt, forget.
//! - A hit changes nothing else: the request is checked in full (signature, freshness,
//!   authorization at the head, replay, rate limit) and audited before the cache is asked.
//!
//! The trade-off, stated in `docs/services.md`: while cached, the key lives in one process
//! rather than only as fragments on five nodes, and nodes do not see (or audit) the
//! decryptions the cache serves.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cifer_core::Seed;

/// `(chain id, secret id)`.
pub type SecretKey = (u64, [u8; 32]);

struct Entry {
    seed: Seed,
    ek_hash: [u8; 32],
    expires: Instant,
}

/// The cache; `ttl = None` makes every call a no-op.
pub struct KeyCache {
    ttl: Option<Duration>,
    entries: Mutex<HashMap<SecretKey, Entry>>,
}

impl core::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyCache").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl KeyCache {
    /// A cache keeping seeds for `ttl`, or none at all.
    #[must_use]
    pub fn new(ttl: Option<Duration>) -> Self {
        Self { ttl, entries: Mutex::new(HashMap::new()) }
    }

    /// Whether caching is on.
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.ttl.is_some()
    }

    /// The cached seed of `key` if present, unexpired, and for the key hash registered now.
    #[must_use]
    pub fn get(&self, key: &SecretKey, ek_hash: &[u8; 32]) -> Option<Seed> {
        self.ttl?;
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let fresh =
            entries.get(key).is_some_and(|e| e.expires > Instant::now() && &e.ek_hash == ek_hash);
        if fresh {
            entries.get(key).map(|e| e.seed.clone())
        } else {
            entries.remove(key);
            None
        }
    }

    /// Keeps `seed` for `key` until the TTL passes (no-op when off).
    pub fn insert(&self, key: SecretKey, seed: &Seed, ek_hash: [u8; 32]) {
        let Some(ttl) = self.ttl else { return };
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        entries.retain(|_, e| e.expires > now);
        entries.insert(key, Entry { seed: seed.clone(), ek_hash, expires: now + ttl });
    }

    /// Forgets `key` (revocation, transfer, shred); `true` if it was cached.
    pub fn evict(&self, key: &SecretKey) -> bool {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key).is_some()
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }

    /// Entries held (expired ones included until the next insert).
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    /// Whether nothing is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn off_by_default_ttl_hash_and_eviction() {
        let seed = Seed::generate_os().unwrap();
        let h = seed.encapsulation_key().keccak256();
        let off = KeyCache::new(None);
        off.insert((1, [1; 32]), &seed, h);
        assert!(off.get(&(1, [1; 32]), &h).is_none() && off.is_empty());

        let on = KeyCache::new(Some(Duration::from_secs(60)));
        on.insert((1, [1; 32]), &seed, h);
        assert!(on.get(&(1, [1; 32]), &h).is_some());
        assert!(on.get(&(2, [1; 32]), &h).is_none(), "other chain");
        assert!(on.get(&(1, [1; 32]), &[0; 32]).is_none(), "another registered key: dropped");
        assert!(on.is_empty());
        on.insert((1, [1; 32]), &seed, h);
        assert!(on.evict(&(1, [1; 32])) && on.get(&(1, [1; 32]), &h).is_none());

        let short = KeyCache::new(Some(Duration::from_millis(1)));
        short.insert((1, [1; 32]), &seed, h);
        std::thread::sleep(Duration::from_millis(5));
        assert!(short.get(&(1, [1; 32]), &h).is_none(), "expired");
    }
}
