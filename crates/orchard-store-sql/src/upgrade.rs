//! The upgrade story, run by each backend's tests: a database an older Orchard made (the
//! schema of migration 0011, before segment names were unique and before the log kept its
//! event types) is opened by this one and keeps what it holds, in the shape the migrations
//! since then promise.

use chrono::DateTime;
use orchard_store::{
    ContactStore, EventStore, RecordedType, ScoringStore, SegmentStore, StoreError,
};
use sqlx::AnyPool;

use crate::SqlStore;

/// The schema version `old` must be at.
pub const OLD_VERSION: i64 = 11;

/// Opens the database at `url` (one connection) with only `migrator`'s migrations up to
/// `version` applied: the schema an older Orchard left.
pub async fn open_at_version(
    migrator: &sqlx::migrate::Migrator,
    url: &str,
    version: i64,
) -> Result<AnyPool, StoreError> {
    let backend = |e: sqlx::Error| StoreError::Backend(Box::new(e));
    let pool = crate::pool_options(1).connect(url).await.map_err(backend)?;
    migrator
        .run_to(version, &pool)
        .await
        .map_err(|e| backend(e.into()))?;
    Ok(pool)
}

/// Fills `old` (migrated to [`OLD_VERSION`]) as an older Orchard would have, closes it, opens
/// the database with `open` (which runs the later migrations) and checks what they made of it.
pub async fn an_old_database_upgrades_with_what_it_holds(
    old: AnyPool,
    open: impl Future<Output = SqlStore>,
) {
    for sql in [
        // Two segments of one name, which nothing refused then (ids 1 to 3 in a new database).
        "INSERT INTO segments (name, filter, created_at) VALUES \
         ('Openers', 'count(email_opened) >= 1', 0), \
         ('Openers', 'count(email_opened) >= 2', 0), \
         ('Others', 'score >= 1', 0)",
        // Contacts with custom attributes, and one without (ids 1 to 3).
        "INSERT INTO contacts (email, details, stage, score, created_at, updated_at) VALUES \
         ('gold@example.com', '{\"custom\": {\"tier\": \"gold\", \"seats\": 4}}', 'subscriber', 0, 500, 500), \
         ('pro@example.com', '{\"custom\": {\"tier\": \"pro\"}}', 'subscriber', 0, 300, 300), \
         ('plain@example.com', '{}', 'subscriber', 0, 100, 100)",
        // Events of a SPEC type and a custom one, stored over time.
        "INSERT INTO events (client_id, type, contact_id, visitor_id, at, properties, received_at) \
         VALUES ('a', 'email_opened', NULL, 'v1', 500, '{\"campaign\": \"spring\", \"a key\": 1}', 1000), \
         ('b', 'webinar_attended', NULL, 'v1', 600, '{\"room\": \"A\"}', 2000), \
         ('c', 'email_opened', NULL, 'v1', 400, '{}', 3000)",
    ] {
        sqlx::query(sql).execute(&old).await.expect(sql);
    }
    old.close().await;
    let store = open.await;

    // The first of a name keeps it; the others say which segment they are.
    let mut names: Vec<String> = store
        .segments()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.segment.name)
        .collect();
    names.sort();
    assert_eq!(names, ["Openers", "Openers (segment 2)", "Others"]);
    let again = orchard_core::segment::define("Openers", "score >= 2", chrono::Utc::now()).unwrap();
    assert!(matches!(
        store.create_segment(&again, chrono::Utc::now()).await,
        Err(StoreError::Conflict(_))
    ));

    // The names of the custom attributes the contacts had.
    assert_eq!(
        store.custom_attribute_names().await.unwrap(),
        ["seats", "tier"]
    );

    // The types the log held, each from when the first of them was stored, with the property
    // names their events carried that a rule can write (not "a key").
    let at = |ms| DateTime::from_timestamp_millis(ms).unwrap();
    let mut types = vec![
        RecordedType {
            event_type: "email_opened".into(),
            first_recorded_at: at(1000),
            properties: vec!["campaign".into()],
            all_properties: true,
        },
        RecordedType {
            event_type: "webinar_attended".into(),
            first_recorded_at: at(2000),
            properties: vec!["room".into()],
            all_properties: true,
        },
    ];
    assert_eq!(store.event_types().await.unwrap(), types);

    // An older process still running beside the upgraded one stores an event of a new type
    // without listing it; `orchard rebuild --repack` lists it.
    sqlx::query(
        "INSERT INTO events (client_id, type, contact_id, visitor_id, at, properties, received_at) \
         VALUES ('d', 'demo_booked', NULL, 'v1', 700, '{\"slot\": \"9:00\"}', 4000)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    assert_eq!(store.event_types().await.unwrap(), types);
    let repacked = store.repack_histories().await.unwrap();
    assert_eq!(
        (repacked.missing_types, repacked.missing_properties),
        (1, 1)
    );
    types.insert(
        0,
        RecordedType {
            event_type: "demo_booked".into(),
            first_recorded_at: at(4000),
            properties: vec!["slot".into()],
            all_properties: true,
        },
    );
    assert_eq!(store.event_types().await.unwrap(), types);
    let repacked = store.repack_histories().await.unwrap();
    assert_eq!(
        (repacked.missing_types, repacked.missing_properties),
        (0, 0)
    );
}
