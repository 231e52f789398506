//! The audit log: hash-chained and append-only.
//!
//! Entry `seq` (from 1) stores its contents, `prev_hash` (the hash of entry `seq - 1`,
//! [`GENESIS_HASH`] for entry 1) and
//!
//! ```text
//! hash  = keccak256(prev_hash (32) || BE64(seq) || entry)
//! entry = kind (1) || BE64(chain_id) || secret_id (32) || actor (20) || digest (32)
//!         || BE64(at_unix_ms) || BE32(len(code)) || code (UTF-8)
//! ```
//!
//! [`audit_hash`] computes it, so an auditor can recheck an exported log without this
//! crate's database code. Editing, inserting or deleting any entry is detected by
//! [`Store::verify_audit`] at the first entry affected. Dropping entries from the **end**
//! leaves a valid shorter chain: publish or send [`Store::audit_head`] elsewhere
//! (another node, a log service, the chain) to detect that.

use cifer_core::keccak256;
use sqlx::Row;

use super::error::{AuditFault, Result, StoreError};
use super::{Store, now_ms, to_i64};

/// `prev_hash` of the first entry.
pub const GENESIS_HASH: [u8; 32] = [0; 32];
/// Longest accepted [`AuditEntry::code`], in bytes.
pub const MAX_AUDIT_CODE_LEN: usize = 256;
/// Rows read per query by [`Store::verify_audit`].
const VERIFY_PAGE: u32 = 1000;

/// What an audit entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum AuditKind {
    /// A fragment was released.
    Release = 1,
    /// A request was refused.
    Refusal = 2,
    /// A fragment was stored.
    Store = 3,
    /// A fragment was deleted (shred).
    Delete = 4,
    /// The black box derived a stream key (or plaintext, thin mode) for a requester.
    Decrypt = 5,
    /// The black box made a creation bundle for a new secret.
    Create = 6,
}

impl AuditKind {
    /// The byte in the encoding and the database.
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The kind of a byte, if known.
    #[must_use]
    pub const fn from_u8(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::Release),
            2 => Some(Self::Refusal),
            3 => Some(Self::Store),
            4 => Some(Self::Delete),
            5 => Some(Self::Decrypt),
            6 => Some(Self::Create),
            _ => None,
        }
    }
}

/// One event to record. Holds no secret: `digest` is a hash (of the request, of the
/// commitments), `code` a stable short code such as `released` or `E_REPLAY`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// What happened.
    pub kind: AuditKind,
    /// Chain of the secret concerned.
    pub chain_id: u64,
    /// The secret concerned.
    pub secret_id: [u8; 32],
    /// Who asked: the requester, black box or contract address.
    pub actor: [u8; 20],
    /// A digest identifying the request or record (e.g. the EIP-712 digest).
    pub digest: [u8; 32],
    /// Outcome code, at most [`MAX_AUDIT_CODE_LEN`] bytes.
    pub code: String,
}

/// A stored audit entry with its place in the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position, from 1.
    pub seq: u64,
    /// When it was appended (Unix milliseconds, node clock), covered by the hash.
    pub at_unix_ms: u64,
    /// The event.
    pub entry: AuditEntry,
    /// Hash of entry `seq - 1` ([`GENESIS_HASH`] for seq 1).
    pub prev_hash: [u8; 32],
    /// This entry's hash.
    pub hash: [u8; 32],
}

/// The end of the chain: `seq` 0 and [`GENESIS_HASH`] when the log is empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditHead {
    /// Sequence number of the last entry.
    pub seq: u64,
    /// Its hash.
    pub hash: [u8; 32],
}

/// The canonical encoding of an entry (see the module documentation).
#[must_use]
pub fn encode_entry(entry: &AuditEntry, at_unix_ms: u64) -> Vec<u8> {
    let code = entry.code.as_bytes();
    let mut out = Vec::with_capacity(1 + 8 + 32 + 20 + 32 + 8 + 4 + code.len());
    out.push(entry.kind.as_u8());
    out.extend_from_slice(&entry.chain_id.to_be_bytes());
    out.extend_from_slice(&entry.secret_id);
    out.extend_from_slice(&entry.actor);
    out.extend_from_slice(&entry.digest);
    out.extend_from_slice(&at_unix_ms.to_be_bytes());
    // Codes are at most MAX_AUDIT_CODE_LEN bytes when appended; saturate for others.
    out.extend_from_slice(&u32::try_from(code.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(code);
    out
}

/// `keccak256(prev_hash || BE64(seq) || encode_entry(entry, at_unix_ms))`.
#[must_use]
pub fn audit_hash(prev_hash: &[u8; 32], seq: u64, entry: &AuditEntry, at_unix_ms: u64) -> [u8; 32] {
    let encoded = encode_entry(entry, at_unix_ms);
    let mut data = Vec::with_capacity(32 + 8 + encoded.len());
    data.extend_from_slice(prev_hash);
    data.extend_from_slice(&seq.to_be_bytes());
    data.extend_from_slice(&encoded);
    keccak256(&data)
}

const SELECT_COLUMNS: &str = "SELECT seq, kind, chain_id, secret_id, actor, digest, code, at_ms, prev_hash, hash \
     FROM audit_log";

/// Columns as read, before the checks that turn them into an [`AuditRecord`].
struct RawAuditRow {
    seq: i64,
    kind: i16,
    chain_id: i64,
    secret_id: Vec<u8>,
    actor: Vec<u8>,
    digest: Vec<u8>,
    code: String,
    at_ms: i64,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

macro_rules! raw_audit_row {
    ($r:expr) => {
        RawAuditRow {
            seq: $r.try_get("seq")?,
            kind: $r.try_get("kind")?,
            chain_id: $r.try_get("chain_id")?,
            secret_id: $r.try_get("secret_id")?,
            actor: $r.try_get("actor")?,
            digest: $r.try_get("digest")?,
            code: $r.try_get("code")?,
            at_ms: $r.try_get("at_ms")?,
            prev_hash: $r.try_get("prev_hash")?,
            hash: $r.try_get("hash")?,
        }
    };
}

impl RawAuditRow {
    /// Parses the columns; `seq` of the error is the row's own (or 0 if even that is bad).
    fn parse(self) -> Result<AuditRecord> {
        let seq = u64::try_from(self.seq).unwrap_or(0);
        let bad = StoreError::AuditChain { seq, fault: AuditFault::Malformed };
        let kind = u8::try_from(self.kind).ok().and_then(AuditKind::from_u8);
        let (Some(kind), Ok(chain_id), Ok(at_unix_ms)) =
            (kind, u64::try_from(self.chain_id), u64::try_from(self.at_ms))
        else {
            return Err(bad);
        };
        let (Ok(secret_id), Ok(actor), Ok(digest), Ok(prev_hash), Ok(hash)) = (
            <[u8; 32]>::try_from(self.secret_id.as_slice()),
            <[u8; 20]>::try_from(self.actor.as_slice()),
            <[u8; 32]>::try_from(self.digest.as_slice()),
            <[u8; 32]>::try_from(self.prev_hash.as_slice()),
            <[u8; 32]>::try_from(self.hash.as_slice()),
        ) else {
            return Err(bad);
        };
        if seq == 0 {
            return Err(bad);
        }
        Ok(AuditRecord {
            seq,
            at_unix_ms,
            entry: AuditEntry { kind, chain_id, secret_id, actor, digest, code: self.code },
            prev_hash,
            hash,
        })
    }
}

/// PostgreSQL: blocks other writers of the log (and other appenders) but not readers.
const LOCK_AUDIT: &str = "LOCK TABLE audit_log IN EXCLUSIVE MODE";

/// Inside a transaction `$tx` that holds the log's write lock: the head's `(seq, hash)`,
/// `(0, GENESIS_HASH)` for an empty log.
macro_rules! read_head_locked {
    ($tx:ident) => {{
        let head = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *$tx)
            .await?;
        match head {
            None => (0u64, GENESIS_HASH),
            Some(r) => parse_head(r.try_get("seq")?, r.try_get("hash")?)?,
        }
    }};
}

/// The head's `(seq, hash)` from its columns, `(0, GENESIS_HASH)` when both are NULL (an
/// empty log, as a scalar subquery reports it).
fn parse_head(seq: Option<i64>, hash: Option<Vec<u8>>) -> Result<(u64, [u8; 32])> {
    match (seq, hash) {
        (None, None) => Ok((0, GENESIS_HASH)),
        (seq, hash) => {
            let seq_u = seq.and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
            let hash = hash.and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok());
            match hash {
                Some(hash) if seq_u > 0 => Ok((seq_u, hash)),
                _ => Err(StoreError::AuditChain { seq: seq_u, fault: AuditFault::Malformed }),
            }
        }
    }
}

/// SQLite: the head's columns appended to a claim's `RETURNING`, read in the same
/// statement as the claims (the transaction holds the write lock from `BEGIN IMMEDIATE`,
/// so the head cannot move before the records are appended). One statement less per group.
const HEAD_RETURNING: &str = ", (SELECT seq FROM audit_log ORDER BY seq DESC LIMIT 1) AS head_seq, \
     (SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1) AS head_hash";

/// Inside a transaction `$tx` that holds the log's write lock (SQLite `BEGIN IMMEDIATE`,
/// PostgreSQL [`LOCK_AUDIT`]): reads the head, inserts `$entry` after it, does not commit.
/// Evaluates to `(seq, prev_hash, hash)`.
macro_rules! append_locked {
    ($tx:ident, $entry:expr, $chain:expr, $at_ms:expr, $at_unix_ms:expr) => {{
        let entry: &AuditEntry = $entry;
        let (prev_seq, prev_hash) = read_head_locked!($tx);
        let seq = prev_seq + 1;
        let hash = audit_hash(&prev_hash, seq, entry, $at_unix_ms);
        sqlx::query(
            "INSERT INTO audit_log (seq, kind, chain_id, secret_id, actor, digest, code, \
             at_ms, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(to_i64("seq", seq)?)
        .bind(i16::from(entry.kind.as_u8()))
        .bind($chain)
        .bind(entry.secret_id.as_slice())
        .bind(entry.actor.as_slice())
        .bind(entry.digest.as_slice())
        .bind(entry.code.as_str())
        .bind($at_ms)
        .bind(prev_hash.as_slice())
        .bind(hash.as_slice())
        .execute(&mut *$tx)
        .await?;
        (seq, prev_hash, hash)
    }};
}

impl Store {
    /// Appends `entry` to the audit log, durably; returns it with its `seq` and hash.
    /// Appends from any number of tasks or processes are serialized, so the chain never
    /// forks.
    ///
    /// # Errors
    /// [`StoreError::AuditCodeTooLong`], [`StoreError::OutOfRange`] for a chain id above
    /// `2^63 - 1`, [`StoreError::AuditChain`] if the current head row is malformed,
    /// [`StoreError::Database`].
    pub async fn append_audit(&self, entry: AuditEntry) -> Result<AuditRecord> {
        if entry.code.len() > MAX_AUDIT_CODE_LEN {
            return Err(StoreError::AuditCodeTooLong { len: entry.code.len() });
        }
        let chain = to_i64("chain_id", entry.chain_id)?;
        let at_ms = now_ms();
        let at_unix_ms = u64::try_from(at_ms).unwrap_or(0);

        // The head is read and the next entry written inside one transaction that holds
        // the log's write lock, so no other append can slip in between.
        let (seq, prev_hash, hash) = match &self.backend {
            super::backend::Backend::Sqlite(pool) => {
                // IMMEDIATE takes SQLite's single write lock before the read.
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let appended = append_locked!(tx, &entry, chain, at_ms, at_unix_ms);
                tx.commit().await?;
                appended
            }
            super::backend::Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                // EXCLUSIVE blocks other writers (and other appenders) but not readers.
                sqlx::query(LOCK_AUDIT).execute(&mut *tx).await?;
                let appended = append_locked!(tx, &entry, chain, at_ms, at_unix_ms);
                tx.commit().await?;
                appended
            }
        };
        Ok(AuditRecord { seq, at_unix_ms, entry, prev_hash, hash })
    }

    /// Claims the replay key `key` (as [`claim_replay`](Self::claim_replay)) and, only if
    /// this is its first claim, appends the entry that `decide` returns, in **one**
    /// transaction with one durable commit: either both are durable when this returns
    /// `Some`, or neither was written. Returns `None`, appending nothing, if the key was
    /// already claimed (the caller audits that refusal as it sees fit).
    ///
    /// **Group commit.** Calls are queued to one writer task per [`Store`], which takes
    /// whatever is queued (at most [`MAX_GROUP`] calls) into one transaction and one
    /// commit, then answers each call: concurrent calls share one flush. Each outcome is
    /// still exact: claims are decided in queue order, so of identical keys in one group
    /// the first wins, and against the database as always (`ON CONFLICT DO NOTHING`). If
    /// the group's transaction fails, each call is retried alone, so one call's error
    /// never becomes another's.
    ///
    /// `decide` runs once, only after the claim succeeded, on the writer task while its
    /// transaction is open, so it must be quick and must not block (e.g. a rate-limit
    /// check deciding between a release and a refusal record).
    ///
    /// # Errors
    /// As [`claim_replay`](Self::claim_replay) and [`append_audit`](Self::append_audit),
    /// and [`StoreError::WriterStopped`]; on an error nothing was written for this call
    /// (the claim is not kept).
    pub async fn claim_replay_and_append_audit<F>(
        &self,
        key: [u8; 32],
        expires_at_block: u64,
        decide: F,
    ) -> Result<Option<AuditRecord>>
    where
        F: FnOnce() -> AuditEntry + Send + 'static,
    {
        match self.claim_in_group(key, expires_at_block, None, decide).await? {
            Claim::Claimed(record) => Ok(Some(record)),
            Claim::Replayed | Claim::RateLimited => Ok(None),
        }
    }

    /// [`count_request`](Self::count_request) then
    /// [`claim_replay_and_append_audit`](Self::claim_replay_and_append_audit), in the
    /// same group transaction (one durable commit for both, instead of two): the request
    /// is counted against `rate` first, whatever follows; over the limit it is
    /// [`Claim::RateLimited`] and not claimed; otherwise it is claimed as
    /// `claim_replay_and_append_audit` would.
    ///
    /// # Errors
    /// As [`claim_replay_and_append_audit`](Self::claim_replay_and_append_audit); on an
    /// error nothing was written for this call (not even the count).
    pub async fn count_and_claim_replay<F>(
        &self,
        rate: RateCheck,
        key: [u8; 32],
        expires_at_block: u64,
        decide: F,
    ) -> Result<Claim>
    where
        F: FnOnce() -> AuditEntry + Send + 'static,
    {
        self.claim_in_group(key, expires_at_block, Some(rate), decide).await
    }

    /// [`count_and_claim_replay`](Self::count_and_claim_replay) in two steps: returns as
    /// soon as the outcome is **decided**, with a [`Durable`] that resolves once it is
    /// **committed**. A claim is decided when its group's transaction has inserted the key
    /// and chained its record while holding the write lock (SQLite `BEGIN IMMEDIATE`,
    /// PostgreSQL the replay row's lock), so no other claim of the same key, by this
    /// process or another replica, can win meanwhile; the commit only makes it durable.
    /// If that commit fails, [`Durable::wait`] returns the error and nothing of the call
    /// was written (the claim is not kept; it is not retried either).
    ///
    /// This lets a caller start work that has no effect outside it (the black box asks
    /// the nodes for fragments sealed to a key only it holds) while the commit is flushed,
    /// provided nothing that depends on the record leaves before `Durable::wait` returns
    /// `Ok`. Outcomes other than a claim, and claims whose group could not be decided at
    /// once, come back already committed.
    ///
    /// # Errors
    /// As [`count_and_claim_replay`](Self::count_and_claim_replay).
    pub async fn count_and_decide_claim<F>(
        &self,
        rate: RateCheck,
        key: [u8; 32],
        expires_at_block: u64,
        decide: F,
    ) -> Result<(Claim, Durable)>
    where
        F: FnOnce() -> AuditEntry + Send + 'static,
    {
        let (answer, decided) = self.queue_claim(key, expires_at_block, Some(rate), decide).await?;
        match decided.await {
            Ok(claim) => Ok((claim, Durable(Some(answer)))),
            // Not announced early: the final answer is the outcome, already committed.
            Err(_) => {
                let claim = answer.await.map_err(|_| StoreError::WriterStopped)??;
                Ok((claim, Durable(None)))
            }
        }
    }

    async fn claim_in_group<F>(
        &self,
        key: [u8; 32],
        expires_at_block: u64,
        rate: Option<RateCheck>,
        decide: F,
    ) -> Result<Claim>
    where
        F: FnOnce() -> AuditEntry + Send + 'static,
    {
        let (answer, decided) = self.queue_claim(key, expires_at_block, rate, decide).await?;
        drop(decided);
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Queues one claim to the writer: the receiver of its committed outcome and that of
    /// its early, decided one (which is dropped unsent if there is none).
    async fn queue_claim<F>(
        &self,
        key: [u8; 32],
        expires_at_block: u64,
        rate: Option<RateCheck>,
        decide: F,
    ) -> Result<(
        tokio::sync::oneshot::Receiver<Result<Claim>>,
        tokio::sync::oneshot::Receiver<Claim>,
    )>
    where
        F: FnOnce() -> AuditEntry + Send + 'static,
    {
        let expires = to_i64("expires_at_block", expires_at_block)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let (early, decided) = tokio::sync::oneshot::channel();
        let job = GroupJob {
            key,
            expires,
            rate,
            decide: Some(Box::new(decide)),
            entry: None,
            early: Some(early),
            announced: false,
            reply,
        };
        self.writer.send(job).await.map_err(|_| StoreError::WriterStopped)?;
        Ok((answer, decided))
    }

    /// Up to `limit` entries with `seq > after_seq`, in order (for export). Rows are
    /// parsed but not verified.
    ///
    /// # Errors
    /// [`StoreError::AuditChain`] with [`AuditFault::Malformed`] for a row that does not
    /// parse; [`StoreError::Database`].
    pub async fn read_audit(&self, after_seq: u64, limit: u32) -> Result<Vec<AuditRecord>> {
        self.read_audit_raw(after_seq, limit).await?.into_iter().map(RawAuditRow::parse).collect()
    }

    async fn read_audit_raw(&self, after_seq: u64, limit: u32) -> Result<Vec<RawAuditRow>> {
        // Sequence numbers are positive i64s: nothing comes after one beyond them.
        let Ok(after) = i64::try_from(after_seq) else { return Ok(Vec::new()) };
        let sql = format!("{SELECT_COLUMNS} WHERE seq > $1 ORDER BY seq LIMIT $2");
        Ok(dispatch!(&self.backend, pool => {
            let rows = sqlx::query(&sql)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?;
            let mut raw = Vec::with_capacity(rows.len());
            for r in &rows {
                raw.push(raw_audit_row!(r));
            }
            raw
        }))
    }

    /// The last entry's `seq` and hash, unverified.
    ///
    /// # Errors
    /// [`StoreError::AuditChain`] if the head row is malformed; [`StoreError::Database`].
    pub async fn audit_head(&self) -> Result<AuditHead> {
        let sql = format!("{SELECT_COLUMNS} ORDER BY seq DESC LIMIT 1");
        let raw = dispatch!(&self.backend, pool => {
            match sqlx::query(&sql).fetch_optional(pool).await? {
                Some(r) => Some(raw_audit_row!(r)),
                None => None,
            }
        });
        Ok(match raw {
            None => AuditHead { seq: 0, hash: GENESIS_HASH },
            Some(raw) => {
                let record = raw.parse()?;
                AuditHead { seq: record.seq, hash: record.hash }
            }
        })
    }

    /// Recomputes the whole chain from entry 1 and returns its head.
    ///
    /// # Errors
    /// [`StoreError::AuditChain`] naming the first entry that is missing
    /// ([`AuditFault::Gap`]), does not link to its predecessor ([`AuditFault::PrevHash`]),
    /// does not hash to its stored hash ([`AuditFault::Hash`]) or does not parse
    /// ([`AuditFault::Malformed`]); [`StoreError::Database`].
    pub async fn verify_audit(&self) -> Result<AuditHead> {
        let mut head = AuditHead { seq: 0, hash: GENESIS_HASH };
        loop {
            let page = self.read_audit_raw(head.seq, VERIFY_PAGE).await?;
            if page.is_empty() {
                return Ok(head);
            }
            for raw in page {
                let expected = head.seq + 1;
                let fail = |fault| StoreError::AuditChain { seq: expected, fault };
                let record = raw.parse().map_err(|_| fail(AuditFault::Malformed))?;
                if record.seq != expected {
                    return Err(fail(AuditFault::Gap { expected, found: record.seq }));
                }
                if record.prev_hash != head.hash {
                    return Err(fail(AuditFault::PrevHash));
                }
                if audit_hash(&record.prev_hash, record.seq, &record.entry, record.at_unix_ms)
                    != record.hash
                {
                    return Err(fail(AuditFault::Hash));
                }
                head = AuditHead { seq: record.seq, hash: record.hash };
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Group commit of replay claims with their audit records

/// Most calls of [`Store::claim_replay_and_append_audit`] committed in one transaction.
pub const MAX_GROUP: usize = 64;

type Decide = Box<dyn FnOnce() -> AuditEntry + Send>;

/// The outcome of [`Store::count_and_claim_replay`].
#[derive(Clone, Debug)]
pub enum Claim {
    /// First claim of the key: the record appended with it.
    Claimed(AuditRecord),
    /// The key was claimed before; nothing appended.
    Replayed,
    /// Over the rate limit; not claimed, nothing appended.
    RateLimited,
}

/// A rate-limit check of [`Store::count_and_claim_replay`]: as
/// [`Store::count_request`]`(subject, window_ms, limit)`.
#[derive(Clone, Copy, Debug)]
pub struct RateCheck {
    /// Who is counted.
    pub subject: [u8; 20],
    /// Window width in milliseconds.
    pub window_ms: u64,
    /// Requests allowed per window.
    pub limit: u32,
}

/// One queued claim.
pub(crate) struct GroupJob {
    key: [u8; 32],
    expires: i64,
    rate: Option<RateCheck>,
    /// Taken when the claim first succeeds; its answer is kept in `entry`.
    decide: Option<Decide>,
    entry: Option<AuditEntry>,
    /// Where the decided outcome goes before the commit, for a caller that asked for it
    /// (a closed receiver means nobody did).
    early: Option<tokio::sync::oneshot::Sender<Claim>>,
    /// The decided outcome was handed out: if the commit then fails, this job is answered
    /// with the error, never retried (its caller may already act on the decision).
    announced: bool,
    reply: tokio::sync::oneshot::Sender<Result<Claim>>,
}

/// The commit of a claim decided by [`Store::count_and_decide_claim`].
#[must_use = "nothing that depends on the claim's record may leave before it is durable"]
#[derive(Debug)]
pub struct Durable(Option<tokio::sync::oneshot::Receiver<Result<Claim>>>);

impl Durable {
    /// Waits for the commit of the decided claim.
    ///
    /// # Errors
    /// [`StoreError::Commit`] if the commit failed, [`StoreError::WriterStopped`] if the
    /// writer is gone: then nothing of the call was written.
    pub async fn wait(self) -> Result<()> {
        match self.0 {
            None => Ok(()),
            Some(answer) => answer.await.map_err(|_| StoreError::WriterStopped)?.map(|_| ()),
        }
    }
}

/// Hands each job that asked for it its decided outcome, before the group commits.
fn announce(jobs: &mut [GroupJob], outcomes: &[Claim]) {
    for (job, outcome) in jobs.iter_mut().zip(outcomes) {
        if let Some(early) = job.early.take()
            && !early.is_closed()
        {
            job.announced = early.send(outcome.clone()).is_ok();
        }
    }
}

impl GroupJob {
    fn entry(&mut self) -> Result<&AuditEntry> {
        if self.entry.is_none() {
            let decide = self.decide.take().ok_or(StoreError::WriterStopped)?;
            self.entry = Some(decide());
        }
        self.entry.as_ref().ok_or(StoreError::WriterStopped)
    }
}

/// `($1, .., $cols), ($cols+1, ..), ..` for `rows` rows: the VALUES list of a
/// multi-row insert. At most [`MAX_GROUP`] rows of 10 columns are bound, far below both
/// databases' limit on parameters.
fn placeholders(rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 5);
    for row in 0..rows {
        out.push_str(if row == 0 { "(" } else { ", (" });
        for col in 0..cols {
            if col > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(row * cols + col + 1).to_string());
        }
        out.push(')');
    }
    out
}

/// The writer task's own connection, kept from one group to the next. On SQLite this
/// matters: a connection that sees the database changed by another connection drops its
/// whole page cache, and the pool hands its idle connections out in turn, so a writer
/// taking whichever one is next re-read every page it touched from the file (and woke a
/// different worker thread) for every group.
pub(crate) enum WriterConnection {
    /// SQLite.
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    /// PostgreSQL.
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

impl WriterConnection {
    async fn acquire(backend: &super::backend::Backend) -> Result<Self> {
        Ok(match backend {
            super::backend::Backend::Sqlite(pool) => Self::Sqlite(pool.acquire().await?),
            super::backend::Backend::Postgres(pool) => Self::Postgres(pool.acquire().await?),
        })
    }
}

/// Starts the writer task of a store on `backend`; ends when every sender is dropped. The
/// returned [`Notify`](tokio::sync::Notify) makes it give its held connection back to
/// the pool (after the group in progress), which [`Store::close`](crate::Store::close)
/// needs: closing a pool waits for every connection to come back.
pub(crate) fn spawn_group_writer(
    backend: super::backend::Backend,
) -> (tokio::sync::mpsc::Sender<GroupJob>, std::sync::Arc<tokio::sync::Notify>) {
    let (sender, mut queue) = tokio::sync::mpsc::channel::<GroupJob>(4 * MAX_GROUP);
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let released = std::sync::Arc::clone(&release);
    tokio::spawn(async move {
        let mut group = Vec::with_capacity(MAX_GROUP);
        let mut held = None;
        loop {
            tokio::select! {
                // `recv_many` is cancel safe: nothing is lost when the release wins.
                n = queue.recv_many(&mut group, MAX_GROUP) => {
                    if n == 0 {
                        break;
                    }
                    commit_group(&backend, &mut held, &mut group).await;
                    group.clear();
                }
                () = released.notified() => held = None,
            }
        }
    });
    (sender, release)
}

async fn commit_group(
    backend: &super::backend::Backend,
    held: &mut Option<WriterConnection>,
    group: &mut Vec<GroupJob>,
) {
    let at_ms = now_ms();
    match try_group(backend, held, group, at_ms).await {
        Ok(records) => {
            for (job, record) in group.drain(..).zip(records) {
                let _ = job.reply.send(Ok(record));
            }
        }
        Err(e) => {
            // Nothing of the group was written. A call whose decision was handed out gets
            // the error (it must not be decided twice); the others are retried each alone,
            // for their own outcome.
            let reason = e.to_string();
            for mut job in group.drain(..) {
                if job.announced {
                    let _ = job.reply.send(Err(StoreError::Commit(reason.clone())));
                    continue;
                }
                let result = try_group(backend, held, std::slice::from_mut(&mut job), now_ms())
                    .await
                    .and_then(|mut r| r.pop().ok_or(StoreError::WriterStopped));
                let _ = job.reply.send(result);
            }
        }
    }
}

/// [`try_group_on`] on the writer's held connection (acquired if there is none). A
/// failed group gives its connection back to the pool, in case the failure was the
/// connection's: the next group takes a fresh one.
async fn try_group(
    backend: &super::backend::Backend,
    held: &mut Option<WriterConnection>,
    jobs: &mut [GroupJob],
    at_ms: i64,
) -> Result<Vec<Claim>> {
    let conn = match held {
        Some(conn) => conn,
        None => held.insert(WriterConnection::acquire(backend).await?),
    };
    let result = try_group_on(conn, jobs, at_ms).await;
    if result.is_err() {
        *held = None;
    }
    result
}

/// Claims every job's key in order and appends the records of the claimed ones, in one
/// transaction; on `Err` it was rolled back.
async fn try_group_on(
    conn: &mut WriterConnection,
    jobs: &mut [GroupJob],
    at_ms: i64,
) -> Result<Vec<Claim>> {
    match conn {
        WriterConnection::Sqlite(conn) => sqlite_group(conn, jobs, at_ms).await,
        WriterConnection::Postgres(conn) => postgres_group(conn, jobs, at_ms).await,
    }
}

/// The start of a rate window: `at_ms` rounded down to a multiple of the width.
fn window_start(rate: &RateCheck, at_ms: i64) -> i64 {
    let width = i64::try_from(rate.window_ms.max(1)).unwrap_or(i64::MAX);
    at_ms / width * width
}

/// The outcome of a job that did not claim: over its rate limit, or a replay.
fn unclaimed(limited: bool) -> Claim {
    if limited { Claim::RateLimited } else { Claim::Replayed }
}

/// A job's replay key, expiry block and rate check.
type JobKey = ([u8; 32], i64, Option<RateCheck>);

/// A group's jobs' `(key, expires, rate)`, copied out (a job's `decide` is `Send` but not
/// `Sync`), and whether any of them is counted.
fn job_keys(jobs: &[GroupJob]) -> (Vec<JobKey>, bool) {
    let keys: Vec<_> = jobs.iter().map(|j| (j.key, j.expires, j.rate)).collect();
    let counted = keys.iter().any(|k| k.2.is_some());
    (keys, counted)
}

/// An argument sqlx could not encode.
fn encode_error(e: sqlx::error::BoxDynError) -> StoreError {
    StoreError::Database(sqlx::Error::Encode(e))
}

/// The group's outcomes once its claims are decided: the records of the claimed jobs,
/// chained from `head` in job order (each claimed job's `decide` runs here), and
/// [`Claim::RateLimited`] or [`Claim::Replayed`] for the others.
fn chain_records(
    jobs: &mut [GroupJob],
    claimed: &[bool],
    limited: &[bool],
    head: (u64, [u8; 32]),
    at_unix_ms: u64,
) -> Result<Vec<Claim>> {
    let (mut seq, mut prev_hash) = head;
    let mut records = Vec::with_capacity(jobs.len());
    for ((job, claimed), limited) in jobs.iter_mut().zip(claimed).zip(limited) {
        if !claimed {
            records.push(unclaimed(*limited));
            continue;
        }
        let entry = job.entry()?.clone();
        if entry.code.len() > MAX_AUDIT_CODE_LEN {
            return Err(StoreError::AuditCodeTooLong { len: entry.code.len() });
        }
        seq += 1;
        let hash = audit_hash(&prev_hash, seq, &entry, at_unix_ms);
        records.push(Claim::Claimed(AuditRecord { seq, at_unix_ms, entry, prev_hash, hash }));
        prev_hash = hash;
    }
    Ok(records)
}

/// The records appended by a group, in order.
fn appended(records: &[Claim]) -> impl Iterator<Item = &AuditRecord> {
    records.iter().filter_map(|r| match r {
        Claim::Claimed(record) => Some(record),
        _ => None,
    })
}

/// `INSERT INTO audit_log .. VALUES` for `rows` rows.
fn audit_insert_sql(rows: usize) -> String {
    format!(
        "INSERT INTO audit_log (seq, kind, chain_id, secret_id, actor, digest, code, at_ms, \
         prev_hash, hash) VALUES {}",
        placeholders(rows, 10)
    )
}

/// Adds the 10 columns of [`audit_insert_sql`] for each record, in order, to `args`.
fn add_audit_rows<'q, A>(
    args: &mut A,
    records: impl Iterator<Item = &'q AuditRecord>,
    at_ms: i64,
) -> Result<()>
where
    A: sqlx::Arguments<'q>,
    i64: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
    i16: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
    &'q [u8]: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
    &'q str: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
{
    for r in records {
        args.add(to_i64("seq", r.seq)?).map_err(encode_error)?;
        args.add(i16::from(r.entry.kind.as_u8())).map_err(encode_error)?;
        args.add(to_i64("chain_id", r.entry.chain_id)?).map_err(encode_error)?;
        args.add(r.entry.secret_id.as_slice()).map_err(encode_error)?;
        args.add(r.entry.actor.as_slice()).map_err(encode_error)?;
        args.add(r.entry.digest.as_slice()).map_err(encode_error)?;
        args.add(r.entry.code.as_str()).map_err(encode_error)?;
        args.add(at_ms).map_err(encode_error)?;
        args.add(r.prev_hash.as_slice()).map_err(encode_error)?;
        args.add(r.hash.as_slice()).map_err(encode_error)?;
    }
    Ok(())
}

/// Counted jobs claimed per query on SQLite. Each distinct query string is a cached
/// statement list on the connection (two statements per counted job), so one string per
/// group size up to [`MAX_GROUP`] would keep thousands of prepared statements; chunks of 8
/// keep 16 strings and cost one more round trip per 8 jobs.
const COUNTED_PER_QUERY: usize = 8;

/// SQLite: the group in **two** round trips to the connection's worker thread, where
/// one statement per round trip took four (uncounted claims) or three plus two per job
/// (counted claims), each a wake-up of the worker and then of the runtime:
///
/// 1. `BEGIN IMMEDIATE` and the claims, as one query: for a counted job its rate upsert
///    (`RETURNING count`) and then its claim, which inserts only while that count is
///    within the limit (in chunks of [`COUNTED_PER_QUERY`] jobs, one more round trip per
///    chunk); for uncounted jobs one multi-row claim. Every claim returns its key and the
///    log's head (the write lock is held from `BEGIN IMMEDIATE`).
/// 2. The records, chained in memory from that head, and `COMMIT`, as one query
///    (`COMMIT` alone keeps the counts when nothing was claimed; `ROLLBACK` otherwise).
///
/// sqlx's SQLite driver runs every statement of a query string in order on its worker,
/// binding `$N` by number across them. sqlx marks this multi-statement use as deprecated
/// for a later major version; the store tests exercise both round trips on every group
/// shape, so a driver that stopped running every statement fails them.
///
/// On any error the transaction is rolled back before returning; if even that fails
/// (other than for having no transaction to end), the connection is closed instead of
/// going back to the pool, so no pooled connection is ever left inside the transaction.
async fn sqlite_group(
    conn: &mut sqlx::pool::PoolConnection<sqlx::Sqlite>,
    jobs: &mut [GroupJob],
    at_ms: i64,
) -> Result<Vec<Claim>> {
    let result = sqlite_group_in(conn, jobs, at_ms).await;
    if result.is_err() {
        match sqlx::query("ROLLBACK").execute(&mut **conn).await {
            // BEGIN itself failed: nothing to undo.
            Err(sqlx::Error::Database(e)) if e.message().contains("no transaction is active") => {}
            Err(_) => conn.close_on_drop(),
            Ok(_) => {}
        }
    }
    result
}

/// The rows of a claims query did not match its statements (a driver that stopped running
/// every statement of a query string would cause this): the group fails and rolls back.
fn unexpected_rows() -> StoreError {
    StoreError::Database(sqlx::Error::Protocol(
        "SQLite group claims: the rows returned do not match the statements sent".into(),
    ))
}

async fn sqlite_group_in(
    conn: &mut sqlx::SqliteConnection,
    jobs: &mut [GroupJob],
    at_ms: i64,
) -> Result<Vec<Claim>> {
    use sqlx::Arguments as _;
    let at_unix_ms = u64::try_from(at_ms).unwrap_or(0);
    let (keys, counted) = job_keys(jobs);

    // Round trip 1: BEGIN IMMEDIATE and the claims (counted ones in chunks, see
    // COUNTED_PER_QUERY).
    let rows = if counted {
        let mut rows = Vec::with_capacity(keys.len() * 2);
        for (c, chunk) in keys.chunks(COUNTED_PER_QUERY).enumerate() {
            let mut sql = String::from(if c == 0 { "BEGIN IMMEDIATE;\n" } else { "" });
            let mut args = sqlx::sqlite::SqliteArguments::default();
            let mut n = 0usize;
            let mut next = || {
                n += 1;
                n
            };
            for (key, expires, rate) in chunk {
                let condition = match rate {
                    Some(rate) => {
                        let (subject, start) = (next(), next());
                        args.add(rate.subject.as_slice()).map_err(encode_error)?;
                        args.add(window_start(rate, at_ms)).map_err(encode_error)?;
                        sql.push_str(&format!(
                            "INSERT INTO rate_counters (subject, window_start, count) \
                             VALUES (${subject}, ${start}, 1) \
                             ON CONFLICT (subject, window_start) DO UPDATE SET count = \
                             rate_counters.count + 1 RETURNING count;\n"
                        ));
                        let limit = next();
                        args.add(i64::from(rate.limit)).map_err(encode_error)?;
                        format!(
                            "(SELECT count FROM rate_counters WHERE subject = ${subject} \
                             AND window_start = ${start}) <= ${limit}"
                        )
                    }
                    None => "1".to_owned(),
                };
                let (k, e) = (next(), next());
                args.add(key.as_slice()).map_err(encode_error)?;
                args.add(*expires).map_err(encode_error)?;
                sql.push_str(&format!(
                    "INSERT INTO replays (replay_key, expires_at_block) SELECT ${k}, ${e} \
                     WHERE {condition} ON CONFLICT (replay_key) DO NOTHING \
                     RETURNING replay_key{HEAD_RETURNING};\n"
                ));
            }
            rows.extend(sqlx::query_with(&sql, args).fetch_all(&mut *conn).await?);
        }
        rows
    } else {
        let sql = format!(
            "BEGIN IMMEDIATE;\nINSERT INTO replays (replay_key, expires_at_block) VALUES {} \
             ON CONFLICT (replay_key) DO NOTHING RETURNING replay_key{HEAD_RETURNING};",
            placeholders(keys.len(), 2)
        );
        let mut args = sqlx::sqlite::SqliteArguments::default();
        for (key, expires, _) in &keys {
            args.add(key.as_slice()).map_err(encode_error)?;
            args.add(*expires).map_err(encode_error)?;
        }
        sqlx::query_with(&sql, args).fetch_all(&mut *conn).await?
    };

    // Which job each row answers: rows come in statement order, and a row is a count if
    // it has a `count` column, a claim otherwise.
    let mut head: Option<(u64, [u8; 32])> = None;
    let mut claimed = Vec::with_capacity(keys.len());
    let mut limited = Vec::with_capacity(keys.len());
    let mut take_head = |row: &sqlx::sqlite::SqliteRow| -> Result<()> {
        if head.is_none() {
            head = Some(parse_head(row.try_get("head_seq")?, row.try_get("head_hash")?)?);
        }
        Ok(())
    };
    if counted {
        let mut rows = rows.iter().peekable();
        for (key, _, rate) in &keys {
            let over = match rate {
                Some(rate) => {
                    let row = rows
                        .next()
                        .filter(|r| r.try_column("count").is_ok())
                        .ok_or_else(unexpected_rows)?;
                    let count: i64 = row.try_get("count")?;
                    count > i64::from(rate.limit)
                }
                None => false,
            };
            // A claim row answers this job if it carries this job's key: a job that was
            // limited or replayed returns none, and a later job with the same key is
            // then replayed too unless this one was limited (and then it is not this
            // job's row).
            let mine = !over
                && rows.peek().is_some_and(|r| {
                    r.try_column("count").is_err()
                        && r.try_get::<Vec<u8>, _>("replay_key")
                            .is_ok_and(|k| k.as_slice() == key.as_slice())
                });
            if mine {
                let row = rows.next().ok_or_else(unexpected_rows)?;
                take_head(row)?;
            }
            limited.push(over);
            claimed.push(mine);
        }
        if rows.next().is_some() {
            return Err(unexpected_rows());
        }
    } else {
        let mut inserted = std::collections::HashSet::with_capacity(rows.len());
        for row in &rows {
            let key: Vec<u8> = row.try_get("replay_key")?;
            inserted.insert(key);
            take_head(row)?;
        }
        claimed.extend(keys.iter().map(|(key, _, _)| inserted.remove(key.as_slice())));
        limited.resize(keys.len(), false);
    }

    // Round trip 2: the records and COMMIT (or the end of a group that claimed nothing).
    if !claimed.iter().any(|c| *c) {
        let end = if counted { "COMMIT" } else { "ROLLBACK" };
        sqlx::query(end).execute(&mut *conn).await?;
        return Ok(limited.iter().map(|l| unclaimed(*l)).collect());
    }
    let head = head.ok_or_else(unexpected_rows)?;
    let records = chain_records(jobs, &claimed, &limited, head, at_unix_ms)?;
    // Decided under the write lock: what remains is the records' insert and the commit.
    announce(jobs, &records);
    let sql = format!("{};\nCOMMIT;", audit_insert_sql(appended(&records).count()));
    let mut args = sqlx::sqlite::SqliteArguments::default();
    add_audit_rows(&mut args, appended(&records), at_ms)?;
    sqlx::query_with(&sql, args).execute(&mut *conn).await?;
    Ok(records)
}

/// PostgreSQL: the group as statements of one transaction. Lock order, as everywhere:
/// replay rows first, then the audit lock, and no holder of the audit lock waits on a
/// replay row, so there is no deadlock.
async fn postgres_group(
    conn: &mut sqlx::PgConnection,
    jobs: &mut [GroupJob],
    at_ms: i64,
) -> Result<Vec<Claim>> {
    let at_unix_ms = u64::try_from(at_ms).unwrap_or(0);
    let mut tx = sqlx::Connection::begin(conn).await?;
    let (keys, counted) = job_keys(jobs);
    let (claimed, limited) = if counted {
        // Counted requests: each count decides whether its claim is tried, so one job
        // after another.
        let mut claimed = Vec::with_capacity(jobs.len());
        let mut limited = Vec::with_capacity(jobs.len());
        for (key, expires, rate) in &keys {
            // The rate counter first, as `count_request` (the same upsert).
            if let Some(rate) = rate {
                let count: i64 = sqlx::query_scalar(crate::ratelimit::COUNT_SQL)
                    .bind(rate.subject.as_slice())
                    .bind(window_start(rate, at_ms))
                    .fetch_one(&mut *tx)
                    .await?;
                if count > i64::from(rate.limit) {
                    limited.push(true);
                    claimed.push(false);
                    continue;
                }
            }
            limited.push(false);
            let row = sqlx::query(
                "INSERT INTO replays (replay_key, expires_at_block) VALUES ($1, $2) \
                 ON CONFLICT (replay_key) DO NOTHING RETURNING replay_key",
            )
            .bind(key.as_slice())
            .bind(*expires)
            .fetch_optional(&mut *tx)
            .await?;
            claimed.push(row.is_some());
        }
        (claimed, limited)
    } else {
        // Uncounted: every key in one statement. A key twice in the group is inserted
        // once and won by its first job.
        let sql = format!(
            "INSERT INTO replays (replay_key, expires_at_block) VALUES {} \
             ON CONFLICT (replay_key) DO NOTHING RETURNING replay_key",
            placeholders(keys.len(), 2)
        );
        let mut query = sqlx::query(&sql);
        for (key, expires, _) in &keys {
            query = query.bind(key.as_slice()).bind(*expires);
        }
        let mut inserted = std::collections::HashSet::with_capacity(keys.len());
        for row in query.fetch_all(&mut *tx).await? {
            let key: Vec<u8> = row.try_get(0)?;
            inserted.insert(key);
        }
        let claimed: Vec<bool> =
            keys.iter().map(|(key, _, _)| inserted.remove(key.as_slice())).collect();
        (claimed, vec![false; keys.len()])
    };
    if !claimed.iter().any(|c| *c) {
        // Nothing claimed; counts (if any) are still kept.
        if counted {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        return Ok(limited.iter().map(|l| unclaimed(*l)).collect());
    }
    sqlx::query(LOCK_AUDIT).execute(&mut *tx).await?;
    // The head once, the records chained to it in memory, all inserted by one statement:
    // the lock is held throughout, so nothing slips in.
    let head = read_head_locked!(tx);
    let records = chain_records(jobs, &claimed, &limited, head, at_unix_ms)?;
    // Decided: the claimed replay rows are locked by this transaction (a concurrent claim
    // of one waits for it to end, then conflicts), and the audit lock is held.
    announce(jobs, &records);
    let sql = audit_insert_sql(appended(&records).count());
    let mut args = sqlx::postgres::PgArguments::default();
    add_audit_rows(&mut args, appended(&records), at_ms)?;
    sqlx::query_with(&sql, args).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_number_rows_then_columns() {
        assert_eq!(placeholders(1, 2), "($1, $2)");
        assert_eq!(placeholders(3, 2), "($1, $2), ($3, $4), ($5, $6)");
        assert_eq!(placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }
}
