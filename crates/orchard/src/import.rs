//! `orchard import KIND FILE`: the file read and decoded here, every row checked and stored by
//! the shared import path (`orchard_store::import`), a progress bar on the terminal, and the
//! rejected rows (row number, column, reason) written to `FILE.rejects.csv`. The caller prints
//! `imported N rejected M` last; the exit code is 0 whenever the file could be read.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use orchard_core::import::{RowError, decode};
use orchard_store::Store;
use orchard_store::import::{ImportError, Outcome};

#[derive(Debug)]
pub struct Done {
    pub outcome: Outcome,
    pub rejects_file: Option<PathBuf>,
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

/// The rejected rows as CSV (`row,column,reason`), as the import page offers them for download.
pub fn write_rejects(path: &Path, rejected: &[RowError]) -> anyhow::Result<Option<PathBuf>> {
    if rejected.is_empty() {
        return Ok(None);
    }
    let file = PathBuf::from(format!("{}.rejects.csv", path.display()));
    let mut w = csv::Writer::from_path(&file)
        .with_context(|| format!("cannot write {}", file.display()))?;
    w.write_record(["row", "column", "reason"])?;
    for r in rejected {
        w.write_record([
            r.row.to_string(),
            r.column.clone().unwrap_or_default(),
            r.reason.clone(),
        ])?;
    }
    w.flush()?;
    Ok(Some(file))
}

pub async fn run(
    store: &dyn Store,
    kind: &str,
    path: &Path,
    progress: bool,
) -> anyhow::Result<Done> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = decode(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let bar = bar(progress, text.len(), kind);
    let outcome = orchard_store::import::run(store, kind, text, Utc::now(), false, &|b| {
        bar.set_position(b)
    })
    .await
    .map_err(|e| match e {
        ImportError::Unreadable(why) => anyhow::anyhow!("{}: {why}", path.display()),
        ImportError::Store(e) => anyhow::Error::new(e).context("storing the imported rows"),
    })?;
    bar.finish_and_clear();
    if !outcome.unknown_columns.is_empty() {
        let what = if kind == "contacts" {
            "kept as custom attributes"
        } else {
            "ignored"
        };
        eprintln!("columns {what}: {}", outcome.unknown_columns.join(", "));
    }
    let rejects_file = write_rejects(path, &outcome.rejected)?;
    Ok(Done {
        outcome,
        rejects_file,
    })
}
