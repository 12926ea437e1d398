-- The audit trail: operator actions and policy decisions, hash-chained (see governance/audit.py).
-- seq is the position in the chain (1, 2, 3, ... without gaps); hash covers prev_hash and the
-- entry's canonical JSON, so an edited, deleted, inserted or reordered entry breaks the chain.
CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    at        DOUBLE PRECISION NOT NULL,
    actor     TEXT,
    action    TEXT NOT NULL,
    run_id    TEXT,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_log_run ON audit_log (run_id, seq);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_at ON audit_log (at);
