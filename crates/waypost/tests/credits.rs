//! The credit ledger's refunds: a spend whose work fails is given back exactly once, also when
//! the request goes away while the refund still waits for a database connection, and when the
//! server stops before the work ends — with a holds table and without; with one, a refund the
//! process could not make before it stopped is made by the sweep of stale holds, once; and the
//! daily quota's table keeping only today's counts.

use std::time::Duration;

use waypost::{
    axum::Router,
    config::ServerConfig,
    credits::{CreditLedger, DailyQuota},
    database,
    routing::{HandlerInfo, Method, RouteInfo, RouteMethods},
    testing::TestServer,
    ApiError, App, RouteConfig,
};

/// The ledger without a holds table, and with one; each with whether it keeps holds.
fn ledgers() -> [(CreditLedger, bool); 2] {
    let plain = CreditLedger::new("users", "id", "credits");
    [(plain, false), (plain.with_holds("credit_holds"), true)]
}

/// The ledger that keeps its spends in `credit_holds`.
fn holding_ledger() -> CreditLedger {
    ledgers()[1].0
}

/// Checks that the credit came back to 5, and, `settle` later, that it came back once.
async fn refunded_once(db: &database::Database, ledger: &CreditLedger, settle: Duration) {
    assert_eq!(
        balance_once_it_is(5, db, ledger).await,
        5,
        "the credit came back"
    );
    tokio::time::sleep(settle).await;
    assert_eq!(balance(db, ledger).await, 5, "once, not twice");
    assert_eq!(holds(db).await, 0);
}

async fn ledger_with(balance: i64) -> database::Database {
    // In memory: a pool of one connection, which lets the test hold the only one.
    ledger_at("sqlite::memory:", balance).await
}

async fn ledger_at(url: &str, balance: i64) -> database::Database {
    let db = database::connect(url).await.unwrap();
    for statement in [
        "CREATE TABLE users (id TEXT PRIMARY KEY, credits BIGINT NOT NULL)",
        "CREATE TABLE credit_holds (id TEXT PRIMARY KEY, account TEXT NOT NULL, \
         amount BIGINT NOT NULL, created_at BIGINT NOT NULL)",
    ] {
        sqlx::query(statement).execute(&db).await.unwrap();
    }
    sqlx::query("INSERT INTO users (id, credits) VALUES ('u1', $1)")
        .bind(balance)
        .execute(&db)
        .await
        .unwrap();
    db
}

/// How many holds are kept.
async fn holds(db: &database::Database) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM credit_holds")
        .fetch_one(db)
        .await
        .unwrap()
}

async fn balance(db: &database::Database, ledger: &CreditLedger) -> i64 {
    ledger.balance(db, "u1").await.unwrap().unwrap()
}

/// The balance once it reads `expected`, or what it reads after five seconds of asking.
async fn balance_once_it_is(expected: i64, db: &database::Database, ledger: &CreditLedger) -> i64 {
    let mut seen = balance(db, ledger).await;
    for _ in 0..250 {
        if seen == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        seen = balance(db, ledger).await;
    }
    seen
}

#[tokio::test]
async fn failed_work_is_refunded_and_its_error_returned() {
    for (ledger, keeps_holds) in ledgers() {
        let db = ledger_with(5).await;
        let failed = ledger
            .spend_for(&db, "u1", 2, || async {
                Err::<(), _>(ApiError::upstream_failed("the generator is down"))
            })
            .await
            .unwrap_err();
        assert_eq!(failed.code(), "upstream_failed");
        assert_eq!(balance(&db, &ledger).await, 5);
        let (value, after) = ledger
            .spend_for(&db, "u1", 2, || async {
                // Held while the work runs, when the ledger keeps holds.
                Ok::<_, ApiError>(holds(&db).await)
            })
            .await
            .unwrap();
        assert_eq!((value, after), (i64::from(keeps_holds), 3));
        assert_eq!(balance(&db, &ledger).await, 3);
        assert_eq!(holds(&db).await, 0, "nothing held once the spends are over");
    }
}

/// Spends `amount` from `u1` for work that fails after taking the balances' table away, so the
/// refund that follows is refused (as by a database that cannot be reached); the work's error.
async fn spend_with_refund_refused(
    ledger: &CreditLedger,
    db: &database::Database,
    amount: i64,
) -> ApiError {
    ledger
        .spend_for(db, "u1", amount, || async {
            sqlx::query("ALTER TABLE users RENAME TO users_away")
                .execute(db)
                .await
                .unwrap();
            Err::<(), _>(ApiError::upstream_failed("the generator is down"))
        })
        .await
        .unwrap_err()
}

/// The database refuses the refund (here its table is away, as a database that cannot be
/// reached would): the caller still gets the work's own error, and the refund is tried again
/// until it lands.
#[tokio::test]
async fn a_refund_the_database_refuses_is_tried_again_until_it_lands() {
    for (ledger, _) in ledgers() {
        let db = ledger_with(5).await;
        let failed = spend_with_refund_refused(&ledger, &db, 1).await;
        assert_eq!(
            failed.code(),
            "upstream_failed",
            "the work's error, not the refund's"
        );
        // Past the first retry.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let (refused,): (i64,) = sqlx::query_as("SELECT credits FROM users_away WHERE id = 'u1'")
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(refused, 4, "not refunded while refused");
        sqlx::query("ALTER TABLE users_away RENAME TO users")
            .execute(&db)
            .await
            .unwrap();
        refunded_once(&db, &ledger, Duration::from_secs(2)).await;
    }
}

#[tokio::test]
async fn a_refund_waiting_for_a_connection_outlives_its_request() {
    for (ledger, _) in ledgers() {
        let db = ledger_with(5).await;
        let (hand_over, handed) = tokio::sync::oneshot::channel();
        let request = tokio::spawn({
            let db = db.clone();
            async move {
                ledger
                    .spend_for(&db, "u1", 1, || async {
                        // The work takes the pool's only connection with it, so the refund that
                        // follows its failure has to wait.
                        hand_over.send(db.acquire().await.unwrap()).unwrap();
                        Err::<(), _>(ApiError::upstream_failed("the generator is down"))
                    })
                    .await
            }
        });
        let connection = handed.await.unwrap();
        // The request is now waiting for the connection to refund; the client goes away.
        request.abort();
        assert!(request.await.unwrap_err().is_cancelled());
        drop(connection);
        refunded_once(&db, &ledger, Duration::from_millis(100)).await;
    }
}

/// A request whose paid work never ends is still open at the shutdown deadline: the server drops
/// it and, before it returns, the credit is back — over HTTP/1, and over HTTP/2, where hyper
/// runs each request in a task apart from its connection's, and with an `Idempotency-Key`, whose
/// handler runs in a task of its own that outlives the connection until the deadline. The
/// server runs in a runtime of its own that ends as soon as it returns, as `main` would: what
/// was not done by then is lost.
#[test]
fn a_server_stopping_past_its_deadline_refunds_the_work_it_drops() {
    static ENDLESS: RouteInfo = RouteInfo::at(
        &["/endless"],
        &[HandlerInfo::of(Method::Post)],
        RouteConfig::new().idempotent(),
    );
    let dir = tempfile::tempdir().unwrap();
    for (ledger, keeps_holds) in ledgers() {
        for (http2, idempotency_key) in [(false, false), (true, false), (false, true)] {
            let case = format!(
                "HTTP/2: {http2}, Idempotency-Key: {idempotency_key}, holds: {keeps_holds}"
            );
            let url = format!(
                "sqlite://{}/http2-{http2}-key-{idempotency_key}-holds-{keeps_holds}.db?mode=rwc",
                dir.path().display()
            );
            let serving = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            serving.block_on(async {
                let db = ledger_at(&url, 5).await;
                let router = RouteMethods::new(&ENDLESS)
                    .post({
                        let db = db.clone();
                        move || async move {
                            ledger
                                .spend_for(
                                    &db,
                                    "u1",
                                    1,
                                    std::future::pending::<Result<(), ApiError>>,
                                )
                                .await
                                .map(|_| "never")
                        }
                    })
                    .mount(Router::new());
                let config = ServerConfig {
                    shutdown_timeout: Duration::from_millis(200),
                    ..ServerConfig::default()
                };
                let server = TestServer::start(App::new(router).with_server_config(config)).await;
                let client = if http2 {
                    reqwest::Client::builder().http2_prior_knowledge().build()
                } else {
                    reqwest::Client::builder().http1_only().build()
                }
                .unwrap();
                let mut request = client.post(server.url("/endless"));
                if idempotency_key {
                    request = request.header("idempotency-key", "endless");
                }
                drop(tokio::spawn(request.send()));
                assert_eq!(
                    balance_once_it_is(4, &db, &ledger).await,
                    4,
                    "the request spent its credit ({case})"
                );
                let ended = server.finish().await;
                assert_eq!(
                    ended.map_err(|error| error.kind()),
                    Err(std::io::ErrorKind::TimedOut),
                    "a stop that dropped a request is reported ({case})"
                );
            });
            drop(serving);
            let checking = tokio::runtime::Runtime::new().unwrap();
            let (refunded, held) = checking.block_on(async {
                let db = database::connect(&url).await.unwrap();
                (balance(&db, &ledger).await, holds(&db).await)
            });
            assert_eq!(
                (refunded, held),
                (5, 0),
                "given back before the server returned ({case})"
            );
        }
    }
}

/// The process stops while the database refuses the refund (its table away, as a database down
/// would): the credit is not back, but its hold is kept, and the next sweep of stale holds — a
/// restarted app's, another instance's — gives it back, once.
#[test]
fn a_refund_the_process_could_not_make_is_made_by_the_sweep_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/sweep.db?mode=rwc", dir.path().display());
    let ledger = holding_ledger();
    let stopped = tokio::runtime::Runtime::new().unwrap();
    stopped.block_on(async {
        let db = ledger_at(&url, 5).await;
        let failed = spend_with_refund_refused(&ledger, &db, 2).await;
        assert_eq!(failed.code(), "upstream_failed");
    });
    // The process is gone, its retries with it.
    drop(stopped);
    let restarted = tokio::runtime::Runtime::new().unwrap();
    restarted.block_on(async {
        let db = database::connect(&url).await.unwrap();
        sqlx::query("ALTER TABLE users_away RENAME TO users")
            .execute(&db)
            .await
            .unwrap();
        assert_eq!(balance(&db, &ledger).await, 3, "not given back yet");
        assert_eq!(holds(&db).await, 1, "the spend is still held");
        // Younger than the age asked for: left alone.
        let young = ledger
            .release_stale_holds(&db, Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!((young, balance(&db, &ledger).await), (0, 3));
        // The oldest hold cannot be refunded (its amount is no number): it must not keep the
        // others from being refunded.
        sqlx::query(
            "INSERT INTO credit_holds (id, account, amount, created_at) \
             VALUES ('broken', 'u1', 'not a number', 0)",
        )
        .execute(&db)
        .await
        .unwrap();
        let released = ledger
            .release_stale_holds(&db, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(released, 1);
        assert_eq!(balance(&db, &ledger).await, 5, "the credit came back");
        assert_eq!(holds(&db).await, 1, "only the broken hold is left");
        // Nothing more to give: once, not twice; the broken hold is reported.
        assert!(ledger
            .release_stale_holds(&db, Duration::ZERO)
            .await
            .is_err());
        assert_eq!(balance(&db, &ledger).await, 5);
    });
}

/// A sweep that judged a spend stale while its work still ran gave the credit back; the work's
/// own refund then finds the hold gone and gives nothing more.
#[tokio::test]
async fn a_spend_refunded_by_a_sweep_is_not_refunded_again_by_its_work() {
    let ledger = holding_ledger();
    let db = ledger_with(5).await;
    let failed = ledger
        .spend_for(&db, "u1", 2, || async {
            let released = ledger
                .release_stale_holds(&db, Duration::ZERO)
                .await
                .unwrap();
            assert_eq!(released, 1);
            assert_eq!(balance(&db, &ledger).await, 5);
            Err::<(), _>(ApiError::upstream_failed("the generator is down"))
        })
        .await
        .unwrap_err();
    assert_eq!(failed.code(), "upstream_failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(balance(&db, &ledger).await, 5, "not 7");
    assert_eq!(holds(&db).await, 0);
}

/// The holds and the sweep on Postgres (skipped without `WAYPOST_TEST_POSTGRES_URL`): concurrent
/// spends take exactly the balance, failed work is refunded, and a kept hold is swept once.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn holds_on_postgres() {
    let Ok(url) = std::env::var("WAYPOST_TEST_POSTGRES_URL") else {
        eprintln!("skipped: WAYPOST_TEST_POSTGRES_URL is not set");
        return;
    };
    let db = database::connect(&url).await.unwrap();
    let suffix = uuid_suffix();
    let users: &'static str = Box::leak(format!("credit_users_{suffix}").into_boxed_str());
    let holds_table: &'static str = Box::leak(format!("credit_holds_{suffix}").into_boxed_str());
    for statement in [
        format!("CREATE TABLE {users} (id TEXT PRIMARY KEY, credits BIGINT NOT NULL)"),
        format!(
            "CREATE TABLE {holds_table} (id TEXT PRIMARY KEY, account TEXT NOT NULL, \
             amount BIGINT NOT NULL, created_at BIGINT NOT NULL)"
        ),
        format!("INSERT INTO {users} (id, credits) VALUES ('u1', 3)"),
    ] {
        sqlx::query(&statement).execute(&db).await.unwrap();
    }
    let ledger = CreditLedger::new(users, "id", "credits").with_holds(holds_table);
    let held = |db: database::Database| async move {
        sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {holds_table}"))
            .fetch_one(&db)
            .await
            .unwrap()
    };
    // Eight at once for three credits: three are paid for, and each of those fails.
    let attempts = (0..8).map(|_| {
        let db = db.clone();
        async move {
            ledger
                .spend_for(&db, "u1", 1, || async {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Err::<(), _>(ApiError::upstream_failed("down"))
                })
                .await
                .unwrap_err()
                .code()
                .to_owned()
        }
    });
    let mut codes = futures_util::future::join_all(attempts).await;
    codes.sort();
    assert_eq!(
        codes,
        [vec!["no_credits"; 5], vec!["upstream_failed"; 3]].concat()
    );
    assert_eq!(ledger.balance(&db, "u1").await.unwrap(), Some(3));
    assert_eq!(held(db.clone()).await, 0);
    // A hold left behind is swept once.
    sqlx::query(&format!(
        "INSERT INTO {holds_table} (id, account, amount, created_at) VALUES ('h1', 'u1', 2, 0)"
    ))
    .execute(&db)
    .await
    .unwrap();
    let swept = ledger
        .release_stale_holds(&db, Duration::from_secs(60))
        .await;
    assert_eq!(swept.unwrap(), 1);
    assert_eq!(
        ledger
            .release_stale_holds(&db, Duration::ZERO)
            .await
            .unwrap(),
        0
    );
    assert_eq!(ledger.balance(&db, "u1").await.unwrap(), Some(5));
    for table in [users, holds_table] {
        sqlx::query(&format!("DROP TABLE {table}"))
            .execute(&db)
            .await
            .unwrap();
    }
}

/// A table-name suffix of this run's own.
#[cfg(feature = "postgres")]
fn uuid_suffix() -> String {
    format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

/// Each database's table is pruned: two apps' databases in one process, the same table name.
#[tokio::test]
async fn the_daily_quota_drops_past_days_and_keeps_today() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["first", "second"] {
        let url = format!("sqlite://{}/{name}.db?mode=rwc", dir.path().display());
        let db = database::connect(&url).await.unwrap();
        past_days_are_dropped(&db).await;
    }
}

async fn past_days_are_dropped(db: &database::Database) {
    sqlx::query(
        "CREATE TABLE tool_counts (subject TEXT NOT NULL, tool TEXT NOT NULL, day TEXT NOT NULL, \
         used BIGINT NOT NULL, PRIMARY KEY (subject, tool, day))",
    )
    .execute(db)
    .await
    .unwrap();
    let today = time::OffsetDateTime::now_utc().date();
    let yesterday = today.previous_day().unwrap().to_string();
    for (subject, day) in [("ip:1", yesterday.as_str()), ("ip:2", "2020-01-31")] {
        sqlx::query("INSERT INTO tool_counts (subject, tool, day, used) VALUES ($1, 'ocr', $2, 3)")
            .bind(subject)
            .bind(day)
            .execute(db)
            .await
            .unwrap();
    }
    let quota = DailyQuota::new("tool_counts");
    let first = quota.try_use(db, "ip:1", "ocr", Some(3)).await.unwrap();
    assert!(first.allowed, "yesterday's three do not count today");
    assert_eq!(first.used, 1);
    let days = || async {
        sqlx::query_scalar::<_, String>("SELECT day FROM tool_counts ORDER BY day")
            .fetch_all(db)
            .await
            .unwrap()
    };
    // The pruning runs beside the use.
    let mut left = days().await;
    for _ in 0..250 {
        if left.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        left = days().await;
    }
    assert_eq!(left, [today.to_string()]);
    let second = quota.try_use(db, "ip:1", "ocr", Some(3)).await.unwrap();
    assert_eq!(second.used, 2);
}
