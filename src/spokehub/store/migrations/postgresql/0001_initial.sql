-- Runs, their ledger, the inbox of signals and approval decisions, and content-addressed blobs.
-- The same tables as SQLite's 0001; flags stay integers so the shared SQL works on both.
CREATE TABLE runs (
    id               TEXT PRIMARY KEY,
    workflow         TEXT NOT NULL,
    version          TEXT,
    queue            TEXT NOT NULL,
    status           TEXT NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,
    input            TEXT,
    input_blob       TEXT,
    input_hash       TEXT NOT NULL,
    result           TEXT,
    result_blob      TEXT,
    error            TEXT,
    parent_id        TEXT,
    root_id          TEXT NOT NULL,
    created_at       DOUBLE PRECISION NOT NULL,
    updated_at       DOUBLE PRECISION NOT NULL,
    finished_at      DOUBLE PRECISION,
    wake_at          DOUBLE PRECISION,
    waiting_on       TEXT,
    lease_owner      TEXT,
    lease_expires    DOUBLE PRECISION,
    lease_epoch      INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    wakeups          INTEGER NOT NULL DEFAULT 0,
    recoveries       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_status_wake ON runs (status, wake_at);
CREATE INDEX runs_claim_order ON runs (status, priority DESC, created_at);
CREATE INDEX runs_created ON runs (created_at);
CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX runs_parent ON runs (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX runs_root ON runs (root_id);

CREATE TABLE events (
    run_id   TEXT NOT NULL,
    position INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    seq      INTEGER,
    at       DOUBLE PRECISION NOT NULL,
    v        INTEGER NOT NULL,
    data     TEXT,
    blob     TEXT,
    PRIMARY KEY (run_id, position)
);
CREATE INDEX events_blob ON events (blob) WHERE blob IS NOT NULL;

CREATE TABLE inbox (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    payload     TEXT,
    created_at  DOUBLE PRECISION NOT NULL,
    consumed_at DOUBLE PRECISION
);
CREATE INDEX inbox_pending ON inbox (run_id, kind, name) WHERE consumed_at IS NULL;
CREATE INDEX inbox_run ON inbox (run_id);

CREATE TABLE blobs (
    hash       TEXT PRIMARY KEY,
    data       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
