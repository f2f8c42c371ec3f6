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
