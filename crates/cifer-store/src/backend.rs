//! The two database backends and what each one is opened with.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::error::{Result, StoreError};

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// Which database a [`Store`](super::Store) runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendKind {
    /// An SQLite file (the embedded default).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Pool settings. The defaults suit one node process.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StoreConfig {
    /// Maximum pooled connections.
    pub max_connections: u32,
    /// How long to wait for a pooled connection.
    pub acquire_timeout: Duration,
    /// SQLite: how long a writer waits for the write lock before `SQLITE_BUSY`.
    pub busy_timeout: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(10),
            busy_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Backend {
    pub(crate) async fn connect(url: &str, config: &StoreConfig) -> Result<Self> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?;
            Self::sqlite(options, config).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::postgres(PgConnectOptions::from_str(url)?, config).await
        } else {
            let scheme = url.split_once(':').map_or("", |(s, _)| s);
            Err(StoreError::UnsupportedUrl { scheme: scheme.chars().take(32).collect() })
        }
    }

    pub(crate) async fn connect_sqlite_file(path: &Path, config: &StoreConfig) -> Result<Self> {
        Self::sqlite(SqliteConnectOptions::new().filename(path), config).await
    }

    async fn sqlite(options: SqliteConnectOptions, config: &StoreConfig) -> Result<Self> {
        // Every connection gets these pragmas. WAL + synchronous=FULL: a commit returns
        // only after the WAL is fsynced, so an acknowledged write survives a crash or
        // power loss. secure_delete zeroes freed content in the database file. temp_store
        // = MEMORY: SQLite's temporary files (transient tables and journals) stay in
        // memory. With the default, the writer created and unlinked an `etilqs_*` file
        // in /var/tmp every few commits under load (seen with strace): data of the
        // transaction in a file outside the state directory, and an open, fstat, unlink
        // and close each time.
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(config.busy_timeout)
            .pragma("secure_delete", "ON")
            .pragma("temp_store", "MEMORY");
        // No ping before each acquire: the database is a file in this process, a
        // connection cannot drop, and the ping is a round trip to the connection's worker
        // thread on every statement batch (a failing connection still errors on use).
        let pool = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(config.acquire_timeout)
            .connect_with(options)
            .await?;
        SQLITE_MIGRATOR.run(&pool).await?;
        Ok(Self::Sqlite(pool))
    }

    async fn postgres(options: PgConnectOptions, config: &StoreConfig) -> Result<Self> {
        // PostgreSQL's defaults are durable; pin synchronous_commit in case the server's
        // default was relaxed, since an acknowledged fragment must survive a crash.
        let options = options.options([("synchronous_commit", "on")]);
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(config.acquire_timeout)
            .connect_with(options)
            .await?;
        POSTGRES_MIGRATOR.run(&pool).await?;
        Ok(Self::Postgres(pool))
    }

    pub(crate) const fn kind(&self) -> BackendKind {
        match self {
            Self::Sqlite(_) => BackendKind::Sqlite,
            Self::Postgres(_) => BackendKind::Postgres,
        }
    }

    pub(crate) async fn close(&self) {
        match self {
            Self::Sqlite(p) => p.close().await,
            Self::Postgres(p) => p.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
    use super::{Backend, StoreConfig};

    /// The pragmas the store's guarantees rest on, read back from a pooled connection:
    /// WAL (2 is FULL for `synchronous`), secure_delete, and temp_store = MEMORY (2), so
    /// that no transient file with a transaction's rows is written outside the database.
    #[tokio::test]
    async fn sqlite_connections_carry_the_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let Backend::Sqlite(pool) =
            Backend::connect_sqlite_file(&dir.path().join("s.db"), &StoreConfig::default())
                .await
                .unwrap()
        else {
            panic!("not SQLite");
        };
        let mut conn = pool.acquire().await.unwrap();
        for (pragma, want) in [
            ("journal_mode", "wal"),
            ("synchronous", "2"),
            ("secure_delete", "1"),
            ("temp_store", "2"),
        ] {
            let got: String =
                sqlx::query_scalar(&format!("SELECT CAST({pragma} AS TEXT) FROM pragma_{pragma}"))
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap();
            assert_eq!(got, want, "PRAGMA {pragma}");
        }
    }
}
