//! Prometheus metrics: request counts and latencies per route, in the text exposition format.
//! A handful of atomics and one mutex-guarded map keyed by route: enough for an operator's
//! dashboard without a metrics framework in the build.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Debug, Default)]
struct RouteStats {
    count: u64,
    sum_seconds: f64,
    buckets: [u64; BUCKETS.len()],
}

#[derive(Debug, Default)]
pub struct Metrics {
    events_ingested: std::sync::atomic::AtomicU64,
    /// (method, route, status) → count
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, RouteStats>>,
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((method.to_owned(), route.to_owned(), status))
                .or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            let s = l.entry(route.to_owned()).or_default();
            s.count += 1;
            s.sum_seconds += seconds;
            for (i, b) in BUCKETS.iter().enumerate() {
                if seconds <= *b {
                    s.buckets[i] += 1;
                }
            }
        }
    }

    pub fn events_ingested(&self, n: u64) {
        self.events_ingested
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP orchard_events_ingested_total Events stored through the API.\n\
             # TYPE orchard_events_ingested_total counter\n\
             orchard_events_ingested_total {}",
            self.events_ingested
                .load(std::sync::atomic::Ordering::Relaxed)
        );
        out.push_str(
            "# HELP orchard_http_requests_total HTTP requests by method, route and status.\n",
        );
        out.push_str("# TYPE orchard_http_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((method, route, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "orchard_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP orchard_http_request_duration_seconds Time to answer, by route.\n");
        out.push_str("# TYPE orchard_http_request_duration_seconds histogram\n");
        if let Ok(l) = self.latency.lock() {
            for (route, s) in l.iter() {
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "orchard_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}",
                        s.buckets[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "orchard_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n\
                     orchard_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n\
                     orchard_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    s.count, s.sum_seconds, s.count
                );
            }
        }
        out
    }
}

/// Middleware: times every request and files it under its route pattern (never the raw path,
/// which would let a caller grow the metric set without bound).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let start = Instant::now();
    let resp = next.run(req).await;
    state.metrics.observe(
        &method,
        &route,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

pub async fn render(State(state): State<AppState>) -> Response {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.observe("GET", "/healthz", 200, 0.002);
        m.observe("GET", "/healthz", 200, 0.3);
        let text = m.render();
        assert!(text.contains(
            "orchard_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"
        ));
        assert!(text.contains("le=\"0.0025\"} 1"));
        assert!(text.contains("le=\"1\"} 2"));
        assert!(text.contains("orchard_http_request_duration_seconds_count{route=\"/healthz\"} 2"));
    }
}
