//! Commits never checkpoint the WAL themselves; the store's background checkpointer copies it
//! back into the database file with no further commit.

mod common;

use std::time::{Duration, Instant};

#[tokio::test]
async fn the_wal_is_checkpointed_in_the_background_not_by_commits() {
    let dir = common::scratch_dir("orchard-checkpoints");
    let file = dir.join("orchard.db");
    let store = orchard_store_sqlite::connect(&format!("sqlite://{}", file.display()))
        .await
        .expect("open and migrate");
    let pool = store.pool();

    let auto: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
        .fetch_one(pool)
        .await
        .expect("read the setting");
    assert_eq!(auto, 0, "commits still checkpoint the WAL");

    // About 1.6 MB of pages: under SQLite's default threshold of 1 000 pages, so only the
    // background checkpointer can move them into the database file.
    sqlx::query("CREATE TABLE filler (x BLOB NOT NULL)")
        .execute(pool)
        .await
        .expect("create");
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
