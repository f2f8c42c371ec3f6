//! `orchard import KIND FILE`: CSV in, rows checked one by one (`orchard_core::import`), good
//! rows stored in batches, bad rows written with their row number, column and reason to
//! `FILE.rejects.csv`. The last line printed is `imported N rejected M`. The exit code is 0
//! whenever the file could be read, rejected rows or not.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use orchard_core::event_input::{ParsedEvent, csv_row_to_json, parse_event};
use orchard_core::import::{ImportKind, Mapping, RowError};
use orchard_store::Store;
use orchard_store::ingest;

const BATCH: usize = 1_000;

#[derive(Debug, Default)]
pub struct Outcome {
    pub imported: u64,
    pub unchanged: u64,
    pub rejected: Vec<RowError>,
    pub rejects_file: Option<PathBuf>,
}

/// The file's text, or why it cannot be read as a UTF-8 CSV.
fn read_text(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_owned()),
        Err(e) => {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            anyhow::bail!(
                "{} is not UTF-8 (first bad byte on line {line}); save it as UTF-8 (\"CSV UTF-8\" in Excel) and import again",
                path.display()
            )
        }
    }
}

fn bar(progress: bool, len: usize, what: &str) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(len as u64);
    b.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {bytes}/{total_bytes} ({eta} left)")
            .expect("valid template")
            .progress_chars("=> "),
    );
    b.set_message(what.to_owned());
    b
}

fn write_rejects(path: &Path, out: &mut Outcome) -> anyhow::Result<()> {
    if out.rejected.is_empty() {
        return Ok(());
    }
    out.rejected.sort_by_key(|r| r.row);
    let file = PathBuf::from(format!("{}.rejects.csv", path.display()));
    let mut w = csv::Writer::from_path(&file)
        .with_context(|| format!("cannot write {}", file.display()))?;
    w.write_record(["row", "column", "reason"])?;
    for r in &out.rejected {
        w.write_record([
            r.row.to_string(),
            r.column.clone().unwrap_or_default(),
            r.reason.clone(),
        ])?;
    }
    w.flush()?;
    out.rejects_file = Some(file);
    Ok(())
}

pub async fn run(
    store: &dyn Store,
    kind: &str,
    path: &Path,
    progress: bool,
) -> anyhow::Result<Outcome> {
    if kind == "events" {
        return events(store, path, progress).await;
    }
    let kind = ImportKind::parse(kind).ok_or_else(|| {
        anyhow::anyhow!(
            "importing '{kind}' is not supported; supported now: contacts, accounts, spend, events (deals, revenue and activities are being added)"
        )
    })?;
    let text = read_text(path)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => anyhow::bail!("the header row of {} cannot be read: {e}", path.display()),
        None => anyhow::bail!("{} is empty: it needs a header row", path.display()),
    };
    let mapping = Mapping::new(kind, &header.iter().collect::<Vec<_>>())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if !mapping.unknown.is_empty() {
        let what = if kind == ImportKind::Contacts {
            "kept as custom attributes"
        } else {
            "ignored"
        };
        eprintln!("columns {what}: {}", mapping.unknown.join(", "));
    }
    let bar = bar(progress, text.len(), kind.as_str());
    let now = Utc::now();
    let mut out = Outcome::default();
    let mut batch = Vec::with_capacity(BATCH);
    let mut row = 1;
    for record in records {
        row += 1;
        match record {
            Err(e) => out.rejected.push(RowError {
                row,
                column: None,
                reason: format!("cannot be read as CSV: {e}"),
            }),
            Ok(r) => {
                bar.set_position(r.position().map_or(0, |p| p.byte()));
                if r.iter().all(|f| f.trim().is_empty()) {
                    continue;
                }
                match mapping.parse(row, &r.iter().collect::<Vec<_>>(), now) {
                    Ok(rec) => batch.push(rec),
                    Err(e) => out.rejected.push(e),
                }
            }
        }
        if batch.len() >= BATCH {
            let c = store.import(&batch).await?;
            out.imported += c.created + c.updated;
            out.unchanged += c.unchanged;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        let c = store.import(&batch).await?;
        out.imported += c.created + c.updated;
        out.unchanged += c.unchanged;
    }
    bar.finish_and_clear();
    write_rejects(path, &mut out)?;
    Ok(out)
}

/// Events from JSON Lines (one event object a line, as the API takes them) or CSV (columns id,
/// type, email | contact_id | visitor_id, at, and any others as properties), through the same
/// parser and ingestion path as `POST /api/v1/events`. Row numbers are lines for JSON Lines.
async fn events(store: &dyn Store, path: &Path, progress: bool) -> anyhow::Result<Outcome> {
    let text = read_text(path)?;
    let jsonl = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("jsonl" | "ndjson")
    ) || text.trim_start().starts_with('{');
    let now = Utc::now();
    let bar = bar(progress, text.len(), "events");
    let mut out = Outcome::default();
    let mut batch = Vec::with_capacity(BATCH);
    let reject = |row: usize, reason: String| RowError {
        row,
        column: None,
        reason,
    };
    let flush =
        async |batch: &mut Vec<(usize, ParsedEvent)>, out: &mut Outcome| -> anyhow::Result<()> {
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
    let push = |row: usize,
                value: Result<serde_json::Value, String>,
                batch: &mut Vec<(usize, ParsedEvent)>,
                out: &mut Outcome| {
        match value.and_then(|v| parse_event(v, now)) {
            Ok(p) => batch.push((row, p)),
            Err(e) => out.rejected.push(reject(row, e)),
        }
    };
    if jsonl {
        let mut offset = 0;
        for (i, line) in text.lines().enumerate() {
            offset += line.len() + 1;
            bar.set_position(offset as u64);
            if line.trim().is_empty() {
                continue;
            }
            let value = serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"));
            push(i + 1, value, &mut batch, &mut out);
            if batch.len() >= BATCH {
                flush(&mut batch, &mut out).await?;
            }
        }
    } else {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut records = reader.records();
        let header = match records.next() {
            Some(Ok(h)) => h,
            _ => anyhow::bail!("{} has no readable header row", path.display()),
        };
        let header: Vec<String> = header.iter().map(str::to_owned).collect();
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        for (i, r) in records.enumerate() {
            let row = i + 2;
            let value = match r {
                Ok(r) => {
                    bar.set_position(r.position().map_or(0, |p| p.byte()));
                    csv_row_to_json(&header, &r.iter().collect::<Vec<_>>())
                }
                Err(e) => Err(format!("cannot be read as CSV: {e}")),
            };
            push(row, value, &mut batch, &mut out);
            if batch.len() >= BATCH {
                flush(&mut batch, &mut out).await?;
            }
        }
    }
    if !batch.is_empty() {
        flush(&mut batch, &mut out).await?;
    }
    bar.finish_and_clear();
    write_rejects(path, &mut out)?;
    Ok(out)
}
