//! `orchard bench rebuild`: Orchard recomputing every contact's score (with its explanation),
//! stage and 20 segment memberships from the log, against the peer baseline a user of a
//! SQL-backed CRM gets: the same seed scoring and the same 20 segments written as SQL queries
//! (an aggregate for the scores, one `INSERT … SELECT` per segment) run by the database itself
//! on the same data, in the same run. Medians of the runs.

use std::time::Instant;

use chrono::{DurationRound, TimeDelta, Utc};
use orchard_core::demo::{self, DemoSettings};
use orchard_core::segment;
use orchard_store::{BulkStore, ScoringStore, SegmentStore, refresh_all};
use serde::Serialize;
use sqlx::AssertSqlSafe;

use crate::bench::{fresh, median, settle};

/// The 20 segments, in the rule language and as the SQL a CRM user would write for them.
/// `{now}` is the rebuild's time in epoch milliseconds.
pub(crate) const SEGMENTS: [(&str, &str, &str); 20] = [
    ("de", r#"country = "DE""#, "c.country = 'DE'"),
    (
        "dach",
        r#"country in ["AT", "CH"]"#,
        "c.country IN ('AT', 'CH')",
    ),
    (
        "logistics",
        r#"industry = "Logistics""#,
        "c.industry = 'Logistics'",
    ),
    (
        "big",
        "company_size >= 100",
        "CAST(json_extract_size AS INTEGER) >= 100",
    ),
    ("hot", "score >= 50", "s.score >= 50"),
    (
        "openers",
        "count(email_opened) >= 3",
        "(SELECT count(*) FROM events e WHERE e.contact_id = c.id AND e.type = 'email_opened') >= 3",
    ),
    (
        "recent-openers",
        "count(email_opened, 30d) >= 1",
        "EXISTS (SELECT 1 FROM events e WHERE e.contact_id = c.id AND e.type = 'email_opened' AND e.at > {now} - 2592000000)",
    ),
    (
        "pricing",
        r#"count(page_viewed where url ~ "/pricing") >= 1"#,
        "EXISTS (SELECT 1 FROM events e WHERE e.contact_id = c.id AND e.type = 'page_viewed' AND e.properties LIKE '%/pricing%')",
    ),
    (
        "clickers",
        "count(email_clicked, 90d) >= 2",
        "(SELECT count(*) FROM events e WHERE e.contact_id = c.id AND e.type = 'email_clicked' AND e.at > {now} - 7776000000) >= 2",
    ),
    (
        "lapsed",
        "last(email_opened) older than 60d",
        "NOT EXISTS (SELECT 1 FROM events e WHERE e.contact_id = c.id AND e.type = 'email_opened' AND e.at >= {now} - 5184000000)",
    ),
    (
        "booked",
        "count(appointment_booked) >= 1",
        "EXISTS (SELECT 1 FROM events e WHERE e.contact_id = c.id AND e.type = 'appointment_booked')",
    ),
    (
        "trials",
        "count(trial_started) >= 1",
        "EXISTS (SELECT 1 FROM events e WHERE e.contact_id = c.id AND e.type = 'trial_started')",
    ),
    ("customers", "stage = customer", "c.stage = 'customer'"),
    (
        "qualified",
        "stage in [MQL, SQL]",
        "c.stage IN ('MQL', 'SQL')",
    ),
    (
        "heads",
        r#"job_title ~ "head""#,
        "lower(c.job_title) LIKE '%head%'",
    ),
    (
        "us-mid",
        r#"country = "US" and company_size >= 50"#,
        "c.country = 'US' AND CAST(json_extract_size AS INTEGER) >= 50",
    ),
    (
        "repeat-forms",
        "count(form_submitted) >= 2",
        "(SELECT count(*) FROM events e WHERE e.contact_id = c.id AND e.type = 'form_submitted') >= 2",
    ),
    (
        "unsubscribed",
        "count(email_unsubscribed) >= 1",
        "EXISTS (SELECT 1 FROM events e WHERE e.contact_id = c.id AND e.type = 'email_unsubscribed')",
    ),
    (
        "health-finance",
        r#"industry = "Healthcare" or industry = "Finance""#,
        "c.industry IN ('Healthcare', 'Finance')",
    ),
    (
        "browsing",
        "count(page_viewed, 14d) >= 3",
        "(SELECT count(*) FROM events e WHERE e.contact_id = c.id AND e.type = 'page_viewed' AND e.at > {now} - 1209600000) >= 3",
    ),
];

/// The seed preset's points as one aggregate over the log.
const SCORE_SQL: &str = "SELECT c.id AS contact_id, COALESCE(SUM(CASE \
     WHEN e.type IN ('email_subscribed', 'email_opened') THEN 5 \
     WHEN e.type = 'email_clicked' THEN 10 \
     WHEN e.type = 'page_viewed' AND e.properties LIKE '%/pricing%' THEN 10 \
     WHEN e.type = 'email_replied' THEN 15 \
     WHEN e.type IN ('appointment_booked', 'trial_started') THEN 25 \
     WHEN e.type = 'appointment_cancelled' THEN -5 \
     WHEN e.type = 'email_unsubscribed' THEN -25 ELSE 0 END), 0) \
     - CASE WHEN (SELECT min(x.at) FROM events x WHERE x.contact_id = c.id AND x.type = 'email_sent') < {now} - 2592000000 \
       AND NOT EXISTS (SELECT 1 FROM events y WHERE y.contact_id = c.id AND y.type = 'email_opened' AND y.at > {now} - 2592000000) \
       THEN 10 ELSE 0 END AS score \
     FROM contacts c LEFT JOIN events e ON e.contact_id = c.id GROUP BY c.id";

#[derive(Debug, Serialize)]
struct RebuildResult {
    backend: &'static str,
    contacts: usize,
    events: usize,
    segments: usize,
    runs: usize,
    /// The first rebuild after the load, which writes every score history, membership and
    /// derived event (the later ones find little changed).
    orchard_first_seconds: f64,
    /// The median of the runs after the first; the first itself when there is one run.
    orchard_seconds: f64,
    orchard_contacts_per_s: f64,
    sql_seconds: f64,
    /// SQL baseline time ÷ Orchard's: above 1 Orchard is faster.
    speedup: f64,
}

pub async fn run(
    contacts: usize,
    runs: usize,
    postgres: Option<&str>,
    skip_sqlite: bool,
    format: &str,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        runs >= 1 && contacts >= 1,
        "--runs and --contacts must be at least 1"
    );
    let mut results = Vec::new();
    if !skip_sqlite {
        results.push(one("sqlite", None, contacts, runs).await?);
    }
    if let Some(base) = postgres {
        results.push(one("postgres", Some(base), contacts, runs).await?);
    }
    if format == "json" {
        println!("{}", serde_json::to_string_pretty(&results)?);
        return Ok(());
    }
    println!(
        "{:<10} {:>9} {:>10} {:>5} {:>10} {:>10} {:>12} {:>10} {:>8}",
        "backend",
        "contacts",
        "events",
        "segs",
        "first s",
        "Orchard s",
        "contacts/s",
        "SQL s",
        "speedup"
    );
    for r in &results {
        println!(
            "{:<10} {:>9} {:>10} {:>5} {:>10.2} {:>10.2} {:>12.0} {:>10.2} {:>8.2}",
            r.backend,
            r.contacts,
            r.events,
            r.segments,
            r.orchard_first_seconds,
            r.orchard_seconds,
            r.orchard_contacts_per_s,
            r.sql_seconds,
            r.speedup
        );
    }
    Ok(())
}

async fn one(
    backend: &'static str,
    pg_base: Option<&str>,
    contacts: usize,
    runs: usize,
) -> anyhow::Result<RebuildResult> {
    let now = Utc::now().duration_trunc(TimeDelta::days(1))?;
    let settings = DemoSettings {
        seed: 7,
        contacts,
        now,
    };
    let company = demo::company(&settings);
    let (store, scratch) = fresh(backend, pg_base, 10_000).await?;
    // Rules and segments first, while there is nobody to refresh; then the data in bulk.
    store.load_company(&company).await?;
    store
        .save_rule_set(&orchard_core::scoring::seed(), true, now)
        .await?;
    for (name, filter, _) in SEGMENTS {
        store
            .create_segment(&segment::define(name, filter, now)?, now)
            .await?;
    }
    let mut events = 0;
    let mut from = 0;
    while from < contacts {
        let to = (from + 5_000).min(contacts);
        let batch = demo::contact_batch(&settings, &company, from..to);
        events += batch.events.len();
        store.load_contact_batch(&batch).await?;
        from = to;
    }
    store.finish_load().await?;
    // The contacts table keeps company size inside its details document; the baseline reads it
    // from a column of its own, as a CRM's schema would have it.
    let size = if backend == "postgres" {
        "CAST(details::jsonb ->> 'company_size' AS BIGINT)"
    } else {
        "CAST(json_extract(details, '$.company_size') AS INTEGER)"
    };
    sqlx::query(AssertSqlSafe(format!(
        "CREATE TABLE baseline_sizes AS SELECT id, {size} AS size FROM contacts"
    )))
    .execute(store.pool())
    .await?;

    let (mut orchard, mut sql) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        settle(&store, backend).await?;
        let t = Instant::now();
        let n = refresh_all(
            &store,
            Utc::now(),
            orchard_store::REBUILD_BATCH,
            orchard_store::Refresh::Everything,
            &|_| {},
        )
        .await?;
        anyhow::ensure!(n as usize == contacts, "rebuilt {n} of {contacts} contacts");
        orchard.push(t.elapsed().as_secs_f64());

        settle(&store, backend).await?;
        let now_ms = Utc::now().timestamp_millis().to_string();
        let t = Instant::now();
        let mut tx = store.pool().begin().await?;
        if backend == "postgres" {
            // The baseline gets PostgreSQL's default parallelism, which Orchard's own
            // connections turn off (see `orchard_store_postgres::connect`).
            sqlx::query("SET LOCAL max_parallel_workers_per_gather = 2")
                .execute(&mut *tx)
                .await?;
        }
        for stmt in [
            "DROP TABLE IF EXISTS baseline_scores",
            "DROP TABLE IF EXISTS baseline_members",
        ] {
            sqlx::query(stmt).execute(&mut *tx).await?;
        }
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TABLE baseline_scores AS {}",
            SCORE_SQL.replace("{now}", &now_ms)
        )))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "CREATE TABLE baseline_members (segment TEXT NOT NULL, contact_id BIGINT NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        for (name, _, condition) in SEGMENTS {
            let condition = condition
                .replace("{now}", &now_ms)
                .replace("json_extract_size", "b.size");
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO baseline_members (segment, contact_id) SELECT '{name}', c.id FROM contacts c \
                 JOIN baseline_scores s ON s.contact_id = c.id JOIN baseline_sizes b ON b.id = c.id \
                 WHERE {condition}"
            )))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        sql.push(t.elapsed().as_secs_f64());
        // Each run as it ends: a large run takes minutes, and the first one, which writes
        // every derived row, differs from the rest.
        tracing::info!(
            backend,
            run = orchard.len(),
            orchard_s = orchard.last().copied().unwrap_or_default(),
            sql_s = sql.last().copied().unwrap_or_default(),
            "rebuild run done"
        );
    }
    store.pool().close().await;
    scratch.remove().await?;
    // The SQL baseline does the same work every run; Orchard's first run does more than the
    // rest, so it is kept apart rather than averaged into a median of two.
    let first = orchard.first().copied().unwrap_or_default();
    let later = if orchard.len() > 1 {
        orchard[1..].to_vec()
    } else {
        orchard
    };
    let (o, b) = (median(later), median(sql));
    Ok(RebuildResult {
        backend,
        contacts,
        events,
        segments: SEGMENTS.len(),
        runs,
        orchard_first_seconds: first,
        orchard_seconds: o,
        orchard_contacts_per_s: contacts as f64 / o,
        sql_seconds: b,
        speedup: b / o,
    })
}
