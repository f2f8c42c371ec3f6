//! `orchard import KIND FILE`: CSV in, rows checked one by one (`orchard_core::import`), good
//! rows stored in batches, bad rows written with their row number, column and reason to
//! `FILE.rejects.csv`. The last line printed is `imported N rejected M`. The exit code is 0
//! whenever the file could be read, rejected rows or not.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use orchard_core::import::{ImportKind, Mapping, RowError};
use orchard_store::Store;

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

pub async fn run(
    store: &dyn Store,
    kind: &str,
    path: &Path,
    progress: bool,
) -> anyhow::Result<Outcome> {
    let kind = ImportKind::parse(kind).ok_or_else(|| {
        anyhow::anyhow!(
            "importing '{kind}' is not supported; supported now: contacts, accounts, spend (events, deals, revenue and activities are being added)"
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
    let bar = if progress {
        let b = ProgressBar::new(text.len() as u64);
        b.set_style(
            ProgressStyle::with_template("{msg:>10} [{bar:40}] {bytes}/{total_bytes} ({eta} left)")
                .expect("valid template")
                .progress_chars("=> "),
        );
        b.set_message(kind.as_str());
        b
    } else {
        ProgressBar::hidden()
    };
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
    if !out.rejected.is_empty() {
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
    }
    Ok(out)
}
