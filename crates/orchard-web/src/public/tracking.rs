//! The page-view beacon: `GET /t/pv.gif?url=…` (an image a website embeds; works without
//! JavaScript) and `POST /t/pv` (JSON, for scripts). Both carry the first-party visitor id
//! cookie, append a `page_viewed` event and answer at once. A visitor already tied to a contact
//! has the view recorded on the contact; an anonymous one keeps it under the visitor id until a
//! form submission identifies them.
//!
//! Orchard's own emails use `GET /t/o/{token}.gif` (open pixel) and `GET /t/c/{token}` (click
//! redirect), whose tokens are signed (`orchard_core::tracking`): a forged or altered token
//! records nothing, and the redirect only ever goes where a signed link said.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, REFERER, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use orchard_core::event::{EventType, NewEvent};
use orchard_core::submission::is_visitor_id;
use orchard_core::tracking::{Tracked, verify};
use serde_json::{Map, Value, json};
use sha2::Digest;
use utoipa::openapi::RefOr;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use super::ClientIp;
use crate::AppState;
use crate::error::{ApiError, ErrorBody};

/// A transparent 1×1 GIF.
const PIXEL: [u8; 43] = [
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

const PROPS: [&str; 8] = [
    "url",
    "title",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
];

/// Longest `url`, and longest of the other fields, in bytes; longer values are refused (`url`)
/// or left out (the rest).
const MAX_URL: usize = 2_000;
const MAX_FIELD: usize = 500;

/// What a page view's field holds, for the OpenAPI document.
fn described(field: &str) -> String {
    match field {
        "url" => format!(
            "The page's address (at most {MAX_URL} bytes). Required; when it is missing, the \
             `Referer` header's is taken (the page that embeds the pixel or sends the beacon)."
        ),
        "visitor_id" => "The visitor's id, 8 to 64 letters, digits and hyphens; without it the \
                         `orchard_vid` cookie's, or a new one (then set as the cookie)."
            .into(),
        other => format!(
            "The page's {}, kept when at most {MAX_FIELD} bytes.",
            other.replace('_', " ")
        ),
    }
}

/// The fields of a page view (`PROPS` and `visitor_id`), all text.
fn page_view_fields() -> impl Iterator<Item = &'static str> {
    PROPS.into_iter().chain(["visitor_id"])
}

/// A page view's query parameters (`GET /t/pv.gif`), for the OpenAPI document.
#[derive(Debug)]
pub struct PageViewQuery;

impl utoipa::IntoParams for PageViewQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        super::text_params(page_view_fields(), described)
    }
}

/// A page view's JSON body (`POST /t/pv`), for the OpenAPI document.
#[derive(Debug)]
pub struct PageViewFields;

impl utoipa::PartialSchema for PageViewFields {
    fn schema() -> RefOr<Schema> {
        let mut fields = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "A page view. Fields that are not text are left out, as are names not listed here.",
            ));
        for f in page_view_fields() {
            fields = fields.property(
                f,
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some(described(f))),
            );
        }
        fields.required("url").build().into()
    }
}

impl utoipa::ToSchema for PageViewFields {}

/// Records one page view; a 400 when it has no usable `url`, or the store's error.
pub(crate) async fn record(
    state: &AppState,
    vid: &str,
    fields: &BTreeMap<String, String>,
) -> Result<(), ApiError> {
    let url = fields
        .get("url")
        .map(|u| u.trim())
        .filter(|u| !u.is_empty() && u.len() <= MAX_URL);
    let Some(url) = url else {
        return Err(ApiError::bad_request(format!(
            "url: required, at most {MAX_URL} bytes"
        )));
    };
    let mut props = Map::new();
    props.insert("url".into(), json!(url));
    for k in PROPS.iter().skip(1) {
        if let Some(v) = fields
            .get(*k)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty() && v.len() <= MAX_FIELD)
        {
            props.insert((*k).into(), json!(v));
        }
    }
    let contact_id = state.store.contact_for_visitor(vid).await?;
    let event = NewEvent {
        client_id: format!("pv-{}", uuid::Uuid::now_v7()),
        event_type: EventType::PageViewed,
        contact_id,
        visitor_id: Some(vid.to_owned()),
        at: chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis())
            .unwrap_or_else(Utc::now),
        properties: props,
    };
    state.store.append_events(&[event]).await?;
    Ok(())
}

fn visitor(headers: &HeaderMap, given: Option<&String>) -> (String, bool) {
    if let Some(v) = given.filter(|v| is_visitor_id(v)) {
        return (v.clone(), false);
    }
    match super::visitor_from_cookie(headers) {
        Some(v) => (v, false),
        None => (uuid::Uuid::new_v4().to_string(), true),
    }
}

/// Records a page view from a pixel or a beacon: the visitor id to set as the cookie when the
/// visitor had none.
async fn handle(
    state: &AppState,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
    mut fields: BTreeMap<String, String>,
) -> Result<Option<String>, ApiError> {
    if !state.beacon_limiter.allow(ip, "pv", Instant::now()) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many page views from this address in the last minute",
        ));
    }
    let (vid, new) = visitor(headers, fields.get("visitor_id"));
    if !fields.contains_key("url")
        && let Some(r) = headers.get(REFERER).and_then(|v| v.to_str().ok())
    {
        fields.insert("url".into(), r.to_owned());
    }
    record(state, &vid, &fields).await?;
    Ok(new.then_some(vid))
}

fn with_cookie(resp: Response, vid: Option<String>) -> Response {
    let mut resp = resp;
    if let Some(v) = vid
        && let Ok(h) = super::visitor_cookie(&v).parse()
    {
        resp.headers_mut().append(SET_COOKIE, h);
    }
    resp
}

/// Record a page view with an image
///
/// For a page to embed: no JavaScript needed. The view is the visitor's (anonymous until a
/// form submission ties them to a contact); a known visitor's view counts for the contact at
/// once. At most `page_views_per_minute` (600 by default) views a minute from one address are
/// recorded.
#[utoipa::path(get, path = "/t/pv.gif", tag = "public", operation_id = "page_view_pixel",
    params(PageViewQuery),
    responses((status = 200, description = "Always the 1×1 image, whether or not the view was \
        recorded (a missing `url`, the rate limit or a busy database record nothing), so that \
        no page shows a broken picture; sets the visitor cookie when it was missing",
        content(("image/gif")))))]
pub async fn pixel(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Query(fields): Query<BTreeMap<String, String>>,
) -> Response {
    let vid = handle(&state, ip, &headers, fields)
        .await
        .unwrap_or_else(|e| {
            tracing::debug!(status = %e.status, reason = %e.message, "page view not recorded");
            None
        });
    // Always the image: a broken tracking pixel must never show on a customer's page.
    with_cookie(gif(), vid)
}

/// Record a page view from a script
///
/// For `navigator.sendBeacon` or `fetch`; otherwise as the pixel.
#[utoipa::path(post, path = "/t/pv", tag = "public", operation_id = "page_view_beacon",
    request_body = PageViewFields,
    responses(
        (status = 204, description = "Recorded; sets the visitor cookie when it was missing"),
        (status = 400, description = "The body is not a JSON object, or has no usable `url` \
            (nor a `Referer`)", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", content_type = "text/plain",
            body = String),
        (status = 429, description = "Over `page_views_per_minute` (600 by default) page views \
            from this address in the last minute",
            body = ErrorBody),
        (status = 503, description = "The database is busy; nothing was stored, send it again",
            body = ErrorBody)))]
pub async fn beacon(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields: BTreeMap<String, String> = match serde_json::from_slice::<Map<String, Value>>(&body)
    {
        Ok(obj) => obj
            .into_iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k, s)),
                _ => None,
            })
            .collect(),
        Err(e) => {
            return ApiError::bad_request(format!("the body is not a JSON object: {e}"))
                .into_response();
        }
    };
    match handle(&state, ip, &headers, fields).await {
        Ok(vid) => with_cookie(StatusCode::NO_CONTENT.into_response(), vid),
        Err(e) => e.into_response(),
    }
}

fn gif() -> Response {
    (
        [(CONTENT_TYPE, "image/gif"), (CACHE_CONTROL, "no-store")],
        PIXEL.as_slice(),
    )
        .into_response()
}

/// Appends an email engagement event for a verified token; the event id makes repeats (image
/// reloads, double clicks) count once per message (and link).
async fn engagement(state: &AppState, t: &Tracked, event_type: EventType, client_id: String) {
    // A contact merged since the email was sent counts as the one it was merged into.
    let contact = match state.store.live_contacts(&[t.contact]).await {
        Ok(found) => match found.get(&t.contact) {
            Some(live) => *live,
            None => return,
        },
        Err(e) => {
            tracing::error!(error = %e, "contact lookup failed");
            return;
        }
    };
    let mut props = Map::new();
    props.insert("message".into(), json!(t.message));
    if let Some(u) = &t.url {
        props.insert("url".into(), json!(u));
    }
    let event = NewEvent {
        client_id,
        event_type,
        contact_id: Some(contact),
        visitor_id: None,
        at: chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis())
            .unwrap_or_else(Utc::now),
        properties: props,
    };
    if let Err(e) = state.store.append_events(&[event]).await {
        tracing::error!(error = %e, "engagement event not stored");
    }
}

/// The open pixel of Orchard's emails
///
/// Records `email_opened` once per message, for a token Orchard signed.
#[utoipa::path(get, path = "/t/o/{token}", tag = "public", operation_id = "email_opened_pixel",
    params(("token" = String, Path, description = "The signed token of the email, with or \
        without `.gif`")),
    responses((status = 200, description = "Always the 1×1 image; a forged or altered token \
        records nothing", content(("image/gif")))))]
pub async fn open(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let token = token.strip_suffix(".gif").unwrap_or(&token);
    match verify(&state.config.tracking_key.0, token) {
        Some(t) if t.url.is_none() => {
            let id = format!("open-{}", t.message);
            engagement(&state, &t, EventType::EmailOpened, id).await;
        }
        _ => tracing::debug!("open pixel with an invalid token"),
    }
    // Always the image, valid token or not: a mail client must never show a broken picture.
    gif()
}

/// A tracked link of Orchard's emails
///
/// Records `email_clicked` once per message and link, then sends the reader on to the
/// address the signed token names.
#[utoipa::path(get, path = "/t/c/{token}", tag = "public", operation_id = "email_link",
    params(("token" = String, Path, description = "The signed token of the link")),
    responses(
        (status = 302, description = "On to the link's address (`Location`)"),
        (status = 404, description = "Not a link Orchard signed: nothing recorded, no \
            redirect", content_type = "text/plain", body = String)))]
pub async fn click(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let Some(t) = verify(&state.config.tracking_key.0, &token) else {
        return (StatusCode::NOT_FOUND, "This link is not valid.").into_response();
    };
    let Some(url) = t.url.clone() else {
        return (StatusCode::NOT_FOUND, "This link is not valid.").into_response();
    };
    let link = hex::encode(&sha2::Sha256::digest(url.as_bytes())[..8]);
    engagement(
        &state,
        &t,
        EventType::EmailClicked,
        format!("click-{}-{link}", t.message),
    )
    .await;
    (StatusCode::FOUND, [(LOCATION, url)]).into_response()
}
