//! Imported rows: contacts upserted by email (merging, never duplicating), everything else
//! matched by external id. Each row is compared with what is stored so that a re-run of the same
//! file reports everything unchanged. Deals, revenue and activities name their contact, account
//! and owner by the source system's keys; those are resolved here, in the same transaction.

use std::collections::HashMap;

use async_trait::async_trait;
use orchard_core::account::{Order, Subscription};
use orchard_core::activity::Activity;
use orchard_core::deal::Deal;
use orchard_core::import::{Links, Record, RowError};
use orchard_core::stage::LifecycleStage;
use orchard_core::{AccountId, ContactId, Email, UserId};
use orchard_store::{ImportReport, ImportStore, StoreError, StoreResult};
use sqlx::{AnyConnection, Row};

use crate::contacts::{Upserted, stage_set_by_hand, upsert_outcome};
use crate::events::{append_in, event_row};
use crate::records::{
    ACTIVITY_COLUMNS, DEAL_COLUMNS, ORDER_COLUMNS, SUBSCRIPTION_COLUMNS, activity_row, deal_row,
    order_row, subscription_row,
};
use crate::{Arg, Dialect, Sql, SqlStore, backend_err, ms};

/// Links resolved to ids, with the lookups of a batch remembered (an import names the same few
/// accounts and owners on many rows).
#[derive(Default)]
struct Resolver {
    contacts: HashMap<Email, Option<ContactId>>,
    accounts: HashMap<String, Result<AccountId, String>>,
    users: HashMap<Email, Option<UserId>>,
}

struct Resolved {
    contact: Option<ContactId>,
    account: Option<AccountId>,
    owner: Option<UserId>,
}

impl Resolver {
    async fn id_where(tx: &mut AnyConnection, sql: &str, key: &str) -> StoreResult<Option<i64>> {
        let mut q = Sql::new(sql);
        q.arg(key);
        let row = q
            .query(Dialect::of(tx))
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend_err)?;
        row.map(|r| r.try_get::<i64, _>(0).map_err(backend_err))
            .transpose()
    }

    async fn contact(
        &mut self,
        tx: &mut AnyConnection,
        e: &Email,
    ) -> StoreResult<Option<ContactId>> {
        if let Some(id) = self.contacts.get(e) {
            return Ok(*id);
        }
        let id = Self::id_where(
            tx,
            "SELECT COALESCE(merged_into, id) FROM contacts WHERE email = ",
            e.as_str(),
        )
        .await?
        .map(ContactId::new);
        self.contacts.insert(e.clone(), id);
        Ok(id)
    }

    async fn user(&mut self, tx: &mut AnyConnection, e: &Email) -> StoreResult<Option<UserId>> {
        if let Some(id) = self.users.get(e) {
            return Ok(*id);
        }
        let id = Self::id_where(tx, "SELECT id FROM users WHERE email = ", e.as_str())
            .await?
            .map(UserId::new);
        self.users.insert(e.clone(), id);
        Ok(id)
    }

    /// An account by the key the accounts import stored (external id), else its domain, else
    /// its name when exactly one account has it.
    async fn account(
        &mut self,
        tx: &mut AnyConnection,
        key: &str,
    ) -> StoreResult<Result<AccountId, String>> {
        if let Some(found) = self.accounts.get(key) {
            return Ok(found.clone());
        }
        let lower = key.to_lowercase();
        let mut q = Sql::new("SELECT id, external_id, domain FROM accounts WHERE external_id = ");
        q.arg(key)
            .push(" OR domain = ")
            .arg(lower.as_str())
            .push(" OR lower(name) = ")
            .arg(lower.as_str());
        let rows = q.fetch_all_in(&mut *tx).await?;
        let mut candidates = Vec::with_capacity(rows.len());
        for r in rows {
            let id: i64 = r.try_get(0).map_err(backend_err)?;
            let external: String = r.try_get(1).map_err(backend_err)?;
            let domain: Option<String> = r.try_get(2).map_err(backend_err)?;
            let rank = if external == key {
                0
            } else if domain.as_deref() == Some(lower.as_str()) {
                1
            } else {
                2
            };
            candidates.push((rank, AccountId::new(id)));
        }
        candidates.sort();
        let found = match candidates.as_slice() {
            [] => Err(format!("no account '{key}' (import accounts first)")),
            [(2, _), (2, _), ..] => Err(format!(
                "'{key}' names {} accounts; use the account's external id",
                candidates.len()
            )),
            [(_, id), ..] => Ok(*id),
        };
        self.accounts.insert(key.to_owned(), found.clone());
        Ok(found)
    }

    async fn resolve(
        &mut self,
        tx: &mut AnyConnection,
        row: usize,
        links: &Links,
    ) -> StoreResult<Result<Resolved, RowError>> {
        let reject = |column: &str, reason: String| RowError {
            row,
            column: Some(column.to_owned()),
            reason,
        };
        let contact = match &links.contact {
            None => None,
            Some(e) => match self.contact(tx, e).await? {
                Some(id) => Some(id),
                None => {
                    return Ok(Err(reject(
                        "email",
                        format!("no contact {e} (import contacts first)"),
                    )));
                }
            },
        };
        let account = match &links.account {
            None => None,
            Some(key) => match self.account(tx, key).await? {
                Ok(id) => Some(id),
                Err(reason) => return Ok(Err(reject("account", reason))),
            },
        };
        let owner = match &links.owner {
            None => None,
            Some(e) => match self.user(tx, e).await? {
                Some(id) => Some(id),
                None => return Ok(Err(reject("owner", format!("no user {e}")))),
            },
        };
        Ok(Ok(Resolved {
            contact,
            account,
            owner,
        }))
    }
}

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
        .query(Dialect::of(tx))
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
            ins.query(Dialect::of(tx))
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
            Ok(Upserted::Created)
        }
        Some(row) => {
            let same = vals.iter().enumerate().all(|(i, v)| match v {
                Arg::Int(x) => row.try_get::<Option<i64>, _>(i).ok().as_ref() == Some(x),
                Arg::Real(x) => row.try_get::<Option<f64>, _>(i).ok().as_ref() == Some(x),
                Arg::Text(x) | Arg::Json(x) => {
                    row.try_get::<Option<String>, _>(i).ok().as_ref() == Some(x)
                }
            });
            if same {
                return Ok(Upserted::Unchanged);
            }
            let mut up = Sql::new(&format!("UPDATE {table} SET ({}) = ", cols.join(", ")));
            up.list(vals).push(" WHERE external_id = ").arg(external_id);
            up.query(Dialect::of(tx))
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
            Ok(Upserted::Updated)
        }
    }
}

/// `upsert_by_key` for a whole table row (`columns[0]` the id, left to the database;
/// `columns[1]` the external id, the key), with `on_insert` naming a column written only when
/// the row is new.
async fn upsert_row(
    tx: &mut AnyConnection,
    table: &str,
    columns: &[&str],
    row: Vec<Arg>,
    on_insert: Option<&str>,
) -> StoreResult<Upserted> {
    let mut cols = Vec::with_capacity(columns.len());
    let mut vals = Vec::with_capacity(columns.len());
    let (mut key, mut extra) = (None, None);
    for (c, v) in columns.iter().zip(row) {
        match *c {
            "id" => {}
            "external_id" => key = Some(v),
            c if Some(c) == on_insert => extra = Some((c, v)),
            c => {
                cols.push(c);
                vals.push(v);
            }
        }
    }
    let Some(Arg::Text(Some(key))) = key else {
        return Err(StoreError::Invalid(format!(
            "{table}: a row without an external id"
        )));
    };
    upsert_by_key(tx, table, &key, &cols, vals, extra).await
}

/// On PostgreSQL, takes the rows of the existing contacts the records update, in the order every
/// refresh takes them (`derive::lock_contacts`): updated one by one in file order, they could
/// otherwise wait in a cycle with an append touching the same contacts.
async fn lock_imported_contacts(
    tx: &mut AnyConnection,
    dialect: Dialect,
    records: &[(usize, Record)],
) -> StoreResult<()> {
    if dialect != Dialect::Postgres {
        return Ok(());
    }
    let emails: Vec<&str> = records
        .iter()
        .filter_map(|(_, r)| match r {
            Record::Contact(c) => Some(c.email.as_str()),
            _ => None,
        })
        .collect();
    let mut ids = Vec::new();
    for chunk in emails.chunks(dialect.rows_per_statement(1)) {
        let mut q = Sql::new("SELECT id FROM contacts WHERE email IN ");
        q.list(chunk.iter().copied());
        ids.extend(crate::derive::ids_of(tx, q).await?);
    }
    crate::derive::lock_contacts(tx, dialect, &ids).await
}

#[async_trait]
impl ImportStore for SqlStore {
    #[tracing::instrument(skip_all, fields(rows = records.len()))]
    async fn import(
        &self,
        records: &[(usize, Record)],
        dry_run: bool,
    ) -> StoreResult<ImportReport> {
        let mut report = ImportReport::default();
        let mut resolver = Resolver::default();
        let mut changed_contacts = Vec::new();
        let mut imported_stages = Vec::new();
        // The custom attributes the batch's contacts have, listed once for the batch.
        let mut custom_names: std::collections::BTreeSet<&String> =
            std::collections::BTreeSet::new();
        let imported_at = chrono::Utc::now();
        let mut tx = self.begin().await?;
        lock_imported_contacts(&mut tx, self.dialect(), records).await?;
        for (row, r) in records {
            let links = match r {
                Record::Deal(_, l)
                | Record::Subscription(_, l)
                | Record::Order(_, l)
                | Record::Activity(_, l) => match resolver.resolve(&mut tx, *row, l).await? {
                    Ok(resolved) => Some(resolved),
                    Err(rejected) => {
                        report.rejected.push(rejected);
                        continue;
                    }
                },
                _ => None,
            };
            let (contact, account, owner) = links
                .map(|l| (l.contact, l.account, l.owner))
                .unwrap_or_default();
            let outcome = match r {
                Record::Contact(c) => {
                    let (id, outcome) = upsert_outcome(&mut tx, c).await?;
                    custom_names.extend(c.details.custom.keys());
                    if outcome != Upserted::Unchanged {
                        changed_contacts.push(id);
                    }
                    // A new contact's stage from the file is logged like one set by hand, so
                    // the transition has its time and cause and a replay starts from it. It
                    // is the stage the file gives now, whenever the contact was created: a
                    // replay to an earlier date must not see it. (An existing contact keeps
                    // the stage it has.)
                    if outcome == Upserted::Created && c.stage != LifecycleStage::Subscriber {
                        imported_stages.push(stage_set_by_hand(
                            id,
                            LifecycleStage::Subscriber,
                            c.stage,
                            "imported with the contact",
                            imported_at,
                        ));
                    }
                    outcome
                }
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
                Record::Deal(d, _) => {
                    let d = Deal {
                        contact_id: contact,
                        account_id: account,
                        owner_id: owner,
                        ..(**d).clone()
                    };
                    upsert_row(
                        &mut tx,
                        "deals",
                        &DEAL_COLUMNS,
                        deal_row(&d),
                        Some("created_at"),
                    )
                    .await?
                }
                Record::Subscription(s, _) => {
                    let s = Subscription {
                        account_id: account.unwrap_or(s.account_id),
                        ..s.clone()
                    };
                    let row = subscription_row(&s);
                    upsert_row(&mut tx, "subscriptions", &SUBSCRIPTION_COLUMNS, row, None).await?
                }
                Record::Order(o, _) => {
                    let o = Order {
                        account_id: account.unwrap_or(o.account_id),
                        ..o.clone()
                    };
                    upsert_row(&mut tx, "orders", &ORDER_COLUMNS, order_row(&o), None).await?
                }
                Record::Activity(a, _) => {
                    let a = Activity {
                        account_id: account,
                        contact_id: contact,
                        user_id: owner,
                        ..a.clone()
                    };
                    let row = activity_row(&a);
                    upsert_row(&mut tx, "activities", &ACTIVITY_COLUMNS, row, None).await?
                }
            };
            let counts = &mut report.counts;
            match outcome {
                Upserted::Created => counts.created += 1,
                Upserted::Updated => counts.updated += 1,
                Upserted::Unchanged => counts.unchanged += 1,
            }
        }
        crate::contacts::record_attributes(&mut tx, custom_names, ms(imported_at)).await?;
        if !imported_stages.is_empty() {
            let rows = imported_stages
                .iter()
                .map(|e| event_row(e, ms(imported_at)))
                .collect::<StoreResult<Vec<_>>>()?;
            // The append refreshes those contacts, every row of the file being in by now.
            append_in(&mut tx, self.dialect(), &imported_stages, rows).await?;
            let refreshed: std::collections::HashSet<ContactId> = imported_stages
                .iter()
                .filter_map(|e| e.contact_id)
                .collect();
            changed_contacts.retain(|c| !refreshed.contains(c));
        }
        // Fit rules read attributes: changed contacts are rescored in the same transaction.
        crate::derive::refresh_in(
            &mut tx,
            self.dialect(),
            &changed_contacts,
            chrono::Utc::now(),
        )
        .await?;
        if dry_run {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(report)
    }
}
