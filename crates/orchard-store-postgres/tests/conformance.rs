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

#[tokio::test]
async fn an_old_database_upgrades_with_what_it_holds() {
    use orchard_store_sql::upgrade;
    let Ok(base) = std::env::var("ORCHARD_TEST_POSTGRES_URL") else {
        eprintln!("backend not configured: the upgrade story not run");
        return;
    };
    let url = orchard_store_postgres::create_scratch_database(&base, "orchard_conformance")
        .await
        .expect("create a scratch database");
    let old = orchard_store_postgres::migrate_to(&url, upgrade::OLD_VERSION)
        .await
        .expect("an older schema");
    upgrade::an_old_database_upgrades_with_what_it_holds(old, async {
        orchard_store_postgres::connect(&url)
            .await
            .expect("upgrade")
    })
    .await;
}
