//! Orchard's HTTP surface: the JSON API under `/api/v1` (with its OpenAPI document), the
//! server-rendered web interface, `/healthz` and Prometheus `/metrics`. Handlers reach storage
//! only through the `orchard-store` traits; the binary decides which backend that is.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use orchard_core::stage::Bands;
use orchard_store::Store;
use serde_json::json;

pub mod api;
pub mod auth;
pub mod error;
pub mod metrics;
pub mod public;
pub mod ui;

/// The key that signs tracking links; never printed.
#[derive(Clone)]
pub struct TrackingKey(pub Vec<u8>);

impl std::fmt::Debug for TrackingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TrackingKey([redacted])")
    }
}

/// Settings the web layer needs; the binary fills them from configuration.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Signs open-pixel and click-redirect links (shared by every process through the store).
    pub tracking_key: TrackingKey,
    /// Mark cookies `Secure` (set when Orchard is served over HTTPS).
    pub secure_cookies: bool,
    pub session_hours: i64,
    pub bands: Bands,
    /// Form submissions one client address may make per form per minute.
    pub form_submissions_per_minute: u32,
    /// Page views one client address may record per minute.
    pub page_views_per_minute: u32,
    /// The segment builder's live count evaluates at most this many contacts, and estimates
    /// from them when there are more (`api::segments::PreviewIn::estimate_from`).
    pub segment_preview_sample: i64,
    /// How long a backtest may run before it is stopped (`api::scoring::run_backtest`).
    pub backtest_limit: std::time::Duration,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            tracking_key: TrackingKey(auth::random_secret().into_bytes()),
            secure_cookies: false,
            session_hours: 12,
            bands: Bands::default(),
            form_submissions_per_minute: 10,
            page_views_per_minute: 600,
            segment_preview_sample: api::segments::LIVE_ESTIMATE_FROM,
            backtest_limit: api::scoring::BACKTEST_LIMIT,
        }
    }
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<WebConfig>,
    pub metrics: Arc<metrics::Metrics>,
    pub templates: Arc<ui::Templates>,
    /// Submissions per client address and form per minute.
    pub form_limiter: Arc<public::ratelimit::RateLimiter>,
    /// Page-view beacons per client address per minute.
    pub beacon_limiter: Arc<public::ratelimit::RateLimiter>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("backend", &self.store.backend())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, config: WebConfig) -> Self {
        Self {
            store,
            metrics: Arc::new(metrics::Metrics::default()),
            templates: Arc::new(ui::Templates::new()),
            form_limiter: Arc::new(public::ratelimit::RateLimiter::new(
                config.form_submissions_per_minute,
                std::time::Duration::from_secs(60),
            )),
            beacon_limiter: Arc::new(public::ratelimit::RateLimiter::new(
                config.page_views_per_minute,
                std::time::Duration::from_secs(60),
            )),
            config: Arc::new(config),
        }
    }
}

/// Requests larger than this are refused before a handler reads them.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::render))
        .merge(api::router())
        .merge(public::router())
        .merge(ui::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Liveness and readiness in one: 200 when the database answers, 503 when it does not.
async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(json!({"status": "ok", "backend": state.store.backend()})).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "backend": state.store.backend()})),
            )
                .into_response()
        }
    }
}
