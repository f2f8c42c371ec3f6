//! `orchard import KIND FILE`: the file read and decoded here, every row checked and stored by
//! the shared import path (`orchard_store::import`), a progress bar on the terminal, and the
//! rejected rows (row number, column, reason) written to `FILE.rejects.csv`. The caller prints
//! `imported N rejected M` last; the exit code is 0 whenever the file could be read.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use orchard_core::import::{RowError, decode, formula_safe};
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
    // Safe to open in a spreadsheet: a column's name comes from the file.
    for r in rejected {
        let column = r.column.as_deref().unwrap_or_default();
        w.write_record([
            r.row.to_string(),
            formula_safe(column).into_owned(),
            formula_safe(&r.reason).into_owned(),
        ])?;
    }
    w.flush()?;
    Ok(Some(file))
}

/// The largest file an import reads: the whole text is held while it is imported.
const MAX_FILE: u64 = 4 << 30;

pub async fn run(
    store: &dyn Store,
    kind: &str,
    path: &Path,
    progress: bool,
) -> anyhow::Result<Done> {
    // The kind first: an unknown one was reported only once the whole file was read.
    anyhow::ensure!(
        orchard_store::import::kinds().any(|k| k == kind),
        "cannot import '{kind}': choose one of {}",
        orchard_store::import::kinds()
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut bytes = Vec::new();
    {
        use std::io::Read as _;
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        // Read up to the limit and one byte more: a device or pipe has no length to check first.
        file.take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read {}", path.display()))?;
    }
    anyhow::ensure!(
        bytes.len() as u64 <= MAX_FILE,
        "{}: over {} GiB; split it into smaller files",
        path.display(),
        MAX_FILE >> 30
    );
    let text = decode(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let bar = bar(progress, text.len(), kind);
    let outcome = orchard_store::import::run(store, kind, text, Utc::now(), false, &|b| {
        bar.set_position(b)
    })
    .await
    .map_err(|e| match e {
        ImportError::Unreadable(why) => anyhow::anyhow!("{}: {why}", path.display()),
        ImportError::Store(e) => anyhow::Error::new(e).context(
            "storing the imported rows failed; rows before the failure may be stored (they \
             are stored a thousand at a time), and importing the file again is safe: stored \
             rows are matched, not added twice",
        ),
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
    // The rows are stored by now: a rejects file that cannot be written is a warning, with the
    // rejected rows on the terminal instead.
    let rejects_file = match write_rejects(path, &outcome.rejected) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("warning: {e:#}; the rejected rows:");
            for r in &outcome.rejected {
                eprintln!(
                    "  row {}{}: {}",
                    r.row,
                    r.column
                        .as_deref()
                        .map(|c| format!(" ({c})"))
                        .unwrap_or_default(),
                    r.reason
                );
            }
            None
        }
    };
    Ok(Done {
        outcome,
        rejects_file,
    })
}
