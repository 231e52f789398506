-- The audit log's `hash` column loses its UNIQUE index (schema 4, PostgreSQL). Keep in
-- step with ../sqlite/0004_audit_hash_not_indexed.sql, which gives the reasons: nothing
-- looks a record up by its hash, the chain (recomputed by `verify_audit`) is what makes
-- the log tamper-evident, and the index cost a random B-tree insert per record.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_hash_key;
