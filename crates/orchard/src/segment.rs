//! `orchard segment list | create | export`: segments from the command line, through the same
//! definition check and CSV as the API and the segments page.

use chrono::Utc;
use orchard_core::SegmentId;
use orchard_core::segment;
use orchard_store::Store;
use orchard_web::api::events::recorded_types;
use orchard_web::api::segments::{SegmentOut, members_csv, segment_out};

/// Every segment with its size.
pub async fn list(store: &dyn Store) -> anyhow::Result<Vec<SegmentOut>> {
    let recorded = recorded_types(store).await?;
    Ok(store
        .segments()
        .await?
        .into_iter()
        .map(|s| segment_out(s, &recorded))
        .collect())
}

/// The list as a table for people.
pub fn table(segments: &[SegmentOut]) -> String {
    let mut out = format!(
        "{:>5}  {:<28} {:>8}  {}\n",
        "id", "name", "members", "filter"
    );
    for s in segments {
        out.push_str(&format!(
            "{:>5}  {:<28} {:>8}  {}\n",
            s.id, s.name, s.member_count, s.filter
        ));
        // Under the segment it is about: a filter that counts nothing for want of events.
        for w in &s.warnings {
            out.push_str(&format!("{:>5}  warning: {}\n", "", w.message));
        }
    }
    out
}

/// Saves a segment and decides every contact's membership; a bad filter is refused with its
/// column.
pub async fn create(store: &dyn Store, name: &str, filter: &str) -> anyhow::Result<SegmentOut> {
    let now = Utc::now();
    let seg = segment::define(name, filter, now).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Read before the write, so that a failed read does not report a saved segment as failed.
    let recorded = recorded_types(store).await?;
    let id = store.create_segment(&seg, now).await?;
    Ok(segment_out(store.segment(id).await?, &recorded))
}

/// The members as CSV (`email,first_name,last_name,company,country,stage,score`).
pub async fn export(store: &dyn Store, id: i64) -> anyhow::Result<String> {
    let id = SegmentId::new(id);
    store
        .segment(id)
        .await
        .map_err(|_| anyhow::anyhow!("no segment {id}; `orchard segment list` shows them"))?;
    Ok(members_csv(store, id).await?)
}
