//! The node's configuration: a TOML file plus `CIFER_NODE_*` environment overrides.
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! database_url = "sqlite:/var/lib/cifer/shard.db"   # or postgres://user@host/db
//! sealing_key = "/etc/cifer/sealing.key"            # CIFER-SEALING-KEY-1, mode 0600
//! identity = "/etc/cifer/node.identity"             # CIFER-MLKEM768-SEED-1, mode 0600
//! node_id = 3                                       # this node's id in ClusterRegistry
//! max_body_bytes = 65536
//! log_format = "json"                               # or "compact"
//! # worker_threads = 0   # 0: one thread runs everything (several nodes sharing a machine);
//! #                      # N: N runtime workers; absent: one per core
//! prune_interval_secs = 30  # how often expired replay keys are deleted
//!
//! [limits]
//! request_timeout_ms = 10000  # a request past this answers 503 `timeout`
//! max_in_flight = 1024        # more at once answer 503 `overloaded`
//!
//! [rate_limit]
//! burst = 20             # requests a signer may make at once
//! per_second = 5.0       # sustained rate per signer
//!
//! [[chains]]
//! chain_id = 11155111
//! rpc_urls = ["http://127.0.0.1:8545"]
//! deployment = "deployments/11155111.json"          # or the three lines below
//! # secrets_controller = "0x…"
//! # cluster_registry = "0x…"
//! # start_block = 0
//! freshness_window = 64  # W, in blocks
//! max_lag_secs = 60
//! poll_interval_ms = 2000
//! rpc_timeout_ms = 5000
//! ```
//!
//! Environment overrides (applied after the file): `CIFER_NODE_LISTEN`,
//! `CIFER_NODE_DATABASE_URL`, `CIFER_NODE_SEALING_KEY`, `CIFER_NODE_IDENTITY`,
//! `CIFER_NODE_NODE_ID`, `CIFER_NODE_MAX_BODY_BYTES`, `CIFER_NODE_LOG_FORMAT`,
//! `CIFER_NODE_WORKER_THREADS`, `CIFER_NODE_PRUNE_INTERVAL_SECS`,
//! `CIFER_NODE_RATE_LIMIT_BURST`, `CIFER_NODE_RATE_LIMIT_PER_SECOND`, and per chain
//! `CIFER_NODE_CHAIN_<chainId>_RPC_URLS` (comma-separated; keeps API keys out of the file).
//!
//! Database and RPC URLs may carry passwords or API keys: `Debug` and every error print
//! them redacted.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cifer_service::config::{ChainSection, anchor, override_rpc_urls, resolve_chains};
pub use cifer_service::config::{ChainSettings, ConfigError, redact_url};
pub use cifer_service::http::Limits;
pub use cifer_service::run::LogFormat;
use serde::Deserialize;

/// Prefix of every environment override.
pub const ENV_PREFIX: &str = "CIFER_NODE_";

/// Per-signer token bucket.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Bucket size: requests a signer may make at once.
    pub burst: u32,
    /// Refill rate, requests per second.
    pub per_second: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self { burst: 20, per_second: 5.0 }
    }
}

const fn default_prune_interval_secs() -> u64 {
    30
}
const fn default_max_body() -> usize {
    64 * 1024
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_listen")]
    listen: SocketAddr,
    database_url: Option<String>,
    sealing_key: PathBuf,
    identity: PathBuf,
    node_id: u32,
    #[serde(default = "default_max_body")]
    max_body_bytes: usize,
    #[serde(default)]
    log_format: LogFormat,
    worker_threads: Option<usize>,
    #[serde(default = "default_prune_interval_secs")]
    prune_interval_secs: u64,
    #[serde(default)]
    rate_limit: RateLimit,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    chains: Vec<ChainSection>,
}

/// The node's configuration.
#[derive(Clone)]
pub struct Config {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// `sqlite:<path>` (default `sqlite:shard.db` beside the config file) or `postgres://…`.
    pub database_url: String,
    /// The sealing key file (`CIFER-SEALING-KEY-1:`, mode 0600).
    pub sealing_key: PathBuf,
    /// The node transport identity (`CIFER-MLKEM768-SEED-1:`, mode 0600) whose
    /// encapsulation key is registered for [`node_id`](Self::node_id).
    pub identity: PathBuf,
    /// This node's id in `ClusterRegistry`.
    pub node_id: u32,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Log format.
    pub log_format: LogFormat,
    /// The async runtime: `Some(0)` runs everything on one thread (tokio's current-thread
    /// runtime), `Some(n)` uses `n` worker threads, `None` one per core. Several nodes
    /// sharing one machine (the devnet: five on two cores) spend less CPU per release on
    /// one thread each, which wakes no other runtime thread; a node on its own machine
    /// uses its cores.
    pub worker_threads: Option<usize>,
    /// How often replay keys that can no longer be replayed (their request is stale at
    /// every served chain's head) are deleted. Only the table's size depends on it: a
    /// claimed key is refused until it is deleted, and it is deleted only once stale.
    pub prune_interval: Duration,
    /// Per-signer rate limit of releases.
    pub rate_limit: RateLimit,
    /// Request deadline and in-flight cap (`[limits]`).
    pub limits: Limits,
    /// Served chains (at least one, distinct ids).
    pub chains: Vec<ChainSettings>,
}

impl core::fmt::Debug for Config {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &redact_url(&self.database_url))
            .field("sealing_key", &self.sealing_key)
            .field("identity", &self.identity)
            .field("node_id", &self.node_id)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("log_format", &self.log_format)
            .field("worker_threads", &self.worker_threads)
            .field("prune_interval", &self.prune_interval)
            .field("rate_limit", &self.rate_limit)
            .field("chains", &self.chains)
            .finish()
    }
}

impl Config {
    /// Reads `path` and applies the environment overrides from the process environment.
    ///
    /// # Errors
    /// [`ConfigError`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Io { path: path.to_path_buf(), source })?;
        Self::from_toml(&text, path, |name| std::env::var(name).ok())
    }

    /// Parses `text` (read from `path`, which anchors relative paths) and applies the
    /// overrides `env` returns.
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
        fn parsed<E>(name: &str, reason: &'static str) -> impl FnOnce(E) -> ConfigError {
            let name = format!("{ENV_PREFIX}{name}");
            move |_| ConfigError::Env { name, reason }
        }
        if let Some(v) = var("LISTEN") {
            raw.listen = v.parse().map_err(parsed("LISTEN", "expected host:port"))?;
        }
        if let Some(v) = var("DATABASE_URL") {
            raw.database_url = Some(v);
        }
        if let Some(v) = var("SEALING_KEY") {
            raw.sealing_key = v.into();
        }
        if let Some(v) = var("IDENTITY") {
            raw.identity = v.into();
        }
        if let Some(v) = var("NODE_ID") {
            raw.node_id = v.parse().map_err(parsed("NODE_ID", "expected a u32"))?;
        }
        if let Some(v) = var("MAX_BODY_BYTES") {
            raw.max_body_bytes =
                v.parse().map_err(parsed("MAX_BODY_BYTES", "expected a byte count"))?;
        }
        if let Some(v) = var("LOG_FORMAT") {
            raw.log_format = LogFormat::parse(&v).ok_or_else(|| ConfigError::Env {
                name: format!("{ENV_PREFIX}LOG_FORMAT"),
                reason: "expected json or compact",
            })?;
        }
        if let Some(v) = var("WORKER_THREADS") {
            raw.worker_threads =
                Some(v.parse().map_err(parsed("WORKER_THREADS", "expected a thread count"))?);
        }
        if let Some(v) = var("PRUNE_INTERVAL_SECS") {
            raw.prune_interval_secs =
                v.parse().map_err(parsed("PRUNE_INTERVAL_SECS", "expected seconds"))?;
        }
        if let Some(v) = var("RATE_LIMIT_BURST") {
            raw.rate_limit.burst =
                v.parse().map_err(parsed("RATE_LIMIT_BURST", "expected a u32"))?;
        }
        if let Some(v) = var("RATE_LIMIT_PER_SECOND") {
            raw.rate_limit.per_second =
                v.parse().map_err(parsed("RATE_LIMIT_PER_SECOND", "expected a number"))?;
        }
        override_rpc_urls(&mut raw.chains, ENV_PREFIX, &env);

        if raw.node_id == 0 {
            return Err(ConfigError::Invalid("node_id must be a registered id (from 1)".into()));
        }
        if raw.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid("max_body_bytes must be at least 1024".into()));
        }
        if raw.prune_interval_secs == 0 {
            return Err(ConfigError::Invalid("prune_interval_secs must be at least 1".into()));
        }
        if raw.rate_limit.burst == 0
            || !raw.rate_limit.per_second.is_finite()
            || raw.rate_limit.per_second <= 0.0
        {
            return Err(ConfigError::Invalid(
                "rate_limit.burst and rate_limit.per_second must be positive".into(),
            ));
        }
        let chains = resolve_chains(raw.chains, base)?;
        let database_url = raw
            .database_url
            .unwrap_or_else(|| format!("sqlite:{}", base.join("shard.db").display()));
        Ok(Self {
            listen: raw.listen,
            database_url,
            sealing_key: anchor(base, raw.sealing_key),
            identity: anchor(base, raw.identity),
            node_id: raw.node_id,
            max_body_bytes: raw.max_body_bytes,
            log_format: raw.log_format,
            worker_threads: raw.worker_threads,
            prune_interval: Duration::from_secs(raw.prune_interval_secs),
            rate_limit: raw.rate_limit,
            limits: raw.limits,
            chains,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

    use std::collections::HashMap;

    use super::*;

    const BASE: &str = r#"
sealing_key = "sealing.key"
identity = "/etc/cifer/node.identity"
node_id = 2

[[chains]]
chain_id = 31337
rpc_urls = ["http://user:pw@rpc.example:8545/v2/APIKEY"]
secrets_controller = "0x1111111111111111111111111111111111111111"
cluster_registry = "0x2222222222222222222222222222222222222222"
"#;

    fn parse(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> =
            env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_toml(text, Path::new("/srv/node/node.toml"), |k| env.get(k).cloned())
    }

    #[test]
    fn defaults_and_anchoring() {
        let c = parse(BASE, &[]).unwrap();
        assert_eq!(c.listen, default_listen());
        assert_eq!(c.database_url, "sqlite:/srv/node/shard.db");
        assert_eq!(c.sealing_key, Path::new("/srv/node/sealing.key"));
        assert_eq!(c.identity, Path::new("/etc/cifer/node.identity"));
        assert_eq!(c.node_id, 2);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.worker_threads, None);
        assert_eq!(c.prune_interval, Duration::from_secs(30));
        assert_eq!(c.rate_limit, RateLimit::default());
        assert_eq!(c.chains[0].freshness_window, 64);
        assert_eq!(c.chains[0].view.poll_interval, Duration::from_secs(2));
    }

    #[test]
    fn env_overrides() {
        let c = parse(
            BASE,
            &[
                ("CIFER_NODE_LISTEN", "0.0.0.0:9000"),
                ("CIFER_NODE_DATABASE_URL", "postgres://cifer:hunter2@db:5432/shard"),
                ("CIFER_NODE_NODE_ID", "4"),
                ("CIFER_NODE_LOG_FORMAT", "compact"),
                ("CIFER_NODE_RATE_LIMIT_BURST", "3"),
                ("CIFER_NODE_WORKER_THREADS", "0"),
                ("CIFER_NODE_PRUNE_INTERVAL_SECS", "600"),
                ("CIFER_NODE_CHAIN_31337_RPC_URLS", "http://a:1, http://b:2"),
            ],
        )
        .unwrap();
        assert_eq!(c.worker_threads, Some(0));
        assert_eq!(c.prune_interval, Duration::from_secs(600));
        let file = parse(&format!("worker_threads = 3\n{BASE}"), &[]).unwrap();
        assert_eq!(file.worker_threads, Some(3));
        let err = parse(BASE, &[("CIFER_NODE_WORKER_THREADS", "-1")]).unwrap_err();
        assert!(err.to_string().contains("CIFER_NODE_WORKER_THREADS"), "{err}");
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.node_id, 4);
        assert_eq!(c.log_format, LogFormat::Compact);
        assert_eq!(c.rate_limit.burst, 3);
        assert_eq!(c.chains[0].view.rpc_urls, ["http://a:1", "http://b:2"]);
        let err = parse(BASE, &[("CIFER_NODE_NODE_ID", "x")]).unwrap_err();
        assert!(err.to_string().contains("CIFER_NODE_NODE_ID"), "{err}");
    }

    #[test]
    fn debug_hides_credentials() {
        let c = parse(BASE, &[("CIFER_NODE_DATABASE_URL", "postgres://cifer:hunter2@db/shard")])
            .unwrap();
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("hunter2") && !dbg.contains("APIKEY") && !dbg.contains("pw@"),
            "{dbg}"
        );
        assert!(dbg.contains("postgres://db") && dbg.contains("http://rpc.example:8545"), "{dbg}");
    }

    #[test]
    fn rejects() {
        assert!(matches!(parse("node_id = ", &[]), Err(ConfigError::Parse { .. })));
        let no_chain = "sealing_key = \"k\"\nidentity = \"i\"\nnode_id = 1\n";
        assert!(matches!(parse(no_chain, &[]), Err(ConfigError::Invalid(_))));
        let zero = BASE.replace("node_id = 2", "node_id = 0");
        assert!(matches!(parse(&zero, &[]), Err(ConfigError::Invalid(_))));
        let unknown = format!("bogus = 1\n{BASE}");
        assert!(matches!(parse(&unknown, &[]), Err(ConfigError::Parse { .. })));
        let both = BASE.replace("[[chains]]", "[[chains]]\ndeployment = \"d.json\"");
        assert!(matches!(parse(&both, &[]), Err(ConfigError::Invalid(_))));
        let never = format!("prune_interval_secs = 0\n{BASE}");
        assert!(matches!(parse(&never, &[]), Err(ConfigError::Invalid(_))));
        let twice = format!("{BASE}{}", &BASE[BASE.find("[[chains]]").unwrap()..]);
        assert!(matches!(parse(&twice, &[]), Err(ConfigError::Invalid(_))));
    }
}
