-- CIFER shard node storage, schema 2 (PostgreSQL). Keep in step with ../sqlite/0002_bundle_signature.sql.

-- The creating black box's 65-byte signature over the bundle digest, kept beside the
-- fragment and returned with it in every release reply (docs/services.md). Public data,
-- checked by the black box against the bundle digest; NULL for rows stored before
-- schema 2 or without a bundle.
ALTER TABLE fragments ADD COLUMN bundle_signature BYTEA
    CHECK (bundle_signature IS NULL OR length(bundle_signature) = 65);
