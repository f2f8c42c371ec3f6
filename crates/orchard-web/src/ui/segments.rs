//! The segments page: the saved segments with their sizes and CSV exports, and the builder,
//! which shows the live count and a sample of members while the filter is typed (a small script
//! asks `POST /segments/preview`; without JavaScript the Preview button does the same).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Redirect, Response};
use chrono::Utc;
use orchard_core::SegmentId;
use orchard_core::segment;
use orchard_store::StoreError;
use serde_json::{Value, json};

use crate::AppState;
use crate::api::events::{event_types_out, recorded};
use crate::api::segments::{MembersCsv, run_preview, segment_out};
use crate::auth::WebUser;
use crate::ui::Viewer;

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn field(form: &[(String, String)], name: &str) -> String {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

async fn page(state: &AppState, user: &WebUser, status: StatusCode, extra: Value) -> Response {
    let listed = async {
        let recorded = recorded(state.store.as_ref()).await?;
        let segments = state.store.segments().await?;
        Ok::<_, crate::error::ApiError>((
            segments
                .into_iter()
                .map(|s| segment_out(s, &recorded))
                .collect::<Vec<_>>(),
            event_types_out(&recorded.types),
        ))
    };
    let (segments, event_types) = match listed.await {
        Ok(listed) => listed,
        Err(e) => {
            tracing::error!(error = %e.message, "segments failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The segments could not be loaded.",
            )
                .into_response();
        }
    };
    let mut ctx = json!({
        "viewer": Viewer::from(user), "nav": "segments", "segments": segments,
        "event_types": event_types,
        "may_edit": user.user.role.may_change_in_bulk(), "values": {},
    });
    if let (Some(c), Value::Object(x)) = (ctx.as_object_mut(), extra) {
        c.extend(x);
    }
    (status, state.templates.render("segments.html", ctx)).into_response()
}

pub async fn list(State(state): State<AppState>, user: WebUser) -> Response {
    page(&state, &user, StatusCode::OK, json!({})).await
}

/// `POST /segments`: save (`action=save`) or, without JavaScript, count (`action=preview`).
pub async fn create(State(state): State<AppState>, user: WebUser, body: Bytes) -> Response {
    let f = form(&body);
    if !user.csrf_ok(&field(&f, "csrf")) {
        return (
            StatusCode::FORBIDDEN,
            "The form expired; reload the page and try again.",
        )
            .into_response();
    }
    let (name, filter) = (field(&f, "name"), field(&f, "filter"));
    let values = json!({"name": name, "filter": filter});
    if field(&f, "action") == "preview" {
        return match run_preview(state.store.as_ref(), &filter, None).await {
            Ok(p) => {
                page(
                    &state,
                    &user,
                    StatusCode::OK,
                    json!({"values": values, "preview": p}),
                )
                .await
            }
            Err(e) => {
                page(
                    &state,
                    &user,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({"values": values, "problem": e.message}),
                )
                .await
            }
        };
    }
    if !user.user.role.may_change_in_bulk() {
        return (
            StatusCode::FORBIDDEN,
            "Only admins, marketers and sales managers save segments.",
        )
            .into_response();
    }
    let now = Utc::now();
    let problem = match segment::define(&name, &filter, now) {
        Err(e) => e.to_string(),
        Ok(seg) => match state.store.create_segment(&seg, now).await {
            Ok(_) => return Redirect::to("/segments").into_response(),
            Err(orchard_store::StoreError::Conflict(taken)) => taken,
            Err(e) => {
                tracing::error!(error = %e, "saving a segment failed");
                "Orchard could not save it; try again shortly.".into()
            }
        },
    };
    page(
        &state,
        &user,
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"values": values, "problem": problem}),
    )
    .await
}

/// `POST /segments/preview`: the live count as JSON for the builder's script.
pub async fn preview(State(state): State<AppState>, user: WebUser, body: Bytes) -> Response {
    let f = form(&body);
    if !user.csrf_ok(&field(&f, "csrf")) {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"error": "The page expired; reload it."})),
        )
            .into_response();
    }
    // While the filter is typed, a count that answers at once at any size: estimated from a
    // sample on a large database. "Count now" (`create`, `action=preview`) counts everyone.
    match run_preview(
        state.store.as_ref(),
        &field(&f, "filter"),
        Some(state.config.segment_preview_sample),
    )
    .await
    {
        Ok(p) => Json(json!(p)).into_response(),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": e.message, "details": e.details})),
        )
            .into_response(),
    }
}

pub async fn delete(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    if !user.csrf_ok(&field(&form(&body), "csrf")) || !user.user.role.may_change_in_bulk() {
        return (StatusCode::FORBIDDEN, "Not allowed, or the form expired.").into_response();
    }
    match state.store.delete_segment(SegmentId::new(id)).await {
        Ok(()) | Err(StoreError::NotFound) => Redirect::to("/segments").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "deleting a segment failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The segment could not be deleted.",
            )
                .into_response()
        }
    }
}

pub async fn export(
    State(state): State<AppState>,
    _user: WebUser,
    Path(id): Path<i64>,
) -> Response {
    let id = SegmentId::new(id);
    let seg = match state.store.segment(id).await {
        Ok(s) => s,
        Err(StoreError::NotFound) => {
            return (StatusCode::NOT_FOUND, "No such segment.").into_response();
        }
        Err(e) => {
            tracing::error!(error = %e, "segment export failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "The export failed.").into_response();
        }
    };
    match MembersCsv::new(Arc::clone(&state.store), id)
        .response(&seg.segment.name)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "segment export failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "The export failed.").into_response()
        }
    }
}
