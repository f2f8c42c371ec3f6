//! How Orchard's PostgreSQL connections are set up. Runs when `ORCHARD_TEST_POSTGRES_URL` is
//! set; CI sets it (and fails when PostgreSQL is missing).

#[tokio::test]
async fn orchard_connections_plan_without_parallel_workers() {
    let Ok(base) = std::env::var("ORCHARD_TEST_POSTGRES_URL") else {
        return;
    };
    let url = orchard_store_postgres::create_scratch_database(&base, "orchard_connect")
        .await
        .unwrap();
    let store = orchard_store_postgres::connect(&url).await.unwrap();
    // Every connection of the pool, not only the first: hold several at once.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(store.pool().acquire().await.unwrap());
    }
    for conn in &mut held {
        let workers: String = sqlx::query_scalar("SHOW max_parallel_workers_per_gather")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        assert_eq!(workers, "0");
    }
    drop(held);
    store.pool().close().await;
    orchard_store_postgres::drop_scratch_database(&base, &url)
        .await
        .unwrap();
}
