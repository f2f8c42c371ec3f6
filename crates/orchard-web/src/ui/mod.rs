//! The web interface: server-rendered pages (minijinja templates, HTML-escaped by default),
//! static assets embedded in the binary, no front-end build at run time. Every page here is a
//! real one; the navigation lists only pages that exist.

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use minijinja::Environment;
use rust_embed::RustEmbed;
use serde::Serialize;

use crate::AppState;
use crate::auth::WebUser;

mod capture;
mod contacts;
mod import;
mod login;
mod scoring;
mod segments;

#[derive(RustEmbed)]
#[folder = "templates/"]
struct TemplateFiles;

#[derive(RustEmbed)]
#[folder = "static/"]
struct StaticFiles;

/// The compiled page templates.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    pub fn new() -> Self {
        let mut env = Environment::new();
        for name in TemplateFiles::iter() {
            let file = TemplateFiles::get(&name).expect("listed template exists");
            let source = String::from_utf8(file.data.into_owned()).expect("templates are UTF-8");
            env.add_template_owned(name.to_string(), source)
                .unwrap_or_else(|e| panic!("template {name} does not compile: {e}"));
        }
        Self { env }
    }

    pub fn render(&self, name: &str, ctx: impl Serialize) -> Response {
        match self
            .env
            .get_template(name)
            .and_then(|t| t.render(minijinja::value::Serde(&ctx)))
        {
            Ok(html) => Html(html).into_response(),
            Err(e) => {
                tracing::error!(template = name, error = %e, "page failed to render");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }
}

/// What every page's layout needs to know about the person viewing it.
#[derive(Debug, Serialize)]
pub struct Viewer {
    pub name: String,
    pub email: String,
    pub role: &'static str,
    pub csrf: String,
    /// Whether the import page is in the menu.
    pub may_import: bool,
}

impl From<&WebUser> for Viewer {
    fn from(u: &WebUser) -> Self {
        Self {
            name: u.user.name.clone(),
            email: u.user.email.to_string(),
            role: u.user.role.as_str(),
            csrf: u.csrf_token.clone(),
            may_import: u.user.role.may_change_in_bulk(),
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", axum::routing::post(login::logout))
        .route("/contacts", get(contacts::list))
        .route("/contacts/{id}", get(contacts::show))
        .route("/contacts/{id}/merge", axum::routing::post(contacts::merge))
        .route(
            "/contacts/{id}/stage",
            axum::routing::post(contacts::set_stage),
        )
        .route(
            "/lead-magnets",
            get(capture::lead_magnets).post(capture::create_lead_magnet),
        )
        .route(
            "/lead-magnets/{id}",
            axum::routing::post(capture::update_lead_magnet),
        )
        .route(
            "/lead-magnets/{id}/delete",
            axum::routing::post(capture::delete_lead_magnet),
        )
        .route("/forms", get(capture::forms).post(capture::create_form))
        .route("/forms/{id}", axum::routing::post(capture::update_form))
        .route(
            "/forms/{id}/delete",
            axum::routing::post(capture::delete_form),
        )
        .route(
            "/import",
            get(import::show)
                .post(import::submit)
                .layer(axum::extract::DefaultBodyLimit::max(import::MAX_UPLOAD)),
        )
        .route("/scoring", get(scoring::show).post(scoring::submit))
        .route("/segments", get(segments::list).post(segments::create))
        .route("/segments/preview", axum::routing::post(segments::preview))
        .route(
            "/segments/{id}/delete",
            axum::routing::post(segments::delete),
        )
        .route("/segments/{id}/members.csv", get(segments::export))
        .route("/static/{*path}", get(asset))
}

async fn home(_user: WebUser) -> Redirect {
    Redirect::to("/contacts")
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

async fn asset(Path(path): Path<String>) -> Response {
    match StaticFiles::get(&path) {
        Some(file) => (
            [
                (CONTENT_TYPE, content_type(&path).to_owned()),
                (CACHE_CONTROL, "public, max-age=3600".to_owned()),
            ],
            file.data,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
