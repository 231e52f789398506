//! Prometheus counters of the black box.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::ErrorCode;

/// Counters, all monotonic.
#[derive(Debug)]
pub struct Metrics {
    decrypts: AtomicU64,
    cache_hits: AtomicU64,
    creates: AtomicU64,
    refusals: Vec<AtomicU64>,
    /// `node id → (invalid answers, missing answers)`.
    nodes: Mutex<BTreeMap<u32, (u64, u64)>>,
    latency_us_sum: AtomicU64,
    release_batches: AtomicU64,
    release_items: AtomicU64,
    release_withdrawn: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            decrypts: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            creates: AtomicU64::new(0),
            refusals: ErrorCode::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            nodes: Mutex::new(BTreeMap::new()),
            latency_us_sum: AtomicU64::new(0),
            release_batches: AtomicU64::new(0),
            release_items: AtomicU64::new(0),
            release_withdrawn: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// A key (or plaintext) went to a requester after `micros` of work.
    pub fn decrypted(&self, cached: bool, micros: u64) {
        self.decrypts.fetch_add(1, Ordering::Relaxed);
        self.latency_us_sum.fetch_add(micros, Ordering::Relaxed);
        if cached {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A creation bundle was made.
    pub fn created(&self) {
        self.creates.fetch_add(1, Ordering::Relaxed);
    }

    /// A request was refused with `code`.
    pub fn refused(&self, code: ErrorCode) {
        if let Some(c) = self.refusals.get(code.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `liars` answered with something invalid, `missing` did not answer usefully.
    pub fn node_failures(&self, liars: &[u32], missing: &[u32]) {
        let mut nodes = self.nodes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for id in liars {
            nodes.entry(*id).or_default().0 += 1;
        }
        for id in missing {
            nodes.entry(*id).or_default().1 += 1;
        }
    }

    /// A node queue sent a batch of `sent` release items (none if 0) and withdrew
    /// `withdrawn` that nobody waited for any more.
    pub fn release_batch(&self, sent: usize, withdrawn: usize) {
        if sent > 0 {
            self.release_batches.fetch_add(1, Ordering::Relaxed);
            self.release_items.fetch_add(sent as u64, Ordering::Relaxed);
        }
        self.release_withdrawn.fetch_add(withdrawn as u64, Ordering::Relaxed);
    }

    /// The Prometheus text exposition; `cached_keys` is the key cache's size.
    #[must_use]
    pub fn render(&self, cached_keys: usize) -> String {
        let mut out = String::new();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(out, "# TYPE cifer_bb_decryptions_total counter");
        let _ = writeln!(out, "cifer_bb_decryptions_total {}", load(&self.decrypts));
        let _ = writeln!(out, "# TYPE cifer_bb_cache_hits_total counter");
        let _ = writeln!(out, "cifer_bb_cache_hits_total {}", load(&self.cache_hits));
        let _ = writeln!(out, "# TYPE cifer_bb_decryption_seconds_sum counter");
        #[allow(clippy::cast_precision_loss, reason = "a metric")]
        let seconds = load(&self.latency_us_sum) as f64 / 1e6;
        let _ = writeln!(out, "cifer_bb_decryption_seconds_sum {seconds}");
        let _ = writeln!(out, "# TYPE cifer_bb_creations_total counter");
        let _ = writeln!(out, "cifer_bb_creations_total {}", load(&self.creates));
        let _ = writeln!(out, "# TYPE cifer_bb_refusals_total counter");
        for (code, c) in ErrorCode::ALL.iter().zip(&self.refusals) {
            let _ =
                writeln!(out, "cifer_bb_refusals_total{{code=\"{}\"}} {}", code.as_str(), load(c));
        }
        let _ = writeln!(out, "# TYPE cifer_bb_node_invalid_total counter");
        let _ = writeln!(out, "# TYPE cifer_bb_node_missing_total counter");
        let nodes = self.nodes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (id, (bad, missing)) in nodes.iter() {
            let _ = writeln!(out, "cifer_bb_node_invalid_total{{node=\"{id}\"}} {bad}");
            let _ = writeln!(out, "cifer_bb_node_missing_total{{node=\"{id}\"}} {missing}");
        }
        let _ = writeln!(out, "# TYPE cifer_bb_release_batches_total counter");
        let _ = writeln!(out, "cifer_bb_release_batches_total {}", load(&self.release_batches));
        let _ = writeln!(out, "# TYPE cifer_bb_release_items_total counter");
        let _ = writeln!(out, "cifer_bb_release_items_total {}", load(&self.release_items));
        let _ = writeln!(out, "# TYPE cifer_bb_release_items_withdrawn_total counter");
        let _ = writeln!(
            out,
            "cifer_bb_release_items_withdrawn_total {}",
            load(&self.release_withdrawn)
        );
        let _ = writeln!(out, "# TYPE cifer_bb_cached_keys gauge");
        let _ = writeln!(out, "cifer_bb_cached_keys {cached_keys}");
        out
    }
}
