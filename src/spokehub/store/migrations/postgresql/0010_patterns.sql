-- Immutable pattern releases: the release document (pattern versions and content digests,
-- source commit, parent, creator) and its digest. Rows are only ever inserted.
CREATE TABLE pattern_releases (
    id            TEXT PRIMARY KEY,
    digest        TEXT NOT NULL UNIQUE,
    parent_id     TEXT,
    source_commit TEXT,
    created_by    TEXT NOT NULL,
    created_at    DOUBLE PRECISION NOT NULL,
    document      TEXT NOT NULL
);
CREATE INDEX pattern_releases_created ON pattern_releases (created_at);
