//! The JSON API under `/api/v1`, bearer-token authenticated, described by the OpenAPI document
//! served at `/api/openapi.json`.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::QueryRejection;
use axum::response::Json;
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::AppState;
use crate::error::{ApiError, ErrorBody, ErrorDetail};

pub mod catalog;
pub mod contacts;
pub mod events;
pub mod scoring;
pub mod segments;

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Orchard API",
        description = "Orchard's HTTP API. Authenticate with `Authorization: Bearer <token>` \
                       (create a token with `orchard token create --name NAME --role ROLE`). \
                       Errors share one body: `{\"error\": {\"code\", \"message\", \"details\"?}}`."
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
        catalog::list_lead_magnets,
        catalog::create_lead_magnet,
        catalog::update_lead_magnet,
        catalog::delete_lead_magnet,
        catalog::list_forms,
        catalog::create_form,
        catalog::update_form,
        catalog::delete_form
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
        segments::MemberOut,
        catalog::LeadMagnetIn,
        catalog::LeadMagnetOut,
        catalog::FormIn,
        catalog::FormOut,
        events::EventBatch,
        events::EventIn,
        events::IngestResult,
        events::RejectedEvent,
        ErrorBody,
        ErrorDetail
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "contacts", description = "Leads, prospects and customers' people"),
        (name = "events", description = "The tracking event log"),
        (name = "capture", description = "Lead magnets and the forms that offer them"),
        (name = "scoring", description = "Lead scores, their rules and explanations"),
        (name = "segments", description = "Saved filters whose members stay current")
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
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// Turns axum's query-string rejection into the API's error body, naming what was wrong.
pub(crate) fn bad_query(e: QueryRejection) -> ApiError {
    ApiError::bad_request(format!("invalid query string: {}", e.body_text()))
}
