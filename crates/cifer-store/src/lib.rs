//! # cifer-store
//!
//! Durable storage of the CIFER services: a shard node's fragments, sealed at rest; the
//! replay set, shared rate counters and hash-chained audit log that a shard node and the
//! black box (whose replicas share one PostgreSQL database) both keep. The black box stores
//! no fragment: its `fragments` table stays empty.
//!
//! # Backends
//!
//! An SQLite file is the embedded default (`sqlite:/var/lib/cifer/shard.db`); operators
//! who prefer a server give a `postgres://` URL. [`Store`] is one type over two small
//! backends (`enum` of an `SqlitePool` and a `PgPool`) rather than `sqlx::Any`, because
//! the two differ exactly where correctness lives: SQLite needs per-connection pragmas
//! (WAL, `synchronous = FULL`, `secure_delete`, busy timeout) and `BEGIN IMMEDIATE` to
//! serialize audit appends, PostgreSQL needs `LOCK TABLE` and `synchronous_commit`; `Any`
//! would hide both and map `BLOB`/`BYTEA` and integers through a lowest common
//! denominator. Every data statement is the same SQL text on both (`$n` placeholders
//! work in SQLite too) and runs through one code path; only opening and the audit lock
//! differ. Queries are checked at run time (`sqlx::query`), so building needs no
//! database; the schema lives in `migrations/{sqlite,postgres}/`, embedded in the binary
//! and applied by [`Store::open`].
//!
//! # Schema
//!
//! | table | key | holds |
//! | --- | --- | --- |
//! | `fragments` | `(chain_id, secret_id)` | `ek_hash`, `fragment_index`, `commitments` (wire form) and their `commitments_hash`, `seal_format`, `nonce`, `sealed`, `stored_at_ms` |
//! | `replays` | `replay_key` | `expires_at_block` |
//! | `rate_counters` | `(subject, window_start)` | `count` ([`Store::count_request`]) |
//! | `audit_log` | `seq` (1, 2, …) | `kind`, `chain_id`, `secret_id`, `actor`, `digest`, `code`, `at_ms`, `prev_hash`, `hash`; triggers refuse `UPDATE`/`DELETE` |
//!
//! Integers are stored as signed 64-bit: a chain id or block number above `2^63 - 1` is
//! refused with [`StoreError::OutOfRange`].
//!
//! # Guarantees
//!
//! - **Durability.** `put_fragment` returns `Ok` only after the commit is on stable
//!   storage: SQLite in WAL mode with `synchronous = FULL` (the WAL is fsynced at every
//!   commit), PostgreSQL with `synchronous_commit = on` forced per connection (do not run
//!   the server with `fsync = off`). A fragment acknowledged survives `kill -9` and power
//!   loss, as far as the disk honours fsync.
//! - **Write-once.** One fragment per `(chain_id, secret_id)`; a second put of identical
//!   content is [`PutOutcome::AlreadyStored`], of different content
//!   [`StoreError::Conflict`], and nothing is ever overwritten. The primary key decides
//!   races (`INSERT … ON CONFLICT DO NOTHING`, then compare), so of two concurrent puts
//!   exactly one wins. A fragment that does not verify against its own commitments is
//!   never stored.
//! - **Sealed at rest.** Fragments are AES-256-GCM encrypted under the node
//!   [`SealingKey`] with a random nonce per record and associated data binding the row
//!   (see [`seal`]); a modified or moved record reads as [`StoreError::Corrupt`].
//! - **Replay set.** [`Store::claim_replay`] is one `INSERT … ON CONFLICT DO NOTHING`:
//!   of any number of concurrent claims of a key, exactly one returns `true`.
//!   [`Store::claim_replay_and_append_audit`] claims a key and appends its audit record in
//!   one transaction (group-committed with other such calls by one writer task): both or
//!   neither are durable, and a failed claim appends nothing.
//! - **Audit chain.** Every entry's hash covers the previous hash, its sequence number and
//!   its contents ([`audit`]); appends are serialized (SQLite `BEGIN IMMEDIATE`,
//!   PostgreSQL `LOCK TABLE audit_log IN EXCLUSIVE MODE`, and `seq` is the primary key),
//!   so the chain never forks. [`Store::verify_audit`] names the first bad entry.
//!
//! # What the dev-mode sealing does NOT protect
//!
//! The sealing key comes from a file on the same host ([`SealingKey::load`] refuses one
//! readable by group or others). That protects fragments in a copied database file, a
//! database backup, a PostgreSQL server run by someone else, or a stolen disk without
//! the key file. It does **not** protect against:
//!
//! - root, or anyone running as the node's user, on the host: they read the key file
//!   and the database, or attach a debugger to the process;
//! - memory dumps, core files, swap and hibernation images: decrypted fragments and the
//!   key are in process memory while in use (they are zeroized on drop, which narrows the
//!   window but is not a guarantee against copies made by the allocator or the OS);
//! - a compromised node binary;
//! - a host without a TEE: there is no hardware sealing, no attestation and no rollback
//!   protection, so someone with write access to the database can restore an older
//!   copy of it (a deleted fragment reappears) or drop the audit tail unnoticed unless
//!   the audit head was anchored elsewhere.
//!
//! # Deletion
//!
//! [`Store::delete_fragment`] (shred events) deletes the row. In SQLite
//! `secure_delete = ON` zeroes the freed content in the database file, and a WAL
//! checkpoint is attempted so older page images leave the WAL; copies already in
//! backups or filesystem snapshots remain. PostgreSQL keeps the dead tuple until
//! `VACUUM` and in its WAL and backups. What remains is ciphertext under the sealing key,
//! so the lasting erasure is retiring the key (key rotation, not implemented yet).

macro_rules! dispatch {
    ($backend:expr, $pool:ident => $body:expr) => {
        match $backend {
            $crate::backend::Backend::Sqlite($pool) => $body,
            $crate::backend::Backend::Postgres($pool) => $body,
        }
    };
}

pub mod audit;
mod backend;
mod error;
mod fragments;
mod ratelimit;
mod replay;
pub mod seal;
#[cfg(feature = "test-utils")]
pub mod testing;

use std::path::Path;
use std::sync::Arc;

pub use audit::{
    AuditEntry, AuditHead, AuditKind, AuditRecord, Claim, Durable, MAX_AUDIT_CODE_LEN, RateCheck,
};
pub use backend::{BackendKind, StoreConfig};
pub use error::{AuditFault, Result, StoreError};
pub use fragments::{FragmentRecord, PutOutcome, StoredFragment};
pub use seal::SealingKey;

use backend::Backend;

/// The storage of one shard node. Cheap to clone (the pool and key are shared); every
/// method is safe to call concurrently from many tasks and from several processes on the
/// same database.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    key: Arc<SealingKey>,
    /// Queue of the group-commit writer ([`Store::claim_replay_and_append_audit`]).
    writer: tokio::sync::mpsc::Sender<audit::GroupJob>,
    /// Tells the writer to give back the connection it keeps between groups.
    release_writer: Arc<tokio::sync::Notify>,
    /// Decoded commitments by `keccak256` of their bytes (public; bounded).
    commitments: Arc<cifer_core::CommitmentsCache>,
    /// Fragment rows as stored (still sealed), so that a release does not read the
    /// database each time; see [`fragments::RowCache`].
    rows: Arc<std::sync::Mutex<fragments::RowCache>>,
}

/// Most decoded commitments kept by a [`Store`] (the cache is emptied when full).
const COMMITMENTS_CACHE: usize = 4096;

impl core::fmt::Debug for Store {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend.kind()).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `url` — `sqlite:<path>` or
    /// `postgres://…` — and applies the migrations.
    ///
    /// # Errors
    /// [`StoreError::UnsupportedUrl`], [`StoreError::Database`] if it cannot connect,
    /// [`StoreError::Migrate`] if the schema cannot be brought up to date.
    pub async fn open(url: &str, key: SealingKey) -> Result<Self> {
        Self::open_with(url, key, &StoreConfig::default()).await
    }

    /// [`open`](Self::open) with explicit pool settings.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub async fn open_with(url: &str, key: SealingKey, config: &StoreConfig) -> Result<Self> {
        let backend = Backend::connect(url, config).await?;
        Ok(Self::with_backend(backend, key))
    }

    /// Opens (creating if needed) the SQLite file at `path` (no URL escaping needed).
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub async fn open_sqlite(path: impl AsRef<Path>, key: SealingKey) -> Result<Self> {
        let backend = Backend::connect_sqlite_file(path.as_ref(), &StoreConfig::default()).await?;
        Ok(Self::with_backend(backend, key))
    }

    /// Must run inside a Tokio runtime: it starts the group-commit writer task.
    fn with_backend(backend: Backend, key: SealingKey) -> Self {
        let (writer, release_writer) = audit::spawn_group_writer(backend.clone());
        Self {
            backend,
            key: Arc::new(key),
            writer,
            release_writer,
            commitments: Arc::new(cifer_core::CommitmentsCache::new(COMMITMENTS_CACHE)),
            rows: Arc::default(),
        }
    }

    /// Which database this store runs on.
    #[must_use]
    pub const fn backend_kind(&self) -> BackendKind {
        self.backend.kind()
    }

    /// A round trip to the database, for `/health`.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn ping(&self) -> Result<()> {
        dispatch!(&self.backend, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.release_writer.notify_one();
        self.backend.close().await;
    }
}

pub(crate) fn to_i64(what: &'static str, value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { what, value })
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
