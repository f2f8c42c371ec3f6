//! The conformance story: what every backend must do, written once and run against each (SQLite
//! always, PostgreSQL when `ORCHARD_TEST_POSTGRES_URL` is set). A backend's test file calls
//! [`conformance_tests!`](crate::conformance_tests) with an expression that yields a fresh,
//! migrated, empty store; each story then runs as its own named test.

use chrono::{DateTime, Duration, Utc};
use orchard_core::auth::Role;
use orchard_core::capture::{Form, FunnelStage, LeadMagnet};
use orchard_core::contact::{ContactDetails, NewContact};
use orchard_core::demo::{self, DemoSettings};
use orchard_core::event::{EventType, NewEvent};
use orchard_core::stage::LifecycleStage;
use orchard_core::submission;
use orchard_core::team::{RepProfile, User};
use orchard_core::{ContactId, Email, FormId, LeadMagnetId, UserId};
use serde_json::{Map, json};

use crate::{Capture, ContactQuery, ImportCounts, Session, Store, StoreError};

/// Generates one `#[tokio::test]` per story. `$fresh` is an async expression giving
/// `Some(fresh store)`, or `None` when the backend is not configured here (the test then says so
/// and passes; CI configures every backend).
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:expr) => {
        $crate::conformance_tests!(@each $fresh;
            upsert_by_normalised_email_never_duplicates,
            ensure_contacts_creates_only_the_missing,
            second_upsert_fills_in_and_keeps_known_attributes,
            missing_contact_is_not_found,
            contact_list_filters_searches_and_pages,
            rep_scope_shows_only_own_contacts,
            replayed_events_are_stored_once,
            the_log_lists_each_type_it_holds_from_its_first_event,
            custom_attribute_names_are_listed_from_every_write,
            events_advance_last_activity_and_form_the_timeline,
            tokens_are_found_by_hash_until_revoked,
            sessions_expire,
            user_emails_are_unique,
            demo_company_loads_and_counts,
            forms_and_lead_magnets_have_a_full_lifecycle,
            capture_updates_the_contact_and_keeps_its_first_touch,
            views_from_before_identification_count_for_segments,
            settings_keep_the_first_value,
            a_second_import_of_the_same_rows_changes_nothing,
            imported_deals_revenue_and_activities_resolve_their_links,
            merging_two_contacts_keeps_both_timelines,
            events_for_a_contact_merged_meanwhile_count_for_its_survivor,
            scores_follow_each_event_and_the_passing_of_time,
            decayed_points_are_taken_on_time_with_no_new_event,
            a_rebuild_in_chunks_equals_refreshing_contacts_one_by_one,
            a_batch_of_many_contacts_decides_as_each_alone,
            an_identified_visitors_view_counts_in_the_batch_that_brings_it,
            a_new_segment_is_decided_alone_as_a_full_refresh_would,
            a_rebuild_reads_the_accounts_of_live_contacts_only,
            concurrent_batches_for_one_contact_converge,
            concurrent_batches_each_hear_what_became_of_their_own_events,
            an_import_beside_appends_to_the_same_contacts_finishes,
            segment_members_match_a_brute_force_count_after_random_events,
            a_large_preview_evaluates_a_sample_of_ids,
            a_contact_leaves_a_window_segment_when_time_passes,
            stages_follow_the_rules_and_respect_a_manual_change,
            a_backtest_replays_each_sets_stages_from_events_and_deals,
            a_contact_is_scored_as_of_a_date_under_any_set,
            a_full_rebuild_rewrites_the_same_score_changes,
            a_repeated_statement_with_nulls_in_new_places_is_stored,
            texts_that_need_quoting_survive_a_refresh,
        );
    };
    (@each $fresh:expr; $($story:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $story() {
            let Some(store) = $fresh.await else {
                eprintln!("backend not configured: {} not run", stringify!($story));
                return;
            };
            $crate::conformance::$story(&store).await;
        }
    )*};
}

fn t(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("valid time")
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn email(s: &str) -> Email {
    Email::parse(s).expect("valid email")
}

fn event(id: &str, ty: &str, contact: Option<ContactId>, at: i64) -> NewEvent {
    NewEvent {
        client_id: id.to_owned(),
        event_type: EventType::parse(ty).expect("valid type"),
        contact_id: contact,
        visitor_id: None,
        at: t(at),
        properties: Map::new(),
    }
}

/// The demo company's contacts (not their accounts' rows of revenue) loaded, with the seed
/// rule set live as of the settings' `now`.
async fn load_scored_demo<S: Store>(s: &S, settings: &DemoSettings) -> demo::DemoCompany {
    let company = demo::company(settings);
    s.load_company(&company).await.unwrap();
    s.load_contact_batch(&demo::contact_batch(
        settings,
        &company,
        0..settings.contacts,
    ))
    .await
    .unwrap();
    s.finish_load().await.unwrap();
    s.save_rule_set(&orchard_core::scoring::seed(), true, settings.now)
        .await
        .unwrap();
    company
}

/// Creates a segment of each (name, filter) as of `now`, returning their ids in order.
async fn define_segments<S: Store>(
    s: &S,
    filters: &[(&str, &str)],
    now: DateTime<Utc>,
) -> Vec<orchard_core::SegmentId> {
    let mut ids = Vec::new();
    for (name, f) in filters {
        ids.push(
            s.create_segment(&orchard_core::segment::define(name, f, now).unwrap(), now)
                .await
                .unwrap(),
        );
    }
    ids
}

/// Publishes the seed rules again as a new version, which makes every score history stale, then
/// refreshes each of `ids` alone as of `now` (each rewrites its history whole) and checks that
/// it leaves what `expected` holds for it.
async fn each_refreshed_alone_leaves<S: Store>(
    s: &S,
    ids: &[ContactId],
    expected: &[Derived],
    now: DateTime<Utc>,
) {
    s.save_rule_set(&orchard_core::scoring::seed(), true, now)
        .await
        .unwrap();
    for (id, expected) in ids.iter().zip(expected) {
        s.refresh(&[*id], now).await.unwrap();
        assert_eq!(&derived_state(s, *id).await, expected, "contact {id:?}");
    }
}

/// A new contact of that email, first seen `days` before `now`.
async fn new_contact<S: Store>(s: &S, mail: &str, now: DateTime<Utc>, days: i64) -> ContactId {
    s.upsert_contact(&NewContact::new(email(mail), now - Duration::days(days)))
        .await
        .unwrap()
        .0
}

fn user(mail: &str, role: Role) -> User {
    User {
        id: UserId::new(0),
        email: email(mail),
        name: mail.split('@').next().unwrap_or_default().to_owned(),
        role,
        team_id: None,
        profile: RepProfile::default(),
    }
}

pub async fn upsert_by_normalised_email_never_duplicates<S: Store>(s: &S) {
    let (a, created_a) = s
        .upsert_contact(&NewContact::new(email("Ann@Example.com"), t(1_000)))
        .await
        .unwrap();
    let (b, created_b) = s
        .upsert_contact(&NewContact::new(email(" ann@example.COM"), t(2_000)))
        .await
        .unwrap();
    assert!(created_a && !created_b);
    assert_eq!(a, b);
    let page = s
        .list_contacts(
            &ContactQuery {
                page: 1,
                per_page: 10,
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(page.total, 1);
}

pub async fn second_upsert_fills_in_and_keeps_known_attributes<S: Store>(s: &S) {
    let mut first = NewContact::new(email("bo@example.com"), t(1_000));
    first.details.demographics.job_title = Some("CFO".into());
    first.details.geography.country = Some("DE".into());
    first.source = Some("linkedin".into());
    s.upsert_contact(&first).await.unwrap();
    let mut second = NewContact::new(email("bo@example.com"), t(5_000));
    second.details = ContactDetails {
        first_name: Some("Bo".into()),
        ..Default::default()
    };
    second.source = Some("google".into());
    let (id, _) = s.upsert_contact(&second).await.unwrap();
    let c = s.contact(id).await.unwrap();
    assert_eq!(c.details.first_name.as_deref(), Some("Bo"));
    assert_eq!(c.details.demographics.job_title.as_deref(), Some("CFO"));
    assert_eq!(c.details.geography.country.as_deref(), Some("DE"));
    assert_eq!(c.source.as_deref(), Some("linkedin"), "first touch is kept");
    assert_eq!(c.created_at, t(1_000));
    assert_eq!(c.updated_at, t(5_000));
    assert_eq!(
        s.contact_by_email(&email("BO@example.com"))
            .await
            .unwrap()
            .id,
        id
    );
}

pub async fn missing_contact_is_not_found<S: Store>(s: &S) {
    assert!(matches!(
        s.contact(ContactId::new(999)).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.contact_by_email(&email("nobody@example.com")).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn contact_list_filters_searches_and_pages<S: Store>(s: &S) {
    for i in 0..25 {
        let mut c = NewContact::new(email(&format!("lead{i}@acme{}.com", i % 3)), t(i * 1000));
        c.details.first_name = Some(format!("Name{i}"));
        c.details.demographics.company =
            Some(if i % 5 == 0 { "50% Off Ltd" } else { "Acme" }.into());
        c.details.geography.country = Some(if i % 2 == 0 { "DE" } else { "FR" }.into());
        c.stage = if i < 5 {
            LifecycleStage::Mql
        } else {
            LifecycleStage::Subscriber
        };
        s.upsert_contact(&c).await.unwrap();
    }
    let q = |f: fn(&mut ContactQuery)| {
        let mut q = ContactQuery {
            page: 1,
            per_page: 10,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    let all = s.list_contacts(&q(|_| {}), None).await.unwrap();
    assert_eq!((all.total, all.items.len()), (25, 10));
    assert_eq!(
        all.items[0].email.as_str(),
        "lead24@acme0.com",
        "newest first"
    );
    let last = s.list_contacts(&q(|q| q.page = 3), None).await.unwrap();
    assert_eq!((last.total, last.items.len()), (25, 5));
    // Past the end, and a last page that is exactly full: still the whole count.
    let past = s.list_contacts(&q(|q| q.page = 4), None).await.unwrap();
    assert_eq!((past.total, past.items.len()), (25, 0));
    let full = s
        .list_contacts(
            &q(|q| {
                q.page = 5;
                q.per_page = 5;
            }),
            None,
        )
        .await
        .unwrap();
    assert_eq!((full.total, full.items.len()), (25, 5));
    let de = s
        .list_contacts(&q(|q| q.country = Some("de".into())), None)
        .await
        .unwrap();
    assert_eq!(de.total, 13);
    let mql = s
        .list_contacts(&q(|q| q.stage = Some(LifecycleStage::Mql)), None)
        .await
        .unwrap();
    assert_eq!(mql.total, 5);
    let pct = s
        .list_contacts(&q(|q| q.search = Some("50%".into())), None)
        .await
        .unwrap();
    assert_eq!(pct.total, 5, "LIKE wildcards in a search are literal");
    let by_mail = s
        .list_contacts(&q(|q| q.search = Some("ACME1".into())), None)
        .await
        .unwrap();
    assert_eq!(by_mail.total, 8);
    let by_name = s
        .list_contacts(&q(|q| q.search = Some("name2".into())), None)
        .await
        .unwrap();
    assert_eq!(by_name.total, 6, "Name2 and Name20..Name24");
    let hot = s
        .list_contacts(&q(|q| q.min_score = Some(1)), None)
        .await
        .unwrap();
    assert_eq!(hot.total, 0);
}

pub async fn rep_scope_shows_only_own_contacts<S: Store>(s: &S) {
    let rep = s
        .create_user(&user("rep@orchard.test", Role::Rep), None)
        .await
        .unwrap();
    let mut mine = NewContact::new(email("mine@example.com"), t(1));
    mine.owner_id = Some(rep);
    s.upsert_contact(&mine).await.unwrap();
    s.upsert_contact(&NewContact::new(email("other@example.com"), t(2)))
        .await
        .unwrap();
    let q = ContactQuery {
        page: 1,
        per_page: 50,
        ..Default::default()
    };
    let page = s.list_contacts(&q, Some(rep)).await.unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.items[0].email.as_str(), "mine@example.com");
}

pub async fn replayed_events_are_stored_once<S: Store>(s: &S) {
    let (c, _) = s
        .upsert_contact(&NewContact::new(email("e@example.com"), t(0)))
        .await
        .unwrap();
    let batch: Vec<NewEvent> = (0..50)
        .map(|i| event(&format!("ev-{i}"), "email_opened", Some(c), 1_000 + i))
        .collect();
    let first = s.append_events(&batch).await.unwrap();
    assert_eq!((first.stored.len(), first.duplicates.len()), (50, 0));
    let again = s.append_events(&batch).await.unwrap();
    assert_eq!((again.stored.len(), again.duplicates.len()), (0, 50));
    let mut mixed = batch[..10].to_vec();
    mixed.push(event("ev-new", "email_clicked", Some(c), 9_000));
    mixed.push(event("ev-new", "email_clicked", Some(c), 9_000));
    let m = s.append_events(&mixed).await.unwrap();
    assert_eq!(
        m.stored.len(),
        1,
        "a new id stored once even when repeated within a batch"
    );
    assert_eq!(m.duplicates.len(), 11);
    assert_eq!(s.contact_events(c, 1_000).await.unwrap().len(), 51);
    assert_eq!(s.table_counts().await.unwrap()["events"], 51);
}

pub async fn the_log_lists_each_type_it_holds_from_its_first_event<S: Store>(s: &S) {
    assert!(s.event_types().await.unwrap().is_empty());
    let (c, _) = s
        .upsert_contact(&NewContact::new(email("types@example.com"), t(0)))
        .await
        .unwrap();
    let mut anonymous = event("anon-1", "demo_watched", None, 1_500);
    anonymous.visitor_id = Some("v-types".into());
    let mut webinar = event("ty-2", "webinar_attended", Some(c), 2_000);
    // Of its properties, the names a filter can write are listed with the type.
    webinar.properties.insert("room".into(), json!("A"));
    webinar.properties.insert("not a name".into(), json!(1));
    s.append_events(&[
        event("ty-1", "email_opened", Some(c), 1_000),
        webinar,
        event("ty-3", "email_opened", Some(c), 3_000),
        anonymous,
    ])
    .await
    .unwrap();
    let names = |list: &[crate::RecordedType]| -> Vec<String> {
        list.iter().map(|t| t.event_type.clone()).collect()
    };
    let first = s.event_types().await.unwrap();
    assert_eq!(
        names(&first),
        ["demo_watched", "email_opened", "webinar_attended"]
    );
    // A replayed client id stores nothing, so its new type is not the log's.
    let replay = s
        .append_events(&[event("ty-1", "ghost_signal", Some(c), 4_000)])
        .await
        .unwrap();
    assert_eq!(replay.duplicates.len(), 1);
    // Later events of a listed type leave its first time as it was; the types Orchard logs
    // itself are listed once it has logged one.
    let segment =
        orchard_core::segment::define("webinar", "count(webinar_attended) >= 1", Utc::now())
            .unwrap();
    s.create_segment(&segment, Utc::now()).await.unwrap();
    let mut webinar = event("ty-4", "webinar_attended", Some(c), 5_000);
    webinar.properties.insert("speaker".into(), json!("Bo"));
    webinar.properties.insert("room".into(), json!("B"));
    s.append_events(&[webinar]).await.unwrap();
    let later = s.event_types().await.unwrap();
    let properties = |t: &str| {
        later
            .iter()
            .find(|r| r.event_type == t)
            .map(|r| r.properties.clone())
            .unwrap()
    };
    assert_eq!(properties("webinar_attended"), ["room", "speaker"]);
    assert!(later.iter().all(|t| t.all_properties));
    assert!(properties("email_opened").is_empty());
    // Those of the events Orchard logs itself too.
    assert_eq!(
        properties(orchard_core::segment::ENTERED),
        ["segment", "segment_id"]
    );
    assert_eq!(
        names(&later),
        [
            "demo_watched",
            "email_opened",
            orchard_core::segment::ENTERED,
            "webinar_attended"
        ]
    );
    // A type whose events carry ids as keys lists the first names only, and says so.
    let mut wide = event("ty-5", "wide_signal", Some(c), 6_000);
    for k in 0..=crate::PROPERTIES_LISTED {
        wide.properties.insert(format!("k{k:03}"), json!(1));
    }
    s.append_events(&[wide]).await.unwrap();
    let wide = s
        .event_types()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.event_type == "wide_signal")
        .unwrap();
    assert_eq!(
        (wide.properties.len(), wide.all_properties),
        (crate::PROPERTIES_LISTED, false)
    );
    assert_eq!(wide.properties[0], "k000");
    for t in &first {
        assert!(
            later
                .iter()
                .any(|l| (&l.event_type, l.first_recorded_at)
                    == (&t.event_type, t.first_recorded_at)),
            "{t:?} kept its first time"
        );
    }
}

/// The names of contacts' custom attributes are listed from whatever wrote them: an upsert, an
/// import (not a dry run) and the bulk loader.
pub async fn custom_attribute_names_are_listed_from_every_write<S: Store>(s: &S) {
    use orchard_core::import::{ImportKind, Mapping, Record};
    assert!(s.custom_attribute_names().await.unwrap().is_empty());
    // The bulk loader (into the empty database it needs).
    let settings = DemoSettings {
        seed: 2,
        contacts: 20,
        now: t(1_780_000_000_000),
    };
    let company = demo::company(&settings);
    s.load_company(&company).await.unwrap();
    let batch = demo::contact_batch(&settings, &company, 0..settings.contacts);
    s.load_contact_batch(&batch).await.unwrap();
    s.finish_load().await.unwrap();
    let mut expected: Vec<String> = batch
        .contacts
        .iter()
        .flat_map(|c| c.details.custom.keys().cloned())
        .collect();
    assert!(
        !expected.is_empty(),
        "the demo's contacts have custom attributes"
    );
    expected.sort();
    expected.dedup();
    assert_eq!(s.custom_attribute_names().await.unwrap(), expected);

    // An upsert.
    let mut c = NewContact::new(email("attrs@example.com"), t(0));
    c.details.custom.insert("zz_plan".into(), json!("pro"));
    s.upsert_contact(&c).await.unwrap();
    expected.push("zz_plan".into());
    assert_eq!(s.custom_attribute_names().await.unwrap(), expected);

    // An import, once it is not a dry run: an unknown column is a custom attribute.
    let m = Mapping::new(ImportKind::Contacts, &["email", "zz_seats"]).unwrap();
    let rows = vec![(
        2,
        m.parse(2, &["imported@example.com", "12"], t(0)).unwrap(),
    )];
    let Record::Contact(parsed) = &rows[0].1 else {
        panic!("a contact row");
    };
    assert_eq!(
        parsed.details.custom.keys().collect::<Vec<_>>(),
        ["zz_seats"]
    );
    s.import(&rows, true).await.unwrap();
    assert_eq!(
        s.custom_attribute_names().await.unwrap(),
        expected,
        "a dry run lists nothing"
    );
    s.import(&rows, false).await.unwrap();
    expected.push("zz_seats".into());
    assert_eq!(s.custom_attribute_names().await.unwrap(), expected);
}

pub async fn events_advance_last_activity_and_form_the_timeline<S: Store>(s: &S) {
    let (c, _) = s
        .upsert_contact(&NewContact::new(email("tl@example.com"), t(0)))
        .await
        .unwrap();
    let mut view = event("pv-1", "page_viewed", Some(c), 5_000);
    view.properties.insert("url".into(), json!("/pricing"));
    view.visitor_id = Some("v-1".into());
    s.append_events(&[view, event("op-1", "email_opened", Some(c), 7_000)])
        .await
        .unwrap();
    // An older event arriving late must not move last activity back.
    s.append_events(&[event("late", "email_sent", Some(c), 2_000)])
        .await
        .unwrap();
    assert_eq!(s.contact(c).await.unwrap().last_activity_at, Some(t(7_000)));
    // A later event that no score, stage or segment reads still advances it: last activity
    // is written beside the derived columns, and nothing else changes for this one.
    s.append_events(&[event("web-1", "webinar_attended", Some(c), 9_000)])
        .await
        .unwrap();
    assert_eq!(s.contact(c).await.unwrap().last_activity_at, Some(t(9_000)));
    let tl = s.contact_events(c, 10).await.unwrap();
    let kinds: Vec<&str> = tl.iter().map(|e| e.event_type.as_str()).collect();
    // The pricing visit made the contact an MQL: the transition is on the timeline too.
    assert_eq!(
        kinds,
        [
            "webinar_attended",
            "email_opened",
            "stage_changed",
            "page_viewed",
            "email_sent"
        ]
    );
    assert_eq!(tl[2].properties["cause"], "visited the pricing page");
    assert_eq!(s.contact(c).await.unwrap().stage, LifecycleStage::Mql);
    assert_eq!(tl[3].properties["url"], "/pricing");
    assert_eq!(tl[3].visitor_id.as_deref(), Some("v-1"));
}

pub async fn tokens_are_found_by_hash_until_revoked<S: Store>(s: &S) {
    let id = s
        .create_token("ci", Role::Marketer, "hash-1")
        .await
        .unwrap();
    let tok = s.token_by_hash("hash-1").await.unwrap();
    assert_eq!(
        (tok.id, tok.role, tok.name.as_str()),
        (id, Role::Marketer, "ci")
    );
    assert!(matches!(
        s.token_by_hash("hash-2").await,
        Err(StoreError::NotFound)
    ));
    s.revoke_token(id).await.unwrap();
    assert!(matches!(
        s.token_by_hash("hash-1").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.revoke_token(id).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn sessions_expire<S: Store>(s: &S) {
    let u = s
        .create_user(&user("ses@orchard.test", Role::Admin), Some("x"))
        .await
        .unwrap();
    let now = Utc::now();
    let session = Session {
        user_id: u,
        csrf_token: "csrf".into(),
        expires_at: t((now + Duration::hours(1)).timestamp_millis()),
    };
    s.create_session("sid", &session).await.unwrap();
    assert_eq!(s.session("sid", now).await.unwrap(), session);
    assert!(matches!(
        s.session("sid", now + Duration::hours(2)).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.purge_sessions(now).await.unwrap(), 0);
    assert_eq!(s.purge_sessions(now + Duration::hours(2)).await.unwrap(), 1);
    assert!(matches!(
        s.session("sid", now).await,
        Err(StoreError::NotFound)
    ));
    s.create_session("sid2", &session).await.unwrap();
    s.delete_session("sid2").await.unwrap();
    assert!(matches!(
        s.session("sid2", now).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn user_emails_are_unique<S: Store>(s: &S) {
    let id = s
        .create_user(&user("Boss@Orchard.test", Role::Admin), Some("h"))
        .await
        .unwrap();
    assert!(matches!(
        s.create_user(&user("boss@orchard.test", Role::Rep), None)
            .await,
        Err(StoreError::Conflict(_))
    ));
    let cred = s
        .user_credentials(&email("boss@orchard.test"))
        .await
        .unwrap();
    assert_eq!(
        (cred.user.id, cred.password_hash.as_deref()),
        (id, Some("h"))
    );
    s.set_password(id, "h2").await.unwrap();
    assert_eq!(
        s.user_credentials(&email("boss@orchard.test"))
            .await
            .unwrap()
            .password_hash
            .as_deref(),
        Some("h2")
    );
    assert_eq!(s.user_count().await.unwrap(), 1);
}

pub async fn demo_company_loads_and_counts<S: Store>(s: &S) {
    assert!(s.is_empty().await.unwrap());
    let settings = DemoSettings {
        seed: 7,
        contacts: 200,
        now: t(1_780_000_000_000),
    };
    let company = demo::company(&settings);
    s.load_company(&company).await.unwrap();
    s.load_account_batch(&demo::account_batch(
        &settings,
        &company,
        0..company.accounts.len(),
    ))
    .await
    .unwrap();
    let batch = demo::contact_batch(&settings, &company, 0..settings.contacts);
    s.load_contact_batch(&batch).await.unwrap();
    s.finish_load().await.unwrap();
    assert!(!s.is_empty().await.unwrap());
    let counts = s.table_counts().await.unwrap();
    assert_eq!(counts["contacts"], 200);
    assert_eq!(counts["events"], batch.events.len() as i64);
    assert_eq!(counts["users"], company.users.len() as i64);
    // The loaded log's types are listed as any appended ones are.
    let mut loaded: Vec<&str> = batch.events.iter().map(|e| e.event_type.as_str()).collect();
    loaded.sort_unstable();
    loaded.dedup();
    let listed = s.event_types().await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|t| t.event_type.as_str())
            .collect::<Vec<_>>(),
        loaded
    );
    // Ids continue after the loaded ones.
    let (id, created) = s
        .upsert_contact(&NewContact::new(email("after-demo@example.com"), t(0)))
        .await
        .unwrap();
    assert!(created);
    assert_eq!(id.get(), 201);
    // Accounts reach derivations whole: a segment over their attributes holds the contacts
    // whose account has them, as the company loaded says. (Their service hours come in halves,
    // their costs in whole units: numbers a refresh reads back through text.)
    let industry = company
        .accounts
        .iter()
        .find_map(|a| a.industry.clone())
        .unwrap();
    let filter = format!(r#"account.industry = "{industry}" and account.employees >= 10"#);
    let now = Utc::now();
    let segment = s
        .create_segment(
            &orchard_core::segment::define("by-account", &filter, now).unwrap(),
            now,
        )
        .await
        .unwrap();
    let expected = batch
        .contacts
        .iter()
        .filter_map(|c| company.accounts.iter().find(|a| Some(a.id) == c.account_id))
        .filter(|a| a.industry.as_deref() == Some(industry.as_str()))
        .filter(|a| a.employees.is_some_and(|e| e >= 10))
        .count();
    assert!(expected > 0);
    assert_eq!(
        s.segment(segment).await.unwrap().member_count,
        expected as i64
    );
    assert_eq!(
        s.list_contacts(
            &ContactQuery {
                page: 1,
                per_page: 1,
                ..Default::default()
            },
            None
        )
        .await
        .unwrap()
        .total,
        201
    );
}

pub async fn ensure_contacts_creates_only_the_missing<S: Store>(s: &S) {
    let (known, _) = s
        .upsert_contact(&NewContact::new(email("known@example.com"), t(1_000)))
        .await
        .unwrap();
    let wanted: Vec<(Email, DateTime<Utc>)> = (0..1_500)
        .map(|i| (email(&format!("new{i}@example.com")), t(5_000)))
        .chain([(email("known@example.com"), t(9_000))])
        .collect();
    let ids = s.ensure_contacts(&wanted).await.unwrap();
    assert_eq!(ids.len(), 1_501);
    assert_eq!(ids[&email("known@example.com")], known);
    let again = s.ensure_contacts(&wanted).await.unwrap();
    assert_eq!(ids, again, "a second call creates nothing");
    let fresh = s.contact(ids[&email("new7@example.com")]).await.unwrap();
    assert_eq!(
        (fresh.stage, fresh.created_at),
        (LifecycleStage::Subscriber, t(5_000))
    );
    assert_eq!(
        s.contact(known).await.unwrap().created_at,
        t(1_000),
        "existing contacts untouched"
    );
    let present = s
        .live_contacts(&[known, ContactId::new(999_999)])
        .await
        .unwrap();
    assert_eq!(
        present.into_iter().collect::<Vec<_>>(),
        vec![(known, known)]
    );

    // Two batches naming the same new emails in opposite orders, at once: both finish (on
    // PostgreSQL neither waits on the other's uncommitted unique-index entries in a cycle)
    // and agree on every id.
    let forward: Vec<(Email, DateTime<Utc>)> = (0..300)
        .map(|i| (email(&format!("both{i}@example.com")), t(7_000)))
        .collect();
    let backward: Vec<(Email, DateTime<Utc>)> = forward.iter().rev().cloned().collect();
    let (a, b) = tokio::join!(s.ensure_contacts(&forward), s.ensure_contacts(&backward));
    assert_eq!(a.unwrap(), b.unwrap());
}

fn magnet(slug: &str, stage: FunnelStage) -> LeadMagnet {
    LeadMagnet {
        id: LeadMagnetId::new(0),
        slug: slug.into(),
        name: format!("The {slug}"),
        kind: "checklist".into(),
        stage,
    }
}

fn form(slug: &str, magnet: Option<LeadMagnetId>) -> Form {
    Form {
        id: FormId::new(0),
        slug: slug.into(),
        name: format!("Form {slug}"),
        lead_magnet_id: magnet,
        fields: vec!["first_name".into(), "company".into()],
        consent_text: "Send me the checklist.".into(),
        redirect_url: None,
        thank_you: "Thanks!".into(),
    }
}

pub async fn forms_and_lead_magnets_have_a_full_lifecycle<S: Store>(s: &S) {
    let m = s
        .create_lead_magnet(&magnet("checklist", FunnelStage::Top))
        .await
        .unwrap();
    assert!(matches!(
        s.create_lead_magnet(&magnet("checklist", FunnelStage::Middle))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let f = s
        .create_form(&form("get-checklist", Some(m)))
        .await
        .unwrap();
    assert!(matches!(
        s.create_form(&form("get-checklist", None)).await,
        Err(StoreError::Conflict(_))
    ));
    let mut stored = s.form_by_slug("get-checklist").await.unwrap();
    assert_eq!((stored.id, stored.lead_magnet_id), (f, Some(m)));
    assert_eq!(stored.fields, ["first_name", "company"]);
    stored.name = "Renamed".into();
    stored.redirect_url = Some("https://example.com/thanks".into());
    s.update_form(&stored).await.unwrap();
    assert_eq!(s.form_by_slug("get-checklist").await.unwrap(), stored);
    let mut mm = magnet("checklist-2", FunnelStage::Middle);
    mm.id = m;
    s.update_lead_magnet(&mm).await.unwrap();
    assert_eq!(s.lead_magnets().await.unwrap(), vec![mm]);
    s.delete_lead_magnet(m).await.unwrap();
    assert_eq!(
        s.form_by_slug("get-checklist")
            .await
            .unwrap()
            .lead_magnet_id,
        None
    );
    s.delete_form(f).await.unwrap();
    assert!(matches!(
        s.form_by_slug("get-checklist").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(s.delete_form(f).await, Err(StoreError::NotFound)));
    assert!(matches!(
        s.update_form(&stored).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn capture_updates_the_contact_and_keeps_its_first_touch<S: Store>(s: &S) {
    let m = s
        .create_lead_magnet(&magnet("checklist", FunnelStage::Top))
        .await
        .unwrap();
    s.create_form(&form("get-checklist", Some(m)))
        .await
        .unwrap();
    let f = s.form_by_slug("get-checklist").await.unwrap();
    let mg = s.lead_magnets().await.unwrap().pop();
    // The visitor browsed anonymously first.
    let mut view = event("pv-anon", "page_viewed", None, 1_000);
    view.visitor_id = Some("visitor-1".into());
    view.properties.insert("url".into(), json!("/blog/crm"));
    s.append_events(&[view]).await.unwrap();

    let submit = |mail: &str, source: &str, id: &str, at: i64| {
        let fields = [
            ("email", mail),
            ("first_name", "Ann"),
            ("consent", "on"),
            ("utm_source", source),
            ("visitor_id", "visitor-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let sub = submission::check(&f, &fields, t(at)).expect("valid submission");
        let mut ev = event(id, "form_submitted", None, at);
        ev.properties.insert("form".into(), json!("get-checklist"));
        Capture {
            form: f.clone(),
            magnet: mg.clone(),
            submission: sub,
            event: ev,
        }
    };
    let (id, created) = s
        .capture(&submit("Ann@Example.com", "linkedin", "fs-1", 2_000))
        .await
        .unwrap();
    assert!(created);
    let (again, created) = s
        .capture(&submit("ann@example.com", "google", "fs-2", 3_000))
        .await
        .unwrap();
    assert_eq!(
        (again, created),
        (id, false),
        "a second submission updates, never duplicates"
    );

    let c = s.contact(id).await.unwrap();
    assert_eq!(
        c.stage,
        LifecycleStage::Iql,
        "a top-of-funnel magnet makes an IQL"
    );
    assert_eq!(c.source.as_deref(), Some("linkedin"));
    let a = s.attribution(id).await.unwrap();
    let first = a.first_touch.unwrap();
    assert_eq!(
        (first.source.as_deref(), first.lead_magnet.as_deref()),
        (Some("linkedin"), Some("checklist"))
    );
    assert_eq!(a.last_touch.unwrap().source.as_deref(), Some("google"));
    assert_eq!(a.consent.unwrap().source, "form:get-checklist");
    let kinds: Vec<String> = s
        .contact_events(id, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event_type.as_str().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "form_submitted",
            "stage_changed",
            "form_submitted",
            "page_viewed"
        ],
        "earlier views attached, and the step to IQL logged"
    );
    assert_eq!(s.contact_for_visitor("visitor-1").await.unwrap(), Some(id));
    assert_eq!(s.contact_for_visitor("vis-unknown").await.unwrap(), None);
}

/// Contacts who read the blog twice in 30 days, counting views from before they identified.
const BLOG_READERS: [(&str, &str); 1] = [(
    "blog readers",
    r#"count(page_viewed where url ~ "/blog", 30d) >= 2"#,
)];

/// The contact a form submission of `mail` at `at` makes, tying `visitor` to it.
async fn identify<S: Store>(s: &S, mail: &str, visitor: &str, at: DateTime<Utc>) -> ContactId {
    let slug = format!("form-{visitor}");
    s.create_form(&form(&slug, None)).await.unwrap();
    let f = s.form_by_slug(&slug).await.unwrap();
    let fields = [("email", mail), ("consent", "on"), ("visitor_id", visitor)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    s.capture(&Capture {
        form: f.clone(),
        magnet: None,
        submission: submission::check(&f, &fields, at).expect("valid submission"),
        event: event(&format!("fs-{visitor}"), "form_submitted", None, ms(at)),
    })
    .await
    .unwrap()
    .0
}

/// A visitor's anonymous events are the contact's once a submission identifies it: segments
/// read them (with their properties) in the refresh that identification makes, and in any
/// refresh after.
pub async fn views_from_before_identification_count_for_segments<S: Store>(s: &S) {
    let now = Utc::now();
    define_segments(s, &BLOG_READERS, now).await;
    for (id, url, hours) in [
        ("v1", "/blog/crm", 3),
        ("v2", "/blog/cadence", 2),
        ("v3", "/pricing", 1),
    ] {
        let mut view = event(id, "page_viewed", None, ms(now - Duration::hours(hours)));
        view.visitor_id = Some("visitor-9".into());
        view.properties.insert("url".into(), json!(url));
        s.append_events(&[view]).await.unwrap();
    }
    let id = identify(s, "dee@example.com", "visitor-9", now).await;
    let identified = derived_state(s, id).await;
    assert_eq!(
        identified.segments,
        ["blog readers"],
        "both anonymous views"
    );
    s.refresh(&[id], now).await.unwrap();
    assert_eq!(
        derived_state(s, id).await,
        identified,
        "what a refresh gives"
    );
}

/// An anonymous event of a visitor already identified counts for its contact in the refresh
/// of the very batch that brings it, when that batch refreshes the contact for an event of its
/// own: as a refresh after it reads the log.
pub async fn an_identified_visitors_view_counts_in_the_batch_that_brings_it<S: Store>(s: &S) {
    let now = Utc::now();
    define_segments(s, &BLOG_READERS, now).await;
    let id = identify(s, "vic@example.com", "visitor-7", now - Duration::hours(3)).await;
    assert!(derived_state(s, id).await.segments.is_empty());
    // One batch: a view the browser sent without knowing whose it is, and one of the contact's.
    let mut anonymous = event("av-7", "page_viewed", None, ms(now - Duration::hours(2)));
    anonymous.visitor_id = Some("visitor-7".into());
    anonymous
        .properties
        .insert("url".into(), json!("/blog/cadence"));
    let mut own = event(
        "ov-7",
        "page_viewed",
        Some(id),
        ms(now - Duration::hours(1)),
    );
    own.properties.insert("url".into(), json!("/blog/crm"));
    s.append_events(&[anonymous, own]).await.unwrap();
    let appended = derived_state(s, id).await;
    assert_eq!(
        appended.segments,
        ["blog readers"],
        "both views, the anonymous one too"
    );
    s.refresh(&[id], now).await.unwrap();
    assert_eq!(derived_state(s, id).await, appended, "what a refresh gives");
}

pub async fn settings_keep_the_first_value<S: Store>(s: &S) {
    assert_eq!(
        s.setting_or_init("tracking_key", "first").await.unwrap(),
        "first"
    );
    assert_eq!(
        s.setting_or_init("tracking_key", "second").await.unwrap(),
        "first"
    );
    assert_eq!(s.setting_or_init("other", "x").await.unwrap(), "x");
}

pub async fn a_second_import_of_the_same_rows_changes_nothing<S: Store>(s: &S) {
    use orchard_core::import::{ImportKind, Mapping, Record};
    let now = t(1_790_000_000_000);
    let rows = |kind, header: &[&str], data: &[&[&str]]| -> Vec<(usize, Record)> {
        let m = Mapping::new(kind, header).unwrap();
        data.iter()
            .enumerate()
            .map(|(i, r)| (i + 2, m.parse(i + 2, r, now).unwrap()))
            .collect()
    };
    let mut batch = rows(
        ImportKind::Contacts,
        &["Email", "First Name", "Company", "Lifecycle Stage"],
        &[
            &["ann@example.com", "Ann", "Acme", "MQL"],
            &["bo@example.com", "Bo", "", ""],
        ],
    );
    batch.extend(rows(
        ImportKind::Accounts,
        &["Record ID", "Company name", "Number of Employees"],
        &[&["hs-1", "Acme", "120"]],
    ));
    batch.extend(rows(
        ImportKind::Spend,
        &["Date", "Source", "Cost"],
        &[&["2026-03-01", "google", "99.50"]],
    ));
    let dry = s.import(&batch, true).await.unwrap();
    assert_eq!(dry.counts.created, 4);
    let counts = s.table_counts().await.unwrap();
    assert_eq!(
        (counts["contacts"], counts["events"]),
        (0, 0),
        "a dry run stores nothing"
    );
    let first = s.import(&batch, false).await.unwrap().counts;
    assert_eq!(
        first,
        ImportCounts {
            created: 4,
            updated: 0,
            unchanged: 0
        }
    );
    let again = s.import(&batch, false).await.unwrap().counts;
    assert_eq!(
        again,
        ImportCounts {
            created: 0,
            updated: 0,
            unchanged: 4
        }
    );
    // Ann's stage from the file is a transition with its time and cause, logged once.
    let ann = s.contact_by_email(&email("ann@example.com")).await.unwrap();
    assert_eq!(ann.stage, LifecycleStage::Mql);
    let moves: Vec<_> = s
        .contact_events(ann.id, 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type.as_str() == "stage_changed")
        .map(|e| {
            (
                e.properties["to"].clone(),
                e.properties["cause"].clone(),
                e.properties["manual"].clone(),
                e.at,
            )
        })
        .collect();
    assert_eq!(moves.len(), 1, "{moves:?}");
    assert_eq!(
        (&moves[0].0, &moves[0].1, &moves[0].2),
        (
            &json!("MQL"),
            &json!("imported with the contact"),
            &json!(true)
        )
    );
    assert!(
        moves[0].3 > ann.created_at,
        "dated when imported, not when the file says the contact was created"
    );
    let bo = s.contact_by_email(&email("bo@example.com")).await.unwrap();
    assert!(s.contact_events(bo.id, 10).await.unwrap().is_empty());

    // Fit and geographic columns reach the fields segments read.
    let placed = rows(
        ImportKind::Contacts,
        &["Email", "Annual Revenue", "Latitude", "Longitude"],
        &[
            &["cy@example.com", "250000", "52.50", "13.35"],
            &["di@example.com", "250000", "48.14", "11.58"],
        ],
    );
    s.import(&placed, false).await.unwrap();
    let near = orchard_core::segment::define(
        "Large, near Berlin",
        "company_revenue >= 100000 and distance_km(52.52, 13.40) < 50",
        now,
    )
    .unwrap();
    let id = s.create_segment(&near, now).await.unwrap();
    let members: Vec<_> = s
        .segment_members(id, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.email.to_string())
        .collect();
    assert_eq!(members, ["cy@example.com"]);
    let changed = rows(
        ImportKind::Spend,
        &["Date", "Source", "Cost"],
        &[&["2026-03-01", "google", "120"]],
    );
    assert_eq!(s.import(&changed, false).await.unwrap().counts.updated, 1);
    let counts = s.table_counts().await.unwrap();
    assert_eq!(
        (counts["contacts"], counts["accounts"], counts["spend"]),
        (4, 1, 1)
    );
}

/// Deals, revenue and activities name their contact, account and owner by the source system's
/// keys; rows naming nothing stored are rejected with the column, the rest stored once.
pub async fn imported_deals_revenue_and_activities_resolve_their_links<S: Store>(s: &S) {
    use orchard_core::import::{ImportKind, Mapping, Record};
    let now = t(1_790_000_000_000);
    let rows = |kind, header: &[&str], data: &[&[&str]]| -> Vec<(usize, Record)> {
        let m = Mapping::new(kind, header).unwrap();
        data.iter()
            .enumerate()
            .map(|(i, r)| (i + 2, m.parse(i + 2, r, now).unwrap()))
            .collect()
    };
    s.create_user(&user("rep@orchard.test", Role::Rep), None)
        .await
        .unwrap();
    let mut setup = rows(ImportKind::Contacts, &["email"], &[&["ann@acme.com"]]);
    setup.extend(rows(
        ImportKind::Accounts,
        &["external id", "name", "domain"],
        &[
            &["crm-1", "Acme", "acme.com"],
            &["crm-2", "Beta", ""],
            &["crm-3", "Beta", ""],
        ],
    ));
    s.import(&setup, false).await.unwrap();

    let mut batch = rows(
        ImportKind::Deals,
        &[
            "deal id",
            "deal name",
            "amount",
            "status",
            "email",
            "account",
            "owner",
        ],
        &[
            &[
                "d1",
                "Acme pilot",
                "5000",
                "won",
                "ann@acme.com",
                "acme.com",
                "rep@orchard.test",
            ],
            &["d2", "Ghost", "100", "open", "nobody@acme.com", "", ""],
            &["d3", "Beta deal", "100", "open", "", "Beta", ""],
        ],
    );
    batch.extend(rows(
        ImportKind::Revenue,
        &["account", "product", "plan", "amount", "period", "date"],
        &[
            &["crm-1", "Hosting", "Pro", "300", "month", "2026-01-01"],
            &["Acme", "Audit", "", "1500", "", "2026-02-01"],
            &["crm-9", "Hosting", "Pro", "300", "month", "2026-01-01"],
        ],
    ));
    batch.extend(rows(
        ImportKind::Activities,
        &["type", "date", "account", "email", "user", "minutes"],
        &[
            &[
                "call",
                "2026-03-01",
                "crm-1",
                "ann@acme.com",
                "rep@orchard.test",
                "30",
            ],
            &["call", "2026-03-02", "crm-1", "", "boss@orchard.test", "30"],
        ],
    ));
    let report = s.import(&batch, false).await.unwrap();
    assert_eq!(report.counts.created, 4);
    let rejected: Vec<(usize, Option<&str>)> = report
        .rejected
        .iter()
        .map(|r| (r.row, r.column.as_deref()))
        .collect();
    // Row numbers restart per file; here three files share a batch.
    assert_eq!(
        rejected,
        [
            (3, Some("email")),
            (4, Some("account")),
            (4, Some("account")),
            (3, Some("owner"))
        ]
    );
    assert!(report.rejected[1].reason.contains("names 2 accounts"));
    let again = s.import(&batch, false).await.unwrap();
    assert_eq!((again.counts.created, again.counts.unchanged), (0, 4));
    let counts = s.table_counts().await.unwrap();
    assert_eq!(
        (
            counts["deals"],
            counts["subscriptions"],
            counts["orders"],
            counts["activities"]
        ),
        (1, 1, 1, 1)
    );
}

/// One person under two emails: after a merge the survivor carries both timelines, the other's
/// id and email resolve to it, events for either land on it, and lists show one contact.
pub async fn merging_two_contacts_keeps_both_timelines<S: Store>(s: &S) {
    let mut work = NewContact::new(email("ann@work.com"), t(5_000));
    work.details.first_name = Some("Ann".into());
    let (keep, _) = s.upsert_contact(&work).await.unwrap();
    let mut home = NewContact::new(email("ann@home.com"), t(1_000));
    home.details.demographics.company = Some("Acme".into());
    home.stage = LifecycleStage::Mql;
    let (other, _) = s.upsert_contact(&home).await.unwrap();
    let mut before = event("e-home", "email_opened", Some(other), 2_000);
    before.properties.insert("message".into(), json!("m1"));
    s.append_events(&[before, event("e-work", "email_opened", Some(keep), 6_000)])
        .await
        .unwrap();

    let merged = s.merge_contacts(keep, other, t(7_000)).await.unwrap();
    assert_eq!(merged.id, keep);
    assert_eq!(merged.email.as_str(), "ann@work.com");
    assert_eq!(merged.details.first_name.as_deref(), Some("Ann"));
    assert_eq!(merged.details.demographics.company.as_deref(), Some("Acme"));
    assert_eq!(
        (merged.stage, merged.created_at),
        (LifecycleStage::Mql, t(1_000))
    );
    assert_eq!(
        s.merged_emails(keep).await.unwrap(),
        vec![email("ann@home.com")]
    );

    // The other's id and email now find the survivor; new events for either land on it.
    assert_eq!(s.contact(other).await.unwrap().id, keep);
    assert_eq!(
        s.contact_by_email(&email("ann@home.com")).await.unwrap().id,
        keep
    );
    let ids = s
        .ensure_contacts(&[(email("ann@home.com"), t(8_000))])
        .await
        .unwrap();
    assert_eq!(ids[&email("ann@home.com")], keep);
    assert_eq!(s.live_contacts(&[other]).await.unwrap()[&other], keep);
    let (again, created) = s.upsert_contact(&home).await.unwrap();
    assert_eq!(
        (again, created),
        (keep, false),
        "no second contact for a merged email"
    );

    let kinds: Vec<(String, Option<ContactId>)> = s
        .contact_events(keep, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.client_id, e.contact_id))
        .collect();
    assert_eq!(
        kinds,
        [
            (format!("merge-{other}-into-{keep}"), Some(keep)),
            ("e-work".to_owned(), Some(keep)),
            ("e-home".to_owned(), Some(other)),
        ],
        "both timelines, the log unchanged"
    );
    let listed = s
        .list_contacts(
            &ContactQuery {
                page: 1,
                per_page: 50,
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(listed.total, 1);
    let by_old_email = s
        .list_contacts(
            &ContactQuery {
                email: Some(email("ann@home.com")),
                page: 1,
                per_page: 50,
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(by_old_email.items[0].id, keep);

    assert!(matches!(
        s.merge_contacts(keep, other, t(9_000)).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.merge_contacts(keep, keep, t(9_000)).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.merge_contacts(keep, ContactId::new(999_999), t(9_000))
            .await,
        Err(StoreError::NotFound)
    ));
}

/// An API batch resolves its contacts before its transaction begins, so a merge can land in
/// between: the events stay logged for the merged contact, and the survivor's score, segments
/// and last activity take them in as the append returns, as a refresh from the log would.
pub async fn events_for_a_contact_merged_meanwhile_count_for_its_survivor<S: Store>(s: &S) {
    use orchard_core::{scoring, segment};
    let now = Utc::now();
    let ago = |days: i64| now - Duration::days(days);
    s.save_rule_set(&scoring::seed(), true, now).await.unwrap();
    let clickers = segment::define("clickers", "count(email_clicked) >= 1", now).unwrap();
    s.create_segment(&clickers, now).await.unwrap();
    let (keep, _) = s
        .upsert_contact(&NewContact::new(email("bo@work.com"), ago(20)))
        .await
        .unwrap();
    let (other, _) = s
        .upsert_contact(&NewContact::new(email("bo@home.com"), ago(20)))
        .await
        .unwrap();
    s.append_events(&[event("o1", "email_opened", Some(keep), ms(ago(10)))])
        .await
        .unwrap();
    s.merge_contacts(keep, other, ago(5)).await.unwrap();

    // Resolved to `other` before the merge, appended after it.
    let late = [
        event("late-click", "email_clicked", Some(other), ms(ago(2))),
        event("late-open", "email_opened", Some(other), ms(ago(1))),
    ];
    let outcome = s.append_events(&late).await.unwrap();
    assert_eq!(outcome.stored.len(), 2);
    let survivor = s.contact(keep).await.unwrap();
    assert_eq!(survivor.score, 20, "open 5 + click 10 + open 5");
    assert_eq!(
        survivor.last_activity_at.map(ms),
        Some(ms(ago(1))),
        "the survivor's last activity"
    );
    let live = derived_state(s, keep).await;
    assert_eq!(live.segments, ["clickers"]);
    assert!(live.changes.iter().any(|c| &*c.rule_id == "clicked"));
    s.refresh(&[keep], now).await.unwrap();
    assert_eq!(derived_state(s, keep).await, live, "what a refresh gives");
    // The histories the appends and the merge kept are the log's.
    assert_eq!(s.repack_histories().await.unwrap().stale, 0);
    s.refresh(&[keep], now).await.unwrap();
    assert_eq!(
        derived_state(s, keep).await,
        live,
        "what a refresh from histories packed afresh gives"
    );
}

/// With the seed preset live, each appended event moves the score before the append returns;
/// a window that closes with no new event is found through the due-time index; rescoring from
/// the log gives the same figures.
pub async fn scores_follow_each_event_and_the_passing_of_time<S: Store>(s: &S) {
    use orchard_core::scoring;
    let now = Utc::now();
    let ago = |days: i64| now - Duration::days(days);
    let (ann, _) = s
        .upsert_contact(&NewContact::new(email("ann@example.com"), ago(60)))
        .await
        .unwrap();
    // Nothing is live yet: appends leave scores alone.
    s.append_events(&[event("pre", "email_opened", Some(ann), ms(ago(50)))])
        .await
        .unwrap();
    assert_eq!(s.contact(ann).await.unwrap().score, 0);

    let v = s.save_rule_set(&scoring::seed(), true, now).await.unwrap();
    assert_eq!(s.live_rule_set().await.unwrap().unwrap().version, v);
    let mut bad = scoring::seed();
    bad.rules[0].on = Some("email_opened where".into());
    assert!(matches!(
        s.save_rule_set(&bad, true, now).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        s.rule_sets().await.unwrap().len(),
        1,
        "a refused set is not saved"
    );
    s.refresh(&[ann], now).await.unwrap();
    assert_eq!(
        s.contact(ann).await.unwrap().score,
        5,
        "the earlier open, rescored"
    );

    let journey = [
        "email_subscribed",
        "email_clicked",
        "page_viewed",
        "email_replied",
        "appointment_booked",
        "trial_started",
    ];
    for (i, ty) in journey.iter().enumerate() {
        let mut e = event(&format!("j{i}"), ty, Some(ann), ms(ago(40 - i as i64)));
        e.properties.insert("url".into(), json!("/pricing"));
        s.append_events(&[e]).await.unwrap();
    }
    assert_eq!(
        s.contact(ann).await.unwrap().score,
        95,
        "visible when the append returns"
    );
    s.append_events(&[event("c", "appointment_cancelled", Some(ann), ms(ago(30)))])
        .await
        .unwrap();
    assert_eq!(s.contact(ann).await.unwrap().score, 90);
    s.append_events(&[event("u", "email_unsubscribed", Some(ann), ms(ago(29)))])
        .await
        .unwrap();
    assert_eq!(s.contact(ann).await.unwrap().score, 65);
    let explained: Vec<(String, i64)> = s
        .score_changes(ann)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.change.rule_id.to_string(), c.change.points))
        .collect();
    assert_eq!(
        explained,
        [
            ("opened", 5),
            ("subscribed", 5),
            ("clicked", 10),
            ("pricing-visit", 10),
            ("replied", 15),
            ("booked", 25),
            ("trial", 25),
            ("cancelled", -5),
            ("unsubscribed", -25),
        ]
        .map(|(r, p)| (r.to_owned(), p))
    );

    // Bo's only open is 29 days old and email was sent since: on day 31 the absence rule
    // applies with no new event, found through the due-time index.
    let (bo, _) = s
        .upsert_contact(&NewContact::new(email("bo@example.com"), ago(60)))
        .await
        .unwrap();
    s.append_events(&[
        event("b1", "email_sent", Some(bo), ms(ago(45))),
        event("b2", "email_opened", Some(bo), ms(ago(29))),
        event("b3", "email_sent", Some(bo), ms(ago(10))),
    ])
    .await
    .unwrap();
    assert_eq!(s.contact(bo).await.unwrap().score, 5);
    assert!(s.due_for_refresh(now, 100).await.unwrap().is_empty());
    let later = now + Duration::days(2);
    assert_eq!(s.due_for_refresh(later, 100).await.unwrap(), vec![bo]);
    s.refresh(&[bo], later).await.unwrap();
    assert_eq!(s.contact(bo).await.unwrap().score, -5);
    let last = s.score_changes(bo).await.unwrap().pop().unwrap();
    assert_eq!(
        (&*last.change.rule_id, last.change.event, last.version),
        ("no-opens-30d", None, v)
    );
    assert!(s.due_for_refresh(later, 100).await.unwrap().is_empty());

    // Rescoring everyone from the log changes nothing.
    let ids = s.contact_ids_after(None, 100).await.unwrap();
    assert_eq!(ids, vec![ann, bo]);
    let ann_changes = s.score_changes(ann).await.unwrap();
    s.refresh(&ids, now).await.unwrap();
    assert_eq!(s.score_changes(ann).await.unwrap(), ann_changes);
    assert_eq!(s.contact(ann).await.unwrap().score, 65);
}

/// What derivations keep for a contact, as a reader sees it (score history without the rule
/// version, which a republished rule set changes).
#[derive(Debug, PartialEq)]
struct Derived {
    score: i64,
    stage: orchard_core::stage::LifecycleStage,
    changes: Vec<orchard_core::scoring::ScoreChange>,
    segments: Vec<String>,
}

async fn derived_state<S: Store>(s: &S, id: ContactId) -> Derived {
    let c = s.contact(id).await.unwrap();
    Derived {
        score: c.score,
        stage: c.stage,
        changes: s
            .score_changes(id)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.change)
            .collect(),
        segments: s
            .contact_segments(id)
            .await
            .unwrap()
            .into_iter()
            .map(|x| x.segment.name)
            .collect(),
    }
}

/// With a decay in the live rule set, behaviour points lose their share when each period ends
/// with no new event: the due-time index holds the next step, and each step is logged as a
/// `decayed` score change credited to the event that earned the points.
pub async fn decayed_points_are_taken_on_time_with_no_new_event<S: Store>(s: &S) {
    use orchard_core::scoring;
    let now = Utc::now();
    let mut def = scoring::seed();
    def.decay = Some(scoring::Decay {
        percent: 50,
        every_days: 30,
    });
    let v = s.save_rule_set(&def, true, now).await.unwrap();
    let (cy, _) = s
        .upsert_contact(&NewContact::new(
            email("cy@example.com"),
            now - Duration::days(40),
        ))
        .await
        .unwrap();
    let stored = s
        .append_events(&[event(
            "k1",
            "email_clicked",
            Some(cy),
            ms(now - Duration::days(20)),
        )])
        .await
        .unwrap();
    let click = stored.stored[0];
    assert_eq!(s.contact(cy).await.unwrap().score, 10);
    assert!(s.due_for_refresh(now, 10).await.unwrap().is_empty());

    // Day 30 after the click: half of the 10 points go.
    let later = now + Duration::days(11);
    assert_eq!(s.due_for_refresh(later, 10).await.unwrap(), vec![cy]);
    s.refresh(&[cy], later).await.unwrap();
    assert_eq!(s.contact(cy).await.unwrap().score, 5);
    let last = s.score_changes(cy).await.unwrap().pop().unwrap();
    assert_eq!(
        (
            &*last.change.rule_id,
            last.change.points,
            &*last.change.cause,
            last.change.event,
            last.version
        ),
        ("clicked", -5, "decayed", Some(click), v)
    );
    assert!(
        s.due_for_refresh(later, 10).await.unwrap().is_empty(),
        "the next step is a period away"
    );

    // Day 60: half of what is left, rounded toward zero (5 → 2).
    let much_later = now + Duration::days(41);
    assert_eq!(s.due_for_refresh(much_later, 10).await.unwrap(), vec![cy]);
    s.refresh(&[cy], much_later).await.unwrap();
    assert_eq!(s.contact(cy).await.unwrap().score, 2);
    assert_eq!(s.score_changes(cy).await.unwrap().len(), 3);
}

/// Batches for one contact appended at once (two API clients, or a client and an import) leave
/// it as a refresh from the whole log does: each refresh must see every event committed before
/// it, so the last to commit has seen them all. The events are older than the contact's last
/// activity, so updating that column orders nothing; only the refresh's own lock does.
pub async fn concurrent_batches_for_one_contact_converge<S: Store>(s: &S) {
    use orchard_core::{scoring, segment};
    let now = Utc::now();
    let ago = |days: i64| ms(now - Duration::days(days));
    s.save_rule_set(&scoring::seed(), true, now).await.unwrap();
    s.create_segment(
        &segment::define("browsers", "count(page_viewed) >= 3", now).unwrap(),
        now,
    )
    .await
    .unwrap();
    let types = [
        "page_viewed",
        "email_opened",
        "email_clicked",
        "page_viewed",
        "email_replied",
        "page_viewed",
    ];
    for round in 0..4 {
        let (c, _) = s
            .upsert_contact(&NewContact::new(
                email(&format!("race{round}@example.com")),
                now - Duration::days(200),
            ))
            .await
            .unwrap();
        s.append_events(&[event(
            &format!("r{round}-last"),
            "chat_started",
            Some(c),
            ago(1),
        )])
        .await
        .unwrap();
        let batches: Vec<Vec<NewEvent>> = (0..8)
            .map(|b| {
                (0..3)
                    .map(|i| {
                        let n = b * 3 + i;
                        event(
                            &format!("r{round}-{n}"),
                            types[n % types.len()],
                            Some(c),
                            ago(100 - n as i64),
                        )
                    })
                    .collect()
            })
            .collect();
        // Four writers, two batches each, all at once.
        let send = |from: usize| {
            let batches = &batches;
            async move {
                for batch in &batches[from..from + 2] {
                    s.append_events(batch).await.unwrap();
                }
            }
        };
        tokio::join!(send(0), send(2), send(4), send(6));
        let incremental = derived_state(s, c).await;
        let entered = s
            .contact_events(c, 1_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.event_type.as_str() == "segment_entered")
            .count();
        s.refresh(&[c], Utc::now()).await.unwrap();
        assert_eq!(
            incremental,
            derived_state(s, c).await,
            "round {round}: concurrent batches left a state that a refresh from the log changes"
        );
        assert_eq!(
            entered, 1,
            "round {round}: entered the segment {entered} times"
        );
    }
    // The histories the concurrent appends kept hold each event once.
    assert_eq!(s.repack_histories().await.unwrap().stale, 0);
    // Appends beside a repack: it waits for those that stored their events before it began,
    // later ones append to what it wrote; nothing is lost or counted twice.
    let (c, _) = s
        .upsert_contact(&NewContact::new(email("repacked@example.com"), now))
        .await
        .unwrap();
    let send = |from: usize| async move {
        for b in from..from + 12 {
            let batch: Vec<NewEvent> = (0..4)
                .map(|i| event(&format!("rp{b}-{i}"), types[i], Some(c), ago(30 - b as i64)))
                .collect();
            s.append_events(&batch).await.unwrap();
        }
    };
    let repacks = async {
        for _ in 0..12 {
            s.repack_histories().await.unwrap();
        }
    };
    tokio::join!(send(0), repacks, send(12));
    assert_eq!(s.repack_histories().await.unwrap().stale, 0);
    let incremental = derived_state(s, c).await;
    s.refresh(&[c], Utc::now()).await.unwrap();
    assert_eq!(derived_state(s, c).await, incremental);
}

/// Callers whose batches arrive together (written in one transaction) each hear
/// back about their own events only, in their own order: a client id sent by two callers at
/// once is stored for one and a duplicate for the other, one already in the log is a duplicate
/// for all, and the state the batches leave is the state a refresh from the log derives.
pub async fn concurrent_batches_each_hear_what_became_of_their_own_events<S: Store>(s: &S) {
    use orchard_core::scoring;
    let now = Utc::now();
    let ago = |days: i64| ms(now - Duration::days(days));
    s.save_rule_set(&scoring::seed(), true, now).await.unwrap();
    let mut contacts = Vec::new();
    for i in 0..3 {
        let (c, _) = s
            .upsert_contact(&NewContact::new(
                email(&format!("together{i}@example.com")),
                now - Duration::days(100),
            ))
            .await
            .unwrap();
        contacts.push(c);
    }
    s.append_events(&[event("t-old", "email_opened", Some(contacts[0]), ago(50))])
        .await
        .unwrap();
    let types = [
        "email_opened",
        "email_clicked",
        "page_viewed",
        "email_replied",
    ];
    // Eight callers; each sends one id of its own per contact, the id "t-shared" that every
    // caller sends, and the id already in the log.
    let batches: Vec<Vec<NewEvent>> = (0..8)
        .map(|b| {
            let mut batch: Vec<NewEvent> = contacts
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    event(
                        &format!("t{b}-{i}"),
                        types[(b + i) % types.len()],
                        Some(*c),
                        ago(40 - b as i64),
                    )
                })
                .collect();
            batch.insert(
                1,
                event("t-shared", "page_viewed", Some(contacts[1]), ago(45)),
            );
            batch.push(event("t-old", "email_opened", Some(contacts[0]), ago(50)));
            batch
        })
        .collect();
    let send = |b: usize| s.append_events(&batches[b]);
    let (o0, o1, o2, o3, o4, o5, o6, o7) = tokio::join!(
        send(0),
        send(1),
        send(2),
        send(3),
        send(4),
        send(5),
        send(6),
        send(7)
    );
    let outcomes = [o0, o1, o2, o3, o4, o5, o6, o7];
    let mut shared_stored = 0;
    let mut seqs = Vec::new();
    for (b, (batch, outcome)) in batches.iter().zip(outcomes).enumerate() {
        let outcome = outcome.unwrap();
        let shared = !outcome.duplicates.contains(&"t-shared".to_owned());
        shared_stored += usize::from(shared);
        let mut duplicates = vec!["t-old".to_owned()];
        if !shared {
            duplicates.insert(0, "t-shared".to_owned());
        }
        assert_eq!(outcome.duplicates, duplicates, "batch {b}");
        assert_eq!(
            outcome.stored.len() + outcome.duplicates.len(),
            batch.len(),
            "batch {b}: every event is accounted for once"
        );
        // Stored in batch order: sequence numbers rise within a batch.
        assert!(outcome.stored.windows(2).all(|w| w[0] < w[1]), "batch {b}");
        seqs.extend(outcome.stored.iter().map(|q| q.get()));
    }
    assert_eq!(
        shared_stored, 1,
        "the shared id was stored {shared_stored} times"
    );
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(
        seqs.len(),
        8 * 3 + 1,
        "a sequence number was reported twice"
    );
    for c in &contacts {
        let timeline = s.contact_events(*c, 1_000).await.unwrap();
        let own = timeline
            .iter()
            .filter(|e| e.client_id.starts_with('t'))
            .count();
        let expected = 8 + usize::from(*c == contacts[0]) + usize::from(*c == contacts[1]);
        assert_eq!(own, expected, "contact {c:?}: events lost or stored twice");
        let incremental = derived_state(s, *c).await;
        s.refresh(&[*c], Utc::now()).await.unwrap();
        assert_eq!(incremental, derived_state(s, *c).await, "contact {c:?}");
    }
    assert_eq!(s.repack_histories().await.unwrap().stale, 0);
}

/// An import updating contacts in file order while appends touch the same contacts: both
/// finish. On PostgreSQL the import takes the rows in the order every refresh does, so neither
/// waits on the other in a cycle and is aborted as a deadlock victim.
pub async fn an_import_beside_appends_to_the_same_contacts_finishes<S: Store>(s: &S) {
    use orchard_core::import::Record;
    let now = Utc::now();
    let mut ids = Vec::new();
    for i in 0..40 {
        let (id, _) = s
            .upsert_contact(&NewContact::new(
                email(&format!("imp{i}@example.com")),
                now - Duration::days(50),
            ))
            .await
            .unwrap();
        ids.push(id);
    }
    for round in 0..3 {
        // The file names the contacts newest first: against the id order.
        let records: Vec<(usize, Record)> = (0..40)
            .rev()
            .enumerate()
            .map(|(row, i)| {
                let mut c = NewContact::new(
                    email(&format!("imp{i}@example.com")),
                    now - Duration::days(50),
                );
                c.details.first_name = Some(format!("Round{round}"));
                (row + 2, Record::Contact(Box::new(c)))
            })
            .collect();
        let batch = |w: usize| -> Vec<NewEvent> {
            ids.iter()
                .enumerate()
                .map(|(k, id)| {
                    event(
                        &format!("imp-{round}-{w}-{k}"),
                        "email_opened",
                        Some(*id),
                        ms(now - Duration::days(10)),
                    )
                })
                .collect()
        };
        let (first, second) = (batch(0), batch(1));
        let (imported, a, b) = tokio::join!(
            s.import(&records, false),
            s.append_events(&first),
            s.append_events(&second),
        );
        assert_eq!(imported.unwrap().counts.updated, 40, "round {round}");
        a.unwrap();
        b.unwrap();
    }
}

/// A rebuild refreshes contacts in chunks, deciding one chunk while it loads the next; refreshing
/// contacts one at a time (no pipeline) gives the same scores, histories, stages and segments.
pub async fn a_rebuild_in_chunks_equals_refreshing_contacts_one_by_one<S: Store>(s: &S) {
    let settings = DemoSettings {
        seed: 11,
        contacts: 1_300,
        now: t(1_780_000_000_000),
    };
    let now = settings.now;
    let company = load_scored_demo(s, &settings).await;
    define_segments(
        s,
        &[
            ("Warm", "score >= 20"),
            ("Opened lately", "count(email_opened, 30d) >= 1"),
            // Read from the contacts' accounts, which a chunk loads by the ids its contacts name.
            ("Larger accounts", "account.employees >= 50"),
        ],
        now,
    )
    .await;
    // 700 a transaction: two transactions, each of more than one chunk.
    let rebuilt = crate::refresh_all(s, now, 700, crate::Refresh::Everything, &|_| {})
        .await
        .unwrap();
    assert_eq!(rebuilt, 1_300);

    let all = s.contact_ids_after(None, 10_000).await.unwrap();
    let mut with_account = 0;
    let mut larger = 0;
    for id in &all {
        let c = s.contact(*id).await.unwrap();
        let Some(account) = c.account_id else {
            continue;
        };
        with_account += 1;
        let employees = company
            .accounts
            .iter()
            .find(|a| a.id == account)
            .and_then(|a| a.employees);
        let member = derived_state(s, *id)
            .await
            .segments
            .contains(&"Larger accounts".to_owned());
        assert_eq!(member, employees.is_some_and(|e| e >= 50), "contact {id:?}");
        larger += usize::from(member);
    }
    assert!(
        larger > 0 && larger < with_account,
        "{larger} of {with_account}"
    );

    let sample: Vec<ContactId> = all.into_iter().step_by(13).collect();
    let mut chunked = Vec::new();
    for id in &sample {
        chunked.push(derived_state(s, *id).await);
    }
    assert!(
        chunked.iter().any(|d| d.score > 0),
        "the demo scores someone"
    );
    each_refreshed_alone_leaves(s, &sample, &chunked, now).await;
}

/// An append's refresh of many contacts, decided in two halves at once when nothing else is
/// loaded beside it, leaves what refreshing each contact alone does: scores, histories, stages
/// and segments.
pub async fn a_batch_of_many_contacts_decides_as_each_alone<S: Store>(s: &S) {
    let settings = DemoSettings {
        seed: 17,
        contacts: 300,
        now: t(1_780_000_000_000),
    };
    let now = settings.now;
    load_scored_demo(s, &settings).await;
    define_segments(
        s,
        &[
            ("Warm", "score >= 20"),
            ("Opened lately", "count(email_opened, 30d) >= 1"),
            (
                "Priced",
                r#"count(page_viewed where url ~ "/Pricing") >= 1"#,
            ),
            // Each half of the chunk reads the accounts of its own contacts.
            ("Larger accounts", "account.employees >= 50"),
        ],
        now,
    )
    .await;
    let all = s.contact_ids_after(None, 10_000).await.unwrap();
    assert_eq!(all.len(), 300);
    // One batch: an open for every contact, and a pricing view for every third, a minute
    // before the clock an append refreshes by.
    let at = Utc::now().timestamp_millis() - 60_000;
    let mut batch = Vec::new();
    for (i, id) in all.iter().enumerate() {
        batch.push(event(
            &format!("many-open-{i}"),
            "email_opened",
            Some(*id),
            at,
        ));
        if i % 3 == 0 {
            let mut view = event(&format!("many-view-{i}"), "page_viewed", Some(*id), at);
            view.properties
                .insert("url".into(), "https://example.com/pricing".into());
            batch.push(view);
        }
    }
    let outcome = s.append_events(&batch).await.unwrap();
    assert_eq!(outcome.stored.len(), batch.len());
    let mut together = Vec::new();
    for id in &all {
        together.push(derived_state(s, *id).await);
    }
    assert!(
        together
            .iter()
            .filter(|d| d.segments.contains(&"Priced".to_owned()))
            .count()
            >= 100,
        "every third contact viewed the pricing page"
    );
    assert!(
        together
            .iter()
            .all(|d| d.segments.contains(&"Opened lately".to_owned())),
        "everyone opened an email a minute ago"
    );
    let larger = together
        .iter()
        .filter(|d| d.segments.contains(&"Larger accounts".to_owned()))
        .count();
    assert!(larger > 0 && larger < 300, "{larger} in larger accounts");
    each_refreshed_alone_leaves(s, &all, &together, Utc::now()).await;
}

/// A new segment decides its own membership only (`Refresh::Segment`): what it leaves is what
/// a refresh of everything would give, down to when each contact is next due.
pub async fn a_new_segment_is_decided_alone_as_a_full_refresh_would<S: Store>(s: &S) {
    use orchard_core::segment;
    let settings = DemoSettings {
        seed: 5,
        contacts: 600,
        now: t(1_780_000_000_000),
    };
    let now = settings.now;
    load_scored_demo(s, &settings).await;
    s.create_segment(&segment::define("Warm", "score >= 20", now).unwrap(), now)
        .await
        .unwrap();
    crate::refresh_all(s, now, 250, crate::Refresh::Everything, &|_| {})
        .await
        .unwrap();
    // Due sooner than the scores are, for some: a week's window.
    s.create_segment(
        &segment::define(
            "Opened this week",
            "count(email_opened, 7d) >= 1 or last(page_viewed) within 3d",
            now,
        )
        .unwrap(),
        now,
    )
    .await
    .unwrap();
    let all = s.contact_ids_after(None, 10_000).await.unwrap();
    let snapshot = || async {
        let mut states = Vec::new();
        for id in &all {
            states.push(derived_state(s, *id).await);
        }
        let mut dues = Vec::new();
        for days in [1, 4, 8, 31, 400] {
            let mut due = s
                .due_for_refresh(now + Duration::days(days), 100_000)
                .await
                .unwrap();
            due.sort();
            dues.push(due);
        }
        (states, dues)
    };
    let alone = snapshot().await;
    assert!(
        alone
            .0
            .iter()
            .any(|d| d.segments.contains(&"Opened this week".to_owned())),
        "someone opened an email this week"
    );
    assert!(
        alone.1[0].len() < alone.1[2].len(),
        "due times spread over the days: {:?}",
        alone.1.iter().map(Vec::len).collect::<Vec<_>>()
    );
    crate::refresh_all(s, now, 250, crate::Refresh::Everything, &|_| {})
        .await
        .unwrap();
    assert!(
        alone == snapshot().await,
        "a full refresh changed what the new segment left"
    );
    // Deciding a segment deleted meanwhile changes nothing.
    let gone = s
        .create_segment(&segment::define("Gone", "score >= 0", now).unwrap(), now)
        .await
        .unwrap();
    s.delete_segment(gone).await.unwrap();
    s.refresh_segment(gone, &all, now).await.unwrap();
    assert!(alone == snapshot().await);
}

/// A refresh reads the accounts its live contacts name: a contact merged away keeps its own
/// account out of its survivor's decisions, and a chunk in which no contact has an account
/// (nothing to look up) decides account conditions as false rather than failing.
pub async fn a_rebuild_reads_the_accounts_of_live_contacts_only<S: Store>(s: &S) {
    use orchard_core::segment;
    let now = t(1_780_000_000_000);
    let settings = DemoSettings {
        seed: 3,
        contacts: 0,
        now,
    };
    let company = demo::company(&settings);
    s.load_company(&company).await.unwrap();
    let sized = |big: bool| {
        company
            .accounts
            .iter()
            .find(|a| a.employees.is_some_and(|e| (e >= 50) == big))
            .map(|a| a.id)
            .expect("the demo has small and large accounts")
    };
    let larger = s
        .create_segment(
            &segment::define("Larger accounts", "account.employees >= 50", now).unwrap(),
            now,
        )
        .await
        .unwrap();
    let mut keep = NewContact::new(email("keep@small.example"), now - Duration::days(9));
    keep.account_id = Some(sized(false));
    let (keep, _) = s.upsert_contact(&keep).await.unwrap();
    let mut other = NewContact::new(email("other@large.example"), now - Duration::days(9));
    other.account_id = Some(sized(true));
    let (other, _) = s.upsert_contact(&other).await.unwrap();
    let (lone, _) = s
        .upsert_contact(&NewContact::new(
            email("lone@nowhere.example"),
            now - Duration::days(9),
        ))
        .await
        .unwrap();
    let members = |id| async move { derived_state(s, id).await.segments };
    assert_eq!(members(other).await, ["Larger accounts"]);
    assert!(members(keep).await.is_empty());

    s.merge_contacts(keep, other, now).await.unwrap();
    assert_eq!(
        s.contact(keep).await.unwrap().account_id,
        Some(sized(false))
    );
    // Chunks of one: the survivor's alone, and one with no account at all.
    assert_eq!(
        crate::refresh_all(s, now, 1, crate::Refresh::Everything, &|_| {})
            .await
            .unwrap(),
        2
    );
    assert!(members(keep).await.is_empty());
    assert!(members(lone).await.is_empty());
    assert_eq!(s.segment(larger).await.unwrap().member_count, 0);
    // The merged-away id asked for by name refreshes its survivor.
    s.refresh(&[other, lone], now).await.unwrap();
    assert!(members(keep).await.is_empty());
    assert!(members(lone).await.is_empty());
    assert_eq!(s.segment(larger).await.unwrap().member_count, 0);
}

/// A property checked over several seeded random streams: after any sequence of events and
/// attribute changes, each segment's kept members equal a from-scratch evaluation of its filter
/// over every contact (the builder's preview, which shares nothing with the apply step but the
/// rule evaluator).
pub async fn segment_members_match_a_brute_force_count_after_random_events<S: Store>(s: &S) {
    use orchard_core::rng::Rng;
    let now = Utc::now();
    s.save_rule_set(&orchard_core::scoring::seed(), true, now)
        .await
        .unwrap();
    let filters = [
        ("German", r#"country = "DE""#),
        ("Engaged", "count(email_opened, 30d) >= 2"),
        (
            "Pricing lookers",
            r#"count(page_viewed where url ~ "/pricing") >= 1 and not country = "FR""#,
        ),
        ("Warm", "score >= 20"),
        (
            "Lapsed",
            "last(email_opened) older than 14d and count(email_sent) > 0",
        ),
    ];
    let ids = define_segments(s, &filters, now).await;
    let countries = ["DE", "FR", "AT", "US"];
    let types = [
        "email_opened",
        "email_sent",
        "page_viewed",
        "email_clicked",
        "trial_started",
    ];
    for seed in 0..4u64 {
        let mut rng = Rng::new(seed);
        let mut contacts = Vec::new();
        for i in 0..12 {
            let mut c = NewContact::new(
                email(&format!("p{seed}-{i}@example.com")),
                now - Duration::days(90),
            );
            c.details.geography.country = Some((*rng.pick(&countries)).to_owned());
            contacts.push(s.upsert_contact(&c).await.unwrap().0);
        }
        for b in 0..4 {
            let batch: Vec<NewEvent> = (0..15)
                .map(|k| {
                    let ty = *rng.pick(&types);
                    let at = now - Duration::minutes(rng.range(1, 60 * 24 * 60));
                    let mut e = event(
                        &format!("r{seed}-{b}-{k}"),
                        ty,
                        Some(*rng.pick(&contacts)),
                        ms(at),
                    );
                    // Multi-byte characters and JSON's own brackets and escapes, which a
                    // history's lengths (in bytes) and its reader must step over alike.
                    e.properties.insert(
                        "url".into(),
                        json!(if rng.chance(0.5) {
                            "/pricing/ü€😀?q=\"]}"
                        } else {
                            "/blög]},\\"
                        }),
                    );
                    e
                })
                .collect();
            s.append_events(&batch).await.unwrap();
            // Attributes change too: someone moves country.
            let who = *rng.pick(&contacts);
            let mut moved = NewContact::new(s.contact(who).await.unwrap().email, now);
            moved.details.geography.country = Some((*rng.pick(&countries)).to_owned());
            s.upsert_contact(&moved).await.unwrap();
        }
        for (id, (name, f)) in ids.iter().zip(filters) {
            let kept = s.segment(*id).await.unwrap();
            let mut kept_members: Vec<ContactId> = s
                .segment_members(*id, None, 10_000)
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.id)
                .collect();
            let preview = s
                .preview_segment(
                    &orchard_core::rules::parse(f).unwrap(),
                    Utc::now(),
                    usize::MAX,
                    None,
                )
                .await
                .unwrap();
            assert!(preview.size().is_exact());
            let count = preview.matched;
            let mut previewed: Vec<ContactId> = preview.members.into_iter().map(|c| c.id).collect();
            // And by hand, every contact read whole through the ordinary lookups: the
            // preview and the apply step both load only what filters read, the same way.
            let filter = orchard_core::rules::parse(f).unwrap();
            let evaluated_at = Utc::now();
            let mut brute = Vec::new();
            for id in s.contact_ids_after(None, 10_000).await.unwrap() {
                let c = s.contact(id).await.unwrap();
                let mut events = s.contact_events(id, 100_000).await.unwrap();
                events.sort_by_key(|e| (e.at, e.seq));
                let subject = orchard_core::rules::Subject {
                    contact: &c,
                    account: None,
                    events: &events,
                    now: evaluated_at,
                };
                if orchard_core::rules::eval(&filter, &subject) {
                    brute.push(id);
                }
            }
            kept_members.sort();
            previewed.sort();
            brute.sort();
            assert_eq!(kept.member_count, count, "seed {seed}, segment {name}");
            assert_eq!(kept_members, previewed, "seed {seed}, segment {name}");
            assert_eq!(kept_members, brute, "seed {seed}, segment {name}, by hand");
        }
    }
    let all = s.segments().await.unwrap();
    assert_eq!(all.len(), 5);
    assert!(
        all.iter().any(|x| x.member_count > 0),
        "the stream puts someone somewhere"
    );

    // Incremental equals rebuild: recomputing everyone from the log changes no score, no
    // explanation and no membership. The same rules are published again as a new version
    // first, so that the rebuild rewrites every history whole rather than finding it current
    // (incremental refreshes append to a history they find to be a prefix of the new one).
    // The contacts' histories, which appends and refreshes (their derived events) kept, are
    // packed afresh from the log first, so the rebuild reads the log itself.
    let snapshot = async || {
        let mut out = Vec::new();
        for id in s.contact_ids_after(None, 10_000).await.unwrap() {
            out.push((id, derived_state(s, id).await));
        }
        out
    };
    let incremental = snapshot().await;
    let again = s
        .save_rule_set(&orchard_core::scoring::seed(), true, now)
        .await
        .unwrap();
    let repacked = s.repack_histories().await.unwrap();
    assert_eq!(
        repacked.stale, 0,
        "appends and refreshes kept the histories"
    );
    assert!(repacked.contacts >= 40, "{repacked:?}");
    crate::refresh_all(
        s,
        Utc::now(),
        crate::LIVE_BATCH,
        crate::Refresh::Everything,
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!(snapshot().await, incremental);
    let any = incremental
        .iter()
        .find(|(_, d)| !d.changes.is_empty())
        .unwrap();
    assert!(
        s.score_changes(any.0)
            .await
            .unwrap()
            .iter()
            .all(|c| c.version == again),
        "the rebuild rewrote the history under the new version"
    );
}

/// The builder's live count over more contacts than it is asked to read evaluates every n-th
/// contact id (a merged one is not evaluated), and says how many it read of how many; the
/// members it shows are whole contacts, though it read only what the filter names.
pub async fn a_large_preview_evaluates_a_sample_of_ids<S: Store>(s: &S) {
    let now = Utc::now();
    let mut ids = Vec::new();
    for i in 0..30 {
        let mut c = NewContact::new(email(&format!("p{i}@example.com")), now);
        c.details.first_name = Some(format!("P{i}"));
        c.details.geography.country = Some(if i % 2 == 0 { "DE" } else { "FR" }.into());
        ids.push(s.upsert_contact(&c).await.unwrap().0);
    }
    // Every third id from the first: p0, p3, ... p27, of which the even ones are German.
    s.merge_contacts(ids[7], ids[6], now).await.unwrap();
    let filter = orchard_core::rules::parse(r#"country = "DE""#).unwrap();
    let exact = s.preview_segment(&filter, now, 3, None).await.unwrap();
    assert_eq!((exact.matched, exact.evaluated, exact.live), (14, 29, 29));
    let p = s.preview_segment(&filter, now, 3, Some(10)).await.unwrap();
    let stepped: Vec<usize> = (0..30).step_by(3).filter(|i| *i != 6).collect();
    assert_eq!(p.evaluated, stepped.len() as i64);
    assert_eq!(p.live, 29);
    assert_eq!(
        p.matched,
        stepped.iter().filter(|i| *i % 2 == 0).count() as i64
    );
    let shown: Vec<ContactId> = p.members.iter().map(|c| c.id).collect();
    assert_eq!(shown, vec![ids[0], ids[12], ids[18]]);
    assert_eq!(p.members[1].details.first_name.as_deref(), Some("P12"));
    let size = p.size();
    assert!(!size.is_exact());
    assert!(size.low <= 14 && 14 <= size.high, "{size:?}");
    // Asked for no fewer than there are: everyone, exactly.
    let all = s.preview_segment(&filter, now, 3, Some(29)).await.unwrap();
    assert_eq!(all, exact);
}

/// "Opened in the last 7 days" loses a contact when the 7 days pass, with no new event: the
/// due-time index finds it, and the change is logged as a `segment_left` event.
pub async fn a_contact_leaves_a_window_segment_when_time_passes<S: Store>(s: &S) {
    use orchard_core::segment;
    let now = Utc::now();
    let (ann, _) = s
        .upsert_contact(&NewContact::new(
            email("ann@example.com"),
            now - Duration::days(30),
        ))
        .await
        .unwrap();
    let recent = s
        .create_segment(
            &segment::define("Opened this week", "count(email_opened, 7d) >= 1", now).unwrap(),
            now,
        )
        .await
        .unwrap();
    assert_eq!(s.segment(recent).await.unwrap().member_count, 0);
    s.append_events(&[event(
        "o1",
        "email_opened",
        Some(ann),
        ms(now - Duration::days(6)),
    )])
    .await
    .unwrap();
    assert_eq!(
        s.segment(recent).await.unwrap().member_count,
        1,
        "entered with the event"
    );
    assert_eq!(
        s.contact_segments(ann).await.unwrap()[0].segment.name,
        "Opened this week"
    );
    let later = now + Duration::days(2);
    assert_eq!(s.due_for_refresh(later, 10).await.unwrap(), vec![ann]);
    s.refresh(&[ann], later).await.unwrap();
    assert_eq!(
        s.segment(recent).await.unwrap().member_count,
        0,
        "left when the week passed"
    );
    let kinds: Vec<String> = s
        .contact_events(ann, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type.as_str().to_owned())
        .collect();
    assert_eq!(kinds, ["segment_left", "segment_entered", "email_opened"]);
    s.delete_segment(recent).await.unwrap();
    assert!(matches!(s.segment(recent).await, Err(StoreError::NotFound)));
    assert!(matches!(
        s.delete_segment(recent).await,
        Err(StoreError::NotFound)
    ));
}

/// Each stage transition is logged with its time and cause; a person's change holds until
/// something new happens.
pub async fn stages_follow_the_rules_and_respect_a_manual_change<S: Store>(s: &S) {
    let now = Utc::now();
    let ago = |d: i64| ms(now - Duration::days(d));
    let ann = new_contact(s, "ann@example.com", now, 30).await;
    let mut form = event("f1", "form_submitted", Some(ann), ago(20));
    form.properties
        .insert("form".into(), json!("get-checklist"));
    form.properties.insert("funnel_stage".into(), json!("top"));
    let mut pricing = event("p1", "page_viewed", Some(ann), ago(15));
    pricing.properties.insert("url".into(), json!("/pricing"));
    s.append_events(&[form, pricing]).await.unwrap();
    assert_eq!(s.contact(ann).await.unwrap().stage, LifecycleStage::Mql);
    s.append_events(&[event("b1", "appointment_booked", Some(ann), ago(10))])
        .await
        .unwrap();
    assert_eq!(s.contact(ann).await.unwrap().stage, LifecycleStage::Sql);
    let steps = |evs: Vec<orchard_core::event::Event>| -> Vec<(String, String, Option<bool>)> {
        let mut v: Vec<_> = evs
            .into_iter()
            .filter(|e| e.event_type.as_str() == "stage_changed")
            .map(|e| {
                (
                    e.properties["to"].as_str().unwrap().to_owned(),
                    e.properties["cause"].as_str().unwrap().to_owned(),
                    e.properties["manual"].as_bool(),
                )
            })
            .collect();
        v.reverse();
        v
    };
    let logged = steps(s.contact_events(ann, 50).await.unwrap());
    assert_eq!(
        logged,
        [
            (
                "IQL".into(),
                "took a top-of-funnel lead magnet".into(),
                Some(false)
            ),
            ("MQL".into(), "visited the pricing page".into(), Some(false)),
            ("SQL".into(), "booked an appointment".into(), Some(false)),
        ]
    );

    // Sales sends Ann back to nurturing (setting the stage she then has again is no
    // transition: only the first is logged); an open changes nothing, a new booking does.
    for cause in ["set by Ada: not ready yet", "set by Ada: again"] {
        let back = s
            .set_stage(ann, LifecycleStage::Mql, cause, now - Duration::days(5))
            .await
            .unwrap();
        assert_eq!(back.stage, LifecycleStage::Mql);
    }
    s.append_events(&[event("o1", "email_opened", Some(ann), ago(4))])
        .await
        .unwrap();
    assert_eq!(s.contact(ann).await.unwrap().stage, LifecycleStage::Mql);
    s.refresh(&[ann], now).await.unwrap();
    assert_eq!(
        s.contact(ann).await.unwrap().stage,
        LifecycleStage::Mql,
        "a rebuild keeps it"
    );
    s.append_events(&[event("b2", "appointment_booked", Some(ann), ago(2))])
        .await
        .unwrap();
    assert_eq!(s.contact(ann).await.unwrap().stage, LifecycleStage::Sql);
    let logged = steps(s.contact_events(ann, 50).await.unwrap());
    assert_eq!(
        logged[3],
        ("MQL".into(), "set by Ada: not ready yet".into(), Some(true))
    );
    assert_eq!(logged.len(), 5);
}

/// A backtest scores every contact under both sets as of its date and replays each set's
/// stages from the events and deals up to then: lower thresholds make other MQLs and SQLs, a
/// deal opened before the date makes an opportunity under both, and nothing is saved.
pub async fn a_backtest_replays_each_sets_stages_from_events_and_deals<S: Store>(s: &S) {
    use orchard_core::import::{ImportKind, Mapping, Record};
    let now = Utc::now();
    let ago = |d: i64| ms(now - Duration::days(d));
    let day = |d: i64| (now - Duration::days(d)).format("%Y-%m-%d").to_string();
    let ann = new_contact(s, "ann@example.com", now, 200).await;
    let bob = new_contact(s, "bob@example.com", now, 200).await;
    let cat = new_contact(s, "cat@example.com", now, 200).await;
    let dan = new_contact(s, "dan@example.com", now, 200).await;
    // Set by hand before the date: the rules go on from there under both sets.
    s.set_stage(
        dan,
        LifecycleStage::Sql,
        "met at a fair",
        now - Duration::days(80),
    )
    .await
    .unwrap();
    let mut pricing = event("p1", "page_viewed", Some(ann), ago(90));
    pricing.properties.insert("url".into(), json!("/pricing"));
    s.append_events(&[
        event("o1", "email_opened", Some(ann), ago(100)),
        event("o2", "email_opened", Some(bob), ago(100)),
        event("o3", "email_opened", Some(cat), ago(100)),
        pricing,
        // After the backtest's date: counted by neither set.
        event("b1", "appointment_booked", Some(bob), ago(5)),
    ])
    .await
    .unwrap();
    let m = Mapping::new(
        ImportKind::Deals,
        &[
            "deal id",
            "deal name",
            "amount",
            "status",
            "email",
            "create date",
            "closed at",
        ],
    )
    .unwrap();
    let row = [
        "d1",
        "Cat's deal",
        "900",
        "won",
        "cat@example.com",
        &day(60),
        &day(10),
    ];
    let deal: Vec<(usize, Record)> = vec![(2, m.parse(2, &row, now).unwrap())];
    assert!(s.import(&deal, false).await.unwrap().rejected.is_empty());

    let live = orchard_core::scoring::seed();
    s.save_rule_set(&live, true, now).await.unwrap();
    let mut draft = live.clone();
    draft.thresholds = orchard_core::lifecycle::Thresholds {
        mql: Some(5),
        sql: Some(15),
    };
    let compile = |d| orchard_core::scoring::RuleSet::compile(d, 1).unwrap();
    let before = s.table_counts().await.unwrap();
    let stored_stage = s.contact(bob).await.unwrap().stage;
    let scored = s
        .backtest_scores(&compile(&live), &compile(&draft), now - Duration::days(30))
        .await
        .unwrap();
    let got: Vec<_> = scored
        .iter()
        .map(|x| (x.live, x.draft, x.live_stage, x.draft_stage, x.converted))
        .collect();
    use LifecycleStage::*;
    assert_eq!(
        got,
        [
            // Opened and saw pricing: 15 points, an MQL by the page; SQL at 15 in the draft.
            (15, 15, Mql, Sql, false),
            // Opened: 5 points; an MQL at 5 in the draft. Her booking came later.
            (5, 5, Subscriber, Mql, false),
            // Her deal opened before the date and was won after it.
            (5, 5, Opportunity, Opportunity, true),
            // Nothing since the hand-set SQL.
            (0, 0, Sql, Sql, false),
        ]
    );
    assert_eq!(
        s.table_counts().await.unwrap(),
        before,
        "a backtest saves nothing"
    );
    assert_eq!(s.contact(bob).await.unwrap().stage, stored_stage);
}

/// A contact scored under a given set as of a date counts its events up to then, whatever
/// set is live, and saves nothing; a contact that does not exist is not found.
pub async fn a_contact_is_scored_as_of_a_date_under_any_set<S: Store>(s: &S) {
    let now = Utc::now();
    let ago = |d: i64| ms(now - Duration::days(d));
    let ann = new_contact(s, "ann@example.com", now, 30).await;
    s.append_events(&[
        event("o1", "email_opened", Some(ann), ago(20)),
        event("c1", "email_clicked", Some(ann), ago(10)),
    ])
    .await
    .unwrap();
    let seed = orchard_core::scoring::seed();
    let set = orchard_core::scoring::RuleSet::compile(&seed, 7).unwrap();
    let before = s.table_counts().await.unwrap();
    let at = |d: i64| now - Duration::days(d);
    let scored = s.score_as_of(ann, &set, at(15)).await.unwrap();
    assert_eq!(scored.score, 5, "the open counts, the later click does not");
    assert_eq!(s.score_as_of(ann, &set, at(1)).await.unwrap().score, 15);
    assert_eq!(s.contact(ann).await.unwrap().score, 0, "no set is live");
    assert_eq!(s.table_counts().await.unwrap(), before, "nothing is saved");
    assert!(matches!(
        s.score_as_of(ContactId::new(999_999), &set, at(1)).await,
        Err(StoreError::NotFound)
    ));
}

/// With the score digests forgotten, a rebuild writes every contact's score changes anew, and
/// writes what was there: the log gives them.
pub async fn a_full_rebuild_rewrites_the_same_score_changes<S: Store>(s: &S) {
    let now = Utc::now();
    let ago = |d: i64| ms(now - Duration::days(d));
    s.save_rule_set(&orchard_core::scoring::seed(), true, now)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for (i, who) in ["ann", "bob"].into_iter().enumerate() {
        let id = new_contact(s, &format!("{who}@example.com"), now, 30).await;
        s.append_events(&[
            event(&format!("o{i}"), "email_opened", Some(id), ago(20)),
            event(&format!("c{i}"), "email_clicked", Some(id), ago(10)),
        ])
        .await
        .unwrap();
        ids.push(id);
    }
    let mut before = Vec::new();
    for id in &ids {
        before.push(s.score_changes(*id).await.unwrap());
    }
    assert!(before.iter().all(|c| c.len() == 2), "{before:?}");
    assert_eq!(s.forget_score_digests().await.unwrap(), 2);
    assert_eq!(s.forget_score_digests().await.unwrap(), 0, "none left");
    crate::refresh_all(s, now, 100, crate::Refresh::Everything, &|_| {})
        .await
        .unwrap();
    for (id, was) in ids.iter().zip(&before) {
        assert_eq!(&s.score_changes(*id).await.unwrap(), was);
        assert_eq!(s.contact(*id).await.unwrap().score, 15);
    }
}

/// The same multi-row statement run twice with NULLs in different places (here: accounts with
/// and without a cost to serve, 333 rows a statement on PostgreSQL) stores both; a statement
/// cached with the types of its first run once failed the second on PostgreSQL.
pub async fn a_repeated_statement_with_nulls_in_new_places_is_stored<S: Store>(s: &S) {
    let settings = DemoSettings {
        seed: 7,
        contacts: 7_000,
        now: t(1_780_000_000_000),
    };
    let company = demo::company(&settings);
    assert!(
        company.accounts.len() >= 666,
        "two full statements of accounts"
    );
    s.load_company(&company).await.unwrap();
    assert_eq!(
        s.table_counts().await.unwrap()["accounts"],
        company.accounts.len() as i64
    );
}

/// A refresh reads contacts packed into JSON text by the database: names, sources and custom
/// values with quotes, backslashes, control characters and non-ASCII letters must come back as
/// they were written, and filters must see them so. (SQLite keeps the details as JSONB: numbers
/// and nested values must come back as written too.)
pub async fn texts_that_need_quoting_survive_a_refresh<S: Store>(s: &S) {
    use orchard_core::segment;
    let now = Utc::now();
    let mut new = NewContact::new(email("o'brien+tag@example.com"), now - Duration::days(3));
    new.details.first_name = Some("Zoë \"Z\" \\ O'Brien".into());
    new.details.last_name = Some("tab\there, line\nbreak, 東京 🍎".into());
    new.details
        .custom
        .insert("note".into(), "a \"quoted\" \\ value".into());
    new.details.custom.insert("ratio".into(), json!(1.25));
    new.details.custom.insert(
        "nested".into(),
        json!({"b": [1, "x", null], "a": -9007199254740993_i64}),
    );
    new.source = Some("ad \"spring\" \\ campaign".into());
    let (id, _) = s.upsert_contact(&new).await.unwrap();
    let before = s.contact(id).await.unwrap();
    assert_eq!(before.details, new.details);
    let seg = s
        .create_segment(
            &segment::define(
                "Spring \"Zoë\" \\ 🍎",
                r#"source ~ "spring" and first_name ~ "Zoë" and last_name ~ "東京 🍎"
                   and custom.note ~ "\"quoted\" \\" and count(email_opened, 30d) >= 1"#,
                now,
            )
            .unwrap(),
            now,
        )
        .await
        .unwrap();
    assert_eq!(s.segment(seg).await.unwrap().member_count, 0);
    s.append_events(&[event(
        "q1",
        "email_opened",
        Some(id),
        ms(now - Duration::days(1)),
    )])
    .await
    .unwrap();
    assert_eq!(s.segment(seg).await.unwrap().member_count, 1);
    // Segments reach a refresh packed as JSON by the database: the filter's quotes and
    // backslashes (it matched) and the name, which the entry event carries, come back as
    // written.
    let entered = s.contact_events(id, 10).await.unwrap();
    let entered = entered
        .iter()
        .find(|e| e.event_type.as_str() == "segment_entered")
        .expect("the entry is logged");
    assert_eq!(entered.properties["segment"], json!("Spring \"Zoë\" \\ 🍎"));
    let after = s.contact(id).await.unwrap();
    assert_eq!(after.details, before.details);
    assert_eq!(after.source, before.source);
    assert_eq!(after.email, before.email);
    let filter =
        orchard_core::rules::parse(r#"first_name ~ "\"Z\" \\" and source ~ "\\ camp""#).unwrap();
    let preview = s.preview_segment(&filter, now, 5, None).await.unwrap();
    assert_eq!(preview.matched, 1);
    assert_eq!(preview.members[0].details, before.details);
}
