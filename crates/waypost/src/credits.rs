//! Money-like counters over SQL: a balance that is spent and refunded atomically, a daily usage
//! quota, and once-only processing of external events.
//!
//! Every change is one conditional statement — `UPDATE … SET balance = balance - n WHERE id = ?
//! AND balance >= n RETURNING balance`, or an upsert whose update only happens under the limit —
//! never a read, a check in Rust, and a write: two requests can never both see the last credit.
//! The same SQL runs on SQLite (≥ 3.35) and Postgres.
//!
//! A spend that pays for work ([`CreditLedger::spend_for`]) is given back when the work fails.
//! With a holds table ([`CreditLedger::with_holds`]) that refund is durable: the spend leaves a
//! row beside the balance in the same transaction, and the refund gives the amount back only
//! together with removing that row — so it can be tried until it lands, and one the process
//! could not make (the database down as it stopped) is made later by
//! [`CreditLedger::release_stale_holds`], in this process or another.

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
/// How long one try of a refund may take: a connection, and its statement or transaction.
const REFUND_TRY_LIMIT: Duration = Duration::from_secs(30);

/// A balance column: `table.balance_column`, keyed by `id_column`.
#[derive(Clone, Copy, Debug)]
pub struct CreditLedger {
    table: &'static str,
    id_column: &'static str,
    balance_column: &'static str,
    /// Where spends wait for their work (see [`CreditLedger::with_holds`]).
    holds: Option<&'static str>,
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
            holds: None,
        }
    }

    /// Keeps each spend of [`spend_for`](Self::spend_for) as a row of `table` until its work is
    /// done, so that no refund is ever lost. The table:
    ///
    /// ```sql
    /// CREATE TABLE credit_holds (
    ///     id          TEXT PRIMARY KEY,
    ///     account     TEXT NOT NULL,
    ///     amount      BIGINT NOT NULL,
    ///     created_at  BIGINT NOT NULL  -- Unix seconds
    /// );
    /// CREATE INDEX credit_holds_created_at ON credit_holds (created_at);
    /// ```
    ///
    /// The hold is written in the spend's transaction. Work that succeeds removes it; work that
    /// fails (or is dropped) removes it and gives the amount back in one transaction, tried
    /// again until it lands: with the hold gating it, a second try cannot give twice. A hold
    /// still there after the process stopped — the database was down when its refund was due —
    /// is refunded by [`release_stale_holds`](Self::release_stale_holds) once it is older than
    /// any work could run. (If the process stops between a success and the removal of its hold,
    /// the sweep refunds that spend too: the error falls on the side of the customer.)
    ///
    /// # Panics
    /// When `table` is not a plain SQL identifier.
    pub fn with_holds(mut self, table: &'static str) -> Self {
        assert_identifier(table);
        self.holds = Some(table);
        self
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
    /// the work failed, and the credit comes back once the database does. Without a holds table
    /// a refund whose connection broke under it may have been made and is not tried again (it
    /// is logged as an error), and one still not made when the process stops is lost; with one
    /// ([`with_holds`](Self::with_holds)) neither happens.
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
        let (balance, hold) = match self.holds {
            Some(holds) => {
                let (balance, hold) = self
                    .spend_with_hold(db, holds, id, amount)
                    .await?
                    .ok_or_else(no_credits)?;
                (balance, Some(hold))
            }
            None => (
                self.spend(db, id, amount).await?.ok_or_else(no_credits)?,
                None,
            ),
        };
        let mut guard = RefundGuard {
            ledger: *self,
            db: db.clone(),
            id: id.to_owned(),
            amount,
            hold,
            armed: true,
        };
        let (outcome, closing) = match work().await {
            Ok(value) => (Ok((value, balance)), Closing::Settle),
            Err(error) => (Err(error), Closing::Refund),
        };
        if closing == Closing::Settle && guard.hold.is_none() {
            // Nothing was kept that would need removing.
            guard.armed = false;
            return outcome;
        }
        // In a task of its own: a request dropped while the write waits for a connection cannot
        // cut it short. Its first try is awaited, so a balance read after the answer shows the
        // credit back (and no hold is left of a success).
        match guard.close(closing) {
            Some(first_try) => {
                let _ = first_try.await;
            }
            None => {
                let mut connection = db.acquire().await?;
                if let Err(error) = self
                    .close(
                        &mut connection,
                        closing,
                        &guard.id,
                        amount,
                        guard.hold.as_deref(),
                    )
                    .await
                {
                    tracing::error!(%error, user = %id, amount, "credit refund failed");
                }
            }
        }
        outcome
    }

    /// Spends `amount` and keeps the spend in `holds`, in one transaction; the new balance and
    /// the hold's id, or `None` when the balance is short.
    async fn spend_with_hold(
        &self,
        db: &Database,
        holds: &str,
        id: &str,
        amount: i64,
    ) -> Result<Option<(i64, String)>, ApiError> {
        let mut transaction = db.begin().await?;
        // Dropped unfinished, the transaction rolls back: nothing spent, nothing held.
        let Some(balance) = self
            .update(&mut *transaction, id, amount, "-", true)
            .await?
        else {
            return Ok(None);
        };
        let hold = uuid::Uuid::new_v4().simple().to_string();
        sqlx::query(&format!(
            "INSERT INTO {holds} (id, account, amount, created_at) VALUES ($1, $2, $3, $4)"
        ))
        .bind(&hold)
        .bind(id)
        .bind(amount)
        .bind(unix_now())
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(Some((balance, hold)))
    }

    /// Writes how a spend ended: its refund (with its hold, in one transaction, given back only
    /// if the hold was still there), or the removal of the hold of a spend whose work succeeded.
    async fn close(
        &self,
        connection: &mut sqlx::AnyConnection,
        closing: Closing,
        id: &str,
        amount: i64,
        hold: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        match (closing, hold, self.holds) {
            (Closing::Refund, Some(hold), Some(holds)) => {
                self.release(connection, holds, hold).await?;
            }
            (Closing::Settle, Some(hold), Some(holds)) => {
                sqlx::query(&format!("DELETE FROM {holds} WHERE id = $1"))
                    .bind(hold)
                    .execute(&mut *connection)
                    .await?;
            }
            (Closing::Refund, _, _) => {
                if self
                    .update(&mut *connection, id, amount, "+", false)
                    .await?
                    .is_none()
                {
                    tracing::warn!(user = %id, amount, "credit refund found no room (or no account)");
                }
            }
            (Closing::Settle, _, _) => {}
        }
        Ok(())
    }

    /// Removes `hold` and gives its amount back to its account, in one transaction; whether the
    /// hold was there (a second try, or a sweep that came first, finds it gone and gives
    /// nothing).
    async fn release(
        &self,
        connection: &mut sqlx::AnyConnection,
        holds: &str,
        hold: &str,
    ) -> Result<bool, sqlx::Error> {
        use sqlx::Connection as _;
        let mut transaction = connection.begin().await?;
        let removed: Option<(String, i64)> = sqlx::query_as(&format!(
            "DELETE FROM {holds} WHERE id = $1 RETURNING account, amount"
        ))
        .bind(hold)
        .fetch_all(&mut *transaction)
        .await?
        .into_iter()
        .next();
        let Some((account, amount)) = removed else {
            return Ok(false);
        };
        if self
            .update(&mut *transaction, &account, amount, "+", false)
            .await?
            .is_none()
        {
            tracing::warn!(user = %account, amount, "credit refund found no room (or no account)");
        }
        transaction.commit().await?;
        Ok(true)
    }

    /// Refunds every hold older than `older_than` — spends whose refund a process could not make
    /// before it stopped. Pick an age no work paid for this way can reach. How many were
    /// refunded (at most 1000 a call; call again while it returns 1000).
    ///
    /// # Errors
    /// The database failed (holds refunded before that stay refunded).
    pub async fn release_stale_holds(
        &self,
        db: &Database,
        older_than: Duration,
    ) -> Result<u64, ApiError> {
        let Some(holds) = self.holds else {
            return Ok(0);
        };
        let age = i64::try_from(older_than.as_secs()).unwrap_or(i64::MAX);
        let stale: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT id FROM {holds} WHERE created_at <= $1 ORDER BY created_at LIMIT 1000"
        ))
        .bind(unix_now().saturating_sub(age))
        .fetch_all(db)
        .await?;
        let mut released = 0;
        let mut first_failure = None;
        let mut connection = db.acquire().await?;
        for hold in stale {
            // One hold that cannot be refunded (its account gone, a trigger refusing it) must
            // not keep the ones after it from being refunded, pass after pass.
            match self.release(&mut connection, holds, &hold).await {
                Ok(true) => released += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::error!(%error, %hold, "a stale credit hold could not be refunded");
                    first_failure.get_or_insert(error);
                }
            }
        }
        if released > 0 {
            tracing::warn!(released, "stale credit holds refunded");
        }
        match first_failure {
            Some(error) if released == 0 => Err(error.into()),
            _ => Ok(released),
        }
    }

    /// Runs [`release_stale_holds`](Self::release_stale_holds) now and then every quarter of
    /// `older_than` (between 10 s and 5 min), in a task of its own, for as long as the runtime
    /// runs: holds an earlier run of the app (or another instance) left behind are refunded
    /// without anyone asking. A failed pass is logged and tried at the next.
    pub fn keep_releasing_stale_holds(
        self,
        db: Database,
        older_than: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let every = (older_than / 4).clamp(Duration::from_secs(10), Duration::from_secs(300));
        tokio::spawn(async move {
            loop {
                if let Err(error) = self.release_stale_holds(&db, older_than).await {
                    tracing::warn!(%error, "stale credit holds could not be refunded now");
                }
                tokio::time::sleep(every).await;
            }
        })
    }
}

/// Seconds since the Unix epoch, as the holds table keeps them.
fn unix_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// How a spend of [`CreditLedger::spend_for`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Closing {
    /// Its work failed or was dropped: the amount goes back.
    Refund,
    /// Its work succeeded: its hold goes.
    Settle,
}

/// Refunds a spend whose work failed or never finished (its future was dropped), and removes the
/// hold of one whose work succeeded.
struct RefundGuard {
    ledger: CreditLedger,
    db: Database,
    id: String,
    amount: i64,
    /// The spend's hold, when the ledger keeps them.
    hold: Option<String>,
    armed: bool,
}

impl RefundGuard {
    /// Writes `closing` in a task of its own (none outside a tokio runtime) that a stopping
    /// server waits for, disarmed first so it is written once. A try that certainly changed
    /// nothing ([`RefundFailure`]) — any try, with a hold, which makes the write idempotent — is
    /// made again, with pauses doubling from 0.5 s to 30 s, for up to 15 minutes; each failure
    /// is logged with the user and the amount. A hold left when tries end is refunded by
    /// [`CreditLedger::release_stale_holds`]. Told once the first try is over.
    fn close(&mut self, closing: Closing) -> Option<tokio::sync::oneshot::Receiver<()>> {
        self.armed = false;
        let (ledger, db, id, amount) = (self.ledger, self.db.clone(), self.id.clone(), self.amount);
        let hold = self.hold.clone();
        let (first_try_over, first_try) = tokio::sync::oneshot::channel();
        crate::leftover_work::spawn(async move {
            let mut first_try_over = Some(first_try_over);
            let mut pause = REFUND_RETRY_FIRST;
            let give_up_at = tokio::time::Instant::now() + REFUND_RETRIES_FOR;
            let what = match closing {
                Closing::Refund => "credit refund",
                Closing::Settle => "credit hold removal",
            };
            loop {
                let attempt = async {
                    match db.acquire().await {
                        Ok(mut connection) => ledger
                            .close(&mut connection, closing, &id, amount, hold.as_deref())
                            .await
                            .map_err(RefundFailure::Statement),
                        Err(error) => Err(RefundFailure::NoConnection(error)),
                    }
                };
                // A connection that went silent (a database behind a dropped route) would hold
                // a try until the kernel gives up on it, some fifteen minutes later.
                let written = tokio::time::timeout(REFUND_TRY_LIMIT, attempt)
                    .await
                    .unwrap_or(Err(RefundFailure::Silent));
                if let Some(told) = first_try_over.take() {
                    let _ = told.send(());
                }
                let Err(failure) = written else {
                    return;
                };
                let error = match failure {
                    RefundFailure::NoConnection(sqlx::Error::PoolClosed) => {
                        tracing::error!(user = %id, amount, hold = ?hold, "{what} not made: the database pool is closed");
                        return;
                    }
                    RefundFailure::NoConnection(error) => error,
                    RefundFailure::Statement(error)
                        if hold.is_some() || statement_certainly_not_applied(&error) =>
                    {
                        error
                    }
                    RefundFailure::Statement(error) => {
                        // Trying again could give the amount back twice.
                        tracing::error!(%error, user = %id, amount, "{what} failed with its outcome unknown (the connection was lost under it); not tried again: check the balance");
                        return;
                    }
                    RefundFailure::Silent if hold.is_some() => sqlx::Error::PoolTimedOut,
                    RefundFailure::Silent => {
                        tracing::error!(user = %id, amount, limit = ?REFUND_TRY_LIMIT, "{what} got no answer in time, its outcome unknown; not tried again: check the balance");
                        return;
                    }
                };
                if tokio::time::Instant::now() + pause > give_up_at {
                    match &hold {
                        Some(hold) => {
                            tracing::error!(%error, user = %id, amount, %hold, "{what} failed; left to the sweep of stale holds")
                        }
                        None => {
                            tracing::error!(%error, user = %id, amount, "{what} failed; given up")
                        }
                    }
                    return;
                }
                tracing::warn!(%error, user = %id, amount, retry_in = ?pause, "{what} failed; trying again");
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
    /// No answer within [`REFUND_TRY_LIMIT`]: whether the statement was applied is not known.
    Silent,
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
            drop(self.close(Closing::Refund));
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
