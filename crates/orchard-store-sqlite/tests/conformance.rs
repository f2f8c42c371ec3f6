//! The storage conformance story on SQLite, each test in a fresh database file.

use orchard_store_sql::SqlStore;

async fn fresh() -> Option<SqlStore> {
    let dir = orchard_store_sqlite::scratch_dir("orchard-conformance");
    let url = format!("sqlite://{}/orchard.db", dir.display());
    Some(
        orchard_store_sqlite::connect(&url)
            .await
            .expect("open and migrate"),
    )
}

orchard_store::conformance_tests!(fresh());

#[tokio::test]
async fn an_old_database_upgrades_with_what_it_holds() {
    use orchard_store_sql::upgrade;
    let dir = orchard_store_sqlite::scratch_dir("orchard-upgrade");
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/orchard.db", dir.display());
    let old = orchard_store_sqlite::create_at_version(&url, upgrade::OLD_VERSION)
        .await
        .expect("an older schema");
    upgrade::an_old_database_upgrades_with_what_it_holds(old, async {
        orchard_store_sqlite::connect(&url).await.expect("upgrade")
    })
    .await;
}
