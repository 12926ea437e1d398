-- Agent memory and target health (the intelligence layer).
-- Session memory: a durable key-value store per namespace (a session, a customer), every
-- write kept as a version; write_id (the writing step's idempotency key) makes a step that
-- ran twice after a crash write once.
CREATE TABLE memory_kv (
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    version    INTEGER NOT NULL,
    value      TEXT NOT NULL,
    write_id   TEXT NOT NULL UNIQUE,
    run_id     TEXT,
    written_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (namespace, key, version)
);

-- Long-term memory: texts with float32 embeddings and metadata, searched by cosine.
-- seq orders entries, so a searcher's in-memory index loads only what is new.
CREATE TABLE memory_vectors (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    namespace  TEXT NOT NULL,
    text       TEXT NOT NULL,
    metadata   TEXT NOT NULL,
    dim        INTEGER NOT NULL,
    vector     BYTEA NOT NULL,
    run_id     TEXT,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX memory_vectors_namespace ON memory_vectors (namespace, seq);

-- Observed outcomes of calls to targets (deliveries, health probes): the health forecast's
-- input.
CREATE TABLE target_health (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target  TEXT NOT NULL,
    at      DOUBLE PRECISION NOT NULL,
    ok      INTEGER NOT NULL,
    latency DOUBLE PRECISION
);
CREATE INDEX target_health_target_at ON target_health (target, at);

-- Anomalies found by the detectors (step durations, failure rates, costs, custom metrics):
-- the dashboard's markers and the API's list.
CREATE TABLE anomalies (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       DOUBLE PRECISION NOT NULL,
    metric   TEXT NOT NULL,
    workflow TEXT NOT NULL,
    step     TEXT NOT NULL,
    value    DOUBLE PRECISION NOT NULL,
    expected DOUBLE PRECISION NOT NULL,
    score    DOUBLE PRECISION NOT NULL,
    detector TEXT NOT NULL,
    run_id   TEXT
);
CREATE INDEX anomalies_at ON anomalies (at);
CREATE INDEX anomalies_run ON anomalies (run_id);
