//! The credit ledger's refunds: a spend whose work fails is given back exactly once, also when
//! the request goes away while the refund still waits for a database connection.

use std::time::Duration;

use waypost::{credits::CreditLedger, database, ApiError};

async fn ledger_with(balance: i64) -> (database::Database, CreditLedger) {
    // In memory: a pool of one connection, which lets the test hold the only one.
    let db = database::connect("sqlite::memory:").await.unwrap();
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
    let mut refunded = balance(&db, &ledger).await;
    for _ in 0..250 {
        if refunded == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        refunded = balance(&db, &ledger).await;
    }
    assert_eq!(refunded, 5, "the credit came back");
    // Once, not twice.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(balance(&db, &ledger).await, 5);
}
