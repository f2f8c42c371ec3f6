//! Derived state kept current: scores (the live rule set) and segment memberships. `refresh_in`
//! recomputes a group of contacts from their events with `orchard_core::scoring::score` and
//! `orchard_core::segment::membership` inside the caller's transaction. Appends call it for
//! the contacts they touched, so a score is visible as soon as its event is acknowledged; the due-time worker calls it for contacts whose windows moved; a
//! rebuild calls it for everyone. One function for all three, so they cannot disagree.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use orchard_core::account::Account;
use orchard_core::contact::Contact;
use orchard_core::deal::DealStatus;
use orchard_core::event::Event;
use orchard_core::event::{EventType, NewEvent};
use orchard_core::lifecycle::{DealFact, Facts, STAGE_CHANGED, transitions};
use orchard_core::rules::{EventPattern, Subject};
use orchard_core::scoring::{RuleSet, RuleSetDef, ScoreChange, score};
use orchard_core::segment::{Change, Segment, change, membership};
use orchard_core::stage::LifecycleStage;
use orchard_core::{AccountId, ContactId, EventSeq, SegmentId, UserId};
use orchard_store::{
    Refresh, RuleSetVersion, ScoringStore, StoreError, StoreResult, StoredScoreChange,
};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::events::event_row;
use crate::native::{NativeReads, Snapshot};
use crate::{
    Arg, Dialect, IdMap, IdSet, RowText, Sql, SqlStore, backend_err, from_ms, get, joined_int,
    json_err, ms, multi_insert,
};

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

/// The live rule set, if any, compiled, and the segments, compiled, in id order: what every
/// refresh derives. One statement of one row, the rule set as `[version, definition]` and the
/// segments as `[[id, name, filter, created_at], …]`, packed by the database: a single event's
/// transaction runs a dozen statements, each a round trip, and on SQLite every row of a result
/// is a hand-off between threads of its own (a row per segment made this the dearest
/// statement of a single event's transaction, 0.15 ms).
async fn derivations_in(tx: &mut AnyConnection) -> StoreResult<(Option<RuleSet>, Vec<Segment>)> {
    let dialect = Dialect::of(tx);
    let agg = dialect.string_agg();
    let number = |col: &str| dialect.json_number(col);
    let text = |col: &str| dialect.json_text(col);
    let live = dialect.json_array(&[number("version"), text("definition")]);
    let segment = dialect.json_array(&[
        number("id"),
        text("name"),
        text("filter"),
        number("created_at"),
    ]);
    let sql = Sql::new(&format!(
        "SELECT (SELECT {live} FROM rule_sets WHERE live_since IS NOT NULL \
         ORDER BY live_since DESC, version DESC LIMIT 1) AS live, \
         (SELECT '[' || {agg}({segment}, ',') || ']' FROM segments) AS segments"
    ));
    let rows = sql.fetch_all_in(&mut *tx).await?;
    let Some(row) = rows.first() else {
        return Ok((None, Vec::new()));
    };
    let scoring = match get::<Option<&str>>(row, "live")? {
        None => None,
        Some(packed) => {
            let (version, definition): (i64, String) =
                serde_json::from_str(packed).map_err(json_err)?;
            let definition: RuleSetDef = serde_json::from_str(&definition).map_err(json_err)?;
            Some(RuleSet::compile(&definition, version).map_err(|e| {
                StoreError::Invalid(format!("the live rule set no longer compiles: {e}"))
            })?)
        }
    };
    let mut segments = match get::<Option<&str>>(row, "segments")? {
        None => Vec::new(),
        Some(packed) => serde_json::from_str::<Vec<(i64, String, String, i64)>>(packed)
            .map_err(json_err)?
            .into_iter()
            .map(|(id, name, filter, created_at)| segment_from(id, name, filter, created_at))
            .collect::<StoreResult<Vec<_>>>()?,
    };
    segments.sort_by_key(|s| s.id);
    Ok((scoring, segments))
}

/// An account as one JSON array, `[id, external_id, name, domain, industry, employees, region,
/// country, owner_id, service_hours, cost_to_serve, created_at]`, built by the database
/// (`load_packed` joins a chunk's into one row, `accounts_from_packed` reads them back).
fn packed_account(dialect: Dialect) -> String {
    let number = |col: &str| dialect.json_number(col);
    let text = |col: &str| dialect.json_text(col);
    dialect.json_array(&[
        number("id"),
        text("external_id"),
        text("name"),
        text("domain"),
        text("industry"),
        number("employees"),
        text("region"),
        text("country"),
        number("owner_id"),
        number("service_hours"),
        number("cost_to_serve"),
        number("created_at"),
    ])
}

fn accounts_from_packed(packed: &str) -> StoreResult<Vec<Account>> {
    type Row = (
        i64,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<String>,
        Option<String>,
        Option<i64>,
        f64,
        Option<f64>,
        i64,
    );
    let rows: Vec<Row> = serde_json::from_str(packed).map_err(json_err)?;
    Ok(rows
        .into_iter()
        .map(|r| Account {
            id: AccountId::new(r.0),
            external_id: r.1,
            name: r.2,
            domain: r.3,
            industry: r.4,
            employees: r.5,
            region: r.6,
            country: r.7,
            owner_id: r.8.map(UserId::new),
            service_hours: r.9,
            cost_to_serve: r.10,
            created_at: from_ms(r.11),
        })
        .collect())
}

pub(crate) fn segment_from_row(row: &AnyRow) -> StoreResult<Segment> {
    segment_from(
        get(row, "id")?,
        get(row, "name")?,
        get(row, "filter")?,
        get(row, "created_at")?,
    )
}

/// A stored segment, its filter parsed again.
fn segment_from(id: i64, name: String, text: String, created_at: i64) -> StoreResult<Segment> {
    Ok(Segment {
        id: SegmentId::new(id),
        name,
        filter: orchard_core::rules::parse(&text).map_err(|e| {
            StoreError::Invalid(format!("a stored segment filter no longer parses: {e}"))
        })?,
        text,
        created_at: from_ms(created_at),
    })
}

/// The `id` column of a query's rows.
pub(crate) async fn ids_of(conn: &mut AnyConnection, sql: Sql) -> StoreResult<Vec<i64>> {
    sql.fetch_all_in(&mut *conn)
        .await?
        .iter()
        .map(|r| get(r, "id"))
        .collect()
}

/// What a refresh recomputes.
pub(crate) struct Derivations {
    /// The live rule set, if any: scores.
    pub scoring: Option<RuleSet>,
    pub segments: Vec<Segment>,
    /// What a refresh keeps of the histories it loads, all of it given:
    /// - the event types that scoring, stage rules and segments read (derived events such as
    ///   `segment_entered` pile up, and are skipped unparsed unless a filter names them);
    /// - among those, the types whose properties something reads: the stage rules' types
    ///   (`transitions` reads funnel stages, URLs, the manual flag) and those of patterns with
    ///   a property filter (`page_viewed where url ~ "/pricing"`); the rest come with empty
    ///   properties, as most of a log's events are counted, never looked into;
    /// - the properties those read: the stage rules' (`lifecycle::PROPERTY_KEYS`) and those the
    ///   patterns' filters name (a page view carries its referrer and campaign too, and only
    ///   its URL is read);
    /// - the members of the contacts' details that the rules and filters read (a contact's
    ///   details hold two dozen members, most of them texts, and a rule set reads a few).
    pub keep: Keep,
    /// Only `segments` are decided (a new segment's first decision): no scoring, no stage
    /// rules, and due times only brought forward, since the rest is as stored.
    pub partial: bool,
}

impl Derivations {
    /// One segment's membership alone (`partial`); none when it was deleted meanwhile.
    pub(crate) async fn of_segment(tx: &mut AnyConnection, id: SegmentId) -> StoreResult<Self> {
        let (_, segments) = derivations_in(tx).await?;
        let segments: Vec<Segment> = segments.into_iter().filter(|s| s.id == id).collect();
        let patterns: Vec<&EventPattern> =
            segments.iter().flat_map(|s| s.filter.patterns()).collect();
        let detail_keys: Vec<&str> = segments
            .iter()
            .flat_map(|s| s.filter.detail_keys())
            .collect();
        let keep = Keep::reading(&patterns, &detail_keys, false);
        Ok(Self {
            scoring: None,
            segments,
            keep,
            partial: true,
        })
    }

    pub(crate) async fn current(tx: &mut AnyConnection) -> StoreResult<Self> {
        let (scoring, segments) = derivations_in(tx).await?;
        let patterns: Vec<&EventPattern> = scoring
            .iter()
            .flat_map(RuleSet::patterns)
            .chain(segments.iter().flat_map(|s| s.filter.patterns()))
            .collect();
        let detail_keys: Vec<&str> = scoring
            .iter()
            .flat_map(RuleSet::detail_keys)
            .chain(segments.iter().flat_map(|s| s.filter.detail_keys()))
            .collect();
        let keep = Keep::reading(&patterns, &detail_keys, true);
        Ok(Self {
            scoring,
            segments,
            keep,
            partial: false,
        })
    }
}

/// Takes the rows of `ids` for the caller's transaction before anything of theirs is read, so
/// that two transactions refreshing one contact run one after the other and the second sees
/// the first's events. Without it two concurrent batches for a contact each derived its state
/// from their own events and the last to commit won, leaving a score a refresh from the log
/// would change. In id order, so that two such transactions never wait on each other in a
/// cycle; `FOR NO KEY UPDATE`, which does not conflict with the key-share locks that inserting
/// events takes (an append takes the rows before its insert, a refresh after other writes).
/// PostgreSQL only: SQLite has one writer at a time.
pub(crate) async fn lock_contacts(
    tx: &mut AnyConnection,
    dialect: Dialect,
    ids: &[i64],
) -> StoreResult<()> {
    if dialect != Dialect::Postgres || ids.is_empty() {
        return Ok(());
    }
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    lock_merged(tx, dialect, &sorted).await?;
    Ok(())
}

/// The contacts among `ids` (sorted) that were merged into another, with that other, having
/// taken the rows of all of `ids` in id order (`FOR NO KEY UPDATE`, PostgreSQL only). Only
/// merged rows come back: nearly every contact is live, and each row returned is converted by
/// sqlx on its own. On PostgreSQL the rows are taken in a materialized CTE, which is read to
/// the end, so every row is taken whatever the outer filter keeps.
async fn lock_merged(
    tx: &mut AnyConnection,
    dialect: Dialect,
    ids: &[i64],
) -> StoreResult<Vec<(i64, i64)>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(dialect.rows_per_statement(1)) {
        let mut q = match dialect {
            Dialect::Postgres => Sql::new(
                "WITH taken AS MATERIALIZED (SELECT id, merged_into FROM contacts WHERE id",
            ),
            Dialect::Sqlite => Sql::new(
                "SELECT id, merged_into FROM contacts WHERE merged_into IS NOT NULL AND id",
            ),
        };
        q.in_ids(dialect, chunk.iter().copied());
        if dialect == Dialect::Postgres {
            q.push(
                " ORDER BY id FOR NO KEY UPDATE) SELECT id, merged_into FROM taken \
                 WHERE merged_into IS NOT NULL",
            );
        }
        for row in q.fetch_all_in(&mut *tx).await? {
            out.push((get(&row, "id")?, get(&row, "merged_into")?));
        }
    }
    Ok(out)
}

/// The live contacts that events logged for `ids` count for: each id itself, or the contact it
/// was merged into (merges point straight at the survivor), with the rows of both taken for
/// the caller's transaction as `lock_contacts` takes them. An API batch resolves its contacts
/// before its transaction begins, so a merge can land in between; the events then stay logged
/// for the merged contact (its timeline is the survivor's) and it is the survivor whose state
/// they change. Each id maps to the contact it lives on.
pub(crate) async fn lock_live(
    tx: &mut AnyConnection,
    dialect: Dialect,
    ids: &[i64],
) -> StoreResult<IdMap<i64, i64>> {
    let mut wanted: std::collections::BTreeSet<i64> = ids.iter().copied().collect();
    // Survivors are taken in a second round, after the rows that name them and so out of id
    // order; PostgreSQL reports the rare cycle that can make as a deadlock, which fails the
    // batch as `busy` with nothing changed. Once taken, a row's `merged_into` stays as read
    // until this transaction ends (a merge takes the rows it changes).
    let mut seen: IdMap<i64, Option<i64>> =
        IdMap::with_capacity_and_hasher(wanted.len(), Default::default());
    for _ in 0..3 {
        let todo: Vec<i64> = wanted
            .iter()
            .copied()
            .filter(|id| !seen.contains_key(id))
            .collect();
        if todo.is_empty() {
            break;
        }
        for (id, into) in lock_merged(tx, dialect, &todo).await? {
            seen.insert(id, Some(into));
            wanted.insert(into);
        }
        for id in todo {
            seen.entry(id).or_insert(None);
        }
    }
    Ok(ids
        .iter()
        .map(|id| (*id, seen.get(id).copied().flatten().unwrap_or(*id)))
        .collect())
}

/// Recomputes the derived state of `ids` (scores with the live rule set, segment memberships)
/// as of `now`, inside the caller's transaction, having taken their rows (`lock_contacts`).
pub(crate) async fn refresh_in(
    tx: &mut AnyConnection,
    dialect: Dialect,
    ids: &[ContactId],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    refresh_what(tx, dialect, ids, now, Refresh::Everything, None).await
}

/// `refresh_in` of `what`: everything, or one segment's membership only, what a new segment
/// changes (scores, stages and the other segments are left as stored, and a contact's due time
/// is only brought forward, to when this segment may next change for it:
/// `Derivations::partial`). With `native`, a snapshot the caller took after beginning its
/// transaction, before writing anything, the loads go through the native SQLite reader
/// (`crate::native`).
pub(crate) async fn refresh_what(
    tx: &mut AnyConnection,
    dialect: Dialect,
    ids: &[ContactId],
    now: DateTime<Utc>,
    what: Refresh,
    native: Option<Native>,
) -> StoreResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let raw: Vec<i64> = ids.iter().map(|c| c.get()).collect();
    lock_contacts(tx, dialect, &raw).await?;
    // Stage rules always apply, so there is always something to derive.
    let what = match what {
        Refresh::Everything => Derivations::current(tx).await?,
        Refresh::Segment(id) => Derivations::of_segment(tx, id).await?,
    };
    derive_chunks(
        tx,
        dialect,
        Arc::new(what),
        ids,
        now,
        &IdMap::default(),
        native,
    )
    .await
}

/// `refresh_in` for a caller that has already taken the rows of `ids` in this transaction.
/// `activity`: the latest time (epoch ms) of events just stored, by contact, which becomes the
/// contact's last activity where it is later, in the same write as its derived columns (an
/// append's own update of every touched row cost a statement and a row version apiece).
pub(crate) async fn refresh_locked(
    tx: &mut AnyConnection,
    dialect: Dialect,
    ids: &[ContactId],
    now: DateTime<Utc>,
    activity: &IdMap<i64, i64>,
) -> StoreResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    // Stage rules always apply, so there is always something to derive.
    let what = Arc::new(Derivations::current(tx).await?);
    derive_chunks(tx, dialect, what, ids, now, activity, None).await
}

/// A native snapshot (`crate::native`) for a refresh, with where its connection goes back.
pub(crate) struct Native {
    reads: Arc<NativeReads>,
    snapshot: Snapshot,
}

impl Native {
    /// A snapshot of what the caller's transaction sees: take it after the transaction began
    /// (on SQLite, `BEGIN IMMEDIATE`) and before it writes.
    pub(crate) async fn take(reads: Arc<NativeReads>) -> StoreResult<Self> {
        tokio::task::spawn_blocking(move || {
            let snapshot = reads.snapshot()?;
            Ok(Self { reads, snapshot })
        })
        .await
        .map_err(|e| StoreError::Backend(Box::new(e)))?
    }
}

/// A flag raised once. Here: once the thread deciding a chunk is free for the next one (a
/// backtest and a segment's preview also raise one to stop their evaluation when they are
/// dropped). The thread loading the
/// next chunk goes on to parse its histories until then (`Subjects::unpack_some`), and the
/// deciding thread parses the rest: deciding sets a pass's pace, and loading alone left a core
/// idle part of the time. So whichever thread has time parses, and neither waits for the other.
#[derive(Clone, Debug)]
pub(crate) struct Free(Arc<AtomicBool>);

impl Free {
    pub(crate) fn new(free: bool) -> Self {
        Self(Arc::new(AtomicBool::new(free)))
    }

    pub(crate) fn raise(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub(crate) fn raised(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// A guard that raises the flag when dropped: when the deciding side is done, and also
    /// when it fails or panics, so that the loading thread stops parsing a chunk that nobody
    /// will decide.
    pub(crate) fn on_drop(&self) -> RaiseOnDrop {
        RaiseOnDrop(self.clone())
    }
}

/// `Free::on_drop`.
pub(crate) struct RaiseOnDrop(Free);

impl Drop for RaiseOnDrop {
    fn drop(&mut self) {
        self.0.raise();
    }
}

/// Derives `what` for `ids`, whose rows the caller's transaction has taken (see
/// `refresh_locked`). With `native`, a SQLite refresh in a transaction of its own reads
/// through the native reader (`crate::native`).
async fn derive_chunks(
    tx: &mut AnyConnection,
    dialect: Dialect,
    what: Arc<Derivations>,
    ids: &[ContactId],
    now: DateTime<Utc>,
    activity: &IdMap<i64, i64>,
    native: Option<Native>,
) -> StoreResult<()> {
    if let Some(native) = native {
        return derive_chunks_native(tx, dialect, what, ids, now, activity, native).await;
    }
    // A pipeline over the chunks: while one chunk is decided on a blocking thread, the next is
    // loaded, so the database and the fold keep both cores busy. Chunks are disjoint sets of
    // contacts and a chunk's writes are not read by the next one's load.
    let mut chunks = ids.chunks(CHUNK);
    let mut next = match chunks.next() {
        Some(c) => Some(load_chunk(tx, &what, c, activity).await?),
        None => None,
    };
    while let Some(loaded) = next.take() {
        let writes = match chunks.next() {
            // The last chunk, with nothing left to load beside it (an append's refresh is
            // most often a single chunk): decided in two halves at once.
            None => decide_in_two(&what, loaded, now).await?,
            Some(following) => {
                let w = Arc::clone(&what);
                let deciding = tokio::task::spawn_blocking(move || decide(&w, loaded, now));
                next = Some(load_chunk(tx, &what, following, activity).await?);
                deciding
                    .await
                    .map_err(|e| StoreError::Backend(Box::new(e)))??
            }
        };
        write_chunk(tx, dialect, writes).await?;
    }
    Ok(())
}

/// Contacts below this many are decided in one piece by `decide_in_two`: a handful decides in
/// less time than handing half of them to another thread takes.
const DECIDED_IN_ONE: usize = 64;

/// `decide` of a chunk that nothing else is loaded beside: its second half on a blocking thread
/// while this one decides the first, so that both cores decide it (the database waits for the
/// writes meanwhile).
async fn decide_in_two(
    what: &Arc<Derivations>,
    mut loaded: Loaded,
    now: DateTime<Utc>,
) -> StoreResult<Writes> {
    let n = loaded.subjects.contacts.len();
    if n < DECIDED_IN_ONE {
        return decide(what, loaded, now);
    }
    let later = loaded.split_off(n / 2)?;
    // One time of receipt for the chunk's derived events, as deciding it whole gives them.
    let received = ms(Utc::now());
    let w = Arc::clone(what);
    let deciding = tokio::task::spawn_blocking(move || decide_received(&w, later, now, received));
    let first = decide_received(what, loaded, now, received);
    let later = deciding
        .await
        .map_err(|e| StoreError::Backend(Box::new(e)))?;
    let mut writes = first?;
    writes.append(later?);
    Ok(writes)
}

/// `derive_chunks` reading through `snapshot`: the same pipeline, with the loading on a
/// blocking thread of its own as well (the native reader steps SQLite itself), so that one
/// thread loads the next chunk while another decides this one and the caller writes it.
/// Hands the snapshot's connection back for the next pass.
async fn derive_chunks_native(
    tx: &mut AnyConnection,
    dialect: Dialect,
    what: Arc<Derivations>,
    ids: &[ContactId],
    now: DateTime<Utc>,
    activity: &IdMap<i64, i64>,
    Native { reads, snapshot }: Native,
) -> StoreResult<()> {
    let joined = |e: tokio::task::JoinError| StoreError::Backend(Box::new(e));
    // A chunk is loaded while the one before it is decided, then parsed until the deciding
    // thread is free (`Free`).
    let load = |snapshot: Snapshot, chunk: &[ContactId], free: Free| {
        let what = Arc::clone(&what);
        let chunk = chunk.to_vec();
        let activity: IdMap<i64, i64> = chunk
            .iter()
            .filter_map(|c| Some((c.get(), *activity.get(&c.get())?)))
            .collect();
        tokio::task::spawn_blocking(move || {
            let loaded =
                load_chunk_native(&snapshot, &what, &chunk, &activity).and_then(|mut l| {
                    l.subjects.unpack_some(|| free.raised())?;
                    Ok(l)
                });
            (snapshot, loaded)
        })
    };
    let mut chunks = ids.chunks(CHUNK);
    let (mut loading, mut last) = match chunks.next() {
        Some(first) => {
            let free = Free::new(true);
            (
                Some((load(snapshot, first, free.clone()), free.on_drop())),
                None,
            )
        }
        None => (None, Some(snapshot)),
    };
    while let Some((handle, free)) = loading.take() {
        // The chunk before is decided and written. (When this returns early with an error,
        // dropping `loading` raises its flag likewise.)
        drop(free);
        let (snapshot, loaded) = handle.await.map_err(joined)?;
        let loaded = loaded?;
        let writes = match chunks.next() {
            Some(following) => {
                let w = Arc::clone(&what);
                let deciding = tokio::task::spawn_blocking(move || decide(&w, loaded, now));
                let free = Free::new(false);
                loading = Some((load(snapshot, following, free.clone()), free.on_drop()));
                deciding.await.map_err(joined)??
            }
            // The last chunk, with nothing left to load beside it: decided on both cores.
            None => {
                last = Some(snapshot);
                decide_in_two(&what, loaded, now).await?
            }
        };
        write_chunk(tx, dialect, writes).await?;
    }
    if let Some(snapshot) = last {
        tokio::task::spawn_blocking(move || reads.done(snapshot))
            .await
            .map_err(joined)?;
    }
    Ok(())
}

/// Contacts with their accounts and events, as derivations read them.
pub(crate) struct Subjects {
    pub contacts: Vec<Contact>,
    /// The derived columns of `contacts` as stored, to write only what a refresh changes.
    pub stored: IdMap<i64, Stored>,
    pub accounts: IdMap<AccountId, Account>,
    /// Each contact's events, for derivations: a contact's own events come without their
    /// client and visitor ids, which no derivation reads (`events_from_packed`).
    pub events: IdMap<i64, Vec<Event>>,
    /// The row `load_packed` reads after the contacts: their own events packed (`events`),
    /// those of merged contacts and visitor ids (`others`), which `unpack_some` and `unpack`
    /// parse, and for a refresh their deals and memberships (`load_chunk` reads those).
    packed: Option<RowText>,
    /// The contacts' own histories where they were read a row each and joined here
    /// (`Histories`: the native SQLite reader, larger chunks on PostgreSQL); then `packed`'s
    /// `events` is NULL.
    histories: Option<String>,
    /// How much of the histories (`histories`, or `packed`'s `events`) is parsed into `events`:
    /// the byte where the next contact's history starts (`unpack_some`).
    events_read: usize,
    /// What `unpack` keeps of the packed events.
    keep: Keep,
    /// The contacts as loaded, packed (`contacts::packed_contact`), until `unpack` parses
    /// them into `contacts` and `stored`.
    packed_contacts: Option<RowText>,
}

impl Subjects {
    fn new(keep: Keep) -> Self {
        Self {
            contacts: Vec::new(),
            stored: IdMap::default(),
            accounts: IdMap::default(),
            events: IdMap::default(),
            packed: None,
            histories: None,
            events_read: 0,
            packed_contacts: None,
            keep,
        }
    }

    /// The accounts of the packed contacts, by id, each once.
    fn account_ids(&self) -> StoreResult<Vec<i64>> {
        let mut accounts = crate::joined(
            self.packed_contacts
                .as_ref()
                .map(|t| t.other("account_ids"))
                .transpose()?
                .flatten(),
        )
        .map(|id| crate::joined_int(id, "account id"))
        .collect::<StoreResult<Vec<i64>>>()?;
        accounts.sort_unstable();
        accounts.dedup();
        Ok(accounts)
    }

    /// Adds a loaded contact, with its derived columns as stored.
    fn add_contact(&mut self, (c, due, digest): crate::contacts::PackedContact) {
        self.stored.insert(
            c.id.get(),
            Stored {
                score: c.score,
                due,
                digest,
            },
        );
        self.contacts.push(c);
    }

    /// Two live contacts and nothing else, for tests of what reads a chunk.
    #[cfg(test)]
    pub(crate) fn two_for_tests() -> Self {
        let packed = r#"[[7,"ann@acme.com",{},null,null,"mql",45,null,1000,2000,null,null,
            null],[8,"bo@acme.com",{},null,null,"iql",0,null,1000,2000,null,null,null]]"#;
        let mut subjects = Subjects::new(Keep::default());
        for c in crate::contacts::contacts_from_packed(packed, None).unwrap() {
            subjects.add_contact(c);
        }
        subjects
    }

    /// Once contacts are added a row each (`add_contact`): puts them in id order, as
    /// `unpack_contacts` leaves them, and gives their accounts' ids, each once.
    fn ordered_accounts(&mut self) -> Vec<i64> {
        self.contacts.sort_by_key(|c| c.id);
        let mut accounts: Vec<i64> = self
            .contacts
            .iter()
            .filter_map(|c| c.account_id.map(AccountId::get))
            .collect();
        accounts.sort_unstable();
        accounts.dedup();
        accounts
    }

    /// Adds the accounts packed as `accounts_statement` packs them.
    fn add_accounts(&mut self, packed: &str) -> StoreResult<()> {
        for a in accounts_from_packed(packed)? {
            self.accounts.insert(a.id, a);
        }
        Ok(())
    }

    /// Parses the packed contacts into `contacts` and `stored` (once: nothing when they are
    /// parsed already). A refresh does this on the thread that loads, before it loads the next
    /// chunk: the deciding thread sets a rebuild's pace, and the loading one waits on the
    /// database for part of each chunk.
    fn unpack_contacts(&mut self) -> StoreResult<()> {
        let Some(contacts) = self.packed_contacts.take() else {
            return Ok(());
        };
        let parsed = crate::contacts::contacts_from_packed(
            contacts.as_str()?,
            self.keep.detail_keys.as_deref(),
        )?;
        self.contacts.reserve(parsed.len());
        self.stored.reserve(parsed.len());
        for contact in parsed {
            self.add_contact(contact);
        }
        // In id order, whatever order the database packed them in: derived events are written
        // in this order.
        self.contacts.sort_by_key(|c| c.id);
        Ok(())
    }

    /// Parses the contacts' own histories (the packed row's `events`) into `events`, from
    /// where an earlier call stopped, one contact's at a time until `enough` says so or all
    /// are read. A pass's loading thread calls it once a chunk is loaded (a refresh's, a
    /// preview's, a backtest's), while the deciding thread still decides the chunk before;
    /// `unpack` reads what is left. So whichever thread has time parses, and neither waits for
    /// the other.
    pub(crate) fn unpack_some(&mut self, mut enough: impl FnMut() -> bool) -> StoreResult<()> {
        let text = match (&self.histories, &self.packed) {
            (Some(joined), _) => joined.as_str(),
            (None, Some(packed)) => packed.other("events")?.unwrap_or_default(),
            (None, None) => return Ok(()),
        };
        let mut r = Reader::new(text, "histories");
        r.at = self.events_read;
        let known = self.keep.known();
        let mut scratch = Vec::new();
        while !enough()
            && let Some((owner, parsed)) = next_history(&mut r, &self.keep, &known, &mut scratch)?
        {
            add_history(&mut self.events, owner, parsed);
            self.events_read = r.at;
        }
        Ok(())
    }

    /// Parses the packed contacts (`unpack_contacts`) and events, the events into `events`,
    /// each contact's oldest first. A refresh parses on the loading thread what it has time for
    /// (`unpack_some`) and leaves the rest to the deciding thread.
    pub(crate) fn unpack(&mut self) -> StoreResult<()> {
        self.unpack_contacts()?;
        self.unpack_some(|| false)?;
        self.histories = None;
        let Some(packed) = self.packed.take() else {
            return Ok(());
        };
        let others = packed.other("others")?.unwrap_or_default();
        for (owner, parsed) in events_from_packed(others, &self.keep)? {
            add_history(&mut self.events, owner, parsed);
        }
        for list in self.events.values_mut() {
            list.sort_by_key(|e| (e.at, e.seq));
            // Appends add only rows just stored, so no history holds an event twice; were one
            // to, it would count twice in every window from then on.
            list.dedup_by_key(|e| e.seq);
        }
        Ok(())
    }

    pub(crate) fn subject<'a>(&'a self, c: &'a Contact, now: DateTime<Utc>) -> Subject<'a> {
        Subject {
            contact: c,
            account: c.account_id.and_then(|a| self.accounts.get(&a)),
            events: self
                .events
                .get(&c.id.get())
                .map(Vec::as_slice)
                .unwrap_or_default(),
            now,
        }
    }
}

/// Puts `parsed` after the events `owner` has in `events` so far.
fn add_history(events: &mut IdMap<i64, Vec<Event>>, owner: i64, mut parsed: Vec<Event>) {
    let list = events.entry(owner).or_default();
    if list.is_empty() {
        *list = parsed;
    } else {
        list.append(&mut parsed);
    }
}

/// Loads live contacts among `ids`, their accounts, and their events (their own, those of
/// contacts merged into them, and their visitor ids' from before they identified, as on the
/// timeline), each contact's oldest first, as much of them as `keep` says.
pub(crate) async fn load_subjects(
    tx: &mut AnyConnection,
    ids: &[i64],
    keep: Keep,
) -> StoreResult<Subjects> {
    let mut out = load_packed(tx, ids, keep, false).await?;
    out.unpack()?;
    Ok(out)
}

/// `load_subjects` with the contacts' own events still packed, to keep what `keep` says; with
/// `facts`, their deals and memberships too, in the row of their events (`push_facts`).
pub(crate) async fn load_packed(
    tx: &mut AnyConnection,
    ids: &[i64],
    keep: Keep,
    facts: bool,
) -> StoreResult<Subjects> {
    let dialect = Dialect::of(tx);
    let mut out = Subjects::new(keep);
    // On PostgreSQL the contacts and histories of a larger chunk come a row each: packing them
    // into texts cost the database more than sending the rows does. For a few contacts (an
    // append's refresh) a statement more would cost a round trip more than that.
    let apart = dialect == Dialect::Postgres && ids.len() >= APART;
    let accounts = if apart {
        let rows = crate::contacts::rows_statement(dialect, ids, out.keep.detail_keys.as_deref())
            .fetch_all_in(&mut *tx)
            .await?;
        out.contacts.reserve(rows.len());
        out.stored.reserve(rows.len());
        for row in &rows {
            let contact =
                crate::contacts::contact_from_rows_row(row, out.keep.detail_keys.as_deref())?;
            out.add_contact(contact);
        }
        out.ordered_accounts()
    } else {
        out.packed_contacts = RowText::first(
            contacts_statement(dialect, ids, &out.keep)
                .fetch_all_in(&mut *tx)
                .await?,
            "contacts",
        )?;
        out.account_ids()?
    };
    if out.contacts.is_empty() && out.packed_contacts.is_none() {
        // None of them is live.
        return Ok(out);
    }
    if !accounts.is_empty()
        && let Some(row) = accounts_statement(dialect, accounts)
            .fetch_all_in(&mut *tx)
            .await?
            .first()
        && let Some(packed) = get::<Option<&str>>(row, "accounts")?
    {
        out.add_accounts(packed)?;
    }
    // The histories, a row each, are joined here into the text `history::load` makes.
    let apart = apart && out.keep.reads_events();
    if let Some(q) = rest_statement(dialect, ids, &out.keep, facts, !apart) {
        out.packed = RowText::row(q.fetch_all_in(&mut *tx).await?, "events");
    }
    if apart {
        let rows = Histories::statement(dialect, ids)
            .fetch_all_in(&mut *tx)
            .await?;
        let mut histories = Histories::with_capacity(ids.len());
        for row in &rows {
            histories.push(get::<i64>(row, "contact_id")?, get::<&str>(row, "events")?);
        }
        out.histories = histories.joined();
    }
    Ok(out)
}

/// Contacts from which a load on PostgreSQL reads them and their histories a row each
/// (`load_packed`).
const APART: usize = 64;

/// Contacts' histories joined into the text `history::load` makes in SQL: `[contact, [items]]`
/// entries joined by commas.
struct Histories(String);

impl Histories {
    /// The statement of `ids`' histories, a row each: `contact_id`, `events`.
    fn statement(dialect: Dialect, ids: &[i64]) -> Sql {
        let mut q = Sql::new("SELECT contact_id, events FROM contact_histories WHERE contact_id");
        q.in_ids(dialect, ids.iter().copied());
        q
    }

    /// Sized for the demo's 1.8 kB a contact: grown by doubling from empty, the text was copied
    /// a dozen times a chunk (a tenth of a preview's samples at a million contacts).
    fn with_capacity(contacts: usize) -> Self {
        Self(String::with_capacity(contacts * 2048))
    }

    fn push(&mut self, owner: i64, items: &str) {
        use std::fmt::Write as _;
        if !self.0.is_empty() {
            self.0.push(',');
        }
        let _ = write!(self.0, "[{owner},[");
        self.0.push_str(items);
        self.0.push_str("]]");
    }

    /// The text, unless no contact had a history.
    fn joined(self) -> Option<String> {
        (!self.0.is_empty()).then_some(self.0)
    }
}

/// Where a read-only pass over every contact (a segment's preview, a backtest) loads its
/// chunks from: a connection of the pool, or on SQLite the native reader (`crate::native`).
/// Each chunk is read in a read transaction of its own, as the pool connection reads it: a
/// pass over a million contacts takes seconds, and a read transaction held that long keeps
/// the checkpointer from starting the WAL over while others write.
pub(crate) struct Source {
    conn: sqlx::pool::PoolConnection<sqlx::Any>,
    native: Option<Arc<NativeReads>>,
}

impl Source {
    pub(crate) async fn of(store: &crate::SqlStore) -> StoreResult<Self> {
        let conn = store.pool().acquire().await.map_err(crate::backend_err)?;
        Ok(Self {
            conn,
            native: store.native_shared(),
        })
    }

    /// The pool connection, for the pass's other statements.
    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }

    /// The `id` column of `sql`'s rows, read where the chunks are (the pool connection read
    /// the contacts' pages only for their ids, and a backtest took a fifth longer for it).
    pub(crate) async fn ids(&mut self, sql: Sql) -> StoreResult<Vec<i64>> {
        let Some(reads) = self.native.clone() else {
            return ids_of(&mut self.conn, sql).await;
        };
        tokio::task::spawn_blocking(move || {
            let snapshot = reads.snapshot()?;
            let mut ids = Vec::new();
            let read = snapshot.rows(&sql, |row| {
                ids.push(crate::native::int(row, 0)?);
                Ok(())
            });
            reads.done(snapshot);
            read.map(|()| ids)
        })
        .await
        .map_err(|e| StoreError::Backend(Box::new(e)))?
    }

    /// `load_packed` of `ids`, through the native reader on a blocking thread where there is
    /// one, which then parses histories until the thread deciding the chunk before is `free`.
    pub(crate) async fn load(
        &mut self,
        ids: Vec<i64>,
        keep: Keep,
        facts: bool,
        free: Free,
    ) -> StoreResult<Subjects> {
        let Some(reads) = self.native.clone() else {
            return load_packed(&mut self.conn, &ids, keep, facts).await;
        };
        tokio::task::spawn_blocking(move || {
            let snapshot = reads.snapshot()?;
            let loaded = load_native(&snapshot, &ids, keep, facts);
            reads.done(snapshot);
            let mut loaded = loaded?;
            loaded.unpack_some(|| free.raised())?;
            Ok(loaded)
        })
        .await
        .map_err(|e| StoreError::Backend(Box::new(e)))?
    }
}

/// `load_packed` on the native SQLite reader (`crate::native`): the contacts a row each in
/// typed columns (`contacts::rows_statement`) rather than packed, and the histories a row
/// each, joined here into the text `history::load` makes in SQL; the accounts and the rest
/// (`rest_statement`, without the histories) as `load_packed` reads them.
fn load_native(snapshot: &Snapshot, ids: &[i64], keep: Keep, facts: bool) -> StoreResult<Subjects> {
    let dialect = Dialect::Sqlite;
    let mut out = Subjects::new(keep);
    let keys = out.keep.detail_keys.clone();
    // Nearly all of them are live: grown by doubling, the list was copied half a dozen times.
    out.contacts.reserve(ids.len());
    out.stored.reserve(ids.len());
    snapshot.rows(
        &crate::contacts::rows_statement(dialect, ids, keys.as_deref()),
        |row| {
            out.add_contact(crate::contacts::contact_from_native(row, keys.as_deref())?);
            Ok(())
        },
    )?;
    if out.contacts.is_empty() {
        // None of them is live.
        return Ok(out);
    }
    let accounts = out.ordered_accounts();
    if !accounts.is_empty() {
        snapshot.rows(
            &accounts_statement(dialect, accounts),
            |row| match crate::native::text(row, 0)? {
                Some(packed) => out.add_accounts(packed),
                None => Ok(()),
            },
        )?;
    }
    // The histories a row per contact, joined as `history::load` joins them, for whichever
    // thread has time to parse them (`Free`): parsing them all here made this thread the
    // slower of the two.
    if out.keep.reads_events() {
        let mut histories = Histories::with_capacity(ids.len());
        snapshot.rows(&Histories::statement(dialect, ids), |row| {
            let owner = crate::native::int(row, 0)?;
            histories.push(owner, crate::native::text(row, 1)?.unwrap_or_default());
            Ok(())
        })?;
        out.histories = histories.joined();
    }
    if let Some(q) = rest_statement(dialect, ids, &out.keep, facts, false) {
        out.packed = snapshot.row_text(&q, "events")?;
    }
    Ok(out)
}

/// The statement of the contacts a load reads: the live ones among `ids` as one text (each
/// `contacts::packed_contact`), and their accounts' ids. One row: on SQLite through sqlx, a row
/// per contact, each column converted by the `Any` layer, cost the loading thread more than the
/// database spent building the text, and the deciding thread parses it. (On PostgreSQL the
/// reverse holds for larger chunks, which read `contacts::rows_statement` instead.) Everything is read by the ids asked
/// for; those of contacts merged away load what no derivation reads (their own rows are not
/// live, and `unpack` keeps live contacts only). The accounts' ids come in the same row: the
/// accounts were selected by a subquery that read the chunk's contacts a second time, rows of
/// some 600 bytes for an id each (a tenth of a rebuild's statements' time at 100 000
/// contacts).
fn contacts_statement(dialect: Dialect, ids: &[i64], keep: &Keep) -> Sql {
    let agg = dialect.string_agg();
    let mut q = Sql::new(&format!(
        "SELECT '[' || {agg}({}, ',') || ']' AS contacts, \
         {agg}(CAST(account_id AS TEXT), ',') AS account_ids FROM contacts \
         WHERE merged_into IS NULL AND id",
        crate::contacts::packed_contact(dialect, keep.detail_keys.as_deref())
    ));
    q.in_ids(dialect, ids.iter().copied());
    q
}

/// The statement of the accounts a load reads, as one row of one text, like the contacts.
fn accounts_statement(dialect: Dialect, accounts: Vec<i64>) -> Sql {
    let agg = dialect.string_agg();
    let mut q = Sql::new(&format!(
        "SELECT '[' || {agg}({}, ',') || ']' AS accounts FROM accounts WHERE id",
        packed_account(dialect)
    ));
    q.in_ids(dialect, accounts);
    q
}

/// The statement of the rest of a load, in one row of texts, each read in place (`RowText`):
/// every row through sqlx's SQLite driver is a hand-off between threads (a wake-up each time)
/// and a conversion by its `Any` layer, and every statement a round trip (0.1-0.2 ms on
/// PostgreSQL's loopback, a dozen of them a single event's latency). `None` when there is
/// nothing to read.
/// - `events`: with `histories`, the contacts' histories (`crate::history`), every type with
///   properties; the thread that decides keeps what derivations read (`unpack`). Otherwise
///   NULL: read a row per contact and joined (`Histories`) by the native reader and by larger
///   chunks on PostgreSQL (`load_packed`).
/// - `others`: the rarer rest, in the histories' layout: events of contacts merged into
///   these, and anonymous events of their visitor ids. Written as `COALESCE(contact_id, 0)
///   = 0` rather than `contact_id IS NULL` so that SQLite starts from the visitor ids
///   instead of walking every anonymous event in the log.
/// - with `facts`, the contacts' deals and memberships (`load_chunk`).
fn rest_statement(
    dialect: Dialect,
    ids: &[i64],
    keep: &Keep,
    facts: bool,
    histories: bool,
) -> Option<Sql> {
    let types = |q: &mut Sql| {
        if let Some(t) = &keep.event_types {
            q.push(" AND e.type IN ").list(t.iter().map(String::as_str));
        }
    };
    let others = |q: &mut Sql| {
        const COLS: &str = "e.seq, e.type, e.at, e.properties";
        let mut rows = Sql::new(&format!(
            "SELECT {COLS}, c.merged_into AS owner FROM events e \
             JOIN contacts c ON c.id = e.contact_id WHERE c.merged_into"
        ));
        rows.in_ids(dialect, ids.iter().copied());
        types(&mut rows);
        rows.push(&format!(
            " UNION ALL SELECT {COLS}, v.contact_id AS owner FROM events e \
             JOIN visitor_identities v ON v.visitor_id = e.visitor_id \
             WHERE COALESCE(e.contact_id, 0) = 0 AND v.contact_id"
        ))
        .in_ids(dialect, ids.iter().copied());
        types(&mut rows);
        q.push(", ");
        crate::history::push_entries(q, dialect, rows);
        q.push(" AS others");
    };
    if keep.reads_events() {
        if histories {
            return Some(crate::history::load(dialect, ids, |q| {
                others(q);
                if facts {
                    push_facts(q, dialect, ids);
                }
            }));
        }
        let mut q = Sql::new("SELECT NULL AS events");
        others(&mut q);
        if facts {
            push_facts(&mut q, dialect, ids);
        }
        Some(q)
    } else if facts {
        let mut q = Sql::new("SELECT NULL AS events, NULL AS others");
        push_facts(&mut q, dialect, ids);
        Some(q)
    } else {
        None
    }
}

/// What a load keeps of the contacts' events; `None` keeps everything of that kind.
#[derive(Debug, Clone, Default)]
pub(crate) struct Keep {
    /// Only events of these types.
    pub event_types: Option<Vec<String>>,
    /// Properties only for these types (the others' are empty).
    pub property_types: Option<Vec<String>>,
    /// Of those, only these properties.
    pub property_keys: Option<Vec<String>>,
    /// Only these members of the contacts' details (the others read as empty).
    pub detail_keys: Option<Vec<String>>,
}

impl Keep {
    /// What derivations reading `patterns` and the details' `detail_keys` need of a load, and
    /// with `stage_rules`, what the lifecycle stage rules read too (see `Derivations::keep`).
    pub(crate) fn reading(
        patterns: &[&EventPattern],
        detail_keys: &[&str],
        stage_rules: bool,
    ) -> Self {
        let stage_types = orchard_core::lifecycle::EVENT_TYPES
            .iter()
            .copied()
            .filter(|_| stage_rules);
        let stage_keys = orchard_core::lifecycle::PROPERTY_KEYS
            .iter()
            .copied()
            .filter(|_| stage_rules);
        let sorted = |names: Vec<&str>| {
            let mut out: Vec<String> = names.into_iter().map(str::to_owned).collect();
            out.sort_unstable();
            out.dedup();
            out
        };
        Keep {
            event_types: Some(sorted(
                stage_types
                    .clone()
                    .chain(patterns.iter().map(|p| p.event_type.as_str()))
                    .collect(),
            )),
            property_types: Some(sorted(
                stage_types
                    .chain(
                        patterns
                            .iter()
                            .filter(|p| !p.filters.is_empty())
                            .map(|p| p.event_type.as_str()),
                    )
                    .collect(),
            )),
            property_keys: Some(sorted(
                stage_keys
                    .chain(
                        patterns
                            .iter()
                            .flat_map(|p| p.filters.iter().map(|f| f.property.as_str())),
                    )
                    .collect(),
            )),
            detail_keys: Some(sorted(detail_keys.to_vec())),
        }
    }

    /// Whether a load reads any event (a segment of attributes alone reads none).
    fn reads_events(&self) -> bool {
        !self
            .event_types
            .as_deref()
            .is_some_and(<[String]>::is_empty)
    }

    /// What this says of each SPEC type, by its index, looked up once rather than by comparing
    /// every event's type with the names kept (half a million events in a rebuild of 20 000).
    fn known(&self) -> Vec<(bool, bool)> {
        EventType::known()
            .map(|t| (self.event(t), self.properties_of(t)))
            .collect()
    }

    fn event(&self, t: &str) -> bool {
        self.event_types
            .as_ref()
            .is_none_or(|k| k.iter().any(|x| x == t))
    }

    fn properties_of(&self, t: &str) -> bool {
        self.property_types
            .as_ref()
            .is_none_or(|k| k.iter().any(|x| x == t))
    }
}

/// Events as `load_packed` reads them: `[owner, [item, ...]]` entries joined by commas, each
/// item `[seq, at, "type", length, properties]` (`crate::history`), as much of them as `keep`
/// says. Derivations read neither client nor visitor ids, so those stay empty.
///
/// Read by hand rather than through serde: the shape is fixed, and an item's length, the
/// bytes of its properties, lets what is not kept be stepped over without reading it (most of
/// a history, most of the time). A length is checked against the text around it, and an item
/// without one (written before the lengths were) is read through to its end.
fn events_from_packed(packed: &str, keep: &Keep) -> StoreResult<Vec<(i64, Vec<Event>)>> {
    let mut out = Vec::new();
    let mut r = Reader::new(packed, "histories");
    let known = keep.known();
    let mut scratch = Vec::new();
    while let Some(history) = next_history(&mut r, keep, &known, &mut scratch)? {
        out.push(history);
    }
    Ok(out)
}

/// Reads the history at `r` (`[owner,[items]]`) and the comma after it, or `None` at the end
/// of the text. `scratch` is empty between calls: a contact's events are gathered there and
/// then moved into a list of their number (grown by doubling, each contact's list was
/// reallocated and copied three times on average).
fn next_history(
    r: &mut Reader<'_>,
    keep: &Keep,
    known: &[(bool, bool)],
    scratch: &mut Vec<Event>,
) -> StoreResult<Option<(i64, Vec<Event>)>> {
    if r.at == r.text.len() {
        return Ok(None);
    }
    r.expect(b'[')?;
    let owner = r.int()?;
    r.expect(b',')?;
    r.expect(b'[')?;
    if !r.next_is(b']') {
        loop {
            read_item(r, owner, keep, known, scratch)?;
            if !r.next_is(b',') {
                r.expect(b']')?;
                break;
            }
        }
    }
    r.expect(b']')?;
    let mut exact = Vec::with_capacity(scratch.len());
    exact.append(scratch);
    if r.next_is(b',') {
        if r.at == r.text.len() {
            return Err(r.malformed("a history after ','"));
        }
    } else if r.at != r.text.len() {
        return Err(r.malformed("',' or the end"));
    }
    Ok(Some((owner, exact)))
}

/// Reads one history item, `[seq,at,"type",length,properties]`, of `owner`'s, onto `events`
/// when `keep` keeps its type (`known`: `Keep::known`).
fn read_item(
    r: &mut Reader<'_>,
    owner: i64,
    keep: &Keep,
    known: &[(bool, bool)],
    events: &mut Vec<Event>,
) -> StoreResult<()> {
    r.expect(b'[')?;
    let seq = r.int()?;
    r.expect(b',')?;
    let at = r.int()?;
    r.expect(b',')?;
    let t = r.slug()?;
    r.expect(b',')?;
    let properties = r.properties()?;
    r.expect(b']')?;
    let known_type = EventType::known_named(t);
    let (kept, with_properties) = match known_type.as_ref().and_then(EventType::known_index) {
        Some(i) => known[i],
        None => (keep.event(t), keep.properties_of(t)),
    };
    if !kept {
        return Ok(());
    }
    let properties = if !with_properties {
        serde_json::Map::new()
    } else if let Some(keys) = &keep.property_keys {
        members_only(properties, keys).map_err(json_err)?
    } else {
        serde_json::from_str(properties).map_err(json_err)?
    };
    let event_type = match known_type {
        Some(ty) => ty,
        None => EventType::parse(t).map_err(|e| StoreError::Backend(Box::new(e)))?,
    };
    events.push(Event {
        seq: EventSeq::new(seq),
        client_id: String::new(),
        event_type,
        contact_id: Some(ContactId::new(owner)),
        visitor_id: None,
        at: from_ms(at),
        properties,
    });
    Ok(())
}

/// A cursor over texts the database packed: histories (`events_from_packed`) and contacts
/// (`contacts::contacts_from_packed`).
pub(crate) struct Reader<'a> {
    text: &'a str,
    at: usize,
    /// What the text packs, for errors.
    of: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(text: &'a str, of: &'static str) -> Self {
        Self { text, at: 0, of }
    }

    #[cold]
    fn malformed(&self, what: &str) -> StoreError {
        StoreError::Backend(
            format!(
                "packed {} are malformed at byte {}: {what} expected",
                self.of, self.at
            )
            .into(),
        )
    }

    /// Steps over white space (the database packs none; a text written by hand may).
    #[inline]
    pub(crate) fn ws(&mut self) {
        while self
            .text
            .as_bytes()
            .get(self.at)
            .is_some_and(u8::is_ascii_whitespace)
        {
            self.at += 1;
        }
    }

    /// Nothing is left.
    pub(crate) fn end(&self) -> StoreResult<()> {
        if self.at == self.text.len() {
            Ok(())
        } else {
            Err(self.malformed("the end"))
        }
    }

    /// One member of an array, `read`, with white space around it and the comma after it
    /// unless it is the `last`.
    #[inline]
    pub(crate) fn member<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> StoreResult<T>,
        last: bool,
    ) -> StoreResult<T> {
        self.ws();
        let value = read(self)?;
        self.ws();
        if !last {
            self.expect(b',')?;
        }
        Ok(value)
    }

    /// `null`, or what `read` reads.
    #[inline]
    pub(crate) fn or_null<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        if self.text.as_bytes()[self.at..].starts_with(b"null") {
            self.at += 4;
            Ok(None)
        } else {
            read(self).map(Some)
        }
    }

    /// A JSON string, borrowed from the text unless it holds an escape (then serde reads it).
    pub(crate) fn string(&mut self) -> StoreResult<std::borrow::Cow<'a, str>> {
        let bytes = self.text.as_bytes();
        let open = self.at;
        self.expect(b'"')?;
        let mut escaped = false;
        let mut i = self.at;
        loop {
            let Some(found) = bytes
                .get(i..)
                .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
            else {
                self.at = open;
                return Err(self.malformed("a string"));
            };
            i += found;
            if bytes[i] == b'"' {
                break;
            }
            escaped = true;
            i += 2;
        }
        // Quotes are ASCII, so the bounds are character boundaries.
        let text = self.text;
        self.at = i + 1;
        if escaped {
            serde_json::from_str(&text[open..=i])
                .map(std::borrow::Cow::Owned)
                .map_err(|_| self.malformed("a string"))
        } else {
            Ok(std::borrow::Cow::Borrowed(&text[open + 1..i]))
        }
    }

    /// Any JSON value, as its text.
    pub(crate) fn raw(&mut self) -> StoreResult<&'a str> {
        let mut stream = serde_json::Deserializer::from_str(&self.text[self.at..])
            .into_iter::<&serde_json::value::RawValue>();
        match stream.next() {
            Some(Ok(raw)) => {
                self.at += stream.byte_offset();
                Ok(raw.get())
            }
            _ => Err(self.malformed("a JSON value")),
        }
    }

    /// Steps over `b` when it comes next.
    #[inline]
    pub(crate) fn next_is(&mut self, b: u8) -> bool {
        let is = self.text.as_bytes().get(self.at) == Some(&b);
        if is {
            self.at += 1;
        }
        is
    }

    /// Inlined, its error out of line: called a dozen times per event, it was a call apiece.
    #[inline]
    pub(crate) fn expect(&mut self, b: u8) -> StoreResult<()> {
        if self.next_is(b) {
            Ok(())
        } else {
            Err(self.unexpected(b))
        }
    }

    #[cold]
    fn unexpected(&self, b: u8) -> StoreError {
        self.malformed(&format!("'{}'", char::from(b)))
    }

    /// Inlined, its errors out of line: called three times per event, as a call returning a
    /// `StoreResult` through memory an integer cost some 110 instructions whatever its length,
    /// most of them the call's own.
    #[inline(always)]
    pub(crate) fn int(&mut self) -> StoreResult<i64> {
        match self.digits() {
            Ok(n) => Ok(n),
            Err(NotAnInt::Missing) => Err(self.malformed("an integer")),
            Err(NotAnInt::TooLong) => Err(self.malformed("a 64-bit integer")),
        }
    }

    /// `int` with what went wrong as a small value.
    #[inline(always)]
    fn digits(&mut self) -> Result<i64, NotAnInt> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let negative = self.next_is(b'-');
        let digits = self.at;
        // Eighteen digits cannot overflow: those are read with nothing checked per digit and
        // the cursor kept in a register (sequence numbers, times and lengths, three per event,
        // were nearly a fifth of the unpacking); only a longer run is checked digit by digit.
        // Runs of eight and then four digits are read a word at a time: a time has thirteen,
        // and digit by digit the integers were still a twentieth of a rebuild's instructions.
        let mut n: i64 = 0;
        let mut i = digits;
        let fast_end = bytes.len().min(digits + 18);
        while i + 8 <= fast_end {
            let Some(eight) = bytes.get(i..i + 8).and_then(eight_digits) else {
                break;
            };
            n = n * 100_000_000 - i64::from(eight);
            i += 8;
        }
        if i + 4 <= fast_end
            && let Some(four) = bytes.get(i..i + 4).and_then(four_digits)
        {
            n = n * 10_000 - i64::from(four);
            i += 4;
        }
        while i < fast_end {
            let d = bytes[i].wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            n = n * 10 - i64::from(d);
            i += 1;
        }
        self.at = i;
        if i == fast_end {
            while let Some(d) = bytes.get(self.at).filter(|b| b.is_ascii_digit()) {
                n = n
                    .checked_mul(10)
                    .and_then(|n| n.checked_sub(i64::from(d - b'0')))
                    .ok_or(NotAnInt::TooLong)?;
                self.at += 1;
            }
        }
        if self.at == digits {
            self.at = start;
            return Err(NotAnInt::Missing);
        }
        // Accumulated as a negative number, so that the most negative one fits.
        if negative {
            Ok(n)
        } else {
            n.checked_neg().ok_or(NotAnInt::TooLong)
        }
    }

    /// An event type: a quoted slug, which never holds an escape.
    fn slug(&mut self) -> StoreResult<&'a str> {
        self.expect(b'"')?;
        let rest = &self.text[self.at..];
        let end = rest
            .bytes()
            .position(|b| b == b'"' || b == b'\\')
            .filter(|&end| rest.as_bytes()[end] == b'"')
            .ok_or_else(|| self.malformed("an event type"))?;
        self.at += end + 1;
        Ok(&rest[..end])
    }

    /// An item's properties, `length,{...}` or, in an item written before lengths, `{...}`.
    fn properties(&mut self) -> StoreResult<&'a str> {
        let bytes = self.text.as_bytes();
        if bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            let len = usize::try_from(self.int()?).map_err(|_| self.malformed("a length"))?;
            self.expect(b',')?;
            let (start, end) = (self.at, self.at.saturating_add(len));
            // The object ends where the length says, and the item right after it.
            if len >= 2
                && end < bytes.len()
                && bytes[start] == b'{'
                && bytes[end - 1] == b'}'
                && bytes[end] == b']'
                && self.text.is_char_boundary(end)
            {
                self.at = end;
                return Ok(&self.text[start..end]);
            }
            return Err(self.malformed("properties of the length given"));
        }
        self.raw()
    }
}

/// Why `Reader::digits` read no integer.
#[derive(Debug, Clone, Copy)]
enum NotAnInt {
    /// No digit where one was expected.
    Missing,
    /// More than 64 bits' worth.
    TooLong,
}

/// Eight ASCII digits as the number they write, or `None` when one of them is not a digit:
/// the bytes as one little-endian word, checked and combined pairwise (two digits, then four,
/// then eight) rather than one at a time.
#[inline]
fn eight_digits(bytes: &[u8]) -> Option<u32> {
    let word = u64::from_le_bytes(bytes.try_into().ok()?);
    // Every byte 0x30..=0x39: its high nibble is 3, and still 3 once 6 is added to it (a byte
    // that carries is already refused by the first test).
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    if word & HIGH != ZEROS || word.wrapping_add(0x0606_0606_0606_0606) & HIGH != ZEROS {
        return None;
    }
    // The first digit is the lowest byte: each step folds a byte pair, most significant first.
    let v = word - ZEROS;
    let v = (v * 10 + (v >> 8)) & 0x00FF_00FF_00FF_00FF;
    let v = (v * 100 + (v >> 16)) & 0x0000_FFFF_0000_FFFF;
    let v = (v * 10_000 + (v >> 32)) & 0xFFFF_FFFF;
    u32::try_from(v).ok()
}

/// `eight_digits` for four, in a word of four (read as eight after four zeros, the copy cost
/// a rebuild 0.4% more instructions; digit by digit, 0.5%).
#[inline]
fn four_digits(bytes: &[u8]) -> Option<u16> {
    let word = u32::from_le_bytes(bytes.try_into().ok()?);
    const HIGH: u32 = 0xF0F0_F0F0;
    const ZEROS: u32 = 0x3030_3030;
    if word & HIGH != ZEROS || word.wrapping_add(0x0606_0606) & HIGH != ZEROS {
        return None;
    }
    let v = word - ZEROS;
    let v = (v * 10 + (v >> 8)) & 0x00FF_00FF;
    let v = (v * 100 + (v >> 16)) & 0xFFFF;
    u16::try_from(v).ok()
}

/// The members of the JSON object `text` named in `keys`; the others are skipped unparsed.
pub(crate) fn members_only(
    text: &str,
    keys: &[String],
) -> serde_json::Result<serde_json::Map<String, serde_json::Value>> {
    match members_scanned(text, keys) {
        Some(Ok(out)) => Ok(out),
        // Anything the scan does not take (escaped names, a malformed text) goes through serde,
        // which reads it or says what is wrong.
        _ => members_parsed(text, keys),
    }
}

/// `members_only` for the common case, scanned by hand: an object whose names hold no escape.
/// Through serde this was about 1 000 instructions per page view (`{"url":…}` of some 50 bytes)
/// in a rebuild, a twentieth of all; a member not asked for is stepped over by its brackets and
/// quotes, and one asked for is parsed alone (a plain string taken as it is). `None` when the
/// text is not such an object; `Some(Err)` when a value asked for is not JSON.
fn members_scanned(
    text: &str,
    keys: &[String],
) -> Option<serde_json::Result<serde_json::Map<String, serde_json::Value>>> {
    let bytes = text.as_bytes();
    let ws = |at: &mut usize| {
        while bytes.get(*at).is_some_and(u8::is_ascii_whitespace) {
            *at += 1;
        }
    };
    // The string that opens at `at`: its closing quote's index, and whether it holds an escape.
    let string_end = |at: usize| -> Option<(usize, bool)> {
        let mut escaped = false;
        let mut i = at + 1;
        loop {
            i += memchr::memchr2(b'"', b'\\', bytes.get(i..)?)?;
            if bytes[i] == b'"' {
                return Some((i, escaped));
            }
            escaped = true;
            i += 2;
        }
    };
    let mut out = serde_json::Map::new();
    let mut at = 0;
    ws(&mut at);
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    at += 1;
    ws(&mut at);
    if bytes.get(at) == Some(&b'}') {
        at += 1;
    } else {
        loop {
            if bytes.get(at) != Some(&b'"') {
                return None;
            }
            let (end, escaped) = string_end(at)?;
            if escaped {
                return None;
            }
            // Quotes are ASCII, so the name's bounds are character boundaries.
            let name = text.get(at + 1..end)?;
            at = end + 1;
            ws(&mut at);
            if bytes.get(at) != Some(&b':') {
                return None;
            }
            at += 1;
            ws(&mut at);
            // The value: a string, a bracketed value (strings inside skipped whole) or a
            // number or literal, which ends where the object goes on.
            let start = at;
            let mut plain = false;
            match *bytes.get(at)? {
                b'"' => {
                    let (end, escaped) = string_end(at)?;
                    plain = !escaped;
                    at = end + 1;
                }
                b'{' | b'[' => {
                    let mut depth = 0usize;
                    loop {
                        match *bytes.get(at)? {
                            b'"' => at = string_end(at)?.0,
                            b'{' | b'[' => depth += 1,
                            b'}' | b']' => {
                                depth -= 1;
                                if depth == 0 {
                                    at += 1;
                                    break;
                                }
                            }
                            _ => {}
                        }
                        at += 1;
                    }
                }
                _ => {
                    while !matches!(bytes.get(at), None | Some(b',' | b'}'))
                        && !bytes[at].is_ascii_whitespace()
                    {
                        at += 1;
                    }
                }
            }
            if keys.iter().any(|k| k == name) {
                let value = if plain {
                    serde_json::Value::String(text.get(start + 1..at - 1)?.to_owned())
                } else {
                    match serde_json::from_str(text.get(start..at)?) {
                        Ok(v) => v,
                        Err(e) => return Some(Err(e)),
                    }
                };
                out.insert(name.to_owned(), value);
            }
            ws(&mut at);
            match bytes.get(at) {
                Some(b',') => {
                    at += 1;
                    ws(&mut at);
                }
                Some(b'}') => {
                    at += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    ws(&mut at);
    (at == bytes.len()).then_some(Ok(out))
}

/// `members_only` through serde, for any text.
fn members_parsed(
    text: &str,
    keys: &[String],
) -> serde_json::Result<serde_json::Map<String, serde_json::Value>> {
    use std::borrow::Cow;
    use std::fmt;

    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

    /// A key, borrowed from the text unless it holds an escape.
    struct Key<'de>(Cow<'de, str>);
    impl<'de> serde::Deserialize<'de> for Key<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Key<'de>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a property name")
                }
                fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Borrowed(v)))
                }
                fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Owned(v.to_owned())))
                }
            }
            d.deserialize_str(V)
        }
    }
    struct Only<'k>(&'k [String]);
    impl<'de> Visitor<'de> for Only<'_> {
        type Value = serde_json::Map<String, serde_json::Value>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object of properties")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            let mut out = serde_json::Map::new();
            while let Some(Key(k)) = a.next_key()? {
                if self.0.iter().any(|w| *w == k) {
                    out.insert(k.into_owned(), a.next_value()?);
                } else {
                    a.next_value::<IgnoredAny>()?;
                }
            }
            Ok(out)
        }
    }
    impl<'de> DeserializeSeed<'de> for Only<'_> {
        type Value = serde_json::Map<String, serde_json::Value>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let out = Only(keys).deserialize(&mut de)?;
    de.end()?;
    Ok(out)
}

/// A contact's derived columns as stored.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Stored {
    score: i64,
    due: Option<i64>,
    digest: Option<i64>,
}

/// What a chunk's derivations read, all loaded before any is decided.
struct Loaded {
    subjects: Subjects,
    deals: IdMap<i64, Vec<DealFact>>,
    /// (segment, contact) pairs as `segment_members` holds them now.
    members: IdSet<(i64, i64)>,
    /// The chunk's share of `refresh_locked`'s `activity`.
    activity: IdMap<i64, i64>,
}

impl Loaded {
    /// Parses what is left of the chunk (`Subjects::unpack`) and splits off the contacts from
    /// `at` on, with their events, stored columns, deals, memberships and activity, as a chunk
    /// of their own: no contact's decision reads another's, so the two parts decide what the
    /// whole chunk would.
    fn split_off(&mut self, at: usize) -> StoreResult<Loaded> {
        self.subjects.unpack()?;
        let contacts = self.subjects.contacts.split_off(at);
        fn take<V>(from: &mut IdMap<i64, V>, ids: &[i64]) -> IdMap<i64, V> {
            ids.iter()
                .filter_map(|id| Some((*id, from.remove(id)?)))
                .collect()
        }
        let ids: Vec<i64> = contacts.iter().map(|c| c.id.get()).collect();
        let accounts = contacts
            .iter()
            .filter_map(|c| {
                let a = c.account_id?;
                Some((a, self.subjects.accounts.get(&a)?.clone()))
            })
            .collect();
        // `ids` is in id order, as `unpack_contacts` and `load_native` sort the contacts.
        let (theirs, ours) = std::mem::take(&mut self.members)
            .into_iter()
            .partition(|(_, c)| ids.binary_search(c).is_ok());
        self.members = ours;
        let mut subjects = Subjects::new(self.subjects.keep.clone());
        subjects.stored = take(&mut self.subjects.stored, &ids);
        subjects.events = take(&mut self.subjects.events, &ids);
        subjects.accounts = accounts;
        subjects.contacts = contacts;
        Ok(Loaded {
            subjects,
            deals: take(&mut self.deals, &ids),
            members: theirs,
            activity: take(&mut self.activity, &ids),
        })
    }
}

/// Appends the columns `deals` and `memberships` of `ids` to a `SELECT` of scalar subqueries,
/// each one text: deals as `contact:status:created:closed` and memberships as
/// `contact:segment;segment;…`, joined by commas. By the ids asked for, like the subjects: the
/// rows of contacts merged away are ignored. A row per deal or membership crossed sqlx's
/// driver thread on its own.
fn push_facts(q: &mut Sql, dialect: Dialect, ids: &[i64]) {
    let agg = dialect.string_agg();
    let deal = dialect.concat(&[
        "CAST(contact_id AS TEXT)",
        "':'",
        "status",
        "':'",
        "CAST(created_at AS TEXT)",
        "':'",
        "COALESCE(CAST(closed_at AS TEXT), '')",
    ]);
    // A contact's memberships as `contact:segment;segment;…`: one concatenation per contact
    // where one per membership (two numbers made text and joined, for the three or four
    // segments a contact is in) was most of what SQLite spent on them.
    let grouped = dialect.concat(&[
        "CAST(contact_id AS TEXT)",
        "':'",
        &format!("{agg}(CAST(segment_id AS TEXT), ';')"),
    ]);
    q.push(&format!(
        ", (SELECT {agg}({deal}, ',') FROM deals WHERE contact_id"
    ));
    q.in_ids(dialect, ids.iter().copied()).push(") AS deals, ");
    // By contact alone: a second IN list over the segments let PostgreSQL, with statistics
    // taken while the table was still empty, scan the whole table comparing each row with
    // both lists (0.8 s a chunk). Memberships of other segments are read and ignored.
    q.push(&format!(
        "(SELECT {agg}(contact_memberships, ',') FROM (SELECT {grouped} AS \
         contact_memberships FROM segment_members WHERE contact_id"
    ))
    .in_ids(dialect, ids.iter().copied())
    .push(" GROUP BY contact_id) grouped) AS memberships");
}

async fn load_chunk(
    tx: &mut AnyConnection,
    what: &Derivations,
    ids: &[ContactId],
    activity: &IdMap<i64, i64>,
) -> StoreResult<Loaded> {
    let raw: Vec<i64> = ids.iter().map(|c| c.get()).collect();
    let subjects = load_packed(tx, &raw, what.keep.clone(), true).await?;
    loaded(subjects, &raw, activity)
}

/// `load_chunk` on the native SQLite reader (`crate::native`).
fn load_chunk_native(
    snapshot: &Snapshot,
    what: &Derivations,
    ids: &[ContactId],
    activity: &IdMap<i64, i64>,
) -> StoreResult<Loaded> {
    let raw: Vec<i64> = ids.iter().map(|c| c.get()).collect();
    let subjects = load_native(snapshot, &raw, what.keep.clone(), true)?;
    loaded(subjects, &raw, activity)
}

/// A chunk's load finished: its contacts parsed, its deals and memberships read.
fn loaded(mut subjects: Subjects, raw: &[i64], activity: &IdMap<i64, i64>) -> StoreResult<Loaded> {
    subjects.unpack_contacts()?;
    let mut loaded = Loaded {
        subjects,
        deals: IdMap::default(),
        members: IdSet::default(),
        activity: raw
            .iter()
            .filter_map(|c| Some((*c, *activity.get(c)?)))
            .collect(),
    };
    if loaded.subjects.contacts.is_empty() {
        // None of them is live.
        return Ok(loaded);
    }
    loaded.deals = deals_of(&loaded.subjects)?;
    // Read in place, not copied out of the row (see `RowText`).
    let row = loaded.subjects.packed.as_ref();
    let members = row.map(|r| r.other("memberships")).transpose()?.flatten();
    for text in crate::joined(members) {
        memberships(text, |contact, segment| {
            loaded.members.insert((segment, contact));
        })?;
    }
    Ok(loaded)
}

/// The deals of contacts loaded with their facts (`load_packed`), by contact.
fn deals_of(subjects: &Subjects) -> StoreResult<IdMap<i64, Vec<DealFact>>> {
    let mut out: IdMap<i64, Vec<DealFact>> = IdMap::default();
    // Read in place, not copied out of the row (see `RowText`).
    let row = subjects.packed.as_ref();
    let deals = row.map(|r| r.other("deals")).transpose()?.flatten();
    for text in crate::joined(deals) {
        let mut parts = text.splitn(4, ':');
        let mut next = || {
            parts
                .next()
                .ok_or_else(|| StoreError::Backend(format!("a deal read back as {text:?}").into()))
        };
        let (contact, status, created, closed) = (next()?, next()?, next()?, next()?);
        out.entry(joined_int(contact, "deal's contact")?)
            .or_default()
            .push(DealFact {
                status: DealStatus::parse(status).unwrap_or(DealStatus::Open),
                created_at: from_ms(joined_int(created, "deal's creation time")?),
                closed_at: match closed {
                    "" => None,
                    t => Some(from_ms(joined_int(t, "deal's closing time")?)),
                },
            });
    }
    Ok(out)
}

/// Hands `each` the (contact, segment) pairs of a contact's memberships as `load_chunk` reads
/// them, `contact:segment;segment;…`.
fn memberships(text: &str, mut each: impl FnMut(i64, i64)) -> StoreResult<()> {
    let bad = || StoreError::Backend(format!("memberships read back as {text:?}").into());
    let (contact, segments) = text.split_once(':').ok_or_else(bad)?;
    let contact: i64 = contact.parse().map_err(|_| bad())?;
    for segment in segments.split(';') {
        each(contact, segment.parse().map_err(|_| bad())?);
    }
    Ok(())
}

/// The writes a chunk's derivations decided, as rows ready to bind.
#[derive(Default)]
struct Writes {
    /// Contacts whose score history is replaced whole (the rest only grew).
    rewrite: Vec<i64>,
    score_changes: Vec<Vec<Arg>>,
    /// `stage_changed`, `segment_entered` and `segment_left` events, and their property names
    /// (`events::property_names`).
    derived: Vec<Vec<Arg>>,
    /// How many of `derived`, from the first, are stage changes (the rest are segments').
    stage_events: usize,
    derived_names: crate::events::PropertyNames,
    entered: Vec<Vec<Arg>>,
    left: Vec<(i64, i64)>,
    /// (id, score, due, stage, digest, last activity) of the contacts whose derived columns
    /// or last activity changed.
    contacts: Vec<[Arg; 6]>,
}

impl Writes {
    /// Adds `later`'s writes after these, for contacts after these ones: a chunk decided in two
    /// parts (`decide_in_two`) writes what it would have written decided whole, in the same
    /// order (derived events too: every stage change of the chunk before any segment entry or
    /// exit, as the sequence numbers they get follow).
    fn append(&mut self, later: Writes) {
        let Writes {
            rewrite,
            score_changes,
            mut derived,
            stage_events,
            derived_names,
            entered,
            left,
            contacts,
        } = later;
        self.rewrite.extend(rewrite);
        self.score_changes.extend(score_changes);
        let memberships = self.derived.split_off(self.stage_events);
        let later_memberships = derived.split_off(stage_events);
        self.derived.extend(derived);
        self.derived.extend(memberships);
        self.derived.extend(later_memberships);
        self.stage_events += stage_events;
        self.derived_names.extend(derived_names);
        self.entered.extend(entered);
        self.left.extend(left);
        self.contacts.extend(contacts);
    }

    /// Adds a derived event, and its property names unless they are there already (a chunk's
    /// derived events carry the same few).
    fn derive(&mut self, event: &NewEvent, received: i64) -> StoreResult<()> {
        self.derived.push(event_row(event, received)?);
        let t = event.event_type.as_str();
        for k in event.properties.keys() {
            if !self.derived_names.iter().any(|(dt, dk)| dt == t && dk == k) {
                self.derived_names.insert((t.to_owned(), k.clone()));
            }
        }
        Ok(())
    }
}

/// Decides a loaded chunk: scores, stage moves and memberships, and what to write for them.
/// Reads nothing but its arguments, so it can run beside the loading of the next chunk.
fn decide(what: &Derivations, loaded: Loaded, now: DateTime<Utc>) -> StoreResult<Writes> {
    decide_received(what, loaded, now, ms(Utc::now()))
}

/// `decide`, with derived events received at `received` (epoch ms).
fn decide_received(
    what: &Derivations,
    loaded: Loaded,
    now: DateTime<Utc>,
    received: i64,
) -> StoreResult<Writes> {
    let Loaded {
        mut subjects,
        deals,
        members,
        activity,
    } = loaded;
    subjects.unpack()?;
    let live: Vec<i64> = subjects.contacts.iter().map(|c| c.id.get()).collect();
    let stored = std::mem::take(&mut subjects.stored);
    let mut out = Writes::default();
    if live.is_empty() {
        return Ok(out);
    }
    // Last activity first, although no derivation reads it yet.
    let mut active: IdMap<i64, i64> = IdMap::default();
    for c in &mut subjects.contacts {
        if let Some(at) = activity.get(&c.id.get()).copied()
            && c.last_activity_at.is_none_or(|was| ms(was) < at)
        {
            c.last_activity_at = Some(from_ms(at));
            active.insert(c.id.get(), at);
        }
    }
    let mut digests: IdMap<i64, i64> = IdMap::default();
    let mut dues: IdMap<i64, Option<i64>> =
        IdMap::with_capacity_and_hasher(live.len(), Default::default());
    let mut scores: IdMap<i64, i64> = IdMap::default();
    let mut scored_by: IdMap<i64, orchard_core::scoring::Scored> = IdMap::default();
    if let Some(set) = &what.scoring {
        let mut contacts = std::mem::take(&mut subjects.contacts);
        for c in &mut contacts {
            let s = subjects.subject(c, now);
            let scored = score(set, c, s.account, s.events, now);
            let digest = scored.digest(set.version);
            digests.insert(c.id.get(), digest);
            let was = stored.get(&c.id.get()).and_then(|s| s.digest);
            if was != Some(digest) {
                // A new event usually extends the history: when the stored one is a prefix of
                // the new one, only the rest is written; otherwise it is rewritten whole.
                let prefixes = scored.prefix_digests(set.version);
                let kept = was
                    .and_then(|w| prefixes.iter().rposition(|d| *d == w))
                    .unwrap_or_else(|| {
                        out.rewrite.push(c.id.get());
                        0
                    });
                out.score_changes
                    .extend(scored.changes[kept..].iter().map(|ch| {
                        vec![
                            c.id.get().into(),
                            set.version.into(),
                            (&*ch.rule_id).into(),
                            ch.points.into(),
                            ms(ch.at).into(),
                            ch.event.map(EventSeq::get).into(),
                            (&*ch.cause).into(),
                        ]
                    }));
            }
            scores.insert(c.id.get(), scored.score);
            dues.insert(c.id.get(), scored.due.map(ms));
            // Stages and segments read the new score.
            c.score = scored.score;
            scored_by.insert(c.id.get(), scored);
        }
        subjects.contacts = contacts;
    }

    let stages = if what.partial {
        IdMap::default()
    } else {
        decide_stages(
            what,
            &mut subjects,
            &scored_by,
            &deals,
            now,
            received,
            &mut out,
        )?
    };
    // Nothing else is derived before this point: the stage changes lead (`Writes::append`).
    out.stage_events = out.derived.len();

    for (c, due) in
        decide_memberships(&what.segments, &subjects, &members, now, received, &mut out)?
    {
        let d = dues.entry(c).or_default();
        *d = match (*d, due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    if what.partial {
        // What else may change for a contact is as stored: its due time stands unless this
        // decision's is sooner.
        for c in &live {
            let was = stored.get(c).and_then(|s| s.due);
            let due = dues.entry(*c).or_default();
            *due = match (*due, was) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }

    // Only contacts whose derived columns changed are written.
    out.contacts = live
        .iter()
        .filter_map(|c| {
            let was = stored.get(c).copied().unwrap_or_default();
            let score = scores.get(c).copied();
            let due = dues.get(c).copied().flatten();
            let stage = stages.get(c);
            let digest = digests.get(c).copied();
            let last = active.get(c).copied();
            let changed = last.is_some()
                || score.is_some_and(|s| s != was.score)
                || due != was.due
                || stage.is_some()
                || digest.is_some_and(|d| Some(d) != was.digest);
            changed.then(|| {
                [
                    Arg::Int(Some(*c)),
                    Arg::Int(score),
                    Arg::Int(due),
                    Arg::Text(stage.map(|s| s.as_str().to_owned())),
                    Arg::Int(digest),
                    Arg::Int(last),
                ]
            })
        })
        .collect();
    Ok(out)
}

async fn write_chunk(tx: &mut AnyConnection, dialect: Dialect, w: Writes) -> StoreResult<()> {
    // Derived events are logged, not applied: they do not feed back into the refresh that
    // made them, and their ids make a repeated refresh store nothing twice.
    // The chunk's contacts were taken by the refresh.
    crate::events::store_events(tx, dialect, w.derived, &w.derived_names).await?;
    // The rest reads nothing another of them writes, so it goes to the database together
    // (`crate::together`). On PostgreSQL, one statement: its parts run in no set order on one
    // snapshot, so a rewritten score history's DELETE never sees the rows its INSERT adds
    // (`score_changes` has no unique key that the two could meet on), memberships entered
    // and left are different pairs (`segment::change`), and each contact is updated once.
    let mut statements = Vec::new();
    for ids in w.rewrite.chunks(dialect.rows_per_statement(1)) {
        let mut del = Sql::new("DELETE FROM score_changes WHERE contact_id");
        del.in_ids(dialect, ids.iter().copied());
        statements.push(del);
    }
    /// Table, columns, rows, conflict clause.
    type Insert<'a> = (&'a str, &'a [&'a str], Vec<Vec<Arg>>, &'a str);
    let inserts: [Insert; 2] = [
        (
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
            w.score_changes,
            "",
        ),
        (
            "segment_members",
            &["segment_id", "contact_id", "since"],
            w.entered,
            "ON CONFLICT (segment_id, contact_id) DO NOTHING",
        ),
    ];
    for (table, columns, rows, suffix) in inserts {
        statements.extend(multi_insert(dialect, table, columns, rows, suffix));
    }
    // A few hundred memberships per statement: one each was a round trip apiece on
    // PostgreSQL. By contact first, so that SQLite searches its contact index rather than
    // scanning the table for the pairs.
    for pairs in w.left.chunks(dialect.rows_per_statement(3)) {
        let mut del = Sql::new("DELETE FROM segment_members WHERE contact_id");
        del.in_ids(dialect, pairs.iter().map(|(_, c)| *c))
            .push(" AND (segment_id, contact_id) IN (VALUES ");
        for (i, (seg, c)) in pairs.iter().enumerate() {
            if i > 0 {
                del.push(", ");
            }
            del.list([*seg, *c]);
        }
        del.push(")");
        statements.push(del);
    }
    // A few hundred contacts per statement.
    for chunk in w.contacts.chunks(dialect.rows_per_statement(6)) {
        let mut up = Sql::new("WITH v(id, score, due, stage, digest, last) AS (VALUES ");
        for (i, row) in chunk.iter().enumerate() {
            if i > 0 {
                up.push(", ");
            }
            up.list(row.iter().cloned());
        }
        up.push(") ").push(dialect.update()).push(
            " contacts SET score = COALESCE(CAST(v.score AS BIGINT), contacts.score), \
             due_at = CAST(v.due AS BIGINT), \
             stage = COALESCE(CAST(v.stage AS TEXT), contacts.stage), \
             score_digest = COALESCE(CAST(v.digest AS BIGINT), contacts.score_digest), \
             last_activity_at = COALESCE(CAST(v.last AS BIGINT), contacts.last_activity_at) \
             FROM v WHERE contacts.id = v.id",
        );
        statements.push(up);
    }
    for sql in crate::together(dialect, statements) {
        sql.query(dialect)
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?;
    }
    Ok(())
}

/// Applies the lifecycle stage rules (`orchard_core::lifecycle`) to the loaded contacts: each
/// transition becomes a `stage_changed` event with its cause, and the new stage is returned for
/// the contacts that moved (and set on `subjects`, so that segments read it).
fn decide_stages(
    what: &Derivations,
    subjects: &mut Subjects,
    scored_by: &IdMap<i64, orchard_core::scoring::Scored>,
    deals: &IdMap<i64, Vec<DealFact>>,
    now: DateTime<Utc>,
    received: i64,
    out: &mut Writes,
) -> StoreResult<IdMap<i64, LifecycleStage>> {
    let thresholds = what
        .scoring
        .as_ref()
        .map(|s| s.thresholds)
        .unwrap_or_default();
    let mut moved = IdMap::default();
    let mut contacts = std::mem::take(&mut subjects.contacts);
    for c in &mut contacts {
        let scored = scored_by.get(&c.id.get());
        let facts = Facts {
            stage: c.stage,
            events: subjects.subject(c, now).events,
            score_changes: scored.map(|s| s.changes.as_slice()).unwrap_or_default(),
            deals: deals
                .get(&c.id.get())
                .map(Vec::as_slice)
                .unwrap_or_default(),
            disqualified_by: scored
                .map(|s| s.disqualified_by.as_slice())
                .unwrap_or_default(),
            thresholds,
            now,
        };
        let steps = transitions(&facts);
        for t in &steps {
            let mut props = serde_json::Map::new();
            props.insert("from".into(), t.from.as_str().into());
            props.insert("to".into(), t.to.as_str().into());
            props.insert("cause".into(), t.cause.as_str().into());
            props.insert("manual".into(), false.into());
            if let Some(seq) = t.event {
                props.insert("event_seq".into(), seq.get().into());
            }
            let event = NewEvent {
                client_id: format!("stage:{}:{}:{}", c.id.get(), t.to.as_str(), ms(t.at)),
                event_type: EventType::parse(STAGE_CHANGED)
                    .map_err(|e| StoreError::Invalid(e.to_string()))?,
                contact_id: Some(c.id),
                visitor_id: None,
                at: t.at,
                properties: props,
            };
            out.derive(&event, received)?;
        }
        if let Some(last) = steps.last() {
            c.stage = last.to;
            moved.insert(c.id.get(), last.to);
        }
    }
    subjects.contacts = contacts;
    Ok(moved)
}

/// Decides every segment for the loaded contacts against `members` (what `segment_members`
/// holds): each difference becomes a membership write and a `segment_entered` /
/// `segment_left` event. Returns each contact's earliest segment due time.
fn decide_memberships(
    segments: &[Segment],
    subjects: &Subjects,
    members: &IdSet<(i64, i64)>,
    now: DateTime<Utc>,
    received: i64,
    out: &mut Writes,
) -> StoreResult<IdMap<i64, Option<i64>>> {
    let mut dues = IdMap::default();
    if segments.is_empty() {
        return Ok(dues);
    }
    for c in &subjects.contacts {
        let s = subjects.subject(c, now);
        let mut due: Option<i64> = None;
        for seg in segments {
            let (is, next) = membership(seg, &s);
            if let Some(t) = next {
                due = Some(due.map_or(ms(t), |d| d.min(ms(t))));
            }
            let was = members.contains(&(seg.id.get(), c.id.get()));
            let Some(ch) = change(was, is) else {
                continue;
            };
            match ch {
                Change::Entered => {
                    out.entered
                        .push(vec![seg.id.get().into(), c.id.get().into(), ms(now).into()])
                }
                Change::Left => out.left.push((seg.id.get(), c.id.get())),
            }
            let mut props = serde_json::Map::new();
            props.insert("segment_id".into(), seg.id.get().into());
            props.insert("segment".into(), seg.name.as_str().into());
            let event = NewEvent {
                client_id: format!(
                    "{}:{}:{}:{}",
                    ch.event_type(),
                    seg.id.get(),
                    c.id.get(),
                    ms(now)
                ),
                event_type: EventType::parse(ch.event_type())
                    .map_err(|e| StoreError::Invalid(e.to_string()))?,
                contact_id: Some(c.id),
                visitor_id: None,
                at: now,
                properties: props,
            };
            out.derive(&event, received)?;
        }
        dues.insert(c.id.get(), due);
    }
    Ok(dues)
}

impl SqlStore {
    /// `refresh_what` in a transaction of its own.
    async fn refresh_transaction(
        &self,
        ids: &[ContactId],
        now: DateTime<Utc>,
        what: Refresh,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        // Before the transaction writes anything (see `crate::native`).
        let native = match self.native_shared() {
            Some(reads) if !ids.is_empty() => Some(Native::take(reads).await?),
            _ => None,
        };
        refresh_what(&mut tx, self.dialect(), ids, now, what, native).await?;
        tx.commit().await
    }

    /// The `id` column of a query's rows, as contact ids.
    async fn contact_ids(&self, sql: Sql) -> StoreResult<Vec<ContactId>> {
        let mut conn = self.pool().acquire().await.map_err(backend_err)?;
        Ok(ids_of(&mut conn, sql)
            .await?
            .into_iter()
            .map(ContactId::new)
            .collect())
    }
}

/// A backtest's chunk: each contact scored by both sets as of `cutoff` (`backtest::score_both`),
/// with whether it converted after; contact by contact until `stopped` is raised.
fn replay_chunk(
    sets: &(RuleSet, RuleSet),
    converted: &std::collections::HashSet<i64>,
    subjects: &mut Subjects,
    cutoff: DateTime<Utc>,
    stopped: &Free,
) -> StoreResult<Vec<orchard_core::backtest::Scored>> {
    let deals = deals_of(subjects)?;
    subjects.unpack()?;
    let mut out = Vec::with_capacity(subjects.contacts.len());
    for c in &subjects.contacts {
        if stopped.raised() {
            return Err(StoreError::Busy("the backtest was stopped".into()));
        }
        out.push(orchard_core::backtest::score_both(
            &sets.0,
            &sets.1,
            &subjects.subject(c, cutoff),
            deals.get(&c.id.get()).map_or(&[], Vec::as_slice),
            cutoff,
            converted.contains(&c.id.get()),
        ));
    }
    Ok(out)
}

#[async_trait]
impl ScoringStore for SqlStore {
    async fn save_rule_set(
        &self,
        def: &RuleSetDef,
        live: bool,
        at: DateTime<Utc>,
    ) -> StoreResult<i64> {
        RuleSet::compile_new(def).map_err(|e| StoreError::Invalid(e.to_string()))?;
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
        self.insert_returning(ins, "version").await
    }

    async fn live_rule_set(&self) -> StoreResult<Option<RuleSetVersion>> {
        let sql = Sql::new(&format!(
            "{RULE_SET_COLUMNS} WHERE live_since IS NOT NULL ORDER BY live_since DESC, version DESC LIMIT 1"
        ));
        sql.query(self.dialect)
            .fetch_optional(self.pool())
            .await
            .map_err(backend_err)?
            .map(|r| version_from_row(&r))
            .transpose()
    }

    async fn rule_sets(&self) -> StoreResult<Vec<RuleSetVersion>> {
        let sql = Sql::new(&format!("{RULE_SET_COLUMNS} ORDER BY version DESC"));
        sql.query(self.dialect)
            .fetch_all(self.pool())
            .await
            .map_err(backend_err)?
            .iter()
            .map(version_from_row)
            .collect()
    }

    #[tracing::instrument(skip_all, fields(contacts = ids.len()))]
    async fn refresh(&self, ids: &[ContactId], now: DateTime<Utc>) -> StoreResult<()> {
        self.refresh_transaction(ids, now, Refresh::Everything)
            .await
    }

    #[tracing::instrument(skip_all, fields(contacts = ids.len()))]
    async fn refresh_segment(
        &self,
        segment: SegmentId,
        ids: &[ContactId],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.refresh_transaction(ids, now, Refresh::Segment(segment))
            .await
    }

    async fn repack_histories(&self) -> StoreResult<orchard_store::Repacked> {
        let mut tx = self.begin().await?;
        let mut n = crate::history::repack(&mut tx, self.dialect()).await?;
        n.missing_types = crate::events::record_all_types(&mut tx, self.dialect()).await?;
        n.missing_properties = crate::events::record_all_names(&mut tx, self.dialect()).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn due_for_refresh(&self, now: DateTime<Utc>, limit: i64) -> StoreResult<Vec<ContactId>> {
        let mut sql = Sql::new("SELECT id FROM contacts WHERE due_at <= ");
        sql.arg(ms(now))
            .push(" ORDER BY due_at LIMIT ")
            .arg(limit.clamp(1, 100_000));
        self.contact_ids(sql).await
    }

    async fn contact_ids_after(
        &self,
        after: Option<ContactId>,
        limit: i64,
    ) -> StoreResult<Vec<ContactId>> {
        // One row, the ids joined by commas: a rebuild pages through every contact, and a row
        // per id crossed sqlx's driver thread on its own.
        let agg = self.dialect().string_agg();
        let mut sql = Sql::new(&format!(
            "SELECT {agg}(CAST(id AS TEXT), ',') AS ids FROM (SELECT id FROM contacts \
             WHERE merged_into IS NULL AND id > "
        ));
        sql.arg(after.map_or(0, ContactId::get))
            .push(" ORDER BY id LIMIT ")
            .arg(limit.clamp(1, 100_000))
            .push(") page");
        let mut conn = self.pool().acquire().await.map_err(backend_err)?;
        let rows = sql.fetch_all_in(&mut conn).await?;
        let joined: Option<String> = match rows.first() {
            Some(row) => get(row, "ids")?,
            None => None,
        };
        let mut ids = crate::joined(joined.as_deref())
            .map(|t| joined_int(t, "contact id").map(ContactId::new))
            .collect::<StoreResult<Vec<ContactId>>>()?;
        // The order an aggregate joins rows in is not promised.
        ids.sort_unstable();
        Ok(ids)
    }

    #[tracing::instrument(skip_all)]
    async fn backtest_scores(
        &self,
        live: &RuleSet,
        draft: &RuleSet,
        cutoff: DateTime<Utc>,
    ) -> StoreResult<Vec<orchard_core::backtest::Scored>> {
        let mut source = Source::of(self).await?;
        let mut won_after = Sql::new(
            "SELECT DISTINCT COALESCE(c.merged_into, c.id) AS id FROM deals d \
             JOIN contacts c ON c.id = d.contact_id WHERE d.status = 'won' AND d.closed_at > ",
        );
        won_after.arg(ms(cutoff));
        let converted: Arc<std::collections::HashSet<i64>> = Arc::new(
            ids_of(source.conn(), won_after)
                .await?
                .into_iter()
                .collect(),
        );
        // Only what the two sets and the stage rules read, and a pipeline as a refresh runs:
        // while one chunk is replayed on a blocking thread, the next is loaded.
        let patterns: Vec<&EventPattern> = live
            .patterns()
            .into_iter()
            .chain(draft.patterns())
            .collect();
        let detail_keys: Vec<&str> = live
            .detail_keys()
            .into_iter()
            .chain(draft.detail_keys())
            .collect();
        let mut keep = Keep::reading(&patterns, &detail_keys, true);
        // `lifecycle::replayed_stage` starts from the `to` of the last stage set by hand,
        // which a refresh never reads.
        if let Some(keys) = &mut keep.property_keys {
            keys.push("to".to_owned());
            keys.sort_unstable();
            keys.dedup();
        }
        let sets = Arc::new((live.clone(), draft.clone()));
        // Raised when this pass is dropped (its caller gave up: a time limit reached, a
        // client gone), so that the chunk being replayed stops at its next contact rather than
        // keep a core busy to its end: a costly draft takes seconds a chunk.
        let stopped = Free::new(false);
        let _stop = stopped.on_drop();
        let mut out = Vec::new();
        let mut after = 0i64;
        let mut replaying: Option<(tokio::task::JoinHandle<StoreResult<Vec<_>>>, Free)> = None;
        loop {
            let mut ids =
                Sql::new("SELECT id FROM contacts WHERE merged_into IS NULL AND created_at <= ");
            ids.arg(ms(cutoff))
                .push(" AND id > ")
                .arg(after)
                .push(" ORDER BY id LIMIT ")
                .arg(CHUNK as i64);
            let ids = source.ids(ids).await?;
            after = ids.last().copied().unwrap_or(after);
            // With their deals, for the stages each set gives them.
            let loaded = if ids.is_empty() {
                None
            } else {
                let free = replaying
                    .as_ref()
                    .map_or_else(|| Free::new(true), |r| r.1.clone());
                Some(source.load(ids, keep.clone(), true, free).await?)
            };
            if let Some((r, _)) = replaying.take() {
                out.extend(r.await.map_err(|e| StoreError::Backend(Box::new(e)))??);
            }
            let Some(mut subjects) = loaded else {
                return Ok(out);
            };
            let (sets, converted) = (Arc::clone(&sets), Arc::clone(&converted));
            let free = Free::new(false);
            let done = free.on_drop();
            let stopped = stopped.clone();
            let task = tokio::task::spawn_blocking(move || {
                let _done = done;
                replay_chunk(&sets, &converted, &mut subjects, cutoff, &stopped)
            });
            replaying = Some((task, free));
        }
    }

    async fn forget_score_digests(&self) -> StoreResult<u64> {
        self.write(Sql::new(
            "UPDATE contacts SET score_digest = NULL WHERE score_digest IS NOT NULL",
        ))
        .await
    }

    async fn score_as_of(
        &self,
        id: ContactId,
        set: &RuleSet,
        at: DateTime<Utc>,
    ) -> StoreResult<orchard_core::scoring::Scored> {
        let mut conn = self.pool().acquire().await.map_err(backend_err)?;
        let subjects = load_subjects(&mut conn, &[id.get()], Keep::default()).await?;
        let c = subjects.contacts.first().ok_or(StoreError::NotFound)?;
        let s = subjects.subject(c, at);
        Ok(score(set, c, s.account, s.events, at))
    }

    async fn score_changes(&self, id: ContactId) -> StoreResult<Vec<StoredScoreChange>> {
        let mut sql = Sql::new(
            "SELECT rule_version, rule_id, points, at, event_seq, cause FROM score_changes \
             WHERE contact_id = ",
        );
        sql.arg(id.get())
            .push(" ORDER BY at, COALESCE(event_seq, -1), rule_id");
        sql.query(self.dialect)
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_chunk_decided_in_two_writes_its_derived_events_in_one_order() {
        // Stage changes lead, then segment entries and exits, as one decision writes them.
        let row = |name: &str| vec![Arg::Text(Some(name.to_owned()))];
        let mut first = Writes {
            derived: vec![row("stage 1"), row("segment 1")],
            stage_events: 1,
            contacts: vec![[(); 6].map(|_| Arg::Int(Some(1)))],
            ..Writes::default()
        };
        let later = Writes {
            derived: vec![row("stage 2"), row("stage 3"), row("segment 3")],
            stage_events: 2,
            contacts: vec![[(); 6].map(|_| Arg::Int(Some(3)))],
            ..Writes::default()
        };
        first.append(later);
        let names = ["stage 1", "stage 2", "stage 3", "segment 1", "segment 3"];
        assert_eq!(first.derived, names.map(row).to_vec());
        assert_eq!(first.stage_events, 3);
        assert_eq!(first.contacts.len(), 2);
        assert_eq!(first.contacts[1][0], Arg::Int(Some(3)));
    }

    #[test]
    fn only_the_named_members_are_kept() {
        let keys = ["url".to_owned(), "funnel\"stage".to_owned()];
        let text = r#"{"referrer":"https://x.example/?a=[1]","url":"/pricing","utm":{"s":[1,2]},
                       "funnel\"stage":"top","n":1.5}"#;
        let kept = members_only(text, &keys).unwrap();
        assert_eq!(
            serde_json::Value::Object(kept),
            json!({"url": "/pricing", "funnel\"stage": "top"})
        );
        // Nested values come whole; nothing named leaves an empty object.
        let nested = members_only(r#"{"url":{"path":"/p","q":[1]}}"#, &keys).unwrap();
        assert_eq!(nested["url"], json!({"path": "/p", "q": [1]}));
        assert!(members_only(r#"{"other":1}"#, &keys).unwrap().is_empty());
        // Not an object, or more after it: an error, as a full parse gives.
        assert!(members_only("[1]", &keys).is_err());
        assert!(members_only(r#"{"url":"/p"} x"#, &keys).is_err());
        assert!(members_only(r#"{"url":"/p""#, &keys).is_err());
    }

    #[test]
    fn packed_contacts_keep_the_details_asked_for() {
        let packed = r#"[[7,"ann@acme.com",{"first_name":"Ann","country":"DE","company_size":120,
            "tags":["vip"],"custom":{"plan":"pro"}},null,null,"mql",45,"google",1000,2000,null,
            3000,-9]]"#;
        let keys = ["company_size".to_owned(), "custom".to_owned()];
        let (c, due, digest) = crate::contacts::contacts_from_packed(packed, Some(&keys))
            .unwrap()
            .remove(0);
        assert_eq!(
            (c.id.get(), c.score, due, digest),
            (7, 45, Some(3000), Some(-9))
        );
        assert_eq!(c.details.demographics.company_size, Some(120));
        assert_eq!(c.details.custom["plan"], "pro");
        assert_eq!(c.details.first_name, None);
        assert_eq!(c.details.geography.country, None);
        assert!(c.details.psychographics.tags.is_empty());
        let (all, _, _) = crate::contacts::contacts_from_packed(packed, None)
            .unwrap()
            .remove(0);
        assert_eq!(all.details.first_name.as_deref(), Some("Ann"));
        assert_eq!(all.details.geography.country.as_deref(), Some("DE"));
        assert_eq!(all.details.psychographics.tags, ["vip"]);
        // Picked out by the database: the same members, by position; null is missing.
        let picked = r#"[[7,"ann@acme.com",[120,{"plan":"pro"}],null,null,"mql",45,"google",
            1000,2000,null,3000,-9],[8,"bo@acme.com",[null,null],null,null,"iql",0,null,1000,
            2000,null,null,null]]"#;
        let read = crate::contacts::contacts_from_packed(picked, Some(&keys)).unwrap();
        assert_eq!(read[0].0.details, c.details);
        assert_eq!(
            read[1].0.details,
            orchard_core::contact::ContactDetails::default()
        );
    }

    #[test]
    fn a_backtest_chunk_stops_at_its_next_contact_once_stopped() {
        let set = RuleSet::compile(&orchard_core::scoring::seed(), 1).unwrap();
        let sets = (set.clone(), set);
        let chunk = Subjects::two_for_tests;
        let converted = std::collections::HashSet::new();
        let cutoff = from_ms(3000);
        let going = Free::new(false);
        let scored = replay_chunk(&sets, &converted, &mut chunk(), cutoff, &going).unwrap();
        assert_eq!(scored.len(), 2);
        let stopped = Free::new(false);
        drop(stopped.on_drop());
        assert!(matches!(
            replay_chunk(&sets, &converted, &mut chunk(), cutoff, &stopped),
            Err(StoreError::Busy(_))
        ));
    }

    #[test]
    fn memberships_read_back_by_contact_or_say_what_they_are() {
        let read = |t: &str| {
            let mut out = Vec::new();
            memberships(t, |c, s| out.push((c, s))).map(|()| out)
        };
        assert_eq!(read("7:3;12;5").unwrap(), [(7, 3), (7, 12), (7, 5)]);
        assert_eq!(read("9:1").unwrap(), [(9, 1)]);
        for bad in ["7", "7:", "7:3;", "x:3", "7:3;y", "7:3:4", ":3"] {
            let e = read(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("memberships read back as"), "{bad}: {e}");
        }
    }

    #[test]
    fn packed_contacts_read_escapes_and_nulls_and_refuse_the_malformed() {
        let read = |t: &str| crate::contacts::contacts_from_packed(t, None);
        let source = "ad \"spring\" \\ campaign é\n";
        // As SQLite's `json_quote` and PostgreSQL's `to_json` write them.
        let packed = format!(
            r#"[[7,"o'brien+tag@example.com",{{}},3,null,"mql",-5,{},1000,2000,null,null,-9],[8,"b@x.io",{{}},null,4,"iql",0,null,1,2,3,4,5]]"#,
            serde_json::to_string(source).unwrap()
        );
        let out = read(&packed).unwrap();
        assert_eq!(out.len(), 2);
        let (c, due, digest) = &out[0];
        assert_eq!(c.email.as_str(), "o'brien+tag@example.com");
        assert_eq!(c.source.as_deref(), Some(source));
        assert_eq!((c.account_id.map(|a| a.get()), c.owner_id), (Some(3), None));
        assert_eq!((c.score, *due, *digest), (-5, None, Some(-9)));
        assert_eq!(c.stage, orchard_core::stage::LifecycleStage::Mql);
        let (c, due, digest) = &out[1];
        assert_eq!(
            (c.source.as_deref(), *due, *digest),
            (None, Some(4), Some(5))
        );
        assert_eq!(c.last_activity_at, Some(from_ms(3)));
        assert!(read("[]").unwrap().is_empty());
        let good = r#"[7,"a@x.io",{},null,null,"mql",0,null,1,2,null,null,null]"#;
        assert_eq!(read(&format!("[{good}]")).unwrap().len(), 1);
        for bad in [
            format!("[{good}"),
            format!("[{good}]x"),
            format!("[{good},]"),
            format!("[{good}{good}]"),
            // A member short, one too many, a string where a number goes, an unclosed string.
            r#"[[7,"a@x.io",{},null,null,"mql",0,null,1,2,null,null]]"#.to_owned(),
            r#"[[7,"a@x.io",{},null,null,"mql",0,null,1,2,null,null,null,1]]"#.to_owned(),
            r#"[[7,"a@x.io",{},null,null,"mql","0",null,1,2,null,null,null]]"#.to_owned(),
            r#"[[7,"a@x.io,{},null,null,"mql",0,null,1,2,null,null,null]]"#.to_owned(),
            r#"[[7,"a@x.io",{,null,null,"mql",0,null,1,2,null,null,null]]"#.to_owned(),
            r#"[[7,"a@x.io",{},nul,null,"mql",0,null,1,2,null,null,null]]"#.to_owned(),
        ] {
            let e = read(&bad).unwrap_err().to_string();
            assert!(e.contains("packed contacts are malformed"), "{bad}: {e}");
        }
    }

    #[test]
    fn detail_columns_are_text_members_of_the_details() {
        // `DETAIL_COLUMNS` is a slice of `CONTACT_COLUMNS` by position: each must still name a
        // member the details document keeps as a string, or SQLite would read a column where
        // the document holds something else.
        for column in crate::contacts::DETAIL_COLUMNS {
            let details: orchard_core::contact::ContactDetails =
                serde_json::from_value(json!({ *column: "x" })).unwrap();
            let back = serde_json::to_value(&details).unwrap();
            assert_eq!(back[*column], "x", "{column}");
        }
    }

    #[test]
    fn sqlite_picks_out_plain_detail_members_only() {
        let keys = |k: &[&str]| k.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let pick = |k: &[String]| crate::contacts::projected_details(Dialect::Sqlite, Some(k));
        assert_eq!(pick(&[]), "'[]'");
        // A member with a column of its own is read from it; the others from the document.
        assert_eq!(pick(&keys(&["country"])), "json_array(country)");
        assert_eq!(
            pick(&keys(&["first_name", "city"])),
            "json_array(first_name, city)"
        );
        assert_eq!(
            pick(&keys(&["city", "company_size", "custom"])),
            "json_array(city, details -> '$.company_size', details -> '$.custom')"
        );
        // Anything a path would have to quote, all of it, and PostgreSQL: the whole document,
        // as text (SQLite keeps it as JSONB).
        assert_eq!(pick(&keys(&["city", "a'b"])), "json(details)");
        assert_eq!(
            crate::contacts::projected_details(Dialect::Sqlite, None),
            "json(details)"
        );
        assert_eq!(
            crate::contacts::projected_details(Dialect::Postgres, Some(&keys(&["city"]))),
            "details"
        );
    }

    #[test]
    fn packed_events_keep_the_types_and_properties_asked_for() {
        let packed = format!(
            "[7,[{},{},{}]]",
            item(1, "page_viewed", r#"{"url":"/a","referrer":"r"}"#, true),
            item(2, "email_sent", r#"{"email":"w-1"}"#, true),
            item(3, "segment_entered", r#"{"segment":"de"}"#, true),
        );
        let packed = packed.as_str();
        let keep = Keep {
            event_types: Some(vec!["email_sent".into(), "page_viewed".into()]),
            property_types: Some(vec!["page_viewed".into()]),
            property_keys: Some(vec!["url".into()]),
            detail_keys: None,
        };
        let out = events_from_packed(packed, &keep).unwrap();
        assert_eq!(out.len(), 1);
        let (owner, events) = &out[0];
        assert_eq!(*owner, 7);
        let seen: Vec<(i64, &str, serde_json::Value)> = events
            .iter()
            .map(|e| {
                (
                    e.seq.get(),
                    e.event_type.as_str(),
                    serde_json::Value::Object(e.properties.clone()),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (1, "page_viewed", json!({"url": "/a"})),
                (2, "email_sent", json!({}))
            ]
        );
        // Keeping everything gives everything.
        let all = events_from_packed(packed, &Keep::default()).unwrap();
        assert_eq!(all[0].1.len(), 3);
        assert_eq!(all[0].1[0].properties["referrer"], "r");
    }

    /// An item as `history::item` writes it, its length in bytes or (as before 0009) none.
    fn item(seq: i64, ty: &str, properties: &str, with_length: bool) -> String {
        if with_length {
            format!(
                "[{seq},{},\"{ty}\",{},{properties}]",
                seq * 1000,
                properties.len()
            )
        } else {
            format!("[{seq},{},\"{ty}\",{properties}]", seq * 1000)
        }
    }

    #[test]
    fn items_with_and_without_lengths_read_alike() {
        let tricky = json!({
            "url": "/pricing/ü€😀?q=\"a]}\\",
            "nested": {"list": [1, {"b": "]"}], "quote": "\""},
            "empty": "",
        })
        .to_string();
        let items = [
            item(1, "page_viewed", &tricky, true),
            item(2, "email_sent", "{}", false),
            item(3, "page_viewed", &tricky, false),
            item(4, "email_opened", r#"{"n":-1.5e3}"#, true),
        ];
        let packed = format!("[9,[{}]],[10,[]]", items.join(","));
        let all = events_from_packed(&packed, &Keep::default()).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].0, all[1].0, all[1].1.len()), (9, 10, 0));
        let read: Vec<(i64, serde_json::Value)> = all[0]
            .1
            .iter()
            .map(|e| (e.seq.get(), serde_json::Value::Object(e.properties.clone())))
            .collect();
        let parsed: serde_json::Value = serde_json::from_str(&tricky).unwrap();
        assert_eq!(
            read,
            [
                (1, parsed.clone()),
                (2, json!({})),
                (3, parsed),
                (4, json!({"n": -1.5e3}))
            ]
        );
        // Stepping over what is not kept lands on the next item alike.
        let some = Keep {
            event_types: Some(vec!["email_opened".into()]),
            ..Keep::default()
        };
        let kept = events_from_packed(&packed, &some).unwrap();
        assert_eq!(kept[0].1.len(), 1);
        assert_eq!(kept[0].1[0].seq.get(), 4);
        assert_eq!(events_from_packed("", &Keep::default()).unwrap().len(), 0);
    }

    #[test]
    fn malformed_histories_are_errors_not_guesses() {
        let good = item(1, "page_viewed", r#"{"url":"/ü"}"#, true);
        assert!(events_from_packed(&format!("[1,[{good}]]"), &Keep::default()).is_ok());
        for bad in [
            // A length one short, one long, past the end, inside a character.
            r#"[1,[[1,1000,"page_viewed",12,{"url":"/ü"}]]]"#.to_owned(),
            r#"[1,[[1,1000,"page_viewed",14,{"url":"/ü"}]]]"#.to_owned(),
            r#"[1,[[1,1000,"page_viewed",99,{"url":"/ü"}]]]"#.to_owned(),
            r#"[1,[[1,1000,"page_viewed",10,{"u":"üü"}]]]"#.to_owned(),
            // Cut short, an escaped type, a number too large.
            format!("[1,[{good}]"),
            format!("[1,[{}]]", &good[..good.len() - 1]),
            r#"[1,[[1,1000,"page\"viewed",{}]]]"#.to_owned(),
            r#"[1,[[99999999999999999999,1000,"x",{}]]]"#.to_owned(),
            // Text after the whole, a trailing comma, brackets around it.
            format!("[1,[{good}]] "),
            format!("[1,[{good}]],"),
            format!("[[1,[{good}]]]"),
            "[1,[[1,1000,\"x\",{}]]]x".to_owned(),
        ] {
            assert!(events_from_packed(&bad, &Keep::default()).is_err(), "{bad}");
        }
    }

    #[test]
    fn digits_read_a_word_at_a_time() {
        for n in [0u32, 7, 1234, 99_999_999, 10_000_000, 31_415_926] {
            assert_eq!(eight_digits(format!("{n:08}").as_bytes()), Some(n), "{n}");
        }
        for n in [0u16, 9, 1000, 9999] {
            assert_eq!(four_digits(format!("{n:04}").as_bytes()), Some(n), "{n}");
        }
        // Every byte that is not a digit, at every place, is refused.
        for b in (0..=255u8).filter(|b| !b.is_ascii_digit()) {
            for at in 0..8 {
                let mut t = *b"12345678";
                t[at] = b;
                assert_eq!(eight_digits(&t), None, "{b} at {at}");
                if at < 4 {
                    assert_eq!(four_digits(&t[..4]), None, "{b} at {at}");
                }
            }
        }
        assert_eq!(eight_digits(b"1234567"), None);
    }

    #[test]
    fn integers_read_back_to_their_limits() {
        let read = |t: &str| {
            let mut r = Reader::new(t, "histories");
            r.int().map(|n| (n, r.at))
        };
        for n in [
            0,
            7,
            -7,
            1_000_000_000_000_000_000,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ] {
            let t = format!("{n},");
            assert_eq!(read(&t).unwrap(), (n, t.len() - 1), "{t}");
        }
        assert_eq!(read("0000000000000000000000042]").unwrap(), (42, 25));
        for bad in [
            "9223372036854775808",
            "-9223372036854775809",
            "99999999999999999999",
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
        for bad in ["", "-", "x1", "-x"] {
            let mut r = Reader::new(bad, "histories");
            assert!(r.int().is_err(), "{bad}");
            assert_eq!(r.at, 0, "{bad}: the cursor moved");
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            "[a-z\"\\\\/ é\t{}\\[\\],:]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z\"\\\\]{0,3}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Any run of digits reads as Rust's own parser reads it, or is refused where that one
        /// refuses it (past 64 bits), and the cursor stops after the digits.
        #[test]
        fn integers_read_as_rust_parses_them(text in "-?[0-9]{1,24}", end in "[],x]?") {
            let input = format!("{text}{end}");
            let mut r = Reader::new(&input, "histories");
            match text.parse::<i64>() {
                Ok(n) => {
                    proptest::prop_assert_eq!(r.int().unwrap(), n);
                    proptest::prop_assert_eq!(r.at, text.len());
                }
                Err(_) => proptest::prop_assert!(r.int().is_err()),
            }
        }

        /// Any 64-bit integer reads back, however many zeros lead it.
        #[test]
        fn integers_read_back(n in proptest::num::i64::ANY, zeros in 0usize..20) {
            let digits = n.unsigned_abs().to_string();
            let text = format!("{}{}{digits},", if n < 0 { "-" } else { "" }, "0".repeat(zeros));
            let mut r = Reader::new(&text, "histories");
            proptest::prop_assert_eq!(r.int().unwrap(), n);
            proptest::prop_assert_eq!(r.at, text.len() - 1);
        }

        /// The hand scan reads what serde reads, names with escapes and spaces included, and
        /// takes the common case (no escaped names) itself.
        #[test]
        fn members_scanned_as_serde_reads_them(
            members in proptest::collection::btree_map(
                proptest::prop_oneof![
                    proptest::strategy::Just("url".to_owned()),
                    "[a-z\"\\\\]{0,4}",
                ],
                json_value(),
                0..6,
            ),
            pretty in proptest::bool::ANY,
        ) {
            let object = serde_json::Value::Object(members.into_iter().collect());
            let text = if pretty {
                serde_json::to_string_pretty(&object).unwrap()
            } else {
                object.to_string()
            };
            let keys = vec!["url".to_owned(), "a".to_owned(), "b\"".to_owned()];
            let fast = members_only(&text, &keys).unwrap();
            proptest::prop_assert_eq!(&fast, &members_parsed(&text, &keys).unwrap());
            let escaped = object
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k.contains(['"', '\\']));
            if !escaped {
                proptest::prop_assert!(matches!(members_scanned(&text, &keys), Some(Ok(_))));
            }
        }

        /// Whatever the properties hold, an item reads back what was written, and nothing
        /// cut or garbled makes the reader panic.
        #[test]
        fn items_read_back_what_was_written(
            values in proptest::collection::vec(("[a-z_]{1,8}", "\\PC{0,12}"), 0..5),
            with_length in proptest::bool::ANY,
            cut in 0usize..200,
        ) {
            let properties: serde_json::Map<String, serde_json::Value> = values
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect();
            let text = serde_json::Value::Object(properties.clone()).to_string();
            let packed = format!("[5,[{},{}]]", item(1, "x", &text, with_length), item(2, "y", "{}", true));
            let read = events_from_packed(&packed, &Keep::default()).unwrap();
            proptest::prop_assert_eq!(&read[0].1[0].properties, &properties);
            proptest::prop_assert_eq!(read[0].1[1].seq.get(), 2);
            let mut end = cut.min(packed.len());
            while !packed.is_char_boundary(end) {
                end -= 1;
            }
            let _ = events_from_packed(&packed[..end], &Keep::default());
        }

        /// Histories parsed in pieces, stopped after any number of contacts each time (as a
        /// refresh's loading thread stops when the deciding one is free), read exactly what
        /// one whole pass reads, merged contacts' and visitors' events included.
        #[test]
        fn histories_parsed_in_pieces_read_as_one_pass(
            sizes in proptest::collection::vec(0usize..4, 0..8),
            steps in proptest::collection::vec(0usize..4, 1..6),
            other in proptest::option::of(0usize..8),
        ) {
            let histories: Vec<String> = sizes
                .iter()
                .enumerate()
                .map(|(c, n)| {
                    let items: Vec<String> = (0..*n)
                        .map(|i| item((c * 10 + i) as i64 + 1, "page_viewed", r#"{"url":"/p"}"#, true))
                        .collect();
                    format!("[{},[{}]]", c + 1, items.join(","))
                })
                .collect();
            // An event of a contact merged into one of them, older than its own.
            let others = other.map_or_else(String::new, |c| format!("[{},[{}]]", c + 1, item(0, "email_opened", "{}", true)));
            let subjects = || {
                let mut s = Subjects::new(Keep::default());
                s.packed = Some(RowText::owned(
                    vec![
                        ("events".into(), Some(histories.join(","))),
                        ("others".into(), Some(others.clone())),
                    ],
                    "events",
                ));
                s
            };
            let read = |s: &Subjects| {
                /// Each contact's events: sequence number, time, type.
                type Read = Vec<(i64, Vec<(i64, i64, String)>)>;
                let mut all: Read = s
                    .events
                    .iter()
                    .map(|(c, list)| {
                        (*c, list.iter().map(|e| (e.seq.get(), ms(e.at), e.event_type.as_str().to_owned())).collect())
                    })
                    .collect();
                all.sort();
                all
            };
            let mut whole = subjects();
            whole.unpack().unwrap();
            let mut pieces = subjects();
            for step in steps {
                let mut left = step;
                pieces
                    .unpack_some(|| {
                        let enough = left == 0;
                        left = left.saturating_sub(1);
                        enough
                    })
                    .unwrap();
            }
            // No history was read twice (`unpack` would drop the copies, at a cost).
            let seqs: Vec<i64> = pieces.events.values().flatten().map(|e| e.seq.get()).collect();
            proptest::prop_assert_eq!(seqs.len(), seqs.iter().collect::<IdSet<_>>().len());
            pieces.unpack().unwrap();
            proptest::prop_assert_eq!(read(&pieces), read(&whole));
            proptest::prop_assert_eq!(
                whole.events.values().map(Vec::len).sum::<usize>(),
                sizes.iter().sum::<usize>() + usize::from(other.is_some())
            );
        }
    }
}
