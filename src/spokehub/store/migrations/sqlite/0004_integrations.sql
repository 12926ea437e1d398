-- The integrations layer's per-host state (breaker and token bucket). On SQLite the
-- connector keeps this state in process; the table exists so both dialects share a schema
-- (and `db copy` carries rows between them).
CREATE TABLE integration_hosts (
    host       TEXT PRIMARY KEY,
    breaker    TEXT NOT NULL,
    tokens     REAL,
    tokens_at  REAL,
    updated_at REAL NOT NULL
);
