//! The nurse dashboard and its HTTP API (axum): server-rendered HTML with a little JavaScript for live updates.
//!
//! - [`auth`]: login, sessions (HttpOnly, SameSite=Strict, Secure cookies), CSRF tokens, roles.
//! - [`pages`]: caseload queue, alert, patient and homes pages.
//! - [`charts`]: server-side SVG trend charts with the NEWS2 bands shaded.
//! - [`actions`]: acknowledge / assign / snooze / resolve → audit, then `{prefix}/actions/{home}`.
//! - [`events`]: Server-Sent Events that tell open pages to refresh.
//! - `/fhir/…`: the FHIR R4 export ([`crate::fhir`]).

pub mod actions;
pub mod auth;
pub mod charts;
pub mod events;
pub mod pages;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rumqttc::AsyncClient;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::clock::AnyClock;
use crate::config::Config;
use crate::live::LiveEvent;
use crate::store::{Store, StoreError};

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    pub cfg: Arc<Config>,
    pub store: Store,
    pub clock: AnyClock,
    /// Publishes nurses' actions to the homes.
    pub mqtt: AsyncClient,
    pub live: broadcast::Sender<LiveEvent>,
    pub shutdown: CancellationToken,
}

/// A handler's failure. Never echoes SQL or internal detail to the client.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("not logged in")]
    Unauthorized,
    #[error("{0}")]
    Conflict(String),
    #[error("could not send to the home")]
    Unavailable,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, text) = match &self {
            WebError::Store(e) => {
                tracing::error!(error = %e, "request failed in the store");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error".to_string(),
                )
            }
            WebError::NotFound => (StatusCode::NOT_FOUND, "not found".into()),
            WebError::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            WebError::Forbidden(m) => (StatusCode::FORBIDDEN, format!("forbidden: {m}")),
            WebError::Unauthorized => (StatusCode::UNAUTHORIZED, "not logged in".into()),
            WebError::Conflict(m) => (StatusCode::CONFLICT, m.clone()),
            WebError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "recorded, but could not be sent to the home; try again".into(),
            ),
        };
        (status, pages::error_page(status, &text)).into_response()
    }
}

/// The dashboard's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::queue))
        .route("/queue/rows", get(pages::queue_rows))
        .route("/alerts/{id}", get(pages::alert))
        .route("/alerts/{id}/actions", post(actions::act))
        .route("/patients/{id}", get(pages::patient))
        .route("/homes", get(pages::homes))
        .route("/events", get(events::sse))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/fhir/Observation", get(crate::fhir::observations))
        .route(
            "/fhir/Patient/{id}/$everything",
            get(crate::fhir::everything),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/static/app.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], pages::CSS) }),
        )
        .route(
            "/static/queue.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], pages::QUEUE_JS) }),
        )
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Headers on every response: a strict Content-Security-Policy (scripts and styles from our origin only, no
/// framing, forms post only to us), no MIME sniffing, no referrer leaving the site, no caching of patient pages.
async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// Serves on `listener` until `shutdown`.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    let shutdown = state.shutdown.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
