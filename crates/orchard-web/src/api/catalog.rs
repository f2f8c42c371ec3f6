//! Lead magnets and forms through the API: `GET`/`POST /api/v1/lead-magnets`,
//! `PUT`/`DELETE /api/v1/lead-magnets/{id}`, and the same for `/api/v1/forms`. Input is checked in one place (`parse_*`), shared with the web
//! pages, so both refuse the same things with the same words.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Json;
use orchard_core::capture::{Form, FunnelStage, LeadMagnet, is_valid_slug};
use orchard_core::submission::KNOWN_FIELDS;
use orchard_core::{FormId, LeadMagnetId};
use orchard_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::ApiCaller;
use crate::error::{ApiError, ErrorBody};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadMagnetIn {
    /// URL-safe: lower-case letters, digits, dashes.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,63}$")]
    pub slug: String,
    /// Up to 200 bytes of printable text.
    #[schema(min_length = 1)]
    pub name: String,
    /// e.g. checklist, ebook, webinar, case study, free trial, live demo (up to 60 bytes).
    #[schema(min_length = 1)]
    pub kind: String,
    #[schema(schema_with = super::funnel_stage_schema)]
    pub stage: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LeadMagnetOut {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub kind: String,
    #[schema(schema_with = super::funnel_stage_schema)]
    pub stage: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FormIn {
    /// URL-safe: lower-case letters, digits, dashes; the form's address is `/f/{slug}`.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,63}$")]
    pub slug: String,
    /// Up to 200 bytes of printable text.
    #[schema(min_length = 1)]
    pub name: String,
    /// The lead magnet's slug, if the form offers one.
    pub lead_magnet: Option<String>,
    #[serde(default)]
    #[schema(schema_with = super::form_fields_schema)]
    pub fields: Vec<String>,
    /// When set, the visitor must tick it; the text and time are stored as consent.
    #[serde(default)]
    pub consent_text: String,
    /// Where a browser goes after submitting; the thank-you text is shown when absent.
    pub redirect_url: Option<String>,
    #[serde(default)]
    pub thank_you: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FormOut {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub lead_magnet: Option<String>,
    #[schema(schema_with = super::form_fields_schema)]
    pub fields: Vec<String>,
    pub consent_text: String,
    pub redirect_url: Option<String>,
    pub thank_you: String,
    /// The public capture address.
    pub url: String,
}

fn text(field: &str, v: &str, max: usize) -> Result<String, String> {
    let v = v.trim();
    if v.is_empty() || v.len() > max || v.chars().any(char::is_control) {
        return Err(format!("{field}: 1-{max} printable characters"));
    }
    Ok(v.to_owned())
}

pub fn parse_lead_magnet(i: &LeadMagnetIn) -> Result<LeadMagnet, String> {
    if !is_valid_slug(&i.slug) {
        return Err("slug: use lower-case letters, digits and dashes (1-64)".into());
    }
    Ok(LeadMagnet {
        id: LeadMagnetId::new(0),
        slug: i.slug.clone(),
        name: text("name", &i.name, 200)?,
        kind: text("kind", &i.kind, 60)?,
        stage: FunnelStage::parse(&i.stage).ok_or("stage: top, middle or bottom")?,
    })
}

pub fn parse_form(i: &FormIn, magnets: &[LeadMagnet]) -> Result<Form, String> {
    if !is_valid_slug(&i.slug) {
        return Err("slug: use lower-case letters, digits and dashes (1-64)".into());
    }
    let mut fields = Vec::new();
    for f in &i.fields {
        if !KNOWN_FIELDS.contains(&f.as_str()) {
            return Err(format!(
                "fields: '{f}' is not one of {}",
                KNOWN_FIELDS.join(", ")
            ));
        }
        if !fields.contains(f) {
            fields.push(f.clone());
        }
    }
    let lead_magnet_id = match i
        .lead_magnet
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(slug) => Some(
            magnets
                .iter()
                .find(|m| m.slug == slug)
                .ok_or_else(|| format!("lead_magnet: no lead magnet '{slug}'"))?
                .id,
        ),
    };
    let redirect_url = match i
        .redirect_url
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(u) => {
            let parsed = url::Url::parse(u)
                .map_err(|_| "redirect_url: must be an absolute URL".to_string())?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err("redirect_url: must start with http:// or https://".into());
            }
            Some(parsed.to_string())
        }
    };
    let consent_text = i.consent_text.trim();
    if consent_text.len() > 1_000 {
        return Err("consent_text: at most 1000 characters".into());
    }
    let thank_you = if i.thank_you.trim().is_empty() {
        "Thank you! Check your inbox.".to_owned()
    } else {
        text("thank_you", &i.thank_you, 1_000)?
    };
    Ok(Form {
        id: FormId::new(0),
        slug: i.slug.clone(),
        name: text("name", &i.name, 200)?,
        lead_magnet_id,
        fields,
        consent_text: consent_text.to_owned(),
        redirect_url,
        thank_you,
    })
}

pub fn magnet_out(m: LeadMagnet) -> LeadMagnetOut {
    LeadMagnetOut {
        id: m.id.get(),
        slug: m.slug,
        name: m.name,
        kind: m.kind,
        stage: m.stage.as_str().to_owned(),
    }
}

pub fn form_out(f: Form, magnets: &[LeadMagnet]) -> FormOut {
    FormOut {
        id: f.id.get(),
        url: format!("/f/{}", f.slug),
        lead_magnet: f
            .lead_magnet_id
            .and_then(|id| magnets.iter().find(|m| m.id == id))
            .map(|m| m.slug.clone()),
        slug: f.slug,
        name: f.name,
        fields: f.fields,
        consent_text: f.consent_text,
        redirect_url: f.redirect_url,
        thank_you: f.thank_you,
    }
}

fn may_edit(caller: &ApiCaller) -> Result<(), ApiError> {
    if caller.role.may_manage_capture() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only admins and marketers manage lead magnets and forms",
        ))
    }
}

fn body<T: for<'de> Deserialize<'de>>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))
}

fn conflict_on_slug(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(_) => {
            ApiError::new(StatusCode::CONFLICT, "conflict", "slug: already taken")
        }
        other => other.into(),
    }
}

fn not_found_as(what: &'static str) -> impl Fn(StoreError) -> ApiError {
    move |e| match e {
        StoreError::NotFound => ApiError::not_found(what),
        other => conflict_on_slug(other),
    }
}

fn path_id(id: Result<Path<i64>, PathRejection>) -> Result<i64, ApiError> {
    id.map(|Path(id)| id)
        .map_err(|_| ApiError::bad_request("id: must be a whole number"))
}

/// List lead magnets.
#[utoipa::path(get, path = "/api/v1/lead-magnets", tag = "capture", security(("bearer" = [])),
    responses((status = 200, body = Vec<LeadMagnetOut>), (status = 401, body = ErrorBody)))]
pub async fn list_lead_magnets(
    State(state): State<AppState>,
    _caller: ApiCaller,
) -> Result<Json<Vec<LeadMagnetOut>>, ApiError> {
    Ok(Json(
        state
            .store
            .lead_magnets()
            .await?
            .into_iter()
            .map(magnet_out)
            .collect(),
    ))
}

/// Create a lead magnet.
#[utoipa::path(post, path = "/api/v1/lead-magnets", tag = "capture", request_body = LeadMagnetIn,
    security(("bearer" = [])),
    responses((status = 201, body = LeadMagnetOut), (status = 400, body = ErrorBody),
               (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_lead_magnet(
    State(state): State<AppState>,
    caller: ApiCaller,
    bytes: Bytes,
) -> Result<(StatusCode, Json<LeadMagnetOut>), ApiError> {
    may_edit(&caller)?;
    let mut m = parse_lead_magnet(&body(&bytes)?).map_err(ApiError::bad_request)?;
    m.id = state
        .store
        .create_lead_magnet(&m)
        .await
        .map_err(conflict_on_slug)?;
    Ok((StatusCode::CREATED, Json(magnet_out(m))))
}

/// Replace a lead magnet's slug, name, kind and stage. Forms offering it keep offering it.
#[utoipa::path(put, path = "/api/v1/lead-magnets/{id}", tag = "capture", request_body = LeadMagnetIn,
    params(("id" = i64, Path, description = "Lead magnet id", example = 1)),
    security(("bearer" = [])),
    responses((status = 200, body = LeadMagnetOut), (status = 400, body = ErrorBody),
               (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
               (status = 409, body = ErrorBody)))]
pub async fn update_lead_magnet(
    State(state): State<AppState>,
    caller: ApiCaller,
    id: Result<Path<i64>, PathRejection>,
    bytes: Bytes,
) -> Result<Json<LeadMagnetOut>, ApiError> {
    may_edit(&caller)?;
    let id = path_id(id)?;
    let mut m = parse_lead_magnet(&body(&bytes)?).map_err(ApiError::bad_request)?;
    m.id = LeadMagnetId::new(id);
    state
        .store
        .update_lead_magnet(&m)
        .await
        .map_err(not_found_as("lead magnet"))?;
    Ok(Json(magnet_out(m)))
}

/// Delete a lead magnet. Forms that offered it keep working without one; contacts keep the
/// magnet's slug in their attribution.
#[utoipa::path(delete, path = "/api/v1/lead-magnets/{id}", tag = "capture",
    params(("id" = i64, Path, description = "Lead magnet id", example = 1)),
    security(("bearer" = [])),
    responses((status = 204, description = "Deleted"),
               (status = 400, description = "The id is not a whole number", body = ErrorBody),
               (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_lead_magnet(
    State(state): State<AppState>,
    caller: ApiCaller,
    id: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    may_edit(&caller)?;
    state
        .store
        .delete_lead_magnet(LeadMagnetId::new(path_id(id)?))
        .await
        .map_err(not_found_as("lead magnet"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// List forms, each with its public capture address.
#[utoipa::path(get, path = "/api/v1/forms", tag = "capture", security(("bearer" = [])),
    responses((status = 200, body = Vec<FormOut>), (status = 401, body = ErrorBody)))]
pub async fn list_forms(
    State(state): State<AppState>,
    _caller: ApiCaller,
) -> Result<Json<Vec<FormOut>>, ApiError> {
    let magnets = state.store.lead_magnets().await?;
    Ok(Json(
        state
            .store
            .forms()
            .await?
            .into_iter()
            .map(|f| form_out(f, &magnets))
            .collect(),
    ))
}

/// Create a form.
#[utoipa::path(post, path = "/api/v1/forms", tag = "capture", request_body = FormIn,
    security(("bearer" = [])),
    responses((status = 201, body = FormOut), (status = 400, body = ErrorBody),
               (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_form(
    State(state): State<AppState>,
    caller: ApiCaller,
    bytes: Bytes,
) -> Result<(StatusCode, Json<FormOut>), ApiError> {
    may_edit(&caller)?;
    let magnets = state.store.lead_magnets().await?;
    let mut f = parse_form(&body(&bytes)?, &magnets).map_err(ApiError::bad_request)?;
    f.id = state
        .store
        .create_form(&f)
        .await
        .map_err(conflict_on_slug)?;
    Ok((StatusCode::CREATED, Json(form_out(f, &magnets))))
}

/// Replace a form. Its public address follows its slug; submissions already stored keep the
/// slug they were made under.
#[utoipa::path(put, path = "/api/v1/forms/{id}", tag = "capture", request_body = FormIn,
    params(("id" = i64, Path, description = "Form id", example = 1)),
    security(("bearer" = [])),
    responses((status = 200, body = FormOut), (status = 400, body = ErrorBody),
               (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
               (status = 409, body = ErrorBody)))]
pub async fn update_form(
    State(state): State<AppState>,
    caller: ApiCaller,
    id: Result<Path<i64>, PathRejection>,
    bytes: Bytes,
) -> Result<Json<FormOut>, ApiError> {
    may_edit(&caller)?;
    let id = path_id(id)?;
    let magnets = state.store.lead_magnets().await?;
    let mut f = parse_form(&body(&bytes)?, &magnets).map_err(ApiError::bad_request)?;
    f.id = FormId::new(id);
    state
        .store
        .update_form(&f)
        .await
        .map_err(not_found_as("form"))?;
    Ok(Json(form_out(f, &magnets)))
}

/// Delete a form: its public address answers 404 from then on.
#[utoipa::path(delete, path = "/api/v1/forms/{id}", tag = "capture",
    params(("id" = i64, Path, description = "Form id", example = 1)),
    security(("bearer" = [])),
    responses((status = 204, description = "Deleted"),
               (status = 400, description = "The id is not a whole number", body = ErrorBody),
               (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_form(
    State(state): State<AppState>,
    caller: ApiCaller,
    id: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    may_edit(&caller)?;
    state
        .store
        .delete_form(FormId::new(path_id(id)?))
        .await
        .map_err(not_found_as("form"))?;
    Ok(StatusCode::NO_CONTENT)
}
