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
use orchard_store::{BulkStore, EventStore};
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
        /// Also measure PostgreSQL, in scratch databases beside this URL.
        #[arg(long, value_name = "URL", env = "ORCHARD_TEST_POSTGRES_URL")]
        postgres: Option<String>,
        #[arg(long, default_value = "table")]
        format: String,
    },
}

#[derive(Debug, Serialize)]
struct IngestResult {
    backend: &'static str,
    events: usize,
    batch: usize,
    runs: usize,
    orchard_events_per_s: f64,
    baseline_events_per_s: f64,
    /// Orchard's rate divided by the baseline's.
    ratio: f64,
}

pub async fn run(cmd: BenchCommand, _config: &Config) -> anyhow::Result<()> {
    let BenchCommand::Ingest {
        contacts,
        batch,
        runs,
        postgres,
        format,
    } = cmd;
    anyhow::ensure!(
        runs >= 1 && batch >= 1 && contacts >= 1,
        "--runs, --batch and --contacts must be at least 1"
    );
    let mut results = vec![ingest("sqlite", None, contacts, batch, runs).await?];
    if let Some(base) = postgres {
        results.push(ingest("postgres", Some(&base), contacts, batch, runs).await?);
    }
    match format.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&results)?),
        _ => {
            println!(
                "{:<10} {:>10} {:>7} {:>5} {:>16} {:>16} {:>7}",
                "backend", "events", "batch", "runs", "orchard ev/s", "plain INSERT ev/s", "ratio"
            );
            for r in &results {
                println!(
                    "{:<10} {:>10} {:>7} {:>5} {:>16.0} {:>16.0} {:>7.2}",
                    r.backend,
                    r.events,
                    r.batch,
                    r.runs,
                    r.orchard_events_per_s,
                    r.baseline_events_per_s,
                    r.ratio
                );
            }
        }
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn fresh(
    backend: &str,
    pg_base: Option<&str>,
    run: usize,
) -> anyhow::Result<(SqlStore, Option<String>)> {
    match pg_base {
        None => {
            let dir =
                std::env::temp_dir().join(format!("orchard-bench-{}-{run}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let url = format!("sqlite://{}/bench.db", dir.display());
            Ok((crate::store::open_sql(&url).await?, None))
        }
        Some(base) => {
            let url =
                orchard_store_postgres::create_scratch_database(base, "orchard_bench").await?;
            Ok((
                crate::store::open_sql(&url)
                    .await
                    .context(backend.to_owned())?,
                Some(url),
            ))
        }
    }
}

async fn ingest(
    backend: &'static str,
    pg_base: Option<&str>,
    contacts: usize,
    batch: usize,
    runs: usize,
) -> anyhow::Result<IngestResult> {
    let now = Utc::now().duration_trunc(TimeDelta::days(1))?;
    let settings = DemoSettings {
        seed: 7,
        contacts,
        now,
    };
    let company = demo::company(&settings);
    let mut generated = demo::contact_batch(&settings, &company, 0..contacts);
    let events: Vec<NewEvent> = std::mem::take(&mut generated.events);
    let (mut orchard, mut baseline) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let (store, scratch) = fresh(backend, pg_base, run).await?;
        store.load_company(&company).await?;
        store.load_contact_batch(&generated).await?;
        store.finish_load().await?;

        let t = Instant::now();
        for chunk in events.chunks(batch) {
            store.append_events(chunk).await?;
        }
        orchard.push(events.len() as f64 / t.elapsed().as_secs_f64());

        sqlx::query(
            "CREATE TABLE events_baseline (client_id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, \
             contact_id BIGINT, visitor_id TEXT, at BIGINT NOT NULL, properties TEXT NOT NULL)",
        )
        .execute(store.pool())
        .await?;
        // The same statement size Orchard uses: the comparison then measures what Orchard adds
        // (idempotency, RETURNING, the apply step), not a statement-size tuning difference.
        let per_statement = store.dialect().rows_per_statement(6);
        let t = Instant::now();
        for chunk in events.chunks(batch) {
            let mut tx = store.pool().begin().await?;
            for chunk in chunk.chunks(per_statement) {
                let mut sql = String::from(
                    "INSERT INTO events_baseline (client_id, type, contact_id, visitor_id, at, properties) VALUES ",
                );
                for i in 0..chunk.len() {
                    let b = i * 6;
                    if i > 0 {
                        sql.push_str(", ");
                    }
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
        if let (Some(base), Some(url)) = (pg_base, scratch) {
            orchard_store_postgres::drop_scratch_database(base, &url).await?;
        }
    }
    let (o, b) = (median(orchard), median(baseline));
    Ok(IngestResult {
        backend,
        events: events.len(),
        batch,
        runs,
        orchard_events_per_s: o,
        baseline_events_per_s: b,
        ratio: o / b,
    })
}
