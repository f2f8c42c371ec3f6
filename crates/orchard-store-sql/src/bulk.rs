//! Bulk loading into an empty database (the demo company, migrations from other tools): whole
//! rows with their ids, many per statement, one transaction per batch.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::Utc;
use orchard_core::UserId;
use orchard_core::demo::{AccountBatch, ContactBatch, DemoCompany};
use orchard_store::{BulkStore, StoreResult};

use crate::auth::{USER_COLUMNS, user_row};
use crate::catalog::{FORM_COLUMNS, form_row};
use crate::contacts::{CONTACT_COLUMNS, contact_row};
use crate::events::{EVENT_COLUMNS, event_row};
use crate::records::{
    ACTIVITY_COLUMNS, DEAL_COLUMNS, ORDER_COLUMNS, SUBSCRIPTION_COLUMNS, activity_row, deal_row,
    order_row, subscription_row,
};
use crate::{Arg, Dialect, Sql, SqlStore, backend_err, day, get, ms, multi_insert};

/// Every table, in the order rows may be loaded (referenced tables first).
pub const TABLES: [&str; 13] = [
    "teams",
    "users",
    "lead_magnets",
    "forms",
    "spend",
    "accounts",
    "subscriptions",
    "orders",
    "activities",
    "contacts",
    "deals",
    "events",
    "api_tokens",
];

/// Tables whose ids the bulk loader sets explicitly, so their sequences must be moved on.
const NUMBERED: [&str; 11] = [
    "teams",
    "users",
    "lead_magnets",
    "forms",
    "spend",
    "accounts",
    "subscriptions",
    "orders",
    "activities",
    "contacts",
    "deals",
];

const FORM_WITH_ID: [&str; 8] = [
    "id",
    FORM_COLUMNS[0],
    FORM_COLUMNS[1],
    FORM_COLUMNS[2],
    FORM_COLUMNS[3],
    FORM_COLUMNS[4],
    FORM_COLUMNS[5],
    FORM_COLUMNS[6],
];

/// An account's values between its ids and its creation time, in the loader's column order.
fn account_details(a: &orchard_core::account::Account) -> Vec<Arg> {
    vec![
        a.name.as_str().into(),
        a.domain.as_deref().into(),
        a.industry.as_deref().into(),
        a.employees.into(),
        a.region.as_deref().into(),
        a.country.as_deref().into(),
        a.owner_id.map(UserId::get).into(),
        a.service_hours.into(),
        a.cost_to_serve.into(),
    ]
}

type Table = (&'static str, &'static [&'static str], Vec<Vec<Arg>>);

impl SqlStore {
    async fn load_tables(&self, tables: Vec<Table>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        for (table, columns, rows) in tables {
            for sql in multi_insert(self.dialect(), table, columns, rows, "") {
                sql.query(self.dialect)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
            }
        }
        tx.commit().await
    }
}

#[async_trait]
impl BulkStore for SqlStore {
    async fn is_empty(&self) -> StoreResult<bool> {
        let row = Sql::new(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM contacts LIMIT 1) c) + \
             (SELECT count(*) FROM (SELECT 1 FROM accounts LIMIT 1) a) + \
             (SELECT count(*) FROM (SELECT 1 FROM events LIMIT 1) e) AS n",
        )
        .query(self.dialect)
        .fetch_one(self.pool())
        .await
        .map_err(backend_err)?;
        Ok(get::<i64>(&row, "n")? == 0)
    }

    #[tracing::instrument(skip_all)]
    async fn load_company(&self, c: &DemoCompany) -> StoreResult<()> {
        let now = Utc::now();
        let teams = c
            .teams
            .iter()
            .map(|t| {
                vec![
                    t.id.get().into(),
                    t.name.as_str().into(),
                    t.function.as_str().into(),
                ]
            })
            .collect();
        let users = c
            .users
            .iter()
            .map(|u| user_row(u, None, now))
            .collect::<StoreResult<_>>()?;
        let magnets = c
            .lead_magnets
            .iter()
            .map(|m| {
                vec![
                    m.id.get().into(),
                    m.slug.as_str().into(),
                    m.name.as_str().into(),
                    m.kind.as_str().into(),
                    m.stage.as_str().into(),
                ]
            })
            .collect();
        let forms = c
            .forms
            .iter()
            .map(|f| {
                let mut row = vec![f.id.get().into()];
                row.extend(form_row(f)?);
                Ok(row)
            })
            .collect::<StoreResult<_>>()?;
        let spend = c
            .spend
            .iter()
            .map(|s| {
                vec![
                    s.id.get().into(),
                    s.external_id.as_str().into(),
                    day(s.day),
                    s.source.as_str().into(),
                    s.campaign.as_deref().into(),
                    s.amount_cents.into(),
                ]
            })
            .collect();
        let accounts = c
            .accounts
            .iter()
            .map(|a| {
                let mut row = vec![a.id.get().into(), a.external_id.as_str().into()];
                row.extend(account_details(a));
                row.push(ms(a.created_at).into());
                row
            })
            .collect();
        self.load_tables(vec![
            ("teams", &["id", "name", "function"], teams),
            ("users", &USER_COLUMNS, users),
            (
                "lead_magnets",
                &["id", "slug", "name", "kind", "stage"],
                magnets,
            ),
            ("forms", &FORM_WITH_ID, forms),
            (
                "spend",
                &[
                    "id",
                    "external_id",
                    "day",
                    "source",
                    "campaign",
                    "amount_cents",
                ],
                spend,
            ),
            (
                "accounts",
                &[
                    "id",
                    "external_id",
                    "name",
                    "domain",
                    "industry",
                    "employees",
                    "region",
                    "country",
                    "owner_id",
                    "service_hours",
                    "cost_to_serve",
                    "created_at",
                ],
                accounts,
            ),
        ])
        .await
    }

    async fn load_account_batch(&self, b: &AccountBatch) -> StoreResult<()> {
        let subs = b.subscriptions.iter().map(subscription_row).collect();
        let orders = b.orders.iter().map(order_row).collect();
        let activities = b.activities.iter().map(activity_row).collect();
        self.load_tables(vec![
            ("subscriptions", &SUBSCRIPTION_COLUMNS, subs),
            ("orders", &ORDER_COLUMNS, orders),
            ("activities", &ACTIVITY_COLUMNS, activities),
        ])
        .await
    }

    async fn load_contact_batch(&self, b: &ContactBatch) -> StoreResult<()> {
        let received = ms(Utc::now());
        let contacts = b
            .contacts
            .iter()
            .map(contact_row)
            .collect::<StoreResult<_>>()?;
        let deals = b.deals.iter().map(deal_row).collect();
        let events = b
            .events
            .iter()
            .map(|e| event_row(e, received))
            .collect::<StoreResult<_>>()?;
        self.load_tables(vec![
            ("contacts", &CONTACT_COLUMNS, contacts),
            ("deals", &DEAL_COLUMNS, deals),
            ("events", &EVENT_COLUMNS, events),
        ])
        .await?;
        // The events' property names, from the events at hand rather than by a scan of every
        // event's properties at the end, as the types are (`finish_load`): a batch carries the
        // same few pairs.
        // And the names of the contacts' custom attributes, first, as every other write takes
        // them (a fixed order of the lists' rows on PostgreSQL).
        let mut tx = self.begin().await?;
        let custom = b.contacts.iter().flat_map(|c| c.details.custom.keys());
        crate::contacts::record_attributes(&mut tx, custom, received).await?;
        let names = crate::events::property_names(&b.events);
        for sql in crate::events::record_names(self.dialect, &names, received) {
            sql.query(self.dialect)
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
        }
        tx.commit().await
    }

    async fn finish_load(&self) -> StoreResult<()> {
        // The contacts' histories in one pass over the loaded log, rather than an upsert per
        // batch that rewrites the rows of contacts spread over several batches.
        let mut tx = self.begin().await?;
        crate::history::repack(&mut tx, self.dialect).await?;
        // The log's list of its types likewise.
        crate::events::record_all_types(&mut tx, self.dialect).await?;
        tx.commit().await?;
        if self.dialect() == Dialect::Postgres {
            for table in NUMBERED {
                let sql = Sql::new(&format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                     (SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
                ));
                sql.query(self.dialect)
                    .execute(self.pool())
                    .await
                    .map_err(backend_err)?;
            }
        }
        // Fresh statistics for PostgreSQL's planner: without them it guessed that a few hundred
        // contacts' events were a large part of the log and scanned all of it for each refresh
        // (measured: 64 ms instead of 3 ms a chunk on 20 000 demo contacts). Its autovacuum
        // keeps them fresh from then on. SQLite is left without: it never refreshes statistics
        // by itself, and ones taken before the log grows made it scan (p99 of sent → visible
        // went from 9 to 40 ms in `bench ingest`).
        if self.dialect() == Dialect::Postgres {
            Sql::new("ANALYZE")
                .query(self.dialect)
                .execute(self.pool())
                .await
                .map_err(backend_err)?;
        }
        Ok(())
    }

    async fn table_counts(&self) -> StoreResult<BTreeMap<String, i64>> {
        let mut out = BTreeMap::new();
        for table in TABLES {
            let row = Sql::new(&format!("SELECT count(*) AS n FROM {table}"))
                .query(self.dialect)
                .fetch_one(self.pool())
                .await
                .map_err(backend_err)?;
            out.insert(table.to_owned(), get(&row, "n")?);
        }
        Ok(out)
    }
}
