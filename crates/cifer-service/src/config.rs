//! Configuration pieces every service shares: the `[[chains]]` section, its resolution
//! (deployment files, checks), URL redaction and the error type.
//!
//! ```toml
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

use std::path::{Path, PathBuf};
use std::time::Duration;

use cifer_chain::ChainConfig;
use cifer_chain::alloy::primitives::Address;
use serde::Deserialize;

/// Errors of loading the configuration. None of them prints a URL's credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid config file {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong (from the TOML parser; values are not quoted back).
        message: String,
    },
    /// An environment override does not parse.
    #[error("environment variable {name}: {reason}")]
    Env {
        /// The variable.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid config: {0}")]
    Invalid(String),
    /// A `deployments/<id>.json` file could not be used.
    #[error("chain {chain_id}: {source}")]
    Deployment {
        /// The chain.
        chain_id: u64,
        /// The cause.
        #[source]
        source: cifer_bindings::Error,
    },
}

/// One served chain, as written in the file.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSection {
    /// EIP-155 chain id.
    pub chain_id: u64,
    #[serde(default)]
    /// RPC URLs (all must agree on the head).
    pub rpc_urls: Vec<String>,
    /// A `deployments/<id>.json` file.
    pub deployment: Option<PathBuf>,
    /// The SecretsController (instead of `deployment`).
    pub secrets_controller: Option<Address>,
    /// The ClusterRegistry (instead of `deployment`).
    pub cluster_registry: Option<Address>,
    /// First block of event scans.
    pub start_block: Option<u64>,
    #[serde(default = "default_window")]
    /// Freshness window `W` in blocks.
    pub freshness_window: u64,
    #[serde(default = "default_max_lag")]
    /// Largest tolerated head age.
    pub max_lag_secs: u64,
    #[serde(default = "default_poll")]
    /// Head polling interval.
    pub poll_interval_ms: u64,
    #[serde(default = "default_rpc_timeout")]
    /// Per-call RPC timeout.
    pub rpc_timeout_ms: u64,
}

const fn default_window() -> u64 {
    64
}
const fn default_max_lag() -> u64 {
    60
}
const fn default_poll() -> u64 {
    2000
}
const fn default_rpc_timeout() -> u64 {
    5000
}
/// A served chain, resolved.
#[derive(Clone, PartialEq, Eq)]
pub struct ChainSettings {
    /// What the chain view is started with.
    pub view: ChainConfig,
    /// Freshness window `W` in blocks: `head − W ≤ blockNumber ≤ head`.
    pub freshness_window: u64,
}

impl core::fmt::Debug for ChainSettings {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChainSettings")
            .field("chain_id", &self.view.chain_id)
            .field(
                "rpc_urls",
                &self.view.rpc_urls.iter().map(|u| redact_url(u)).collect::<Vec<_>>(),
            )
            .field("secrets_controller", &self.view.secrets_controller)
            .field("cluster_registry", &self.view.cluster_registry)
            .field("start_block", &self.view.start_block)
            .field("max_lag", &self.view.max_lag)
            .field("poll_interval", &self.view.poll_interval)
            .field("rpc_timeout", &self.view.rpc_timeout)
            .field("freshness_window", &self.freshness_window)
            .finish()
    }
}

/// A URL without credentials, path or query: `scheme://host:port` (for `sqlite:` URLs, the
/// path is kept: it is not secret and operators need it).
#[must_use]
pub fn redact_url(url: &str) -> String {
    if url.starts_with("sqlite:") {
        return url.split('?').next().unwrap_or(url).to_owned();
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<redacted>".to_owned();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}")
}

/// Replaces every chain's RPC URLs by `{prefix}CHAIN_<chainId>_RPC_URLS` (comma-separated)
/// when `env` has it: keeps API keys out of the file.
pub fn override_rpc_urls(
    chains: &mut [ChainSection],
    prefix: &str,
    env: impl Fn(&str) -> Option<String>,
) {
    for chain in chains {
        if let Some(v) = env(&format!("{prefix}CHAIN_{}_RPC_URLS", chain.chain_id)) {
            chain.rpc_urls =
                v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        }
    }
}

/// Resolves every section, refusing an empty list and duplicate chain ids.
///
/// # Errors
/// [`ConfigError`].
pub fn resolve_chains(
    sections: Vec<ChainSection>,
    base: &Path,
) -> Result<Vec<ChainSettings>, ConfigError> {
    if sections.is_empty() {
        return Err(ConfigError::Invalid("no [[chains]] configured".into()));
    }
    let mut chains = Vec::with_capacity(sections.len());
    for c in sections {
        if chains.iter().any(|s: &ChainSettings| s.view.chain_id == c.chain_id) {
            return Err(ConfigError::Invalid(format!("chain {} configured twice", c.chain_id)));
        }
        chains.push(resolve_chain(c, base)?);
    }
    Ok(chains)
}

/// `path` relative to `base` unless absolute.
#[must_use]
pub fn anchor(base: &Path, path: PathBuf) -> PathBuf {
    if path.is_absolute() { path } else { base.join(path) }
}

/// Resolves a section read from a file in `base`: reads the deployment file if named,
/// checks addresses and intervals.
///
/// # Errors
/// [`ConfigError::Invalid`], [`ConfigError::Deployment`].
pub fn resolve_chain(c: ChainSection, base: &Path) -> Result<ChainSettings, ConfigError> {
    let id = c.chain_id;
    let invalid = |what: &str| ConfigError::Invalid(format!("chain {id}: {what}"));
    let (controller, registry, start) =
        match (&c.deployment, c.secrets_controller, c.cluster_registry) {
            (Some(file), None, None) => {
                let file = anchor(base, file.clone());
                let text =
                    std::fs::read_to_string(&file).map_err(|source| ConfigError::Deployment {
                        chain_id: id,
                        source: cifer_bindings::Error::Io {
                            path: file.display().to_string(),
                            source,
                        },
                    })?;
                let d = cifer_bindings::Deployment::from_json(&text, &file.display().to_string())
                    .map_err(|source| ConfigError::Deployment { chain_id: id, source })?;
                if d.chain_id != id {
                    return Err(ConfigError::Deployment {
                        chain_id: id,
                        source: cifer_bindings::Error::ChainMismatch {
                            expected: id,
                            found: d.chain_id,
                        },
                    });
                }
                (d.secrets_controller, d.cluster_registry, c.start_block.unwrap_or(d.block))
            }
            (None, Some(sc), Some(cr)) => (sc, cr, c.start_block.unwrap_or(0)),
            _ => {
                return Err(invalid(
                    "give either `deployment` or both `secrets_controller` and `cluster_registry`",
                ));
            }
        };
    if controller.is_zero() || registry.is_zero() {
        return Err(invalid("zero contract address"));
    }
    if c.rpc_urls.is_empty() {
        return Err(invalid("no rpc_urls"));
    }
    if c.poll_interval_ms == 0 || c.rpc_timeout_ms == 0 || c.max_lag_secs == 0 {
        return Err(invalid("poll_interval_ms, rpc_timeout_ms and max_lag_secs must be positive"));
    }
    Ok(ChainSettings {
        view: ChainConfig {
            chain_id: id,
            rpc_urls: c.rpc_urls,
            secrets_controller: controller,
            cluster_registry: registry,
            max_lag: Duration::from_secs(c.max_lag_secs),
            poll_interval: Duration::from_millis(c.poll_interval_ms),
            rpc_timeout: Duration::from_millis(c.rpc_timeout_ms),
            start_block: start,
        },
        freshness_window: c.freshness_window,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn url_redaction() {
        assert_eq!(redact_url("postgres://u:p@h:5432/db?sslmode=x"), "postgres://h:5432");
        assert_eq!(redact_url("sqlite:/a/b.db?mode=rwc"), "sqlite:/a/b.db");
        assert_eq!(redact_url("garbage-with-secret"), "<redacted>");
    }

    #[test]
    fn deployment_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("d.json"),
            r#"{"chainId":31337,"secretsController":"0x1111111111111111111111111111111111111111","clusterRegistry":"0x2222222222222222222222222222222222222222","block":42}"#,
        )
        .unwrap();
        let section = |id: u64| ChainSection {
            chain_id: id,
            rpc_urls: vec!["http://a:1".into()],
            deployment: Some("d.json".into()),
            secrets_controller: None,
            cluster_registry: None,
            start_block: None,
            freshness_window: 64,
            max_lag_secs: 60,
            poll_interval_ms: 100,
            rpc_timeout_ms: 100,
        };
        let c = resolve_chains(vec![section(31337)], dir.path()).unwrap();
        assert_eq!(c[0].view.start_block, 42);
        assert!(matches!(
            resolve_chains(vec![section(1)], dir.path()),
            Err(ConfigError::Deployment { .. })
        ));
        assert!(matches!(
            resolve_chains(vec![section(31337), section(31337)], dir.path()),
            Err(ConfigError::Invalid(_))
        ));
        assert!(matches!(resolve_chains(vec![], dir.path()), Err(ConfigError::Invalid(_))));
    }
}
