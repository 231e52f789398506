//! CIFER shard node: the custody service that holds one verifiable fragment per secret
//! and releases it only to a verified request (issue 4).
//!
//! - [`store`]: fragments sealed at rest under the node sealing key, written once and
//!   durably; the replay set of accepted requests; the hash-chained audit log.
//! - [`config`]: the TOML file and `CIFER_NODE_*` overrides.
//! - [`api`]: the HTTP API (delivery, the release checks of `docs/services.md`, health,
//!   metrics, OpenAPI) with one error type, [`error::ApiError`].
//! - [`watcher`]: shred events delete fragments; the replay set is pruned.
//! - [`server::run`]: everything together, until shutdown. The binary
//!   (`cifer-shard-node --config FILE`, `cifer-shard-node keygen`) is a thin wrapper.
//!
//! **Architecture invariant — no secret leaves a shard node unencrypted**, and none rests
//! on its disk unencrypted: fragments reach the database only as AES-256-GCM ciphertext
//! bound to their row.
//!
//! ```no_run
//! # async fn demo(record: cifer_shard_node::store::FragmentRecord) -> cifer_shard_node::store::Result<()> {
//! use cifer_shard_node::store::{SealingKey, Store};
//!
//! let key = SealingKey::load("/etc/cifer/sealing.key")?;
//! let store = Store::open("sqlite:/var/lib/cifer/shard.db", key).await?;
//! store.put_fragment(&record).await?;
//! let stored = store.get_fragment(record.chain_id, record.secret_id).await?;
//! assert!(stored.is_some());
//! # Ok(()) }
//! ```

#[cfg(not(unix))]
compile_error!("cifer-shard-node checks key file permissions and runs on Unix only");

pub mod api;
pub mod config;
pub mod error;
pub mod identity;
pub mod metrics;
pub mod ratelimit;
pub mod server;
pub use cifer_store as store;
pub mod watcher;
