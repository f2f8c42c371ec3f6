//! The storage conformance story on PostgreSQL, each test in a fresh database. Runs when
//! `ORCHARD_TEST_POSTGRES_URL` is set; CI sets it (and fails when PostgreSQL is missing).

use orchard_store_sql::SqlStore;

async fn fresh() -> Option<SqlStore> {
    let base = std::env::var("ORCHARD_TEST_POSTGRES_URL").ok()?;
    let url = orchard_store_postgres::create_scratch_database(&base, "orchard_conformance")
        .await
        .expect("create a scratch database");
    Some(
        orchard_store_postgres::connect(&url)
            .await
            .expect("connect and migrate"),
    )
}

orchard_store::conformance_tests!(fresh());
