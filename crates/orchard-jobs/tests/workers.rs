//! Workers drained synchronously with `run_once` against a real database.

use std::sync::Arc;

use chrono::{Duration, Utc};
use orchard_core::auth::Role;
use orchard_core::team::{RepProfile, User};
use orchard_core::{Email, UserId};
use orchard_jobs::{SessionSweeper, Worker};
use orchard_store::{Session, Store};

#[tokio::test]
async fn session_sweeper_deletes_only_expired_sessions() {
    let dir = std::env::temp_dir().join(format!("orchard-jobs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store: Arc<dyn Store> = Arc::new(
        orchard_store_sqlite::connect(&format!("sqlite://{}/o.db", dir.display()))
            .await
            .unwrap(),
    );
    let user = User {
        id: UserId::new(0),
        email: Email::parse("a@orchard.test").unwrap(),
        name: "A".into(),
        role: Role::Admin,
        team_id: None,
        profile: RepProfile::default(),
    };
    let uid = store.create_user(&user, None).await.unwrap();
    let now = Utc::now();
    for (id, hours) in [("old", -1), ("live", 1)] {
        let s = Session {
            user_id: uid,
            csrf_token: "c".into(),
            expires_at: now + Duration::hours(hours),
        };
        store.create_session(id, &s).await.unwrap();
    }
    let sweeper = SessionSweeper {
        store: Arc::clone(&store),
    };
    assert_eq!(sweeper.run_once(now).await.unwrap(), 1);
    assert_eq!(sweeper.run_once(now).await.unwrap(), 0);
    assert!(store.session("live", now).await.is_ok());
}

/// The due-time worker applies what the passing of time changes: "opened in the last 7 days"
/// loses a contact and the seed's absence rule costs 10 points, with no new event.
#[tokio::test]
async fn due_refresher_applies_what_time_changes() {
    use orchard_core::contact::NewContact;
    use orchard_core::event::{EventType, NewEvent};
    use orchard_jobs::DueRefresher;
    let dir = std::env::temp_dir().join(format!("orchard-jobs-due-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store: Arc<dyn Store> = Arc::new(
        orchard_store_sqlite::connect(&format!("sqlite://{}/o.db", dir.display()))
            .await
            .unwrap(),
    );
    let now = Utc::now();
    store
        .save_rule_set(&orchard_core::scoring::seed(), true, now)
        .await
        .unwrap();
    let week =
        orchard_core::segment::define("Opened this week", "count(email_opened, 7d) >= 1", now)
            .unwrap();
    let seg = store.create_segment(&week, now).await.unwrap();
    let (ann, _) = store
        .upsert_contact(&NewContact::new(
            Email::parse("ann@example.com").unwrap(),
            now - Duration::days(60),
        ))
        .await
        .unwrap();
    let ev = |id: &str, ty: EventType, days: i64| NewEvent {
        client_id: id.into(),
        event_type: ty,
        contact_id: Some(ann),
        visitor_id: None,
        at: now - Duration::days(days),
        properties: Default::default(),
    };
    store
        .append_events(&[
            ev("s1", EventType::EmailSent, 40),
            ev("o1", EventType::EmailOpened, 6),
        ])
        .await
        .unwrap();
    assert_eq!(store.contact(ann).await.unwrap().score, 5);
    assert_eq!(store.segment(seg).await.unwrap().member_count, 1);

    let worker = DueRefresher {
        store: Arc::clone(&store),
    };
    assert_eq!(worker.run_once(now).await.unwrap(), 0, "nothing is due yet");
    let later = now + Duration::days(31);
    assert_eq!(worker.run_once(later).await.unwrap(), 1);
    assert_eq!(
        store.segment(seg).await.unwrap().member_count,
        0,
        "the week passed"
    );
    assert_eq!(
        store.contact(ann).await.unwrap().score,
        -5,
        "no open in 30 days"
    );
    assert_eq!(worker.run_once(later).await.unwrap(), 0, "done once");
}
