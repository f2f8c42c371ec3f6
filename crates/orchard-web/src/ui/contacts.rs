//! The contacts list (search, filters, paging) and a contact's page (attributes and timeline).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use orchard_core::ContactId;
use orchard_core::stage::LifecycleStage;
use orchard_store::StoreError;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::api::contacts::{
    ContactParams, MergeIn, StageIn, merge_error, merge_target, parse_contact_query,
    parse_stage_change,
};
use crate::auth::WebUser;
use crate::ui::Viewer;

/// The list's form fields; lenient where the API is strict (an empty select means "any").
#[derive(Debug, Default, Deserialize)]
pub struct ListForm {
    q: Option<String>,
    stage: Option<String>,
    temperature: Option<String>,
    country: Option<String>,
    page: Option<i64>,
}

fn error_page(state: &AppState, user: &WebUser, status: StatusCode, message: &str) -> Response {
    let page = state.templates.render(
        "error.html",
        json!({"viewer": Viewer::from(user), "status": status.as_u16(), "message": message}),
    );
    (status, page).into_response()
}

#[tracing::instrument(skip_all, fields(user = %user.user.email))]
pub async fn list(
    State(state): State<AppState>,
    user: WebUser,
    Query(form): Query<ListForm>,
) -> Response {
    let params = ContactParams {
        q: form.q.clone(),
        stage: form.stage.clone(),
        temperature: form.temperature.clone(),
        country: form.country.clone(),
        page: form.page,
        per_page: Some(25),
        ..Default::default()
    };
    let (query, problem) = match parse_contact_query(&params, &state.config.bands) {
        Ok(q) => (q, None),
        Err(e) => (
            parse_contact_query(
                &ContactParams {
                    per_page: Some(25),
                    ..Default::default()
                },
                &state.config.bands,
            )
            .unwrap_or_default(),
            Some(e),
        ),
    };
    let page = match state.store.list_contacts(&query, user.owner_scope()).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "contacts list failed");
            return error_page(
                &state,
                &user,
                StatusCode::INTERNAL_SERVER_ERROR,
                "The contacts could not be loaded.",
            );
        }
    };
    let bands = state.config.bands;
    let rows: Vec<Value> = page
        .items
        .iter()
        .map(|c| {
            json!({
                "id": c.id.get(),
                "name": c.display_name(),
                "email": c.email.as_str(),
                "company": c.details.demographics.company,
                "country": c.details.geography.country,
                "stage": c.stage.as_str(),
                "score": c.score,
                "temperature": bands.temperature(c.score).as_str(),
                "source": c.source,
                "created": c.created_at.format("%Y-%m-%d").to_string(),
            })
        })
        .collect();
    let pages = ((page.total + page.per_page - 1) / page.per_page).max(1);
    state.templates.render(
        "contacts.html",
        json!({
            "viewer": Viewer::from(&user),
            "nav": "contacts",
            "rows": rows,
            "total": page.total,
            "page": page.page,
            "pages": pages,
            "problem": problem,
            "filters": {
                "q": form.q.unwrap_or_default(),
                "stage": form.stage.unwrap_or_default(),
                "temperature": form.temperature.unwrap_or_default(),
                "country": form.country.unwrap_or_default(),
            },
            "stages": LifecycleStage::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "scoped": user.owner_scope().is_some(),
        }),
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct ShowParams {
    /// Set after a merge: the email that was merged in, for the confirmation.
    merged: Option<String>,
    /// A day (`2026-03-31`) to show the score as it stood at the end of.
    score_at: Option<String>,
}

/// The end of the day `text` names (UTC), or now for a day not over yet: when the score
/// panel's "score on" field asks for the score as it stood. Tomorrow in UTC is still someone's
/// today (east of UTC), so it means now; a later day, or what is not a day, is a mistake to
/// show.
fn end_of_day(
    text: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let day = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("Score on: '{text}' is not a day (2026-03-31)."))?;
    let tomorrow = now.date_naive() + chrono::Days::new(1);
    if day > tomorrow {
        return Err(format!("Score on: {day} has not come yet."));
    }
    // The last millisecond of the day: at most the day after tomorrow's start, which exists.
    let next = (day + chrono::Days::new(1)).and_time(chrono::NaiveTime::MIN);
    Ok((next.and_utc() - chrono::TimeDelta::milliseconds(1)).min(now))
}

#[tracing::instrument(skip_all, fields(user = %user.user.email))]
pub async fn show(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Query(params): Query<ShowParams>,
) -> Response {
    let notice = params
        .merged
        .map(|e| format!("Merged {e} into this contact; both timelines are shown."));
    let asked = params.score_at.filter(|t| !t.trim().is_empty());
    let then = asked
        .as_deref()
        .map(|t| end_of_day(t, chrono::Utc::now()))
        .transpose();
    let (status, problem, at) = match then {
        Ok(at) => (StatusCode::OK, None, at),
        Err(p) => (StatusCode::UNPROCESSABLE_ENTITY, Some(p), None),
    };
    let day = ScoreDay {
        asked: asked.unwrap_or_default(),
        at,
    };
    contact_page(&state, &user, &id, status, problem, notice, day).await
}

/// The day the score panel was asked about, as typed, and the moment it stands for.
#[derive(Debug, Default)]
struct ScoreDay {
    asked: String,
    at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A posted form's fields by name, trimmed (missing ones empty).
fn posted(body: &[u8]) -> impl Fn(&str) -> String {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    move |name| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    }
}

/// `POST /contacts/{id}/merge`: fold the contact with the posted email into this one.
#[tracing::instrument(skip_all, fields(user = %user.user.email))]
pub async fn merge(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let field = posted(&body);
    if !user.csrf_ok(&field("csrf")) {
        return error_page(
            &state,
            &user,
            StatusCode::FORBIDDEN,
            "The form expired; reload the page and try again.",
        );
    }
    if !user.user.role.may_change_in_bulk() {
        return error_page(
            &state,
            &user,
            StatusCode::FORBIDDEN,
            "Only admins, marketers and sales managers merge contacts.",
        );
    }
    let Ok(keep) = id.parse::<i64>().map(ContactId::new) else {
        return error_page(&state, &user, StatusCode::NOT_FOUND, "No such contact.");
    };
    let request = MergeIn {
        merge_id: None,
        merge_email: Some(field("merge_email")),
    };
    let problem = match merge_target(&state, &request).await {
        Err(e) => e.message,
        Ok(other) => match state
            .store
            .merge_contacts(keep, other, chrono::Utc::now())
            .await
        {
            Ok(c) => {
                let to = format!(
                    "/contacts/{}?merged={}",
                    c.id,
                    url::form_urlencoded::byte_serialize(field("merge_email").as_bytes())
                        .collect::<String>()
                );
                return Redirect::to(&to).into_response();
            }
            Err(e) => merge_error(e).message,
        },
    };
    contact_page(
        &state,
        &user,
        &id,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some(problem),
        None,
        ScoreDay::default(),
    )
    .await
}

/// `POST /contacts/{id}/stage`: move the contact to a stage by hand, with a reason.
#[tracing::instrument(skip_all, fields(user = %user.user.email))]
pub async fn set_stage(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let field = posted(&body);
    if !user.csrf_ok(&field("csrf")) || !user.user.role.may_write() {
        return error_page(
            &state,
            &user,
            StatusCode::FORBIDDEN,
            "Not allowed, or the form expired; reload the page and try again.",
        );
    }
    let Ok(cid) = id.parse::<i64>().map(ContactId::new) else {
        return error_page(&state, &user, StatusCode::NOT_FOUND, "No such contact.");
    };
    // A rep changes only their own contacts.
    match state.store.contact(cid).await {
        Ok(c) if user.owner_scope().is_none_or(|me| c.owner_id == Some(me)) => {}
        _ => {
            return error_page(
                &state,
                &user,
                StatusCode::NOT_FOUND,
                "No such contact, or it is not in your book.",
            );
        }
    }
    let input = StageIn {
        stage: field("stage"),
        reason: field("reason"),
    };
    let problem = match parse_stage_change(&input, &user.user.name) {
        Err(e) => e.message,
        Ok((stage, cause)) => match state
            .store
            .set_stage(cid, stage, &cause, chrono::Utc::now())
            .await
        {
            Ok(c) => return Redirect::to(&format!("/contacts/{}", c.id)).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "setting a stage failed");
                "Orchard could not change the stage; try again shortly.".into()
            }
        },
    };
    contact_page(
        &state,
        &user,
        &id,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some(problem),
        None,
        ScoreDay::default(),
    )
    .await
}

async fn contact_page(
    state: &AppState,
    user: &WebUser,
    id: &str,
    status: StatusCode,
    problem: Option<String>,
    notice: Option<String>,
    day: ScoreDay,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return error_page(state, user, StatusCode::NOT_FOUND, "No such contact.");
    };
    let contact = match state.store.contact(ContactId::new(id)).await {
        Ok(c) if user.owner_scope().is_none_or(|me| c.owner_id == Some(me)) => c,
        Ok(_) | Err(StoreError::NotFound) => {
            return error_page(
                state,
                user,
                StatusCode::NOT_FOUND,
                "No such contact, or it is not in your book.",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "contact page failed");
            return error_page(
                state,
                user,
                StatusCode::INTERNAL_SERVER_ERROR,
                "The contact could not be loaded.",
            );
        }
    };
    if contact.id.get() != id && status.is_success() {
        // A contact merged into another: its page is that other's. A form refused on the old
        // page (a merge into it from a tab opened before) gets that page with its problem.
        return Redirect::to(&format!("/contacts/{}", contact.id)).into_response();
    }
    let aliases: Vec<String> = match state.store.merged_emails(contact.id).await {
        Ok(emails) => emails.into_iter().map(|e| e.to_string()).collect(),
        Err(e) => {
            tracing::error!(error = %e, "merged emails failed");
            Vec::new()
        }
    };
    let explained = match crate::api::scoring::explanation(
        state.store.as_ref(),
        &contact,
        state.config.bands,
        day.at,
    )
    .await
    {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::error!(error = %e, "score explanation failed");
            None
        }
    };
    let scoring = explained.map(|e| {
        let chart = score_chart(&e.changes, chrono::Utc::now());
        json!({
            "rule_set": e.rule_set,
            "chart": chart,
            "changes": e.changes.iter().rev().take(100).map(|c| json!({
                "rule": c.rule, "description": c.description, "points": c.points,
                "at": c.at.get(..16).unwrap_or(&c.at).replace('T', " "),
                "cause": c.cause, "event": c.event, "running": c.running,
            })).collect::<Vec<_>>(),
            "more": e.changes.len().saturating_sub(100),
            "asked": day.asked,
            "then": e.score_at.map(|s| json!({
                "day": day.at.map(|t| t.format("%Y-%m-%d").to_string()),
                "score": s.score,
                "rule_set": s.rule_set,
            })),
        })
    });
    let in_segments: Vec<String> = match state.store.contact_segments(contact.id).await {
        Ok(list) => list.into_iter().map(|s| s.segment.name).collect(),
        Err(e) => {
            tracing::error!(error = %e, "contact segments failed");
            Vec::new()
        }
    };
    let events = match state.store.contact_events(contact.id, 200).await {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "timeline failed");
            Vec::new()
        }
    };
    let attribution = state
        .store
        .attribution(contact.id)
        .await
        .unwrap_or_default();
    let touch = |t: &Option<orchard_core::submission::Touch>| {
        t.as_ref().map(|t| {
            json!({
                "channel": t.channel(), "medium": t.medium, "campaign": t.campaign,
                "lead_magnet": t.lead_magnet, "landing_page": t.landing_page, "referrer": t.referrer,
                "partner": t.partner_id, "at": t.at.map(|a| a.format("%Y-%m-%d %H:%M").to_string()),
            })
        })
    };
    let owner = match contact.owner_id {
        Some(o) => state.store.user(o).await.ok().map(|u| u.name),
        None => None,
    };
    let timeline: Vec<Value> = events
        .iter()
        .map(|e| {
            let text = |k: &str| e.properties.get(k).and_then(Value::as_str).unwrap_or_default();
            // A stage change reads as one: from → to, why, and whether a person made it.
            let stage = (e.event_type.as_str() == orchard_core::lifecycle::STAGE_CHANGED).then(|| {
                json!({
                    "from": text("from"), "to": text("to"), "cause": text("cause"),
                    "manual": e.properties.get("manual").and_then(Value::as_bool).unwrap_or(false),
                })
            });
            json!({
                "stage": stage,
                "type": e.event_type.as_str(),
                "at": e.at.format("%Y-%m-%d %H:%M").to_string(),
                "anonymous": e.visitor_id.is_some() && e.at < contact.created_at,
                "merged": e.contact_id.is_some_and(|c| c != contact.id),
                "properties": e.properties.iter()
                    .map(|(k, v)| (k.clone(), match v { Value::String(s) => s.clone(), other => other.to_string() }))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let d = &contact.details;
    let attrs: Vec<(&str, Option<String>)> = vec![
        ("Job title", d.demographics.job_title.clone()),
        ("Seniority", d.demographics.seniority.clone()),
        ("Company", d.demographics.company.clone()),
        ("Industry", d.demographics.industry.clone()),
        (
            "Company size",
            d.demographics.company_size.map(|v| v.to_string()),
        ),
        (
            "Company revenue",
            d.demographics.company_revenue.map(|v| v.to_string()),
        ),
        ("Phone", d.phone.clone()),
        ("Country", d.geography.country.clone()),
        ("Region", d.geography.region.clone()),
        ("City", d.geography.city.clone()),
        ("Time zone", d.geography.time_zone.clone()),
        (
            "Interests",
            Some(d.psychographics.interests.join(", ")).filter(|s| !s.is_empty()),
        ),
        (
            "Tags",
            Some(d.psychographics.tags.join(", ")).filter(|s| !s.is_empty()),
        ),
        ("Age", d.demographics.age.map(|v| v.to_string())),
        ("Education", d.demographics.education.clone()),
    ];
    let custom: Vec<(String, String)> = d
        .custom
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
            )
        })
        .collect();
    let page = state.templates.render(
        "contact.html",
        json!({
            "viewer": Viewer::from(user),
            "nav": "contacts",
            "c": {
                "id": contact.id.get(),
                "name": contact.display_name(),
                "email": contact.email.as_str(),
                "stage": contact.stage.as_str(),
                "score": contact.score,
                "temperature": state.config.bands.temperature(contact.score).as_str(),
                "source": contact.source,
                "owner": owner,
                "created": contact.created_at.format("%Y-%m-%d %H:%M").to_string(),
                "last_activity": contact.last_activity_at.map(|t| t.format("%Y-%m-%d %H:%M").to_string()),
            },
            "attributes": attrs.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect::<Vec<_>>(),
            "custom": custom,
            "first_touch": touch(&attribution.first_touch),
            "last_touch": touch(&attribution.last_touch),
            "consent": attribution.consent.map(|c| json!({
                "text": c.text, "source": c.source, "at": c.at.format("%Y-%m-%d %H:%M").to_string(),
            })),
            "timeline": timeline,
            "aliases": aliases,
            "scoring": scoring,
            "segments": in_segments,
            "may_merge": user.user.role.may_change_in_bulk(),
            "may_set_stage": user.user.role.may_write(),
            "stages": LifecycleStage::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "problem": problem,
            "notice": notice,
        }),
    );
    (status, page).into_response()
}

/// The score over time as an SVG step line (600×120 view box): the points of a polyline, the
/// value range and the first date, or `None` with fewer than one change.
fn score_chart(
    changes: &[crate::api::scoring::ChangeOut],
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Value> {
    let parse = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| t.timestamp())
    };
    let start = parse(&changes.first()?.at)?;
    let end = now.timestamp().max(start + 1);
    let lo = changes.iter().map(|c| c.running).min()?.min(0);
    let hi = changes.iter().map(|c| c.running).max()?.max(lo + 1);
    let x = |t: i64| 600.0 * (t - start) as f64 / (end - start) as f64;
    let y = |v: i64| 110.0 - 100.0 * (v - lo) as f64 / (hi - lo) as f64;
    let mut points = vec![format!("0,{:.1}", y(0))];
    let mut last = 0;
    for c in changes {
        let t = parse(&c.at)?;
        points.push(format!("{:.1},{:.1}", x(t), y(last)));
        points.push(format!("{:.1},{:.1}", x(t), y(c.running)));
        last = c.running;
    }
    points.push(format!("600,{:.1}", y(last)));
    Some(json!({
        "points": points.join(" "),
        "zero": format!("{:.1}", y(0)),
        "lo": lo, "hi": hi,
        "from": changes.first()?.at.get(..10),
    }))
}
