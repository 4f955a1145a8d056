//! The HTTP side: `/healthz` (the process is up), `/readyz` (registered with a router,
//! or standalone, and not shutting down) and `/metrics` (Prometheus / OpenMetrics text).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;

/// What the HTTP handlers read.
#[derive(Debug, Clone)]
pub struct HttpState {
    /// Registered (or standalone) and serving.
    pub ready: Arc<AtomicBool>,
    /// Shutting down.
    pub stopping: Arc<AtomicBool>,
    /// Metrics to encode.
    pub metrics: Arc<Metrics>,
}

/// The HTTP routes.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(s): State<HttpState>) -> impl IntoResponse {
    if s.stopping.load(Ordering::Acquire) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: shutting down\n",
        )
    } else if s.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: not registered with a router yet\n",
        )
    }
}

async fn metrics(State(s): State<HttpState>) -> impl IntoResponse {
    let m = s.metrics.clone();
    match tokio::task::spawn_blocking(move || m.encode()).await {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("metrics: {e}\n")).into_response(),
    }
}
