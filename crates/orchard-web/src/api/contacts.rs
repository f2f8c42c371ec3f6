//! `GET /api/v1/contacts` (filtered, paginated; `?email=` finds one),
//! `GET /api/v1/contacts/{id}` and `POST /api/v1/contacts/{id}/merge`.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::Json;
use orchard_core::contact::Contact;
use orchard_core::stage::{Bands, LifecycleStage, Temperature};
use orchard_core::{ContactId, Email, UserId};
use orchard_store::{ContactQuery, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::bad_query;
use crate::AppState;
use crate::auth::ApiCaller;
use crate::error::{ApiError, ErrorBody};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OwnerOut {
    pub id: i64,
    pub name: String,
    pub email: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactOut {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub score: i64,
    #[schema(schema_with = super::lifecycle_stage_schema)]
    pub stage: String,
    #[schema(schema_with = super::temperature_schema)]
    pub temperature: String,
    pub owner: Option<OwnerOut>,
    pub account_id: Option<i64>,
    pub source: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    pub last_activity_at: Option<String>,
    /// Demographic, psychographic, geographic and custom attributes.
    #[schema(value_type = Object)]
    pub attributes: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactPage {
    pub items: Vec<ContactOut>,
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
}

/// Filters for the contacts list. Unknown parameters are refused, so a typo never silently
/// returns everything.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ContactParams {
    /// Exact email (normalised before matching).
    pub email: Option<String>,
    /// Substring of email, name or company, case-insensitive.
    pub q: Option<String>,
    #[param(schema_with = super::lifecycle_stage_schema)]
    pub stage: Option<String>,
    #[param(schema_with = super::temperature_schema)]
    pub temperature: Option<String>,
    pub owner_id: Option<i64>,
    pub account_id: Option<i64>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
    pub source: Option<String>,
    /// 1-based, default 1.
    pub page: Option<i64>,
    /// 1-500, default 50.
    pub per_page: Option<i64>,
}

/// Turns loose parameters (shared by the API and the web pages) into a typed query, or says
/// which one is wrong.
pub fn parse_contact_query(p: &ContactParams, bands: &Bands) -> Result<ContactQuery, String> {
    let mut q = ContactQuery {
        page: p.page.unwrap_or(1),
        per_page: p.per_page.unwrap_or(50),
        ..Default::default()
    };
    if q.page < 1 {
        return Err("page: must be 1 or more".into());
    }
    if !(1..=ContactQuery::MAX_PER_PAGE).contains(&q.per_page) {
        return Err(format!(
            "per_page: must be between 1 and {}",
            ContactQuery::MAX_PER_PAGE
        ));
    }
    let nonempty = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    if let Some(e) = nonempty(&p.email) {
        q.email = Some(Email::parse(&e).map_err(|err| format!("email: {err}"))?);
    }
    q.search = nonempty(&p.q);
    if let Some(s) = nonempty(&p.stage) {
        q.stage = Some(LifecycleStage::parse(&s).ok_or_else(|| {
            format!("stage: '{s}' is not a lifecycle stage (subscriber, IQL, MQL, SQL, opportunity, customer, trial, disqualified, churned)")
        })?);
    }
    if let Some(t) = nonempty(&p.temperature) {
        let t = Temperature::parse(&t)
            .ok_or_else(|| format!("temperature: '{t}' is not hot, warm or cold"))?;
        (q.min_score, q.max_score) = match t {
            Temperature::Hot => (Some(bands.hot_from), None),
            Temperature::Warm => (Some(bands.warm_from), Some(bands.hot_from)),
            Temperature::Cold => (None, Some(bands.warm_from)),
        };
    }
    q.owner_id = p.owner_id.map(UserId::new);
    q.account_id = p.account_id.map(orchard_core::AccountId::new);
    q.country = nonempty(&p.country);
    q.source = nonempty(&p.source);
    Ok(q)
}

pub(crate) async fn contact_out(
    state: &AppState,
    c: Contact,
    owners: &mut std::collections::HashMap<UserId, Option<OwnerOut>>,
) -> Result<ContactOut, ApiError> {
    let owner = match c.owner_id {
        None => None,
        Some(id) => match owners.get(&id) {
            Some(known) => known.clone(),
            None => {
                let found = match state.store.user(id).await {
                    Ok(u) => Some(OwnerOut {
                        id: u.id.get(),
                        name: u.name,
                        email: u.email.to_string(),
                    }),
                    Err(StoreError::NotFound) => None,
                    Err(e) => return Err(e.into()),
                };
                owners.insert(id, found.clone());
                found
            }
        },
    };
    Ok(ContactOut {
        id: c.id.get(),
        name: c.display_name(),
        email: c.email.to_string(),
        score: c.score,
        stage: c.stage.as_str().to_owned(),
        temperature: state.config.bands.temperature(c.score).as_str().to_owned(),
        owner,
        account_id: c.account_id.map(|a| a.get()),
        source: c.source,
        created_at: c.created_at.to_rfc3339(),
        last_activity_at: c.last_activity_at.map(|t| t.to_rfc3339()),
        attributes: serde_json::to_value(&c.details).unwrap_or(Value::Null),
    })
}

/// List contacts, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/contacts",
    tag = "contacts",
    params(ContactParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of contacts", body = ContactPage),
        (status = 400, description = "A parameter is invalid", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(caller = %caller.token_name))]
pub async fn list_contacts(
    State(state): State<AppState>,
    caller: ApiCaller,
    params: Result<Query<ContactParams>, QueryRejection>,
) -> Result<Json<ContactPage>, ApiError> {
    let Query(params) = params.map_err(bad_query)?;
    let query = parse_contact_query(&params, &state.config.bands).map_err(ApiError::bad_request)?;
    let page = state.store.list_contacts(&query, None).await?;
    let mut owners = Default::default();
    let mut items = Vec::with_capacity(page.items.len());
    for c in page.items {
        items.push(contact_out(&state, c, &mut owners).await?);
    }
    Ok(Json(ContactPage {
        items,
        page: page.page,
        per_page: page.per_page,
        total: page.total,
    }))
}

/// One contact.
#[utoipa::path(
    get,
    path = "/api/v1/contacts/{id}",
    tag = "contacts",
    params(("id" = i64, Path, description = "Contact id", example = 1)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The contact", body = ContactOut),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such contact", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(caller = %caller.token_name))]
pub async fn get_contact(
    State(state): State<AppState>,
    caller: ApiCaller,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<ContactOut>, ApiError> {
    let Path(id) = id.map_err(|_| ApiError::bad_request("id: must be a whole number"))?;
    let contact = match state.store.contact(ContactId::new(id)).await {
        Err(StoreError::NotFound) => return Err(ApiError::not_found("contact")),
        other => other?,
    };
    Ok(Json(
        contact_out(&state, contact, &mut Default::default()).await?,
    ))
}

/// Which contact to fold into the one in the path: by id or by email.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeIn {
    /// The contact to fold in, by id (or give `merge_email`).
    #[schema(example = 2)]
    pub merge_id: Option<i64>,
    /// The contact to fold in, by email (or give `merge_id`).
    pub merge_email: Option<String>,
}

/// Finds the contact a merge request names, or says what is wrong with the request.
pub(crate) async fn merge_target(state: &AppState, m: &MergeIn) -> Result<ContactId, ApiError> {
    let found = match (m.merge_id, m.merge_email.as_deref().map(str::trim)) {
        (Some(id), None) => state.store.contact(ContactId::new(id)).await,
        (None, Some(e)) => {
            let e = Email::parse(e)
                .map_err(|err| ApiError::bad_request(format!("merge_email: {err}")))?;
            state.store.contact_by_email(&e).await
        }
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of merge_id and merge_email",
            ));
        }
    };
    match found {
        Ok(c) => Ok(c.id),
        Err(StoreError::NotFound) => Err(ApiError::not_found("contact to merge")),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn merge_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found("contact"),
        StoreError::Invalid(m) => ApiError::bad_request(m),
        StoreError::Conflict(m) => ApiError::new(axum::http::StatusCode::CONFLICT, "conflict", m),
        other => other.into(),
    }
}

/// Merge another contact (the same person under another email) into this one. This contact
/// stays; the other's attributes fill its gaps, its deals, activities and visitor ids move here,
/// and its id and email resolve to this contact from then on. Both timelines are kept.
#[utoipa::path(
    post,
    path = "/api/v1/contacts/{id}/merge",
    tag = "contacts",
    params(("id" = i64, Path, description = "The contact that stays", example = 1)),
    request_body = MergeIn,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The merged contact", body = ContactOut),
        (status = 400, description = "Invalid request, or a contact merged into itself", body = ErrorBody),
        (status = 403, description = "The token's role may not merge", body = ErrorBody),
        (status = 404, description = "Either contact does not exist", body = ErrorBody),
        (status = 409, description = "The other contact was merged already", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(caller = %caller.token_name))]
pub async fn merge_contact(
    State(state): State<AppState>,
    caller: ApiCaller,
    id: Result<Path<i64>, PathRejection>,
    bytes: Bytes,
) -> Result<Json<ContactOut>, ApiError> {
    if !caller.role.may_change_in_bulk() {
        return Err(ApiError::forbidden(
            "only admins, marketers and sales managers merge contacts",
        ));
    }
    let Path(id) = id.map_err(|_| ApiError::bad_request("id: must be a whole number"))?;
    let req: MergeIn = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))?;
    let keep = match state.store.contact(ContactId::new(id)).await {
        Ok(c) => c.id,
        Err(StoreError::NotFound) => return Err(ApiError::not_found("contact")),
        Err(e) => return Err(e.into()),
    };
    let other = merge_target(&state, &req).await?;
    let merged = state
        .store
        .merge_contacts(keep, other, chrono::Utc::now())
        .await
        .map_err(merge_error)?;
    Ok(Json(
        contact_out(&state, merged, &mut Default::default()).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperature_maps_onto_the_score_bands() {
        let bands = Bands::default();
        let p = ContactParams {
            temperature: Some("warm".into()),
            ..Default::default()
        };
        let q = parse_contact_query(&p, &bands).unwrap();
        assert_eq!((q.min_score, q.max_score), (Some(20), Some(50)));
    }

    #[test]
    fn bad_parameters_are_named() {
        let bands = Bands::default();
        let bad = |p: ContactParams| parse_contact_query(&p, &bands).unwrap_err();
        assert!(
            bad(ContactParams {
                page: Some(0),
                ..Default::default()
            })
            .starts_with("page")
        );
        assert!(
            bad(ContactParams {
                per_page: Some(501),
                ..Default::default()
            })
            .starts_with("per_page")
        );
        assert!(
            bad(ContactParams {
                stage: Some("lead".into()),
                ..Default::default()
            })
            .starts_with("stage")
        );
        assert!(
            bad(ContactParams {
                email: Some("nope".into()),
                ..Default::default()
            })
            .starts_with("email")
        );
    }
}

/// A stage set by hand.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageIn {
    #[schema(schema_with = super::lifecycle_stage_schema)]
    pub stage: String,
    /// Why; kept with the transition.
    #[serde(default)]
    pub reason: String,
}

/// Checks a manual stage change and says who made it and why.
pub(crate) fn parse_stage_change(
    input: &StageIn,
    by: &str,
) -> Result<(orchard_core::stage::LifecycleStage, String), ApiError> {
    let stage = LifecycleStage::parse(&input.stage).ok_or_else(|| {
        ApiError::bad_request(format!(
            "stage: '{}' is not a lifecycle stage (subscriber, IQL, MQL, SQL, opportunity, customer, trial, disqualified, churned)",
            input.stage
        ))
    })?;
    let reason = input.reason.trim();
    if reason.len() > 500 || reason.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "reason: at most 500 printable characters",
        ));
    }
    let cause = if reason.is_empty() {
        format!("set by {by}")
    } else {
        format!("set by {by}: {reason}")
    };
    Ok((stage, cause))
}

/// Move a contact to a lifecycle stage by hand. The transition is logged with the reason;
/// automatic stage rules then act only on what happens afterwards.
#[utoipa::path(
    post,
    path = "/api/v1/contacts/{id}/stage",
    tag = "contacts",
    params(("id" = i64, Path, description = "Contact id", example = 1)),
    request_body = StageIn,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The contact in its new stage", body = ContactOut),
        (status = 400, description = "An unknown stage or a bad reason", body = ErrorBody),
        (status = 403, description = "A read-only token", body = ErrorBody),
        (status = 404, description = "No such contact", body = ErrorBody),
    )
)]
pub async fn set_stage(
    State(state): State<AppState>,
    caller: ApiCaller,
    id: Result<Path<i64>, PathRejection>,
    bytes: Bytes,
) -> Result<Json<ContactOut>, ApiError> {
    if !caller.role.may_write() {
        return Err(ApiError::forbidden(
            "a read-only token cannot change stages",
        ));
    }
    let Path(id) = id.map_err(|_| ApiError::bad_request("id: must be a whole number"))?;
    let input: StageIn = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))?;
    let (stage, cause) = parse_stage_change(&input, &format!("API token {}", caller.token_name))?;
    let c = match state
        .store
        .set_stage(ContactId::new(id), stage, &cause, chrono::Utc::now())
        .await
    {
        Err(StoreError::NotFound) => return Err(ApiError::not_found("contact")),
        other => other?,
    };
    Ok(Json(contact_out(&state, c, &mut Default::default()).await?))
}
