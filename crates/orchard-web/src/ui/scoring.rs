//! The scoring page: the live rule set and its versions, and a draft editor that backtests the
//! draft against the live set over the historical log before it is published.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use orchard_core::scoring::{RuleSetDef, seed};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::api::scoring::{publish, rule_set_warnings, run_backtest};
use crate::auth::WebUser;
use crate::ui::Viewer;

#[derive(Debug, Default, Deserialize)]
pub struct ShowParams {
    published: Option<i64>,
}

async fn page(state: &AppState, user: &WebUser, status: StatusCode, extra: Value) -> Response {
    let (live, versions) = match (
        state.store.live_rule_set().await,
        state.store.rule_sets().await,
    ) {
        (Ok(l), Ok(v)) => (l, v),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "rule sets failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The rule sets could not be loaded.",
            )
                .into_response();
        }
    };
    let warnings = match &live {
        Some(l) => rule_set_warnings(state.store.as_ref(), &l.definition)
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "event types failed");
                Vec::new()
            }),
        None => Vec::new(),
    };
    let draft = live
        .as_ref()
        .map(|l| l.definition.clone())
        .unwrap_or_else(seed);
    let mut ctx = json!({
        "viewer": Viewer::from(user), "nav": "scoring",
        "live": live.as_ref().map(|l| json!({
            "version": l.version, "name": l.definition.name,
            "since": l.live_since.map(|t| t.format("%Y-%m-%d %H:%M").to_string()),
            "rules": l.definition.rules,
            "decay": l.definition.decay,
            "warnings": warnings,
        })),
        "versions": versions.iter().map(|v| json!({
            "version": v.version, "name": v.definition.name, "rules": v.definition.rules.len(),
            "created": v.created_at.format("%Y-%m-%d %H:%M").to_string(),
            "live": live.as_ref().is_some_and(|l| l.version == v.version),
        })).collect::<Vec<_>>(),
        "draft": serde_json::to_string_pretty(&draft).unwrap_or_default(),
        "as_of": (Utc::now() - chrono::Duration::days(90)).format("%Y-%m-%d").to_string(),
        "bands": state.config.bands,
        "may_edit": user.user.role.may_manage_capture(),
        "may_backtest": user.user.role.may_change_in_bulk(),
    });
    if let (Some(c), Value::Object(x)) = (ctx.as_object_mut(), extra) {
        c.extend(x);
    }
    (status, state.templates.render("scoring.html", ctx)).into_response()
}

pub async fn show(
    State(state): State<AppState>,
    user: WebUser,
    Query(p): Query<ShowParams>,
) -> Response {
    let notice = p
        .published
        .map(|v| format!("Version {v} is live; every contact is being rescored with it."));
    page(&state, &user, StatusCode::OK, json!({"notice": notice})).await
}

/// `POST /scoring`: backtest the draft (`action=backtest`) or publish it (`action=publish`).
pub async fn submit(State(state): State<AppState>, user: WebUser, body: Bytes) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |n: &str| {
        form.iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    if !user.csrf_ok(&field("csrf")) {
        return (
            StatusCode::FORBIDDEN,
            "The form expired; reload the page and try again.",
        )
            .into_response();
    }
    let (text, as_of, action) = (field("draft"), field("as_of"), field("action"));
    let kept = json!({"draft": text, "as_of": as_of});
    let refuse = async |status: StatusCode, problem: String| {
        let mut extra = kept.clone();
        extra["problem"] = json!(problem);
        page(&state, &user, status, extra).await
    };
    let allowed = if action == "publish" {
        user.user.role.may_manage_capture()
    } else {
        user.user.role.may_change_in_bulk()
    };
    if !allowed {
        return refuse(StatusCode::FORBIDDEN, "Your role may not do that.".into()).await;
    }
    let def: RuleSetDef = match serde_json::from_str(&text) {
        Ok(d) => d,
        Err(e) => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("The draft is not a rule set: {e}"),
            )
            .await;
        }
    };
    if action == "publish" {
        return match publish(&state.store, &def, Utc::now()).await {
            Ok(v) => Redirect::to(&format!("/scoring?published={v}")).into_response(),
            Err(e) => refuse(StatusCode::UNPROCESSABLE_ENTITY, e.message).await,
        };
    }
    match run_backtest(
        state.store.as_ref(),
        &def,
        Some(&as_of),
        state.config.bands,
        state.config.backtest_limit,
    )
    .await
    {
        Ok(out) => {
            let mut extra = kept.clone();
            extra["backtest"] = json!(out);
            page(&state, &user, StatusCode::OK, extra).await
        }
        Err(e) => refuse(StatusCode::UNPROCESSABLE_ENTITY, e.message).await,
    }
}
