-- Distribution: what spokehub owns at each target, the content it wrote, promotions, audit.
CREATE TABLE dist_inventory (
    distribution TEXT NOT NULL,
    target       TEXT NOT NULL,
    key          TEXT NOT NULL,
    digest       TEXT NOT NULL,
    release      TEXT NOT NULL,
    updated_at   DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (distribution, target, key)
);

-- Content-addressed copies of what was applied, so a rollback can restore any earlier state.
CREATE TABLE dist_blobs (
    digest TEXT PRIMARY KEY,
    data   TEXT NOT NULL
);

CREATE TABLE dist_promotions (
    distribution TEXT NOT NULL,
    release      TEXT NOT NULL,
    status       TEXT NOT NULL,
    run_id       TEXT,
    detail       TEXT NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL,
    updated_at   DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (distribution, release)
);

CREATE TABLE dist_targets (
    distribution TEXT NOT NULL,
    target       TEXT NOT NULL,
    release      TEXT,
    health       TEXT NOT NULL,
    sync         TEXT NOT NULL,
    detail       TEXT NOT NULL,
    updated_at   DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (distribution, target)
);

-- Append-only, hash-chained: each row's hash covers its content and the previous hash.
CREATE TABLE dist_audit (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           DOUBLE PRECISION NOT NULL,
    distribution TEXT NOT NULL,
    release      TEXT NOT NULL,
    target       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    detail       TEXT NOT NULL,
    prev_hash    TEXT NOT NULL UNIQUE,
    hash         TEXT NOT NULL UNIQUE
);
CREATE INDEX dist_audit_release ON dist_audit (distribution, release);
