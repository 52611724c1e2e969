//! "Home silent": a home from which nothing (heartbeat or alert) has arrived for `homes.silent_after_s`.
//!
//! [`check`] is one pass given `now`; the service calls it on a timer with its clock, tests call it with a
//! [`crate::clock::ManualClock`]. Each home is reported once per silence (and audited), until it speaks again.

use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, Millis};
use crate::live::LiveEvent;
use crate::store::{Store, StoreError};

pub const HOMES_SILENT: &str = "community_homes_silent_total";

/// Marks homes silent as of `now` and returns the newly silent ones.
pub async fn check(
    store: &Store,
    now: Millis,
    silent_after_s: u64,
    live: &broadcast::Sender<LiveEvent>,
) -> Result<Vec<String>, StoreError> {
    let after_ms = i64::try_from(silent_after_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    let newly = store.mark_silent(now, after_ms).await?;
    for home in &newly {
        metrics::counter!(HOMES_SILENT).increment(1);
        tracing::warn!(%home, silent_after_s, "home silent: no heartbeat or alert");
    }
    if !newly.is_empty() {
        let _ = live.send(LiveEvent::Homes);
    }
    Ok(newly)
}

/// Runs [`check`] every `every` until `shutdown`.
pub async fn run(
    store: Store,
    clock: impl Clock,
    silent_after_s: u64,
    every: Duration,
    live: broadcast::Sender<LiveEvent>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        if let Err(e) = check(&store, clock.now_ms(), silent_after_s, &live).await {
            tracing::error!(error = %e, "silent-home check failed");
        }
    }
}
