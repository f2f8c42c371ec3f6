//! The SQL both backends share. PostgreSQL and SQLite accept the same statements here because
//! the schema sticks to portable types: 64-bit integers (times are epoch milliseconds, money is
//! in cents), doubles, and text (JSON documents are stored as text). Queries run through sqlx's
//! runtime-selected driver, so one implementation serves both; the backend crates own what does
//! differ (connection setup, migrations, id sequences) and hand it in as a [`Dialect`].

use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use orchard_store::{StoreError, StoreResult};
use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyPool, AssertSqlSafe, Row};

mod auth;
mod bulk;
mod capture;
mod catalog;
mod contacts;
mod derive;
mod events;
mod history;
mod import;
mod native;
mod records;
mod segments;
#[doc(hidden)]
pub mod upgrade;

pub use bulk::TABLES;

/// The differences between the backends that the shared SQL must respect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The backend behind a connection of the `Any` driver.
    pub(crate) fn of(conn: &sqlx::AnyConnection) -> Self {
        if conn.backend_name().eq_ignore_ascii_case("postgresql") {
            Dialect::Postgres
        } else {
            Dialect::Sqlite
        }
    }

    /// The aggregate that joins text values with a separator: `agg(value, ',')`.
    pub(crate) fn string_agg(self) -> &'static str {
        match self {
            Dialect::Sqlite => "group_concat",
            Dialect::Postgres => "string_agg",
        }
    }

    /// The concatenation of non-NULL text expressions. SQLite's `||` allocates and copies a new
    /// text at each step, so a row packed from a dozen parts was copied a dozen times over;
    /// its `concat` sizes the result once. On PostgreSQL `||` is kept.
    pub(crate) fn concat(self, parts: &[&str]) -> String {
        match self {
            Dialect::Sqlite => format!("concat({})", parts.join(", ")),
            Dialect::Postgres => parts.join(" || "),
        }
    }

    /// A number column as JSON text, `null` for NULL, for rows packed into JSON.
    pub(crate) fn json_number(self, column: &str) -> String {
        format!("COALESCE(CAST({column} AS TEXT), 'null')")
    }

    /// A JSON array of the given JSON-text expressions (`json_number`, `json_text`, a JSON
    /// column), built by the database: a row packed as one text, for an aggregate to join.
    pub(crate) fn json_array(self, items: &[String]) -> String {
        let mut parts = vec!["'['"];
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                parts.push("','");
            }
            parts.push(item);
        }
        parts.push("']'");
        self.concat(&parts)
    }

    /// A JSON column as JSON text. SQLite keeps such columns (written through [`Arg::Json`])
    /// as JSONB, its binary form, which `json_extract` reads without parsing: parsing each
    /// contact's details again was a twelfth of a rebuild's instructions. PostgreSQL's are
    /// text.
    pub(crate) fn json_column(self, column: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json({column})"),
            Dialect::Postgres => column.to_owned(),
        }
    }

    /// A text expression as a JSON string literal, `null` for NULL, for rows packed into JSON
    /// by concatenation.
    pub(crate) fn json_text(self, expr: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json_quote({expr})"),
            Dialect::Postgres => format!("COALESCE(to_json({expr})::text, 'null')"),
        }
    }

    /// `INSERT` for statements that write many rows. On SQLite `INSERT OR FAIL`: a failed
    /// statement keeps the rows it wrote before the failure, where the default (`ABORT`)
    /// undoes them, which costs a copy of every page the statement changes into a statement
    /// journal (a tenth of SQLite's thread in a time-ordered ingest). Nothing here goes on in
    /// a transaction after one of its statements failed, so the transaction's rollback undoes
    /// those rows all the same. PostgreSQL has no such clause and no such cost. (An upsert's
    /// `DO UPDATE` still journals: SQLite aborts its NOT NULL checks whatever the clause.)
    pub fn insert(self) -> &'static str {
        match self {
            Dialect::Sqlite => "INSERT OR FAIL",
            Dialect::Postgres => "INSERT",
        }
    }

    /// `UPDATE` for statements that change many rows; see [`Dialect::insert`].
    pub fn update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "UPDATE OR FAIL",
            Dialect::Postgres => "UPDATE",
        }
    }

    /// Rows per multi-row INSERT. Measured here (`orchard bench ingest --batch N`): sqlx's SQLite
    /// driver slows down more than linearly with the parameters of one statement (a plain
    /// INSERT loop ran at 97k rows/s with 300 parameters a statement, 13k rows/s with 6 000), so
    /// statements stay near 500 parameters; PostgreSQL takes larger ones well. Both stay far
    /// below their hard limits (32 766 and 65 535 parameters).
    pub fn rows_per_statement(self, columns: usize) -> usize {
        let params = match self {
            Dialect::Sqlite => 500,
            Dialect::Postgres => 4_000,
        };
        (params / columns.max(1)).max(1)
    }
}

/// One store implementation over a pool of either backend.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
    /// Upkeep the backend runs beside the store (SQLite's checkpoints), stopped when the last
    /// clone of the store is dropped.
    upkeep: Option<Arc<Upkeep>>,
    /// SQLite has one writer at a time. Writers of this process take turns here, in arrival
    /// order, instead of meeting SQLite's busy handler, which sleeps 1, 2, 5, 10… ms between
    /// retries and so leaves the database idle after each commit (with two clients sending
    /// batches the API path lost about a tenth of its rate to those sleeps). Other processes
    /// still queue on the busy timeout. The turn comes with the connection every writer uses
    /// (see [`Writer`]).
    writer: Arc<tokio::sync::Mutex<Writer>>,
    /// How long a writer waits for its turn before giving up with `StoreError::Busy`, so that
    /// a request never hangs behind a queue that does not move.
    writer_wait: Duration,
    /// Event batches waiting to be written, written together by one task in one transaction
    /// when it can begin one (`events::Appends`).
    appends: Arc<std::sync::Mutex<events::Appends>>,
    /// Transactions those batches went into (`SqlStore::append_transactions`).
    append_transactions: Arc<std::sync::atomic::AtomicU64>,
    /// SQLite only: the file, for refreshes in a transaction of their own to read natively
    /// (`native`). `None` on PostgreSQL and for an in-memory database.
    native: Option<Arc<native::NativeReads>>,
}

/// The default `SqlStore::with_writer_wait`: as long as the pool waits for a connection.
const WRITER_WAIT: Duration = Duration::from_secs(30);

/// SQLite's writer connection, kept from one write transaction to the next. SQLite drops a
/// connection's whole page cache when it begins a transaction and finds that another
/// connection has written since its last one, and sqlx's pool hands its idle connections out in
/// turn, so a writer drawn from the pool started nearly every transaction with a cold cache and
/// read every page it touched back from the file (`pread` and copies were a tenth of a
/// time-ordered ingest profile). Writes made on this connection leave its cache warm.
#[derive(Debug, Default)]
pub struct Writer {
    /// Taken out of the pool (`detach`), so that it counts against nothing and closing the pool
    /// does not wait for it; opened on first use and again after a failure.
    conn: Option<sqlx::AnyConnection>,
}

/// A write transaction, holding the writer's turn on SQLite until it commits, rolls back or is
/// dropped. Derefs to the connection, as `sqlx::Transaction` does.
pub(crate) struct WriteTx(Open);

enum Open {
    /// PostgreSQL: a transaction on any pooled connection; its writers run side by side.
    Pooled(sqlx::Transaction<'static, Any>),
    /// SQLite: `BEGIN IMMEDIATE` on the writer connection, which the turn guards. `None` once
    /// finished.
    Turn(Option<tokio::sync::OwnedMutexGuard<Writer>>),
}

impl WriteTx {
    pub(crate) async fn commit(self) -> StoreResult<()> {
        self.finish("COMMIT").await
    }

    pub(crate) async fn rollback(self) -> StoreResult<()> {
        self.finish("ROLLBACK").await
    }

    async fn finish(mut self, verb: &'static str) -> StoreResult<()> {
        match &mut self.0 {
            Open::Pooled(_) => {
                let Open::Pooled(tx) = std::mem::replace(&mut self.0, Open::Turn(None)) else {
                    unreachable!("matched above")
                };
                if verb == "COMMIT" {
                    tx.commit().await
                } else {
                    tx.rollback().await
                }
                .map_err(backend_err)
            }
            Open::Turn(turn) => {
                let mut turn = turn.take().expect("a transaction is finished once");
                let conn = turn
                    .conn
                    .as_mut()
                    .expect("an open transaction has its connection");
                let done = sqlx::Executor::execute(&mut *conn, verb).await;
                if done.is_err() {
                    // Whatever state the connection is in, the next writer starts on a new one
                    // (closing this one rolls back anything still open).
                    turn.conn = None;
                }
                done.map(|_| ()).map_err(backend_err)
            }
        }
    }
}

impl Drop for WriteTx {
    /// A transaction dropped unfinished (an error path) is rolled back before the next writer
    /// gets the turn. Rolling back needs the connection's thread, so it runs on a task that
    /// holds the turn meanwhile; with no runtime left, the connection is closed instead, which
    /// rolls back too. (PostgreSQL's `sqlx::Transaction` does its own rollback on drop.)
    fn drop(&mut self) {
        let Open::Turn(turn) = &mut self.0 else {
            return;
        };
        let Some(mut turn) = turn.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Some(conn) = turn.conn.as_mut()
                        && sqlx::Executor::execute(&mut *conn, "ROLLBACK")
                            .await
                            .is_err()
                    {
                        turn.conn = None;
                    }
                });
            }
            Err(_) => turn.conn = None,
        }
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        match &self.0 {
            Open::Pooled(tx) => tx,
            Open::Turn(turn) => turn
                .as_ref()
                .and_then(|t| t.conn.as_ref())
                .expect("an open transaction has its connection"),
        }
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match &mut self.0 {
            Open::Pooled(tx) => tx,
            Open::Turn(turn) => turn
                .as_mut()
                .and_then(|t| t.conn.as_mut())
                .expect("an open transaction has its connection"),
        }
    }
}

/// A background task that lives as long as the store that owns it.
#[derive(Debug)]
struct Upkeep(tokio::task::JoinHandle<()>);

impl Drop for Upkeep {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl SqlStore {
    /// Wraps a pool whose schema the backend crate has already migrated.
    pub fn new(pool: AnyPool, dialect: Dialect) -> Self {
        Self {
            pool,
            dialect,
            upkeep: None,
            writer: Arc::default(),
            writer_wait: WRITER_WAIT,
            appends: Arc::default(),
            append_transactions: Arc::default(),
            native: None,
        }
    }

    /// How long a SQLite writer waits for its turn before the call fails with
    /// `StoreError::Busy`, changing nothing (default 30 s).
    #[must_use]
    pub fn with_writer_wait(mut self, wait: Duration) -> Self {
        self.writer_wait = wait;
        self
    }

    /// The queue this process's SQLite writers take turns on (see `SqlStore::begin`), for
    /// upkeep that must run while no writer is active.
    pub fn writer_queue(&self) -> Arc<tokio::sync::Mutex<Writer>> {
        Arc::clone(&self.writer)
    }

    /// Begins a write transaction; on SQLite, once this process's previous writer is done, on
    /// the writer connection, with the write lock taken at once (`IMMEDIATE`: a deferred
    /// transaction that reads first can find another process has written meanwhile and fail
    /// instead of waiting for its turn).
    pub(crate) async fn begin(&self) -> StoreResult<WriteTx> {
        if self.dialect == Dialect::Postgres {
            let tx = self.pool.begin().await.map_err(backend_err)?;
            return Ok(WriteTx(Open::Pooled(tx)));
        }
        let queue = Arc::clone(&self.writer).lock_owned();
        let mut turn = tokio::time::timeout(self.writer_wait, queue)
            .await
            .map_err(|_| {
                StoreError::Busy(format!(
                    "other writes held the database for {} s; nothing was changed, try again",
                    self.writer_wait.as_secs_f64()
                ))
            })?;
        let conn = match &mut turn.conn {
            Some(conn) => conn,
            empty => {
                let pooled = self.pool.acquire().await.map_err(backend_err)?;
                empty.insert(pooled.detach())
            }
        };
        if let Err(e) = sqlx::Executor::execute(&mut *conn, "BEGIN IMMEDIATE").await {
            turn.conn = None;
            return Err(backend_err(e));
        }
        Ok(WriteTx(Open::Turn(Some(turn))))
    }

    /// Ties a backend's background task to this store: it is aborted when the store and all
    /// its clones are gone.
    #[must_use]
    pub fn with_upkeep(mut self, task: tokio::task::JoinHandle<()>) -> Self {
        self.upkeep = Some(Arc::new(Upkeep(task)));
        self
    }

    /// Lets the passes that read every contact outside an append (a refresh in a transaction
    /// of its own, a preview, a backtest) read the SQLite file at `path` on connections of
    /// their own (`native`). For a file database only: an in-memory one is not shared between
    /// connections.
    #[must_use]
    pub fn with_native_reads(mut self, path: std::path::PathBuf) -> Self {
        if self.dialect == Dialect::Sqlite {
            self.native = Some(Arc::new(native::NativeReads::new(path)));
        }
        self
    }

    /// The same store reading through sqlx's driver only: for the tests that compare the two
    /// ways of reading.
    #[doc(hidden)]
    #[must_use]
    pub fn without_native_reads(mut self) -> Self {
        self.native = None;
        self
    }

    /// Whether refreshes in a transaction of their own, previews and backtests read natively.
    pub fn reads_natively(&self) -> bool {
        self.native.is_some()
    }

    pub(crate) fn native_shared(&self) -> Option<Arc<native::NativeReads>> {
        self.native.clone()
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }
}

/// Pool options both backends start from.
pub fn pool_options(max_connections: u32) -> AnyPoolOptions {
    sqlx::any::install_default_drivers();
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(30))
}

impl SqlStore {
    pub(crate) async fn one(&self, sql: Sql) -> StoreResult<AnyRow> {
        sql.query(self.dialect)
            .fetch_optional(self.pool())
            .await
            .map_err(backend_err)?
            .ok_or(StoreError::NotFound)
    }

    /// Runs one writing statement in a transaction of its own and returns the rows it returns
    /// (`RETURNING`). On SQLite it takes the writers' turn on the writer connection
    /// (`SqlStore::begin`): on a pooled connection it met SQLite's busy handler beside a long
    /// batch, whose sleeps are not a queue, and a login could wait out the busy timeout during
    /// a steady import. PostgreSQL runs it on any pooled connection.
    pub(crate) async fn write_rows(&self, sql: Sql) -> StoreResult<Vec<AnyRow>> {
        if self.dialect == Dialect::Postgres {
            return sql
                .query(self.dialect)
                .fetch_all(self.pool())
                .await
                .map_err(backend_err);
        }
        let mut tx = self.begin().await?;
        let rows = sql.fetch_all_in(&mut tx).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// `write_rows` for a statement that returns nothing: the rows it changed.
    pub(crate) async fn write(&self, sql: Sql) -> StoreResult<u64> {
        if self.dialect == Dialect::Postgres {
            return Ok(sql
                .query(self.dialect)
                .execute(self.pool())
                .await
                .map_err(backend_err)?
                .rows_affected());
        }
        let mut tx = self.begin().await?;
        let done = sql
            .query(self.dialect)
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// `write_rows` for an `INSERT … RETURNING column`: the one value it returns.
    pub(crate) async fn insert_returning(&self, sql: Sql, column: &str) -> StoreResult<i64> {
        let rows = self.write_rows(sql).await?;
        get(rows.first().ok_or(StoreError::NotFound)?, column)
    }

    /// `insert_returning` for the usual `RETURNING id`.
    pub(crate) async fn insert_returning_id(&self, sql: Sql) -> StoreResult<i64> {
        self.insert_returning(sql, "id").await
    }

    /// Runs a statement that must touch a row; none touched is `NotFound`.
    pub(crate) async fn exec_expecting_row(&self, sql: Sql) -> StoreResult<()> {
        if self.write(sql).await? == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl orchard_store::SettingsStore for SqlStore {
    async fn setting_or_init(&self, name: &str, candidate: &str) -> StoreResult<String> {
        let mut ins = Sql::new("INSERT INTO settings (name, value) VALUES ");
        ins.list([name, candidate])
            .push(" ON CONFLICT (name) DO NOTHING");
        self.write(ins).await?;
        let mut sql = Sql::new("SELECT value FROM settings WHERE name = ");
        sql.arg(name);
        get(&self.one(sql).await?, "value")
    }
}

#[async_trait::async_trait]
impl orchard_store::Store for SqlStore {
    fn backend(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    async fn ping(&self) -> orchard_store::StoreResult<()> {
        Sql::new("SELECT 1 AS one")
            .query(self.dialect)
            .fetch_one(&self.pool)
            .await
            .map(|_| ())
            .map_err(backend_err)
    }
}

pub(crate) fn backend_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_owned())
        }
        // Transient, and the transaction they ended changed nothing: another process held
        // SQLite's lock past the busy timeout (SQLITE_BUSY or SQLITE_LOCKED, with their
        // extended codes), PostgreSQL broke a deadlock or a serialization conflict, or every
        // pooled connection stayed in use.
        sqlx::Error::Database(db)
            if db.code().is_some_and(|c| {
                matches!(c.as_ref(), "40P01" | "40001" | "55P03")
                    || c.parse::<i32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6))
            }) =>
        {
            StoreError::Busy(format!(
                "the database is busy ({}); try again",
                db.message()
            ))
        }
        sqlx::Error::PoolTimedOut => {
            StoreError::Busy("every database connection stayed in use; try again".into())
        }
        _ => StoreError::Backend(Box::new(e)),
    }
}

pub(crate) fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// A calendar day as stored: ISO text, which sorts and compares like the date.
pub(crate) fn day(d: chrono::NaiveDate) -> Arg {
    Arg::Text(Some(d.format("%Y-%m-%d").to_string()))
}

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or_default()
}

/// A bound value. The schema's three portable types, always nullable.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
    /// JSON text for a column that SQLite keeps as its binary JSONB (`Dialect::json_column`):
    /// bound as text and converted there (`jsonb(?)`); a text like any other on PostgreSQL.
    Json(Option<String>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}
impl From<f64> for Arg {
    fn from(v: f64) -> Self {
        Arg::Real(Some(v))
    }
}
impl From<Option<f64>> for Arg {
    fn from(v: Option<f64>) -> Self {
        Arg::Real(v)
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(Some(v))
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_owned()))
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v)
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        Arg::Text(v.map(str::to_owned))
    }
}

/// Marks a placeholder in a statement's text until [`Sql::query`] renders it for the backend.
const PLACEHOLDER: char = '\u{1}';
/// A placeholder for an [`Arg::Json`].
const JSON_PLACEHOLDER: char = '\u{2}';

/// A statement assembled at run time with its arguments, bound in the order they are pushed.
/// Placeholders are rendered per backend when the statement runs: `$1, $2, ...` on PostgreSQL,
/// anonymous `?` on SQLite (see [`Sql::render`]).
#[derive(Debug, Default)]
pub(crate) struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    pub(crate) fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            args: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// The statement between `before` and `after`, its arguments in place.
    pub(crate) fn wrap(mut self, before: &str, after: &str) -> Self {
        self.text.insert_str(0, before);
        self.text.push_str(after);
        self
    }

    /// Appends `other`, its arguments after this one's.
    pub(crate) fn append(&mut self, other: Sql) -> &mut Self {
        self.text.push_str(&other.text);
        self.args.extend(other.args);
        self
    }

    /// Appends a placeholder for `arg`.
    pub(crate) fn arg(&mut self, arg: impl Into<Arg>) -> &mut Self {
        let arg = arg.into();
        self.text.push(match arg {
            Arg::Json(_) => JSON_PLACEHOLDER,
            _ => PLACEHOLDER,
        });
        self.args.push(arg);
        self
    }

    /// Appends `(a, b, c)`: a placeholder for each item, for `IN` lists and row values.
    pub(crate) fn list<A: Into<Arg>>(&mut self, items: impl IntoIterator<Item = A>) -> &mut Self {
        self.text.push('(');
        for (i, a) in items.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.arg(a);
        }
        self.text.push(')');
        self
    }

    /// Appends a test that the expression before it is one of `ids`, given as one text
    /// parameter (or two bounds, below): on SQLite `IN` the members of a JSON array, on PostgreSQL `= ANY` of the text
    /// split into an array (the `Any` driver cannot bind arrays). A parameter per id made every
    /// statement's text depend on the list's length, so each was parsed and planned afresh
    /// (SQLite's parser took 5% of a time-ordered ingest's instructions, counted by callgrind)
    /// and sqlx bound hundreds of values.
    ///
    /// Ids that are every integer from the first to the last, ascending (a rebuild's chunks,
    /// unless a contact among them was merged away), are the same test as `BETWEEN` the two:
    /// the database then walks one range of its index or table instead of looking each id up
    /// (callgrind, a rebuild of 20 000 contacts: SQLite's share 1.18 G -> 0.78 G instructions).
    /// One id is `= $1`: PostgreSQL plans a `BETWEEN` of two parameters afresh on every
    /// execution of a prepared statement (its generic plan never looks cheap enough), which
    /// cost a single event's transaction 0.1–0.5 ms of planning a statement; an equality gets
    /// the cached generic plan from the sixth execution on a connection.
    pub(crate) fn in_ids(
        &mut self,
        dialect: Dialect,
        ids: impl IntoIterator<Item = i64>,
    ) -> &mut Self {
        use std::fmt::Write as _;
        let ids: Vec<i64> = ids.into_iter().collect();
        // Whether the ids run without a gap is known before any is written out: a rebuild's
        // chunks nearly always do, and formatting their 500 ids as text was 2% of its
        // instructions (callgrind), for a text the statement then did not use.
        if let (Some(&first), Some(&last)) = (ids.first(), ids.last())
            && ids.windows(2).all(|w| w[0].checked_add(1) == Some(w[1]))
        {
            if first == last {
                return self.push(" = ").arg(first);
            }
            return self.push(" BETWEEN ").arg(first).push(" AND ").arg(last);
        }
        // `[1,2,3]` for SQLite's `json_each`, `1,2,3` for PostgreSQL's `string_to_array`.
        let json = dialect == Dialect::Sqlite;
        let mut joined = String::with_capacity(ids.len() * 8 + 2);
        if json {
            joined.push('[');
        }
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                joined.push(',');
            }
            let _ = write!(joined, "{id}");
        }
        if json {
            joined.push(']');
            self.push(" IN (SELECT value FROM json_each(")
                .arg(joined)
                .push("))")
        } else {
            self.push(" = ANY(string_to_array(")
                .arg(joined)
                .push(", ',')::bigint[])")
        }
    }

    /// The statement's text for `dialect`. SQLite gets anonymous `?` placeholders: sqlx binds a
    /// named or numbered one by asking SQLite for its name, a linear search per parameter
    /// (`sqlite3_bind_parameter_name`), which made binding quadratic in a statement's
    /// parameters and was the largest single cost of a SQLite ingest profile.
    fn render(&self, dialect: Dialect) -> String {
        let mut out = String::with_capacity(self.text.len() + 4 * self.args.len());
        let mut n = 0usize;
        for ch in self.text.chars() {
            if ch != PLACEHOLDER && ch != JSON_PLACEHOLDER {
                out.push(ch);
                continue;
            }
            n += 1;
            match dialect {
                Dialect::Sqlite if ch == JSON_PLACEHOLDER => out.push_str("jsonb(?)"),
                Dialect::Sqlite => out.push('?'),
                Dialect::Postgres => {
                    out.push('$');
                    out.push_str(&n.to_string());
                }
            }
        }
        out
    }

    /// Every row of this query, run on `conn` (a transaction, or a connection of its own).
    pub(crate) async fn fetch_all_in(
        self,
        conn: &mut sqlx::AnyConnection,
    ) -> StoreResult<Vec<AnyRow>> {
        let dialect = Dialect::of(conn);
        self.query(dialect)
            .fetch_all(&mut *conn)
            .await
            .map_err(backend_err)
    }

    pub(crate) fn query(self, dialect: Dialect) -> Query<'static, Any, AnyArguments> {
        // Statements are prepared once and cached by their text, with the parameter types of
        // their first run, so a NULL must carry the same type as a value in its place would.
        // sqlx's `Any` driver (0.9) swaps the two float widths for NULLs when it hands them to
        // PostgreSQL: an `f64` NULL arrives as `float4` and a later `f64` value in that
        // statement then fails ("incorrect binary data format"). An `f32` NULL arrives as
        // `float8`, so that is what a real NULL is bound as. SQLite has one NULL.
        let mut q = sqlx::query(AssertSqlSafe(self.render(dialect)));
        for a in self.args {
            q = match a {
                Arg::Int(v) => q.bind(v),
                Arg::Real(None) => q.bind(None::<f32>),
                Arg::Real(v) => q.bind(v),
                Arg::Text(v) | Arg::Json(v) => q.bind(v),
            };
        }
        q
    }
}

/// Parameters of the statements `in_turn` and `together` join into one at most: a small
/// transaction's statements (a single event's writes hold a few dozen), not a rebuild chunk's.
/// sqlx caches prepared statements by their whole text (100 a connection), and a joined text
/// depends on every part's row count: a rebuild chunk's dozens of statements, joined, would be
/// a text never seen before, prepared afresh each time (and on PostgreSQL planned for up to
/// tens of thousands of parameters) and evicting the cached ones, where each full-size part is
/// prepared once.
const JOIN_PARAMS: usize = 500;

/// Whether `statements` are few and small enough to join (`JOIN_PARAMS`).
fn worth_joining(statements: &[Sql]) -> bool {
    statements.len() > 1 && statements.iter().map(|s| s.args.len()).sum::<usize>() <= JOIN_PARAMS
}

/// SQLite: statements to run one after the other, as one text (`a; b; c`, parameters bound in
/// order across them) while they are small (`JOIN_PARAMS`), which sqlx's driver runs as one
/// command to its worker thread: one hand-off there and back instead of one per statement (a
/// single event's transaction ran about twenty, and the hand-offs, not the statements, were its
/// cost). The rows the text returns are those of its statements in turn.
pub(crate) fn in_turn(statements: Vec<Sql>) -> Vec<Sql> {
    if !worth_joining(&statements) {
        return statements;
    }
    let mut sql = Sql::default();
    for (i, part) in statements.into_iter().enumerate() {
        if i > 0 {
            sql.push("; ");
        }
        sql.append(part);
    }
    vec![sql]
}

/// Writing statements that read nothing another of them writes, as one statement while they
/// are small (`JOIN_PARAMS`): on PostgreSQL one statement of data-modifying CTEs (`WITH w0 AS
/// (…), w1 AS (…) SELECT 1`), which PostgreSQL runs each of to completion, in no set order, all
/// on the snapshot the statement started with, and which must not change one row twice: a
/// round trip where there were several (each ~0.1–0.2 ms on loopback, a third of a single
/// event's transaction). SQLite has no data-modifying CTEs: there they run `in_turn`.
pub(crate) fn together(dialect: Dialect, statements: Vec<Sql>) -> Vec<Sql> {
    if dialect == Dialect::Sqlite {
        return in_turn(statements);
    }
    if !worth_joining(&statements) {
        return statements;
    }
    let mut sql = Sql::new("WITH ");
    for (i, part) in statements.into_iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push(&format!("w{i} AS (")).append(part).push(")");
    }
    sql.push(" SELECT 1");
    vec![sql]
}

/// Builds `INSERT INTO table (cols) VALUES (...), (...) <suffix>` statements, as many as the
/// backend's parameter limit requires.
pub(crate) fn multi_insert(
    dialect: Dialect,
    table: &str,
    columns: &[&str],
    rows: Vec<Vec<Arg>>,
    suffix: &str,
) -> Vec<Sql> {
    let per = dialect.rows_per_statement(columns.len());
    let head = format!(
        "{} INTO {table} ({}) VALUES ",
        dialect.insert(),
        columns.join(", ")
    );
    let mut out = Vec::new();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut sql = Sql::new(&head);
        for (i, row) in rows.by_ref().take(per).enumerate() {
            debug_assert_eq!(row.len(), columns.len());
            if i > 0 {
                sql.push(", ");
            }
            sql.list(row);
        }
        sql.push(" ").push(suffix);
        out.push(sql);
    }
    out
}

pub(crate) fn get<'r, T>(row: &'r AnyRow, col: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get(col).map_err(backend_err)
}

/// A text column left in the row the driver returned, read in place where it is parsed. sqlx's
/// `Any` driver hands a `String` out of a row by copying it (through `Display`), and the texts
/// a refresh reads run to about a megabyte a chunk (histories, contacts): copying them was most
/// of what the thread that awaits the database did in a rebuild besides waiting.
pub(crate) struct RowText {
    row: Texts,
    column: &'static str,
}

/// Where a `RowText`'s texts are.
enum Texts {
    /// In the row sqlx returned.
    Driver(AnyRow),
    /// Copied out of a row the native SQLite reader stepped (`native::Snapshot::row_text`), by
    /// column name.
    Owned(Vec<(String, Option<String>)>),
}

impl RowText {
    /// The text in `column` of the first of `rows`; `None` when there is no row or it is NULL.
    pub(crate) fn first(rows: Vec<AnyRow>, column: &'static str) -> StoreResult<Option<Self>> {
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        if get::<Option<&str>>(&row, column)?.is_none() {
            return Ok(None);
        }
        Ok(Some(Self {
            row: Texts::Driver(row),
            column,
        }))
    }

    /// The first of `rows`, whatever its columns hold (read them with `other`); `None` when
    /// there is no row.
    pub(crate) fn row(rows: Vec<AnyRow>, column: &'static str) -> Option<Self> {
        let row = rows.into_iter().next()?;
        Some(Self {
            row: Texts::Driver(row),
            column,
        })
    }

    /// A row's texts by column name, read on `column`.
    pub(crate) fn owned(columns: Vec<(String, Option<String>)>, column: &'static str) -> Self {
        Self {
            row: Texts::Owned(columns),
            column,
        }
    }

    pub(crate) fn as_str(&self) -> StoreResult<&str> {
        self.other(self.column)?.ok_or_else(|| {
            StoreError::Backend(format!("column {} read back as NULL", self.column).into())
        })
    }

    /// Another text column of the same row, read in place too.
    pub(crate) fn other(&self, column: &str) -> StoreResult<Option<&str>> {
        match &self.row {
            Texts::Driver(row) => get(row, column),
            Texts::Owned(columns) => columns
                .iter()
                .find(|(name, _)| name == column)
                .map(|(_, text)| text.as_deref())
                .ok_or_else(|| StoreError::Backend(format!("no column {column} was read").into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_items_read_back_or_say_what_they_are() {
        assert_eq!(joined(None).count(), 0);
        assert_eq!(joined(Some("1,,22")).collect::<Vec<_>>(), ["1", "22"]);
        assert_eq!(joined_int("-7", "id").unwrap(), -7);
        assert_eq!(joined_pair("3:4", "pair").unwrap(), (3, 4));
        for bad in ["3", "3:", "a:4", "3:4:5"] {
            let e = joined_pair(bad, "membership").unwrap_err().to_string();
            assert!(e.contains("membership") && e.contains(bad), "{e}");
        }
        assert!(joined_int("1.5", "id").is_err());
    }

    #[test]
    fn id_hashes_spread_sequential_ids() {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let build = BuildHasherDefault::<IdHasher>::default();
        let hashes: Vec<u64> = (1..=4096i64).map(|id| build.hash_one(id)).collect();
        // hashbrown picks a bucket by the low bits and a tag by the top seven.
        let low: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 4095).collect();
        let top: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert_eq!(low.len(), 4096);
        assert_eq!(top.len(), 128);
        let pairs: std::collections::HashSet<u64> = (1..=64i64)
            .flat_map(|a| (1..=64i64).map(move |b| (a, b)))
            .map(|p| build.hash_one(p))
            .collect();
        assert_eq!(pairs.len(), 64 * 64);
    }

    #[test]
    fn consecutive_ids_are_a_range_and_the_rest_a_list() {
        let test = |ids: &[i64], dialect: Dialect| {
            let mut s = Sql::new("id");
            s.in_ids(dialect, ids.iter().copied());
            (s.render(dialect), s.args)
        };
        assert_eq!(
            test(&[4, 5, 6], Dialect::Sqlite),
            (
                "id BETWEEN ? AND ?".to_owned(),
                vec![Arg::Int(Some(4)), Arg::Int(Some(6))]
            )
        );
        // One id is an equality, which PostgreSQL plans once per prepared statement.
        assert_eq!(
            test(&[9], Dialect::Postgres),
            ("id = $1".to_owned(), vec![Arg::Int(Some(9))])
        );
        assert_eq!(test(&[9], Dialect::Sqlite).0, "id = ?");
        // A gap, a repeat, a descent or the end of the integers: the ids themselves.
        for ids in [
            &[4, 6][..],
            &[4, 5, 5],
            &[5, 4],
            &[i64::MAX - 1, i64::MAX, i64::MIN],
        ] {
            let joined = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
            assert_eq!(
                test(ids, Dialect::Sqlite),
                (
                    "id IN (SELECT value FROM json_each(?))".to_owned(),
                    vec![Arg::Text(Some(format!("[{joined}]")))]
                )
            );
            assert_eq!(
                test(ids, Dialect::Postgres).0,
                "id = ANY(string_to_array($1, ',')::bigint[])"
            );
        }
        assert_eq!(
            test(&[], Dialect::Sqlite).1,
            vec![Arg::Text(Some("[]".into()))]
        );
    }

    #[test]
    fn small_statements_are_joined_into_one() {
        let statement = |table: &str, n: usize| {
            let mut s = Sql::new(&format!("DELETE FROM {table} WHERE id"));
            s.list((0..n as i64).collect::<Vec<_>>());
            s
        };
        let three = || vec![statement("a", 1), statement("b", 2), statement("c", 1)];
        let sqlite = together(Dialect::Sqlite, three());
        assert_eq!(
            sqlite
                .iter()
                .map(|s| s.render(Dialect::Sqlite))
                .collect::<Vec<_>>(),
            ["DELETE FROM a WHERE id(?); DELETE FROM b WHERE id(?, ?); DELETE FROM c WHERE id(?)"]
        );
        let pg = together(Dialect::Postgres, three());
        assert_eq!(pg.len(), 1);
        assert_eq!(
            pg[0].render(Dialect::Postgres),
            "WITH w0 AS (DELETE FROM a WHERE id($1)), w1 AS (DELETE FROM b WHERE id($2, $3)), \
             w2 AS (DELETE FROM c WHERE id($4)) SELECT 1"
        );
        assert_eq!(pg[0].args, [0, 0, 1, 0].map(|v| Arg::Int(Some(v))).to_vec());
        // One statement alone stays as it was, and so do a rebuild chunk's, on both.
        assert_eq!(
            together(Dialect::Postgres, vec![statement("a", 1)])[0].render(Dialect::Postgres),
            "DELETE FROM a WHERE id($1)"
        );
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let large = vec![statement("a", JOIN_PARAMS), statement("b", 1)];
            assert_eq!(together(dialect, large).len(), 2);
            assert!(together(dialect, Vec::new()).is_empty());
        }
    }

    #[test]
    fn placeholders_are_numbered_in_push_order() {
        let renders = |s: &Sql| [s.render(Dialect::Postgres), s.render(Dialect::Sqlite)];
        let mut s = Sql::new("SELECT * FROM t WHERE a = ");
        s.arg(1i64).push(" AND b = ").arg("x");
        assert_eq!(
            renders(&s),
            [
                "SELECT * FROM t WHERE a = $1 AND b = $2",
                "SELECT * FROM t WHERE a = ? AND b = ?"
            ]
        );
        assert_eq!(s.args.len(), 2);
        // JSON goes into SQLite's binary form there, and in as it is on PostgreSQL.
        s.push(" AND c = ").arg(Arg::Json(Some("{}".into())));
        assert_eq!(
            renders(&s),
            [
                "SELECT * FROM t WHERE a = $1 AND b = $2 AND c = $3",
                "SELECT * FROM t WHERE a = ? AND b = ? AND c = jsonb(?)"
            ]
        );
    }

    /// The rows of `table` as the writer `tx` sees them.
    async fn count(tx: &mut WriteTx, table: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&mut **tx)
            .await
            .expect("a table this connection made")
    }

    async fn sqlite_in_memory() -> SqlStore {
        let pool = pool_options(4)
            .connect("sqlite::memory:")
            .await
            .expect("an in-memory SQLite pool");
        SqlStore::new(pool, Dialect::Sqlite)
    }

    /// `Dialect::insert` and `update` (`OR FAIL` on SQLite) leave a failed statement's
    /// earlier rows in place: only the transaction's rollback undoes them, which every writer
    /// relies on by failing its transaction with the statement.
    #[tokio::test]
    async fn a_failed_many_row_write_is_undone_with_its_transaction() {
        let store = sqlite_in_memory().await;
        let mut tx = store.begin().await.expect("writer");
        sqlx::query("CREATE TEMP TABLE t (a INTEGER NOT NULL)")
            .execute(&mut *tx)
            .await
            .expect("create");
        tx.commit().await.expect("commit");

        let rows = vec![
            vec![Arg::Int(Some(1))],
            vec![Arg::Int(None)],
            vec![Arg::Int(Some(3))],
        ];
        let mut tx = store.begin().await.expect("writer");
        let [insert] = <[Sql; 1]>::try_from(multi_insert(Dialect::Sqlite, "t", &["a"], rows, ""))
            .unwrap_or_else(|_| panic!("one statement"));
        assert!(
            insert.text.starts_with("INSERT OR FAIL INTO t"),
            "{}",
            insert.text
        );
        let failed = insert.query(Dialect::Sqlite).execute(&mut *tx).await;
        assert!(failed.is_err(), "a NULL went into a NOT NULL column");
        assert_eq!(
            count(&mut tx, "t").await,
            1,
            "the row before the failure stays for now"
        );
        let mut update = Sql::new("WITH v(a) AS (VALUES (1)) ");
        update
            .push(Dialect::Sqlite.update())
            .push(" t SET a = NULL FROM v WHERE t.a = v.a");
        assert!(
            update
                .query(Dialect::Sqlite)
                .execute(&mut *tx)
                .await
                .is_err()
        );
        drop(tx);

        let mut tx = store.begin().await.expect("writer");
        assert_eq!(
            count(&mut tx, "t").await,
            0,
            "the dropped transaction kept a row"
        );
        tx.rollback().await.expect("rollback");
    }

    #[tokio::test]
    async fn sqlite_writers_take_turns_and_a_dropped_transaction_gives_its_turn_back() {
        let store = sqlite_in_memory().await;
        let mut first = store.begin().await.expect("first writer");
        // A table of this connection alone (each connection to `:memory:` is its own
        // database): the writers after this one see it only on the same connection.
        sqlx::query("CREATE TEMP TABLE mark (x INTEGER)")
            .execute(&mut *first)
            .await
            .expect("create");
        // The second writer waits for the first, however long it holds the turn.
        let waiting = tokio::time::timeout(Duration::from_millis(100), store.begin()).await;
        assert!(waiting.is_err(), "a second writer began beside the first");
        first.commit().await.expect("commit");
        let mut second = tokio::time::timeout(Duration::from_secs(5), store.begin())
            .await
            .expect("the turn passes on after a commit")
            .expect("second writer");
        assert_eq!(
            count(&mut second, "mark").await,
            0,
            "writers share one connection"
        );
        sqlx::query("INSERT INTO mark VALUES (1)")
            .execute(&mut *second)
            .await
            .expect("insert");
        // A transaction dropped on an error path (never committed) is rolled back and gives
        // the turn back.
        drop(second);
        let mut third = tokio::time::timeout(Duration::from_secs(5), store.begin())
            .await
            .expect("the turn passes on after a drop")
            .expect("third writer");
        assert_eq!(
            count(&mut third, "mark").await,
            0,
            "a dropped writer's rows stayed"
        );
        third.rollback().await.expect("rollback");
        // Clones share the turn: they are the same store.
        let clone = store.clone();
        let held = clone.begin().await.expect("writer on a clone");
        assert!(
            tokio::time::timeout(Duration::from_millis(100), store.begin())
                .await
                .is_err(),
            "a clone's writer did not hold the turn"
        );
        held.commit().await.expect("commit");

        // A writer that cannot get its turn in time gives up, changing nothing.
        let impatient = store.clone().with_writer_wait(Duration::from_millis(50));
        let held = store.begin().await.expect("writer");
        assert!(matches!(impatient.begin().await, Err(StoreError::Busy(_))));
        held.commit().await.expect("commit");
        impatient
            .begin()
            .await
            .expect("its turn once the queue moves")
            .rollback()
            .await
            .expect("rollback");
    }

    /// A database's error as a driver reports it: a code and a message.
    #[derive(Debug)]
    struct Reported(&'static str);

    impl std::fmt::Display for Reported {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "error {}", self.0)
        }
    }

    impl std::error::Error for Reported {}

    impl sqlx::error::DatabaseError for Reported {
        fn message(&self) -> &str {
            "reported"
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    #[test]
    fn transient_failures_are_busy_and_the_rest_are_backend_failures() {
        let busy = |code| {
            matches!(
                backend_err(sqlx::Error::Database(Box::new(Reported(code)))),
                StoreError::Busy(_)
            )
        };
        // SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT, SQLITE_LOCKED; PostgreSQL's deadlock,
        // serialization failure and lock timeout.
        for code in ["5", "517", "6", "40P01", "40001", "55P03"] {
            assert!(busy(code), "{code} is transient");
        }
        // SQLITE_CORRUPT, SQLITE_FULL (13), a PostgreSQL syntax error.
        for code in ["11", "13", "42601"] {
            assert!(!busy(code), "{code} is not");
        }
        assert!(matches!(
            backend_err(sqlx::Error::PoolTimedOut),
            StoreError::Busy(_)
        ));
    }

    #[test]
    fn multi_insert_splits_at_the_parameter_limit() {
        let rows: Vec<Vec<Arg>> = (0..5000).map(|i| vec![Arg::from(i as i64); 10]).collect();
        let stmts = multi_insert(Dialect::Sqlite, "t", &["c"; 10], rows, "");
        let total: usize = stmts.iter().map(|s| s.args.len()).sum();
        assert_eq!(total, 50_000);
        assert!(stmts.iter().all(|s| s.args.len() <= 500));
    }
}

/// The items of a text an aggregate joined with commas (`Dialect::string_agg`); none for NULL.
pub(crate) fn joined(text: Option<&str>) -> impl Iterator<Item = &str> {
    text.unwrap_or_default()
        .split(',')
        .filter(|t| !t.is_empty())
}

/// One integer as an aggregate's item; `what` names it in the error.
pub(crate) fn joined_int(item: &str, what: &str) -> StoreResult<i64> {
    item.parse()
        .map_err(|_| StoreError::Backend(format!("a {what} read back as {item:?}").into()))
}

/// An `a:b` pair of integers as an aggregate's item; `what` names it in the error.
pub(crate) fn joined_pair(item: &str, what: &str) -> StoreResult<(i64, i64)> {
    item.split_once(':')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .ok_or_else(|| StoreError::Backend(format!("a {what} read back as {item:?}").into()))
}

/// Hashes the integer keys of a refresh's maps (contact, account and segment ids, which the
/// database hands out, never a caller) with one multiplication per integer, as FxHash does:
/// SipHash, the standard maps' default, took a twentieth of a rebuild's deciding thread.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }
}

/// A map keyed by ids, hashed by `IdHasher`.
pub(crate) type IdMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<IdHasher>>;
/// A set of ids, hashed by `IdHasher`.
pub(crate) type IdSet<K> = std::collections::HashSet<K, BuildHasherDefault<IdHasher>>;
