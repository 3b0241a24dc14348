-- Portable SQL: runs unchanged on SQLite and Postgres (TEXT ids and RFC 3339 UTC times,
-- BIGINT counters and 0/1 flags).
CREATE TABLE posts (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL UNIQUE,
    content     TEXT NOT NULL,
    category    TEXT,
    published   BIGINT NOT NULL DEFAULT 0,
    author_id   TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX posts_published_created ON posts (published, created_at);
CREATE INDEX posts_category ON posts (category);

CREATE TABLE contact_messages (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    email       TEXT NOT NULL,
    message     TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
