//! Personal baselines from the community hub: a clinician agrees a patient's own threshold (or withdraws it) in the
//! dashboard, and the home applies it — `{prefix}/baselines/{home}`. Schema: `schema/baseline.schema.json`.

use super::*;

/// A personal threshold agreed (or withdrawn) by a named clinician.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct BaselineMessage {
    /// Unique per message, for the audit trail; a resend is recognised.
    pub baseline_id: String,
    pub patient: String,
    /// Observation code the threshold is on.
    pub code: String,
    /// Exactly one of `below` and `above`: the direction and the threshold, in the code's canonical unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// Priority when breached; required unless `revoke`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub for_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hysteresis: Option<f64>,
    pub agreed_by: String,
    #[serde(serialize_with = "ser_time")]
    pub agreed_at: i64,
    pub reason: String,
    /// The baseline stops applying then (UTC ms; RFC 3339 on the wire).
    #[serde(
        serialize_with = "ser_opt_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub until: Option<i64>,
    /// Withdraws the patient's baseline for this code and direction (the default rule applies again).
    #[serde(skip_serializing_if = "core::ops::Not::not")]
    pub revoke: bool,
}

impl BaselineMessage {
    /// The threshold and whether it is a lower limit.
    pub fn threshold(&self) -> (f64, bool) {
        match (self.below, self.above) {
            (Some(b), _) => (b, true),
            (_, Some(a)) => (a, false),
            _ => (f64::NAN, true),
        }
    }
}

/// `{prefix}/baselines/{home}`.
pub fn baseline_topic(prefix: &str, home: &str) -> String {
    format!("{prefix}/baselines/{home}")
}

/// Parses a baseline payload with the same limits as [`parse_reading`].
pub fn parse_baseline(payload: &[u8]) -> Result<BaselineMessage, JsonError> {
    baseline_from_node(parse_tree(payload)?)
}

fn baseline_from_node(node: Node) -> Result<BaselineMessage, JsonError> {
    let mut f = Fields::new(node)?;
    let non_empty = |n: Node, field: &'static str| {
        let s = string(n, field)?;
        if s.trim().is_empty() {
            Err(JsonError::BadField { field })
        } else {
            Ok(s)
        }
    };
    let finite = |n: Node, field: &'static str| {
        let v = number(n, field)?;
        if v.is_finite() {
            Ok(v)
        } else {
            Err(JsonError::BadField { field })
        }
    };
    let msg = BaselineMessage {
        baseline_id: non_empty(f.required("baseline_id")?, "baseline_id")?,
        patient: non_empty(f.required("patient")?, "patient")?,
        code: non_empty(f.required("code")?, "code")?,
        below: opt(f.take("below")?, |n| finite(n, "below"))?,
        above: opt(f.take("above")?, |n| finite(n, "above"))?,
        severity: opt(f.take("severity")?, Severity::from_node)?,
        for_s: opt(f.take("for_s")?, |n| u64_field(n, "for_s"))?,
        hysteresis: opt(f.take("hysteresis")?, |n| {
            let v = finite(n, "hysteresis")?;
            if v >= 0.0 {
                Ok(v)
            } else {
                Err(JsonError::BadField {
                    field: "hysteresis",
                })
            }
        })?,
        agreed_by: non_empty(f.required("agreed_by")?, "agreed_by")?,
        agreed_at: time_field(f.required("agreed_at")?, "agreed_at")?,
        reason: non_empty(f.required("reason")?, "reason")?,
        until: opt_time(f.take("until")?, "until")?,
        revoke: opt(f.take("revoke")?, |n| match n {
            Node::Bool(b) => Ok(b),
            _ => Err(JsonError::BadField { field: "revoke" }),
        })?
        .unwrap_or(false),
    };
    match (msg.below, msg.above) {
        (Some(_), Some(_)) => return Err(JsonError::BadField { field: "above" }),
        (None, None) => return Err(JsonError::MissingField { field: "below" }),
        _ => {}
    }
    if !msg.revoke && msg.severity.is_none() {
        return Err(JsonError::MissingField { field: "severity" });
    }
    Ok(msg)
}

deserialize_via_tree!(BaselineMessage, baseline_from_node);
