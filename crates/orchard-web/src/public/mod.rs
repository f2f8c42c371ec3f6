//! Public endpoints: no token, hostile callers assumed. Today: the capture forms (`/f/{slug}`),
//! hosted as a page and accepting plain HTML posts (no JavaScript needed) and JSON. They never
//! reveal whether an email was already known, nor anything about other contacts.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::routing::get;

use crate::AppState;

pub mod forms;
pub mod ratelimit;
pub mod tracking;

/// Largest body a public endpoint reads: a form post is a few hundred bytes.
pub const MAX_PUBLIC_BODY: usize = 64 * 1024;

/// First-party cookie that carries an anonymous visitor's id.
pub const VISITOR_COOKIE: &str = "orchard_vid";

/// The visitor id the request's cookie carries, when it is one (`submission::is_visitor_id`).
pub(crate) fn visitor_from_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    crate::auth::cookie(headers, VISITOR_COOKIE)
        .filter(|v| orchard_core::submission::is_visitor_id(v))
        .map(str::to_owned)
}

/// Optional text query parameters named `names`, each described by `describe`, for the
/// OpenAPI document.
pub(crate) fn text_params<'a>(
    names: impl IntoIterator<Item = &'a str>,
    describe: impl Fn(&str) -> String,
) -> Vec<utoipa::openapi::path::Parameter> {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    names
        .into_iter()
        .map(|name| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .required(utoipa::openapi::Required::False)
                .description(Some(describe(name)))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build()
        })
        .collect()
}

/// The `Set-Cookie` value that keeps `id` as the visitor's for two years.
pub(crate) fn visitor_cookie(id: &str) -> String {
    format!("{VISITOR_COOKIE}={id}; Path=/; Max-Age=63072000; SameSite=Lax; HttpOnly")
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/f/{slug}", get(forms::page).post(forms::submit))
        .route("/t/pv.gif", get(tracking::pixel))
        .route("/t/pv", axum::routing::post(tracking::beacon))
        .route("/t/o/{token}", get(tracking::open))
        .route("/t/c/{token}", get(tracking::click))
        .layer(DefaultBodyLimit::max(MAX_PUBLIC_BODY))
}

/// The caller's address, for rate limits. Orchard sees the socket's peer; behind a reverse
/// proxy every request comes from the proxy, which then shares one budget.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip()),
        ))
    }
}
