//! Money-like counters over SQL: a balance that is spent and refunded atomically, a daily usage
//! quota, and once-only processing of external events.
//!
//! Every change is one conditional statement — `UPDATE … SET balance = balance - n WHERE id = ?
//! AND balance >= n RETURNING balance`, or an upsert whose update only happens under the limit —
//! never a read, a check in Rust, and a write: two requests can never both see the last credit.
//! The same SQL runs on SQLite (≥ 3.35) and Postgres.

use std::{borrow::Cow, future::Future, time::Duration};

use sha2::{Digest, Sha256};
use sqlx::Any;
use time::OffsetDateTime;

use crate::{
    database::{assert_identifier, Database},
    ApiError,
};

/// The pause before a failed refund is tried again (the database was unreachable); it doubles
/// up to [`REFUND_RETRY_LONGEST`], and the refund is given up (and logged) once
/// [`REFUND_RETRIES_FOR`] has passed.
const REFUND_RETRY_FIRST: Duration = Duration::from_millis(500);
/// The longest pause between two tries of a refund.
const REFUND_RETRY_LONGEST: Duration = Duration::from_secs(30);
/// How long a refund is tried for before it is given up.
const REFUND_RETRIES_FOR: Duration = Duration::from_secs(15 * 60);

/// A balance column: `table.balance_column`, keyed by `id_column`.
#[derive(Clone, Copy, Debug)]
pub struct CreditLedger {
    table: &'static str,
    id_column: &'static str,
    balance_column: &'static str,
}

/// The largest balance a ledger holds: 2^53 − 1, the largest whole number a JSON client that
/// reads numbers as doubles (JavaScript) still gets exactly.
pub const MAX_BALANCE: i64 = (1 << 53) - 1;

/// 402 `no_credits`.
pub fn no_credits() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::PAYMENT_REQUIRED,
        "no_credits",
        "No credits left.",
    )
}

impl CreditLedger {
    /// The ledger over `table.balance_column`, rows found by `id_column`.
    ///
    /// # Panics
    /// When a name is not a plain SQL identifier (they are spliced into the statements).
    pub fn new(table: &'static str, id_column: &'static str, balance_column: &'static str) -> Self {
        for name in [table, id_column, balance_column] {
            assert_identifier(name);
        }
        Self {
            table,
            id_column,
            balance_column,
        }
    }

    /// Takes `amount` from `id`'s balance if it holds that much; the new balance, or `None`
    /// when it does not (or the row does not exist). Never goes below zero.
    ///
    /// # Errors
    /// The database failed.
    pub async fn spend<'c, E>(
        &self,
        executor: E,
        id: &str,
        amount: i64,
    ) -> Result<Option<i64>, ApiError>
    where
        E: sqlx::Executor<'c, Database = Any>,
    {
        // The guard is in the WHERE clause: the check and the change are one statement.
        Ok(self.update(executor, id, amount, "-", true).await?)
    }

    /// Adds `amount` to `id`'s balance (a grant or a refund); the new balance, or `None` when
    /// the row does not exist or the balance would pass [`MAX_BALANCE`] (so it never wraps, turns
    /// into a float, or reaches a client rounded).
    ///
    /// # Errors
    /// The database failed.
    pub async fn grant<'c, E>(
        &self,
        executor: E,
        id: &str,
        amount: i64,
    ) -> Result<Option<i64>, ApiError>
    where
        E: sqlx::Executor<'c, Database = Any>,
    {
        Ok(self.update(executor, id, amount, "+", false).await?)
    }

    /// `balance = balance <op> amount` for `id` (only while it covers `amount` when `guarded`),
    /// returning the new balance; the database's own error, for the refund to tell what may be
    /// tried again.
    async fn update<'c, E>(
        &self,
        executor: E,
        id: &str,
        amount: i64,
        op: &str,
        guarded: bool,
    ) -> Result<Option<i64>, sqlx::Error>
    where
        E: sqlx::Executor<'c, Database = Any>,
    {
        let (t, b, i) = (self.table, self.balance_column, self.id_column);
        let guard = if guarded {
            format!(" AND {b} >= $1")
        } else if amount > 0 {
            // Room for it below the largest balance, asked without computing a sum that could
            // overflow.
            format!(" AND {b} <= {MAX_BALANCE} - $1")
        } else {
            String::new()
        };
        let sql = format!("UPDATE {t} SET {b} = {b} {op} $1 WHERE {i} = $2{guard} RETURNING {b}");
        // Read to the statement's end, not only to its row: an error after the row (at commit)
        // is the statement's error.
        let rows = sqlx::query_scalar::<_, i64>(&sql)
            .bind(amount)
            .bind(id)
            .fetch_all(executor)
            .await?;
        Ok(rows.into_iter().next())
    }

    /// `id`'s balance.
    ///
    /// # Errors
    /// The database failed.
    pub async fn balance(&self, db: &Database, id: &str) -> Result<Option<i64>, ApiError> {
        let sql = format!(
            "SELECT {b} FROM {t} WHERE {i} = $1",
            t = self.table,
            b = self.balance_column,
            i = self.id_column
        );
        Ok(sqlx::query_scalar::<_, i64>(&sql)
            .bind(id)
            .fetch_optional(db)
            .await?)
    }

    /// Spends `amount`, runs `work`, and gives the amount back when `work` fails — or when the
    /// request is dropped before it finishes (the client went away; or, for a request with an
    /// `Idempotency-Key`, whose work goes on without its client, the server cut it short at its
    /// shutdown deadline). The value and the balance after spending.
    ///
    /// A refund the database refuses, or that finds no connection, is tried again in the
    /// background for up to 15 minutes while `work`'s error is returned: the caller learns that
    /// the work failed, and the credit comes back once the database does. One whose connection
    /// broke under it may have been made and is not tried again (it is logged as an error).
    ///
    /// # Errors
    /// 402 `no_credits` when the balance is short; `work`'s error after the refund's first try.
    pub async fn spend_for<T, Fut>(
        &self,
        db: &Database,
        id: &str,
        amount: i64,
        work: impl FnOnce() -> Fut,
    ) -> Result<(T, i64), ApiError>
    where
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let balance = self.spend(db, id, amount).await?.ok_or_else(no_credits)?;
        let mut guard = RefundGuard {
            ledger: *self,
            db: db.clone(),
            id: id.to_owned(),
            amount,
            armed: true,
        };
        match work().await {
            Ok(value) => {
                guard.armed = false;
                Ok((value, balance))
            }
            Err(error) => {
                // In a task of its own: a request dropped while the refund waits for a
                // connection cannot cut it short. Its first try is awaited, so a balance read
                // after the answer shows the credit back.
                match guard.refund() {
                    Some(first_try) => {
                        let _ = first_try.await;
                    }
                    None => {
                        if let Err(refund_error) = self.grant(db, id, amount).await {
                            tracing::error!(error = %refund_error, user = %id, amount, "credit refund failed");
                        }
                    }
                }
                Err(error)
            }
        }
    }
}

/// Refunds a spend whose work failed or never finished (its future was dropped).
struct RefundGuard {
    ledger: CreditLedger,
    db: Database,
    id: String,
    amount: i64,
    armed: bool,
}

impl RefundGuard {
    /// Gives the amount back in a task of its own (none outside a tokio runtime) that a stopping
    /// server waits for, disarmed first so the refund is made once. A refund the database
    /// certainly did not make ([`RefundFailure`]) is tried again, with pauses doubling
    /// from 0.5 s to 30 s, for up to 15 minutes; each failure is logged with the user and the
    /// amount. Told once the first try is over.
    fn refund(&mut self) -> Option<tokio::sync::oneshot::Receiver<()>> {
        self.armed = false;
        let (ledger, db, id, amount) = (self.ledger, self.db.clone(), self.id.clone(), self.amount);
        let (first_try_over, first_try) = tokio::sync::oneshot::channel();
        crate::leftover_work::spawn(async move {
            let mut first_try_over = Some(first_try_over);
            let mut pause = REFUND_RETRY_FIRST;
            let give_up_at = tokio::time::Instant::now() + REFUND_RETRIES_FOR;
            loop {
                let refunded = match db.acquire().await {
                    Ok(mut connection) => ledger
                        .update(&mut *connection, &id, amount, "+", false)
                        .await
                        .map_err(RefundFailure::Statement),
                    Err(error) => Err(RefundFailure::NoConnection(error)),
                };
                if let Some(told) = first_try_over.take() {
                    let _ = told.send(());
                }
                let Err(failure) = refunded else {
                    return;
                };
                let error = match failure {
                    RefundFailure::NoConnection(sqlx::Error::PoolClosed) => {
                        tracing::error!(user = %id, amount, "credit refund not made: the database pool is closed");
                        return;
                    }
                    RefundFailure::NoConnection(error) => error,
                    RefundFailure::Statement(error) if statement_certainly_not_applied(&error) => {
                        error
                    }
                    RefundFailure::Statement(error) => {
                        // Trying again could give the amount back twice.
                        tracing::error!(%error, user = %id, amount, "credit refund failed with its outcome unknown (the connection was lost under it); not tried again: check the balance");
                        return;
                    }
                };
                if tokio::time::Instant::now() + pause > give_up_at {
                    tracing::error!(%error, user = %id, amount, "credit refund failed; given up");
                    return;
                }
                tracing::warn!(%error, user = %id, amount, retry_in = ?pause, "credit refund failed; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(REFUND_RETRY_LONGEST);
            }
        })?;
        Some(first_try)
    }
}

/// Why a try of a refund failed.
enum RefundFailure {
    /// No connection was had (the database is unreachable, refuses connections, or every
    /// connection stayed busy): nothing was sent, and another try cannot give the amount twice.
    NoConnection(sqlx::Error),
    /// The statement failed; see [`statement_certainly_not_applied`].
    Statement(sqlx::Error),
}

/// Whether a failed statement certainly changed nothing, so that running it again cannot apply
/// it twice: the database refused it (an error of its own — a single statement that fails is
/// rolled back). A connection lost while the statement was under way leaves that unknown: it
/// may have been committed before the answer was lost.
fn statement_certainly_not_applied(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(_))
}

impl Drop for RefundGuard {
    fn drop(&mut self) {
        if self.armed {
            // Detached: the request that would have waited for it is gone.
            drop(self.refund());
        }
    }
}

/// A per-day usage counter: `table (subject, tool, day, used)` with the key
/// `(subject, tool, day)`.
#[derive(Clone, Copy, Debug)]
pub struct DailyQuota {
    table: &'static str,
}

/// The outcome of one use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaUse {
    /// Whether this use was counted (under the limit).
    pub allowed: bool,
    /// Uses counted today, this one included when allowed.
    pub used: u64,
    /// The day's limit; `None` is unlimited.
    pub limit: Option<u64>,
    /// When the count starts again: the next midnight UTC, RFC 3339.
    pub resets_at: String,
    /// Whole seconds until then, rounded up (at least 1): a refusal's `Retry-After`.
    pub resets_in_secs: u64,
}

impl DailyQuota {
    /// The counter kept in `table`.
    ///
    /// # Panics
    /// When `table` is not a plain SQL identifier.
    pub fn new(table: &'static str) -> Self {
        assert_identifier(table);
        Self { table }
    }

    /// Drops the rows of days before `today` (never read again: counts start afresh each day),
    /// once a day per process, database and table, in a task of its own so no use waits for
    /// it; without this the table would keep a row per subject, tool and day for ever.
    fn prune_before(&self, db: &Database, today: &str) {
        /// Per table: the database (by its URL — in-memory SQLite databases, all named alike,
        /// share one mark) and the day it was last pruned for.
        type Pruned = Vec<(&'static str, String, String)>;
        static PRUNED: std::sync::Mutex<Pruned> = std::sync::Mutex::new(Vec::new());
        let database = db.connect_options().database_url.to_string();
        {
            let mut pruned = PRUNED
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match pruned
                .iter_mut()
                .find(|(table, url, _)| *table == self.table && *url == database)
            {
                Some((_, _, day)) if day == today => return,
                Some((_, _, day)) => today.clone_into(day),
                None => pruned.push((self.table, database.clone(), today.to_owned())),
            }
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (table, db, today) = (self.table, db.clone(), today.to_owned());
        runtime.spawn(async move {
            // Days are ISO dates, which sort as text.
            let sql = format!("DELETE FROM {table} WHERE day < $1");
            match sqlx::query(&sql).bind(&today).execute(&db).await {
                Ok(done) => tracing::debug!(table, rows = done.rows_affected(), "pruned past days"),
                Err(error) => {
                    tracing::warn!(%error, table, "pruning past days failed");
                    // The next use tries again.
                    PRUNED
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .retain(|(pruned, url, _)| *pruned != table || *url != database);
                }
            }
        });
    }

    /// Counts one use of `tool` by `subject` today, unless `limit` is reached; checked and
    /// counted in one statement.
    ///
    /// # Errors
    /// The database failed.
    pub async fn try_use(
        &self,
        db: &Database,
        subject: &str,
        tool: &str,
        limit: Option<u64>,
    ) -> Result<QuotaUse, ApiError> {
        let now = OffsetDateTime::now_utc();
        let day = now.date().to_string();
        let midnight = now
            .date()
            .next_day()
            .unwrap_or(now.date())
            .midnight()
            .assume_utc();
        let resets_at = format!("{}T00:00:00Z", midnight.date());
        let resets_in_secs = seconds_until(now, midnight);
        let t = self.table;
        self.prune_before(db, &day);
        let (subject, tool) = (index_key(subject), index_key(tool));
        let (subject, tool) = (subject.as_ref(), tool.as_ref());
        let counted: Option<i64> = match limit {
            Some(0) => None,
            Some(limit) => {
                let sql = format!(
                    "INSERT INTO {t} (subject, tool, day, used) VALUES ($1, $2, $3, 1) \
                     ON CONFLICT (subject, tool, day) DO UPDATE SET used = {t}.used + 1 \
                     WHERE {t}.used < $4 RETURNING used"
                );
                sqlx::query_scalar(&sql)
                    .bind(subject)
                    .bind(tool)
                    .bind(&day)
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .fetch_optional(db)
                    .await?
            }
            None => {
                let sql = format!(
                    "INSERT INTO {t} (subject, tool, day, used) VALUES ($1, $2, $3, 1) \
                     ON CONFLICT (subject, tool, day) DO UPDATE SET used = {t}.used + 1 \
                     RETURNING used"
                );
                sqlx::query_scalar(&sql)
                    .bind(subject)
                    .bind(tool)
                    .bind(&day)
                    .fetch_optional(db)
                    .await?
            }
        };
        let (allowed, used) = match counted {
            Some(used) => (true, used),
            None => {
                // Refused: read the count only to report it.
                let sql =
                    format!("SELECT used FROM {t} WHERE subject = $1 AND tool = $2 AND day = $3");
                let used: Option<i64> = sqlx::query_scalar(&sql)
                    .bind(subject)
                    .bind(tool)
                    .bind(&day)
                    .fetch_optional(db)
                    .await?;
                (false, used.unwrap_or(0))
            }
        };
        Ok(QuotaUse {
            allowed,
            used: u64::try_from(used).unwrap_or(0),
            limit,
            resets_at,
            resets_in_secs,
        })
    }
}

/// Whole seconds from `now` to `then`, rounded up and at least 1: a client told to come back
/// in that many seconds finds the new day begun.
fn seconds_until(now: OffsetDateTime, then: OffsetDateTime) -> u64 {
    // A `then` already past converts to no time at all.
    let left = std::time::Duration::try_from(then - now).unwrap_or_default();
    crate::security::rate_limit::whole_seconds_up(left).max(1)
}

/// Records that `key` was processed, in `table (event_key, processed_at)` with `event_key` unique; `true`
/// the first time, `false` for every repeat — also for concurrent repeats. Run it in the same
/// transaction as the event's effect, so the effect and the record commit together.
///
/// # Errors
/// The database failed.
///
/// # Panics
/// When `table` is not a plain SQL identifier.
pub async fn claim_once<'c, E>(
    executor: E,
    table: &'static str,
    key: &str,
) -> Result<bool, ApiError>
where
    E: sqlx::Executor<'c, Database = Any>,
{
    assert_identifier(table);
    let sql = format!(
        "INSERT INTO {table} (event_key, processed_at) VALUES ($1, $2) ON CONFLICT (event_key) DO NOTHING"
    );
    let now = OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let result = sqlx::query(&sql)
        .bind(index_key(key).as_ref())
        .bind(now)
        .execute(executor)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// The longest key stored as it is: Postgres refuses a B-tree index entry past about 2.7 kB, so
/// a longer key (an event id or a tool name is whatever the client sent) is stored as its digest.
const LONGEST_PLAIN_KEY: usize = 256;

/// `key` as stored in a key column: itself, or `sha256:` and the hex SHA-256 of it when longer
/// than [`LONGEST_PLAIN_KEY`] bytes. Distinct keys stay distinct, on SQLite and Postgres alike.
fn index_key(key: &str) -> Cow<'_, str> {
    if key.len() <= LONGEST_PLAIN_KEY {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(format!("sha256:{}", hex::encode(Sha256::digest(key))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_until_reset_is_rounded_up_to_whole_seconds() {
        let midnight = time::macros::datetime!(2026-11-22 00:00 UTC);
        let second = time::Duration::SECOND;
        assert_eq!(seconds_until(midnight - 90 * second, midnight), 90);
        assert_eq!(
            seconds_until(
                midnight - 90 * second - time::Duration::milliseconds(1),
                midnight
            ),
            91
        );
        assert_eq!(
            seconds_until(midnight - time::Duration::nanoseconds(1), midnight),
            1
        );
        // Never "come back now": a reset that has just passed still asks for a second.
        assert_eq!(seconds_until(midnight, midnight), 1);
        assert_eq!(seconds_until(midnight + second, midnight), 1);
        assert_eq!(
            seconds_until(midnight - time::Duration::DAY, midnight),
            86_400
        );
    }

    #[test]
    fn long_keys_are_stored_as_their_digest() {
        // 256 bytes: the longest kept as it is.
        let short = format!("{}x", "evt_1".repeat(51));
        assert_eq!(index_key(&short), short.as_str());
        let long = format!("{short}x");
        let stored = index_key(&long);
        assert!(
            stored.starts_with("sha256:") && stored.len() == 7 + 64,
            "{stored}"
        );
        assert_ne!(index_key(&format!("{short}y")), stored);
        // By bytes: 100 three-byte characters are past the limit.
        assert!(index_key(&"語".repeat(100)).starts_with("sha256:"));
    }

    #[test]
    fn a_statement_that_lost_its_connection_may_have_been_applied() {
        let lost = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(!statement_certainly_not_applied(&sqlx::Error::Io(lost)));
        assert!(!statement_certainly_not_applied(&sqlx::Error::Protocol(
            "?".into()
        )));
    }
}
