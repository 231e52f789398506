//! What the view watches and how strictly.

use std::time::Duration;

use alloy::primitives::Address;
use alloy::transports::http::reqwest::Url;

use crate::error::{ChainError, Result};

/// Configuration of one chain's view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainConfig {
    /// EIP-155 chain id every RPC must report.
    pub chain_id: u64,
    /// JSON-RPC HTTP endpoints of independent providers (at least one). Every one of them must
    /// answer and agree for the view to be available: more URLs buy more safety, not more
    /// availability.
    pub rpc_urls: Vec<String>,
    /// The `SecretsController` address.
    pub secrets_controller: Address,
    /// The `ClusterRegistry` address.
    pub cluster_registry: Address,
    /// A head whose timestamp is older than `now - max_lag` makes the view unavailable.
    pub max_lag: Duration,
    /// How often every RPC is asked for its latest block.
    pub poll_interval: Duration,
    /// Deadline of each RPC request.
    pub rpc_timeout: Duration,
    /// First block whose events are delivered (the deployment block, `Deployment::block`).
    pub start_block: u64,
}

impl ChainConfig {
    /// The recommended defaults for `chain_id` and a deployment: `max_lag` 60 s, polls every
    /// 2 s, 5 s per request, events from `deployment.block`.
    pub fn new(deployment: &cifer_bindings::Deployment, rpc_urls: Vec<String>) -> Self {
        Self {
            chain_id: deployment.chain_id,
            rpc_urls,
            secrets_controller: deployment.secrets_controller,
            cluster_registry: deployment.cluster_registry,
            max_lag: Duration::from_secs(60),
            poll_interval: Duration::from_secs(2),
            rpc_timeout: Duration::from_secs(5),
            start_block: deployment.block,
        }
    }

    /// How old the last successful poll may be before the view is `Stale`:
    /// `2 × poll_interval + rpc_timeout`.
    pub fn staleness_bound(&self) -> Duration {
        self.poll_interval.saturating_mul(2).saturating_add(self.rpc_timeout)
    }

    /// Checks the configuration and parses the URLs.
    pub(crate) fn validate(&self) -> Result<Vec<Url>> {
        if self.rpc_urls.is_empty() {
            return Err(ChainError::Config("no rpc url".into()));
        }
        if self.secrets_controller.is_zero() || self.cluster_registry.is_zero() {
            return Err(ChainError::Config("zero contract address".into()));
        }
        if self.poll_interval.is_zero() || self.rpc_timeout.is_zero() || self.max_lag.is_zero() {
            return Err(ChainError::Config(
                "poll_interval, rpc_timeout and max_lag must be positive".into(),
            ));
        }
        self.rpc_urls
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let url = Url::parse(u).map_err(|e| {
                    // The URL itself may hold an API key: name it by position only.
                    ChainError::Config(format!("rpc url #{i} is not a URL: {e}"))
                })?;
                match url.scheme() {
                    "http" | "https" => Ok(url),
                    other => Err(ChainError::Config(format!(
                        "rpc url #{i} has scheme {other}; only http(s) is supported"
                    ))),
                }
            })
            .collect()
    }
}

/// `scheme://host:port` of an RPC URL: paths, queries and credentials often hold API keys
/// and must not reach logs or errors.
pub(crate) fn redact(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port_or_known_default() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn config(urls: &[&str]) -> ChainConfig {
        ChainConfig {
            chain_id: 1,
            rpc_urls: urls.iter().map(|s| (*s).to_owned()).collect(),
            secrets_controller: Address::repeat_byte(1),
            cluster_registry: Address::repeat_byte(2),
            max_lag: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            rpc_timeout: Duration::from_secs(1),
            start_block: 0,
        }
    }

    #[test]
    fn redaction_drops_credentials_path_and_query() {
        let url = Url::parse("https://user:pw@eth.example.com/v2/SECRETKEY?k=SECRET").unwrap();
        assert_eq!(redact(&url), "https://eth.example.com:443");
        let url = Url::parse("http://127.0.0.1:8545").unwrap();
        assert_eq!(redact(&url), "http://127.0.0.1:8545");
    }

    #[test]
    fn validation() {
        assert_eq!(config(&["http://a:1", "https://b/x"]).validate().unwrap().len(), 2);
        assert!(matches!(config(&[]).validate(), Err(ChainError::Config(_))));
        let err = config(&["ws://a/SECRETKEY"]).validate().unwrap_err();
        assert!(!err.to_string().contains("SECRETKEY"), "{err}");
        let err = config(&["not a url SECRETKEY"]).validate().unwrap_err();
        assert!(!err.to_string().contains("SECRETKEY"), "{err}");
        let mut c = config(&["http://a:1"]);
        c.poll_interval = Duration::ZERO;
        assert!(c.validate().is_err());
        let mut c = config(&["http://a:1"]);
        c.cluster_registry = Address::ZERO;
        assert!(c.validate().is_err());
        assert_eq!(config(&["http://a:1"]).staleness_bound(), Duration::from_secs(3));
    }
}
