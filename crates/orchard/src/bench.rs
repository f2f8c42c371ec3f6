//! `orchard bench`: benchmarks with their peer baseline measured in the same run (SPEC E).
//!
//! `ingest`: the demo company's events appended through Orchard's write path (one transaction
//! per batch, idempotency check, derived contact state applied) against the same rows written
//! by a plain multi-row `INSERT` loop into a bare table: what a hand-written SQL importer gets.
//! Each run uses a fresh database; the median of the runs is reported.

use std::time::Instant;

use anyhow::Context;
use chrono::{DurationRound, TimeDelta, Utc};
use clap::Subcommand;
use orchard_core::demo::{self, DemoSettings};
use orchard_core::event::NewEvent;
use orchard_store::{AuthStore, BulkStore, EventStore, ScoringStore, SegmentStore};
use orchard_store_sql::SqlStore;
use serde::Serialize;
use sqlx::AssertSqlSafe;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Event ingestion into each backend: Orchard's append path against plain INSERTs.
    Ingest {
        /// Demo contacts whose events are ingested (about 20 events each).
        #[arg(long, default_value_t = 5_000)]
        contacts: usize,
        #[arg(long, default_value_t = 1_000)]
        batch: usize,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// HTTP clients sending batches at once in the API measurement.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
        /// Also measure PostgreSQL, in scratch databases beside this URL.
        #[arg(long, value_name = "URL", env = "ORCHARD_TEST_POSTGRES_URL")]
        postgres: Option<String>,
        #[arg(long, default_value = "table")]
        format: String,
        /// Keep scores and segments current while ingesting: the seed rule set is live and the
        /// 20 benchmark segments exist, so every batch rescores the contacts it touched and
        /// decides their memberships in its transaction.
        #[arg(long)]
        scoring: bool,
        /// The order events arrive in: each contact's history in turn (`contact`), or all
        /// contacts interleaved by time (`time`), as a live tracking stream delivers them, so
        /// that a batch touches many more contacts (about 350 of 5 000 per 1 000 events).
        #[arg(long, value_enum, default_value_t = Order::Contact)]
        order: Order,
    },
    /// Rebuilding scores, stages and 20 segments from the log, against the same scoring and
    /// segments written as SQL queries and run by the database on the same data. The first
    /// rebuild after the load writes every derived row and is reported on its own; the Orchard
    /// time and the speedup are the median of the runs after it (when there are any).
    Rebuild {
        #[arg(long, default_value_t = 20_000)]
        contacts: usize,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long, value_name = "URL", env = "ORCHARD_TEST_POSTGRES_URL")]
        postgres: Option<String>,
        /// Measure PostgreSQL only (with `--postgres`): at a million contacts each backend's
        /// load and rebuilds take the better part of an hour.
        #[arg(long, requires = "postgres")]
        skip_sqlite: bool,
        #[arg(long, default_value = "table")]
        format: String,
    },
}

/// The order `bench ingest` sends events in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    Contact,
    Time,
}

#[derive(Debug, Serialize)]
struct IngestResult {
    backend: &'static str,
    events: usize,
    batch: usize,
    runs: usize,
    orchard_events_per_s: f64,
    baseline_events_per_s: f64,
    /// Orchard's store path divided by the baseline's.
    ratio: f64,
    /// Through `POST /api/v1/events` over loopback HTTP, `concurrency` clients at once.
    api_events_per_s: f64,
    concurrency: usize,
    /// API batches per append transaction (median of the runs): how far the store wrote
    /// batches that arrived together in one transaction (`SqlStore::append_transactions`).
    api_batches_per_transaction: f64,
    /// Whether scores and 20 segments were kept current (the seed rule set live).
    scoring: bool,
    order: Order,
    /// With scoring: milliseconds from sending one event to reading its effect on the score
    /// through the API (300 single-event requests), median and 99th percentile.
    visible_p50_ms: Option<f64>,
    visible_p99_ms: Option<f64>,
    /// The unmeasured single events sent before those (`WARM_UP`, fewer when the demo has
    /// fewer contacts than `WARM_UP + PROBES`), and the slowest of them.
    visible_warm_up: usize,
    visible_warm_up_max_ms: Option<f64>,
}

/// Single events sent, and not measured, before the 300 that are: the first events after the
/// bulk ingest meet pooled connections that have not yet prepared the single-row statements
/// (sqlx hands out idle connections in turn, so each of PostgreSQL's 16 prepares each
/// statement, and plans it afresh for its first five executions).
const WARM_UP: usize = 100;

/// Single events measured for the latency.
const PROBES: usize = 300;

pub async fn run(cmd: BenchCommand, _config: &Config) -> anyhow::Result<()> {
    if let BenchCommand::Rebuild {
        contacts,
        runs,
        postgres,
        skip_sqlite,
        format,
    } = cmd
    {
        return crate::bench_rebuild::run(
            contacts,
            runs,
            postgres.as_deref(),
            skip_sqlite,
            &format,
        )
        .await;
    }
    let BenchCommand::Ingest {
        contacts,
        batch,
        runs,
        concurrency,
        postgres,
        format,
        scoring,
        order,
    } = cmd
    else {
        unreachable!("rebuild handled above")
    };
    anyhow::ensure!(
        runs >= 1 && batch >= 1 && contacts >= 1,
        "--runs, --batch and --contacts must be at least 1"
    );
    let shape = Shape {
        contacts,
        batch,
        runs,
        concurrency,
        scoring,
        order,
    };
    let mut results = vec![ingest("sqlite", None, &shape).await?];
    if let Some(base) = postgres {
        results.push(ingest("postgres", Some(&base), &shape).await?);
    }
    match format.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&results)?),
        _ => {
            println!(
                "{:<10} {:>9} {:>8} {:>6} {:>5} {:>14} {:>18} {:>18} {:>6}",
                "backend",
                "events",
                "order",
                "batch",
                "runs",
                "store ev/s",
                "HTTP API ev/s",
                "plain INSERT ev/s",
                "ratio"
            );
            for r in &results {
                println!(
                    "{:<10} {:>9} {:>8} {:>6} {:>5} {:>14.0} {:>12.0} ({}x) {:>18.0} {:>6.2}",
                    r.backend,
                    r.events,
                    match r.order {
                        Order::Contact => "contact",
                        Order::Time => "time",
                    },
                    r.batch,
                    r.runs,
                    r.orchard_events_per_s,
                    r.api_events_per_s,
                    r.concurrency,
                    r.baseline_events_per_s,
                    r.ratio
                );
                println!(
                    "{:<10} HTTP API: {} clients, {:.2} batches per append transaction",
                    r.backend, r.concurrency, r.api_batches_per_transaction
                );
                if let (Some(p50), Some(p99)) = (r.visible_p50_ms, r.visible_p99_ms) {
                    let warm_up = match r.visible_warm_up_max_ms {
                        Some(max) => format!(
                            " (the {} unmeasured before them: max {max:.2} ms)",
                            r.visible_warm_up
                        ),
                        None => String::new(),
                    };
                    println!(
                        "{:<10} event sent → score visible in the API: p50 {p50:.2} ms, p99 {p99:.2} ms{warm_up}",
                        r.backend
                    );
                }
            }
        }
    }
    Ok(())
}

/// The median of the runs: the middle one, or the mean of the middle two.
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

/// Where a benchmark's fresh database lives, removed when the run is done.
pub(crate) enum Scratch {
    /// A SQLite file's folder.
    Dir(std::path::PathBuf),
    /// A scratch PostgreSQL database, and the URL it was made beside.
    Database { base: String, url: String },
}

impl Scratch {
    pub(crate) async fn remove(self) -> anyhow::Result<()> {
        match self {
            Scratch::Dir(dir) => {
                std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))
            }
            Scratch::Database { base, url } => {
                Ok(orchard_store_postgres::drop_scratch_database(&base, &url).await?)
            }
        }
    }
}

/// A fresh, migrated database for one run: a SQLite file in the temp dir, or a scratch
/// PostgreSQL database beside `pg_base`.
pub(crate) async fn fresh(
    backend: &str,
    pg_base: Option<&str>,
    run: usize,
) -> anyhow::Result<(SqlStore, Scratch)> {
    match pg_base {
        None => {
            let dir =
                std::env::temp_dir().join(format!("orchard-bench-{}-{run}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let url = format!("sqlite://{}/bench.db", dir.display());
            Ok((crate::store::open_sql(&url).await?, Scratch::Dir(dir)))
        }
        Some(base) => {
            let url =
                orchard_store_postgres::create_scratch_database(base, "orchard_bench").await?;
            Ok((
                crate::store::open_sql(&url)
                    .await
                    .context(backend.to_owned())?,
                Scratch::Database {
                    base: base.to_owned(),
                    url,
                },
            ))
        }
    }
}

/// Starts a timed phase from a quiet database: on SQLite, the write-ahead log copied into the
/// database file and emptied. Otherwise the store's checkpointer copies the previous phase's
/// writes (a load, the other side's run) while the next phase is timed, on the core that phase
/// would use: a million-contact rebuild measured 21 s that way and 15.6 s from a quiet database.
pub(crate) async fn settle(store: &SqlStore, backend: &str) -> anyhow::Result<()> {
    if backend != "sqlite" {
        return Ok(());
    }
    // Busy while the store's own checkpointer runs a pass: tried again until it is done.
    for _ in 0..600 {
        // The first column of the pragma's one row: 1 when it could not finish.
        let busy: i64 = sqlx::query_scalar("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(store.pool())
            .await?;
        if busy == 0 {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("the write-ahead log could not be emptied within a minute")
}

/// The API request bodies for the events, `batch` per request.
fn api_bodies(events: &[NewEvent], batch: usize) -> anyhow::Result<Vec<String>> {
    events
        .chunks(batch)
        .map(|chunk| {
            let items: Vec<serde_json::Value> = chunk
                .iter()
                .map(|e| {
                    serde_json::json!({
                        "id": e.client_id, "type": e.event_type.as_str(),
                        "contact_id": e.contact_id.map(|c| c.get()), "visitor_id": e.visitor_id,
                        "at": e.at.to_rfc3339(), "properties": e.properties,
                    })
                })
                .collect();
            Ok(serde_json::to_string(
                &serde_json::json!({ "events": items }),
            )?)
        })
        .collect()
}

/// Serves the app on a loopback port and posts the bodies through `POST /api/v1/events` with
/// `concurrency` clients; returns events per second, counted from the server's answers, and
/// batches per append transaction. With `probe` emails (a rule set live), then sends one
/// `email_opened` at a time for them and reads each contact's score back through the API,
/// returning the p50 and p99 milliseconds from sending the event to seeing its +5 for all but
/// the first `WARM_UP`, and the slowest of those.
async fn through_api(
    store: SqlStore,
    bodies: &[String],
    concurrency: usize,
    probe: &[String],
) -> anyhow::Result<(f64, f64, Option<Latency>)> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (token, hash) = orchard_web::auth::new_api_token();
    store
        .create_token("bench", orchard_core::auth::Role::Admin, &hash)
        .await?;
    let counted = store.clone();
    let app = orchard_web::router(orchard_web::AppState::new(
        Arc::new(store),
        orchard_web::WebConfig::default(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/api/v1/events", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let bodies = Arc::new(bodies.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let stored = Arc::new(AtomicUsize::new(0));
    let http = reqwest::Client::new();
    let t = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (bodies, next, stored, http, url, token) = (
            Arc::clone(&bodies),
            Arc::clone(&next),
            Arc::clone(&stored),
            http.clone(),
            url.clone(),
            token.clone(),
        );
        clients.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else {
                    return Ok::<_, anyhow::Error>(());
                };
                let r = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await?;
                anyhow::ensure!(r.status().is_success(), "the API answered {}", r.status());
                let v: serde_json::Value = r.json().await?;
                stored.fetch_add(
                    v["stored"].as_u64().unwrap_or(0) as usize,
                    Ordering::Relaxed,
                );
            }
        }));
    }
    for c in clients {
        c.await??;
    }
    let rate = stored.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64();
    let grouped = bodies.len() as f64 / counted.append_transactions().max(1) as f64;
    let mut visible = Vec::with_capacity(probe.len());
    let base = url.trim_end_matches("/api/v1/events").to_owned();
    let score = async |email: &str| -> anyhow::Result<i64> {
        let v: serde_json::Value = http
            .get(format!("{base}/api/v1/contacts"))
            .query(&[("email", email)])
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        v["items"][0]["score"]
            .as_i64()
            .ok_or_else(|| anyhow::anyhow!("no score for {email}: {v}"))
    };
    for (i, email) in probe.iter().enumerate() {
        let before = score(email).await?;
        let body = serde_json::json!({"events": [{"id": format!("probe-{i}"), "type": "email_opened", "email": email}]});
        let t = Instant::now();
        let r = http
            .post(&url)
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "the API answered {}", r.status());
        let after = score(email).await?;
        visible.push(t.elapsed().as_secs_f64() * 1_000.0);
        anyhow::ensure!(
            after > before,
            "the open was acknowledged but {email}'s score did not move ({before} → {after})"
        );
    }
    server.abort();
    // All but the last `PROBES` came first, unmeasured.
    let mut measured = visible.split_off(probe.len().saturating_sub(PROBES));
    let warm_up = visible.len();
    let warm_up_max_ms = visible.into_iter().reduce(f64::max);
    let latency = (!measured.is_empty()).then(|| {
        measured.sort_by(f64::total_cmp);
        let at = |q: f64| measured[((measured.len() as f64 * q) as usize).min(measured.len() - 1)];
        Latency {
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            warm_up,
            warm_up_max_ms,
        }
    });
    Ok((rate, grouped, latency))
}

/// Sent → visible, in milliseconds.
struct Latency {
    p50_ms: f64,
    p99_ms: f64,
    /// The unmeasured events sent first (`WARM_UP`), and the slowest of them, if any.
    warm_up: usize,
    warm_up_max_ms: Option<f64>,
}

/// Makes the seed rule set live and creates the 20 benchmark segments: what `--scoring`
/// keeps current while ingesting.
async fn keep_current(store: &SqlStore) -> anyhow::Result<()> {
    let now = Utc::now();
    store
        .save_rule_set(&orchard_core::scoring::seed(), true, now)
        .await?;
    for (name, filter, _) in crate::bench_rebuild::SEGMENTS {
        store
            .create_segment(&orchard_core::segment::define(name, filter, now)?, now)
            .await?;
    }
    Ok(())
}

/// What an ingestion run looks like.
#[derive(Debug)]
struct Shape {
    contacts: usize,
    batch: usize,
    runs: usize,
    concurrency: usize,
    scoring: bool,
    order: Order,
}

async fn ingest(
    backend: &'static str,
    pg_base: Option<&str>,
    shape: &Shape,
) -> anyhow::Result<IngestResult> {
    let &Shape {
        contacts,
        batch,
        runs,
        concurrency,
        scoring,
        order,
    } = shape;
    let now = Utc::now().duration_trunc(TimeDelta::days(1))?;
    let settings = DemoSettings {
        seed: 7,
        contacts,
        now,
    };
    let company = demo::company(&settings);
    let mut generated = demo::contact_batch(&settings, &company, 0..contacts);
    let mut events: Vec<NewEvent> = std::mem::take(&mut generated.events);
    if order == Order::Time {
        // Stable: a contact's events at one instant keep their order.
        events.sort_by_key(|e| e.at);
    }
    let (mut orchard, mut api, mut baseline) = (Vec::new(), Vec::new(), Vec::new());
    let mut per_transaction = Vec::new();
    let mut latency = None;
    let bodies = api_bodies(&events, batch)?;
    for run in 0..runs {
        let (store, scratch) = fresh(backend, pg_base, run).await?;
        // Rules and segments before the data, while there is nobody to refresh.
        if scoring {
            keep_current(&store).await?;
        }
        store.load_company(&company).await?;
        store.load_contact_batch(&generated).await?;
        store.finish_load().await?;

        settle(&store, backend).await?;
        let t = Instant::now();
        for chunk in events.chunks(batch) {
            store.append_events(chunk).await?;
        }
        orchard.push(events.len() as f64 / t.elapsed().as_secs_f64());

        // The same events through the HTTP API, into a second fresh database.
        let (api_store, api_scratch) = fresh(backend, pg_base, run + 1_000).await?;
        // Rules and segments before the data, while there is nobody to refresh.
        if scoring {
            keep_current(&api_store).await?;
        }
        api_store.load_company(&company).await?;
        api_store.load_contact_batch(&generated).await?;
        api_store.finish_load().await?;
        settle(&api_store, backend).await?;
        let probe: Vec<String> = if scoring && run == 0 {
            generated
                .contacts
                .iter()
                .take(WARM_UP + PROBES)
                .map(|c| c.email.to_string())
                .collect()
        } else {
            Vec::new()
        };
        let (rate, grouped, lat) = through_api(api_store, &bodies, concurrency, &probe).await?;
        api.push(rate);
        per_transaction.push(grouped);
        latency = latency.or(lat);
        api_scratch.remove().await?;

        sqlx::query(
            "CREATE TABLE events_baseline (client_id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, \
             contact_id BIGINT, visitor_id TEXT, at BIGINT NOT NULL, properties TEXT NOT NULL)",
        )
        .execute(store.pool())
        .await?;
        // The same statement size Orchard uses: the comparison then measures what Orchard adds
        // (idempotency, RETURNING, the apply step), not a statement-size tuning difference.
        let per_statement = store.dialect().rows_per_statement(6);
        settle(&store, backend).await?;
        let t = Instant::now();
        for chunk in events.chunks(batch) {
            let mut tx = store.pool().begin().await?;
            for chunk in chunk.chunks(per_statement) {
                let mut sql = String::from(
                    "INSERT INTO events_baseline (client_id, type, contact_id, visitor_id, at, properties) VALUES ",
                );
                for i in 0..chunk.len() {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    // Each backend's fastest placeholders: anonymous on SQLite (sqlx looks up
                    // named ones linearly), numbered on PostgreSQL.
                    if store.dialect() == orchard_store_sql::Dialect::Sqlite {
                        sql.push_str("(?, ?, ?, ?, ?, ?)");
                    } else {
                        let b = i * 6;
                        sql.push_str(&format!(
                            "(${}, ${}, ${}, ${}, ${}, ${})",
                            b + 1,
                            b + 2,
                            b + 3,
                            b + 4,
                            b + 5,
                            b + 6
                        ));
                    }
                }
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for e in chunk {
                    q = q
                        .bind(e.client_id.clone())
                        .bind(e.event_type.as_str().to_owned())
                        .bind(e.contact_id.map(|c| c.get()))
                        .bind(e.visitor_id.clone())
                        .bind(e.at.timestamp_millis())
                        .bind(serde_json::to_string(&e.properties)?);
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
        }
        baseline.push(events.len() as f64 / t.elapsed().as_secs_f64());
        store.pool().close().await;
        scratch.remove().await?;
    }
    let (o, a, b) = (median(orchard), median(api), median(baseline));
    Ok(IngestResult {
        backend,
        events: events.len(),
        batch,
        runs,
        orchard_events_per_s: o,
        api_events_per_s: a,
        api_batches_per_transaction: median(per_transaction),
        concurrency,
        scoring,
        order,
        visible_p50_ms: latency.as_ref().map(|l| l.p50_ms),
        visible_p99_ms: latency.as_ref().map(|l| l.p99_ms),
        visible_warm_up: latency.as_ref().map_or(0, |l| l.warm_up),
        visible_warm_up_max_ms: latency.and_then(|l| l.warm_up_max_ms),
        baseline_events_per_s: b,
        ratio: o / b,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(super::median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(super::median(vec![90.0, 50.0]), 70.0);
        assert_eq!(super::median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
