-- Users. `email_normalized` (lower-cased) carries the uniqueness, so two spellings of one
-- address cannot both register, in SQLite and Postgres alike.
CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    email             TEXT NOT NULL,
    email_normalized  TEXT NOT NULL UNIQUE,
    name              TEXT NOT NULL,
    password_hash     TEXT NOT NULL,
    role              TEXT NOT NULL DEFAULT 'user',
    credits           BIGINT NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL
);
CREATE INDEX posts_author ON posts (author_id);
