//! `orchard segment list | create | export | count`: segments from the command line, through the
//! same definition check, CSV and preview as the API and the segments page.

use std::sync::Arc;

use chrono::Utc;
use orchard_core::SegmentId;
use orchard_core::segment;
use orchard_store::Store;
use orchard_web::api::events::recorded;
use orchard_web::api::segments::{MembersCsv, PreviewOut, SegmentOut, run_preview, segment_out};

/// Every segment with its size.
pub async fn list(store: &dyn Store) -> anyhow::Result<Vec<SegmentOut>> {
    let recorded = recorded(store).await?;
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
    let recorded = recorded(store).await?;
    let id = store.create_segment(&seg, now).await?;
    Ok(segment_out(store.segment(id).await?, &recorded))
}

/// Writes the members as CSV (`email,first_name,last_name,company,country,stage,score`) to
/// `out`, a page at a time.
pub async fn export(
    store: Arc<dyn Store>,
    id: i64,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let id = SegmentId::new(id);
    store
        .segment(id)
        .await
        .map_err(|_| anyhow::anyhow!("no segment {id}; `orchard segment list` shows them"))?;
    let mut csv = MembersCsv::new(store, id);
    while let Some(piece) = csv.next().await? {
        out.write_all(piece.as_bytes())?;
    }
    Ok(out.flush()?)
}

/// How many contacts a filter holds now, as the builder counts them: every contact, or with
/// `estimate_from`, a sample of about that many when there are more.
pub async fn count(
    store: &dyn Store,
    filter: &str,
    estimate_from: Option<i64>,
) -> anyhow::Result<PreviewOut> {
    run_preview(store, filter, estimate_from)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))
}

/// A count for people: the number (or the estimate with its interval and sample), warnings,
/// then the first members.
pub fn count_table(p: &PreviewOut) -> String {
    let mut out = match &p.estimate {
        None if p.count == 1 => "1 contact matches now\n".to_owned(),
        None => format!("{} contacts match now\n", p.count),
        Some(e) => format!(
            "about {} contacts match now (95%: {}-{}), estimated from {} of {} contacts\n",
            p.count, e.low, e.high, e.evaluated, e.live
        ),
    };
    for w in &p.warnings {
        out.push_str(&format!("warning: {}\n", w.message));
    }
    for m in &p.sample {
        out.push_str(&format!(
            "{:>8}  {:<36} {:<24} {:<12} {:>5}\n",
            m.id, m.email, m.name, m.stage, m.score
        ));
    }
    out
}
