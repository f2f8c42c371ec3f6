//! Contacts: upsert by normalised email, lookup, and the filtered, paginated list.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use orchard_core::contact::{Contact, ContactDetails, NewContact, merge_contacts};
use orchard_core::event::{EventType, NewEvent};
use orchard_core::stage::LifecycleStage;
use orchard_core::submission::Touch;
use orchard_core::{AccountId, ContactId, Email, UserId};
use orchard_store::{Attribution, ContactQuery, ContactStore, Page, StoreError, StoreResult};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::events::{append_in, event_row};
use crate::{Arg, Dialect, Sql, SqlStore, backend_err, from_ms, get, json_err, ms, multi_insert};

pub(crate) const CONTACT_COLUMNS: [&str; 18] = [
    "id",
    "email",
    "first_name",
    "last_name",
    "company",
    "job_title",
    "industry",
    "country",
    "city",
    "details",
    "account_id",
    "owner_id",
    "stage",
    "score",
    "source",
    "created_at",
    "updated_at",
    "last_activity_at",
];

/// The row values of a contact, in `CONTACT_COLUMNS` order. The searchable and filterable
/// attributes get columns of their own; the whole detail record is kept as JSON beside them.
pub(crate) fn contact_row(c: &Contact) -> StoreResult<Vec<Arg>> {
    let d = &c.details;
    Ok(vec![
        c.id.get().into(),
        c.email.as_str().into(),
        d.first_name.as_deref().into(),
        d.last_name.as_deref().into(),
        d.demographics.company.as_deref().into(),
        d.demographics.job_title.as_deref().into(),
        d.demographics.industry.as_deref().into(),
        d.geography.country.as_deref().into(),
        d.geography.city.as_deref().into(),
        Arg::Json(Some(serde_json::to_string(d).map_err(json_err)?)),
        c.account_id.map(AccountId::get).into(),
        c.owner_id.map(UserId::get).into(),
        c.stage.as_str().into(),
        c.score.into(),
        c.source.as_deref().into(),
        ms(c.created_at).into(),
        ms(c.updated_at).into(),
        c.last_activity_at.map(ms).into(),
    ])
}

pub(crate) fn contact_from_row(row: &AnyRow) -> StoreResult<Contact> {
    let email: String = get(row, "email")?;
    let details: String = get(row, "details")?;
    let stage: String = get(row, "stage")?;
    Ok(Contact {
        id: ContactId::new(get(row, "id")?),
        email: Email::parse(&email).map_err(|e| StoreError::Backend(Box::new(e)))?,
        details: serde_json::from_str(&details).map_err(json_err)?,
        account_id: get::<Option<i64>>(row, "account_id")?.map(AccountId::new),
        owner_id: get::<Option<i64>>(row, "owner_id")?.map(UserId::new),
        stage: LifecycleStage::parse(&stage).unwrap_or(LifecycleStage::Subscriber),
        score: get(row, "score")?,
        source: get(row, "source")?,
        created_at: from_ms(get(row, "created_at")?),
        updated_at: from_ms(get(row, "updated_at")?),
        last_activity_at: get::<Option<i64>>(row, "last_activity_at")?.map(from_ms),
    })
}

/// What a refresh reads of a contact, as one JSON array: `[id, email, details, account_id,
/// owner_id, stage, score, source, created_at, updated_at, last_activity_at, due_at,
/// score_digest]`, built by concatenation (`derive::load_packed` joins a chunk's into one row,
/// `contacts_from_packed` reads them back). `details` is JSON (`projected_details`) and is
/// spliced in without re-parsing; the other texts are quoted by the database.
pub(crate) fn packed_contact(dialect: Dialect, detail_keys: Option<&[String]>) -> String {
    let int = |col: &str| dialect.json_number(col);
    let text = |col: &str| dialect.json_text(col);
    dialect.json_array(&[
        int("id"),
        text("email"),
        projected_details(dialect, detail_keys),
        int("account_id"),
        int("owner_id"),
        text("stage"),
        int("score"),
        text("source"),
        int("created_at"),
        int("updated_at"),
        int("last_activity_at"),
        int("due_at"),
        int("score_digest"),
    ])
}

/// The details as `packed_contact` packs them. On SQLite, when only some members are wanted
/// (and their names need no quoting), the database picks them out: a JSON array of their
/// values, in the order of `detail_keys`. A contact's details run to some 600 bytes, and the
/// few members a rule set reads to a tenth of that: the rest was copied three times on its way
/// out of the database and then stepped over by the deciding thread. A member with a column of
/// its own (`DETAIL_COLUMNS`) is read from that column; the others from the JSONB document, each
/// path walking it from the start (reading all four members a benchmark's segments name from
/// the document was a twentieth of a rebuild's instructions). PostgreSQL keeps the details as
/// text, and parsing them there for each contact would cost it more.
pub(crate) fn projected_details(dialect: Dialect, detail_keys: Option<&[String]>) -> String {
    let whole = dialect.json_column("details");
    let Some(keys) = detail_keys else {
        return whole;
    };
    let plain = |k: &String| {
        !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    if dialect != Dialect::Sqlite || !keys.iter().all(plain) {
        return whole;
    }
    if keys.is_empty() {
        return "'[]'".to_owned();
    }
    let values: Vec<String> = keys
        .iter()
        .map(
            |k| match DETAIL_COLUMNS.iter().find(|c| **c == k.as_str()) {
                Some(column) => (*column).to_owned(),
                // `->` gives JSON, which `json_array` embeds as it is (a bare value would be
                // quoted as a string); a member the document lacks gives NULL, which reads `null`.
                None => format!("details -> '$.{k}'"),
            },
        )
        .collect();
    format!("json_array({})", values.join(", "))
}

/// The members of a contact's details that also have a column of their own (those between the
/// email and the document in `CONTACT_COLUMNS`), written together with the document
/// (`contact_row` and the update in `upsert_outcome`), each always a string or NULL as in the
/// document.
pub(crate) const DETAIL_COLUMNS: &[&str] = CONTACT_COLUMNS.split_at(2).1.split_at(7).0;

/// A contact as `packed_contact` packs it, with its stored due time and score digest.
pub(crate) type PackedContact = (Contact, Option<i64>, Option<i64>);

/// Reads `[packed_contact, ...]` back; of the details, only the members named in
/// `detail_keys` when given (the others read as empty).
///
/// Read by hand (`derive::Reader`) rather than through serde: the shape is fixed, and serde's
/// tuple of thirteen, with an owned text for every string, cost some 6 000 instructions per
/// contact on the thread that decides. Only the details go through serde.
pub(crate) fn contacts_from_packed(
    packed: &str,
    detail_keys: Option<&[String]>,
) -> StoreResult<Vec<PackedContact>> {
    use crate::derive::Reader;
    if packed.is_empty() {
        return Ok(Vec::new());
    }
    let mut r = Reader::new(packed, "contacts");
    r.ws();
    r.expect(b'[')?;
    r.ws();
    if r.next_is(b']') {
        r.ws();
        return r.end().map(|()| Vec::new());
    }
    // Sized by a guess from the text (a contact packs to well over 100 bytes): a list grown by
    // doubling copied each chunk's contacts several times into fresh memory (about a twelfth of
    // the deciding thread's samples in a time-ordered ingest, most of them page faults).
    let mut out = Vec::with_capacity(packed.len() / 128 + 1);
    loop {
        r.ws();
        r.expect(b'[')?;
        let opt_int = |r: &mut Reader| r.or_null(Reader::int);
        let id = r.member(Reader::int, false)?;
        let email = r.member(Reader::string, false)?;
        let details = r.member(Reader::raw, false)?;
        let account = r.member(opt_int, false)?;
        let owner = r.member(opt_int, false)?;
        let stage = r.member(Reader::string, false)?;
        let score = r.member(Reader::int, false)?;
        let source = r.member(|r| r.or_null(Reader::string), false)?;
        let created = r.member(Reader::int, false)?;
        let updated = r.member(Reader::int, false)?;
        let last = r.member(opt_int, false)?;
        let due = r.member(opt_int, false)?;
        let digest = r.member(opt_int, true)?;
        r.expect(b']')?;
        let details = details_from(details, detail_keys)?;
        let contact = Contact {
            id: ContactId::new(id),
            email: Email::parse(&email).map_err(|e| StoreError::Backend(Box::new(e)))?,
            details,
            account_id: account.map(AccountId::new),
            owner_id: owner.map(UserId::new),
            stage: LifecycleStage::parse(&stage).unwrap_or(LifecycleStage::Subscriber),
            score,
            source: source.map(std::borrow::Cow::into_owned),
            created_at: from_ms(created),
            updated_at: from_ms(updated),
            last_activity_at: last.map(from_ms),
        };
        out.push((contact, due, digest));
        r.ws();
        if !r.next_is(b',') {
            r.expect(b']')?;
            r.ws();
            r.end()?;
            return Ok(out);
        }
    }
}

/// A contact's details as `projected_details` gives them: the whole document, or with
/// `detail_keys` the values of those members by position (or, where the database could not
/// pick them out, the document, of which only they are read).
fn details_from(details: &str, detail_keys: Option<&[String]>) -> StoreResult<ContactDetails> {
    Ok(match detail_keys {
        None => serde_json::from_str(details).map_err(json_err)?,
        // Picked out by the database (`projected_details`): values by position.
        Some(keys) if details.starts_with('[') => {
            use serde::Deserialize;
            let values: Vec<serde_json::Value> = serde_json::from_str(details).map_err(json_err)?;
            // Read as a map of those members, without building one.
            let members = keys
                .iter()
                .map(String::as_str)
                .zip(values)
                // A member the contact lacks comes as null: left out, it reads as
                // empty, as it would from the whole document.
                .filter(|(_, v)| !v.is_null());
            ContactDetails::deserialize(
                serde::de::value::MapDeserializer::<_, serde_json::Error>::new(members),
            )
            .map_err(json_err)?
        }
        Some(keys) => serde_json::from_value(serde_json::Value::Object(
            crate::derive::members_only(details, keys).map_err(json_err)?,
        ))
        .map_err(json_err)?,
    })
}

/// The live contacts among `ids` a row each, in the columns `contact_from_native` and
/// `contact_from_rows_row` read, rather than packed: for the native SQLite reader, which steps
/// rows itself (building the packed text cost SQLite a quarter of what a rebuild's loading
/// thread did), and for larger chunks on PostgreSQL (`derive::load_packed`), where building it
/// cost the database more than sending the rows.
pub(crate) fn rows_statement(dialect: Dialect, ids: &[i64], detail_keys: Option<&[String]>) -> Sql {
    let mut q = Sql::new(&format!(
        "SELECT id, email, {} AS details, account_id, owner_id, stage, score, source, \
         created_at, updated_at, last_activity_at, due_at, score_digest FROM contacts \
         WHERE merged_into IS NULL AND id",
        projected_details(dialect, detail_keys)
    ));
    q.in_ids(dialect, ids.iter().copied());
    q
}

/// A row of `rows_statement` through sqlx, as `contacts_from_packed` reads a packed contact.
pub(crate) fn contact_from_rows_row(
    row: &AnyRow,
    detail_keys: Option<&[String]>,
) -> StoreResult<PackedContact> {
    let email: &str = get(row, "email")?;
    let details = details_from(
        get::<Option<&str>>(row, "details")?.unwrap_or("{}"),
        detail_keys,
    )?;
    let stage: &str = get(row, "stage")?;
    let contact = Contact {
        id: ContactId::new(get(row, "id")?),
        email: Email::parse(email).map_err(|e| StoreError::Backend(Box::new(e)))?,
        details,
        account_id: get::<Option<i64>>(row, "account_id")?.map(AccountId::new),
        owner_id: get::<Option<i64>>(row, "owner_id")?.map(UserId::new),
        stage: LifecycleStage::parse(stage).unwrap_or(LifecycleStage::Subscriber),
        score: get(row, "score")?,
        source: get(row, "source")?,
        created_at: from_ms(get(row, "created_at")?),
        updated_at: from_ms(get(row, "updated_at")?),
        last_activity_at: get::<Option<i64>>(row, "last_activity_at")?.map(from_ms),
    };
    Ok((contact, get(row, "due_at")?, get(row, "score_digest")?))
}

/// A row of `rows_statement`, as `contacts_from_packed` reads a packed contact.
pub(crate) fn contact_from_native(
    row: &rusqlite::Row<'_>,
    detail_keys: Option<&[String]>,
) -> StoreResult<PackedContact> {
    use crate::native::{int, opt_int, text};
    let missing =
        |what: &str| StoreError::Backend(format!("a contact's {what} read back as NULL").into());
    let email = text(row, 1)?.ok_or_else(|| missing("email"))?;
    let details = details_from(text(row, 2)?.unwrap_or("{}"), detail_keys)?;
    let stage = text(row, 5)?.ok_or_else(|| missing("stage"))?;
    let contact = Contact {
        id: ContactId::new(int(row, 0)?),
        email: Email::parse(email).map_err(|e| StoreError::Backend(Box::new(e)))?,
        details,
        account_id: opt_int(row, 3)?.map(AccountId::new),
        owner_id: opt_int(row, 4)?.map(UserId::new),
        stage: LifecycleStage::parse(stage).unwrap_or(LifecycleStage::Subscriber),
        score: int(row, 6)?,
        source: text(row, 7)?.map(str::to_owned),
        created_at: from_ms(int(row, 8)?),
        updated_at: from_ms(int(row, 9)?),
        last_activity_at: opt_int(row, 10)?.map(from_ms),
    };
    Ok((contact, opt_int(row, 11)?, opt_int(row, 12)?))
}

/// `SELECT` of the columns `contact_from_row` reads, then `rest` (more columns, `FROM`): the
/// details as JSON text on either backend (`Dialect::json_column`).
pub(crate) fn select_with(dialect: Dialect, rest: &str) -> Sql {
    Sql::new(&format!(
        "SELECT id, email, first_name, last_name, company, job_title, industry, country, city, \
         {} AS details, account_id, owner_id, stage, score, source, created_at, updated_at, \
         last_activity_at{rest}",
        dialect.json_column("details")
    ))
}

/// `SELECT` of the columns `contact_from_row` reads, from `contacts`.
pub(crate) fn select(dialect: Dialect) -> Sql {
    select_with(dialect, " FROM contacts")
}

impl SqlStore {
    async fn fetch_contact(&self, sql: Sql) -> StoreResult<Contact> {
        contact_from_row(&self.one(sql).await?)
    }
}

/// Escapes LIKE wildcards so a search for "50%" finds "50%", not everything.
fn like_pattern(s: &str) -> String {
    let mut p = String::from("%");
    for c in s.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The id a contact's email or id now resolves to: its own, or the one it was merged into.
const LIVE_ID_BY_EMAIL: &str = "(SELECT COALESCE(merged_into, id) FROM contacts WHERE email = ";
const LIVE_ID_BY_ID: &str = "(SELECT COALESCE(merged_into, id) FROM contacts WHERE id = ";

fn push_filters(sql: &mut Sql, q: &ContactQuery, owner_scope: Option<UserId>) {
    // Contacts merged into another are listed as that one.
    sql.push(" WHERE merged_into IS NULL");
    if let Some(s) = q.search.as_deref().filter(|s| !s.trim().is_empty()) {
        let p = like_pattern(s);
        sql.push(" AND (email LIKE ")
            .arg(p.as_str())
            .push(" ESCAPE '\\' OR lower(coalesce(first_name, '') || ' ' || coalesce(last_name, '')) LIKE ")
            .arg(p.as_str())
            .push(" ESCAPE '\\' OR lower(coalesce(company, '')) LIKE ")
            .arg(p)
            .push(" ESCAPE '\\')");
    }
    if let Some(e) = &q.email {
        sql.push(" AND id = ")
            .push(LIVE_ID_BY_EMAIL)
            .arg(e.as_str())
            .push(")");
    }
    if let Some(s) = q.stage {
        sql.push(" AND stage = ").arg(s.as_str());
    }
    if let Some(min) = q.min_score {
        sql.push(" AND score >= ").arg(min);
    }
    if let Some(max) = q.max_score {
        sql.push(" AND score < ").arg(max);
    }
    if let Some(o) = q.owner_id {
        sql.push(" AND owner_id = ").arg(o.get());
    }
    if let Some(o) = owner_scope {
        sql.push(" AND owner_id = ").arg(o.get());
    }
    if let Some(a) = q.account_id {
        sql.push(" AND account_id = ").arg(a.get());
    }
    if let Some(c) = q.country.as_deref() {
        sql.push(" AND country = ").arg(c.trim().to_uppercase());
    }
    if let Some(s) = q.source.as_deref() {
        sql.push(" AND source = ").arg(s.trim());
    }
}

/// Live contact ids by email; the email list is appended by the caller.
const FIND_BY_EMAIL: &str =
    "SELECT COALESCE(merged_into, id) AS id, email FROM contacts WHERE email IN ";

fn found_by_email(rows: &[AnyRow], out: &mut HashMap<Email, ContactId>) -> StoreResult<()> {
    for row in rows {
        let email: String = get(row, "email")?;
        let email = Email::parse(&email).map_err(|e| StoreError::Backend(Box::new(e)))?;
        out.insert(email, ContactId::new(get(row, "id")?));
    }
    Ok(())
}

#[async_trait]
impl ContactStore for SqlStore {
    #[tracing::instrument(skip_all, fields(email = %new.email))]
    async fn upsert_contact(&self, new: &NewContact) -> StoreResult<(ContactId, bool)> {
        let mut tx = self.begin().await?;
        let out = upsert_in(&mut tx, new).await?;
        // Fit rules read attributes: a changed contact is rescored with its change.
        crate::derive::refresh_in(&mut tx, self.dialect(), &[out.0], Utc::now()).await?;
        tx.commit().await?;
        Ok(out)
    }

    #[tracing::instrument(skip_all, fields(emails = emails.len()))]
    async fn ensure_contacts(
        &self,
        emails: &[(Email, DateTime<Utc>)],
    ) -> StoreResult<HashMap<Email, ContactId>> {
        let mut out = HashMap::with_capacity(emails.len());
        if emails.is_empty() {
            return Ok(out);
        }
        // Most events name contacts that exist: they are found without a write transaction,
        // so resolving a batch does not wait for (or hold up) the writer.
        for chunk in emails.chunks(1_000) {
            let mut find = Sql::new(FIND_BY_EMAIL);
            find.list(chunk.iter().map(|(e, _)| e.as_str()));
            let rows = find
                .query(self.dialect)
                .fetch_all(self.pool())
                .await
                .map_err(backend_err)?;
            found_by_email(&rows, &mut out)?;
        }
        let mut missing: Vec<&(Email, DateTime<Utc>)> = emails
            .iter()
            .filter(|(e, _)| !out.contains_key(e))
            .collect();
        // In one order for every writer: on PostgreSQL two batches inserting the same new
        // emails in different orders would wait on each other's unique-index entries.
        missing.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        if missing.is_empty() {
            return Ok(out);
        }
        let empty_details = serde_json::to_string(&ContactDetails::default()).map_err(json_err)?;
        let mut tx = self.begin().await?;
        for chunk in missing.chunks(1_000) {
            let rows = chunk
                .iter()
                .map(|(e, at)| {
                    vec![
                        e.as_str().into(),
                        Arg::Json(Some(empty_details.clone())),
                        LifecycleStage::Subscriber.as_str().into(),
                        ms(*at).into(),
                        ms(*at).into(),
                    ]
                })
                .collect();
            // Another request may have created some meanwhile: those are kept and found below.
            for sql in multi_insert(
                self.dialect(),
                "contacts",
                &["email", "details", "stage", "created_at", "updated_at"],
                rows,
                "ON CONFLICT (email) DO NOTHING",
            ) {
                sql.query(self.dialect)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
            }
            let mut find = Sql::new(FIND_BY_EMAIL);
            find.list(chunk.iter().map(|(e, _)| e.as_str()));
            let rows = find.fetch_all_in(&mut tx).await?;
            found_by_email(&rows, &mut out)?;
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn live_contacts(&self, ids: &[ContactId]) -> StoreResult<HashMap<ContactId, ContactId>> {
        let mut out = HashMap::with_capacity(ids.len());
        let agg = self.dialect.string_agg();
        for chunk in ids.chunks(1_000) {
            let mut asked: Vec<i64> = chunk.iter().map(|id| id.get()).collect();
            asked.sort_unstable();
            asked.dedup();
            // One row: how many exist, and those merged away with their survivors. A row per
            // contact cost the API a few milliseconds per batch of events (sqlx hands each row
            // across threads), and nearly every contact is its own survivor.
            let mut sql = Sql::new(&format!(
                "SELECT count(*) AS n, {agg}(CASE WHEN merged_into IS NULL THEN NULL \
                 ELSE CAST(id AS TEXT) || ':' || CAST(merged_into AS TEXT) END, ',') AS merged \
                 FROM contacts WHERE id"
            ));
            sql.in_ids(self.dialect, asked.iter().copied());
            let rows = sql
                .query(self.dialect)
                .fetch_all(self.pool())
                .await
                .map_err(backend_err)?;
            let (found, merged): (i64, Option<String>) = match rows.first() {
                Some(row) => (get(row, "n")?, get(row, "merged")?),
                None => (0, None),
            };
            if usize::try_from(found).ok() == Some(asked.len()) {
                out.extend(
                    asked
                        .iter()
                        .map(|id| (ContactId::new(*id), ContactId::new(*id))),
                );
                for pair in crate::joined(merged.as_deref()) {
                    let (id, live) = crate::joined_pair(pair, "merge")?;
                    out.insert(ContactId::new(id), ContactId::new(live));
                }
                continue;
            }
            // Some do not exist (a caller's mistake, which it reports): say which, row by row.
            let mut sql =
                Sql::new("SELECT id, COALESCE(merged_into, id) AS live FROM contacts WHERE id");
            sql.in_ids(self.dialect, asked.iter().copied());
            for row in sql
                .query(self.dialect)
                .fetch_all(self.pool())
                .await
                .map_err(backend_err)?
            {
                out.insert(
                    ContactId::new(get(&row, "id")?),
                    ContactId::new(get(&row, "live")?),
                );
            }
        }
        Ok(out)
    }

    async fn contact(&self, id: ContactId) -> StoreResult<Contact> {
        let mut sql = select(self.dialect);
        sql.push(" WHERE id = ")
            .push(LIVE_ID_BY_ID)
            .arg(id.get())
            .push(")");
        self.fetch_contact(sql).await
    }

    async fn contact_by_email(&self, email: &Email) -> StoreResult<Contact> {
        let mut sql = select(self.dialect);
        sql.push(" WHERE id = ")
            .push(LIVE_ID_BY_EMAIL)
            .arg(email.as_str())
            .push(")");
        self.fetch_contact(sql).await
    }

    #[tracing::instrument(skip(self, cause))]
    async fn set_stage(
        &self,
        id: ContactId,
        to: LifecycleStage,
        cause: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Contact> {
        let before = self.contact(id).await?;
        if before.stage == to {
            // Nothing moved: a `stage_changed` from a stage to itself would count as a
            // transition in cycle times and restart the point after which rules act.
            return Ok(before);
        }
        let mut tx = self.begin().await?;
        let mut up = Sql::new("UPDATE contacts SET stage = ");
        up.arg(to.as_str())
            .push(" WHERE id = ")
            .arg(before.id.get());
        up.query(self.dialect)
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?;
        let event = stage_set_by_hand(before.id, before.stage, to, cause, at);
        let rows = vec![event_row(&event, ms(Utc::now()))?];
        append_in(&mut tx, self.dialect(), std::slice::from_ref(&event), rows).await?;
        tx.commit().await?;
        self.contact(before.id).await
    }

    async fn custom_attribute_names(&self) -> StoreResult<Vec<String>> {
        Sql::new("SELECT name FROM contact_attributes")
            .query(self.dialect)
            .fetch_all(self.pool())
            .await
            .map_err(backend_err)?
            .iter()
            .map(|row| get(row, "name"))
            .collect::<StoreResult<Vec<String>>>()
            .map(|mut names| {
                // In byte order, whatever the database's collation.
                names.sort();
                names
            })
    }

    async fn merged_emails(&self, id: ContactId) -> StoreResult<Vec<Email>> {
        let mut sql = Sql::new("SELECT email FROM contacts WHERE merged_into = ");
        sql.arg(id.get()).push(" ORDER BY email");
        sql.query(self.dialect)
            .fetch_all(self.pool())
            .await
            .map_err(backend_err)?
            .iter()
            .map(|r| {
                Email::parse(&get::<String>(r, "email")?)
                    .map_err(|e| StoreError::Backend(Box::new(e)))
            })
            .collect()
    }

    #[tracing::instrument(skip(self))]
    async fn merge_contacts(
        &self,
        keep: ContactId,
        other: ContactId,
        at: DateTime<Utc>,
    ) -> StoreResult<Contact> {
        let mut tx = self.begin().await?;
        // Both rows and those merged into `other` before (they are repointed below), in the
        // id order every refresh takes rows in.
        if self.dialect == Dialect::Postgres {
            let mut rows = Sql::new("SELECT id FROM contacts WHERE id IN ");
            rows.list([keep.get(), other.get()])
                .push(" OR merged_into = ")
                .arg(other.get())
                .push(" ORDER BY id FOR NO KEY UPDATE");
            rows.fetch_all_in(&mut tx).await?;
        }
        let mut load = async |id: ContactId| -> StoreResult<(Contact, Option<i64>, Attribution)> {
            let mut sql = select_with(
                self.dialect,
                ", merged_into, first_touch, last_touch, consent FROM contacts",
            );
            sql.push(" WHERE id = ").arg(id.get());
            let row = sql
                .query(self.dialect)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend_err)?
                .ok_or(StoreError::NotFound)?;
            let json = |col: &str| -> StoreResult<Option<String>> { get(&row, col) };
            let touch = |col: &str| -> StoreResult<Option<Touch>> {
                json(col)?
                    .map(|j| serde_json::from_str(&j))
                    .transpose()
                    .map_err(json_err)
            };
            let attribution = Attribution {
                first_touch: touch("first_touch")?,
                last_touch: touch("last_touch")?,
                consent: json("consent")?
                    .map(|j| serde_json::from_str(&j))
                    .transpose()
                    .map_err(json_err)?,
            };
            Ok((
                contact_from_row(&row)?,
                get(&row, "merged_into")?,
                attribution,
            ))
        };
        let (k, k_merged, k_attr) = load(keep).await?;
        let (o, o_merged, o_attr) = load(other).await?;
        if let Some(into) = k_merged.or(o_merged) {
            return Err(StoreError::Conflict(format!(
                "contact {} was merged into contact {into} already",
                if k_merged.is_some() { keep } else { other }
            )));
        }
        let merged = merge_contacts(&k, &o).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let first = Touch::earlier(k_attr.first_touch, o_attr.first_touch);
        let last = Touch::later(k_attr.last_touch, o_attr.last_touch);
        let consent = k_attr.consent.or(o_attr.consent);
        let mut row = contact_row(&merged)?;
        row.remove(0);
        row.extend([
            first
                .map(|t| serde_json::to_string(&t))
                .transpose()
                .map_err(json_err)?
                .into(),
            last.map(|t| serde_json::to_string(&t))
                .transpose()
                .map_err(json_err)?
                .into(),
            consent
                .map(|c| serde_json::to_string(&c))
                .transpose()
                .map_err(json_err)?
                .into(),
        ]);
        let cols: Vec<&str> = CONTACT_COLUMNS[1..]
            .iter()
            .copied()
            .chain(["first_touch", "last_touch", "consent"])
            .collect();
        let mut up = Sql::new(&format!("UPDATE contacts SET ({}) = ", cols.join(", ")));
        up.list(row).push(" WHERE id = ").arg(keep.get());
        up.query(self.dialect)
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?;
        // The other contact, and any merged into it before, now resolve to `keep`; so do its
        // deals, activities and identified visitor ids. Its events stay as they were logged.
        let mut away = Sql::new("UPDATE contacts SET merged_into = ");
        away.arg(keep.get())
            .push(" WHERE id = ")
            .arg(other.get())
            .push(" OR merged_into = ")
            .arg(other.get());
        away.query(self.dialect)
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?;
        // The other's memberships end; the survivor's are decided afresh by the refresh that
        // the merge event below triggers.
        let mut gone = Sql::new("DELETE FROM segment_members WHERE contact_id = ");
        gone.arg(other.get());
        gone.query(self.dialect)
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?;
        for table in ["deals", "activities", "visitor_identities"] {
            let mut mv = Sql::new(&format!("UPDATE {table} SET contact_id = "));
            mv.arg(keep.get())
                .push(" WHERE contact_id = ")
                .arg(other.get());
            mv.query(self.dialect)
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
        }
        let mut props = serde_json::Map::new();
        props.insert("merged_contact_id".into(), other.get().into());
        props.insert("merged_email".into(), o.email.as_str().into());
        let event = NewEvent {
            client_id: format!("merge-{}-into-{}", other.get(), keep.get()),
            event_type: EventType::Custom(orchard_core::event::CONTACT_MERGED.into()),
            contact_id: Some(keep),
            visitor_id: None,
            at,
            properties: props,
        };
        let rows = vec![event_row(&event, ms(Utc::now()))?];
        append_in(&mut tx, self.dialect(), std::slice::from_ref(&event), rows).await?;
        tx.commit().await?;
        self.contact(keep).await
    }

    #[tracing::instrument(skip_all)]
    async fn list_contacts(
        &self,
        q: &ContactQuery,
        owner_scope: Option<UserId>,
    ) -> StoreResult<Page<Contact>> {
        let mut list = select(self.dialect);
        push_filters(&mut list, q, owner_scope);
        list.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .arg(q.limit())
            .push(" OFFSET ")
            .arg(q.offset());
        let rows = list
            .query(self.dialect)
            .fetch_all(self.pool())
            .await
            .map_err(backend_err)?;
        // A page that is not full, and not past the end, is the last one, which gives the
        // total without counting: a lookup by email (the API's usual question of one contact)
        // is then one statement, not two.
        let short = (rows.len() as i64) < q.limit() && (q.offset() == 0 || !rows.is_empty());
        let total = if short {
            q.offset() + rows.len() as i64
        } else {
            let mut count = Sql::new("SELECT count(*) AS n FROM contacts");
            push_filters(&mut count, q, owner_scope);
            get(
                &count
                    .query(self.dialect)
                    .fetch_one(self.pool())
                    .await
                    .map_err(backend_err)?,
                "n",
            )?
        };
        Ok(Page {
            items: rows
                .iter()
                .map(contact_from_row)
                .collect::<StoreResult<_>>()?,
            total,
            page: q.page.max(1),
            per_page: q.limit(),
        })
    }
}

/// Creates or updates a contact inside the caller's transaction (see `upsert_contact`).
pub(crate) async fn upsert_in(
    tx: &mut AnyConnection,
    new: &NewContact,
) -> StoreResult<(ContactId, bool)> {
    let (id, outcome) = upsert_outcome(tx, new).await?;
    record_attributes(tx, new.details.custom.keys(), ms(Utc::now())).await?;
    Ok((id, outcome == Upserted::Created))
}

/// Adds the custom attribute `names` (`ContactDetails::custom`) that `contact_attributes`
/// lacks, as first recorded at `at`, in name order (see `events::record_types` for why an
/// order); nothing when there are none. Every write of contacts' details calls it: an upsert
/// with its contact's, an import or a bulk load once per batch with the batch's.
pub(crate) async fn record_attributes<'a>(
    tx: &mut AnyConnection,
    names: impl IntoIterator<Item = &'a String>,
    at: i64,
) -> StoreResult<()> {
    let names: std::collections::BTreeSet<&str> = names.into_iter().map(String::as_str).collect();
    if names.is_empty() {
        return Ok(());
    }
    let dialect = Dialect::of(tx);
    let rows = names.iter().map(|n| vec![(*n).into(), at.into()]).collect();
    for sql in crate::multi_insert(
        dialect,
        "contact_attributes",
        &["name", "first_recorded_at"],
        rows,
        "ON CONFLICT (name) DO NOTHING",
    ) {
        sql.query(dialect)
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?;
    }
    Ok(())
}

/// The `stage_changed` event of a stage set by a person (by hand, or in a file they imported):
/// the stage rules act only on what happens after it.
pub(crate) fn stage_set_by_hand(
    id: ContactId,
    from: LifecycleStage,
    to: LifecycleStage,
    cause: &str,
    at: DateTime<Utc>,
) -> NewEvent {
    let mut props = serde_json::Map::new();
    props.insert("from".into(), from.as_str().into());
    props.insert("to".into(), to.as_str().into());
    props.insert("cause".into(), cause.into());
    props.insert("manual".into(), true.into());
    NewEvent {
        client_id: format!("stage:{id}:{}:{}:manual", to.as_str(), ms(at)),
        event_type: EventType::Custom(orchard_core::lifecycle::STAGE_CHANGED.into()),
        contact_id: Some(id),
        visitor_id: None,
        at,
        properties: props,
    }
}

/// What an upsert did; imports report it so a re-run can say it changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upserted {
    Created,
    Updated,
    Unchanged,
}

pub(crate) async fn upsert_outcome(
    tx: &mut AnyConnection,
    new: &NewContact,
) -> StoreResult<(ContactId, Upserted)> {
    let mut find = select(Dialect::of(tx));
    find.push(" WHERE id = ")
        .push(LIVE_ID_BY_EMAIL)
        .arg(new.email.as_str())
        .push(")");
    let existing = find
        .query(Dialect::of(tx))
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend_err)?;
    let (id, outcome) = match existing {
        Some(row) => {
            let before = contact_from_row(&row)?;
            let mut c = before.clone();
            c.details.merge(&new.details);
            c.account_id = new.account_id.or(c.account_id);
            c.owner_id = new.owner_id.or(c.owner_id);
            c.source = c.source.or_else(|| new.source.clone());
            if (&c.details, c.account_id, c.owner_id, &c.source)
                == (
                    &before.details,
                    before.account_id,
                    before.owner_id,
                    &before.source,
                )
            {
                return Ok((c.id, Upserted::Unchanged));
            }
            c.updated_at = new.created_at.max(c.updated_at);
            let d = &c.details;
            let mut up = Sql::new("UPDATE contacts SET first_name = ");
            up.arg(d.first_name.as_deref())
                .push(", last_name = ")
                .arg(d.last_name.as_deref())
                .push(", company = ")
                .arg(d.demographics.company.as_deref())
                .push(", job_title = ")
                .arg(d.demographics.job_title.as_deref())
                .push(", industry = ")
                .arg(d.demographics.industry.as_deref())
                .push(", country = ")
                .arg(d.geography.country.as_deref())
                .push(", city = ")
                .arg(d.geography.city.as_deref())
                .push(", details = ")
                .arg(Arg::Json(Some(serde_json::to_string(d).map_err(json_err)?)))
                .push(", account_id = ")
                .arg(c.account_id.map(AccountId::get))
                .push(", owner_id = ")
                .arg(c.owner_id.map(UserId::get))
                .push(", source = ")
                .arg(c.source)
                .push(", updated_at = ")
                .arg(ms(c.updated_at))
                .push(" WHERE id = ")
                .arg(c.id.get());
            up.query(Dialect::of(tx))
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
            (c.id, Upserted::Updated)
        }
        None => {
            let c = Contact {
                id: ContactId::new(0),
                email: new.email.clone(),
                details: new.details.clone(),
                account_id: new.account_id,
                owner_id: new.owner_id,
                stage: new.stage,
                score: 0,
                source: new.source.clone(),
                created_at: new.created_at,
                updated_at: new.created_at,
                last_activity_at: None,
            };
            // The id is the database's to give.
            let mut row = contact_row(&c)?;
            row.remove(0);
            let mut ins = Sql::new(&format!(
                "INSERT INTO contacts ({}) VALUES ",
                CONTACT_COLUMNS[1..].join(", ")
            ));
            ins.list(row).push(" RETURNING id");
            let row = ins
                .query(Dialect::of(tx))
                .fetch_one(&mut *tx)
                .await
                .map_err(backend_err)?;
            (ContactId::new(get(&row, "id")?), Upserted::Created)
        }
    };
    Ok((id, outcome))
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(like_pattern(" 50%_Off "), "%50\\%\\_off%");
    }
}
