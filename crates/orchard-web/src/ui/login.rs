//! Logging in and out. The login form is protected by a double-submit cookie (there is no
//! session yet to bind a CSRF token to); logout needs the session's CSRF token.

use axum::extract::{Form, State};
use axum::http::header::SET_COOKIE;
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use chrono::{Duration, Utc};
use orchard_core::Email;
use orchard_store::Session;
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::auth::{
    LOGIN_CSRF_COOKIE, SESSION_COOKIE, WebUser, constant_time_eq, cookie, hash_password,
    random_secret, sha256_hex, verify_password,
};

fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    max_age_secs: i64,
) -> (axum::http::HeaderName, String) {
    let secure = if state.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    (
        SET_COOKIE,
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"),
    )
}

fn login_page(state: &AppState, error: Option<&str>, email: &str) -> Response {
    let csrf = random_secret();
    let cookie = set_cookie(state, LOGIN_CSRF_COOKIE, &csrf, 3600);
    let page = state.templates.render(
        "login.html",
        json!({"csrf": csrf, "error": error, "email": email}),
    );
    ([cookie], page).into_response()
}

pub async fn form(State(state): State<AppState>) -> Response {
    login_page(&state, None, "")
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    csrf: String,
}

#[tracing::instrument(skip_all)]
pub async fn submit(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let csrf_ok = cookie(&headers, LOGIN_CSRF_COOKIE).is_some_and(|c| constant_time_eq(c, &f.csrf));
    if !csrf_ok {
        return login_page(
            &state,
            Some("Your login form expired. Please try again."),
            &f.email,
        );
    }
    let wrong = "Wrong email or password.";
    let Ok(email) = Email::parse(&f.email) else {
        return login_page(&state, Some(wrong), &f.email);
    };
    let creds = match state.store.user_credentials(&email).await {
        Ok(c) => Some(c),
        Err(orchard_store::StoreError::NotFound) => None,
        Err(e) => {
            tracing::error!(error = %e, "login: store failed");
            return login_page(
                &state,
                Some("Orchard could not check your login; try again shortly."),
                &f.email,
            );
        }
    };
    let password = f.password;
    // Verify off the async runtime (Argon2 is deliberately slow) and verify against a dummy hash
    // when the user does not exist, so timing does not reveal which emails have accounts.
    let hash = creds
        .as_ref()
        .and_then(|c| c.password_hash.clone())
        .unwrap_or_else(dummy_hash);
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    let Some(creds) = creds.filter(|_| ok) else {
        tracing::info!(email = %email, "failed login");
        return login_page(&state, Some(wrong), &f.email);
    };
    let sid = random_secret();
    let session = Session {
        user_id: creds.user.id,
        csrf_token: random_secret(),
        expires_at: Utc::now() + Duration::hours(state.config.session_hours),
    };
    if let Err(e) = state
        .store
        .create_session(&sha256_hex(&sid), &session)
        .await
    {
        tracing::error!(error = %e, "login: could not store session");
        return login_page(
            &state,
            Some("Orchard could not start your session; try again shortly."),
            &f.email,
        );
    }
    tracing::info!(user = %creds.user.email, "logged in");
    (
        // Appended, not inserted: both Set-Cookie headers must reach the browser.
        AppendHeaders([
            set_cookie(
                &state,
                SESSION_COOKIE,
                &sid,
                state.config.session_hours * 3600,
            ),
            set_cookie(&state, LOGIN_CSRF_COOKIE, "", 0),
        ]),
        Redirect::to("/contacts"),
    )
        .into_response()
}

fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| hash_password("no user has this password"))
        .clone()
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    user: WebUser,
    Form(f): Form<LogoutForm>,
) -> Response {
    if !user.csrf_ok(&f.csrf) {
        return (
            axum::http::StatusCode::FORBIDDEN,
            "The form expired; reload the page and try again.",
        )
            .into_response();
    }
    if let Err(e) = state.store.delete_session(&user.session_hash).await {
        tracing::error!(error = %e, "logout: could not delete session");
    }
    (
        [set_cookie(&state, SESSION_COOKIE, "", 0)],
        Redirect::to("/login"),
    )
        .into_response()
}
