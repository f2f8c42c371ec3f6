//! SQLite read natively, on read-only connections of its own (rusqlite over the same bundled
//! library sqlx links), by the passes that read every contact outside an append: a refresh in
//! a transaction of its own (a rebuild, a published rule set, a new segment, the due-time
//! sweep: `SqlStore::refresh_transaction`), a segment's preview and a backtest
//! (`derive::Source`).
//!
//! Why: sqlx's SQLite driver hands every row from its worker thread to the caller's, copies
//! every text it hands over twice (`sqlite3_value_dup`, then its `Any` layer), and costs a
//! thread wake-up per row; so a refresh packed each chunk into single texts in SQL
//! (`history::load`: `group_concat`, grown by copying, every number made text, every contact
//! made JSON). Here rows are stepped on the loading thread itself, a row per contact: the
//! contacts in typed columns, the histories copied once into the text that the loading and
//! deciding threads parse between them (`derive::Free`).
//!
//! Consistency: a refresh's snapshot is taken after the writer's `BEGIN IMMEDIATE` and before
//! the transaction writes anything, so it holds every commit before the refresh's transaction
//! and none after (no other writer can commit while that transaction holds the lock). What
//! the refresh itself writes is never read back: each chunk's load reads only its own
//! contacts' rows (their details, histories, deals, memberships, the events of contacts merged
//! into them and of their visitor ids), and earlier chunks write only theirs. A refresh inside
//! another write (an append's) reads on the writer's connection, which sees that write's own
//! rows.

use std::path::PathBuf;
use std::sync::Mutex;

use orchard_store::StoreError;
use rusqlite::{Connection, OpenFlags, Row, types::ValueRef};

use crate::{Arg, JSON_PLACEHOLDER, PLACEHOLDER, RowText, Sql, StoreResult};

fn native_err(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// Where a SQLite store's file is, and a connection kept for the next refresh.
#[derive(Debug)]
pub(crate) struct NativeReads {
    path: PathBuf,
    /// Connections between passes, at most `KEPT`: passes overlap (a preview beside the
    /// due-time sweep), and one kept connection made every second pass open a new one.
    idle: Mutex<Vec<Connection>>,
}

/// Connections kept between passes. Each keeps up to 64 MiB of pages (`cache_size`).
const KEPT: usize = 4;

impl NativeReads {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// A read transaction whose snapshot starts now (a refresh calls it with the writer's turn
    /// held). Blocking: call it where blocking is allowed.
    pub(crate) fn snapshot(&self) -> StoreResult<Snapshot> {
        let kept = self.idle.lock().map_err(|_| poisoned())?.pop();
        let conn = match kept {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(native_err)?;
                // The page cache of the writer's connections (`cache_size`), and a busy
                // timeout for the moment a checkpoint restarts the WAL.
                conn.execute_batch("PRAGMA cache_size = -65536; PRAGMA busy_timeout = 10000;")
                    .map_err(native_err)?;
                conn
            }
        };
        // A deferred transaction's snapshot begins at its first read.
        conn.execute_batch("BEGIN; SELECT count(*) FROM sqlite_schema;")
            .map_err(native_err)?;
        Ok(Snapshot { conn })
    }

    /// Ends `snapshot`'s transaction and keeps its connection for the next pass. Blocking.
    pub(crate) fn done(&self, snapshot: Snapshot) {
        let Snapshot { conn } = snapshot;
        if conn.execute_batch("ROLLBACK").is_ok()
            && let Ok(mut idle) = self.idle.lock()
            && idle.len() < KEPT
        {
            idle.push(conn);
        }
    }
}

fn poisoned() -> StoreError {
    StoreError::Backend("the native SQLite reader's lock was poisoned".into())
}

/// A read transaction on the native connection (see the module's text).
pub(crate) struct Snapshot {
    conn: Connection,
}

impl Snapshot {
    /// Runs `sql` and hands each row to `each`, its texts borrowed from SQLite.
    pub(crate) fn rows(
        &self,
        sql: &Sql,
        mut each: impl FnMut(&Row<'_>) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let mut text = String::with_capacity(sql.text.len() + 8);
        for ch in sql.text.chars() {
            match ch {
                PLACEHOLDER => text.push('?'),
                JSON_PLACEHOLDER => text.push_str("jsonb(?)"),
                other => text.push(other),
            }
        }
        // Cached by text: a chunk's statements differ only in their arguments.
        let mut statement = self.conn.prepare_cached(&text).map_err(native_err)?;
        for (i, arg) in sql.args.iter().enumerate() {
            let at = i + 1;
            let bound = match arg {
                Arg::Int(v) => statement.raw_bind_parameter(at, v),
                Arg::Real(v) => statement.raw_bind_parameter(at, v),
                Arg::Text(v) | Arg::Json(v) => statement.raw_bind_parameter(at, v),
            };
            bound.map_err(native_err)?;
        }
        let mut rows = statement.raw_query();
        while let Some(row) = rows.next().map_err(native_err)? {
            each(row)?;
        }
        Ok(())
    }

    /// The first row of `sql` as a `RowText` on `column`, its texts copied out; `None` when
    /// there is no row.
    pub(crate) fn row_text(&self, sql: &Sql, column: &'static str) -> StoreResult<Option<RowText>> {
        let mut out = None;
        self.rows(sql, |row| {
            if out.is_none() {
                let stmt = row.as_ref();
                let mut columns = Vec::with_capacity(stmt.column_count());
                for i in 0..stmt.column_count() {
                    let name = stmt.column_name(i).map_err(native_err)?.to_owned();
                    columns.push((name, text(row, i)?.map(str::to_owned)));
                }
                out = Some(RowText::owned(columns, column));
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// Column `i` of `row` as text: NULL is `None`, a number reads as SQLite would print it.
pub(crate) fn text<'r>(row: &'r Row<'_>, i: usize) -> StoreResult<Option<&'r str>> {
    match row.get_ref(i).map_err(native_err)? {
        ValueRef::Null => Ok(None),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .map(Some)
            .map_err(|e| StoreError::Backend(Box::new(e))),
        other => Err(StoreError::Backend(
            format!("column {i} read back as {:?}, not text", other.data_type()).into(),
        )),
    }
}

/// Column `i` of `row` as an integer.
pub(crate) fn int(row: &Row<'_>, i: usize) -> StoreResult<i64> {
    row.get(i).map_err(native_err)
}

/// Column `i` of `row` as an integer, or `None` for NULL.
pub(crate) fn opt_int(row: &Row<'_>, i: usize) -> StoreResult<Option<i64>> {
    row.get(i).map_err(native_err)
}
