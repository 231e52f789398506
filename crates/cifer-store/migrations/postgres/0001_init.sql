-- CIFER shard node storage, schema 1 (PostgreSQL). Keep in step with ../sqlite/0001_init.sql.

-- One sealed fragment per (chain, secret); write-once (the primary key and
-- INSERT ... ON CONFLICT DO NOTHING enforce it).
CREATE TABLE fragments (
    chain_id         BIGINT   NOT NULL CHECK (chain_id >= 0),
    secret_id        BYTEA    NOT NULL CHECK (length(secret_id) = 32),
    ek_hash          BYTEA    NOT NULL CHECK (length(ek_hash) = 32),
    fragment_index   SMALLINT NOT NULL CHECK (fragment_index BETWEEN 1 AND 255),
    commitments      BYTEA    NOT NULL,
    commitments_hash BYTEA    NOT NULL CHECK (length(commitments_hash) = 32),
    seal_format      SMALLINT NOT NULL,
    nonce            BYTEA    NOT NULL CHECK (length(nonce) = 12),
    sealed           BYTEA    NOT NULL,
    stored_at_ms     BIGINT   NOT NULL,
    PRIMARY KEY (chain_id, secret_id)
);

-- Replay keys of accepted requests, kept until the freshness window has passed.
CREATE TABLE replays (
    replay_key       BYTEA  NOT NULL PRIMARY KEY CHECK (length(replay_key) = 32),
    expires_at_block BIGINT NOT NULL CHECK (expires_at_block >= 0)
);
CREATE INDEX replays_expiry ON replays (expires_at_block);

-- Hash-chained, append-only audit log (hash = keccak256(prev_hash || BE64(seq) || entry)).
CREATE TABLE audit_log (
    seq        BIGINT   NOT NULL PRIMARY KEY CHECK (seq >= 1),
    kind       SMALLINT NOT NULL,
    chain_id   BIGINT   NOT NULL CHECK (chain_id >= 0),
    secret_id  BYTEA    NOT NULL CHECK (length(secret_id) = 32),
    actor      BYTEA    NOT NULL CHECK (length(actor) = 20),
    digest     BYTEA    NOT NULL CHECK (length(digest) = 32),
    code       TEXT     NOT NULL,
    at_ms      BIGINT   NOT NULL,
    prev_hash  BYTEA    NOT NULL CHECK (length(prev_hash) = 32),
    hash       BYTEA    NOT NULL UNIQUE CHECK (length(hash) = 32)
);

-- Append-only in the database too. Whoever can drop these triggers can also rewrite the
-- log; the hash chain (and an externally anchored head) is what detects that.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
