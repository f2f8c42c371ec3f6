//! Who is calling. API clients present a bearer token (256 random bits, stored only as a
//! SHA-256 hash); people log in with a password (Argon2) and carry a session cookie (also
//! stored hashed) with a per-session CSRF token that every state-changing form must echo.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use chrono::Utc;
use orchard_core::auth::Role;
use orchard_core::team::User;
use orchard_store::StoreError;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

pub const SESSION_COOKIE: &str = "orchard_session";
/// Double-submit cookie that protects the login form itself (there is no session yet).
pub const LOGIN_CSRF_COOKIE: &str = "orchard_login_csrf";

/// 256 bits from the operating system's generator, hex-encoded.
pub fn random_secret() -> String {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf).expect("the operating system's random generator is unavailable");
    hex::encode(buf)
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A new API token: what the user is shown once, and what is stored.
pub fn new_api_token() -> (String, String) {
    let token = format!("orch_{}", random_secret());
    let hash = sha256_hex(&token);
    (token, hash)
}

pub fn hash_password(password: &str) -> String {
    Argon2::default()
        .hash_password(password.as_bytes())
        .expect("argon2 with default parameters and a fresh salt cannot fail")
        .to_string()
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// Compares secrets without revealing, through timing, how much of them matched.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// An authenticated API caller.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub token_name: String,
    pub role: Role,
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 200)
            .ok_or_else(ApiError::unauthorized)?;
        match state.store.token_by_hash(&sha256_hex(token)).await {
            Ok(t) => Ok(ApiCaller {
                token_name: t.name,
                role: t.role,
            }),
            Err(StoreError::NotFound) => Err(ApiError::unauthorized()),
            Err(e) => Err(e.into()),
        }
    }
}

/// A person logged in through the web interface.
#[derive(Debug, Clone)]
pub struct WebUser {
    pub user: User,
    pub csrf_token: String,
    pub session_hash: String,
}

impl WebUser {
    /// The owner filter a list must apply: a rep sees only their own book.
    pub fn owner_scope(&self) -> Option<orchard_core::UserId> {
        self.user.role.sees_only_own_book().then_some(self.user.id)
    }

    pub fn csrf_ok(&self, submitted: &str) -> bool {
        constant_time_eq(&self.csrf_token, submitted)
    }
}

/// Rejection for pages: send the browser to the login page.
#[derive(Debug)]
pub struct LoginRequired;

impl axum::response::IntoResponse for LoginRequired {
    fn into_response(self) -> axum::response::Response {
        axum::response::Redirect::to("/login").into_response()
    }
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = LoginRequired;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, LoginRequired> {
        let sid = cookie(&parts.headers, SESSION_COOKIE)
            .filter(|s| s.len() == 64)
            .ok_or(LoginRequired)?;
        let session_hash = sha256_hex(sid);
        let session = state
            .store
            .session(&session_hash, Utc::now())
            .await
            .map_err(|_| LoginRequired)?;
        let user = state
            .store
            .user(session.user_id)
            .await
            .map_err(|_| LoginRequired)?;
        Ok(WebUser {
            user,
            csrf_token: session.csrf_token,
            session_hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let h = hash_password("correct horse");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct horse ", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn tokens_are_long_random_and_stored_hashed() {
        let (a, ha) = new_api_token();
        let (b, _) = new_api_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 5 + 64);
        assert_eq!(ha, sha256_hex(&a));
        assert_ne!(ha, a);
    }

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
