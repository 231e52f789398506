-- CIFER shard node storage, schema 1 (SQLite). Keep in step with ../postgres/0001_init.sql.

-- One sealed fragment per (chain, secret); write-once (the primary key and
-- INSERT ... ON CONFLICT DO NOTHING enforce it).
CREATE TABLE fragments (
    chain_id         INTEGER NOT NULL CHECK (chain_id >= 0),
    secret_id        BLOB    NOT NULL CHECK (length(secret_id) = 32),
    ek_hash          BLOB    NOT NULL CHECK (length(ek_hash) = 32),
    fragment_index   INTEGER NOT NULL CHECK (fragment_index BETWEEN 1 AND 255),
    commitments      BLOB    NOT NULL,
    commitments_hash BLOB    NOT NULL CHECK (length(commitments_hash) = 32),
    seal_format      INTEGER NOT NULL,
    nonce            BLOB    NOT NULL CHECK (length(nonce) = 12),
    sealed           BLOB    NOT NULL,
    stored_at_ms     INTEGER NOT NULL,
    PRIMARY KEY (chain_id, secret_id)
) STRICT;

-- Replay keys of accepted requests, kept until the freshness window has passed.
CREATE TABLE replays (
    replay_key       BLOB    NOT NULL PRIMARY KEY CHECK (length(replay_key) = 32),
    expires_at_block INTEGER NOT NULL CHECK (expires_at_block >= 0)
) STRICT;
CREATE INDEX replays_expiry ON replays (expires_at_block);

-- Hash-chained, append-only audit log (hash = keccak256(prev_hash || BE64(seq) || entry)).
CREATE TABLE audit_log (
    seq        INTEGER NOT NULL PRIMARY KEY CHECK (seq >= 1),
    kind       INTEGER NOT NULL,
    chain_id   INTEGER NOT NULL CHECK (chain_id >= 0),
    secret_id  BLOB    NOT NULL CHECK (length(secret_id) = 32),
    actor      BLOB    NOT NULL CHECK (length(actor) = 20),
    digest     BLOB    NOT NULL CHECK (length(digest) = 32),
    code       TEXT    NOT NULL,
    at_ms      INTEGER NOT NULL,
    prev_hash  BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash       BLOB    NOT NULL UNIQUE CHECK (length(hash) = 32)
) STRICT;

-- Append-only in the database too. Whoever can drop these triggers can also rewrite the
-- log; the hash chain (and an externally anchored head) is what detects that.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
