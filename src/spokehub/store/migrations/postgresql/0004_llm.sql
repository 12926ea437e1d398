-- LLM steps (spokehub.intelligence): spend per provider call, the cross-run response cache,
-- shared rate-limit windows, and confidence-routed decisions with their human outcomes.
CREATE TABLE llm_usage (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id            TEXT,
    workflow          TEXT,
    seq               INTEGER,
    provider          TEXT NOT NULL,
    model             TEXT NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost              DOUBLE PRECISION NOT NULL,
    cache_hit         INTEGER NOT NULL,
    at                DOUBLE PRECISION NOT NULL,
    day               TEXT NOT NULL
);
CREATE INDEX llm_usage_run ON llm_usage (run_id);
CREATE INDEX llm_usage_workflow_day ON llm_usage (workflow, day);
CREATE INDEX llm_usage_at ON llm_usage (at);

CREATE TABLE llm_cache (
    key        TEXT PRIMARY KEY,
    response   TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE llm_rate (
    provider     TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    requests     INTEGER NOT NULL,
    tokens       INTEGER NOT NULL,
    PRIMARY KEY (provider, window_start)
);

CREATE TABLE llm_decisions (
    run_id     TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    workflow   TEXT NOT NULL,
    name       TEXT NOT NULL,
    label      TEXT NOT NULL,
    confidence DOUBLE PRECISION NOT NULL,
    method     TEXT NOT NULL,
    routed     INTEGER NOT NULL,
    outcome    TEXT,
    decided_by TEXT,
    at         DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX llm_decisions_workflow ON llm_decisions (workflow, at);
