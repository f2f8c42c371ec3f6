//! The native SQLite reader (`orchard_store_sql`'s `native`) against sqlx's driver: the same
//! company built twice, each file read one way, decides the same in everything that reads
//! every contact outside an append: creating segments, rebuilding, previews and a backtest.

use chrono::{DateTime, Duration, TimeZone, Utc};
use orchard_core::demo::{self, DemoSettings};
use orchard_core::scoring::{RuleSet, seed};
use orchard_core::segment;
use orchard_store::{BulkStore, ContactStore, Refresh, ScoringStore, SegmentStore, refresh_all};
use orchard_store_sql::SqlStore;

fn now() -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_780_000_000_000).unwrap()
}

fn days_ago(days: i64) -> DateTime<Utc> {
    now() - Duration::days(days)
}

/// The demo company of 600 contacts with the seed rule set, segments of every kind a load
/// reads for (contacts' attributes with and without a column of their own, accounts', events
/// counted and filtered by property, score and stage), each decided as it is created, and a
/// merged contact (whose events then count for the one it was merged into); then rebuilt.
async fn company(native: bool) -> SqlStore {
    let dir = orchard_store_sqlite::scratch_dir("orchard-native");
    // A name to percent-decode: the native reader must open the file sqlx opened.
    let url = format!("sqlite://{}/orchard%20data.db", dir.display());
    let store = orchard_store_sqlite::connect(&url).await.unwrap();
    assert!(store.reads_natively(), "a file database reads natively");
    assert!(dir.join("orchard data.db").exists());
    let store = if native {
        store
    } else {
        store.without_native_reads()
    };
    let settings = DemoSettings {
        seed: 11,
        contacts: 600,
        now: now(),
    };
    let company = demo::company(&settings);
    store.load_company(&company).await.unwrap();
    store
        .load_contact_batch(&demo::contact_batch(
            &settings,
            &company,
            0..settings.contacts,
        ))
        .await
        .unwrap();
    store.finish_load().await.unwrap();
    store.save_rule_set(&seed(), true, now()).await.unwrap();
    for (name, filter) in [
        (
            "pricing",
            r#"count(page_viewed where url ~ "/pricing", 60d) >= 1"#,
        ),
        (
            "openers",
            r#"count(email_opened) >= 3 and country in ["DE", "AT", "US"]"#,
        ),
        ("hot", "score >= 40 or stage in [MQL, SQL]"),
        ("big accounts", "account.employees >= 50"),
        ("big companies", "company_size >= 100"),
        ("lapsed", "last(email_opened) older than 60d"),
    ] {
        let s = segment::define(name, filter, days_ago(1)).unwrap();
        store.create_segment(&s, days_ago(1)).await.unwrap();
    }
    let ids = store.contact_ids_after(None, 3).await.unwrap();
    store
        .merge_contacts(ids[0], ids[1], days_ago(2))
        .await
        .unwrap();
    // All in one transaction: two chunks, so that the loading thread may parse some of the
    // second's histories while the first is decided (how many depends on timing; the
    // resumed parse itself is checked by `histories_parsed_in_pieces_read_as_one_pass`).
    refresh_all(&store, now(), 1_000, Refresh::Everything, &|_| {})
        .await
        .unwrap();
    store
}

/// Everything derived state is made of, in a fixed order.
async fn derived(s: &SqlStore) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT id || ':' || score || ':' || stage || ':' || COALESCE(due_at, '') || ':' \
         || COALESCE(score_digest, '') AS row FROM contacts ORDER BY id",
        "SELECT segment_id || ':' || contact_id AS row FROM segment_members \
         ORDER BY segment_id, contact_id",
        "SELECT contact_id || ':' || rule_id || ':' || points || ':' || at AS row \
         FROM score_changes ORDER BY contact_id, at, rule_id, points",
        // A merge decides its contacts at the clock's time, not the company's: the events it
        // logs then are left out.
        "SELECT COALESCE(contact_id, '') || ':' || type || ':' || at AS row FROM events \
         WHERE at <= 1780000000000 ORDER BY contact_id, at, type",
    ] {
        out.extend(
            sqlx::query_scalar::<_, String>(sql)
                .fetch_all(s.pool())
                .await
                .unwrap(),
        );
    }
    out
}

#[tokio::test]
async fn native_reads_decide_as_the_driver_does() {
    let (native, driver) = (company(true).await, company(false).await);
    assert!(native.reads_natively() && !driver.reads_natively());
    let (a, b) = (derived(&native).await, derived(&driver).await);
    assert!(a.len() > 600);
    assert_eq!(a, b);

    // Previews, exact and sampled, and a backtest.
    for filter in [
        r#"count(page_viewed where url ~ "/pricing", 60d) >= 1 and score >= 10"#,
        "account.employees >= 50 or count(form_submitted) >= 2 or company_size >= 100",
    ] {
        let expr = orchard_core::rules::parse(filter).unwrap();
        for at_most in [None, Some(100)] {
            let (a, b) = (
                native
                    .preview_segment(&expr, now(), 5, at_most)
                    .await
                    .unwrap(),
                driver
                    .preview_segment(&expr, now(), 5, at_most)
                    .await
                    .unwrap(),
            );
            assert!(a.matched > 0, "{filter}");
            assert_eq!(a, b, "{filter} {at_most:?}");
        }
    }
    let set = RuleSet::compile(&seed(), 1).unwrap();
    let (a, b) = (
        native
            .backtest_scores(&set, &set, days_ago(60))
            .await
            .unwrap(),
        driver
            .backtest_scores(&set, &set, days_ago(60))
            .await
            .unwrap(),
    );
    assert!(!a.is_empty());
    assert_eq!(a, b);
}
