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
use orchard_core::tracking::{Tracked, verify};
use serde_json::{Map, Value, json};
use sha2::Digest;

use super::{ClientIp, VISITOR_COOKIE};
use crate::AppState;
use crate::auth::cookie;

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

fn valid_vid(v: &str) -> bool {
    (8..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Records one page view; `None` when the input is not a page view worth storing.
pub(crate) async fn record(
    state: &AppState,
    vid: &str,
    fields: &BTreeMap<String, String>,
) -> Result<(), StatusCode> {
    let url = fields
        .get("url")
        .map(|u| u.trim())
        .filter(|u| !u.is_empty() && u.len() <= 2_000);
    let Some(url) = url else {
        return Err(StatusCode::BAD_REQUEST);
    };
    let mut props = Map::new();
    props.insert("url".into(), json!(url));
    for k in PROPS.iter().skip(1) {
        if let Some(v) = fields
            .get(*k)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty() && v.len() <= 500)
        {
            props.insert((*k).into(), json!(v));
        }
    }
    let contact_id = state.store.contact_for_visitor(vid).await.map_err(|e| {
        tracing::error!(error = %e, "visitor lookup failed");
        StatusCode::INTERNAL_SERVER_ERROR
    })?;
    let event = NewEvent {
        client_id: format!("pv-{}", uuid::Uuid::now_v7()),
        event_type: EventType::PageViewed,
        contact_id,
        visitor_id: Some(vid.to_owned()),
        at: chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis())
            .unwrap_or_else(Utc::now),
        properties: props,
    };
    state.store.append_events(&[event]).await.map_err(|e| {
        tracing::error!(error = %e, "page view not stored");
        StatusCode::INTERNAL_SERVER_ERROR
    })?;
    Ok(())
}

fn visitor(headers: &HeaderMap, given: Option<&String>) -> (String, bool) {
    if let Some(v) = given.filter(|v| valid_vid(v)) {
        return (v.clone(), false);
    }
    match cookie(headers, VISITOR_COOKIE).filter(|v| valid_vid(v)) {
        Some(v) => (v.to_owned(), false),
        None => (uuid::Uuid::new_v4().to_string(), true),
    }
}

async fn handle(
    state: &AppState,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
    mut fields: BTreeMap<String, String>,
) -> (StatusCode, Option<String>) {
    if !state.beacon_limiter.allow(ip, "pv", Instant::now()) {
        return (StatusCode::TOO_MANY_REQUESTS, None);
    }
    let (vid, new) = visitor(headers, fields.get("visitor_id"));
    if !fields.contains_key("url")
        && let Some(r) = headers.get(REFERER).and_then(|v| v.to_str().ok())
    {
        fields.insert("url".into(), r.to_owned());
    }
    match record(state, &vid, &fields).await {
        Ok(()) => (StatusCode::OK, new.then_some(vid)),
        Err(s) => (s, None),
    }
}

fn with_cookie(resp: Response, vid: Option<String>) -> Response {
    let mut resp = resp;
    if let Some(v) = vid
        && let Ok(h) =
            format!("{VISITOR_COOKIE}={v}; Path=/; Max-Age=63072000; SameSite=Lax; HttpOnly")
                .parse()
    {
        resp.headers_mut().append(SET_COOKIE, h);
    }
    resp
}

pub async fn pixel(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Query(fields): Query<BTreeMap<String, String>>,
) -> Response {
    let (status, vid) = handle(&state, ip, &headers, fields).await;
    if status != StatusCode::OK {
        tracing::debug!(%status, "page view not recorded");
    }
    // Always the image: a broken tracking pixel must never show on a customer's page.
    with_cookie(gif(), vid)
}

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
            return crate::error::ApiError::bad_request(format!(
                "the body is not a JSON object: {e}"
            ))
            .into_response();
        }
    };
    let (status, vid) = handle(&state, ip, &headers, fields).await;
    let resp = match status {
        StatusCode::OK => StatusCode::NO_CONTENT.into_response(),
        StatusCode::BAD_REQUEST => {
            crate::error::ApiError::bad_request("url: required, at most 2000 characters")
                .into_response()
        }
        other => other.into_response(),
    };
    with_cookie(resp, vid)
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
