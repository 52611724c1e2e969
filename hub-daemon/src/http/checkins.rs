//! `POST /api/checkins/{patient}`: a carer's or patient's check-in through the local HTTP API (the home tablet),
//! the same message as on `{prefix}/checkins/{patient}`. Answers only after the core has committed it.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;

use super::HttpState;
use crate::core::{Acknowledge, CheckinInbound, CoreInput};

/// Tells the waiting request that the check-in's fate is committed.
struct Committed(oneshot::Sender<()>);

impl Acknowledge for Committed {
    fn committed(self: Box<Self>, _frame_ack: Option<Vec<u8>>) {
        let _ = self.0.send(());
    }
}

pub(super) async fn post(
    State(s): State<HttpState>,
    Path(patient): Path<String>,
    body: Bytes,
) -> Response {
    if s.cfg.patient(&patient).is_none() {
        return (StatusCode::NOT_FOUND, "unknown patient").into_response();
    }
    // A malformed check-in is refused with the reason, so the tablet can show it; nothing is stored.
    let parsed = match hearth_protocol::json::parse_checkin(&body) {
        Ok(m) => m,
        Err(e) => {
            metrics::counter!(crate::telemetry::CHECKINS_REFUSED).increment(1);
            return (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).into_response();
        }
    };
    let (tx, rx) = oneshot::channel();
    let input = CoreInput::Checkin(CheckinInbound {
        patient,
        received_at: s.clock_ms(),
        payload: body,
        parsed: Ok(parsed),
        ack: Some(Box::new(Committed(tx))),
    });
    if s.core.send(input).await.is_err() || rx.await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "hub stopping").into_response();
    }
    (StatusCode::ACCEPTED, "committed").into_response()
}
