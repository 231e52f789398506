//! Fragments: write-once, sealed, durable.

use cifer_core::{Commitments, Fragment, keccak256};
use sqlx::Row;
use subtle::ConstantTimeEq;

use super::error::{Result, StoreError};
use super::seal::{self, RowBinding, SEAL_FORMAT_V1};
use super::{Store, now_ms, to_i64};

/// How often `put_fragment` retries when the row it collided with was deleted before it
/// could be read (a put racing a shred).
const PUT_ATTEMPTS: usize = 3;

/// A fragment to store, with what it is checked against.
#[derive(Clone, Debug)]
pub struct FragmentRecord {
    /// Chain the secret lives on.
    pub chain_id: u64,
    /// The secret's id (`u256`, big-endian).
    pub secret_id: [u8; 32],
    /// `keccak256(ek)` of the secret's encapsulation key, as recorded on chain.
    pub ek_hash: [u8; 32],
    /// The Pedersen commitments of the sharing.
    pub commitments: Commitments,
    /// This node's fragment.
    pub fragment: Fragment,
    /// The creating black box's 65-byte signature over the bundle digest, returned with
    /// the fragment in release replies. Public; not bound into the seal (the black box
    /// checks it against the bundle digest it recomputes). Part of the write-once
    /// comparison.
    pub bundle_signature: Option<[u8; 65]>,
}

/// What [`Store::put_fragment`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum PutOutcome {
    /// The fragment was stored now.
    Stored,
    /// The identical record was already stored; nothing changed.
    AlreadyStored,
}

/// A fragment read back and unsealed.
#[derive(Clone, Debug)]
pub struct StoredFragment {
    /// Chain the secret lives on.
    pub chain_id: u64,
    /// The secret's id.
    pub secret_id: [u8; 32],
    /// `keccak256(ek)` stored with the fragment.
    pub ek_hash: [u8; 32],
    /// The commitments stored with the fragment.
    pub commitments: Commitments,
    /// The fragment, unsealed. Zeroized on drop.
    pub fragment: Fragment,
    /// The bundle signature stored with it, if any.
    pub bundle_signature: Option<[u8; 65]>,
    /// When it was stored (Unix milliseconds, node clock).
    pub stored_at_unix_ms: u64,
}

impl Store {
    /// Stores `record` once per `(chain_id, secret_id)`, durably, sealed.
    ///
    /// The fragment must verify against the commitments. Chain checks (the secret exists,
    /// its `ek_hash` and commitments match the chain) are the caller's.
    ///
    /// # Errors
    /// [`StoreError::InvalidFragment`] if the fragment does not verify (nothing stored);
    /// [`StoreError::Conflict`] if a different record is stored (nothing overwritten);
    /// [`StoreError::Corrupt`] if the stored record it collided with does not unseal;
    /// [`StoreError::OutOfRange`], [`StoreError::Database`], [`StoreError::Rng`].
    pub async fn put_fragment(&self, record: &FragmentRecord) -> Result<PutOutcome> {
        record.commitments.verify(&record.fragment).map_err(StoreError::InvalidFragment)?;
        let chain = to_i64("chain_id", record.chain_id)?;
        let commitments = record.commitments.to_bytes();
        let commitments_hash = keccak256(&commitments);
        let index = record.fragment.index();
        let binding = RowBinding {
            chain_id: record.chain_id,
            secret_id: &record.secret_id,
            index,
            commitments_hash: &commitments_hash,
            ek_hash: &record.ek_hash,
        };
        let plaintext = record.fragment.to_bytes();
        let (nonce, sealed) = seal::seal(&self.key, &binding, &plaintext)?;
        let stored_at = now_ms();

        for _ in 0..PUT_ATTEMPTS {
            let inserted = dispatch!(&self.backend, pool => sqlx::query(
                "INSERT INTO fragments (chain_id, secret_id, ek_hash, fragment_index, \
                 commitments, commitments_hash, seal_format, nonce, sealed, stored_at_ms, \
                 bundle_signature) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (chain_id, secret_id) DO NOTHING",
            )
            .bind(chain)
            .bind(record.secret_id.as_slice())
            .bind(record.ek_hash.as_slice())
            .bind(i16::from(index))
            .bind(commitments.as_slice())
            .bind(commitments_hash.as_slice())
            .bind(SEAL_FORMAT_V1)
            .bind(nonce.as_slice())
            .bind(sealed.as_slice())
            .bind(stored_at)
            .bind(record.bundle_signature.as_ref().map(<[u8; 65]>::as_slice))
            .execute(pool)
            .await?
            .rows_affected());
            if inserted == 1 {
                return Ok(PutOutcome::Stored);
            }
            // From the database itself: a write compares with what is stored, not with
            // this process's memory of it.
            let Some(existing) =
                self.read_fragment(record.chain_id, record.secret_id, false).await?
            else {
                // Deleted between our insert and our read: try again.
                continue;
            };
            let same = existing.ek_hash == record.ek_hash
                && existing.commitments == record.commitments
                && existing.bundle_signature == record.bundle_signature
                && bool::from(existing.fragment.to_bytes().as_slice().ct_eq(&plaintext));
            return if same {
                Ok(PutOutcome::AlreadyStored)
            } else {
                Err(StoreError::Conflict { chain_id: record.chain_id, secret_id: record.secret_id })
            };
        }
        Err(StoreError::Conflict { chain_id: record.chain_id, secret_id: record.secret_id })
    }

    /// Reads and unseals the fragment of `(chain_id, secret_id)`, if any.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the row fails authentication or does not parse;
    /// [`StoreError::OutOfRange`], [`StoreError::Database`].
    pub async fn get_fragment(
        &self,
        chain_id: u64,
        secret_id: [u8; 32],
    ) -> Result<Option<StoredFragment>> {
        self.read_fragment(chain_id, secret_id, true).await
    }

    async fn read_fragment(
        &self,
        chain_id: u64,
        secret_id: [u8; 32],
        cached: bool,
    ) -> Result<Option<StoredFragment>> {
        let chain = to_i64("chain_id", chain_id)?;
        let corrupt = |reason| StoreError::Corrupt { chain_id, secret_id, reason };
        let hit =
            if cached { self.row_cache().rows.get(&(chain_id, secret_id)).cloned() } else { None };
        // `Some(epoch)` when the row came from the database: it is remembered once it
        // checked out, unless a delete happened since `epoch`.
        let (row, read_at_epoch) = match hit {
            Some(row) => (Some(row), None),
            None => {
                let epoch = self.row_cache().epoch;
                (self.select_row(chain, secret_id).await?, Some(epoch))
            }
        };
        let Some(row) = row else { return Ok(None) };

        if row.seal_format != SEAL_FORMAT_V1 {
            return Err(corrupt("unknown seal format"));
        }
        let ek_hash: [u8; 32] =
            row.ek_hash.as_slice().try_into().map_err(|_| corrupt("ek_hash length"))?;
        let stored_hash: [u8; 32] = row
            .commitments_hash
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("commitments_hash length"))?;
        let index = u8::try_from(row.index).map_err(|_| corrupt("fragment index"))?;
        // The associated data uses the hash of the commitments as stored, so a changed
        // commitments column fails authentication like any other change.
        let commitments_hash = keccak256(&row.commitments);
        if commitments_hash != stored_hash {
            return Err(corrupt("commitments_hash does not match commitments"));
        }
        let binding = RowBinding {
            chain_id,
            secret_id: &secret_id,
            index,
            commitments_hash: &commitments_hash,
            ek_hash: &ek_hash,
        };
        let plaintext = seal::open(&self.key, &binding, &row.nonce, &row.sealed)
            .ok_or_else(|| corrupt("sealed fragment failed authentication"))?;
        let fragment = Fragment::from_bytes(&plaintext).map_err(|_| corrupt("fragment bytes"))?;
        if fragment.index() != index {
            return Err(corrupt("fragment index"));
        }
        // Decoding the commitments' curve points is the dearest part of a read: decoded
        // ones are kept by the hash of their exact bytes (public data; bounded).
        let commitments =
            self.commitments.decode(&row.commitments).map_err(|_| corrupt("commitments"))?;
        let bundle_signature = match &row.bundle_signature {
            None => None,
            Some(sig) => Some(
                <[u8; 65]>::try_from(sig.as_slice())
                    .map_err(|_| corrupt("bundle_signature length"))?,
            ),
        };
        let stored_at_unix_ms = u64::try_from(row.stored_at_ms).unwrap_or(0);
        // Only a row that passed every check above is remembered, and only if no delete
        // happened since it was read.
        if let Some(epoch) = read_at_epoch {
            let mut cache = self.row_cache();
            if cache.epoch == epoch {
                // Bounded: emptied when full (a miss only costs a database read).
                if cache.rows.len() >= ROW_CACHE {
                    cache.rows.clear();
                }
                cache.rows.insert((chain_id, secret_id), row);
            }
        }
        Ok(Some(StoredFragment {
            chain_id,
            secret_id,
            ek_hash,
            commitments,
            fragment,
            bundle_signature,
            stored_at_unix_ms,
        }))
    }

    /// The row of `(chain, secret_id)` as stored, unchecked.
    async fn select_row(&self, chain: i64, secret_id: [u8; 32]) -> Result<Option<RawFragmentRow>> {
        Ok(dispatch!(&self.backend, pool => {
            let row = sqlx::query(
                "SELECT ek_hash, fragment_index, commitments, commitments_hash, seal_format, \
                 nonce, sealed, stored_at_ms, bundle_signature FROM fragments \
                 WHERE chain_id = $1 AND secret_id = $2",
            )
            .bind(chain)
            .bind(secret_id.as_slice())
            .fetch_optional(pool)
            .await?;
            match row {
                None => None,
                Some(r) => Some(RawFragmentRow {
                    ek_hash: r.try_get("ek_hash")?,
                    index: r.try_get("fragment_index")?,
                    commitments: r.try_get("commitments")?,
                    commitments_hash: r.try_get("commitments_hash")?,
                    seal_format: r.try_get("seal_format")?,
                    nonce: r.try_get("nonce")?,
                    sealed: r.try_get("sealed")?,
                    stored_at_ms: r.try_get("stored_at_ms")?,
                    bundle_signature: r.try_get("bundle_signature")?,
                }),
            }
        }))
    }

    /// Deletes the fragment of `(chain_id, secret_id)` (shred events); `true` if there was
    /// one. See the module documentation for what deletion leaves behind.
    ///
    /// # Errors
    /// [`StoreError::OutOfRange`], [`StoreError::Database`].
    pub async fn delete_fragment(&self, chain_id: u64, secret_id: [u8; 32]) -> Result<bool> {
        let chain = to_i64("chain_id", chain_id)?;
        let deleted = dispatch!(&self.backend, pool => sqlx::query(
            "DELETE FROM fragments WHERE chain_id = $1 AND secret_id = $2",
        )
        .bind(chain)
        .bind(secret_id.as_slice())
        .execute(pool)
        .await?
        .rows_affected());
        {
            // After the delete committed: no read that began before it puts the row back.
            let mut cache = self.row_cache();
            cache.epoch += 1;
            cache.rows.remove(&(chain_id, secret_id));
        }
        if deleted > 0
            && let super::backend::Backend::Sqlite(pool) = &self.backend
        {
            // Best effort: move the WAL's page images into the (secure_delete) file and
            // truncate the WAL. The delete is already durable; a busy checkpoint only
            // means the old images stay in the WAL a little longer.
            let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(pool).await;
        }
        Ok(deleted > 0)
    }

    fn row_cache(&self) -> std::sync::MutexGuard<'_, RowCache> {
        self.rows.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many fragments are stored (for metrics).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn count_fragments(&self) -> Result<u64> {
        let n: i64 = dispatch!(&self.backend, pool => sqlx::query("SELECT COUNT(*) FROM fragments")
            .fetch_one(pool)
            .await?
            .try_get(0)?);
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// Most rows kept by a [`RowCache`] (emptied when full).
const ROW_CACHE: usize = 4096;

/// Fragment rows exactly as the database returns them — the fragment still sealed under
/// the node's sealing key, so memory holds nothing the database file does not — kept
/// after a first read. Rows are write-once; the only change is a delete (shred), which
/// bumps `epoch` and drops the row after the database delete committed. A read that
/// started before a delete (it saw an older `epoch`) does not put its row back, so a
/// shredded fragment is never served from here. Every use still unseals (authenticated)
/// and checks the row as a database read would. Assumes one node process per database,
/// as the node's deployment does.
#[derive(Default)]
pub(crate) struct RowCache {
    epoch: u64,
    rows: std::collections::HashMap<(u64, [u8; 32]), RawFragmentRow>,
}

#[derive(Clone)]
struct RawFragmentRow {
    ek_hash: Vec<u8>,
    index: i16,
    commitments: Vec<u8>,
    commitments_hash: Vec<u8>,
    seal_format: i16,
    nonce: Vec<u8>,
    sealed: Vec<u8>,
    stored_at_ms: i64,
    bundle_signature: Option<Vec<u8>>,
}
