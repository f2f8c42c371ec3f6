//! `orchard score preset NAME`, `orchard score explain EMAIL` and `orchard rebuild`: scoring
//! from the command line, over the same store calls the server uses.

use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use orchard_core::Email;
use orchard_core::scoring::{self, PRESETS};
use orchard_core::stage::Bands;
use orchard_store::Store;
use orchard_web::api::scoring::{Explanation, explanation};

/// What a rebuild did.
#[derive(Debug)]
pub struct Rebuilt {
    pub contacts: u64,
    pub seconds: f64,
}

/// Recomputes every contact's score from the log with the live rule set.
pub async fn rebuild(store: &dyn Store, progress: bool) -> anyhow::Result<Rebuilt> {
    let start = Instant::now();
    let bar = if progress {
        let b = ProgressBar::new_spinner();
        b.set_style(
            ProgressStyle::with_template("{spinner} rescoring: {pos} contacts ({per_sec})")
                .expect("valid template"),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let contacts = orchard_store::refresh_all(
        store,
        Utc::now(),
        orchard_store::REBUILD_BATCH,
        orchard_store::Refresh::Everything,
        &|n| bar.set_position(n),
    )
    .await?;
    bar.finish_and_clear();
    Ok(Rebuilt {
        contacts,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Makes a named preset the live rule set and rescores everyone with it.
pub async fn preset(
    store: &dyn Store,
    name: &str,
    progress: bool,
) -> anyhow::Result<(i64, Rebuilt)> {
    let def = scoring::preset(name)
        .ok_or_else(|| anyhow::anyhow!("no preset '{name}'; presets: {}", PRESETS.join(", ")))?;
    let version = store.save_rule_set(&def, true, Utc::now()).await?;
    let rebuilt = rebuild(store, progress).await?;
    Ok((version, rebuilt))
}

/// A contact's explanation (the API's object, so both print the same keys).
pub async fn explain(
    store: &dyn Store,
    email: &str,
    bands: Bands,
    at: Option<DateTime<Utc>>,
) -> anyhow::Result<Explanation> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("'{email}': {e}"))?;
    let contact = store
        .contact_by_email(&email)
        .await
        .with_context(|| format!("no contact {email}"))?;
    Ok(explanation(store, &contact, bands, at).await?)
}

/// The explanation as a table for people.
pub fn table(e: &Explanation) -> String {
    let mut out = format!("{}: score {} ({})", e.email, e.score, e.temperature);
    match &e.rule_set {
        Some(r) => out.push_str(&format!(", rule set {} v{}\n", r.name, r.version)),
        None => out.push_str(", no rule set is live (orchard score preset seed)\n"),
    }
    if let Some(s) = &e.score_at {
        out.push_str(&format!("score at {}: {}", s.at, s.score));
        match &s.rule_set {
            Some(r) => out.push_str(&format!(" by rule set {} v{}\n", r.name, r.version)),
            None => out.push_str(" (no rule set was live)\n"),
        }
    }
    if e.changes.is_empty() {
        out.push_str("no rule has fired\n");
        return out;
    }
    out.push_str(&format!(
        "{:<20} {:<16} {:>6}  {}\n",
        "when", "rule", "points", "cause"
    ));
    for c in &e.changes {
        let when = c.at.get(..16).unwrap_or(&c.at).replace('T', " ");
        let cause = match c.event {
            Some(seq) => format!("{} (event {seq})", c.cause),
            None => c.cause.clone(),
        };
        out.push_str(&format!(
            "{when:<20} {:<16} {:>+6}  {cause}\n",
            c.rule, c.points
        ));
    }
    out
}
