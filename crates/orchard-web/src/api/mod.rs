//! The JSON API under `/api/v1`, bearer-token authenticated, described by the OpenAPI document
//! served at `/api/openapi.json`.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::QueryRejection;
use axum::response::Json;
use axum::routing::get;
use orchard_core::capture::FunnelStage;
use orchard_core::stage::{LifecycleStage, Temperature};
use orchard_core::submission::KNOWN_FIELDS;
use utoipa::openapi::schema::{Array, ArrayBuilder, Object, ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::AppState;
use crate::error::{ApiError, ErrorBody, ErrorDetail};

pub mod catalog;
pub mod contacts;
pub mod events;
pub mod scoring;
pub mod segments;

/// The schema of a text the API reads as one of a few names, whatever their case: the names
/// as the API writes them (`schema_with` of the fields that take one).
fn one_of(names: impl IntoIterator<Item = &'static str>, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(names))
        .description(Some(description))
        .build()
}

pub(crate) fn lifecycle_stage_schema() -> Object {
    one_of(
        LifecycleStage::ALL.map(LifecycleStage::as_str),
        "A lifecycle stage (read in any case).",
    )
}

pub(crate) fn temperature_schema() -> Object {
    one_of(
        Temperature::ALL.map(Temperature::as_str),
        "Hot, warm or cold, from the score bands (read in any case).",
    )
}

pub(crate) fn funnel_stage_schema() -> Object {
    one_of(
        FunnelStage::ALL.map(FunnelStage::as_str),
        "Where in the buying journey the offer sits (read in any case; tofu, mofu and bofu too).",
    )
}

/// A form's fields besides email: each one of the names `orchard_core::submission` knows,
/// exactly as written.
pub(crate) fn form_fields_schema() -> Array {
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(KNOWN_FIELDS)),
        )
        .description(Some(
            "The fields the form asks for besides email, in order.",
        ))
        .build()
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Orchard API",
        description = "Orchard's HTTP API. Authenticate with `Authorization: Bearer <token>` \
                       (create a token with `orchard token create --name NAME --role ROLE`). \
                       Errors share one body: `{\"error\": {\"code\", \"message\", \"details\"?}}`. \
                       The operations tagged `public` take no token."
    ),
    paths(
        contacts::list_contacts,
        contacts::get_contact,
        contacts::merge_contact,
        contacts::set_stage,
        scoring::contact_score,
        scoring::live_rule_set,
        scoring::publish_rule_set,
        scoring::backtest,
        segments::create,
        segments::list,
        segments::get,
        segments::delete,
        segments::preview,
        segments::export,
        events::ingest,
        events::list_types,
        catalog::list_lead_magnets,
        catalog::create_lead_magnet,
        catalog::update_lead_magnet,
        catalog::delete_lead_magnet,
        catalog::list_forms,
        catalog::create_form,
        catalog::update_form,
        catalog::delete_form,
        crate::public::forms::page,
        crate::public::forms::submit,
        crate::public::tracking::pixel,
        crate::public::tracking::beacon,
        crate::public::tracking::open,
        crate::public::tracking::click
    ),
    components(schemas(
        contacts::ContactOut,
        contacts::OwnerOut,
        contacts::ContactPage,
        contacts::MergeIn,
        contacts::StageIn,
        scoring::Explanation,
        scoring::RuleSetRef,
        scoring::ScoreAt,
        scoring::ChangeOut,
        scoring::RuleSetOut,
        scoring::BacktestIn,
        scoring::BacktestOut,
        segments::SegmentIn,
        segments::SegmentOut,
        segments::PreviewIn,
        segments::PreviewOut,
        segments::EstimateOut,
        segments::MemberOut,
        catalog::LeadMagnetIn,
        catalog::LeadMagnetOut,
        catalog::FormIn,
        catalog::FormOut,
        events::EventBatch,
        events::EventIn,
        events::IngestResult,
        events::RejectedEvent,
        events::EventTypeOut,
        events::TypeWarning,
        crate::public::forms::Accepted,
        crate::public::forms::SubmissionFields,
        crate::public::tracking::PageViewFields,
        ErrorBody,
        ErrorDetail
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "contacts", description = "Leads, prospects and customers' people"),
        (name = "events", description = "The tracking event log"),
        (name = "capture", description = "Lead magnets and the forms that offer them"),
        (name = "scoring", description = "Lead scores, their rules and explanations"),
        (name = "segments", description = "Saved filters whose members stay current"),
        (name = "public", description = "What websites, browsers and mail clients call, with no \
            token: hosted forms and the page-view pixel and beacon (both limited per address), \
            and the open and click tracking of Orchard's emails (signed tokens)")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/openapi.json", get(openapi))
        .route("/api/v1/contacts", get(contacts::list_contacts))
        .route("/api/v1/contacts/{id}", get(contacts::get_contact))
        .route("/api/v1/contacts/{id}/score", get(scoring::contact_score))
        .route(
            "/api/v1/contacts/{id}/stage",
            axum::routing::post(contacts::set_stage),
        )
        .route(
            "/api/v1/segments",
            get(segments::list).post(segments::create),
        )
        .route(
            "/api/v1/segments/preview",
            axum::routing::post(segments::preview),
        )
        .route(
            "/api/v1/segments/{id}",
            get(segments::get).delete(segments::delete),
        )
        .route("/api/v1/segments/{id}/members.csv", get(segments::export))
        .route(
            "/api/v1/scoring/backtest",
            axum::routing::post(scoring::backtest),
        )
        .route(
            "/api/v1/scoring/rule-set",
            get(scoring::live_rule_set).put(scoring::publish_rule_set),
        )
        .route(
            "/api/v1/contacts/{id}/merge",
            axum::routing::post(contacts::merge_contact),
        )
        .route(
            "/api/v1/lead-magnets",
            get(catalog::list_lead_magnets).post(catalog::create_lead_magnet),
        )
        .route(
            "/api/v1/lead-magnets/{id}",
            axum::routing::put(catalog::update_lead_magnet).delete(catalog::delete_lead_magnet),
        )
        .route(
            "/api/v1/forms",
            get(catalog::list_forms).post(catalog::create_form),
        )
        .route(
            "/api/v1/forms/{id}",
            axum::routing::put(catalog::update_form).delete(catalog::delete_form),
        )
        .route(
            "/api/v1/events",
            axum::routing::post(events::ingest).layer(DefaultBodyLimit::max(events::MAX_BODY)),
        )
        .route("/api/v1/event-types", get(events::list_types))
        // Any other path under /api is no endpoint: a JSON 404, not the web pages' one.
        .route("/api/{*rest}", axum::routing::any(no_endpoint))
        .layer(axum::middleware::map_response(errors_as_json))
}

async fn no_endpoint(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    let path: String = uri.path().chars().take(200).collect();
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "not_found",
        format!("no endpoint {method} {path}; the API is described at /api/openapi.json"),
    )
}

/// axum answers what never reaches a handler (a body over the limit, a wrong method, an
/// unsupported content type) in plain text; callers of the API get every error in its one
/// body, whatever produced it.
async fn errors_as_json(response: axum::response::Response) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let status = response.status();
    // Plain text, or nothing at all (a wrong method).
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|t| t.as_bytes().starts_with(b"text/plain"));
    if !status.is_client_error() || !plain {
        return response;
    }
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::NOT_FOUND => "not_found",
        _ => "bad_request",
    };
    let allow = response.headers().get(header::ALLOW).cloned();
    // axum's own texts are one short line; a longer body is not read at all (the status's
    // reason stands in for it).
    let text = axum::body::to_bytes(response.into_body(), 4 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!(
            "the body is over {} MiB",
            crate::MAX_BODY_BYTES / (1024 * 1024)
        )
    } else if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("bad request")
            .to_owned()
    } else {
        text
    };
    let mut json = ApiError::new(status, code, message).into_response();
    if let Some(allow) = allow {
        json.headers_mut().insert(header::ALLOW, allow);
    }
    json
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// The `details` of a mistake in rule-language text (a segment filter, a rule's `on` or
/// `condition`): the field it is in, and where the parser stopped and why.
pub(crate) fn text_mistake(
    field: &str,
    p: &orchard_core::rules::ParseError,
) -> serde_json::Map<String, serde_json::Value> {
    let mut d = serde_json::Map::new();
    d.insert("field".into(), field.into());
    d.insert("column".into(), p.column.into());
    d.insert("expected".into(), p.expected.as_str().into());
    d.insert("found".into(), p.found.as_str().into());
    d
}

/// Turns axum's query-string rejection into the API's error body, naming what was wrong.
pub(crate) fn bad_query(e: QueryRejection) -> ApiError {
    ApiError::bad_request(format!("invalid query string: {}", e.body_text()))
}
