//! Event batches that arrive while another batch is being written are written together after
//! it, on PostgreSQL too, where writers need no turn: one append transaction at a time per
//! process. Runs when `ORCHARD_TEST_POSTGRES_URL` is set; CI sets it (and fails when PostgreSQL
//! is missing).

use chrono::Utc;
use orchard_core::contact::NewContact;
use orchard_core::event::{EventType, NewEvent};
use orchard_core::{ContactId, Email};
use orchard_store::{ContactStore, EventStore};

fn event(id: &str, contact: Option<ContactId>) -> NewEvent {
    NewEvent {
        client_id: id.to_owned(),
        event_type: EventType::parse("page_viewed").expect("a known type"),
        contact_id: contact,
        visitor_id: Some(format!("v-{id}")),
        at: Utc::now(),
        properties: Default::default(),
    }
}

#[tokio::test]
async fn batches_that_arrive_during_an_append_share_the_next_transaction() {
    let Ok(base) = std::env::var("ORCHARD_TEST_POSTGRES_URL") else {
        return;
    };
    let url = orchard_store_postgres::create_scratch_database(&base, "orchard_appends")
        .await
        .unwrap();
    let store = orchard_store_postgres::connect(&url).await.unwrap();
    let (contact, _) = store
        .upsert_contact(&NewContact::new(
            Email::parse("held@example.com").unwrap(),
            Utc::now(),
        ))
        .await
        .unwrap();

    // Another transaction holds the contact's row, so the first append waits inside its own
    // transaction for as long as this test likes.
    let mut holder = store.pool().begin().await.unwrap();
    sqlx::query("SELECT id FROM contacts WHERE id = $1 FOR UPDATE")
        .bind(contact.get())
        .execute(&mut *holder)
        .await
        .unwrap();
    let before = store.append_transactions();
    let spawn = |batch: Vec<NewEvent>| {
        let store = store.clone();
        tokio::spawn(async move { store.append_events(&batch).await })
    };
    let first = spawn(vec![event("held-0", Some(contact))]);
    // Until the first append waits on the row: then it is inside its transaction.
    loop {
        let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_locks WHERE NOT granted")
            .fetch_one(store.pool())
            .await
            .unwrap();
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let later: Vec<_> = (0..3)
        .map(|i| {
            spawn(vec![
                event(&format!("later-{i}-a"), None),
                event(&format!("later-{i}-b"), None),
            ])
        })
        .collect();
    // Each spawned append queues its batch on its first poll, which these yields give it.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    holder.commit().await.unwrap();

    assert_eq!(first.await.unwrap().unwrap().stored.len(), 1);
    for t in later {
        assert_eq!(t.await.unwrap().unwrap().stored.len(), 2);
    }
    assert_eq!(
        store.append_transactions() - before,
        2,
        "the first batch alone, then the three that arrived meanwhile together"
    );
    store.pool().close().await;
    orchard_store_postgres::drop_scratch_database(&base, &url)
        .await
        .unwrap();
}
