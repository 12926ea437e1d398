-- The integrations layer's shared per-host state: circuit breaker and token bucket.
-- Every worker reads and updates a host's row under its row lock, so all workers see one
-- breaker and one rate limit per host.
CREATE TABLE integration_hosts (
    host       TEXT PRIMARY KEY,
    breaker    TEXT NOT NULL,
    tokens     DOUBLE PRECISION,
    tokens_at  DOUBLE PRECISION,
    updated_at DOUBLE PRECISION NOT NULL
);
