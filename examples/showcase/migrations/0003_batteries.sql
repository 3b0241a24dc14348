-- Uploaded files' metadata (the bytes live in UPLOAD_DIR under the id).
CREATE TABLE files (
    id             TEXT PRIMARY KEY,
    owner_id       TEXT NOT NULL,
    original_name  TEXT NOT NULL,
    content_type   TEXT NOT NULL,
    size           BIGINT NOT NULL,
    uploaded_at    TEXT NOT NULL
);
CREATE INDEX files_owner ON files (owner_id);

-- Webhook events already applied (waypost::credits::claim_once).
CREATE TABLE processed_webhooks (
    event_key     TEXT PRIMARY KEY,
    processed_at  TEXT NOT NULL
);

-- Daily tool usage (waypost::credits::DailyQuota).
CREATE TABLE tool_usage (
    subject  TEXT NOT NULL,
    tool     TEXT NOT NULL,
    day      TEXT NOT NULL,
    used     BIGINT NOT NULL,
    PRIMARY KEY (subject, tool, day)
);
