//! The storage conformance story on SQLite, each test in a fresh database file.

mod common;

use orchard_store_sql::SqlStore;

async fn fresh() -> Option<SqlStore> {
    let dir = common::scratch_dir("orchard-conformance");
    let url = format!("sqlite://{}/orchard.db", dir.display());
    Some(
        orchard_store_sqlite::connect(&url)
            .await
            .expect("open and migrate"),
    )
}

orchard_store::conformance_tests!(fresh());
