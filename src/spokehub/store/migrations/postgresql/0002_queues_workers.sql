-- Queues with limits (per-key concurrency, rate limits) and the registry of worker processes.
ALTER TABLE runs ADD COLUMN concurrency_key TEXT;
ALTER TABLE runs ADD COLUMN started_at DOUBLE PRECISION;
CREATE INDEX runs_queue_status ON runs (queue, status);
CREATE INDEX runs_queue_key ON runs (queue, concurrency_key, status) WHERE concurrency_key IS NOT NULL;
CREATE INDEX runs_queue_started ON runs (queue, started_at) WHERE started_at IS NOT NULL;

CREATE TABLE workers (
    owner        TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    queues       TEXT NOT NULL,
    concurrency  INTEGER NOT NULL,
    active       INTEGER NOT NULL DEFAULT 0,
    state        TEXT NOT NULL,
    started_at   DOUBLE PRECISION NOT NULL,
    heartbeat_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX workers_heartbeat ON workers (heartbeat_at);
