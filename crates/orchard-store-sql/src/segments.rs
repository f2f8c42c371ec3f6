//! Segments: saved filters, their members (kept current by `derive::refresh_in` on every
//! append), and the builder's preview, which evaluates a filter over every contact without
//! saving it, loading only the event types the filter reads.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use orchard_core::contact::Contact;
use orchard_core::rules::{self, Expr};
use orchard_core::segment::Segment;
use orchard_core::{ContactId, SegmentId};
use orchard_store::{SegmentStore, SegmentSummary, StoreError, StoreResult};

use crate::contacts::{contact_from_row, select};
use crate::derive::{ids_of, load_subjects, segment_from_row};
use crate::{Arg, Sql, SqlStore, backend_err, get, ms};

/// Contacts evaluated per round during a preview.
const CHUNK: i64 = 2_000;

const SUMMARY: &str = "SELECT s.id, s.name, s.filter, s.created_at, \
     (SELECT count(*) FROM segment_members m WHERE m.segment_id = s.id) AS member_count \
     FROM segments s";

fn summary(row: &sqlx::any::AnyRow) -> StoreResult<SegmentSummary> {
    Ok(SegmentSummary {
        segment: segment_from_row(row)?,
        member_count: get(row, "member_count")?,
    })
}

impl SqlStore {
    async fn summaries(&self, sql: Sql) -> StoreResult<Vec<SegmentSummary>> {
        sql.query(self.dialect)
            .fetch_all(self.pool())
            .await
            .map_err(backend_err)?
            .iter()
            .map(summary)
            .collect()
    }
}

#[async_trait]
impl SegmentStore for SqlStore {
    #[tracing::instrument(skip_all, fields(name = %segment.name))]
    async fn create_segment(
        &self,
        segment: &Segment,
        now: DateTime<Utc>,
    ) -> StoreResult<SegmentId> {
        let mut ins = Sql::new("INSERT INTO segments (name, filter, created_at) VALUES ");
        ins.list([
            Arg::from(segment.name.as_str()),
            segment.text.as_str().into(),
            ms(segment.created_at).into(),
        ])
        .push(" RETURNING id");
        let id = match self.insert_returning_id(ins).await {
            Err(StoreError::Conflict(_)) => {
                return Err(StoreError::Conflict(format!(
                    "a segment named '{}' exists already: choose another name",
                    segment.name
                )));
            }
            other => SegmentId::new(other?),
        };
        // Everyone's membership (and due time) decided now, through the same path appends use.
        orchard_store::refresh_all(self, now, orchard_store::LIVE_BATCH, &|_| {}).await?;
        Ok(id)
    }

    async fn segments(&self) -> StoreResult<Vec<SegmentSummary>> {
        self.summaries(Sql::new(&format!("{SUMMARY} ORDER BY s.name, s.id")))
            .await
    }

    async fn segment(&self, id: SegmentId) -> StoreResult<SegmentSummary> {
        let mut sql = Sql::new(&format!("{SUMMARY} WHERE s.id = "));
        sql.arg(id.get());
        self.summaries(sql).await?.pop().ok_or(StoreError::NotFound)
    }

    async fn delete_segment(&self, id: SegmentId) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let mut members = Sql::new("DELETE FROM segment_members WHERE segment_id = ");
        members.arg(id.get());
        members
            .query(self.dialect)
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?;
        let mut del = Sql::new("DELETE FROM segments WHERE id = ");
        del.arg(id.get());
        let done = del
            .query(self.dialect)
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await
    }

    async fn segment_members(
        &self,
        id: SegmentId,
        after: Option<ContactId>,
        limit: i64,
    ) -> StoreResult<Vec<Contact>> {
        let mut sql = select(self.dialect);
        sql.push(" WHERE id IN (SELECT contact_id FROM segment_members WHERE segment_id = ")
            .arg(id.get())
            .push(") AND id > ")
            .arg(after.map_or(0, ContactId::get))
            .push(" ORDER BY id LIMIT ")
            .arg(limit.clamp(1, 10_000));
        sql.query(self.dialect)
            .fetch_all(self.pool())
            .await
            .map_err(backend_err)?
            .iter()
            .map(contact_from_row)
            .collect()
    }

    async fn contact_segments(&self, id: ContactId) -> StoreResult<Vec<SegmentSummary>> {
        let mut sql = Sql::new(&format!(
            "{SUMMARY} WHERE s.id IN (SELECT segment_id FROM segment_members WHERE contact_id = "
        ));
        sql.arg(id.get()).push(") ORDER BY s.name, s.id");
        self.summaries(sql).await
    }

    #[tracing::instrument(skip_all)]
    async fn preview_segment(
        &self,
        filter: &Expr,
        now: DateTime<Utc>,
        sample: usize,
    ) -> StoreResult<(i64, Vec<Contact>)> {
        let mut types: Vec<String> = filter
            .patterns()
            .iter()
            .map(|p| p.event_type.as_str().to_owned())
            .collect();
        types.sort();
        types.dedup();
        let mut conn = self.pool().acquire().await.map_err(backend_err)?;
        let (mut count, mut members) = (0i64, Vec::new());
        let mut after = 0i64;
        loop {
            let mut ids = Sql::new("SELECT id FROM contacts WHERE merged_into IS NULL AND id > ");
            ids.arg(after).push(" ORDER BY id LIMIT ").arg(CHUNK);
            let ids = ids_of(&mut conn, ids).await?;
            let Some(last) = ids.last().copied() else {
                break;
            };
            after = last;
            let subjects = load_subjects(&mut conn, &ids, Some(&types)).await?;
            for c in &subjects.contacts {
                if rules::eval(filter, &subjects.subject(c, now)) {
                    count += 1;
                    if members.len() < sample {
                        members.push(c.clone());
                    }
                }
            }
        }
        Ok((count, members))
    }
}
