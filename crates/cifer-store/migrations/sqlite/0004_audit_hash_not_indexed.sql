-- The audit log's `hash` column loses its UNIQUE index (schema 4, SQLite). Keep in step
-- with ../postgres/0004_audit_hash_not_indexed.sql.
--
-- Nothing looks a record up by its hash (records are read by `seq`, and an anchor names
-- a `seq` and its hash), and the chain is what makes the log tamper-evident:
-- `verify_audit` recomputes every hash from its predecessor, so a duplicated or altered
-- row fails verification with or without an index. The index cost a B-tree insert at a
-- random position, and one more page written and flushed, for every record.
--
-- SQLite cannot drop the index of a UNIQUE column constraint, so the table is rebuilt in
-- this migration's transaction. DROP TABLE fires no trigger and drops the old table's
-- triggers; they are created again on the new one.
CREATE TABLE audit_log_v4 (
    seq        INTEGER NOT NULL PRIMARY KEY CHECK (seq >= 1),
    kind       INTEGER NOT NULL,
    chain_id   INTEGER NOT NULL CHECK (chain_id >= 0),
    secret_id  BLOB    NOT NULL CHECK (length(secret_id) = 32),
    actor      BLOB    NOT NULL CHECK (length(actor) = 20),
    digest     BLOB    NOT NULL CHECK (length(digest) = 32),
    code       TEXT    NOT NULL,
    at_ms      INTEGER NOT NULL,
    prev_hash  BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash       BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;

INSERT INTO audit_log_v4 (seq, kind, chain_id, secret_id, actor, digest, code, at_ms, prev_hash, hash)
    SELECT seq, kind, chain_id, secret_id, actor, digest, code, at_ms, prev_hash, hash
    FROM audit_log ORDER BY seq;

DROP TABLE audit_log;
ALTER TABLE audit_log_v4 RENAME TO audit_log;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
