//! Commits never checkpoint the WAL themselves; the store's background checkpointer copies it
//! back into the database file with no further commit.

use std::time::{Duration, Instant};

/// A fresh store with a `filler` table to write pages into, and its folder.
async fn with_filler(prefix: &str) -> (orchard_store_sql::SqlStore, std::path::PathBuf) {
    let dir = orchard_store_sqlite::scratch_dir(prefix);
    let url = format!("sqlite://{}", dir.join("orchard.db").display());
    let store = orchard_store_sqlite::connect(&url)
        .await
        .expect("open and migrate");
    sqlx::query("CREATE TABLE filler (x BLOB NOT NULL)")
        .execute(store.pool())
        .await
        .expect("create");
    (store, dir)
}

#[tokio::test]
async fn the_wal_is_checkpointed_in_the_background_not_by_commits() {
    let (store, dir) = with_filler("orchard-checkpoints").await;
    let file = dir.join("orchard.db");
    let pool = store.pool();

    let auto: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
        .fetch_one(pool)
        .await
        .expect("read the setting");
    assert_eq!(auto, 0, "commits still checkpoint the WAL");

    // About 1.6 MB of pages: under SQLite's default threshold of 1 000 pages, so only the
    // background checkpointer can move them into the database file.
    let before = std::fs::metadata(&file).expect("database file").len();
    for _ in 0..200 {
        sqlx::query("INSERT INTO filler (x) VALUES (zeroblob(8192))")
            .execute(pool)
            .await
            .expect("insert");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = std::fs::metadata(&file).expect("database file").len();
        if now >= before + 1_600_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the database file stayed at {now} bytes (from {before}): nothing checkpointed the WAL"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn under_steady_writes_the_wal_starts_over_instead_of_growing() {
    let (store, dir) = with_filler("orchard-wal-restart").await;
    let pool = store.pool();
    // 75 MB in bursts, never pausing long enough for a checkpoint beside the writers to
    // catch up on its own; writers take their turns as the store's own do.
    let wal = dir.join("orchard.db-wal");
    let mut largest = 0;
    for _ in 0..60 {
        for _ in 0..20 {
            let _turn = store.writer_queue().lock_owned().await;
            sqlx::query("INSERT INTO filler (x) VALUES (zeroblob(65536))")
                .execute(pool)
                .await
                .expect("insert");
        }
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        largest < 48 * 1024 * 1024,
        "the WAL grew to {largest} bytes while 75 MB were written"
    );
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}
