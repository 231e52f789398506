//! The black box's configuration: a TOML file plus `CIFER_BB_*` environment overrides.
//!
//! ```toml
//! listen = "127.0.0.1:8090"
//! database_url = "sqlite:/var/lib/cifer/blackbox.db" # postgres://… for several replicas
//! signer_key = "/etc/cifer/blackbox.key"             # CIFER-SECP256K1-KEY-1, mode 0600
//! account = "0x…"                                    # the registered black-box account
//! max_body_bytes = 262144
//! log_format = "json"                                # or "compact"
//! gather_deadline_ms = 3000   # give up on the cluster after this long
//! node_timeout_ms = 2500      # one node's HTTP call
//! key_cache_ttl_secs = 0      # 0 = no key cache (the default); see docs/services.md
//! prune_interval_secs = 30    # how often expired replay keys and rate counters go
//! thin_mode = false           # POST /v1/decrypt/thin (the weaker trust mode)
//! # worker_threads = 0        # tokio workers; unset = one per core, 0 = a single thread
//! thin_max_bytes = 65536
//! trusted_black_boxes = []    # other registered black boxes whose bundles we accept
//!
//! [limits]                    # 503 `timeout` past the deadline, `overloaded` past the cap
//! request_timeout_ms = 10000
//! max_in_flight = 1024
//!
//! [rate_limit]                # per signer, shared by replicas through the database
//! window_ms = 1000
//! limit = 100
//!
//! [[chains]]                  # as in cifer_service::config
//! chain_id = 31337
//! rpc_urls = ["http://127.0.0.1:8545"]
//! deployment = "deployments/31337.json"
//! ```
//!
//! Overrides: `CIFER_BB_LISTEN`, `CIFER_BB_DATABASE_URL`, `CIFER_BB_SIGNER_KEY`,
//! `CIFER_BB_ACCOUNT`, `CIFER_BB_LOG_FORMAT`, `CIFER_BB_KEY_CACHE_TTL_SECS`,
//! `CIFER_BB_PRUNE_INTERVAL_SECS`, `CIFER_BB_THIN_MODE`, `CIFER_BB_WORKER_THREADS`, and `CIFER_BB_CHAIN_<chainId>_RPC_URLS`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cifer_chain::alloy::primitives::Address;
use cifer_service::config::{ChainSection, anchor, override_rpc_urls, resolve_chains};
pub use cifer_service::config::{ChainSettings, ConfigError, redact_url};
pub use cifer_service::http::Limits;
use cifer_service::run::LogFormat;
use serde::Deserialize;

/// Prefix of every environment override.
pub const ENV_PREFIX: &str = "CIFER_BB_";

/// Per-signer limit in fixed windows, counted in the shared database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Window length.
    pub window_ms: u64,
    /// Requests a signer may make per window.
    pub limit: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self { window_ms: 1000, limit: 100 }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_listen")]
    listen: SocketAddr,
    database_url: Option<String>,
    signer_key: PathBuf,
    account: Address,
    #[serde(default = "default_max_body")]
    max_body_bytes: usize,
    #[serde(default)]
    log_format: LogFormat,
    #[serde(default = "default_deadline")]
    gather_deadline_ms: u64,
    #[serde(default = "default_node_timeout")]
    node_timeout_ms: u64,
    #[serde(default)]
    key_cache_ttl_secs: u64,
    #[serde(default = "default_prune_interval")]
    prune_interval_secs: u64,
    #[serde(default)]
    thin_mode: bool,
    worker_threads: Option<usize>,
    #[serde(default = "default_thin_max")]
    thin_max_bytes: usize,
    #[serde(default)]
    trusted_black_boxes: Vec<Address>,
    #[serde(default)]
    rate_limit: RateLimit,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    chains: Vec<ChainSection>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8090))
}
const fn default_max_body() -> usize {
    256 * 1024
}
const fn default_deadline() -> u64 {
    3000
}
const fn default_node_timeout() -> u64 {
    2500
}
const fn default_prune_interval() -> u64 {
    30
}
const fn default_thin_max() -> usize {
    64 * 1024
}

/// The black box's configuration.
#[derive(Clone)]
pub struct Config {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// `sqlite:<path>` (default `sqlite:blackbox.db` beside the config file) or
    /// `postgres://…` (required for several replicas).
    pub database_url: String,
    /// The secp256k1 signer key file (`CIFER-SECP256K1-KEY-1:`, mode 0600): the signer
    /// registered for [`account`](Self::account) in `ClusterRegistry`.
    pub signer_key: PathBuf,
    /// The registered black-box account.
    pub account: Address,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Log format.
    pub log_format: LogFormat,
    /// Deadline of a whole fragment gathering.
    pub gather_deadline: Duration,
    /// Timeout of one node call.
    pub node_timeout: Duration,
    /// Key cache lifetime; `None` = no cache (the default).
    pub key_cache_ttl: Option<Duration>,
    /// How often replay keys past every chain's window and old rate counters are
    /// deleted. Only the tables' size depends on it: a key is deleted only once its
    /// request is stale anyway.
    pub prune_interval: Duration,
    /// Whether `POST /v1/decrypt/thin` is served.
    pub thin_mode: bool,
    /// Tokio worker threads: `None` = one per core (the default), `Some(0)` = one thread
    /// runs everything.
    pub worker_threads: Option<usize>,
    /// Largest envelope thin mode accepts.
    pub thin_max_bytes: usize,
    /// Other registered black boxes whose creation bundles are accepted.
    pub trusted_black_boxes: Vec<Address>,
    /// Per-signer rate limit.
    pub rate_limit: RateLimit,
    /// Request deadline and in-flight cap (`[limits]`).
    pub limits: Limits,
    /// Served chains.
    pub chains: Vec<ChainSettings>,
}

impl core::fmt::Debug for Config {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &redact_url(&self.database_url))
            .field("signer_key", &self.signer_key)
            .field("account", &self.account)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("gather_deadline", &self.gather_deadline)
            .field("node_timeout", &self.node_timeout)
            .field("key_cache_ttl", &self.key_cache_ttl)
            .field("prune_interval", &self.prune_interval)
            .field("thin_mode", &self.thin_mode)
            .field("worker_threads", &self.worker_threads)
            .field("rate_limit", &self.rate_limit)
            .field("chains", &self.chains)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads `path` and applies the environment overrides.
    ///
    /// # Errors
    /// [`ConfigError`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Io { path: path.to_path_buf(), source })?;
        Self::from_toml(&text, path, |name| std::env::var(name).ok())
    }

    /// Parses `text` (read from `path`, which anchors relative paths) with overrides from
    /// `env`.
    ///
    /// # Errors
    /// [`ConfigError`].
    pub fn from_toml(
        text: &str,
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.message().to_owned(),
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let var = |name: &str| env(&format!("{ENV_PREFIX}{name}"));
        let bad = |name: &str, reason: &'static str| ConfigError::Env {
            name: format!("{ENV_PREFIX}{name}"),
            reason,
        };
        if let Some(v) = var("LISTEN") {
            raw.listen = v.parse().map_err(|_| bad("LISTEN", "expected host:port"))?;
        }
        if let Some(v) = var("DATABASE_URL") {
            raw.database_url = Some(v);
        }
        if let Some(v) = var("SIGNER_KEY") {
            raw.signer_key = v.into();
        }
        if let Some(v) = var("ACCOUNT") {
            raw.account = v.parse().map_err(|_| bad("ACCOUNT", "expected an address"))?;
        }
        if let Some(v) = var("LOG_FORMAT") {
            raw.log_format = LogFormat::parse(&v)
                .ok_or_else(|| bad("LOG_FORMAT", "expected json or compact"))?;
        }
        if let Some(v) = var("KEY_CACHE_TTL_SECS") {
            raw.key_cache_ttl_secs =
                v.parse().map_err(|_| bad("KEY_CACHE_TTL_SECS", "expected seconds"))?;
        }
        if let Some(v) = var("PRUNE_INTERVAL_SECS") {
            raw.prune_interval_secs =
                v.parse().map_err(|_| bad("PRUNE_INTERVAL_SECS", "expected seconds"))?;
        }
        if let Some(v) = var("WORKER_THREADS") {
            raw.worker_threads =
                Some(v.parse().map_err(|_| bad("WORKER_THREADS", "expected a thread count"))?);
        }
        if let Some(v) = var("THIN_MODE") {
            raw.thin_mode = v.parse().map_err(|_| bad("THIN_MODE", "expected true or false"))?;
        }
        override_rpc_urls(&mut raw.chains, ENV_PREFIX, &env);

        if raw.account.is_zero() {
            return Err(ConfigError::Invalid("account must be the registered black box".into()));
        }
        if raw.max_body_bytes < 4096 {
            return Err(ConfigError::Invalid("max_body_bytes must be at least 4096".into()));
        }
        if raw.gather_deadline_ms == 0 || raw.node_timeout_ms == 0 {
            return Err(ConfigError::Invalid(
                "gather_deadline_ms and node_timeout_ms must be positive".into(),
            ));
        }
        if raw.prune_interval_secs == 0 {
            return Err(ConfigError::Invalid("prune_interval_secs must be at least 1".into()));
        }
        if raw.rate_limit.limit == 0 || raw.rate_limit.window_ms == 0 {
            return Err(ConfigError::Invalid("rate_limit values must be positive".into()));
        }
        let chains = resolve_chains(raw.chains, base)?;
        let database_url = raw
            .database_url
            .unwrap_or_else(|| format!("sqlite:{}", base.join("blackbox.db").display()));
        Ok(Self {
            listen: raw.listen,
            database_url,
            signer_key: anchor(base, raw.signer_key),
            account: raw.account,
            max_body_bytes: raw.max_body_bytes,
            log_format: raw.log_format,
            gather_deadline: Duration::from_millis(raw.gather_deadline_ms),
            node_timeout: Duration::from_millis(raw.node_timeout_ms),
            key_cache_ttl: (raw.key_cache_ttl_secs > 0)
                .then(|| Duration::from_secs(raw.key_cache_ttl_secs)),
            prune_interval: Duration::from_secs(raw.prune_interval_secs),
            thin_mode: raw.thin_mode,
            worker_threads: raw.worker_threads,
            thin_max_bytes: raw.thin_max_bytes,
            trusted_black_boxes: raw.trusted_black_boxes,
            rate_limit: raw.rate_limit,
            limits: raw.limits,
            chains,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::collections::HashMap;

    use super::*;

    const BASE: &str = r#"
signer_key = "bb.key"
account = "0x1111111111111111111111111111111111111111"

[[chains]]
chain_id = 31337
rpc_urls = ["http://user:pw@rpc.example:8545/APIKEY"]
secrets_controller = "0x1111111111111111111111111111111111111111"
cluster_registry = "0x2222222222222222222222222222222222222222"
"#;

    fn parse(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> =
            env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_toml(text, Path::new("/srv/bb/bb.toml"), |k| env.get(k).cloned())
    }

    #[test]
    fn defaults_overrides_and_redaction() {
        let c = parse(BASE, &[]).unwrap();
        assert_eq!(c.database_url, "sqlite:/srv/bb/blackbox.db");
        assert_eq!(c.signer_key, Path::new("/srv/bb/bb.key"));
        assert_eq!(c.key_cache_ttl, None, "no key cache by default");
        assert!(!c.thin_mode, "thin mode is off by default");
        assert_eq!(c.prune_interval, Duration::from_secs(30));
        assert_eq!(c.worker_threads, None, "one worker per core by default");
        let c = parse(
            BASE,
            &[
                ("CIFER_BB_KEY_CACHE_TTL_SECS", "60"),
                ("CIFER_BB_THIN_MODE", "true"),
                ("CIFER_BB_PRUNE_INTERVAL_SECS", "3600"),
                ("CIFER_BB_WORKER_THREADS", "0"),
                ("CIFER_BB_DATABASE_URL", "postgres://u:hunter2@db/bb"),
            ],
        )
        .unwrap();
        assert_eq!(c.key_cache_ttl, Some(Duration::from_secs(60)));
        assert!(c.thin_mode);
        assert_eq!(c.prune_interval, Duration::from_secs(3600));
        assert_eq!(c.worker_threads, Some(0));
        assert!(parse(BASE, &[("CIFER_BB_WORKER_THREADS", "two")]).is_err());
        assert!(parse(BASE, &[("CIFER_BB_PRUNE_INTERVAL_SECS", "0")]).is_err());
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2") && !dbg.contains("APIKEY"), "{dbg}");
        assert!(parse(BASE, &[("CIFER_BB_THIN_MODE", "yes")]).is_err());
        let zero = BASE.replace(
            "0x1111111111111111111111111111111111111111\"\n\n",
            "0x0000000000000000000000000000000000000000\"\n\n",
        );
        assert!(matches!(parse(&zero, &[]), Err(ConfigError::Invalid(_))));
    }
}
