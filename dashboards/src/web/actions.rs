//! Nurses' actions on an alert: recorded and audited here first, then sent to the home as an
//! [`ActionMessage`] on `{prefix}/actions/{home}` (QoS 1), where the home hub applies it (an acknowledgement stops
//! its escalation).

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use hearth_protocol::json::{self, ActionKind, ActionMessage};
use rumqttc::QoS;
use serde::Deserialize;

use super::auth::CurrentUser;
use super::{AppState, WebError};
use crate::clock::Clock;
use crate::live::LiveEvent;

/// Longest free text accepted in a reason, outcome or assignee.
pub const MAX_TEXT: usize = 500;
/// Longest snooze, minutes (a day: beyond that the incident should be resolved or reassigned).
pub const MAX_SNOOZE_MIN: i64 = 24 * 60;

#[derive(Deserialize)]
pub struct ActionForm {
    pub csrf: String,
    pub action: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub assignee: String,
    #[serde(default)]
    pub snooze_minutes: String,
    /// Where to go afterwards: `queue` or `alert`.
    #[serde(default)]
    pub back: String,
}

fn text(field: &'static str, v: &str) -> Result<String, WebError> {
    let v = v.trim();
    if v.is_empty() {
        return Err(WebError::BadRequest(format!("{field} is required")));
    }
    if v.chars().count() > MAX_TEXT {
        return Err(WebError::BadRequest(format!("{field} is too long")));
    }
    Ok(v.to_string())
}

pub async fn act(
    State(state): State<AppState>,
    Path(id): Path<String>,
    user: CurrentUser,
    Form(f): Form<ActionForm>,
) -> Result<Response, WebError> {
    user.check_csrf(&f.csrf)?;
    user.require_nurse()?;
    let action = ActionKind::from_name(&f.action)
        .ok_or_else(|| WebError::BadRequest("unknown action".into()))?;
    let alert = state.store.alert(&id).await?.ok_or(WebError::NotFound)?;
    if alert.is_open == 0 {
        return Err(WebError::Conflict("this incident is already closed".into()));
    }
    let now = state.clock.now_ms();
    let mut msg = ActionMessage {
        action_id: uuid::Uuid::new_v4().to_string(),
        alert_id: alert.id.clone(),
        action,
        by: user.username.clone(),
        at: now,
        reason: None,
        until: None,
        assignee: None,
    };
    match action {
        ActionKind::Acknowledge => {}
        ActionKind::Assign => msg.assignee = Some(text("assignee", &f.assignee)?),
        ActionKind::Snooze => {
            msg.reason = Some(text("reason", &f.reason)?);
            let minutes: i64 = f.snooze_minutes.trim().parse().map_err(|_| {
                WebError::BadRequest("snooze minutes must be a whole number".into())
            })?;
            if !(1..=MAX_SNOOZE_MIN).contains(&minutes) {
                return Err(WebError::BadRequest(format!(
                    "snooze between 1 and {MAX_SNOOZE_MIN} minutes"
                )));
            }
            msg.until = Some(now + minutes * 60_000);
        }
        ActionKind::Resolve => msg.reason = Some(text("outcome", &f.reason)?),
    }
    let payload =
        serde_json::to_string(&msg).map_err(|_| WebError::BadRequest("unencodable".into()))?;
    // The format's own parser is the contract the home applies: refuse here what the home would refuse.
    json::parse_action(payload.as_bytes()).map_err(|e| WebError::BadRequest(e.to_string()))?;
    state
        .store
        .record_action(&msg, &alert.home, &payload)
        .await?;
    let topic = json::action_topic(&state.cfg.mqtt.topic_prefix, &alert.home);
    if let Err(e) = state
        .mqtt
        .publish(topic, QoS::AtLeastOnce, false, payload)
        .await
    {
        tracing::error!(error = %e, "cannot queue a nurse's action for the home");
        return Err(WebError::Unavailable);
    }
    tracing::info!(user = %user.username, action = action.as_str(), home = %alert.home, "action sent to home");
    let _ = state.live.send(LiveEvent::Alerts(vec![alert.id.clone()]));
    let to = if f.back == "alert" {
        format!("/alerts/{}", alert.id)
    } else {
        "/".to_string()
    };
    Ok(Redirect::to(&to).into_response())
}
