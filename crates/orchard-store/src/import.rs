//! One import path for files, whoever hands them over (`orchard import`, the import page): the
//! text is read as a CSV table (or JSON Lines for events), every row checked by the core's
//! parsers, the good rows stored in batches and the bad ones returned with their row number,
//! column and reason. Nothing here reads files or draws progress bars; callers do.

use chrono::{DateTime, Utc};
use orchard_core::event_input::{ParsedEvent, csv_row_to_json, parse_event};
use orchard_core::import::{ImportKind, Mapping, RowError, Table};

use crate::{Store, StoreError, ingest};

const BATCH: usize = 1_000;

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// Rows stored (created or changed).
    pub imported: u64,
    /// Rows identical to what was stored already (a re-run lands here).
    pub unchanged: u64,
    /// Rows refused, in row order.
    pub rejected: Vec<RowError>,
    /// Header names that map to no column (custom attributes for contacts, ignored otherwise).
    pub unknown_columns: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file as a whole cannot be imported (unknown kind, no header, a required column
    /// missing): nothing was stored.
    #[error("{0}")]
    Unreadable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The kinds `run` takes: the CSV kinds and `events`.
pub fn kinds() -> impl Iterator<Item = &'static str> {
    ImportKind::ALL
        .into_iter()
        .map(ImportKind::as_str)
        .chain(["events"])
}

/// Whether an events file is JSON Lines rather than CSV: its first non-blank character opens an
/// object.
pub fn looks_like_json_lines(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

/// Imports `text` as `kind`. `progress` is told how many bytes have been read, now and then.
/// With `dry_run`, every row is checked and stored inside a transaction that is rolled back, so
/// the outcome says what an import would do and nothing changes (not offered for events, whose
/// ingestion creates contacts as it goes: a dry run of events only checks each row).
pub async fn run(
    store: &dyn Store,
    kind: &str,
    text: &str,
    now: DateTime<Utc>,
    dry_run: bool,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Outcome, ImportError> {
    if kind == "events" {
        return events(store, text, now, dry_run, progress).await;
    }
    let kind = ImportKind::parse(kind).ok_or_else(|| {
        ImportError::Unreadable(format!(
            "cannot import '{kind}': choose one of {}",
            kinds().collect::<Vec<_>>().join(", ")
        ))
    })?;
    let table = Table::new(text).map_err(ImportError::Unreadable)?;
    let mapping = Mapping::new(kind, &table.header()).map_err(ImportError::Unreadable)?;
    let mut out = Outcome {
        unknown_columns: mapping.unknown.clone(),
        ..Outcome::default()
    };
    let mut batch = Vec::with_capacity(BATCH);
    let flush = async |batch: &mut Vec<_>, out: &mut Outcome| -> Result<(), StoreError> {
        let report = store.import(batch, dry_run).await?;
        out.imported += report.counts.created + report.counts.updated;
        out.unchanged += report.counts.unchanged;
        out.rejected.extend(report.rejected);
        batch.clear();
        Ok(())
    };
    for row in table {
        progress(row.byte);
        match mapping.parse_row(&row, now) {
            Ok(record) => batch.push((row.row, record)),
            Err(e) => out.rejected.push(e),
        }
        if batch.len() >= BATCH {
            flush(&mut batch, &mut out).await?;
        }
    }
    if !batch.is_empty() {
        flush(&mut batch, &mut out).await?;
    }
    progress(text.len() as u64);
    out.rejected.sort_by_key(|r| r.row);
    Ok(out)
}

/// Events from JSON Lines (one event object a line, as the API takes them) or CSV (columns id,
/// type, email | contact_id | visitor_id, at, and any others as properties), through the same
/// parser and ingestion path as `POST /api/v1/events`. Row numbers are lines for JSON Lines.
async fn events(
    store: &dyn Store,
    text: &str,
    now: DateTime<Utc>,
    dry_run: bool,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Outcome, ImportError> {
    type Row = (usize, u64, Result<serde_json::Value, String>);
    let rows: Box<dyn Iterator<Item = Row> + Send + '_> = if looks_like_json_lines(text) {
        let mut offset = 0u64;
        Box::new(text.lines().enumerate().filter_map(move |(i, line)| {
            offset += line.len() as u64 + 1;
            (!line.trim().is_empty()).then(|| {
                let value =
                    serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"));
                (i + 1, offset, value)
            })
        }))
    } else {
        let table = Table::new(text).map_err(ImportError::Unreadable)?;
        let header: Vec<String> = table.header().iter().map(|h| (*h).to_owned()).collect();
        Box::new(table.map(move |r| {
            let header: Vec<&str> = header.iter().map(String::as_str).collect();
            let value = match &r.fields {
                Ok(_) => csv_row_to_json(&header, &r.values()),
                Err(e) => Err(e.clone()),
            };
            (r.row, r.byte, value)
        }))
    };
    let mut out = Outcome::default();
    let flush = async |batch: &mut Vec<(usize, ParsedEvent)>,
                       out: &mut Outcome|
           -> Result<(), StoreError> {
        if dry_run {
            out.imported += batch.len() as u64;
            batch.clear();
            return Ok(());
        }
        let done = ingest::ingest(store, std::mem::take(batch)).await?;
        out.imported += done.outcome.stored.len() as u64;
        out.unchanged += done.outcome.duplicates.len() as u64;
        for (row, _, c) in done.unknown_contacts {
            out.rejected.push(RowError {
                row,
                column: Some("contact_id".into()),
                reason: format!("no contact {c}"),
            });
        }
        Ok(())
    };
    let mut pending = Vec::with_capacity(BATCH);
    for (row, byte, value) in rows {
        progress(byte);
        match value.and_then(|v| parse_event(v, now)) {
            Ok(p) => pending.push((row, p)),
            Err(reason) => out.rejected.push(RowError {
                row,
                column: None,
                reason,
            }),
        }
        if pending.len() >= BATCH {
            flush(&mut pending, &mut out).await?;
        }
    }
    if !pending.is_empty() {
        flush(&mut pending, &mut out).await?;
    }
    progress(text.len() as u64);
    out.rejected.sort_by_key(|r| r.row);
    Ok(out)
}
