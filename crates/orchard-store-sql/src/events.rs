//! The append-only event log. A batch is written in one transaction: new events inserted (a
//! client id already in the log is skipped, which makes replays harmless), then their effect on
//! derived contact state applied, then one commit. Nothing is acknowledged before that commit.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::Utc;
use orchard_core::event::{Event, EventType, NewEvent};
use orchard_core::{ContactId, EventSeq};
use orchard_store::{AppendOutcome, EventStore, RecordedType, StoreError, StoreResult};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use std::sync::Arc;

use crate::{
    Arg, Dialect, Sql, SqlStore, WriteTx, backend_err, from_ms, get, json_err, ms, multi_insert,
};

pub(crate) const EVENT_COLUMNS: [&str; 7] = [
    "client_id",
    "type",
    "contact_id",
    "visitor_id",
    "at",
    "properties",
    "received_at",
];

/// Adds the types of the event rows `rows` (aliased `e`, with their filter) that `event_types`
/// does not hold yet, in type order. Appends run it over the rows just stored (`store_events`);
/// the bulk loader and `orchard rebuild --repack` over the whole log on PostgreSQL
/// (`record_all_types`; SQLite's way there is row by row).
fn record_types(dialect: Dialect, rows: Sql) -> Sql {
    let mut q = Sql::new(&format!(
        "{} INTO event_types (type, first_recorded_at) \
         SELECT e.type, MIN(e.received_at) FROM ",
        dialect.insert()
    ));
    q.append(rows)
        .push(" GROUP BY e.type ORDER BY e.type ON CONFLICT (type) DO NOTHING");
    q
}

/// Adds every type the log holds that `event_types` lacks (written by a process older than
/// the table, or rows changed by hand), in the caller's transaction; returns how many.
pub(crate) async fn record_all_types(tx: &mut AnyConnection, dialect: Dialect) -> StoreResult<u64> {
    let sql = match dialect {
        // Row by row into the small table, not grouped (see `record_all_names`).
        Dialect::Sqlite => Sql::new(
            "INSERT INTO event_types (type, first_recorded_at) \
             SELECT e.type, e.received_at FROM events e WHERE true \
             ON CONFLICT (type) DO UPDATE SET first_recorded_at = excluded.first_recorded_at \
             WHERE excluded.first_recorded_at < event_types.first_recorded_at",
        ),
        Dialect::Postgres => record_types(dialect, Sql::new("events e")),
    };
    let before = count_rows(tx, "event_types").await?;
    sql.query(dialect)
        .execute(&mut *tx)
        .await
        .map_err(backend_err)?;
    Ok(count_rows(tx, "event_types").await? - before)
}

/// Property names by event type: the top-level keys of events' properties that the rule
/// language can write (`orchard_core::rules::is_property_name`), each pair once, in order.
pub(crate) type PropertyNames = std::collections::BTreeSet<(String, String)>;

/// The property names `events` carry.
pub(crate) fn property_names<'a>(events: impl IntoIterator<Item = &'a NewEvent>) -> PropertyNames {
    // Borrowed while gathering: a batch repeats the same few pairs a thousand times.
    let mut seen: std::collections::BTreeSet<(&str, &str)> = std::collections::BTreeSet::new();
    for e in events {
        for k in e.properties.keys() {
            if orchard_core::rules::is_property_name(k) {
                seen.insert((e.event_type.as_str(), k));
            }
        }
    }
    seen.into_iter()
        .map(|(t, k)| (t.to_owned(), k.to_owned()))
        .collect()
}

/// Adds `names` that `event_properties` does not hold yet, as first recorded at `at`, in
/// (type, key) order (see `record_types` for why an order).
pub(crate) fn record_names(dialect: Dialect, names: &PropertyNames, at: i64) -> Vec<Sql> {
    let rows = names
        .iter()
        .map(|(t, k)| vec![t.as_str().into(), k.as_str().into(), at.into()])
        .collect();
    multi_insert(
        dialect,
        "event_properties",
        &["type", "key", "first_recorded_at"],
        rows,
        "ON CONFLICT (type, key) DO NOTHING",
    )
}

/// Adds every property name the log's events carry that `event_properties` lacks (events
/// written by a process older than the table, or by hand), in the caller's transaction: a
/// scan of every event's properties, as the migration that made the table ran. Returns how
/// many.
pub(crate) async fn record_all_names(tx: &mut AnyConnection, dialect: Dialect) -> StoreResult<u64> {
    let sql = match dialect {
        // Row by row into the small table, not grouped: SQLite sorts every row of a GROUP BY
        // first (in memory here: 3 GB for the 26 million events of a million demo contacts).
        Dialect::Sqlite => {
            "INSERT INTO event_properties (type, key, first_recorded_at) \
             SELECT e.type, j.key, e.received_at FROM events e, \
             json_each(CASE WHEN json_valid(e.properties) \
             AND json_type(e.properties) = 'object' THEN e.properties ELSE '{}' END) j \
             WHERE j.key GLOB '[A-Za-z_]*' AND j.key NOT GLOB '*[^A-Za-z0-9_.]*' \
             AND length(j.key) <= 64 \
             ON CONFLICT (type, key) DO UPDATE SET first_recorded_at = excluded.first_recorded_at \
             WHERE excluded.first_recorded_at < event_properties.first_recorded_at"
        }
        // PostgreSQL aggregates in a hash of the few groups, and refuses an upsert meeting one
        // key twice.
        Dialect::Postgres => {
            "INSERT INTO event_properties (type, key, first_recorded_at) \
             SELECT e.type, k.key, MIN(e.received_at) FROM events e, \
             json_object_keys(CASE WHEN json_typeof(e.properties::json) = 'object' \
             THEN e.properties::json ELSE '{}'::json END) AS k(key) \
             WHERE k.key ~ '^[A-Za-z_][A-Za-z0-9_.]{0,63}$' GROUP BY e.type, k.key \
             ORDER BY e.type, k.key ON CONFLICT (type, key) DO NOTHING"
        }
    };
    // What was missing is what the table gained (SQLite's way counts an earlier time found
    // for a name listed as a change too).
    let before = count_rows(tx, "event_properties").await?;
    Sql::new(sql)
        .query(dialect)
        .execute(&mut *tx)
        .await
        .map_err(backend_err)?;
    Ok(count_rows(tx, "event_properties").await? - before)
}

/// The rows of a small table (the lists of types and names).
async fn count_rows(tx: &mut AnyConnection, table: &str) -> StoreResult<u64> {
    let rows = Sql::new(&format!("SELECT COUNT(*) AS n FROM {table}"))
        .fetch_all_in(&mut *tx)
        .await?;
    let n: i64 = rows.first().map(|r| get(r, "n")).transpose()?.unwrap_or(0);
    Ok(n as u64)
}

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
    /// Batches that arrive while another batch is being written (on SQLite, while any write
    /// holds the turn) are written together after it: one transaction, one refresh of their
    /// contacts, one commit (`Appends`). Each caller still hears back only once its own events
    /// are committed with their effect.
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
        let keys: Vec<EventKey> = events.iter().map(EventKey::of).collect();
        let names = property_names(events);
        let (done, answer) = tokio::sync::oneshot::channel();
        let lead = {
            let mut waiting = lock(&self.appends);
            waiting.batches.push(Submitted {
                keys,
                rows,
                names,
                done,
            });
            !std::mem::replace(&mut waiting.leading, true)
        };
        if lead {
            // A task of its own, not the caller's future: a caller that goes away (a client
            // hanging up) must not cut short a transaction that carries other callers' events.
            // The guard exists before the task does: a task dropped unpolled (a runtime
            // shutting down) still hands the lead back.
            let leading = Leading(Some(Arc::clone(&self.appends)));
            tokio::spawn(self.clone().lead_appends(leading));
        }
        answer.await.map_err(|_| {
            StoreError::Backend("the task writing this batch ended without an answer".into())
        })?
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

    async fn event_types(&self) -> StoreResult<Vec<RecordedType>> {
        let mut types: Vec<RecordedType> =
            Sql::new("SELECT type, first_recorded_at FROM event_types ORDER BY type")
                .query(self.dialect)
                .fetch_all(self.pool())
                .await
                .map_err(backend_err)?
                .iter()
                .map(|row| {
                    Ok(RecordedType {
                        event_type: get(row, "type")?,
                        first_recorded_at: from_ms(get(row, "first_recorded_at")?),
                        properties: Vec::new(),
                        all_properties: true,
                    })
                })
                .collect::<StoreResult<_>>()?;
        // In byte order, whatever the database's collation, for the search below.
        types.sort_by(|a, b| a.event_type.cmp(&b.event_type));
        // At most one more than are listed per type, to know whether there are more.
        let mut names = Sql::new(
            "SELECT type, key FROM (SELECT type, key, \
             ROW_NUMBER() OVER (PARTITION BY type ORDER BY key) AS n FROM event_properties) AS p \
             WHERE n <= ",
        );
        names.arg(orchard_store::PROPERTIES_LISTED as i64 + 1);
        let names = names
            .query(self.dialect)
            .fetch_all(self.pool())
            .await
            .map_err(backend_err)?;
        for row in &names {
            let (t, key): (String, String) = (get(row, "type")?, get(row, "key")?);
            // The names of a type not listed (only a replayed event had it) are left out.
            if let Ok(i) = types.binary_search_by(|r| r.event_type.as_str().cmp(&t)) {
                types[i].properties.push(key);
            }
        }
        for t in &mut types {
            t.properties.sort();
            t.all_properties = t.properties.len() <= orchard_store::PROPERTIES_LISTED;
            t.properties.truncate(orchard_store::PROPERTIES_LISTED);
        }
        Ok(types)
    }
}

/// Inserts event rows (`event_row`), skipping client ids already in the log, and appends what
/// was stored to the contacts' histories (`crate::history`), so that no history misses an
/// event. Every insert into `events` but the bulk loader's goes through here (that one packs
/// the histories in one pass when the load finishes, `finish_load`; a load cut short leaves
/// them to `orchard rebuild --repack`). The caller has taken the rows of the events' contacts
/// in this transaction (`derive::lock_live`), so that history rows are only ever taken under
/// their contacts' locks, in id order. Returns (sequence number, client id) of each row
/// stored.
pub(crate) async fn store_events(
    tx: &mut AnyConnection,
    dialect: Dialect,
    rows: Vec<Vec<Arg>>,
    names: &PropertyNames,
) -> StoreResult<Vec<(i64, String)>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    // The events' property names (`property_names`), listed for warnings about properties
    // no event of a type has had. Those of a replayed event too: whether stored now or
    // before, they are names such events carry.
    let recorded_at = ms(Utc::now());
    // Which events were new, and their sequence numbers, as one JSON row rather than a row
    // per event: each row crosses sqlx's SQLite driver thread on its own. SQLite has one
    // writer, so the new rows are those past the largest sequence number before the insert;
    // PostgreSQL aggregates what the insert returns. On PostgreSQL each insert appends to
    // the histories in its own statement, from the rows it returns; on SQLite the inserts,
    // the append and the read of what was stored go to sqlx's worker thread as one text
    // while the batch is small (`crate::in_turn`).
    let inserts = multi_insert(
        dialect,
        "events",
        &EVENT_COLUMNS,
        rows,
        "ON CONFLICT (client_id) DO NOTHING",
    );
    let mut stored_json: Vec<Option<String>> = Vec::new();
    match dialect {
        Dialect::Sqlite => {
            let before = Sql::new("SELECT COALESCE(MAX(seq), 0) AS seq FROM events");
            let before: i64 = match before.fetch_all_in(&mut *tx).await?.first() {
                Some(row) => get(row, "seq")?,
                None => 0,
            };
            let mut statements = inserts;
            statements.push(crate::history::append_after(dialect, before));
            let mut rows = Sql::new("events e WHERE e.seq > ");
            rows.arg(before);
            statements.push(record_types(dialect, rows));
            statements.extend(record_names(dialect, names, recorded_at));
            let mut new = Sql::new(
                "SELECT json_group_array(json_array(seq, client_id)) AS stored FROM events \
                 WHERE seq > ",
            );
            new.arg(before);
            statements.push(new);
            // Only the last statement returns a row.
            for sql in crate::in_turn(statements) {
                for row in sql.fetch_all_in(&mut *tx).await? {
                    stored_json.push(get(&row, "stored")?);
                }
            }
        }
        Dialect::Postgres => {
            let history = crate::history::append_returned(dialect);
            for sql in inserts {
                let sql = sql.wrap(
                    "WITH ins AS (",
                    &format!(
                        " RETURNING seq, client_id, type, contact_id, at, properties), \
                         history AS ({history}) SELECT \
                         json_agg(json_build_array(seq, client_id))::text AS stored FROM ins"
                    ),
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
    if dialect == Dialect::Postgres && !stored.is_empty() {
        // The stored rows' types, once per call and in type order whatever statements the
        // rows took, so that two appends adding the same new types take them in one order (a
        // CTE per insert statement took each statement's own, and a batch of several could meet
        // another in the opposite order). Only a never-seen type waits on another transaction.
        let mut rows = Sql::new("events e WHERE e.seq");
        rows.in_ids(dialect, stored.iter().map(|(seq, _)| *seq));
        record_types(dialect, rows)
            .query(dialect)
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?;
    }
    if dialect == Dialect::Postgres {
        for sql in record_names(dialect, names, recorded_at) {
            sql.query(dialect)
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
        }
    }
    Ok(stored)
}

/// Batches waiting to be written, and whether a task is writing them (`lead_appends`). On
/// PostgreSQL, where writers need no turn, this makes one append transaction at a time per
/// process: sixteen clients sending single events, each a transaction and a commit of its own
/// before, ingested 40% more once those that arrived during one transaction shared the next.
#[derive(Default)]
pub(crate) struct Appends {
    batches: Vec<Submitted>,
    leading: bool,
}

impl std::fmt::Debug for Appends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appends")
            .field("batches", &self.batches.len())
            .field("leading", &self.leading)
            .finish()
    }
}

/// One caller's batch: what its outcome is made of, its rows, and where the outcome goes.
struct Submitted {
    keys: Vec<EventKey>,
    rows: Vec<Vec<Arg>>,
    names: PropertyNames,
    done: tokio::sync::oneshot::Sender<StoreResult<AppendOutcome>>,
}

/// Events in one transaction at most, so that a burst of callers does not make one
/// transaction, and its wait, without bound.
const GROUP_EVENTS: usize = 10_000;

fn lock(appends: &std::sync::Mutex<Appends>) -> std::sync::MutexGuard<'_, Appends> {
    // Nothing is left half-done under this lock (a push, a take), so a panic elsewhere that
    // poisoned it left it consistent.
    appends
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Clears `leading` and fails the batches left waiting if the task writing them ends without
/// finishing (a panic, or the runtime shutting down), so that no caller waits forever and the
/// next batch starts a new task. Disarmed (`None`) when the task hands the lead back itself.
struct Leading(Option<Arc<std::sync::Mutex<Appends>>>);

impl Drop for Leading {
    fn drop(&mut self) {
        let Some(appends) = self.0.take() else {
            return;
        };
        let mut appends = lock(&appends);
        appends.leading = false;
        for b in appends.batches.drain(..) {
            let _ = b.done.send(Err(StoreError::Backend(
                "the task writing event batches ended; nothing of this batch was written".into(),
            )));
        }
    }
}

impl SqlStore {
    /// Writes waiting batches until none is left: each time a transaction can begin (on SQLite,
    /// when the writer's turn comes), every batch that arrived meanwhile (up to
    /// `GROUP_EVENTS` events) goes into it.
    /// Uses this clone's `writer_wait` for every batch it writes.
    async fn lead_appends(self, mut leading: Leading) {
        loop {
            let waited = {
                let mut appends = lock(&self.appends);
                if appends.batches.is_empty() {
                    appends.leading = false;
                    leading.0 = None;
                    return;
                }
                appends.batches.len()
            };
            let turn = match self.begin().await {
                Ok(tx) => tx,
                Err(e) => {
                    // Only the batches that waited the whole time are answered; those that
                    // came meanwhile get a wait of their own.
                    let failed: Vec<Submitted> =
                        lock(&self.appends).batches.drain(..waited).collect();
                    for b in failed {
                        let _ = b.done.send(Err(copy_error(&e)));
                    }
                    continue;
                }
            };
            let group = {
                let mut appends = lock(&self.appends);
                let mut events = 0;
                let take = appends
                    .batches
                    .iter()
                    .take_while(|b| {
                        let first = events == 0;
                        events += b.keys.len();
                        first || events <= GROUP_EVENTS
                    })
                    .count();
                appends.batches.drain(..take).collect::<Vec<_>>()
            };
            self.write_group(turn, group).await;
        }
    }

    /// One transaction for the group. Should it fail in writing, each batch is tried again
    /// alone, so that one batch that cannot be written does not fail the others with it; a
    /// failure that is no batch's doing (the database busy, a retry unable to begin) answers
    /// every batch left with it at once rather than making each wait its turn to fail.
    async fn write_group(&self, mut tx: WriteTx, mut group: Vec<Submitted>) {
        self.append_transactions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if group.len() == 1 {
            let b = group.pop().expect("one batch");
            let result = write_alone(tx, self.dialect(), &b.keys, b.rows, &b.names).await;
            let _ = b.done.send(result);
            return;
        }
        let keys: Vec<&EventKey> = group.iter().flat_map(|b| &b.keys).collect();
        let rows: Vec<Vec<Arg>> = group.iter().flat_map(|b| b.rows.iter().cloned()).collect();
        let names: PropertyNames = group.iter().flat_map(|b| b.names.iter().cloned()).collect();
        let written = async {
            let stored = append_keyed(&mut tx, self.dialect(), &keys, rows, &names).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(stored)
        }
        .await;
        match written {
            Ok(stored) => {
                debug_assert_eq!(stored.len(), keys.len(), "an outcome per event");
                let mut stored = stored.as_slice();
                for b in group {
                    let (own, rest) = stored.split_at(b.keys.len());
                    stored = rest;
                    let _ = b.done.send(Ok(outcome(&b.keys, own)));
                }
            }
            Err(e @ StoreError::Busy(_)) => answer_all(group, &e),
            Err(_) => {
                let mut left = group.into_iter();
                while let Some(b) = left.next() {
                    let tx = match self.begin().await {
                        Ok(tx) => tx,
                        Err(e) => {
                            let _ = b.done.send(Err(copy_error(&e)));
                            answer_all(left.collect(), &e);
                            return;
                        }
                    };
                    self.append_transactions
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let _ = b
                        .done
                        .send(write_alone(tx, self.dialect(), &b.keys, b.rows, &b.names).await);
                }
            }
        }
    }

    /// Transactions event batches have been written in, grouped or alone.
    pub fn append_transactions(&self) -> u64 {
        self.append_transactions
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

async fn write_alone(
    mut tx: WriteTx,
    dialect: Dialect,
    keys: &[EventKey],
    rows: Vec<Vec<Arg>>,
    names: &PropertyNames,
) -> StoreResult<AppendOutcome> {
    let stored = append_keyed(&mut tx, dialect, keys, rows, names).await?;
    tx.commit().await?;
    Ok(outcome(keys, &stored))
}

fn answer_all(batches: Vec<Submitted>, e: &StoreError) {
    for b in batches {
        let _ = b.done.send(Err(copy_error(e)));
    }
}

/// The same failure for another caller of a group (`StoreError` holds a boxed source and is
/// not `Clone`).
fn copy_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::NotFound => StoreError::NotFound,
        StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
        StoreError::Invalid(m) => StoreError::Invalid(m.clone()),
        StoreError::Busy(m) => StoreError::Busy(m.clone()),
        StoreError::Backend(source) => StoreError::Backend(source.to_string().into()),
    }
}

/// What the append step reads of an event: its client id, contact and time.
pub(crate) struct EventKey {
    client_id: String,
    contact: Option<i64>,
    at: i64,
}

impl EventKey {
    fn of(e: &NewEvent) -> Self {
        Self {
            client_id: e.client_id.clone(),
            contact: e.contact_id.map(ContactId::get),
            at: ms(e.at),
        }
    }
}

/// The outcome of a batch from what became of each of its events (`None`: a duplicate).
fn outcome<K: std::borrow::Borrow<EventKey>>(keys: &[K], stored: &[Option<i64>]) -> AppendOutcome {
    let mut out = AppendOutcome::default();
    for (k, s) in keys.iter().zip(stored) {
        match s {
            Some(seq) => out.stored.push(EventSeq::new(*seq)),
            None => out.duplicates.push(k.borrow().client_id.clone()),
        }
    }
    out
}

/// Appends a batch inside the caller's transaction and applies its effect on derived contact
/// state there too; the caller commits. Shared by form capture and merges' single events.
pub(crate) async fn append_in(
    tx: &mut AnyConnection,
    dialect: Dialect,
    events: &[NewEvent],
    rows: Vec<Vec<Arg>>,
) -> StoreResult<AppendOutcome> {
    let keys: Vec<EventKey> = events.iter().map(EventKey::of).collect();
    let stored = append_keyed(tx, dialect, &keys, rows, &property_names(events)).await?;
    Ok(outcome(&keys, &stored))
}

/// The append step: the rows inserted (a client id already in the log, or earlier in `keys`,
/// stores nothing), added to their contacts' histories, and their contacts refreshed, all in
/// the caller's transaction. Returns each event's sequence number, `None` for a duplicate.
async fn append_keyed<K: std::borrow::Borrow<EventKey>>(
    tx: &mut AnyConnection,
    dialect: Dialect,
    keys: &[K],
    rows: Vec<Vec<Arg>>,
    names: &PropertyNames,
) -> StoreResult<Vec<Option<i64>>> {
    // The contacts' rows first, in id order (see `lock_contacts`), before their histories are
    // appended to and their derived columns updated, which would otherwise lock them in any
    // order. Taken before the insert, also for events that turn out to be duplicates: a
    // replayed batch waits behind a refresh of its contacts and holds their rows until its
    // commit, though it changes nothing. Taken after it, a transaction held a contact's row
    // while waiting on another's uncommitted client id, which could be waiting for that row.
    // Events of a contact merged since its batch was resolved count for the survivor
    // (`lock_live`).
    let ids: Vec<i64> = keys.iter().filter_map(|k| k.borrow().contact).collect();
    let live = crate::derive::lock_live(tx, dialect, &ids).await?;
    let inserted = store_events(tx, dialect, rows, names).await?;
    let stored_ids: HashMap<&str, i64> = inserted
        .iter()
        .map(|(seq, id)| (id.as_str(), *seq))
        .collect();

    // Apply: the latest activity per contact among the events stored now, then their scores
    // (segment membership joins this same step), all in the caller's transaction.
    let mut latest: HashMap<i64, i64> = HashMap::new();
    let mut stored = Vec::with_capacity(keys.len());
    let mut seen = HashSet::with_capacity(keys.len());
    for k in keys {
        let k = k.borrow();
        let fresh = seen.insert(k.client_id.as_str());
        match stored_ids.get(k.client_id.as_str()) {
            Some(seq) if fresh => {
                stored.push(Some(*seq));
                if let Some(c) = k.contact {
                    let t = latest.entry(c).or_insert(i64::MIN);
                    *t = (*t).max(k.at);
                }
            }
            _ => stored.push(None),
        }
    }
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
    crate::derive::refresh_locked(tx, dialect, &touched, Utc::now(), &on_live).await?;
    Ok(stored)
}
