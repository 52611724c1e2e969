//! Threshold rules with minimum duration, hysteresis and re-arm.
//!
//! Rules on the same patient, code and direction (say SpO2 < 94 medium and SpO2 < 92 high) form one *episode
//! group*: at most one alert is open for it, its severity is that of the most severe rule breached so far, and it
//! resolves only when the value has recovered past every threshold by that rule's hysteresis. A later breach raises a
//! new alert (re-arm). Durations are measured in observation time, so replayed history behaves like live data.
//!
//! Everything here is a synchronous function of (state, value, time): no clock, no I/O.

use std::collections::BTreeMap;

use hearth_protocol::Code;
use hearth_protocol::json::Severity;
use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::config;

/// One configured threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub name: String,
    pub code: Code,
    pub below: bool,
    pub threshold: f64,
    pub severity: Severity,
    pub for_ms: Millis,
    pub hysteresis: f64,
    /// A personal baseline stops applying at this time (UTC ms).
    pub until: Option<Millis>,
    /// For a personal baseline: who agreed it and why, in words (for the SBARD background).
    pub agreement: Option<String>,
}

impl Threshold {
    pub fn from_config(r: &config::Rule) -> Threshold {
        Threshold {
            name: r.display_name(),
            code: r.code(),
            below: r.is_below(),
            threshold: r.threshold(),
            severity: r.severity,
            for_ms: (r.for_s as Millis).saturating_mul(1000),
            hysteresis: r.hysteresis,
            until: r
                .until
                .as_deref()
                .and_then(|u| hearth_protocol::json::parse_rfc3339_millis(u).ok()),
            agreement: r
                .agreed_by
                .as_ref()
                .map(|by| format!("agreed by {by}: {}", r.reason.as_deref().unwrap_or(""))),
        }
    }

    /// A personal baseline sent by the community hub.
    pub fn from_baseline(b: &hearth_protocol::json::BaselineMessage) -> Option<Threshold> {
        let code = Code::from_name(&b.code)?;
        let (threshold, below) = b.threshold();
        Some(Threshold {
            name: format!(
                "{}_{}_{}_personal",
                b.code,
                if below { "below" } else { "above" },
                threshold
            ),
            code,
            below,
            threshold,
            severity: b.severity?,
            for_ms: (b.for_s.unwrap_or(0) as Millis).saturating_mul(1000),
            hysteresis: b.hysteresis.unwrap_or(0.0),
            until: b.until,
            agreement: Some(format!("agreed by {}: {}", b.agreed_by, b.reason)),
        })
    }

    /// `spo2 below 88 (agreed by …)`, for a nurse.
    pub fn describe(&self) -> String {
        format!(
            "personal threshold {} {} {} ({})",
            self.code.as_str(),
            if self.below { "below" } else { "above" },
            self.threshold,
            self.agreement.as_deref().unwrap_or("default")
        )
    }

    fn breached(&self, v: f64) -> bool {
        if self.below {
            v < self.threshold
        } else {
            v > self.threshold
        }
    }

    /// Recovered past the threshold by the hysteresis band.
    fn cleared(&self, v: f64) -> bool {
        if self.below {
            v >= self.threshold + self.hysteresis
        } else {
            v <= self.threshold - self.hysteresis
        }
    }

    /// The episode group this rule belongs to.
    pub fn group_key(&self) -> String {
        group_key(self.code, self.below)
    }
}

pub fn group_key(code: Code, below: bool) -> String {
    format!(
        "clinical:{}:{}",
        code.as_str(),
        if below { "below" } else { "above" }
    )
}

/// The rules that apply to each patient: defaults, with a patient's own rule (an agreed personal baseline)
/// replacing the default of the same code and direction until the baseline expires.
#[derive(Debug, Clone, Default)]
pub struct RuleBook {
    own: BTreeMap<String, Vec<Threshold>>,
    defaults: Vec<Threshold>,
}

impl RuleBook {
    pub fn from_config(c: &config::Config) -> RuleBook {
        let defaults: Vec<Threshold> = c.rules.iter().map(Threshold::from_config).collect();
        let own = c
            .patients
            .iter()
            .map(|p| {
                let own = p.rules.iter().map(Threshold::from_config).collect();
                (p.id.clone(), own)
            })
            .collect();
        RuleBook { own, defaults }
    }

    /// Puts a baseline from the community hub in place of the patient's own rule of the same code and direction.
    pub fn set_override(&mut self, patient: &str, t: Threshold) {
        let own = self.own.entry(patient.to_string()).or_default();
        own.retain(|r| !(r.code == t.code && r.below == t.below));
        own.push(t);
    }

    /// Withdraws the patient's own rule of `code` and direction: the default applies again.
    pub fn remove_override(&mut self, patient: &str, code: Code, below: bool) {
        if let Some(own) = self.own.get_mut(patient) {
            own.retain(|r| !(r.code == code && r.below == below));
        }
    }

    /// The patient's own rules (personal baselines), expired ones included.
    pub fn own(&self, patient: &str) -> &[Threshold] {
        self.own.get(patient).map(Vec::as_slice).unwrap_or_default()
    }

    /// Rules for `patient` on `code` at `now`, grouped by direction (below first).
    pub fn groups(&self, patient: &str, code: Code, now: Millis) -> [Vec<&Threshold>; 2] {
        let own: Vec<&Threshold> = self
            .own
            .get(patient)
            .map(|o| {
                o.iter()
                    .filter(|r| r.code == code && r.until.is_none_or(|u| now < u))
                    .collect()
            })
            .unwrap_or_default();
        let pick = |below: bool| {
            let mine: Vec<&Threshold> = own.iter().copied().filter(|r| r.below == below).collect();
            if mine.is_empty() {
                self.defaults
                    .iter()
                    .filter(|r| r.code == code && r.below == below)
                    .collect()
            } else {
                mine
            }
        };
        [pick(true), pick(false)]
    }
}

/// Persisted per episode group: when each rule's continuous breach began, and whether an alert is open.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupState {
    /// Rule name → observation time its current continuous breach began.
    pub breach_since: BTreeMap<String, Millis>,
    /// Severity of the open alert, if one is open.
    pub open: Option<Severity>,
}

/// What the core must do with the group's alert after a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    Raise { severity: Severity, rule: String },
    Upgrade { severity: Severity, rule: String },
    Resolve { rule: String },
}

/// Evaluates one value (canonical unit, observed at `t`) against one episode group.
pub fn evaluate(
    rules: &[&Threshold],
    state: &mut GroupState,
    v: f64,
    t: Millis,
) -> Option<Transition> {
    if rules.is_empty() {
        return None;
    }
    // Minimum duration: a breach must hold across consecutive readings; any non-breaching reading resets it.
    for r in rules {
        if r.breached(v) {
            let since = state.breach_since.entry(r.name.clone()).or_insert(t);
            // Readings of a group arrive in observation order per device; from another device they may not.
            if *since > t {
                *since = t;
            }
        } else {
            state.breach_since.remove(&r.name);
        }
    }
    let firing = rules
        .iter()
        .filter(|r| {
            state
                .breach_since
                .get(&r.name)
                .is_some_and(|since| t - since >= r.for_ms)
        })
        .max_by_key(|r| r.severity);
    match (state.open, firing) {
        (None, Some(r)) => {
            state.open = Some(r.severity);
            Some(Transition::Raise {
                severity: r.severity,
                rule: r.name.clone(),
            })
        }
        (Some(open), Some(r)) if r.severity > open => {
            state.open = Some(r.severity);
            Some(Transition::Upgrade {
                severity: r.severity,
                rule: r.name.clone(),
            })
        }
        (Some(_), _) if rules.iter().all(|r| r.cleared(v)) => {
            state.open = None;
            let rule = rules
                .iter()
                .max_by_key(|r| r.severity)
                .map(|r| r.name.clone())
                .unwrap_or_default();
            Some(Transition::Resolve { rule })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        name: &str,
        below: bool,
        threshold: f64,
        severity: Severity,
        for_s: i64,
        hyst: f64,
    ) -> Threshold {
        Threshold {
            name: name.into(),
            code: Code::Spo2,
            below,
            threshold,
            severity,
            for_ms: for_s * 1000,
            hysteresis: hyst,
            until: None,
            agreement: None,
        }
    }

    const MIN: Millis = 60_000;

    #[test]
    fn one_alert_per_episode_then_resolve_then_rearm() {
        let r = rule("spo2_below_92", true, 92.0, Severity::High, 0, 1.0);
        let rules = [&r];
        let mut s = GroupState::default();
        assert_eq!(
            evaluate(&rules, &mut s, 90.0, 0),
            Some(Transition::Raise {
                severity: Severity::High,
                rule: "spo2_below_92".into()
            })
        );
        assert_eq!(evaluate(&rules, &mut s, 89.0, MIN), None, "same episode");
        assert_eq!(
            evaluate(&rules, &mut s, 92.5, 2 * MIN),
            None,
            "inside hysteresis band"
        );
        assert_eq!(
            evaluate(&rules, &mut s, 93.0, 3 * MIN),
            Some(Transition::Resolve {
                rule: "spo2_below_92".into()
            })
        );
        assert_eq!(evaluate(&rules, &mut s, 95.0, 4 * MIN), None);
        assert!(
            matches!(
                evaluate(&rules, &mut s, 91.0, 5 * MIN),
                Some(Transition::Raise { .. })
            ),
            "re-armed"
        );
    }

    #[test]
    fn duration_must_hold_continuously() {
        let r = rule("hr", false, 110.0, Severity::Medium, 120, 0.0);
        let rules = [&r];
        let mut s = GroupState::default();
        assert_eq!(evaluate(&rules, &mut s, 120.0, 0), None);
        assert_eq!(evaluate(&rules, &mut s, 120.0, MIN), None);
        assert_eq!(
            evaluate(&rules, &mut s, 100.0, 90_000),
            None,
            "a normal reading resets the timer"
        );
        assert_eq!(evaluate(&rules, &mut s, 120.0, 2 * MIN), None);
        assert_eq!(evaluate(&rules, &mut s, 120.0, 3 * MIN), None);
        assert!(matches!(
            evaluate(&rules, &mut s, 121.0, 4 * MIN),
            Some(Transition::Raise { .. })
        ));
    }

    #[test]
    fn severity_upgrades_on_the_same_alert_and_never_downgrades() {
        let medium = rule("spo2_below_94", true, 94.0, Severity::Medium, 0, 1.0);
        let high = rule("spo2_below_92", true, 92.0, Severity::High, 0, 1.0);
        let rules = [&medium, &high];
        let mut s = GroupState::default();
        assert_eq!(
            evaluate(&rules, &mut s, 93.0, 0),
            Some(Transition::Raise {
                severity: Severity::Medium,
                rule: "spo2_below_94".into()
            })
        );
        assert_eq!(
            evaluate(&rules, &mut s, 91.0, MIN),
            Some(Transition::Upgrade {
                severity: Severity::High,
                rule: "spo2_below_92".into()
            })
        );
        assert_eq!(
            evaluate(&rules, &mut s, 93.0, 2 * MIN),
            None,
            "still below 94: no downgrade, no resolve"
        );
        assert_eq!(
            evaluate(&rules, &mut s, 94.5, 3 * MIN),
            None,
            "inside the 94 rule's hysteresis"
        );
        assert!(matches!(
            evaluate(&rules, &mut s, 95.0, 4 * MIN),
            Some(Transition::Resolve { .. })
        ));
    }

    #[test]
    fn patient_override_replaces_default_of_same_code_and_direction() {
        let raw = r#"
[home]
id = "h"
[[patients]]
id = "a"
[[patients]]
id = "b"
[[patients.rules]]
code = "spo2"
below = 88
severity = "high"
agreed_by = "Dr A"
agreed_at = "2026-11-01T10:00:00Z"
reason = "COPD"
until = "2027-01-01T00:00:00Z"
[[rules]]
code = "spo2"
below = 92
severity = "high"
[[rules]]
code = "spo2"
above = 99
severity = "low"
"#;
        let c = config::Config::parse(raw, std::path::Path::new("t")).unwrap();
        let book = RuleBook::from_config(&c);
        let now = 1_795_000_000_000; // 2026-11-18
        let [below_a, above_a] = book.groups("a", Code::Spo2, now);
        assert_eq!(below_a.len(), 1);
        assert_eq!(below_a[0].threshold, 92.0);
        assert_eq!(above_a.len(), 1);
        let [below_b, above_b] = book.groups("b", Code::Spo2, now);
        assert_eq!(below_b.len(), 1);
        assert_eq!(below_b[0].threshold, 88.0);
        assert_eq!(
            above_b.len(),
            1,
            "the override replaces only its own direction"
        );
        let expired = 1_830_000_000_000; // 2027-12
        let [below_b, _] = book.groups("b", Code::Spo2, expired);
        assert_eq!(
            below_b[0].threshold, 92.0,
            "an expired baseline gives way to the default"
        );
    }
}
