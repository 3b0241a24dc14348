//! Postgres over TLS when the URL asks for it (`sslmode=require`, what managed Postgres
//! services hand out): the connection is encrypted, as the server itself reports. Runs when
//! `WAYPOST_TEST_POSTGRES_URL` names a server with TLS on (Debian's is, with its snakeoil
//! certificate); without the variable it says it was skipped.
#![cfg(feature = "postgres")]

use waypost::database;

#[tokio::test]
async fn sslmode_require_connects_encrypted() {
    let Ok(url) = std::env::var("WAYPOST_TEST_POSTGRES_URL") else {
        eprintln!("skipped: WAYPOST_TEST_POSTGRES_URL is not set");
        return;
    };
    let separator = if url.contains('?') { '&' } else { '?' };
    let db = database::connect(&format!("{url}{separator}sslmode=require"))
        .await
        .expect("a TLS connection to Postgres");
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&db)
            .await
            .unwrap();
    assert!(encrypted, "the server sees an encrypted connection");
    db.close().await;

    // The same server without TLS asked for stays reachable as before.
    let plain = database::connect(&format!("{url}{separator}sslmode=disable"))
        .await
        .unwrap();
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&plain)
            .await
            .unwrap();
    assert!(!encrypted);
    plain.close().await;
}
