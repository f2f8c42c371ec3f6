//! The native SQLite reader (`orchard_store_sql`'s `native`) against sqlx's driver: on the
//! same database, a rebuild, a segment's preview and a backtest read the same contacts,
//! events, deals and memberships either way, so they decide the same.

use chrono::{DateTime, Duration, TimeZone, Utc};
use orchard_core::demo::{self, DemoSettings};
use orchard_core::scoring::{RuleSet, seed};
use orchard_core::segment;
use orchard_store::{BulkStore, ContactStore, Refresh, ScoringStore, SegmentStore, refresh_all};
use orchard_store_sql::SqlStore;

/// Everything derived state is made of, in a fixed order: a rebuild that reads differently
/// would leave something here different.
async fn derived(s: &SqlStore) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT id || ':' || score || ':' || stage || ':' || COALESCE(due_at, '') || ':' \
         || COALESCE(score_digest, '') AS row FROM contacts ORDER BY id",
        "SELECT segment_id || ':' || contact_id AS row FROM segment_members \
         ORDER BY segment_id, contact_id",
        "SELECT contact_id || ':' || rule_id || ':' || points || ':' || at AS row \
         FROM score_changes ORDER BY contact_id, at, rule_id, points",
        "SELECT count(*) || ' events' AS row FROM events",
    ] {
        for row in sqlx::query_scalar::<_, String>(sql)
            .fetch_all(s.pool())
            .await
            .unwrap()
        {
            out.push(row);
        }
    }
    out
}

fn at(days_before: i64, now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::days(days_before)
}

#[tokio::test]
async fn native_reads_decide_as_the_driver_does() {
    let dir = orchard_store_sqlite::scratch_dir("orchard-native");
    let url = format!("sqlite://{}/orchard.db", dir.display());
    let native = orchard_store_sqlite::connect(&url).await.unwrap();
    assert!(native.reads_natively(), "a file database reads natively");
    let now = Utc.timestamp_millis_opt(1_780_000_000_000).unwrap();
    let settings = DemoSettings {
        seed: 11,
        contacts: 600,
        now,
    };
    let company = demo::company(&settings);
    native.load_company(&company).await.unwrap();
    native
        .load_contact_batch(&demo::contact_batch(
            &settings,
            &company,
            0..settings.contacts,
        ))
        .await
        .unwrap();
    native.finish_load().await.unwrap();
    native.save_rule_set(&seed(), true, now).await.unwrap();
    // Every kind of thing a load reads: attributes of contacts and accounts, events counted
    // and filtered by property, score and stage, and (below) a merged contact's events.
    for (name, filter) in [
        (
            "pricing",
            r#"count(page_viewed where url ~ "/pricing", 60d) >= 1"#,
        ),
        (
            "openers",
            "count(email_opened) >= 3 and country in [\"DE\", \"AT\", \"US\"]",
        ),
        ("hot", "score >= 40 or stage in [MQL, SQL]"),
        ("big accounts", "account.employees >= 50"),
        ("lapsed", "last(email_opened) older than 60d"),
    ] {
        let s = segment::define(name, filter, at(1, now)).unwrap();
        native.create_segment(&s, at(1, now)).await.unwrap();
    }
    let ids = native.contact_ids_after(None, 3).await.unwrap();
    native
        .merge_contacts(ids[0], ids[1], at(2, now))
        .await
        .unwrap();

    refresh_all(&native, now, 250, Refresh::Everything, &|_| {})
        .await
        .unwrap();
    let after_native = derived(&native).await;

    // The same file through the driver: a rebuild at the same moment finds nothing to change.
    let driver = orchard_store_sqlite::connect(&url)
        .await
        .unwrap()
        .without_native_reads();
    assert!(!driver.reads_natively());
    refresh_all(&driver, now, 250, Refresh::Everything, &|_| {})
        .await
        .unwrap();
    assert_eq!(derived(&driver).await, after_native);

    // Previews and backtests read the same either way.
    for filter in [
        r#"count(page_viewed where url ~ "/pricing", 60d) >= 1 and score >= 10"#,
        "account.employees >= 50 or count(form_submitted) >= 2",
    ] {
        let expr = orchard_core::rules::parse(filter).unwrap();
        for at_most in [None, Some(100)] {
            assert_eq!(
                native
                    .preview_segment(&expr, now, 5, at_most)
                    .await
                    .unwrap(),
                driver
                    .preview_segment(&expr, now, 5, at_most)
                    .await
                    .unwrap(),
                "{filter} {at_most:?}"
            );
        }
    }
    let set = RuleSet::compile(&seed(), 1).unwrap();
    let cutoff = at(60, now);
    let (a, b) = (
        native.backtest_scores(&set, &set, cutoff).await.unwrap(),
        driver.backtest_scores(&set, &set, cutoff).await.unwrap(),
    );
    assert!(!a.is_empty());
    assert_eq!(a, b);
}
