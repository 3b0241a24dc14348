//! Database errors leave by kind, in the one error shape, with nothing of the SQL or the
//! database's message in them: a real SQLite file, and Postgres when `WAYPOST_TEST_POSTGRES_URL`
//! is set (without it that test says it was skipped).
#![cfg(feature = "sqlite")]

use axum::response::IntoResponse;
use http_body_util::BodyExt;
use serde_json::Value;
use waypost::{axum, database, ApiError};

/// The error of a query that must fail.
fn failed<T>(result: Result<T, sqlx::Error>) -> sqlx::Error {
    match result {
        Ok(_) => panic!("the query succeeded"),
        Err(error) => error,
    }
}

/// The status and body `error` renders as.
async fn rendered(error: sqlx::Error) -> (u16, Value) {
    let (status, _headers, body) = rendered_whole(error).await;
    (status, body)
}

/// The status, headers and body `error` renders as.
async fn rendered_whole(error: sqlx::Error) -> (u16, axum::http::HeaderMap, Value) {
    let response = ApiError::from(error).into_response();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status.as_u16(),
        parts.headers,
        serde_json::from_slice(&bytes).unwrap(),
    )
}

fn assert_nothing_internal(body: &Value) {
    let text = body.to_string().to_ascii_lowercase();
    for internal in [
        "select",
        "insert",
        "sqlite",
        "postgres",
        "constraint",
        "unique",
        "0x00",
    ] {
        assert!(!text.contains(internal), "{internal} in {body}");
    }
}

#[tokio::test]
async fn sqlite_errors_are_404_409_by_kind() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("errors.db").display());
    let db = database::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE things (name TEXT PRIMARY KEY)")
        .execute(&db)
        .await
        .unwrap();
    let missing = failed(
        sqlx::query("SELECT name FROM things WHERE name = $1")
            .bind("absent")
            .fetch_one(&db)
            .await,
    );
    let (status, body) = rendered(missing).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    sqlx::query("INSERT INTO things (name) VALUES ($1)")
        .bind("one")
        .execute(&db)
        .await
        .unwrap();
    let duplicate = sqlx::query("INSERT INTO things (name) VALUES ($1)")
        .bind("one")
        .execute(&db)
        .await
        .unwrap_err();
    let (status, body) = rendered(duplicate).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("conflict")));
    assert_nothing_internal(&body);
    db.close().await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn a_value_postgres_refuses_as_data_is_400_not_500() {
    let Ok(url) = std::env::var("WAYPOST_TEST_POSTGRES_URL") else {
        eprintln!("skipped: WAYPOST_TEST_POSTGRES_URL is not set");
        return;
    };
    let db = database::connect(&url).await.unwrap();
    // SQLSTATE 22021: Postgres text cannot hold U+0000.
    let nul = failed(
        sqlx::query("SELECT $1::text AS value")
            .bind("a\u{0}b")
            .fetch_one(&db)
            .await,
    );
    let (status, body) = rendered(nul).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")));
    assert_nothing_internal(&body);
    // SQLSTATE 22003: a number out of range.
    let overflow = failed(
        sqlx::query("SELECT ($1::bigint * 10)::integer AS value")
            .bind(i64::MAX / 2)
            .fetch_one(&db)
            .await,
    );
    let (status, body) = rendered(overflow).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")));
    assert_nothing_internal(&body);
    db.close().await;
}

#[tokio::test]
async fn a_locked_sqlite_database_is_503_database_busy_with_retry_after() {
    use sqlx::Connection as _;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("busy.db").display());
    let db = database::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE things (name TEXT)")
        .execute(&db)
        .await
        .unwrap();
    // One connection holds the write lock; another, told not to wait, tries to write.
    let mut holder = db.acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let mut other = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::query("PRAGMA busy_timeout = 0")
        .execute(&mut other)
        .await
        .unwrap();
    let busy = failed(
        sqlx::query("INSERT INTO things (name) VALUES ('x')")
            .execute(&mut other)
            .await,
    );
    let (status, headers, body) = rendered_whole(busy).await;
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("database_busy"))
    );
    assert_nothing_internal(&body);
    sqlx::query("ROLLBACK").execute(&mut *holder).await.unwrap();
}
