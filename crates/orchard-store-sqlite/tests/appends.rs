//! Event batches that wait for SQLite's one writer are written together when its turn comes:
//! one transaction, one commit. What each caller hears back is covered on both backends by the
//! conformance story (`concurrent_batches_each_hear_what_became_of_their_own_events`); these
//! tests hold the turn so that the batches surely wait, and count the transactions.

use chrono::Utc;
use orchard_core::event::{EventType, NewEvent};
use orchard_store::{EventStore, StoreError};
use orchard_store_sql::SqlStore;

async fn store() -> SqlStore {
    let dir = orchard_store_sqlite::scratch_dir("orchard-appends");
    orchard_store_sqlite::connect(&format!("sqlite://{}/orchard.db", dir.display()))
        .await
        .expect("open and migrate")
}

fn batch(prefix: &str, n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|i| NewEvent {
            client_id: format!("{prefix}-{i}"),
            event_type: EventType::parse("page_viewed").expect("a known type"),
            contact_id: None,
            visitor_id: Some(format!("v-{prefix}")),
            at: Utc::now(),
            properties: Default::default(),
        })
        .collect()
}

/// Spawns one append per batch while the writer's turn is held elsewhere, lets each reach the
/// queue, then gives the turn back; the outcomes in batch order.
async fn appended_while_held(
    store: &SqlStore,
    batches: Vec<Vec<NewEvent>>,
) -> Vec<Result<orchard_store::AppendOutcome, StoreError>> {
    let held = store.writer_queue().lock_owned().await;
    let tasks: Vec<_> = batches
        .into_iter()
        .map(|b| {
            let store = store.clone();
            tokio::spawn(async move { store.append_events(&b).await })
        })
        .collect();
    // One thread runs every task (`tokio::test`'s default runtime, which these tests must
    // keep): each spawned append runs up to its wait when this task yields.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    drop(held);
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.expect("the append task ran"));
    }
    outcomes
}

#[tokio::test]
async fn batches_that_wait_for_the_writer_share_one_transaction() {
    let store = store().await;
    let before = store.append_transactions();
    let outcomes = appended_while_held(
        &store,
        vec![batch("a", 3), batch("b", 1), batch("a", 2), batch("c", 4)],
    )
    .await;
    assert_eq!(
        store.append_transactions() - before,
        1,
        "four waiting batches took more than one transaction"
    );
    let outcomes: Vec<_> = outcomes.into_iter().map(|o| o.expect("stored")).collect();
    let stored: Vec<usize> = outcomes.iter().map(|o| o.stored.len()).collect();
    assert_eq!(stored, [3, 1, 0, 4], "per-batch stored counts");
    // The third batch repeats the first one's ids, which the same transaction stored first.
    assert_eq!(outcomes[2].duplicates, ["a-0", "a-1"]);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(n, 8);

    // A batch that arrives alone is written alone, as before.
    let outcome = store.append_events(&batch("d", 2)).await.expect("stored");
    assert_eq!(outcome.stored.len(), 2);
    assert_eq!(store.append_transactions() - before, 2);
}

#[tokio::test]
async fn a_batch_that_cannot_be_written_fails_alone() {
    let store = store().await;
    // A batch the database refuses, whichever batches share its transaction.
    sqlx::query(
        "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.client_id = 'bad-0' \
         BEGIN SELECT RAISE(FAIL, 'refused by the test'); END",
    )
    .execute(store.pool())
    .await
    .expect("trigger");
    let before = store.append_transactions();
    let outcomes = appended_while_held(
        &store,
        vec![batch("ok1", 2), batch("bad", 2), batch("ok2", 3)],
    )
    .await;
    let [ok1, bad, ok2] = <[_; 3]>::try_from(outcomes).expect("three outcomes");
    assert_eq!(ok1.expect("the first batch is stored").stored.len(), 2);
    assert!(
        matches!(bad, Err(StoreError::Backend(_))),
        "the refused batch: {bad:?}"
    );
    assert_eq!(ok2.expect("the last batch is stored").stored.len(), 3);
    assert_eq!(
        store.append_transactions() - before,
        4,
        "one group, then each of its three batches alone"
    );
    let ids: Vec<String> = sqlx::query_scalar("SELECT client_id FROM events ORDER BY seq")
        .fetch_all(store.pool())
        .await
        .expect("ids");
    assert_eq!(ids, ["ok1-0", "ok1-1", "ok2-0", "ok2-1", "ok2-2"]);
}

#[tokio::test]
async fn batches_that_wait_too_long_are_refused_and_the_next_one_is_written() {
    let store = store()
        .await
        .with_writer_wait(std::time::Duration::from_millis(50));
    let held = store.writer_queue().lock_owned().await;
    let tasks: Vec<_> = ["x", "y", "z"]
        .into_iter()
        .map(|p| {
            let store = store.clone();
            tokio::spawn(async move { store.append_events(&batch(p, 2)).await })
        })
        .collect();
    for t in tasks {
        let refused = t.await.expect("the append task ran");
        assert!(
            matches!(refused, Err(StoreError::Busy(_))),
            "a batch that waited past the writer wait: {refused:?}"
        );
    }
    drop(held);
    // The task that gave up handed the lead back: the next batch is written.
    let next = batch("w", 2);
    let outcome = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        store.append_events(&next),
    )
    .await
    .expect("no task writes batches any more")
    .expect("stored");
    assert_eq!(outcome.stored.len(), 2);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(n, 2, "a refused batch was stored");
}
