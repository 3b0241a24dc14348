-- Spends of /api/generate waiting for their work (waypost::credits::CreditLedger::with_holds):
-- written with the spend, removed with its refund or once the work succeeded, so no refund is
-- lost when the database is down as the process stops.
CREATE TABLE credit_holds (
    id          TEXT PRIMARY KEY,
    account     TEXT NOT NULL,
    amount      BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX credit_holds_created_at ON credit_holds (created_at);
