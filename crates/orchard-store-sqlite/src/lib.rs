//! The embedded default backend: one SQLite file, created on first run, in WAL mode so readers
//! never wait for the writer, with this crate's migrations applied at start. Queries are the
//! shared ones in `orchard-store-sql`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use orchard_store::StoreError;
use orchard_store_sql::{Dialect, SqlStore, Writer, pool_options};
use sqlx::{AnyPool, Executor, Row};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Opens (creating if needed) the database at a `sqlite://path` URL and migrates it.
pub async fn connect(url: &str) -> Result<SqlStore, StoreError> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::Invalid(format!("not a sqlite URL: {url}")))?;
    let (file, params) = path.split_once('?').unwrap_or((path, ""));
    if file.is_empty() {
        return Err(StoreError::Invalid(
            "the sqlite URL names no file (expected sqlite://path/to/orchard.db)".into(),
        ));
    }
    if file != ":memory:"
        && let Some(dir) = Path::new(file)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Invalid(format!("cannot create the folder {}: {e}", dir.display()))
        })?;
    }
    let mode = if params.contains("mode=") {
        ""
    } else {
        "mode=rwc"
    };
    let sep = if params.is_empty() || mode.is_empty() {
        ""
    } else {
        "&"
    };
    let url = format!("sqlite://{file}?{params}{sep}{mode}");
    let pool = pool_options(8)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                // WAL: readers never block the writer; NORMAL sync is durable across a process
                // kill (only an OS crash can lose the last commits); a busy timeout lets
                // concurrent writers queue instead of failing. No checkpoints on commit: the
                // checkpointer below runs them, so no acknowledgement waits for one.
                conn.execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; \
                     PRAGMA temp_store = MEMORY; PRAGMA cache_size = -65536; \
                     PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;",
                )
                .await?;
                Ok(())
            })
        })
        .connect(&url)
        .await
        .map_err(|e| StoreError::Backend(Box::new(e)))?;
    MIGRATOR
        .run(&pool)
        .await
        .map_err(|e| StoreError::Backend(Box::new(e)))?;
    tracing::info!(file, "opened SQLite database");
    let mut store = SqlStore::new(pool.clone(), Dialect::Sqlite);
    // The passes that read every contact outside an append (a rebuild, a new segment, a
    // preview, a backtest…) read the file on connections of their own: the file SQLite itself
    // opened (the URL's name is percent-decoded by sqlx); an in-memory database has none.
    let opened: String =
        sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_one(&pool)
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
    if !opened.is_empty() {
        store = store.with_native_reads(opened.into());
    }
    let checkpoints = tokio::spawn(checkpointer(pool, store.writer_queue()));
    Ok(store.with_upkeep(checkpoints))
}

/// Creates the database at a `sqlite://path` URL with the schema of an older Orchard: the
/// migrations up to `version` only. For the upgrade tests, which then open it with `connect`
/// as a newer Orchard would.
#[doc(hidden)]
pub async fn create_at_version(url: &str, version: i64) -> Result<AnyPool, StoreError> {
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}mode=rwc");
    orchard_store_sql::upgrade::open_at_version(&MIGRATOR, &url, version).await
}

/// A folder of its own under the system's temp dir for a scratch database, unique to this
/// process and call: tests and benchmarks running side by side never share a file. The name
/// counts calls, since two threads can read the same clock time.
pub fn scratch_dir(prefix: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        CALLS.fetch_add(1, Ordering::Relaxed)
    ))
}

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// WAL frames (pages) past which the checkpointer makes sure the WAL starts over.
const RESTART_AT: i64 = 4_096;

/// Checkpoint passes beside the writers, at most, before the one that holds them.
const PASSES_BESIDE: usize = 4;

/// Frames a pass beside the writers may find to copy and still be the last before the pass that
/// holds them: what arrives during so short a pass is a few milliseconds' copying.
const FEW_FRAMES: i64 = 256;

/// Copies the WAL back into the database file in the background. SQLite's default runs that
/// checkpoint inside whichever commit first finds the WAL past 1 000 pages, so about one
/// acknowledgement in a hundred waited for it (the p99 of sent → visible went from 2.6 to 12 ms
/// with it on). `PASSIVE` never blocks readers or the writer; it runs on a pool connection's
/// own thread. When the last connection closes, SQLite checkpoints once more by itself.
///
/// A checkpoint that runs beside a writer never copies the frames that writer adds meanwhile,
/// and SQLite starts the WAL over only once every frame is copied: under steady ingestion the
/// WAL grew past 500 MB. So when it holds more than `RESTART_AT` frames, a last pass runs in
/// the writers' queue; the next writer then starts the WAL from its beginning
/// (`journal_size_limit` trims the file). Writers wait for that pass, so it should find little
/// to copy: passes beside the writers come first, each copying what arrived during the one
/// before, until one finds at most `FEW_FRAMES`. Under steady ingestion the pass that held the
/// writers had copied everything written during a whole first pass, and took 20–40 ms twice a
/// second.
async fn checkpointer(pool: AnyPool, writers: Arc<tokio::sync::Mutex<Writer>>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warned = false;
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        let result = restart_if_long(&pool, &writers).await;
        match result {
            Ok(()) => warned = false,
            Err(sqlx::Error::PoolClosed) => return,
            Err(e) if !warned => {
                warned = true;
                tracing::warn!(error = %e, "SQLite checkpoint failed; will retry");
            }
            Err(_) => {}
        }
    }
}

/// One round of the checkpointer: a pass beside the writers, and when the WAL is past
/// `RESTART_AT` frames, more passes beside them and a last one holding them.
async fn restart_if_long(
    pool: &AnyPool,
    writers: &tokio::sync::Mutex<Writer>,
) -> Result<(), sqlx::Error> {
    let (mut log, mut copied_to) = checkpoint(pool).await?;
    if log <= RESTART_AT {
        return Ok(());
    }
    // Even when a pass reports every frame copied, writers may have added more while it ran:
    // the WAL it saw ends at `log`, and the next pass copies from `copied_to` to the WAL's
    // end then.
    for _ in 1..PASSES_BESIDE {
        let before = copied_to;
        (log, copied_to) = checkpoint(pool).await?;
        if log - before <= FEW_FRAMES {
            break;
        }
    }
    let _turn = writers.lock().await;
    let held = std::time::Instant::now();
    let (last, _) = checkpoint(pool).await?;
    tracing::debug!(
        frames = last,
        copied = last - copied_to,
        held_ms = held.elapsed().as_secs_f64() * 1e3,
        "WAL copied with the writers held, for the next writer to start it over"
    );
    Ok(())
}

/// One `PASSIVE` checkpoint: the WAL's length in frames as the pass found it, and how many of
/// them are now in the database file.
async fn checkpoint(pool: &AnyPool) -> Result<(i64, i64), sqlx::Error> {
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?;
    Ok((row.try_get(1)?, row.try_get(2)?))
}
