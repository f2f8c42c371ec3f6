//! What SQLite's own layout promises the refresh path: contacts' details kept as JSONB (so that
//! `json_extract` reads members without parsing text), and memberships found by contact from
//! the index alone. Each would still give right answers if lost, only slower, so no
//! conformance test would notice.

use orchard_core::Email;
use orchard_core::contact::NewContact;
use orchard_store::ContactStore;

#[tokio::test]
async fn details_are_jsonb_and_memberships_come_from_the_index() {
    let dir = orchard_store_sqlite::scratch_dir("orchard-layout");
    let url = format!("sqlite://{}/orchard.db", dir.display());
    let store = orchard_store_sqlite::connect(&url)
        .await
        .expect("open and migrate");
    let mut new = NewContact::new(
        Email::parse("ann@example.com").expect("valid address"),
        chrono::Utc::now(),
    );
    new.details.geography.country = Some("DE".into());
    let (id, _) = store.upsert_contact(&new).await.expect("upsert");

    let (kind, country): (String, String) = sqlx::query_as(
        "SELECT typeof(details), json_extract(details, '$.country') FROM contacts WHERE id = ?",
    )
    .bind(id.get())
    .fetch_one(store.pool())
    .await
    .expect("read the row");
    assert_eq!(kind, "blob", "details are stored as text, not JSONB");
    assert_eq!(country, "DE");
    assert_eq!(
        store.contact(id).await.expect("read back").details,
        new.details
    );

    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "EXPLAIN QUERY PLAN SELECT segment_id FROM segment_members \
         WHERE contact_id IN (SELECT value FROM json_each(?))",
    )
    .bind("[1,2]")
    .fetch_all(store.pool())
    .await
    .expect("plan");
    assert!(
        plan.iter()
            .any(|(_, _, _, step)| step.contains("COVERING INDEX segment_members_contact")),
        "{plan:?}"
    );
    store.pool().close().await;
    let _ = std::fs::remove_dir_all(dir);
}
