//! Choosing the backend: the one place that names one. The URL's scheme decides, once, at start.

use std::sync::Arc;

use anyhow::Context;
use orchard_store::Store;
use orchard_store_sql::SqlStore;

/// Opens and migrates the database at `url`.
pub async fn open_sql(url: &str) -> anyhow::Result<SqlStore> {
    let store = if url.starts_with("sqlite:") {
        orchard_store_sqlite::connect(url).await
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        orchard_store_postgres::connect(url).await
    } else {
        anyhow::bail!(
            "database URL '{}' is not supported: use sqlite://PATH or postgres://USER@HOST/DB",
            redact(url)
        );
    };
    store.with_context(|| format!("could not open the database at {}", redact(url)))
}

pub async fn open(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    Ok(Arc::new(open_sql(url).await?))
}

/// How much of a SQLite file a batch command's whole passes read through a memory map: all of
/// it (`SqlStore::mapping_native_reads`). `serve` maps nothing, to stay under the SPEC's 2 GiB.
pub const BATCH_MAP: u64 = 1 << 40;

/// `open` for a batch command (`orchard rebuild`): its passes over every contact read mapped.
pub async fn open_batch(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    Ok(Arc::new(
        open_sql(url).await?.mapping_native_reads(BATCH_MAP),
    ))
}

/// The URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact("sqlite://orchard-data/orchard.db"),
            "sqlite://orchard-data/orchard.db"
        );
    }
}
