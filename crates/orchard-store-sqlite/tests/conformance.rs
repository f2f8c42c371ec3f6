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
