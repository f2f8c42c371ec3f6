//! Loading the demo company. Generation (pure, in `orchard-core`) runs on a blocking thread and
//! hands batches through a small channel to the loader, so the two cores generate and write at
//! the same time.

use std::time::Instant;

use anyhow::Context;
use chrono::{DurationRound, TimeDelta, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use orchard_core::demo::{self, ContactBatch, DEMO_PASSWORD, DemoSettings};
use orchard_store::Store;

pub const DEFAULT_CONTACTS: usize = 5_000;
const CHUNK: usize = 5_000;

pub async fn load(
    store: &dyn Store,
    seed: u64,
    contacts: usize,
    progress: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(contacts >= 1, "--contacts must be at least 1");
    anyhow::ensure!(
        store.is_empty().await?,
        "the database already holds contacts, accounts or events; the demo company only fills an empty one (use a new --db)"
    );
    let start = Instant::now();
    // Midnight today: the same seed gives the same company all day long, on either backend.
    let now = Utc::now()
        .duration_trunc(TimeDelta::days(1))
        .context("truncating today's date")?;
    let settings = DemoSettings {
        seed,
        contacts,
        now,
    };
    let company = demo::company(&settings);
    let bar = if progress {
        let b = ProgressBar::new(contacts as u64);
        b.set_style(
            ProgressStyle::with_template(
                "{msg:>10} [{bar:40}] {pos}/{len} contacts ({per_sec}, {eta} left)",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        b.set_message("demo");
        b
    } else {
        ProgressBar::hidden()
    };
    let mut rows: u64 = (company.teams.len()
        + company.users.len()
        + company.lead_magnets.len()
        + company.forms.len()
        + company.spend.len()
        + company.accounts.len()) as u64;
    store.load_company(&company).await?;
    let accounts = demo::account_batch(&settings, &company, 0..company.accounts.len());
    rows +=
        (accounts.subscriptions.len() + accounts.orders.len() + accounts.activities.len()) as u64;
    store.load_account_batch(&accounts).await?;

    let (tx, mut rx) = tokio::sync::mpsc::channel::<ContactBatch>(2);
    let producer = {
        let company = company.clone();
        tokio::task::spawn_blocking(move || {
            let mut from = 0;
            while from < contacts {
                let to = (from + CHUNK).min(contacts);
                if tx
                    .blocking_send(demo::contact_batch(&settings, &company, from..to))
                    .is_err()
                {
                    break;
                }
                from = to;
            }
        })
    };
    while let Some(batch) = rx.recv().await {
        rows += (batch.contacts.len() + batch.events.len() + batch.deals.len()) as u64;
        store.load_contact_batch(&batch).await?;
        bar.inc(batch.contacts.len() as u64);
    }
    producer.await.context("demo generator failed")?;
    store.finish_load().await?;
    let hash =
        tokio::task::spawn_blocking(|| orchard_web::auth::hash_password(DEMO_PASSWORD)).await?;
    for u in &company.users {
        store.set_password(u.id, &hash).await?;
    }
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    eprintln!(
        "demo company loaded: {contacts} contacts, {} accounts, {rows} rows in {seconds:.1} s ({:.0} rows/s)",
        company.accounts.len(),
        rows as f64 / seconds
    );
    // Scores come from the log: the reference rule set goes live and everyone is scored.
    let (version, rebuilt) = crate::score::preset(store, "seed", progress).await?;
    eprintln!(
        "scored {} contacts with rule set seed v{version} in {:.1} s ({:.0} contacts/s)",
        rebuilt.contacts,
        rebuilt.seconds,
        rebuilt.contacts as f64 / rebuilt.seconds.max(1e-9)
    );
    Ok(())
}
