-- Shared per-subject request counters in fixed windows (schema 3, SQLite). Keep in step
-- with ../postgres/0003_rate_counters.sql.
CREATE TABLE rate_counters (
    subject      BLOB    NOT NULL CHECK (length(subject) = 20),
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL CHECK (count >= 1),
    PRIMARY KEY (subject, window_start)
) WITHOUT ROWID;
CREATE INDEX rate_counters_window ON rate_counters (window_start);
