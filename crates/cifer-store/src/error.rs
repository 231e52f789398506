//! The one error type of the storage layer.

use std::path::PathBuf;

/// Result alias of the storage layer.
pub type Result<T, E = StoreError> = core::result::Result<T, E>;

/// Everything the storage layer can refuse or fail with.
///
/// No variant carries fragment bytes, key bytes or a database URL (which may hold a
/// password): every one of them is safe to log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed (connection, I/O, constraint, busy). Usually transient for
    /// PostgreSQL connection errors; the caller may retry the whole operation.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// Applying the embedded migrations failed (or the database holds a migration this
    /// build does not know).
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// The URL is neither `sqlite:` nor `postgres://`/`postgresql://`. Only the scheme is
    /// kept, never the rest of the URL.
    #[error("unsupported database URL scheme {scheme:?} (expected sqlite: or postgres://)")]
    UnsupportedUrl {
        /// The scheme that was given.
        scheme: String,
    },

    /// A different fragment is already stored for this (chain, secret). Nothing was
    /// overwritten.
    #[error(
        "a different fragment is already stored for chain {chain_id} secret 0x{}",
        hex::encode(secret_id)
    )]
    Conflict {
        /// Chain of the refused record.
        chain_id: u64,
        /// Secret of the refused record.
        secret_id: [u8; 32],
    },

    /// The fragment does not verify against the commitments given with it; nothing was
    /// stored.
    #[error("fragment does not verify against its commitments: {0}")]
    InvalidFragment(#[source] cifer_core::Error),

    /// A stored fragment row failed authentication or does not parse: the sealed column,
    /// its nonce, the columns bound into the associated data, or the sealing key differ
    /// from what was written. The row is left as it is.
    #[error(
        "stored fragment for chain {chain_id} secret 0x{} is corrupt: {reason}",
        hex::encode(secret_id)
    )]
    Corrupt {
        /// Chain of the corrupt row.
        chain_id: u64,
        /// Secret of the corrupt row.
        secret_id: [u8; 32],
        /// What failed (never secret data).
        reason: &'static str,
    },

    /// The audit hash chain is broken at `seq` (the first bad entry).
    #[error("audit log broken at seq {seq}: {fault}")]
    AuditChain {
        /// Sequence number of the first entry that does not verify.
        seq: u64,
        /// What is wrong with it.
        fault: AuditFault,
    },

    /// An audit code longer than [`MAX_AUDIT_CODE_LEN`](crate::MAX_AUDIT_CODE_LEN)
    /// bytes.
    #[error("audit code of {len} bytes is too long")]
    AuditCodeTooLong {
        /// Its length in bytes.
        len: usize,
    },

    /// The commit of a group whose outcome had already been handed out
    /// ([`Store::count_and_decide_claim`](crate::Store::count_and_decide_claim)) failed:
    /// nothing of the call was written. Carries the database error's text.
    #[error("the decided claim could not be committed: {0}")]
    Commit(String),

    /// The store's group-commit writer task is gone (the runtime is shutting down).
    #[error("the store's writer task has stopped")]
    WriterStopped,

    /// A `u64` (chain id, block number) above `i64::MAX`, which neither SQLite nor
    /// PostgreSQL stores as a signed 64-bit integer.
    #[error("{what} {value} is out of the storable range (at most 2^63 - 1)")]
    OutOfRange {
        /// Which value.
        what: &'static str,
        /// The value given.
        value: u64,
    },

    /// The sealing key file allows access to group or others (`mode & 0o077 != 0`).
    #[error("sealing key file {} has mode {mode:o}; it must not be accessible to group or others (chmod 600)", path.display())]
    KeyFilePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// The sealing key file is not `CIFER-SEALING-KEY-1:` followed by 64 lowercase hex
    /// digits and an optional newline, or is not a regular file.
    #[error("sealing key file {} is malformed: {reason}", path.display())]
    KeyFileFormat {
        /// The key file.
        path: PathBuf,
        /// What is wrong (never key material).
        reason: &'static str,
    },

    /// Reading or creating the sealing key file failed; `generate` on an existing file
    /// fails here with [`std::io::ErrorKind::AlreadyExists`].
    #[error("sealing key file {}: {source}", path.display())]
    KeyFileIo {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The operating system's random number generator failed.
    #[error("the OS random number generator failed")]
    Rng,

    /// AES-256-GCM refused to seal (cannot happen for fragment-sized inputs).
    #[error("sealing failed")]
    Seal,
}

/// What is wrong with an audit entry, in [`StoreError::AuditChain`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditFault {
    /// Sequence numbers are not contiguous from 1: `seq` was expected, another was found
    /// (an entry was deleted or inserted out of order).
    #[error("expected seq {expected}, found seq {found}")]
    Gap {
        /// The sequence number that should come next.
        expected: u64,
        /// The one found in its place (the error's `seq` is `expected`).
        found: u64,
    },
    /// The stored `prev_hash` is not the previous entry's hash.
    #[error("prev_hash does not match the previous entry")]
    PrevHash,
    /// The stored hash is not the hash of the entry's contents.
    #[error("hash does not match the entry's contents")]
    Hash,
    /// A column has the wrong length or an unknown value (kind, negative number).
    #[error("malformed row")]
    Malformed,
}
