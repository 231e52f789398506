-- Shared per-subject request counters in fixed windows (schema 3, PostgreSQL). Used by
-- the black box so that replicas on one database enforce one rate limit. Keep in step
-- with ../sqlite/0003_rate_counters.sql.
CREATE TABLE rate_counters (
    subject      BYTEA  NOT NULL CHECK (length(subject) = 20),
    window_start BIGINT NOT NULL,
    count        BIGINT NOT NULL CHECK (count >= 1),
    PRIMARY KEY (subject, window_start)
);
CREATE INDEX rate_counters_window ON rate_counters (window_start);
