//! Scores kept current: the live rule set, and `rescore_in`, which recomputes a group of
//! contacts from their events with `orchard_core::scoring::score` inside the caller's
//! transaction. Appends call it for the contacts they touched, so a score is visible as soon as
//! its event is acknowledged; the due-time worker calls it for contacts whose windows moved; a
//! rebuild calls it for everyone. One function for all three, so they cannot disagree.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use orchard_core::account::Account;
use orchard_core::contact::Contact;
use orchard_core::event::Event;
use orchard_core::scoring::{RuleSet, RuleSetDef, ScoreChange, score};
use orchard_core::{AccountId, ContactId, EventSeq, UserId};
use orchard_store::{RuleSetVersion, ScoringStore, StoreError, StoreResult, StoredScoreChange};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::contacts::{SELECT as CONTACTS, contact_from_row};
use crate::events::event_from_row;
use crate::{Arg, Dialect, Sql, SqlStore, backend_err, from_ms, get, json_err, ms, multi_insert};

/// Contacts rescored per round of statements.
const CHUNK: usize = 500;

fn version_from_row(row: &AnyRow) -> StoreResult<RuleSetVersion> {
    let definition: String = get(row, "definition")?;
    Ok(RuleSetVersion {
        version: get(row, "version")?,
        definition: serde_json::from_str(&definition).map_err(json_err)?,
        created_at: from_ms(get(row, "created_at")?),
        live_since: get::<Option<i64>>(row, "live_since")?.map(from_ms),
    })
}

const RULE_SET_COLUMNS: &str =
    "SELECT version, name, definition, created_at, live_since FROM rule_sets";

pub(crate) async fn live_in(tx: &mut AnyConnection) -> StoreResult<Option<RuleSet>> {
    let sql = Sql::new(&format!(
        "{RULE_SET_COLUMNS} WHERE live_since IS NOT NULL ORDER BY live_since DESC, version DESC LIMIT 1"
    ));
    let Some(row) = sql
        .query()
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend_err)?
    else {
        return Ok(None);
    };
    let v = version_from_row(&row)?;
    RuleSet::compile(&v.definition, v.version)
        .map(Some)
        .map_err(|e| StoreError::Invalid(format!("the live rule set no longer compiles: {e}")))
}

fn account_from_row(row: &AnyRow) -> StoreResult<Account> {
    Ok(Account {
        id: AccountId::new(get(row, "id")?),
        external_id: get(row, "external_id")?,
        name: get(row, "name")?,
        domain: get(row, "domain")?,
        industry: get(row, "industry")?,
        employees: get(row, "employees")?,
        region: get(row, "region")?,
        country: get(row, "country")?,
        owner_id: get::<Option<i64>>(row, "owner_id")?.map(UserId::new),
        service_hours: get(row, "service_hours")?,
        cost_to_serve: get(row, "cost_to_serve")?,
        created_at: from_ms(get(row, "created_at")?),
    })
}

/// Recomputes the scores of `ids` (live contacts) as of `now` with the live rule set, inside
/// the caller's transaction: score changes replaced, score and due time updated. Does nothing
/// when no rule set is live.
pub(crate) async fn rescore_in(
    tx: &mut AnyConnection,
    dialect: Dialect,
    ids: &[ContactId],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let Some(set) = live_in(tx).await? else {
        return Ok(());
    };
    for chunk in ids.chunks(CHUNK) {
        rescore_chunk(tx, dialect, &set, chunk, now).await?;
    }
    Ok(())
}

async fn rescore_chunk(
    tx: &mut AnyConnection,
    dialect: Dialect,
    set: &RuleSet,
    ids: &[ContactId],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let raw: Vec<i64> = ids.iter().map(|c| c.get()).collect();
    let mut q = Sql::new(CONTACTS);
    q.push(" WHERE merged_into IS NULL AND id IN ")
        .list(raw.iter().copied());
    let contacts: Vec<Contact> = q
        .query()
        .fetch_all(&mut *tx)
        .await
        .map_err(backend_err)?
        .iter()
        .map(contact_from_row)
        .collect::<StoreResult<_>>()?;
    if contacts.is_empty() {
        return Ok(());
    }
    let live: Vec<i64> = contacts.iter().map(|c| c.id.get()).collect();

    let account_ids: Vec<i64> = contacts
        .iter()
        .filter_map(|c| c.account_id)
        .map(AccountId::get)
        .collect();
    let mut accounts: HashMap<AccountId, Account> = HashMap::new();
    if !account_ids.is_empty() {
        let mut q = Sql::new(
            "SELECT id, external_id, name, domain, industry, employees, region, country, owner_id, \
             service_hours, cost_to_serve, created_at FROM accounts WHERE id IN ",
        );
        q.list(account_ids);
        for row in q.query().fetch_all(&mut *tx).await.map_err(backend_err)? {
            let a = account_from_row(&row)?;
            accounts.insert(a.id, a);
        }
    }

    // Each contact's events: its own, those of contacts merged into it, and what its visitor
    // ids did before it identified, as on its timeline.
    const COLS: &str = "e.seq, e.client_id, e.type, e.contact_id, e.visitor_id, e.at, e.properties";
    let mut q = Sql::new(&format!(
        "SELECT {COLS}, COALESCE(c.merged_into, c.id) AS owner FROM events e \
         JOIN contacts c ON c.id = e.contact_id WHERE e.contact_id IN "
    ));
    q.list(live.iter().copied())
        .push(&format!(
            " UNION ALL SELECT {COLS}, c.merged_into AS owner FROM events e \
             JOIN contacts c ON c.id = e.contact_id WHERE c.merged_into IN "
        ))
        .list(live.iter().copied())
        .push(&format!(
            " UNION ALL SELECT {COLS}, v.contact_id AS owner FROM events e \
             JOIN visitor_identities v ON v.visitor_id = e.visitor_id \
             WHERE e.contact_id IS NULL AND v.contact_id IN "
        ))
        .list(live.iter().copied());
    let mut events: HashMap<i64, Vec<Event>> = HashMap::new();
    for row in q.query().fetch_all(&mut *tx).await.map_err(backend_err)? {
        events
            .entry(get(&row, "owner")?)
            .or_default()
            .push(event_from_row(&row)?);
    }

    let mut changes: Vec<Vec<Arg>> = Vec::new();
    let mut updates: Vec<[Option<i64>; 3]> = Vec::with_capacity(contacts.len());
    for c in &contacts {
        let account = c.account_id.and_then(|a| accounts.get(&a));
        let own = events
            .get(&c.id.get())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let scored = score(set, c, account, own, now);
        for ch in &scored.changes {
            changes.push(vec![
                c.id.get().into(),
                set.version.into(),
                ch.rule_id.as_str().into(),
                ch.points.into(),
                ms(ch.at).into(),
                ch.event.map(EventSeq::get).into(),
                ch.cause.as_str().into(),
            ]);
        }
        updates.push([Some(c.id.get()), Some(scored.score), scored.due.map(ms)]);
    }
    let mut del = Sql::new("DELETE FROM score_changes WHERE contact_id IN ");
    del.list(live.iter().copied());
    del.query().execute(&mut *tx).await.map_err(backend_err)?;
    for sql in multi_insert(
        dialect,
        "score_changes",
        &[
            "contact_id",
            "rule_version",
            "rule_id",
            "points",
            "at",
            "event_seq",
            "cause",
        ],
        changes,
        "",
    ) {
        sql.query().execute(&mut *tx).await.map_err(backend_err)?;
    }
    for chunk in updates.chunks(dialect.rows_per_statement(3)) {
        let mut up = Sql::new("WITH v(id, score, due) AS (VALUES ");
        for (i, [id, s, due]) in chunk.iter().enumerate() {
            if i > 0 {
                up.push(", ");
            }
            up.list([Arg::Int(*id), Arg::Int(*s), Arg::Int(*due)]);
        }
        up.push(
            ") UPDATE contacts SET score = CAST(v.score AS BIGINT), \
             score_due_at = CAST(v.due AS BIGINT) FROM v WHERE contacts.id = v.id",
        );
        up.query().execute(&mut *tx).await.map_err(backend_err)?;
    }
    Ok(())
}

impl SqlStore {
    /// The `id` column of a query's rows, as contact ids.
    async fn contact_ids(&self, sql: Sql) -> StoreResult<Vec<ContactId>> {
        sql.query()
            .fetch_all(self.pool())
            .await
            .map_err(backend_err)?
            .iter()
            .map(|r| get::<i64>(r, "id").map(ContactId::new))
            .collect()
    }
}

#[async_trait]
impl ScoringStore for SqlStore {
    async fn save_rule_set(
        &self,
        def: &RuleSetDef,
        live: bool,
        at: DateTime<Utc>,
    ) -> StoreResult<i64> {
        RuleSet::compile(def, 0).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let json = serde_json::to_string(def).map_err(json_err)?;
        let mut ins =
            Sql::new("INSERT INTO rule_sets (name, definition, created_at, live_since) VALUES ");
        ins.list([
            Arg::from(def.name.as_str()),
            json.into(),
            ms(at).into(),
            Arg::Int(live.then(|| ms(at))),
        ])
        .push(" RETURNING version");
        let row = ins
            .query()
            .fetch_one(self.pool())
            .await
            .map_err(backend_err)?;
        get(&row, "version")
    }

    async fn live_rule_set(&self) -> StoreResult<Option<RuleSetVersion>> {
        let sql = Sql::new(&format!(
            "{RULE_SET_COLUMNS} WHERE live_since IS NOT NULL ORDER BY live_since DESC, version DESC LIMIT 1"
        ));
        sql.query()
            .fetch_optional(self.pool())
            .await
            .map_err(backend_err)?
            .map(|r| version_from_row(&r))
            .transpose()
    }

    async fn rule_sets(&self) -> StoreResult<Vec<RuleSetVersion>> {
        let sql = Sql::new(&format!("{RULE_SET_COLUMNS} ORDER BY version DESC"));
        sql.query()
            .fetch_all(self.pool())
            .await
            .map_err(backend_err)?
            .iter()
            .map(version_from_row)
            .collect()
    }

    #[tracing::instrument(skip_all, fields(contacts = ids.len()))]
    async fn rescore(&self, ids: &[ContactId], now: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.pool().begin().await.map_err(backend_err)?;
        rescore_in(&mut tx, self.dialect(), ids, now).await?;
        tx.commit().await.map_err(backend_err)
    }

    async fn due_for_rescore(&self, now: DateTime<Utc>, limit: i64) -> StoreResult<Vec<ContactId>> {
        let mut sql = Sql::new("SELECT id FROM contacts WHERE score_due_at <= ");
        sql.arg(ms(now))
            .push(" ORDER BY score_due_at LIMIT ")
            .arg(limit.clamp(1, 100_000));
        self.contact_ids(sql).await
    }

    async fn contact_ids_after(
        &self,
        after: Option<ContactId>,
        limit: i64,
    ) -> StoreResult<Vec<ContactId>> {
        let mut sql = Sql::new("SELECT id FROM contacts WHERE merged_into IS NULL AND id > ");
        sql.arg(after.map_or(0, ContactId::get))
            .push(" ORDER BY id LIMIT ")
            .arg(limit.clamp(1, 100_000));
        self.contact_ids(sql).await
    }

    async fn score_changes(&self, id: ContactId) -> StoreResult<Vec<StoredScoreChange>> {
        let mut sql = Sql::new(
            "SELECT rule_version, rule_id, points, at, event_seq, cause FROM score_changes \
             WHERE contact_id = ",
        );
        sql.arg(id.get())
            .push(" ORDER BY at, COALESCE(event_seq, -1), rule_id");
        sql.query()
            .fetch_all(self.pool())
            .await
            .map_err(backend_err)?
            .iter()
            .map(|r| {
                Ok(StoredScoreChange {
                    version: get(r, "rule_version")?,
                    change: ScoreChange {
                        rule_id: get(r, "rule_id")?,
                        points: get(r, "points")?,
                        at: from_ms(get(r, "at")?),
                        event: get::<Option<i64>>(r, "event_seq")?.map(EventSeq::new),
                        cause: get(r, "cause")?,
                    },
                })
            })
            .collect()
    }
}
