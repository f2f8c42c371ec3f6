//! `POST /api/v1/events`: batch ingestion of tracking events. Each event is validated on its
//! own; the valid ones are stored (once per client id, however often the batch is re-sent) and
//! the invalid ones are named with their position and reason. An event that names an unknown
//! email creates the contact. The answer comes after the batch's transaction has committed.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::Json;
use chrono::{DateTime, Utc};
use orchard_core::event_input::{ParsedEvent, parse_event};
use orchard_store::{StoreResult, ingest};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::ApiCaller;
use crate::error::{ApiError, ErrorBody};

/// Most events one request may carry.
pub const MAX_BATCH: usize = 10_000;
/// Largest request body this endpoint reads.
pub const MAX_BODY: usize = 32 * 1024 * 1024;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    /// 1 to 10 000 events.
    #[schema(value_type = Vec<EventIn>)]
    pub events: Vec<Value>,
}

/// One tracking event. Give `email` or `contact_id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    /// The client's id for this event: re-sending it stores nothing new.
    pub id: String,
    /// e.g. page_viewed, form_submitted, email_opened, purchase.
    #[serde(rename = "type")]
    pub event_type: String,
    pub email: Option<String>,
    pub contact_id: Option<i64>,
    /// An anonymous visitor's id, for events before identification: up to 128 printable
    /// characters, but a form submission ties only ids of 8 to 64 letters, digits and hyphens
    /// (as the `orchard_vid` cookie holds) to its contact.
    pub visitor_id: Option<String>,
    /// RFC 3339; the time of receipt when absent.
    pub at: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RejectedEvent {
    /// Position in the submitted array, from 0.
    pub index: usize,
    pub id: Option<String>,
    pub error: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IngestResult {
    /// Events stored by this request.
    pub stored: usize,
    /// Events whose id was already stored: acknowledged, not stored again.
    pub duplicates: usize,
    pub rejected: Vec<RejectedEvent>,
}

fn parse_one(index: usize, raw: Value, now: DateTime<Utc>) -> Result<ParsedEvent, RejectedEvent> {
    let id = raw.get("id").and_then(Value::as_str).map(str::to_owned);
    parse_event(raw, now).map_err(|error| RejectedEvent { index, id, error })
}

/// Send a batch of tracking events.
#[utoipa::path(
    post,
    path = "/api/v1/events",
    tag = "events",
    request_body = EventBatch,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Batch processed: stored, duplicate and rejected events counted", body = IngestResult),
        (status = 400, description = "The body is not a batch (malformed JSON, no events, over 10 000)", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The token's role may not write", body = ErrorBody),
        (status = 413, description = "Body over 32 MiB", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(caller = %caller.token_name))]
pub async fn ingest(
    State(state): State<AppState>,
    caller: ApiCaller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestResult>, ApiError> {
    if !caller.role.may_write() {
        return Err(ApiError::forbidden("this token's role is read-only"));
    }
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the body is over 32 MiB: send smaller batches",
            )
        } else {
            ApiError::bad_request(e.body_text())
        }
    })?;
    let batch: EventBatch = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body is not an event batch: {e}")))?;
    if batch.events.is_empty() || batch.events.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!(
            "events: send 1 to {MAX_BATCH} events (got {})",
            batch.events.len()
        )));
    }
    let now = Utc::now();
    let mut rejected = Vec::new();
    let mut parsed = Vec::with_capacity(batch.events.len());
    for (i, raw) in batch.events.into_iter().enumerate() {
        match parse_one(i, raw, now) {
            Ok(p) => parsed.push((i, p)),
            Err(r) => rejected.push(r),
        }
    }
    let ingested = ingest::ingest(state.store.as_ref(), parsed).await?;
    rejected.extend(
        ingested
            .unknown_contacts
            .into_iter()
            .map(|(index, id, c)| RejectedEvent {
                index,
                id: Some(id),
                error: format!("contact_id: no contact {c}"),
            }),
    );
    rejected.sort_by_key(|r| r.index);
    let outcome = ingested.outcome;
    state.metrics.events_ingested(outcome.stored.len() as u64);
    Ok(Json(IngestResult {
        stored: outcome.stored.len(),
        duplicates: outcome.duplicates.len(),
        rejected,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use orchard_core::event_input::Subject;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_well_formed_event_parses() {
        let p = parse_one(
            0,
            json!({"id": "e1", "type": "page_viewed", "email": "A@X.com", "at": "2026-11-20T08:00:00+01:00", "properties": {"url": "/pricing"}}),
            now(),
        )
        .map_err(|r| r.error)
        .unwrap();
        assert!(matches!(p.subject, Subject::Email(ref e) if e.as_str() == "a@x.com"));
        assert_eq!(p.event.at.to_rfc3339(), "2026-11-20T07:00:00+00:00");
    }

    #[test]
    fn each_bad_event_names_its_problem() {
        let cases = [
            (json!({"id": "e", "type": "email_opened"}), "required"),
            (
                json!({"id": "e", "type": "email_opened", "email": "nope"}),
                "email",
            ),
            (
                json!({"id": "e", "type": "email_opened", "email": "a@x.com", "colour": 1}),
                "unknown field",
            ),
            (
                json!({"id": "e", "type": "email_opened", "email": "a@x.com", "at": "2026-02-30T00:00:00Z"}),
                "at:",
            ),
            (
                json!({"id": "e", "type": "email_opened", "email": "a@x.com", "at": "2027-01-01T00:00:00Z"}),
                "future",
            ),
            (
                json!({"id": "e", "type": "page_viewed", "email": "a@x.com"}),
                "url",
            ),
            (
                json!({"id": 5, "type": "email_opened", "email": "a@x.com"}),
                "invalid type",
            ),
            (
                json!({"id": "e", "type": "email_opened", "email": "a@x.com", "contact_id": 1}),
                "not both",
            ),
            (json!("not an object"), "invalid type"),
        ];
        for (raw, want) in cases {
            let err = parse_one(3, raw.clone(), now())
                .err()
                .unwrap_or_else(|| panic!("{raw} accepted"));
            assert_eq!(err.index, 3);
            assert!(err.error.contains(want), "{raw}: {}", err.error);
        }
    }
}

/// An event type filters and rules may name.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeOut {
    #[serde(rename = "type")]
    pub event_type: String,
    /// `spec` (the SPEC's types), `orchard` (logged by Orchard itself: stage and segment
    /// changes, merges) or `custom` (any other, as integrations send them).
    pub kind: &'static str,
    /// RFC 3339: when Orchard first stored an event of the type; null if it never has.
    pub first_recorded_at: Option<String>,
    /// The property names its events have carried (those a filter can name), in order.
    pub properties: Vec<String>,
}

/// A type a filter or rule names that no event has had, with the nearest one that has, when
/// the name looks like a slip of the keyboard: the filter is valid (any well-formed name is a
/// type), but counts nothing until such an event arrives.
#[derive(Debug, Serialize, ToSchema)]
pub struct TypeWarning {
    /// The event type no event has had, or whose property no event of it has had; null for a
    /// custom attribute.
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// For a property of the type that no event of it has had.
    pub property: Option<String>,
    /// For a custom attribute (`custom.NAME`) no contact has had: its name.
    pub attribute: Option<String>,
    /// The type, property or attribute name probably meant, if one is close.
    pub suggestion: Option<String>,
    pub message: String,
}

/// What filters and rules are checked against (`warnings`): the types the log holds an event
/// of, with the property names their events carried, and the custom attributes contacts have
/// had.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    pub types: Vec<orchard_store::RecordedType>,
    pub attributes: Vec<String>,
}

/// What the log and the contacts hold, for `warnings`.
pub async fn recorded(store: &dyn orchard_store::Store) -> StoreResult<Recorded> {
    Ok(Recorded {
        types: store.event_types().await?,
        attributes: store.custom_attribute_names().await?,
    })
}

/// The warnings of an expression (a segment's filter).
pub fn expr_warnings(expr: &orchard_core::rules::Expr, recorded: &Recorded) -> Vec<TypeWarning> {
    type_warnings(expr.patterns(), expr.custom_attributes(), recorded)
}

/// The warnings of a rule set.
pub fn rule_set_warnings_of(
    set: &orchard_core::scoring::RuleSet,
    recorded: &Recorded,
) -> Vec<TypeWarning> {
    type_warnings(set.patterns(), set.custom_attributes(), recorded)
}

/// The types of `patterns` that no event has had (`orchard_core::rules::unrecorded_types`),
/// the properties they test that no event of their type has had (`unrecorded_properties`),
/// and the custom `attributes` read that no contact has had (`unrecorded_attributes`).
pub fn type_warnings<'a>(
    patterns: impl IntoIterator<Item = &'a orchard_core::rules::EventPattern>,
    attributes: impl IntoIterator<Item = &'a str>,
    recorded: &Recorded,
) -> Vec<TypeWarning> {
    let patterns: Vec<&orchard_core::rules::EventPattern> = patterns.into_iter().collect();
    let names: Vec<String> = recorded
        .types
        .iter()
        .map(|t| t.event_type.clone())
        .collect();
    let warning = |event_type, property, attribute, suggestion, message| TypeWarning {
        event_type,
        property,
        attribute,
        suggestion,
        message,
    };
    let types = orchard_core::rules::unrecorded_types(patterns.iter().copied(), &names)
        .into_iter()
        .map(|u| {
            warning(
                Some(u.event_type.clone()),
                None,
                None,
                u.suggestion.clone(),
                u.to_string(),
            )
        });
    // A type with more names than are listed is not checked.
    let properties = orchard_core::rules::unrecorded_properties(patterns.iter().copied(), |t| {
        recorded
            .types
            .iter()
            .find(|r| r.event_type == t && r.all_properties)
            .map(|r| r.properties.as_slice())
    })
    .into_iter()
    .map(|u| {
        warning(
            Some(u.event_type.clone()),
            Some(u.property.clone()),
            None,
            u.suggestion.clone(),
            u.to_string(),
        )
    });
    let custom = orchard_core::rules::unrecorded_attributes(attributes, &recorded.attributes)
        .into_iter()
        .map(|u| {
            warning(
                None,
                None,
                Some(u.attribute.clone()),
                u.suggestion.clone(),
                u.to_string(),
            )
        });
    types.chain(properties).chain(custom).collect()
}

/// The event types there are to filter on: the SPEC's and Orchard's own, recorded or not, and
/// every other type the log holds an event of.
pub async fn event_type_list(
    store: &dyn orchard_store::Store,
) -> Result<Vec<EventTypeOut>, ApiError> {
    Ok(event_types_out(&store.event_types().await?))
}

/// `event_type_list` of the types the log holds (`recorded`).
pub fn event_types_out(recorded: &[orchard_store::RecordedType]) -> Vec<EventTypeOut> {
    let first = |name: &str| {
        recorded
            .iter()
            .find(|t| t.event_type == name)
            .map(|t| t.first_recorded_at.to_rfc3339())
    };
    let properties = |name: &str| {
        recorded
            .iter()
            .find(|t| t.event_type == name)
            .map(|t| t.properties.clone())
            .unwrap_or_default()
    };
    let mut out: Vec<EventTypeOut> = orchard_core::event::EventType::known()
        .map(|t| (t, "spec"))
        .chain(orchard_core::event::RECORDED_BY_ORCHARD.map(|t| (t, "orchard")))
        .map(|(t, kind)| EventTypeOut {
            event_type: t.to_owned(),
            kind,
            first_recorded_at: first(t),
            properties: properties(t),
        })
        .collect();
    for t in recorded {
        if !out.iter().any(|o| o.event_type == t.event_type) {
            out.push(EventTypeOut {
                event_type: t.event_type.clone(),
                kind: "custom",
                first_recorded_at: Some(t.first_recorded_at.to_rfc3339()),
                properties: t.properties.clone(),
            });
        }
    }
    out
}

/// The event types to filter on, for the segment builder and rule editors: the SPEC's types
/// and Orchard's own (with when each was first recorded, if ever) and every custom type the
/// log holds.
#[utoipa::path(get, path = "/api/v1/event-types", tag = "events", security(("bearer" = [])),
    responses((status = 200, body = Vec<EventTypeOut>),
               (status = 401, description = "Missing or invalid token", body = ErrorBody)))]
pub async fn list_types(
    State(state): State<AppState>,
    _caller: ApiCaller,
) -> Result<Json<Vec<EventTypeOut>>, ApiError> {
    Ok(Json(event_type_list(state.store.as_ref()).await?))
}
