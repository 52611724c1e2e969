//! Server-Sent Events: `alerts` when alerts changed, `homes` when a home went silent or came back, `reload` when this
//! page fell behind the broadcast. Pages react by fetching fresh rows; the events carry no patient data.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use super::auth::CurrentUser;
use crate::live::LiveEvent;

pub async fn sse(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.live.subscribe();
    let stop = state.shutdown.clone();
    let stream = futures_util::stream::unfold((rx, stop), |(mut rx, stop)| async move {
        let ev = tokio::select! {
            // Ends the stream so a graceful shutdown is not held open by browsers.
            _ = stop.cancelled() => return None,
            ev = rx.recv() => ev,
        };
        let out = match ev {
            Ok(LiveEvent::Alerts(ids)) => {
                Event::default().event("alerts").data(ids.len().to_string())
            }
            Ok(LiveEvent::Homes) => Event::default().event("homes").data("1"),
            Err(RecvError::Lagged(_)) => Event::default().event("reload").data("1"),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(out), (rx, stop)))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
