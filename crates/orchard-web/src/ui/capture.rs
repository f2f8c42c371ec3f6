//! The lead magnets and forms pages: what a company offers at each funnel stage, the forms
//! that capture leads with it, and the snippet to paste into a website.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::HOST;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use orchard_core::capture::{Form, FunnelStage, LeadMagnet};
use orchard_core::submission::{HONEYPOT_FIELD, KNOWN_FIELDS};
use orchard_core::{FormId, LeadMagnetId};
use orchard_store::StoreError;
use serde_json::{Value, json};

use crate::AppState;
use crate::api::catalog::{FormIn, LeadMagnetIn, parse_form, parse_lead_magnet};
use crate::auth::WebUser;
use crate::ui::Viewer;

fn may_edit(user: &WebUser) -> bool {
    user.user.role.may_manage_capture()
}

/// What a failed save or delete tells the editor, logging what they need not see.
fn store_problem(e: StoreError, what: &str) -> String {
    match e {
        StoreError::Conflict(_) => "slug: already taken".into(),
        StoreError::NotFound => format!("That {what} no longer exists; someone deleted it."),
        e => {
            tracing::error!(error = %e, what, "saving failed");
            "Orchard could not save it; try again shortly.".into()
        }
    }
}

/// Posted form fields, keeping repeated names (checkboxes).
fn pairs(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn one(pairs: &[(String, String)], name: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// The HTML a company pastes into its site: a plain form posting to Orchard, with the
/// honeypot hidden from people.
pub fn embed_snippet(base: &str, form: &Form) -> String {
    let mut html = format!("<form method=\"post\" action=\"{base}/f/{}\">\n", form.slug);
    html.push_str("  <label>Email <input type=\"email\" name=\"email\" required></label>\n");
    for f in &form.fields {
        if f == "message" {
            html.push_str("  <label>Message <textarea name=\"message\"></textarea></label>\n");
        } else {
            html.push_str(&format!(
                "  <label>{} <input type=\"text\" name=\"{f}\"></label>\n",
                f.replace('_', " ")
            ));
        }
    }
    html.push_str(&format!(
        "  <div style=\"position:absolute;left:-10000px\" aria-hidden=\"true\"><input type=\"text\" name=\"{HONEYPOT_FIELD}\" tabindex=\"-1\" autocomplete=\"off\"></div>\n"
    ));
    // The one free text: a marketer's words, pasted into customers' sites as markup.
    if !form.consent_text.is_empty() {
        html.push_str(&format!(
            "  <label><input type=\"checkbox\" name=\"consent\" value=\"on\" required> {}</label>\n",
            minijinja::HtmlEscape(&form.consent_text)
        ));
    }
    html.push_str("  <button type=\"submit\">Send</button>\n</form>");
    html
}

/// The fields of a catalogue edit, once its CSRF token and the editor's role are checked.
// A rejection is a whole response, built once per refused request: its size does not matter.
#[allow(clippy::result_large_err)]
fn editor_post(user: &WebUser, body: &[u8]) -> Result<Vec<(String, String)>, Response> {
    let p = pairs(body);
    if !user.csrf_ok(&one(&p, "csrf")) {
        return Err((
            StatusCode::FORBIDDEN,
            "The form expired; reload the page and try again.",
        )
            .into_response());
    }
    if !may_edit(user) {
        return Err((
            StatusCode::FORBIDDEN,
            "Only admins and marketers manage lead magnets and forms.",
        )
            .into_response());
    }
    Ok(p)
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost:8080");
    format!("http://{host}")
}

async fn magnets_page(
    state: &AppState,
    user: &WebUser,
    status: StatusCode,
    problem: Option<String>,
    values: Value,
) -> Response {
    let magnets = match state.store.lead_magnets().await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "lead magnets failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The lead magnets could not be loaded.",
            )
                .into_response();
        }
    };
    let stages: Vec<Value> = [FunnelStage::Top, FunnelStage::Middle, FunnelStage::Bottom]
        .into_iter()
        .map(|s| {
            json!({
                "stage": s.as_str(),
                "kinds": s.typical_kinds(),
                "magnets": magnets.iter().filter(|m| m.stage == s)
                    .map(|m| json!({"id": m.id.get(), "slug": m.slug, "name": m.name,
                                    "kind": m.kind, "stage": m.stage.as_str()}))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let page = state.templates.render(
        "lead_magnets.html",
        json!({"viewer": Viewer::from(user), "nav": "lead-magnets", "stages": stages,
               "may_edit": may_edit(user), "problem": problem, "values": values}),
    );
    (status, page).into_response()
}

pub async fn lead_magnets(State(state): State<AppState>, user: WebUser) -> Response {
    magnets_page(&state, &user, StatusCode::OK, None, json!({})).await
}

pub async fn create_lead_magnet(
    State(state): State<AppState>,
    user: WebUser,
    body: Bytes,
) -> Response {
    save_lead_magnet(&state, &user, None, &body).await
}

pub async fn update_lead_magnet(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    save_lead_magnet(&state, &user, Some(LeadMagnetId::new(id)), &body).await
}

async fn save_lead_magnet(
    state: &AppState,
    user: &WebUser,
    id: Option<LeadMagnetId>,
    body: &[u8],
) -> Response {
    let p = match editor_post(user, body) {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let input = LeadMagnetIn {
        slug: one(&p, "slug"),
        name: one(&p, "name"),
        kind: one(&p, "kind"),
        stage: one(&p, "stage"),
    };
    let values = json!(input);
    let problem = match parse_lead_magnet(&input) {
        Err(e) => e,
        Ok(mut m) => {
            let saved = match id {
                None => state.store.create_lead_magnet(&m).await.map(drop),
                Some(id) => {
                    m.id = id;
                    state.store.update_lead_magnet(&m).await
                }
            };
            match saved {
                Ok(()) => return Redirect::to("/lead-magnets").into_response(),
                Err(e) => store_problem(e, "lead magnet"),
            }
        }
    };
    // A failed edit shows its problem above the list; the new-magnet form keeps the values
    // only when it was the one posted.
    let values = if id.is_none() { values } else { json!({}) };
    magnets_page(
        state,
        user,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some(problem),
        values,
    )
    .await
}

pub async fn delete_lead_magnet(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    if let Err(refused) = editor_post(&user, &body) {
        return refused;
    }
    match state.store.delete_lead_magnet(LeadMagnetId::new(id)).await {
        Ok(()) | Err(StoreError::NotFound) => Redirect::to("/lead-magnets").into_response(),
        Err(e) => {
            let problem = store_problem(e, "lead magnet");
            magnets_page(
                &state,
                &user,
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(problem),
                json!({}),
            )
            .await
        }
    }
}

async fn forms_page(
    state: &AppState,
    user: &WebUser,
    headers: &HeaderMap,
    status: StatusCode,
    problem: Option<String>,
    values: Value,
) -> Response {
    let (forms, magnets): (Vec<Form>, Vec<LeadMagnet>) =
        match (state.store.forms().await, state.store.lead_magnets().await) {
            (Ok(f), Ok(m)) => (f, m),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "forms failed");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The forms could not be loaded.",
                )
                    .into_response();
            }
        };
    let base = base_url(headers);
    let rows: Vec<Value> = forms
        .iter()
        .map(|f| {
            let magnet = f
                .lead_magnet_id
                .and_then(|id| magnets.iter().find(|m| m.id == id));
            json!({
                "id": f.id.get(), "slug": f.slug, "name": f.name, "fields": f.fields.join(", "),
                "magnet": magnet.map(|m| &m.name), "stage": magnet.map(|m| m.stage.as_str()),
                "redirect": f.redirect_url, "consent": !f.consent_text.is_empty(),
                "snippet": embed_snippet(&base, f),
                "values": {
                    "slug": f.slug, "name": f.name, "lead_magnet": magnet.map(|m| &m.slug),
                    "fields": f.fields, "consent_text": f.consent_text,
                    "redirect_url": f.redirect_url, "thank_you": f.thank_you,
                },
            })
        })
        .collect();
    let page = state.templates.render(
        "forms.html",
        json!({"viewer": Viewer::from(user), "nav": "forms", "forms": rows,
               "magnets": magnets.iter().map(|m| json!({"slug": m.slug, "name": m.name})).collect::<Vec<_>>(),
               "known_fields": KNOWN_FIELDS, "may_edit": may_edit(user), "problem": problem, "values": values}),
    );
    (status, page).into_response()
}

pub async fn forms(State(state): State<AppState>, user: WebUser, headers: HeaderMap) -> Response {
    forms_page(&state, &user, &headers, StatusCode::OK, None, json!({})).await
}

pub async fn create_form(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    save_form(&state, &user, &headers, None, &body).await
}

pub async fn update_form(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    save_form(&state, &user, &headers, Some(FormId::new(id)), &body).await
}

async fn save_form(
    state: &AppState,
    user: &WebUser,
    headers: &HeaderMap,
    id: Option<FormId>,
    body: &[u8],
) -> Response {
    let p = match editor_post(user, body) {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let input = FormIn {
        slug: one(&p, "slug"),
        name: one(&p, "name"),
        lead_magnet: Some(one(&p, "lead_magnet")),
        fields: p
            .iter()
            .filter(|(k, _)| k == "fields")
            .map(|(_, v)| v.clone())
            .collect(),
        consent_text: one(&p, "consent_text"),
        redirect_url: Some(one(&p, "redirect_url")),
        thank_you: one(&p, "thank_you"),
    };
    let values = if id.is_none() {
        json!(input)
    } else {
        json!({})
    };
    let magnets = state.store.lead_magnets().await.unwrap_or_default();
    let problem = match parse_form(&input, &magnets) {
        Err(e) => e,
        Ok(mut f) => {
            let saved = match id {
                None => state.store.create_form(&f).await.map(drop),
                Some(id) => {
                    f.id = id;
                    state.store.update_form(&f).await
                }
            };
            match saved {
                Ok(()) => return Redirect::to("/forms").into_response(),
                Err(e) => store_problem(e, "form"),
            }
        }
    };
    forms_page(
        state,
        user,
        headers,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some(problem),
        values,
    )
    .await
}

pub async fn delete_form(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    if let Err(refused) = editor_post(&user, &body) {
        return refused;
    }
    match state.store.delete_form(FormId::new(id)).await {
        Ok(()) | Err(StoreError::NotFound) => Redirect::to("/forms").into_response(),
        Err(e) => {
            let problem = store_problem(e, "form");
            forms_page(
                &state,
                &user,
                &headers,
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(problem),
                json!({}),
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snippet_posts_to_orchard_with_a_hidden_honeypot() {
        let f = Form {
            id: FormId::new(1),
            slug: "demo".into(),
            name: "Demo".into(),
            lead_magnet_id: None,
            fields: vec!["first_name".into()],
            consent_text: "Yes please".into(),
            redirect_url: None,
            thank_you: "Thanks".into(),
        };
        let html = embed_snippet("https://crm.example.com", &f);
        assert!(
            html.starts_with("<form method=\"post\" action=\"https://crm.example.com/f/demo\">")
        );
        assert!(html.contains("name=\"first_name\"") && html.contains("name=\"website\""));
        assert!(html.contains("name=\"consent\""));
    }

    #[test]
    fn the_snippet_escapes_the_consent_text() {
        let f = Form {
            id: FormId::new(1),
            slug: "demo".into(),
            name: "Demo".into(),
            lead_magnet_id: None,
            fields: Vec::new(),
            consent_text: r#"Yes <script>alert(1)</script> & "more""#.into(),
            redirect_url: None,
            thank_you: "Thanks".into(),
        };
        let html = embed_snippet("https://crm.example.com", &f);
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("Yes &lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; &quot;more&quot;"),
            "{html}"
        );
    }
}
