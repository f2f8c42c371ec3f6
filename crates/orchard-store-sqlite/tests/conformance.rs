//! The storage conformance story on SQLite, each test in a fresh database file.

use orchard_store_sql::SqlStore;

async fn fresh() -> Option<SqlStore> {
    let dir = std::env::temp_dir().join(format!(
        "orchard-conformance-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos()
    ));
    let url = format!("sqlite://{}/orchard.db", dir.display());
    Some(
        orchard_store_sqlite::connect(&url)
            .await
            .expect("open and migrate"),
    )
}

orchard_store::conformance_tests!(fresh());
