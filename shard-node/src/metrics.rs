//! Prometheus counters, hand-rolled over atomics (`GET /metrics`, text format 0.0.4).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::ErrorCode;

/// The node's counters. Every method is lock-free.
#[derive(Debug)]
pub struct Metrics {
    releases: AtomicU64,
    release_refusals: [AtomicU64; ErrorCode::ALL.len()],
    deliveries_stored: AtomicU64,
    deliveries_already_stored: AtomicU64,
    delivery_refusals: [AtomicU64; ErrorCode::ALL.len()],
    shredded: AtomicU64,
    watcher_failures: AtomicU64,
    audit_failures: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            releases: AtomicU64::new(0),
            release_refusals: std::array::from_fn(|_| AtomicU64::new(0)),
            deliveries_stored: AtomicU64::new(0),
            deliveries_already_stored: AtomicU64::new(0),
            delivery_refusals: std::array::from_fn(|_| AtomicU64::new(0)),
            shredded: AtomicU64::new(0),
            watcher_failures: AtomicU64::new(0),
            audit_failures: AtomicU64::new(0),
        }
    }
}

/// One chain's health, for the gauges.
#[derive(Debug, Clone, Copy)]
pub struct ChainGauge {
    /// The chain.
    pub chain_id: u64,
    /// Whether the view has a trusted head.
    pub healthy: bool,
    /// The trusted head, if any.
    pub head: Option<u64>,
    /// How its contract queries were answered (RPC or per-head cache).
    pub queries: cifer_chain::QueryStats,
}

impl Metrics {
    /// A fragment was released.
    pub fn release(&self) {
        self.releases.fetch_add(1, Ordering::Relaxed);
    }
    /// A release was refused with `code`.
    pub fn release_refused(&self, code: ErrorCode) {
        self.release_refusals[code.index()].fetch_add(1, Ordering::Relaxed);
    }
    /// A delivery stored a fragment (`true`) or found it already stored.
    pub fn delivered(&self, stored: bool) {
        let c = if stored { &self.deliveries_stored } else { &self.deliveries_already_stored };
        c.fetch_add(1, Ordering::Relaxed);
    }
    /// A delivery was refused with `code`.
    pub fn delivery_refused(&self, code: ErrorCode) {
        self.delivery_refusals[code.index()].fetch_add(1, Ordering::Relaxed);
    }
    /// A fragment was deleted after a shred event.
    pub fn shredded(&self) {
        self.shredded.fetch_add(1, Ordering::Relaxed);
    }
    /// The event watcher failed (panic in a handler, lagged subscription, store error).
    pub fn watcher_failure(&self) {
        self.watcher_failures.fetch_add(1, Ordering::Relaxed);
    }
    /// An audit record could not be appended.
    pub fn audit_failure(&self) {
        self.audit_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    #[must_use]
    pub fn render(&self, chains: &[ChainGauge], fragments: Option<u64>) -> String {
        let mut out = String::with_capacity(4096);
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(out, "# HELP cifer_releases_total Fragments released.");
        let _ = writeln!(out, "# TYPE cifer_releases_total counter");
        let _ = writeln!(out, "cifer_releases_total {}", get(&self.releases));
        let _ =
            writeln!(out, "# HELP cifer_release_refusals_total Release requests refused, by code.");
        let _ = writeln!(out, "# TYPE cifer_release_refusals_total counter");
        for code in ErrorCode::ALL {
            let _ = writeln!(
                out,
                "cifer_release_refusals_total{{code=\"{}\"}} {}",
                code.as_str(),
                get(&self.release_refusals[code.index()])
            );
        }
        let _ = writeln!(
            out,
            "# HELP cifer_deliveries_total Fragment deliveries accepted, by outcome."
        );
        let _ = writeln!(out, "# TYPE cifer_deliveries_total counter");
        let _ = writeln!(
            out,
            "cifer_deliveries_total{{outcome=\"stored\"}} {}",
            get(&self.deliveries_stored)
        );
        let _ = writeln!(
            out,
            "cifer_deliveries_total{{outcome=\"already_stored\"}} {}",
            get(&self.deliveries_already_stored)
        );
        let _ = writeln!(
            out,
            "# HELP cifer_delivery_refusals_total Fragment deliveries refused, by code."
        );
        let _ = writeln!(out, "# TYPE cifer_delivery_refusals_total counter");
        for code in ErrorCode::ALL {
            let _ = writeln!(
                out,
                "cifer_delivery_refusals_total{{code=\"{}\"}} {}",
                code.as_str(),
                get(&self.delivery_refusals[code.index()])
            );
        }
        let _ = writeln!(
            out,
            "# HELP cifer_shredded_total Fragments deleted after SecretShredded events."
        );
        let _ = writeln!(out, "# TYPE cifer_shredded_total counter");
        let _ = writeln!(out, "cifer_shredded_total {}", get(&self.shredded));
        let _ = writeln!(
            out,
            "# HELP cifer_watcher_failures_total Event watcher failures (panics, lag, store errors)."
        );
        let _ = writeln!(out, "# TYPE cifer_watcher_failures_total counter");
        let _ = writeln!(out, "cifer_watcher_failures_total {}", get(&self.watcher_failures));
        let _ = writeln!(
            out,
            "# HELP cifer_audit_failures_total Audit records that could not be appended."
        );
        let _ = writeln!(out, "# TYPE cifer_audit_failures_total counter");
        let _ = writeln!(out, "cifer_audit_failures_total {}", get(&self.audit_failures));
        let _ = writeln!(
            out,
            "# HELP cifer_chain_healthy Whether the chain view has a trusted head (1) or not (0)."
        );
        let _ = writeln!(out, "# TYPE cifer_chain_healthy gauge");
        for c in chains {
            let _ = writeln!(
                out,
                "cifer_chain_healthy{{chain_id=\"{}\"}} {}",
                c.chain_id,
                u8::from(c.healthy)
            );
        }
        let _ = writeln!(out, "# HELP cifer_chain_head The trusted head's block number.");
        let _ = writeln!(out, "# TYPE cifer_chain_head gauge");
        for c in chains {
            if let Some(head) = c.head {
                let _ = writeln!(out, "cifer_chain_head{{chain_id=\"{}\"}} {head}", c.chain_id);
            }
        }
        let _ = writeln!(
            out,
            "# HELP cifer_chain_queries_total Chain queries, by source: sent to an RPC, or answered from the per-head cache."
        );
        let _ = writeln!(out, "# TYPE cifer_chain_queries_total counter");
        for c in chains {
            for (source, n) in [("rpc", c.queries.rpc), ("cache", c.queries.cached)] {
                let _ = writeln!(
                    out,
                    "cifer_chain_queries_total{{chain_id=\"{}\",source=\"{source}\"}} {n}",
                    c.chain_id
                );
            }
        }
        if let Some(n) = fragments {
            let _ = writeln!(out, "# HELP cifer_fragments Fragments stored.");
            let _ = writeln!(out, "# TYPE cifer_fragments gauge");
            let _ = writeln!(out, "cifer_fragments {n}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters() {
        let m = Metrics::default();
        m.release();
        m.release_refused(ErrorCode::Replayed);
        m.release_refused(ErrorCode::Replayed);
        m.delivered(true);
        let queries = cifer_chain::QueryStats { rpc: 3, cached: 40 };
        let text =
            m.render(&[ChainGauge { chain_id: 5, healthy: true, head: Some(9), queries }], Some(1));
        assert!(text.contains("cifer_releases_total 1\n"));
        assert!(text.contains("cifer_release_refusals_total{code=\"replayed\"} 2\n"));
        assert!(text.contains("cifer_deliveries_total{outcome=\"stored\"} 1\n"));
        assert!(text.contains("cifer_chain_healthy{chain_id=\"5\"} 1\n"));
        assert!(text.contains("cifer_chain_head{chain_id=\"5\"} 9\n"));
        assert!(text.contains("cifer_fragments 1\n"));
        assert!(text.contains("cifer_chain_queries_total{chain_id=\"5\",source=\"rpc\"} 3\n"));
        assert!(text.contains("cifer_chain_queries_total{chain_id=\"5\",source=\"cache\"} 40\n"));
    }
}
