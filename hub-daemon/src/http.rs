//! Local HTTP (loopback by default): health, readiness, Prometheus metrics and a read-only technician API.
//! The database is the source of truth; these views read it and may lag the core by one commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;

use crate::clock::Millis;
use crate::config::Config;
use crate::core::{CoreInput, alert_message};
use crate::store::Store;

mod checkins;

#[derive(Clone)]
pub struct HttpState {
    pub cfg: Arc<Config>,
    pub store: Store,
    pub metrics: PrometheusHandle,
    pub ready: Arc<AtomicBool>,
    /// Bluetooth radio health, when the Bluetooth source runs.
    pub ble: Option<Arc<crate::sources::ble::health::BleHealth>>,
    /// Check-ins go to the core like any source's input.
    pub core: tokio::sync::mpsc::Sender<CoreInput>,
    /// The daemon's clock (injected, as everywhere).
    pub now: Arc<dyn Fn() -> Millis + Send + Sync>,
}

impl HttpState {
    fn clock_ms(&self) -> Millis {
        (self.now)()
    }
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/devices", get(devices))
        .route("/api/alerts", get(alerts))
        .route("/api/outbox", get(outbox))
        .route("/api/quarantine", get(quarantine))
        .route("/api/ble", get(ble))
        .route("/api/checkins/{patient}", post(checkins::post))
        .with_state(state)
}

async fn readyz(State(s): State<HttpState>) -> Response {
    if s.ready.load(Ordering::SeqCst) {
        "ready".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response()
    }
}

async fn metrics(State(s): State<HttpState>) -> String {
    s.metrics.render()
}

/// Errors never echo SQL or internals to clients; the detail goes to the log.
fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "technician API query failed");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
}

/// Radio health of the enrolled Bluetooth devices and the adapter (404 when the Bluetooth source is off).
async fn ble(State(s): State<HttpState>) -> Response {
    match &s.ble {
        Some(h) => Json(h.snapshot()).into_response(),
        None => (StatusCode::NOT_FOUND, "the Bluetooth source is not running").into_response(),
    }
}

async fn devices(State(s): State<HttpState>) -> Response {
    match s.store.devices().await {
        Ok(rows) => {
            let out: Vec<_> = rows
                .into_iter()
                .map(|d| {
                    serde_json::json!({
                        "id": d.id,
                        "patient": s.cfg.patient_of(&d.id),
                        "last_seq": d.last_seq,
                        "last_seen_at": hearth_protocol::json::format_rfc3339_millis(d.last_seen_at),
                        "last_observed_at": d.last_observed_at.map(hearth_protocol::json::format_rfc3339_millis),
                        "battery": d.battery,
                    })
                })
                .collect();
            Json(out).into_response()
        }
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct AlertQuery {
    state: Option<String>,
}

async fn alerts(State(s): State<HttpState>, Query(q): Query<AlertQuery>) -> Response {
    match s.store.alerts(q.state.as_deref() == Some("open")).await {
        Ok(rows) => Json(
            rows.iter()
                .map(|a| alert_message(&s.cfg.home.id, a))
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => internal(e),
    }
}

async fn outbox(State(s): State<HttpState>) -> Response {
    let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    let depth = match s.store.outbox_depth().await {
        Ok(d) => d,
        Err(e) => return internal(e),
    };
    match s.store.outbox_pending(100).await {
        Ok(rows) => Json(serde_json::json!({
            "depth": depth.0,
            "oldest_age_s": depth.1.map(|t| (now - t).max(0) / 1000),
            "pending": rows.iter().map(|r| serde_json::json!({
                "alert_id": r.alert_id, "rev": r.rev, "patient": r.patient,
                "created_at": hearth_protocol::json::format_rfc3339_millis(r.created_at), "attempts": r.attempts,
            })).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<i64>,
}

async fn quarantine(State(s): State<HttpState>, Query(q): Query<Limit>) -> Response {
    match s
        .store
        .quarantine(q.limit.unwrap_or(100).clamp(1, 10_000))
        .await
    {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => internal(e),
    }
}
