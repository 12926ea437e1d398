-- The HTTP API's own tables: API tokens (stored as hashes) and webhook deliveries.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   DOUBLE PRECISION NOT NULL,
    last_used_at DOUBLE PRECISION,
    revoked_at   DOUBLE PRECISION
);

CREATE TABLE webhook_deliveries (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hook        TEXT NOT NULL,
    delivery_id TEXT,
    received_at DOUBLE PRECISION NOT NULL,
    status      TEXT NOT NULL,
    reason      TEXT,
    run_id      TEXT
);
-- One accepted delivery per (hook, delivery id): a replay can never start a second run.
CREATE UNIQUE INDEX webhook_deliveries_accepted
    ON webhook_deliveries (hook, delivery_id) WHERE status = 'accepted';
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at);
