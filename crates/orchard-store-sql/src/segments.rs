//! Segments: saved filters, their members (kept current by `derive::refresh_in` on every
//! append, and decided for a new segment alone by `Refresh::Segment`), the members' export,
//! and the builder's preview, which evaluates a filter over every contact, or over every n-th
//! contact id for an estimate, without saving it, loading only what the filter reads.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use orchard_core::contact::Contact;
use orchard_core::rules::{self, Expr};
use orchard_core::segment::{self, Segment};
use orchard_core::{ContactId, SegmentId};
use orchard_store::{Preview, SegmentStore, SegmentSummary, StoreError, StoreResult};

use crate::contacts::{contact_from_row, select, select_with};
use crate::derive::{Free, Keep, Source, Subjects, segment_from_row};
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
        // Everyone's membership (and due time) decided now, by the step appends take, for this
        // segment alone: nothing else changes with it.
        orchard_store::refresh_all(
            self,
            now,
            orchard_store::LIVE_BATCH,
            orchard_store::Refresh::Segment(id),
            &|_| {},
        )
        .await?;
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
        // Along the members' key from `after`: an `IN` of the segment's members was built
        // whole for every page, and a 300 000-member export spent ten seconds building them.
        let mut sql = select_with(
            self.dialect,
            " FROM segment_members m JOIN contacts ON contacts.id = m.contact_id \
             WHERE m.segment_id = ",
        );
        sql.arg(id.get())
            .push(" AND m.contact_id > ")
            .arg(after.map_or(0, ContactId::get))
            .push(" ORDER BY m.contact_id LIMIT ")
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
        at_most: Option<i64>,
    ) -> StoreResult<Preview> {
        let mut source = Source::of(self).await?;
        // With a sample, every `step`-th id from the first live one to the last.
        let mut sampled = None;
        let mut live = None;
        if let Some(at_most) = at_most {
            let row = Sql::new(
                "SELECT COUNT(*) AS live, COALESCE(MIN(id), 0) AS first, \
                 COALESCE(MAX(id), 0) AS last FROM contacts WHERE merged_into IS NULL",
            )
            .fetch_all_in(source.conn())
            .await?;
            let row = row.first().ok_or(StoreError::NotFound)?;
            let (count, first, last): (i64, i64, i64) =
                (get(row, "live")?, get(row, "first")?, get(row, "last")?);
            if let Some(step) = segment::sample_step(last - first + 1, count, at_most) {
                live = Some(count);
                sampled = Some((first..=last).step_by(step as usize));
            }
        }
        // Only what the filter reads: the event types it counts, the properties its patterns
        // test, the members of the details it compares. A pipeline, as a refresh runs: while
        // one chunk is evaluated on a blocking thread the next is loaded.
        let keep = Keep::reading(&filter.patterns(), &filter.detail_keys(), false);
        let filter = Arc::new(filter.clone());
        let (mut matched, mut evaluated, mut firsts) = (0i64, 0i64, Vec::new());
        let mut after = 0i64;
        // Raised when this pass is dropped (the builder's next keystroke, a client gone), so
        // that the chunk being evaluated stops at its next contact (`backtest_scores` does
        // the same).
        let stopped = Free::new(false);
        let _stop = stopped.on_drop();
        let mut deciding: Option<(tokio::task::JoinHandle<StoreResult<Evaluated>>, Free)> = None;
        loop {
            let ids: Vec<i64> = match &mut sampled {
                Some(ids) => ids.by_ref().take(CHUNK as usize).collect(),
                None => {
                    let mut q =
                        Sql::new("SELECT id FROM contacts WHERE merged_into IS NULL AND id > ");
                    q.arg(after).push(" ORDER BY id LIMIT ").arg(CHUNK);
                    let ids = source.ids(q).await?;
                    after = ids.last().copied().unwrap_or(after);
                    ids
                }
            };
            let loaded = if ids.is_empty() {
                None
            } else {
                let free = deciding
                    .as_ref()
                    .map_or_else(|| Free::new(true), |d| d.1.clone());
                Some(source.load(ids, keep.clone(), false, free).await?)
            };
            if let Some((d, _)) = deciding.take() {
                let (m, e, f) = d.await.map_err(|e| StoreError::Backend(Box::new(e)))??;
                matched += m;
                evaluated += e;
                firsts.extend(f);
            }
            let Some(mut subjects) = loaded else {
                break;
            };
            let filter = Arc::clone(&filter);
            let free = Free::new(false);
            let done = free.on_drop();
            let stopped = stopped.clone();
            let task = tokio::task::spawn_blocking(move || {
                let _done = done;
                evaluate(&filter, &mut subjects, now, sample, &stopped)
            });
            deciding = Some((task, free));
        }
        firsts.truncate(sample);
        // The members shown, whole: the evaluation read only what the filter needs.
        let members = if firsts.is_empty() {
            Vec::new()
        } else {
            let mut sql = select(self.dialect);
            sql.push(" WHERE id");
            sql.in_ids(self.dialect, firsts.iter().copied())
                .push(" ORDER BY id");
            sql.fetch_all_in(source.conn())
                .await?
                .iter()
                .map(contact_from_row)
                .collect::<StoreResult<_>>()?
        };
        Ok(Preview {
            matched,
            evaluated,
            live: live.unwrap_or(evaluated),
            members,
        })
    }
}

/// A chunk's evaluation in a preview: matches, contacts evaluated, the first matches' ids.
type Evaluated = (i64, i64, Vec<i64>);

/// Evaluates `filter` for a preview's chunk, keeping the first `sample` matches' ids, contact
/// by contact until `stopped` is raised.
fn evaluate(
    filter: &Expr,
    subjects: &mut Subjects,
    now: DateTime<Utc>,
    sample: usize,
    stopped: &Free,
) -> StoreResult<Evaluated> {
    subjects.unpack()?;
    let mut m = 0;
    let mut f = Vec::new();
    for c in &subjects.contacts {
        if stopped.raised() {
            return Err(StoreError::Busy("the preview was stopped".into()));
        }
        if rules::eval(filter, &subjects.subject(c, now)) {
            m += 1;
            if f.len() < sample {
                f.push(c.id.get());
            }
        }
    }
    Ok((m, subjects.contacts.len() as i64, f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preview_chunk_stops_at_its_next_contact_once_stopped() {
        let filter = rules::parse("score >= 40").unwrap();
        let now = Utc::now();
        let going = Free::new(false);
        let evaluated = evaluate(&filter, &mut Subjects::two_for_tests(), now, 10, &going);
        assert_eq!(evaluated.unwrap(), (1, 2, vec![7]));
        let stopped = Free::new(false);
        drop(stopped.on_drop());
        assert!(matches!(
            evaluate(&filter, &mut Subjects::two_for_tests(), now, 10, &stopped),
            Err(StoreError::Busy(_))
        ));
    }
}
