//! Real databases for tests (feature `test-utils`): an SQLite file in a temp dir, or a
//! fresh PostgreSQL database per test (created through `CIFER_TEST_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`, dropped afterwards even on failure).

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_panics_doc,
    unreachable_pub,
    reason = "test support"
)]

use std::str::FromStr;
use std::time::Duration;

use crate::{FragmentRecord, SealingKey, Store};
use cifer_core::fragment::split;
use cifer_core::{Commitments, Fragment, Seed};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use sqlx::{ConnectOptions, Connection};

pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A bound value for raw SQL.
#[derive(Clone, Debug)]
pub enum Val {
    I64(i64),
    Bytes(Vec<u8>),
    Text(String),
}

pub enum Db {
    Sqlite { _dir: tempfile::TempDir, url: String },
    Postgres { admin: Box<PgConnectOptions>, name: String, url: String },
}

impl Db {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("shard.db").display());
        Self::Sqlite { _dir: dir, url }
    }

    /// A fresh database, or `None` when `CIFER_SKIP_PG=1`. Panics with a clear message if
    /// the server is unreachable.
    pub async fn postgres() -> Option<Self> {
        if std::env::var("CIFER_SKIP_PG").is_ok_and(|v| v == "1") {
            eprintln!("CIFER_SKIP_PG=1: skipping a PostgreSQL test");
            return None;
        }
        let base = std::env::var("CIFER_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.into());
        let admin = PgConnectOptions::from_str(&base).unwrap();
        let mut conn = match tokio::time::timeout(Duration::from_secs(5), admin.connect()).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => panic!(
                "PostgreSQL at {base} is unreachable ({e}); start it, point CIFER_TEST_PG_URL \
                 at one, or set CIFER_SKIP_PG=1 to skip the PostgreSQL tests"
            ),
            Err(_) => panic!(
                "PostgreSQL at {base} did not answer within 5 s; start it, point \
                 CIFER_TEST_PG_URL at one, or set CIFER_SKIP_PG=1 to skip the PostgreSQL tests"
            ),
        };
        let mut rnd = [0u8; 8];
        getrandom::fill(&mut rnd).unwrap();
        let name = format!("cifer_test_{}", hex::encode(rnd));
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        let (prefix, _) = base.split_once('?').map_or((base.as_str(), ""), |(p, q)| (p, q));
        let root = prefix.rsplit_once('/').map_or(prefix, |(r, _)| r);
        let url = format!("{root}/{name}");
        Some(Self::Postgres { admin: Box::new(admin), name, url })
    }

    pub fn url(&self) -> &str {
        match self {
            Self::Sqlite { url, .. } | Self::Postgres { url, .. } => url,
        }
    }

    pub async fn open(&self, key: &SealingKey) -> Store {
        Store::open(self.url(), key.clone()).await.unwrap()
    }

    /// A separate raw connection pool, playing the attacker with database access.
    pub async fn raw(&self) -> Raw {
        match self {
            Self::Sqlite { url, .. } => Raw::Sqlite(
                SqlitePool::connect_with(SqliteConnectOptions::from_str(url).unwrap())
                    .await
                    .unwrap(),
            ),
            Self::Postgres { url, .. } => {
                Raw::Postgres(PgPoolOptions::new().max_connections(2).connect(url).await.unwrap())
            }
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Self::Postgres { admin, name, .. } = self {
            let (admin, name) = ((**admin).clone(), name.clone());
            // A thread with its own runtime, so the database is dropped even when the
            // test panicked inside the test runtime.
            let _ = std::thread::spawn(move || {
                let rt =
                    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async {
                    if let Ok(mut c) = admin.connect().await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut c)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}

pub enum Raw {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

macro_rules! bind_all {
    ($q:expr, $vals:expr) => {{
        let mut q = $q;
        for v in $vals {
            q = match v {
                Val::I64(i) => q.bind(*i),
                Val::Bytes(b) => q.bind(b.clone()),
                Val::Text(t) => q.bind(t.clone()),
            };
        }
        q
    }};
}

impl Raw {
    /// Runs `sql` (with `$n` placeholders) and returns the rows affected.
    pub async fn exec(&self, sql: &str, vals: &[Val]) -> u64 {
        self.try_exec(sql, vals).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Like `exec` but returns the error instead of panicking.
    pub async fn try_exec(&self, sql: &str, vals: &[Val]) -> Result<u64, sqlx::Error> {
        match self {
            Self::Sqlite(p) => {
                bind_all!(sqlx::query(sql), vals).execute(p).await.map(|r| r.rows_affected())
            }
            Self::Postgres(p) => {
                bind_all!(sqlx::query(sql), vals).execute(p).await.map(|r| r.rows_affected())
            }
        }
    }

    /// One blob column of one row.
    pub async fn blob(&self, sql: &str, vals: &[Val]) -> Vec<u8> {
        use sqlx::Row;
        match self {
            Self::Sqlite(p) => bind_all!(sqlx::query(sql), vals).fetch_one(p).await.unwrap().get(0),
            Self::Postgres(p) => {
                bind_all!(sqlx::query(sql), vals).fetch_one(p).await.unwrap().get(0)
            }
        }
    }

    /// Drops the append-only triggers, as an attacker with database access can.
    pub async fn drop_audit_triggers(&self) {
        match self {
            Self::Sqlite(_) => {
                self.exec("DROP TRIGGER audit_log_no_update", &[]).await;
                self.exec("DROP TRIGGER audit_log_no_delete", &[]).await;
            }
            Self::Postgres(_) => {
                self.exec("DROP TRIGGER audit_log_no_update ON audit_log", &[]).await;
                self.exec("DROP TRIGGER audit_log_no_truncate ON audit_log", &[]).await;
            }
        }
    }

    /// Makes every insert into the audit log fail (`true`) or work again (`false`): a
    /// database that refuses a group's records after its claims went in.
    pub async fn refuse_audit_inserts(&self, refuse: bool) {
        match (self, refuse) {
            (Self::Sqlite(_), true) => {
                self.exec(
                    "CREATE TRIGGER audit_log_test_refuse BEFORE INSERT ON audit_log \
                     BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
                    &[],
                )
                .await;
            }
            (Self::Sqlite(_), false) => {
                self.exec("DROP TRIGGER audit_log_test_refuse", &[]).await;
            }
            (Self::Postgres(_), true) => {
                self.exec(
                    "CREATE FUNCTION audit_log_test_refuse() RETURNS trigger LANGUAGE plpgsql \
                     AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
                    &[],
                )
                .await;
                self.exec(
                    "CREATE TRIGGER audit_log_test_refuse BEFORE INSERT ON audit_log \
                     FOR EACH ROW EXECUTE FUNCTION audit_log_test_refuse()",
                    &[],
                )
                .await;
            }
            (Self::Postgres(_), false) => {
                self.exec("DROP TRIGGER audit_log_test_refuse ON audit_log", &[]).await;
                self.exec("DROP FUNCTION audit_log_test_refuse()", &[]).await;
            }
        }
    }

    pub async fn close(&self) {
        match self {
            Self::Sqlite(p) => p.close().await,
            Self::Postgres(p) => p.close().await,
        }
    }
}

pub fn key() -> SealingKey {
    let mut k = [0u8; 32];
    getrandom::fill(&mut k).unwrap();
    SealingKey::from_bytes(k)
}

/// A fresh 3-of-5 sharing of a random seed.
pub fn sharing() -> (Commitments, Vec<Fragment>) {
    let seed = Seed::generate_os().unwrap();
    split(&seed, 3, 5, &mut cifer_core::os_rng()).unwrap()
}

pub fn secret(n: u8) -> [u8; 32] {
    let mut id = [0u8; 32];
    id[31] = n;
    id[0] = 0xa5;
    id
}

pub fn record(chain_id: u64, secret_id: [u8; 32], c: &Commitments, f: &Fragment) -> FragmentRecord {
    FragmentRecord {
        chain_id,
        secret_id,
        ek_hash: cifer_core::keccak256(&secret_id),
        commitments: c.clone(),
        fragment: f.clone(),
        bundle_signature: None,
    }
}

/// Declares `sqlite_<name>` and `pg_<name>` tokio tests running the scenario `name(&Db)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = $crate::testing::Db::sqlite();
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(db) = $crate::testing::Db::postgres().await else { return };
                    super::$name(&db).await;
                }
            )*
        }
    };
}
