//! Nurses' actions are resent until the home shows it applied them.
//!
//! An action is published QoS 1, but a home hub that is offline (its MQTT session is clean) never gets it. So an
//! acknowledgement is sent again every `mqtt.action_resend_s` until the incident's state, as the home last sent it,
//! is `acknowledged` or `resolved` (a resolution: until `resolved`), for at most a day. The same action id is
//! resent: the home's `apply_action` ignores an acknowledgement of an alert already acknowledged.

use std::time::Duration;

use hearth_protocol::json;
use rumqttc::{AsyncClient, QoS};
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, Millis};
use crate::store::{Store, StoreError};

/// Actions older than this are no longer resent.
pub const GIVE_UP_MS: Millis = 24 * 3_600_000;
pub const ACTIONS_RESENT: &str = "community_actions_resent_total";

/// One pass: resends every unconfirmed action last sent more than `resend_after_s` ago. Returns how many.
pub async fn resend_due(
    store: &Store,
    client: &AsyncClient,
    prefix: &str,
    now: Millis,
    resend_after_s: u64,
) -> Result<usize, StoreError> {
    let after = i64::try_from(resend_after_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    let due = store
        .actions_to_resend(now, now - after, now - GIVE_UP_MS)
        .await?;
    for (home, payload) in &due {
        if let Err(e) = client
            .publish(
                json::action_topic(prefix, home),
                QoS::AtLeastOnce,
                false,
                payload.clone(),
            )
            .await
        {
            tracing::warn!(error = %e, %home, "cannot queue a resent action");
        }
    }
    metrics::counter!(ACTIONS_RESENT).increment(due.len() as u64);
    Ok(due.len())
}

/// Runs [`resend_due`] every `resend_after_s` until `shutdown`.
pub async fn run(
    store: Store,
    client: AsyncClient,
    prefix: String,
    clock: impl Clock,
    resend_after_s: u64,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(resend_after_s.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        match resend_due(&store, &client, &prefix, clock.now_ms(), resend_after_s).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                actions = n,
                "nurses' actions resent to homes that have not applied them"
            ),
            Err(e) => tracing::error!(error = %e, "action resend failed"),
        }
    }
}
