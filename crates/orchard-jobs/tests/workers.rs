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
