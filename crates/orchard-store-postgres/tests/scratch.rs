//! Scratch databases: made per test, and swept once their process has gone. Runs when
//! `ORCHARD_TEST_POSTGRES_URL` is set; CI sets it (and fails when PostgreSQL is missing).

use sqlx::Connection;

async fn exists(base: &str, name: &str) -> bool {
    let mut conn = sqlx::PgConnection::connect(base).await.unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    n == 1
}

#[tokio::test]
async fn a_scratch_database_of_an_exited_process_is_swept_and_a_live_ones_kept() {
    let Ok(base) = std::env::var("ORCHARD_TEST_POSTGRES_URL") else {
        return;
    };
    // Process 0 is never a user process: its database was abandoned. This process is alive.
    let abandoned = "orchard_sweeptest_0_0_0";
    let live = format!("orchard_sweeptest_{}_99_0", std::process::id());
    let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
    for name in [abandoned, live.as_str()] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\""
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .unwrap();
    }

    let made = orchard_store_postgres::create_scratch_database(&base, "orchard_sweeptest")
        .await
        .unwrap();
    assert!(
        !exists(&base, abandoned).await,
        "the abandoned one is dropped"
    );
    assert!(exists(&base, &live).await, "a live process keeps its own");

    for url in [made, format!("{base}/{live}")] {
        orchard_store_postgres::drop_scratch_database(&base, &url)
            .await
            .unwrap();
    }
    assert!(!exists(&base, &live).await);
}
