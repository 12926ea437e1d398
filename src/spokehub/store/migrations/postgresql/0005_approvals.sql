-- Approvals with a lifecycle: the votes cast on an open approval (one per person), and the
-- signed approval links already used (a link works once).
CREATE TABLE approval_votes (
    run_id   TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    actor    TEXT NOT NULL,
    role     TEXT,
    approved INTEGER NOT NULL,
    comment  TEXT,
    via      TEXT NOT NULL,
    at       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, seq, actor)
);

CREATE TABLE approval_links_used (
    id      TEXT PRIMARY KEY,
    run_id  TEXT NOT NULL,
    used_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX approval_links_used_run ON approval_links_used (run_id);
