//! Segments through the API (SPEC's fixed contract): `POST /api/v1/segments` with `{"name",
//! "filter"}` answers with the new `id`; `GET /api/v1/segments/{id}` has `member_count`. Also
//! the list, delete, a preview (the builder's live count) and the members as CSV. Input checks
//! and the CSV are shared with the segment pages.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Json, Response};
use chrono::Utc;
use orchard_core::contact::Contact;
use orchard_core::segment::{self, SegmentError};
use orchard_core::{ContactId, SegmentId};
use orchard_store::{SegmentSummary, Store, StoreError, StoreResult};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::AppState;
use crate::api::events::{Recorded, TypeWarning, expr_warnings, recorded};
use crate::auth::ApiCaller;
use crate::error::{ApiError, ErrorBody};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentIn {
    #[schema(min_length = 1)]
    pub name: String,
    /// In the rule language, e.g. `country in ["DE","AT"] and score >= 40`.
    #[schema(min_length = 1)]
    pub filter: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentOut {
    pub id: i64,
    pub name: String,
    pub filter: String,
    pub member_count: i64,
    /// RFC 3339.
    pub created_at: String,
    /// Event types the filter names that no event has had (a misspelling, or a custom type
    /// not seen yet): the segment is saved, and they count nothing until such events arrive.
    pub warnings: Vec<TypeWarning>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewIn {
    /// In the rule language, as a segment's.
    #[schema(min_length = 1)]
    pub filter: String,
    /// Estimate from about this many contacts (100 to 1 000 000) when there are more: every
    /// n-th contact id is evaluated, and `estimate` in the answer says how many of how many,
    /// with a 95% interval. Without it every contact is evaluated, which on a large database
    /// takes seconds.
    #[serde(default)]
    #[schema(minimum = 100, maximum = 1_000_000)]
    pub estimate_from: Option<i64>,
}

/// The sample sizes `PreviewIn::estimate_from` admits.
pub const ESTIMATE_FROM: std::ops::RangeInclusive<i64> = 100..=1_000_000;

/// How many contacts the segment builder's live count evaluates at most while the filter is
/// typed, by default (`WebConfig::segment_preview_sample`): about a quarter of a second on
/// this project's two-core machine whatever the database's size, and an interval of about
/// ±0.7% of the contacts at worst.
pub const LIVE_ESTIMATE_FROM: i64 = 20_000;

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberOut {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub score: i64,
    #[schema(schema_with = super::lifecycle_stage_schema)]
    pub stage: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewOut {
    /// Contacts the filter holds now, or its estimate when `estimate` is present.
    pub count: i64,
    /// Up to 10 of them (of those evaluated), in id order.
    pub sample: Vec<MemberOut>,
    /// As in `SegmentOut`.
    pub warnings: Vec<TypeWarning>,
    /// Present when `count` is estimated from a sample (`PreviewIn::estimate_from`).
    pub estimate: Option<EstimateOut>,
}

/// How a preview's count was estimated.
#[derive(Debug, Serialize, ToSchema)]
pub struct EstimateOut {
    /// Contacts evaluated, every n-th contact id.
    pub evaluated: i64,
    /// Live contacts in all.
    pub live: i64,
    /// The 95% interval of the count (Wilson's, with the finite population correction).
    pub low: i64,
    pub high: i64,
}

/// A segment as the API shows it; `recorded`: what its filter is checked against
/// (`recorded`).
pub fn segment_out(s: SegmentSummary, recorded: &Recorded) -> SegmentOut {
    SegmentOut {
        warnings: expr_warnings(&s.segment.filter, recorded),
        id: s.segment.id.get(),
        name: s.segment.name,
        filter: s.segment.text,
        member_count: s.member_count,
        created_at: s.segment.created_at.to_rfc3339(),
    }
}

pub fn member_out(c: &Contact) -> MemberOut {
    MemberOut {
        id: c.id.get(),
        email: c.email.to_string(),
        name: c.display_name(),
        score: c.score,
        stage: c.stage.as_str().to_owned(),
    }
}

/// A refused definition as the API's error, with the column of a filter mistake in `details`.
pub fn definition_error(e: SegmentError) -> ApiError {
    let details = match &e {
        SegmentError::Filter(p) => super::text_mistake("filter", p).into(),
        SegmentError::Name => json!({"field": "name"}),
    };
    ApiError::bad_request(e.to_string()).with_details(details)
}

fn may_edit(caller: &ApiCaller) -> Result<(), ApiError> {
    if caller.role.may_change_in_bulk() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only admins, marketers and sales managers manage segments",
        ))
    }
}

fn path_id(id: Result<Path<i64>, PathRejection>) -> Result<SegmentId, ApiError> {
    id.map(|Path(id)| SegmentId::new(id))
        .map_err(|_| ApiError::bad_request("id: must be a whole number"))
}

fn not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found("segment"),
        other => other.into(),
    }
}

/// Create a segment. Every contact's membership is decided before the answer, so
/// `member_count` is right at once; from then on it follows each event.
#[utoipa::path(post, path = "/api/v1/segments", tag = "segments", request_body = SegmentIn,
    security(("bearer" = [])),
    responses((status = 201, body = SegmentOut),
               (status = 400, description = "A bad name or filter; `details` has the filter's column", body = ErrorBody),
               (status = 403, body = ErrorBody),
               (status = 409, description = "A segment of that name exists", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: ApiCaller,
    bytes: Bytes,
) -> Result<(StatusCode, Json<SegmentOut>), ApiError> {
    may_edit(&caller)?;
    let input: SegmentIn = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))?;
    let now = Utc::now();
    let seg = segment::define(&input.name, &input.filter, now).map_err(definition_error)?;
    // Read before the write: a failure after it would answer 500 for a segment saved.
    let recorded = recorded(state.store.as_ref()).await?;
    let id = state.store.create_segment(&seg, now).await?;
    let created = state.store.segment(id).await?;
    Ok((StatusCode::CREATED, Json(segment_out(created, &recorded))))
}

/// List segments with their sizes.
#[utoipa::path(get, path = "/api/v1/segments", tag = "segments", security(("bearer" = [])),
    responses((status = 200, body = Vec<SegmentOut>)))]
pub async fn list(
    State(state): State<AppState>,
    _caller: ApiCaller,
) -> Result<Json<Vec<SegmentOut>>, ApiError> {
    let recorded = recorded(state.store.as_ref()).await?;
    Ok(Json(
        state
            .store
            .segments()
            .await?
            .into_iter()
            .map(|s| segment_out(s, &recorded))
            .collect(),
    ))
}

/// One segment with its member count.
#[utoipa::path(get, path = "/api/v1/segments/{id}", tag = "segments",
    params(("id" = i64, Path, description = "Segment id", example = 1)), security(("bearer" = [])),
    responses((status = 200, body = SegmentOut),
               (status = 400, description = "The id is not a whole number", body = ErrorBody),
               (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    _caller: ApiCaller,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<SegmentOut>, ApiError> {
    let s = state.store.segment(path_id(id)?).await.map_err(not_found)?;
    let recorded = recorded(state.store.as_ref()).await?;
    Ok(Json(segment_out(s, &recorded)))
}

/// Delete a segment (its membership events stay in the log).
#[utoipa::path(delete, path = "/api/v1/segments/{id}", tag = "segments",
    params(("id" = i64, Path, description = "Segment id", example = 1)), security(("bearer" = [])),
    responses((status = 204, description = "Deleted"),
               (status = 400, description = "The id is not a whole number", body = ErrorBody),
               (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: ApiCaller,
    id: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    may_edit(&caller)?;
    state
        .store
        .delete_segment(path_id(id)?)
        .await
        .map_err(not_found)?;
    Ok(StatusCode::NO_CONTENT)
}

/// How many contacts a filter holds now, with a sample, saving nothing.
#[utoipa::path(post, path = "/api/v1/segments/preview", tag = "segments", request_body = PreviewIn,
    security(("bearer" = [])),
    responses((status = 200, body = PreviewOut), (status = 400, body = ErrorBody)))]
pub async fn preview(
    State(state): State<AppState>,
    _caller: ApiCaller,
    bytes: Bytes,
) -> Result<Json<PreviewOut>, ApiError> {
    let input: PreviewIn = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))?;
    Ok(Json(
        run_preview(state.store.as_ref(), &input.filter, input.estimate_from).await?,
    ))
}

/// The builder's live count, shared by the API, the segments page and the command line: every
/// contact, or with `estimate_from` (within `ESTIMATE_FROM`, else a bad request), a sample of
/// about that many when there are more.
pub async fn run_preview(
    store: &dyn Store,
    filter: &str,
    estimate_from: Option<i64>,
) -> Result<PreviewOut, ApiError> {
    if let Some(n) = estimate_from
        && !ESTIMATE_FROM.contains(&n)
    {
        return Err(ApiError::bad_request(format!(
            "estimate_from: between {} and {} contacts, or left out to count every contact",
            ESTIMATE_FROM.start(),
            ESTIMATE_FROM.end()
        )));
    }
    let expr = orchard_core::rules::parse(filter.trim())
        .map_err(|e| definition_error(SegmentError::Filter(e)))?;
    let recorded = recorded(store).await?;
    let preview = store
        .preview_segment(&expr, Utc::now(), 10, estimate_from)
        .await?;
    let size = preview.size();
    Ok(PreviewOut {
        count: size.count,
        sample: preview.members.iter().map(member_out).collect(),
        warnings: expr_warnings(&expr, &recorded),
        estimate: (!size.is_exact()).then_some(EstimateOut {
            evaluated: size.evaluated,
            live: size.live,
            low: size.low,
            high: size.high,
        }),
    })
}

/// Every member as CSV, `email,first_name,last_name,company,country,stage,score` (values that
/// a spreadsheet would run as formulas are prefixed with a quote), a page of members at a time
/// (`next`), so that a large segment is never held whole and its first rows leave at once.
pub struct MembersCsv {
    store: Arc<dyn Store>,
    id: SegmentId,
    after: Option<ContactId>,
    started: bool,
    done: bool,
}

impl std::fmt::Debug for MembersCsv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MembersCsv")
            .field("id", &self.id)
            .field("after", &self.after)
            .finish_non_exhaustive()
    }
}

/// Members per page of the export.
const CSV_PAGE: i64 = 5_000;

impl MembersCsv {
    pub fn new(store: Arc<dyn Store>, id: SegmentId) -> Self {
        Self {
            store,
            id,
            after: None,
            started: false,
            done: false,
        }
    }

    /// The next piece of the file (the header comes with the first), `None` after the last.
    pub async fn next(&mut self) -> StoreResult<Option<String>> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .store
            .segment_members(self.id, self.after, CSV_PAGE)
            .await?;
        let mut out = String::new();
        if !std::mem::replace(&mut self.started, true) {
            out.push_str("email,first_name,last_name,company,country,stage,score\r\n");
        }
        self.done = (page.len() as i64) < CSV_PAGE;
        self.after = page.last().map(|c| c.id);
        let cell = orchard_core::import::csv_field;
        for c in &page {
            let d = &c.details;
            let row = [
                c.email.to_string(),
                d.first_name.clone().unwrap_or_default(),
                d.last_name.clone().unwrap_or_default(),
                d.demographics.company.clone().unwrap_or_default(),
                d.geography.country.clone().unwrap_or_default(),
                c.stage.as_str().to_owned(),
                c.score.to_string(),
            ];
            out.push_str(&row.iter().map(|v| cell(v)).collect::<Vec<_>>().join(","));
            out.push_str("\r\n");
        }
        Ok((!out.is_empty()).then_some(out))
    }

    /// The download, streamed: the first page is read before answering, so that a store that
    /// fails at once answers with an error status rather than an empty file; a failure later
    /// ends the response early (logged), as a download cut short.
    pub async fn response(mut self, name: &str) -> StoreResult<Response> {
        let first = self.next().await?.unwrap_or_default();
        let rest = futures_util::stream::unfold(self, |mut csv| async move {
            match csv.next().await {
                Ok(Some(piece)) => Some((Ok(piece), csv)),
                Ok(None) => None,
                Err(e) => {
                    tracing::error!(error = %e, "a segment export ended early");
                    csv.done = true;
                    Some((Err(std::io::Error::other(e.to_string())), csv))
                }
            }
        });
        let pieces = futures_util::StreamExt::chain(
            futures_util::stream::iter([Ok::<_, std::io::Error>(first)]),
            rest,
        );
        Ok(csv_response(name, axum::body::Body::from_stream(pieces)))
    }
}

/// A CSV download response named after the segment.
pub fn csv_response(name: &str, body: impl IntoResponse) -> Response {
    let file: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    (
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"segment-{file}.csv\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// The members as CSV, for spreadsheets and ad platforms.
#[utoipa::path(get, path = "/api/v1/segments/{id}/members.csv", tag = "segments",
    params(("id" = i64, Path, description = "Segment id", example = 1)), security(("bearer" = [])),
    responses((status = 200, description = "email,first_name,last_name,company,country,stage,score", content_type = "text/csv"),
               (status = 400, description = "The id is not a whole number", body = ErrorBody),
               (status = 404, body = ErrorBody)))]
pub async fn export(
    State(state): State<AppState>,
    _caller: ApiCaller,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    let s = state.store.segment(id).await.map_err(not_found)?;
    Ok(MembersCsv::new(Arc::clone(&state.store), id)
        .response(&s.segment.name)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_mistakes_carry_their_column() {
        let e = definition_error(SegmentError::Filter(
            orchard_core::rules::parse("score >=").unwrap_err(),
        ));
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.details.unwrap()["column"], 9);
    }
}
