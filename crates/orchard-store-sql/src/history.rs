//! `contact_histories`: each contact's own events packed into one text, the layout refreshes
//! read (`derive::load_packed`). Items are `[seq,at,"type",length,properties]` (`item`), joined
//! by commas in the order they were stored; the reader sorts them. Written in the same
//! transaction as the `events` rows they copy (`append`), rewritten from `events` by `repack`.
//!
//! Why a second layout of the log: a refresh needs every event of a contact, and building that
//! text from the event rows (number to text, concatenation per row) cost SQLite more than the
//! rest of a rebuild's statements together; reading it whole costs about a tenth of that.
//! Appending costs one upsert per batch, and a contact's row is rewritten whole: of the order of
//! what its refresh reads anyway (the whole history, every type; the deciding thread skips
//! what no derivation reads without parsing it), though a write costs more than a read. A
//! contact with a very long history pays that on every batch that touches it.

use sqlx::AnyConnection;

use orchard_store::Repacked;

use crate::{Dialect, Sql, StoreResult, backend_err};

/// One event of the row `e` as a history item: `[seq,at,"type",length,properties]`. The numbers
/// print as JSON numbers, a type is a slug that needs no escaping (`EventType::parse` admits
/// nothing else into the log), `properties` is JSON text as written (`events::event_row`), and
/// `length` is its length in bytes, so that a reader steps over what it does not keep without
/// reading it (`derive::events_from_packed`). The migration that added the lengths (0009)
/// spells the same expression.
fn item(dialect: Dialect) -> String {
    // In UTF-8 bytes, as the reader receives the text: a PostgreSQL database in another
    // encoding counts its own bytes in `octet_length` of a text.
    let length = match dialect {
        Dialect::Sqlite => "octet_length(e.properties)",
        Dialect::Postgres => "octet_length(convert_to(e.properties, 'UTF8'))",
    };
    dialect.concat(&[
        "'['",
        "e.seq",
        "','",
        "e.at",
        "',\"'",
        "e.type",
        "'\",'",
        length,
        "','",
        "e.properties",
        "']'",
    ])
}

/// The statement adding rows an insert returns, as the CTE `ins` (with `seq`, `type`,
/// `contact_id`, `at` and `properties`), to their contacts' histories, for a CTE of that insert's
/// statement (PostgreSQL, `events::store_events`); SQLite, which cannot, runs `append_after`.
pub(crate) fn append_returned(dialect: Dialect) -> String {
    upsert(
        dialect,
        "e.contact_id",
        Sql::new("ins e WHERE e.contact_id IS NOT NULL"),
    )
    .text
}

/// The statement adding the rows stored past sequence number `after` to their contacts'
/// histories: SQLite's append (one writer, so the new rows are exactly those past the largest
/// number before the insert), run by `events::store_events` after its insert; PostgreSQL
/// appends in the insert's own statement (`append_returned`). The caller holds those contacts'
/// rows, so history rows are never taken in an order that could make a cycle.
pub(crate) fn append_after(dialect: Dialect, after: i64) -> Sql {
    let mut rows = Sql::new("events e WHERE e.contact_id IS NOT NULL AND e.seq > ");
    rows.arg(after);
    // `+e.contact_id`: grouped by the plain column, SQLite walked the whole `(contact_id, at)`
    // index in order rather than sort the few new rows it finds by sequence number (16 ms
    // instead of a fraction of one, measured on 100 000 contacts).
    upsert(dialect, "+e.contact_id", rows)
}

/// `INSERT INTO contact_histories … SELECT <contact>, <items> FROM <rows> GROUP BY <contact>`,
/// each contact's items appended to its history (`ON CONFLICT … DO UPDATE`). `rows`: the event
/// rows, aliased `e`, and their filter.
fn upsert(dialect: Dialect, contact: &str, rows: Sql) -> Sql {
    let agg = dialect.string_agg();
    let item = item(dialect);
    let extended = dialect.concat(&["contact_histories.events", "','", "excluded.events"]);
    let mut q = Sql::new(&format!(
        "{} INTO contact_histories (contact_id, events) \
         SELECT {contact}, {agg}({item}, ',') FROM ",
        dialect.insert()
    ));
    q.append(rows).push(&format!(
        " GROUP BY {contact} ORDER BY {contact} \
         ON CONFLICT (contact_id) DO UPDATE SET events = {extended}"
    ));
    q
}

/// Writes every history afresh from `events`, in the caller's transaction, and counts the
/// histories that were not what the log gives (missing, left over, or of another length: the
/// items of one history may be in another order, never of another length). On PostgreSQL the
/// table is taken first: an append that stored its events before this transaction began but
/// commits after it waits for this one, then adds its events to the new rows (they were not
/// committed when these were read).
pub(crate) async fn repack(tx: &mut AnyConnection, dialect: Dialect) -> StoreResult<Repacked> {
    let agg = dialect.string_agg();
    async fn run(tx: &mut AnyConnection, dialect: Dialect, sql: &str) -> StoreResult<u64> {
        Ok(Sql::new(sql)
            .query(dialect)
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?
            .rows_affected())
    }
    if dialect == Dialect::Postgres {
        run(
            tx,
            dialect,
            "LOCK TABLE contact_histories IN EXCLUSIVE MODE",
        )
        .await?;
    }
    let item = item(dialect);
    let pack = format!(
        "SELECT e.contact_id, {agg}({item}, ',') AS events FROM events e \
         WHERE e.contact_id IS NOT NULL GROUP BY e.contact_id"
    );
    // None yet (a bulk load just finished): every history is missing, and written at once
    // rather than through a scratch table.
    let none = Sql::new("SELECT count(*) AS n FROM (SELECT 1 FROM contact_histories LIMIT 1) h")
        .fetch_all_in(&mut *tx)
        .await?;
    if none
        .first()
        .map(|r| crate::get::<i64>(r, "n"))
        .transpose()?
        == Some(0)
    {
        let contacts = run(
            tx,
            dialect,
            &format!("INSERT INTO contact_histories (contact_id, events) {pack}"),
        )
        .await?;
        return Ok(Repacked {
            contacts,
            stale: contacts,
            missing_types: 0,
            missing_properties: 0,
        });
    }
    // Keyed, so that the comparison below looks contacts up rather than scanning for each (a
    // table made by `CREATE TABLE … AS` has no key, and SQLite compared every pair: minutes
    // for 100 000 contacts).
    run(
        tx,
        dialect,
        "CREATE TEMPORARY TABLE fresh_histories \
         (contact_id BIGINT PRIMARY KEY, events TEXT NOT NULL)",
    )
    .await?;
    run(
        tx,
        dialect,
        &format!("INSERT INTO fresh_histories (contact_id, events) {pack}"),
    )
    .await?;
    let stale = Sql::new(
        "SELECT (SELECT count(*) FROM fresh_histories f \
         LEFT JOIN contact_histories h ON h.contact_id = f.contact_id \
         WHERE h.contact_id IS NULL OR length(h.events) <> length(f.events)) \
         + (SELECT count(*) FROM contact_histories h WHERE NOT EXISTS \
         (SELECT 1 FROM fresh_histories f WHERE f.contact_id = h.contact_id)) AS stale",
    )
    .fetch_all_in(&mut *tx)
    .await?;
    let stale: i64 = match stale.first() {
        Some(row) => crate::get(row, "stale")?,
        None => 0,
    };
    run(tx, dialect, "DELETE FROM contact_histories").await?;
    let contacts = run(
        tx,
        dialect,
        "INSERT INTO contact_histories (contact_id, events) \
         SELECT contact_id, events FROM fresh_histories",
    )
    .await?;
    run(tx, dialect, "DROP TABLE fresh_histories").await?;
    Ok(Repacked {
        contacts,
        stale: stale.try_into().unwrap_or_default(),
        missing_types: 0,
        missing_properties: 0,
    })
}

/// A statement of one row whose column `events` holds the histories of `ids` as one text,
/// `[contact, [item, ...]]` entries joined by commas (NULL when none has any event), for the
/// thread that parses it to read in place (`derive::load_packed`); `more` appends further
/// columns (uncorrelated scalar subqueries) to the same row. The histories are the statement's
/// own aggregate, not a subquery, and not wrapped in brackets: SQLite copies a subquery's
/// result into the row, and brackets copied the whole text once more, a fresh block of the
/// order of a megabyte per chunk, on the database's thread.
pub(crate) fn load(dialect: Dialect, ids: &[i64], more: impl FnOnce(&mut Sql)) -> Sql {
    let agg = dialect.string_agg();
    let item = dialect.concat(&["'['", "contact_id", "',['", "events", "']]'"]);
    let mut q = Sql::new(&format!("SELECT {agg}({item}, ',') AS events"));
    more(&mut q);
    q.push(" FROM contact_histories WHERE contact_id");
    q.in_ids(dialect, ids.iter().copied());
    q
}

/// Appends, as a scalar subquery, events of the rows `rows` (a derived table of events aliased
/// `e`, with an `owner` column) as `[owner, [item]]` entries in the layout of `load`: a
/// reader of histories reads them with the same code.
pub(crate) fn push_entries(q: &mut Sql, dialect: Dialect, rows: Sql) {
    let agg = dialect.string_agg();
    let entry = dialect.concat(&["'['", "e.owner", "',['", &item(dialect), "']]'"]);
    q.push(&format!("(SELECT {agg}({entry}, ',') FROM ("))
        .append(rows)
        .push(") e)");
}
