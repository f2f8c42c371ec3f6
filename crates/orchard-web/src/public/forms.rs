//! `GET /f/{slug}` shows a capture form; `POST /f/{slug}` takes a submission as a plain HTML
//! form post (answered with a redirect or a page) or as JSON (answered with JSON). A rejected
//! submission creates nothing and says which fields to fix; a filled honeypot is answered as a
//! success and discarded.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_TYPE, REFERER, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Redirect, Response};
use chrono::Utc;
use orchard_core::capture::Form;
use orchard_core::event::{EventType, NewEvent};
use orchard_core::submission::{
    self, CONSENT_GIVEN, HONEYPOT_FIELD, KNOWN_FIELDS, MAX_MESSAGE, MAX_VALUE, Rejection,
    TRACKING_FIELDS, is_visitor_id,
};
use orchard_store::{Capture, StoreError};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};

use super::{ClientIp, visitor_cookie, visitor_from_cookie};
use crate::AppState;
use crate::error::{ApiError, ErrorBody};

/// Most fields a submission may carry.
const MAX_FIELDS: usize = 64;

/// What a script's submission is answered with once it is taken (or quietly discarded as a
/// bot's).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
    /// The form's thank-you text.
    pub message: String,
}

/// The fields of a submission, for the OpenAPI document: the names `orchard_core::submission`
/// reads, from its own lists.
#[derive(Debug)]
pub struct SubmissionFields;

impl utoipa::PartialSchema for SubmissionFields {
    fn schema() -> RefOr<Schema> {
        let text = |description: String| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(description))
        };
        let mut fields = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(format!(
                "Text fields. Besides `email`, only the fields the form asks for and the \
                 attribution fields are taken; any other name is answered 422 with the field \
                 named. Values are at most {MAX_VALUE} bytes ({MAX_MESSAGE} for `message`), \
                 with no control characters but tabs and line breaks; at most {MAX_FIELDS} \
                 fields. A `visitor_id` that is not 8 to 64 letters, digits and hyphens is left \
                 out (the `orchard_vid` cookie's is read instead). A JSON body may also give \
                 numbers and booleans, read as text, and null for a field left out."
            )))
            .property(
                "email",
                text("The visitor's email address.".into())
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email))),
            )
            .required("email")
            .property(
                "consent",
                text(
                    "The visitor agreed to the form's consent text (required when the form has \
                     one)."
                        .into(),
                )
                .enum_values(Some(CONSENT_GIVEN)),
            );
        for f in KNOWN_FIELDS {
            fields = fields.property(f, text(format!("Taken when the form asks for `{f}`.")));
        }
        for f in TRACKING_FIELDS {
            fields = fields.property(f, text("Attribution, kept with the submission.".into()));
        }
        fields
            .additional_properties(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build()
            .into()
    }
}

impl utoipa::ToSchema for SubmissionFields {}

/// The hosted form's query parameters: the attribution it carries over into the submission as
/// hidden fields, for the OpenAPI document.
#[derive(Debug)]
pub struct FormPageQuery;

impl utoipa::IntoParams for FormPageQuery {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        super::text_params(
            TRACKING_FIELDS.into_iter().filter(|f| *f != "visitor_id"),
            |_| {
                format!(
                    "Carried into the submission (at most {MAX_VALUE} bytes; `referrer` \
                     defaults to the `Referer` header, `landing_page` to this page)."
                )
            },
        )
    }
}

fn label(field: &str) -> String {
    match field {
        "first_name" => "First name".into(),
        "last_name" => "Last name".into(),
        "job_title" => "Job title".into(),
        "company_size" => "Company size".into(),
        "country" => "Country (two letters, e.g. DE)".into(),
        other => {
            let mut s = other.replace('_', " ");
            if let Some(first) = s.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            s
        }
    }
}

fn render_form(
    state: &AppState,
    form: &Form,
    status: StatusCode,
    values: &BTreeMap<String, String>,
    errors: &BTreeMap<String, String>,
    vid: &str,
) -> Response {
    let fields: Vec<Value> = form
        .fields
        .iter()
        .filter(|f| f.as_str() != "message")
        .map(|f| json!({"name": f, "label": label(f), "value": values.get(f), "error": errors.get(f)}))
        .collect();
    let hidden: Vec<(&str, &String)> = TRACKING_FIELDS
        .iter()
        .filter(|f| **f != "visitor_id")
        .filter_map(|f| values.get(*f).map(|v| (*f, v)))
        .collect();
    let page = state.templates.render(
        "public_form.html",
        json!({
            "form": {"slug": form.slug, "name": form.name, "consent_text": form.consent_text,
                     "message": form.fields.iter().any(|f| f == "message")},
            "fields": fields,
            "email": values.get("email"),
            "message": values.get("message"),
            "errors": errors,
            "hidden": hidden,
            "visitor_id": vid,
            "honeypot": HONEYPOT_FIELD,
        }),
    );
    (status, [(SET_COOKIE, visitor_cookie(vid))], page).into_response()
}

async fn load_form(state: &AppState, slug: &str) -> Result<Form, Response> {
    match state.store.form_by_slug(slug).await {
        Ok(f) => Ok(f),
        Err(StoreError::NotFound) => Err((StatusCode::NOT_FOUND, "No such form.").into_response()),
        Err(StoreError::Busy(reason)) => {
            tracing::warn!(%reason, "turned a form away: the database is busy");
            Err((
                StatusCode::SERVICE_UNAVAILABLE,
                [(axum::http::header::RETRY_AFTER, "1")],
                "Busy for a moment; please try again.",
            )
                .into_response())
        }
        Err(e) => {
            tracing::error!(error = %e, "loading form failed");
            Err((StatusCode::INTERNAL_SERVER_ERROR, "Please try again later.").into_response())
        }
    }
}

/// A hosted form's page
///
/// UTM parameters and the referrer of the page that linked here travel with the submission
/// as hidden fields.
#[utoipa::path(get, path = "/f/{slug}", tag = "public", operation_id = "form_page",
    params(("slug" = String, Path, description = "The form's slug", example = "newsletter"),
        FormPageQuery),
    responses(
        (status = 200, description = "The form as a page; its view is recorded as a `page_viewed` \
            event of the visitor (cookie `orchard_vid`, set when missing)",
            content_type = "text/html", body = String),
        (status = 404, description = "No form has that slug", content_type = "text/plain",
            body = String),
        (status = 503, description = "The database is busy; try again (`Retry-After`)",
            content_type = "text/plain", body = String)))]
pub async fn page(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(slug): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let form = match load_form(&state, &slug).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut values: BTreeMap<String, String> = query
        .into_iter()
        .filter(|(k, v)| TRACKING_FIELDS.contains(&k.as_str()) && v.len() <= MAX_VALUE)
        .collect();
    if let Some(r) = headers.get(REFERER).and_then(|v| v.to_str().ok()) {
        values
            .entry("referrer".into())
            .or_insert_with(|| r.chars().take(MAX_VALUE).collect());
    }
    values
        .entry("landing_page".into())
        .or_insert_with(|| format!("/f/{slug}"));
    let vid = visitor_from_cookie(&headers).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    // The hosted form is a page of its own: its view counts like any tracked page's.
    let mut view = values.clone();
    view.insert("url".into(), format!("/f/{slug}"));
    // Counted against the beacon budget, so a crawler reloading the page cannot flood the log.
    if !state.beacon_limiter.allow(ip, "pv", Instant::now()) {
        tracing::debug!(%ip, "page view over the beacon limit: not recorded");
    } else if let Err(e) = super::tracking::record(&state, &vid, &view).await {
        tracing::warn!(status = %e.status, reason = %e.message, "hosted form page view not recorded");
    }
    render_form(
        &state,
        &form,
        StatusCode::OK,
        &values,
        &BTreeMap::new(),
        &vid,
    )
}

enum Reply {
    Html,
    Json,
}

fn parse_body(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Reply, BTreeMap<String, String>), String> {
    let ctype = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mut fields = BTreeMap::new();
    let reply = if ctype.starts_with("application/json") {
        let obj: Map<String, Value> = serde_json::from_slice(body)
            .map_err(|e| format!("the body is not a JSON object of fields: {e}"))?;
        for (k, v) in obj {
            let v = match v {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => continue,
                _ => return Err(format!("{k}: must be a string, number or boolean")),
            };
            fields.insert(k, v);
        }
        Reply::Json
    } else if ctype.starts_with("application/x-www-form-urlencoded") || ctype.is_empty() {
        for (k, v) in url::form_urlencoded::parse(body) {
            fields.insert(k.into_owned(), v.into_owned());
        }
        Reply::Html
    } else {
        return Err(
            "send the form as application/x-www-form-urlencoded or application/json".into(),
        );
    };
    if fields.len() > MAX_FIELDS {
        return Err(format!("at most {MAX_FIELDS} fields"));
    }
    Ok((reply, fields))
}

fn accepted(form: &Form) -> Response {
    Json(Accepted {
        status: "ok",
        message: form.thank_you.clone(),
    })
    .into_response()
}

fn thanks(state: &AppState, form: &Form) -> Response {
    match &form.redirect_url {
        Some(url) => Redirect::to(url).into_response(),
        None => state.templates.render(
            "public_thanks.html",
            json!({"name": form.name, "thank_you": form.thank_you}),
        ),
    }
}

/// Submit a form
///
/// As a browser's HTML post or a script's JSON; the reply follows the body's content type:
/// pages and a redirect for a post, JSON for JSON. No token: the form's address is public, and
/// each address may send the configured number of submissions per form and minute. The answer
/// never tells whether the email was known before.
#[utoipa::path(post, path = "/f/{slug}", tag = "public", operation_id = "form_submit",
    params(("slug" = String, Path, description = "The form's slug", example = "newsletter")),
    request_body(content(
        (SubmissionFields = "application/x-www-form-urlencoded"),
        (SubmissionFields = "application/json"))),
    responses(
        (status = 200, description = "Taken: the contact is created or updated and a \
            `form_submitted` event stored (a bot's filled honeypot is answered the same and \
            stores nothing). A post is answered with the thank-you page",
            content((Accepted = "application/json"), (String = "text/html"))),
        (status = 303, description = "Taken, from a post to a form with a redirect address: \
            the browser goes there"),
        (status = 400, description = "The body is not a form post or a JSON object of fields, \
            or has too many fields", body = ErrorBody),
        (status = 404, description = "No form has that slug", content_type = "text/plain",
            body = String),
        (status = 422, description = "Some fields need correcting; nothing was stored. JSON \
            names each field and what is wrong (`details.fields`); a post gets the form again \
            with the messages beside the fields",
            content((ErrorBody = "application/json"), (String = "text/html"))),
        (status = 429, description = "Too many submissions from this address to this form in \
            the last minute",
            content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 413, description = "The body is over 64 KiB", content_type = "text/plain",
            body = String),
        (status = 503, description = "The database is busy; nothing was stored, send it \
            again (`Retry-After`)",
            content((ErrorBody = "application/json"), (String = "text/plain")))))]
#[tracing::instrument(skip_all, fields(form = %slug))]
pub async fn submit(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match load_form(&state, &slug).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let (reply, mut fields) = match parse_body(&headers, &body) {
        Ok(x) => x,
        Err(message) => return ApiError::bad_request(message).into_response(),
    };
    if !state.form_limiter.allow(ip, &slug, Instant::now()) {
        tracing::warn!(%ip, "form rate limit reached");
        let msg = "Too many submissions from your address; please wait a minute.";
        return match reply {
            Reply::Json => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", msg).into_response()
            }
            Reply::Html => (StatusCode::TOO_MANY_REQUESTS, msg).into_response(),
        };
    }
    // The visitor: the posted id (the hosted form's hidden field) when a cookie could carry
    // it, else the cookie's: a broken posted id does not hide a good cookie.
    match fields
        .get("visitor_id")
        .filter(|v| is_visitor_id(v))
        .cloned()
        .or_else(|| visitor_from_cookie(&headers))
    {
        Some(v) => fields.insert("visitor_id".into(), v),
        None => fields.remove("visitor_id"),
    };
    let now = Utc::now();
    let now = chrono::DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
    let sub = match submission::check(&form, &fields, now) {
        Ok(s) => s,
        Err(Rejection::Spam) => {
            tracing::info!(%ip, "honeypot filled: submission discarded");
            return match reply {
                Reply::Json => accepted(&form),
                Reply::Html => thanks(&state, &form),
            };
        }
        Err(Rejection::Invalid(errors)) => {
            return match reply {
                Reply::Json => ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    "some fields need correcting",
                )
                .with_details(json!({ "fields": errors }))
                .into_response(),
                Reply::Html => {
                    // Written back into the cookie: the cookie's own id, or a new one, never a
                    // posted one (a page elsewhere could post one to fix a visitor's cookie).
                    let vid = visitor_from_cookie(&headers)
                        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                    render_form(
                        &state,
                        &form,
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &fields,
                        &errors,
                        &vid,
                    )
                }
            };
        }
    };
    let magnet = match form.lead_magnet_id {
        Some(id) => state
            .store
            .lead_magnets()
            .await
            .ok()
            .and_then(|ms| ms.into_iter().find(|m| m.id == id)),
        None => None,
    };
    let mut properties = Map::new();
    properties.insert("form".into(), json!(form.slug));
    for (k, v) in [
        ("utm_source", &sub.touch.source),
        ("utm_medium", &sub.touch.medium),
        ("utm_campaign", &sub.touch.campaign),
        ("utm_term", &sub.touch.term),
        ("utm_content", &sub.touch.content),
        ("referrer", &sub.touch.referrer),
        ("landing_page", &sub.touch.landing_page),
        ("partner_id", &sub.touch.partner_id),
        ("message", &sub.message),
    ] {
        if let Some(v) = v {
            properties.insert(k.into(), json!(v));
        }
    }
    if let Some(m) = &magnet {
        properties.insert("lead_magnet".into(), json!(m.slug));
        properties.insert("funnel_stage".into(), json!(m.stage.as_str()));
    }
    let event = NewEvent {
        client_id: format!("form-{}", uuid::Uuid::now_v7()),
        event_type: EventType::FormSubmitted,
        contact_id: None,
        visitor_id: sub.visitor_id.clone(),
        at: now,
        properties,
    };
    let capture = Capture {
        form: form.clone(),
        magnet,
        submission: sub,
        event,
    };
    if let Err(e) = state.store.capture(&capture).await {
        tracing::error!(error = %e, "capture failed");
        return ApiError::from(e).into_response();
    }
    match reply {
        Reply::Json => accepted(&form),
        Reply::Html => thanks(&state, &form),
    }
}
