//! Imported rows: contacts upserted by email (merging, never duplicating), accounts and spend
//! matched by external id. Each row is compared with what is stored so that a re-run of the same
//! file reports everything unchanged.

use async_trait::async_trait;
use orchard_core::import::Record;
use orchard_store::{ImportCounts, ImportStore, StoreResult};
use sqlx::AnyConnection;

use crate::contacts::{Upserted, upsert_outcome};
use crate::{Arg, Sql, SqlStore, backend_err, ms};

/// Inserts or updates the row keyed by `external_id` in `table`; `cols` and `vals` exclude it.
/// `on_insert` is written only for a new row (a creation time defaulted to the import's own
/// time must not make every re-run an update).
async fn upsert_by_key(
    tx: &mut AnyConnection,
    table: &str,
    external_id: &str,
    cols: &[&str],
    vals: Vec<Arg>,
    on_insert: Option<(&str, Arg)>,
) -> StoreResult<Upserted> {
    let mut find = Sql::new(&format!(
        "SELECT {} FROM {table} WHERE external_id = ",
        cols.join(", ")
    ));
    find.arg(external_id);
    let row = find
        .query()
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend_err)?;
    match row {
        None => {
            let (extra_col, extra_val) = match on_insert {
                Some((c, v)) => (format!(", {c}"), Some(v)),
                None => (String::new(), None),
            };
            let mut ins = Sql::new(&format!(
                "INSERT INTO {table} (external_id, {}{extra_col}) VALUES ",
                cols.join(", ")
            ));
            ins.list(
                std::iter::once(Arg::from(external_id))
                    .chain(vals)
                    .chain(extra_val),
            );
            ins.query().execute(&mut *tx).await.map_err(backend_err)?;
            Ok(Upserted::Created)
        }
        Some(row) => {
            use sqlx::Row;
            let same = vals.iter().enumerate().all(|(i, v)| match v {
                Arg::Int(x) => row.try_get::<Option<i64>, _>(i).ok().as_ref() == Some(x),
                Arg::Real(x) => row.try_get::<Option<f64>, _>(i).ok().as_ref() == Some(x),
                Arg::Text(x) => row.try_get::<Option<String>, _>(i).ok().as_ref() == Some(x),
            });
            if same {
                return Ok(Upserted::Unchanged);
            }
            let mut up = Sql::new(&format!("UPDATE {table} SET ({}) = ", cols.join(", ")));
            up.list(vals).push(" WHERE external_id = ").arg(external_id);
            up.query().execute(&mut *tx).await.map_err(backend_err)?;
            Ok(Upserted::Updated)
        }
    }
}

#[async_trait]
impl ImportStore for SqlStore {
    #[tracing::instrument(skip_all, fields(rows = records.len()))]
    async fn import(&self, records: &[Record]) -> StoreResult<ImportCounts> {
        let mut counts = ImportCounts::default();
        let mut tx = self.pool().begin().await.map_err(backend_err)?;
        for r in records {
            let outcome = match r {
                Record::Contact(c) => upsert_outcome(&mut tx, c).await?.1,
                // Not `account_details`: an import carries no owner, and re-importing must not
                // clear the owner someone assigned in Orchard.
                Record::Account(a) => {
                    upsert_by_key(
                        &mut tx,
                        "accounts",
                        &a.external_id,
                        &[
                            "name",
                            "domain",
                            "industry",
                            "employees",
                            "region",
                            "country",
                            "service_hours",
                            "cost_to_serve",
                        ],
                        vec![
                            a.name.as_str().into(),
                            a.domain.as_deref().into(),
                            a.industry.as_deref().into(),
                            a.employees.into(),
                            a.region.as_deref().into(),
                            a.country.as_deref().into(),
                            a.service_hours.into(),
                            a.cost_to_serve.into(),
                        ],
                        Some(("created_at", ms(a.created_at).into())),
                    )
                    .await?
                }
                Record::Spend(s) => {
                    upsert_by_key(
                        &mut tx,
                        "spend",
                        &s.external_id,
                        &["day", "source", "campaign", "amount_cents"],
                        vec![
                            s.day.format("%Y-%m-%d").to_string().into(),
                            s.source.as_str().into(),
                            s.campaign.as_deref().into(),
                            s.amount_cents.into(),
                        ],
                        None,
                    )
                    .await?
                }
            };
            match outcome {
                Upserted::Created => counts.created += 1,
                Upserted::Updated => counts.updated += 1,
                Upserted::Unchanged => counts.unchanged += 1,
            }
        }
        tx.commit().await.map_err(backend_err)?;
        Ok(counts)
    }
}
