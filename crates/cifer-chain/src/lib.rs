//! # cifer-chain
//!
//! The chain view every security decision of the shard node and the black box asks
//! (`docs/services.md`, "Chain view").
//!
//! **Invariant: every answer is pinned to a head that all configured RPCs agree on, or it is
//! an error.** A caller denies on any error.
//!
//! [`ChainView::start`] spawns a poller that, every `poll_interval`, asks each configured RPC
//! for its latest block (each request bounded by `rpc_timeout`), fetches the block at the
//! lowest of their heights from each, and trusts it only if
//!
//! - every RPC answered in time and serves the configured chain id (checked once per RPC),
//! - they all report the same hash and timestamp for it,
//! - it is not below a head already trusted (no step back past a revocation already seen),
//! - its timestamp is no older than `max_lag`.
//!
//! Otherwise the view is [`Unavailable`] with a typed reason. It is also unavailable before
//! the first successful poll and when the last one is older than
//! `2 × poll_interval + rpc_timeout` ([`ChainConfig::staleness_bound`]), so a stuck poller or
//! a dead task fails closed too. Lag and staleness are evaluated at every read, not only when
//! polling.
//!
//! Queries ([`Pinned`], or the shortcuts on [`ChainView`]) are `eth_call`s at the trusted
//! head's block hash (EIP-1898, `requireCanonical`), through the first RPC that answers. Take
//! one [`Pinned`] per decision so freshness and authorization are judged at the same block.
//!
//! **Warm chain state.** Answers of the contract queries (`eth_call`s of our contracts and
//! `has_code`; not EIP-1271 checks, whose digests never repeat) are cached per trusted head:
//! an answer obtained at head `H` is served again only while the trusted head is still `H`.
//! The poller empties the cache at every new head and whenever the view becomes unhealthy,
//! health is checked before any cached answer is served (so a cached answer never outlives
//! the view's health), RPC failures are never cached, and the cache holds at most
//! [`CACHE_CAPACITY`] answers. [`ChainView::query_stats`] counts hits and RPC queries.
//!
//! [`ChainView::subscribe`] delivers the contracts' events ([`ChainEventKind`]) in block
//! order from `start_block` up to the trusted head, by polling `eth_getLogs`.
//!
//! ```no_run
//! # async fn example(deployment: cifer_bindings::Deployment) -> cifer_chain::Result<()> {
//! use cifer_chain::{ChainConfig, ChainView};
//! use alloy::primitives::{Address, U256};
//!
//! let config = ChainConfig::new(&deployment, vec!["http://127.0.0.1:8545".into()]);
//! let view = ChainView::start(config).await?;
//! let at = view.pinned()?; // fails unless every RPC agrees on a recent head
//! let allowed = at.is_authorized(U256::from(1), Address::ZERO).await?;
//! # let _ = allowed; Ok(()) }
//! ```
//!
//! Only plain-HTTP RPC URLs work until the workspace's alloy gets a TLS feature (the
//! `https` scheme is accepted and then reported `Unreachable`). URLs are redacted to
//! `scheme://host:port` in every error and log line: RPC URLs often embed API keys.

pub use alloy;

mod config;
mod error;
mod events;
mod records;
mod view;

pub use config::ChainConfig;
pub use error::{ChainError, Result, Unavailable};
pub use events::{ChainEvent, ChainEventKind};
pub use records::{BlackBox, Cluster, ClusterStatus, Head, Node, NodeStatus, Secret, SecretState};
pub use view::{CACHE_CAPACITY, ChainView, EVENT_CAPACITY, Health, LOG_RANGE, Pinned, QueryStats};
