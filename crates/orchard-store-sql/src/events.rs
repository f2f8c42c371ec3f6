//! The append-only event log. A batch is written in one transaction: new events inserted (a
//! client id already in the log is skipped, which makes replays harmless), then their effect on
//! derived contact state applied, then one commit. Nothing is acknowledged before that commit.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::Utc;
use orchard_core::event::{Event, EventType, NewEvent};
use orchard_core::{ContactId, EventSeq};
use orchard_store::{AppendOutcome, EventStore, StoreError, StoreResult};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::{Arg, Dialect, Sql, SqlStore, backend_err, from_ms, get, json_err, ms, multi_insert};

pub(crate) const EVENT_COLUMNS: [&str; 7] = [
    "client_id",
    "type",
    "contact_id",
    "visitor_id",
    "at",
    "properties",
    "received_at",
];

pub(crate) fn event_row(e: &NewEvent, received_at: i64) -> StoreResult<Vec<Arg>> {
    Ok(vec![
        e.client_id.as_str().into(),
        e.event_type.as_str().into(),
        e.contact_id.map(ContactId::get).into(),
        e.visitor_id.as_deref().into(),
        ms(e.at).into(),
        serde_json::to_string(&e.properties)
            .map_err(json_err)?
            .into(),
        received_at.into(),
    ])
}

pub(crate) fn event_from_row(row: &AnyRow) -> StoreResult<Event> {
    let t: String = get(row, "type")?;
    let props: String = get(row, "properties")?;
    Ok(Event {
        seq: EventSeq::new(get(row, "seq")?),
        client_id: get(row, "client_id")?,
        event_type: EventType::parse(&t).map_err(|e| StoreError::Backend(Box::new(e)))?,
        contact_id: get::<Option<i64>>(row, "contact_id")?.map(ContactId::new),
        visitor_id: get(row, "visitor_id")?,
        at: from_ms(get(row, "at")?),
        properties: serde_json::from_str(&props).map_err(json_err)?,
    })
}

#[async_trait]
impl EventStore for SqlStore {
    #[tracing::instrument(skip_all, fields(batch = events.len()))]
    async fn append_events(&self, events: &[NewEvent]) -> StoreResult<AppendOutcome> {
        if events.is_empty() {
            return Ok(AppendOutcome::default());
        }
        let received_at = ms(chrono::Utc::now());
        let rows = events
            .iter()
            .map(|e| event_row(e, received_at))
            .collect::<StoreResult<Vec<_>>>()?;
        let mut tx = self.begin().await?;
        let outcome = append_in(&mut tx, self.dialect(), events, rows).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn contact_events(&self, id: ContactId, limit: i64) -> StoreResult<Vec<Event>> {
        // A contact's timeline includes what its visitor ids did before they identified, and
        // the events of contacts merged into it. Index lookups joined by UNION (which also drops an event found both ways): an OR here
        // made SQLite scan every anonymous event.
        const COLS: &str =
            "SELECT seq, client_id, type, contact_id, visitor_id, at, properties FROM events";
        let mut sql = Sql::new(COLS);
        sql.push(" WHERE contact_id = ")
            .arg(id.get())
            .push(" UNION ")
            .push(COLS)
            // Contacts merged into this one keep their own events in the log.
            .push(" WHERE contact_id IN (SELECT id FROM contacts WHERE merged_into = ")
            .arg(id.get())
            .push(") UNION ")
            .push(COLS)
            .push(" WHERE visitor_id IN (SELECT visitor_id FROM visitor_identities WHERE contact_id = ")
            .arg(id.get())
            .push(")")
            .push(" ORDER BY at DESC, seq DESC LIMIT ")
            .arg(limit.clamp(1, 10_000));
        sql.query(self.dialect)
            .fetch_all(self.pool())
            .await
            .map_err(backend_err)?
            .iter()
            .map(event_from_row)
            .collect()
    }
}

/// Event rows just stored by `insert_events`, which the caller hands to
/// `crate::history::append` once it holds their contacts' rows.
#[must_use = "stored events belong in their contacts' histories: crate::history::append"]
pub(crate) struct Inserted {
    /// (sequence number, client id) of each row stored.
    pub rows: Vec<(i64, String)>,
    /// SQLite: the largest sequence number before the insert (one writer, so the new rows are
    /// exactly those past it).
    pub after: Option<i64>,
}

/// Inserts event rows (`event_row`), skipping client ids already in the log. Every insert into
/// `events` but the bulk loader's goes through here (that one packs the histories in one pass
/// when the load finishes, `finish_load`; a load cut short leaves them to `orchard rebuild
/// --repack`); the caller then appends what was stored to the contacts' histories
/// (`crate::history::append`) in the same transaction, after taking the contacts' rows, so that
/// no history misses an event and history rows are only ever taken under their contacts' locks
/// (in id order, see `derive::lock_contacts`).
pub(crate) async fn insert_events(
    tx: &mut AnyConnection,
    dialect: Dialect,
    rows: Vec<Vec<Arg>>,
) -> StoreResult<Inserted> {
    if rows.is_empty() {
        return Ok(Inserted {
            rows: Vec::new(),
            after: None,
        });
    }
    // Which events were new, and their sequence numbers, as one JSON row rather than a row
    // per event: each row crosses sqlx's SQLite driver thread on its own. SQLite has one
    // writer, so the new rows are those past the largest sequence number before the insert;
    // PostgreSQL aggregates what the insert returns.
    let inserts = multi_insert(
        dialect,
        "events",
        &EVENT_COLUMNS,
        rows,
        "ON CONFLICT (client_id) DO NOTHING",
    );
    let mut stored_json: Vec<Option<String>> = Vec::new();
    let mut after = None;
    match dialect {
        Dialect::Sqlite => {
            let before = Sql::new("SELECT COALESCE(MAX(seq), 0) AS seq FROM events");
            let before: i64 = match before.fetch_all_in(&mut *tx).await?.first() {
                Some(row) => get(row, "seq")?,
                None => 0,
            };
            for sql in inserts {
                sql.query(dialect)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
            }
            let mut new = Sql::new(
                "SELECT json_group_array(json_array(seq, client_id)) AS stored FROM events \
                 WHERE seq > ",
            );
            new.arg(before);
            for row in new.fetch_all_in(&mut *tx).await? {
                stored_json.push(get(&row, "stored")?);
            }
            after = Some(before);
        }
        Dialect::Postgres => {
            for sql in inserts {
                let sql = sql.wrap(
                    "WITH ins AS (",
                    " RETURNING seq, client_id) SELECT \
                     json_agg(json_build_array(seq, client_id))::text AS stored FROM ins",
                );
                for row in sql.fetch_all_in(&mut *tx).await? {
                    stored_json.push(get(&row, "stored")?);
                }
            }
        }
    }
    let mut stored: Vec<(i64, String)> = Vec::new();
    for json in stored_json.into_iter().flatten() {
        stored.extend(serde_json::from_str::<Vec<(i64, String)>>(&json).map_err(json_err)?);
    }
    Ok(Inserted {
        rows: stored,
        after,
    })
}

/// Appends a batch inside the caller's transaction and applies its effect on derived contact
/// state there too; the caller commits. Shared by event ingestion and form capture.
pub(crate) async fn append_in(
    tx: &mut AnyConnection,
    dialect: Dialect,
    events: &[NewEvent],
    rows: Vec<Vec<Arg>>,
) -> StoreResult<AppendOutcome> {
    let inserted = insert_events(tx, dialect, rows).await?;
    let stored_ids: HashMap<&str, i64> = inserted
        .rows
        .iter()
        .map(|(seq, id)| (id.as_str(), *seq))
        .collect();

    // Apply: the latest activity per contact among the events stored now, then their scores
    // (segment membership joins this same step), all in the caller's transaction.
    let mut latest: HashMap<i64, i64> = HashMap::new();
    let mut outcome = AppendOutcome::default();
    let mut seen = HashSet::with_capacity(events.len());
    for e in events {
        let fresh = seen.insert(e.client_id.as_str());
        match stored_ids.get(e.client_id.as_str()) {
            Some(seq) if fresh => {
                outcome.stored.push(EventSeq::new(*seq));
                if let Some(c) = e.contact_id {
                    let t = latest.entry(c.get()).or_insert(i64::MIN);
                    *t = (*t).max(ms(e.at));
                }
            }
            _ => outcome.duplicates.push(e.client_id.clone()),
        }
    }
    // The contacts' rows first, in id order (see `lock_contacts`): the update of their
    // derived columns would otherwise lock them in any order. Events of a contact merged since
    // its batch was resolved count for the survivor (`lock_live`).
    let ids: Vec<i64> = latest.keys().copied().collect();
    let live = crate::derive::lock_live(tx, dialect, &ids).await?;
    let mut on_live: crate::IdMap<i64, i64> =
        crate::IdMap::with_capacity_and_hasher(latest.len(), Default::default());
    for (c, at) in latest {
        let t = on_live
            .entry(live.get(&c).copied().unwrap_or(c))
            .or_insert(i64::MIN);
        *t = (*t).max(at);
    }
    // The last activity is written with the derived columns (`refresh_locked`), one row
    // version per contact.
    let mut touched: Vec<ContactId> = on_live.keys().copied().map(ContactId::new).collect();
    touched.sort_unstable();
    // Their rows were taken above.
    crate::history::append(tx, dialect, &inserted).await?;
    crate::derive::refresh_locked(tx, dialect, &touched, Utc::now(), &on_live).await?;
    Ok(outcome)
}
