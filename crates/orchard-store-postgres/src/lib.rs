//! The scale backend: PostgreSQL, shared by several stateless `orchard serve` processes. The
//! migrations here carry the same names as SQLite's; queries are the shared ones in
//! `orchard-store-sql`.

use orchard_store::StoreError;
use orchard_store_sql::{Dialect, SqlStore, pool_options};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connects to a `postgres://` URL and migrates the database. Several processes may start at
/// once: sqlx's migrator takes an advisory lock, so one migrates and the others wait.
pub async fn connect(url: &str) -> Result<SqlStore, StoreError> {
    let pool = pool_options(16)
        // Orchard's statements read a few hundred contacts by index. PostgreSQL sometimes plans
        // them in parallel (on an estimate from statistics taken before the log grew), and
        // starting the workers then costs more than the query: 13 ms instead of under 1 ms for
        // one contact's events, every time an event arrived. A bulk query that gains from
        // workers can turn them back on for its transaction (`SET LOCAL`), as the rebuild
        // benchmark's SQL baseline does.
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                sqlx::query("SET max_parallel_workers_per_gather = 0")
                    .execute(conn)
                    .await
                    .map(|_| ())
            })
        })
        .connect(url)
        .await
        .map_err(|e| StoreError::Backend(Box::new(e)))?;
    MIGRATOR
        .run(&pool)
        .await
        .map_err(|e| StoreError::Backend(Box::new(e)))?;
    tracing::info!("connected to PostgreSQL");
    Ok(SqlStore::new(pool, Dialect::Postgres))
}

/// Migrates the database at a `postgres://` URL only as far as `version`: the schema of an
/// older Orchard, for the upgrade tests, which then open it with `connect` as a newer Orchard
/// would.
#[doc(hidden)]
pub async fn migrate_to(url: &str, version: i64) -> Result<sqlx::AnyPool, StoreError> {
    orchard_store_sql::upgrade::open_at_version(&MIGRATOR, url, version).await
}

/// Creates an empty database beside the one `base_url` names and returns its URL. Tests and
/// benchmarks use it so that every run starts from nothing; the caller drops it with
/// [`drop_scratch_database`].
pub async fn create_scratch_database(base_url: &str, prefix: &str) -> Result<String, StoreError> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(base_url)
        .await
        .map_err(|e| StoreError::Backend(Box::new(e)))?;
    if !SWEPT.swap(true, std::sync::atomic::Ordering::Relaxed) {
        sweep_abandoned(&mut conn, prefix).await?;
    }
    let name = format!(
        "{prefix}_{}_{}",
        std::process::id(),
        SCRATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!("{name}_{nanos}");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .map_err(|e| StoreError::Backend(Box::new(e)))?;
    let (head, _) = base_url
        .split_once('?')
        .map_or((base_url, ""), |(h, q)| (h, q));
    let (server, _) = head
        .rsplit_once('/')
        .ok_or_else(|| StoreError::Invalid(format!("no database name in {base_url}")))?;
    Ok(format!("{server}/{name}"))
}

/// Drops a database made by [`create_scratch_database`].
pub async fn drop_scratch_database(base_url: &str, scratch_url: &str) -> Result<(), StoreError> {
    use sqlx::Connection;
    let name = scratch_url.rsplit('/').next().unwrap_or_default();
    let mut conn = sqlx::PgConnection::connect(base_url)
        .await
        .map_err(|e| StoreError::Backend(Box::new(e)))?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .map_err(|e| StoreError::Backend(Box::new(e)))?;
    Ok(())
}

static SCRATCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Whether this process has swept abandoned scratch databases yet (once is enough).
static SWEPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Drops scratch databases named `{prefix}_{pid}_...` whose process has exited. A test that
/// fails or is killed never drops its database, and the tests make one each: on a machine that
/// runs the suite often they piled up by the hundred. Only databases whose process is known to
/// be gone are dropped (where `/proc` tells), so a run in progress keeps its own.
async fn sweep_abandoned(conn: &mut sqlx::PgConnection, prefix: &str) -> Result<(), StoreError> {
    let proc_fs = std::path::Path::new("/proc/self").exists();
    if !proc_fs {
        return Ok(());
    }
    let names: Vec<(String,)> =
        sqlx::query_as("SELECT datname FROM pg_database WHERE starts_with(datname, $1)")
            .bind(format!("{prefix}_"))
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
    for (name,) in names {
        let Some(pid) = name[prefix.len() + 1..]
            .split('_')
            .next()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        // Another process may be sweeping the same one: a failed drop is left for next time.
        let dropped = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&mut *conn)
        .await;
        if let Err(e) = dropped {
            tracing::debug!(database = %name, error = %e, "abandoned scratch database left");
        }
    }
    Ok(())
}
