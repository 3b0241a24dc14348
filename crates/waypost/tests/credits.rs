//! The credit ledger's refunds: a spend whose work fails is given back exactly once, also when
//! the request goes away while the refund still waits for a database connection, and when the
//! server stops before the work ends; and the daily quota's table keeping only today's counts.

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

async fn ledger_with(balance: i64) -> (database::Database, CreditLedger) {
    // In memory: a pool of one connection, which lets the test hold the only one.
    ledger_at("sqlite::memory:", balance).await
}

async fn ledger_at(url: &str, balance: i64) -> (database::Database, CreditLedger) {
    let db = database::connect(url).await.unwrap();
    sqlx::query("CREATE TABLE users (id TEXT PRIMARY KEY, credits BIGINT NOT NULL)")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("INSERT INTO users (id, credits) VALUES ('u1', $1)")
        .bind(balance)
        .execute(&db)
        .await
        .unwrap();
    (db, CreditLedger::new("users", "id", "credits"))
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
    let (db, ledger) = ledger_with(5).await;
    let failed = ledger
        .spend_for(&db, "u1", 2, || async {
            Err::<(), _>(ApiError::upstream_failed("the generator is down"))
        })
        .await
        .unwrap_err();
    assert_eq!(failed.code(), "upstream_failed");
    assert_eq!(balance(&db, &ledger).await, 5);
    let (value, after) = ledger
        .spend_for(&db, "u1", 2, || async { Ok::<_, ApiError>("done") })
        .await
        .unwrap();
    assert_eq!((value, after), ("done", 3));
    assert_eq!(balance(&db, &ledger).await, 3);
}

/// The database refuses the refund (here its table is away, as a database that cannot be
/// reached would): the caller still gets the work's own error, and the refund is tried again
/// until it lands.
#[tokio::test]
async fn a_refund_the_database_refuses_is_tried_again_until_it_lands() {
    let (db, ledger) = ledger_with(5).await;
    let failed = ledger
        .spend_for(&db, "u1", 1, || async {
            sqlx::query("ALTER TABLE users RENAME TO users_away")
                .execute(&db)
                .await
                .unwrap();
            Err::<(), _>(ApiError::upstream_failed("the generator is down"))
        })
        .await
        .unwrap_err();
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
    assert_eq!(
        balance_once_it_is(5, &db, &ledger).await,
        5,
        "the credit came back"
    );
    // Once, not twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(balance(&db, &ledger).await, 5);
}

#[tokio::test]
async fn a_refund_waiting_for_a_connection_outlives_its_request() {
    let (db, ledger) = ledger_with(5).await;
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
    assert_eq!(
        balance_once_it_is(5, &db, &ledger).await,
        5,
        "the credit came back"
    );
    // Once, not twice.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(balance(&db, &ledger).await, 5);
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
    for (http2, idempotency_key) in [(false, false), (true, false), (false, true)] {
        let case = format!("HTTP/2: {http2}, Idempotency-Key: {idempotency_key}");
        let url = format!(
            "sqlite://{}/http2-{http2}-key-{idempotency_key}.db?mode=rwc",
            dir.path().display()
        );
        let serving = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        serving.block_on(async {
            let (db, ledger) = ledger_at(&url, 5).await;
            let router = RouteMethods::new(&ENDLESS)
                .post({
                    let db = db.clone();
                    move || async move {
                        ledger
                            .spend_for(&db, "u1", 1, std::future::pending::<Result<(), ApiError>>)
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
            server.stop().await;
        });
        drop(serving);
        let checking = tokio::runtime::Runtime::new().unwrap();
        let refunded = checking.block_on(async {
            let db = database::connect(&url).await.unwrap();
            balance(&db, &CreditLedger::new("users", "id", "credits")).await
        });
        assert_eq!(
            refunded, 5,
            "given back before the server returned ({case})"
        );
    }
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
