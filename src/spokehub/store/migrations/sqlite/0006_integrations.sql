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

-- Schedules: declared in code (@workflow(schedule=...)) or with `spokehub schedules add`.
-- next_fire_at is advanced with a compare-and-set, so one worker moves a schedule on; the
-- runs themselves are made unique by their tick-derived run id.
CREATE TABLE schedules (
    name         TEXT PRIMARY KEY,
    workflow     TEXT NOT NULL,
    cron         TEXT NOT NULL,
    timezone     TEXT NOT NULL,
    input        TEXT NOT NULL,
    catchup      TEXT NOT NULL,
    max_catchup  INTEGER NOT NULL,
    paused       INTEGER NOT NULL DEFAULT 0,
    next_fire_at REAL,
    last_fire_at REAL,
    source       TEXT NOT NULL,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL
);

-- The outbox: domain events written in the same transaction as the ledger events they come
-- from, published to the event bus afterwards (at least once, with a stable message id).
CREATE TABLE outbox (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    run_id        TEXT,
    payload       TEXT NOT NULL,
    created_at    REAL NOT NULL,
    claimed_by    TEXT,
    claimed_until REAL,
    published_at  REAL
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;

-- Outbound webhooks: subscriptions per event name (a pattern), signed with their secret.
-- Each delivery is a run of `spokehub.webhook.deliver` (its ledger holds the attempts).
CREATE TABLE webhook_subscriptions (
    id         TEXT PRIMARY KEY,
    events     TEXT NOT NULL,
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at REAL NOT NULL,
    active     INTEGER NOT NULL DEFAULT 1
);
ALTER TABLE outbox ADD COLUMN dispatched_at REAL;
CREATE INDEX outbox_undispatched ON outbox (seq) WHERE dispatched_at IS NULL;

-- Debounced starts: one open burst per key; it fires (starts its run) once due_at passes.
CREATE TABLE start_debounces (
    run_id     TEXT PRIMARY KEY,
    key        TEXT NOT NULL,
    workflow   TEXT NOT NULL,
    input      TEXT NOT NULL,
    due_at     REAL NOT NULL,
    state      TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE UNIQUE INDEX start_debounces_open ON start_debounces (key) WHERE state = 'open';
-- Throttled starts: a token bucket per key.
CREATE TABLE start_throttles (
    key        TEXT PRIMARY KEY,
    tokens     REAL NOT NULL,
    updated_at REAL NOT NULL
);
