//! SBARD: the structured handover (Situation, Background, Assessment, Recommendation, Decision) RESTORE2 wraps
//! around NEWS2, generated for every clinical alert from what the hub holds — so the nurse who picks it up has the
//! story, not just a number.
//!
//! Pure: the core gathers the facts into [`Facts`]; [`build`] writes the fields and a short text. Times are shown
//! in the home's local time.

use hearth_protocol::Code;
use hearth_protocol::json::{Severity, SoftSign};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::clock::Millis;
use crate::rules::news2::{Band, Score};

/// Everything the handover is written from.
pub struct Facts<'a> {
    pub patient: &'a str,
    pub rule: &'a str,
    pub severity: Severity,
    pub message: &'a str,
    pub raised_at: Millis,
    pub now: Millis,
    pub tz: &'a TimeZone,
    /// The clinician-written background from configuration.
    pub background: Option<&'a str>,
    /// Agreed personal settings in force (scale 2, personal thresholds), in words.
    pub agreements: Vec<String>,
    /// The latest NEWS2 of the patient, if scored.
    pub news2: Option<&'a Score>,
    /// Latest value of each vital sign with its time.
    pub vitals: Vec<(Code, f64, Millis)>,
    /// Newer values held for a confirming reading (not in the score yet): (code, value, observed at).
    pub unconfirmed: Vec<(Code, f64, Millis)>,
    /// Soft signs from check-ins in force, with who reported them and when.
    pub soft_signs: Option<(&'a [SoftSign], &'a str, Millis)>,
    pub monitoring_raised: bool,
    /// The other open clinical alerts of the patient's incident, as messages.
    pub others: Vec<String>,
    /// What the team has done with the alert so far (acknowledged by…, snoozed until…), newest last.
    pub actions: Vec<String>,
}

/// The handover, as carried in `details.sbard`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sbard {
    pub situation: String,
    pub background: String,
    pub assessment: String,
    pub recommendation: String,
    pub decision: String,
    /// The five fields as one short text.
    pub text: String,
}

pub fn build(f: &Facts<'_>) -> Sbard {
    let situation = format!(
        "{}: {} (raised {}).",
        f.patient,
        f.message,
        local(f.tz, f.raised_at)
    );
    let background = background(f);
    let assessment = assessment(f);
    let recommendation = recommendation(f).to_string();
    let decision = if f.actions.is_empty() {
        "Awaiting a decision by the community team.".to_string()
    } else {
        f.actions.join("; ")
    };
    let text =
        format!("S: {situation} B: {background} A: {assessment} R: {recommendation} D: {decision}");
    Sbard {
        situation,
        background,
        assessment,
        recommendation,
        decision,
        text,
    }
}

fn background(f: &Facts<'_>) -> String {
    let mut parts = Vec::new();
    if let Some(b) = f.background.filter(|b| !b.trim().is_empty()) {
        parts.push(b.trim().trim_end_matches('.').to_string());
    }
    parts.extend(f.agreements.iter().cloned());
    if f.monitoring_raised {
        parts.push("monitoring raised after soft signs were reported".to_string());
    }
    if parts.is_empty() {
        "No background recorded at the home hub.".to_string()
    } else {
        format!("{}.", parts.join("; "))
    }
}

fn assessment(f: &Facts<'_>) -> String {
    let mut parts = Vec::new();
    if let Some(s) = f.news2 {
        let mut n = format!(
            "NEWS2 {} ({} band, scale {})",
            s.total,
            s.band,
            s.scale.number()
        );
        if !s.complete {
            let gaps: Vec<&str> = s
                .missing
                .iter()
                .chain(&s.stale)
                .map(|p| p.as_str())
                .collect();
            n.push_str(&format!(
                ", INCOMPLETE — at least this; not scored: {}",
                gaps.join(", ")
            ));
        }
        parts.push(n);
    }
    if !f.vitals.is_empty() {
        let v: Vec<String> = f
            .vitals
            .iter()
            .map(|(c, v, at)| {
                format!(
                    "{} {} {} at {}",
                    c.as_str(),
                    trim(*v),
                    c.unit(),
                    local(f.tz, *at)
                )
            })
            .collect();
        parts.push(format!("latest: {}", v.join(", ")));
    }
    if !f.unconfirmed.is_empty() {
        let v: Vec<String> = f
            .unconfirmed
            .iter()
            .map(|(c, v, at)| {
                let (v, u, t) = (trim(*v), c.unit(), local(f.tz, *at));
                format!("{} {v} {u} at {t}", c.as_str())
            })
            .collect();
        parts.push(format!(
            "awaiting a repeat reading (not scored yet): {}",
            v.join(", ")
        ));
    }
    if let Some((signs, reporter, at)) = f.soft_signs
        && !signs.is_empty()
    {
        let words: Vec<&str> = signs.iter().map(|s| s.describe()).collect();
        parts.push(format!(
            "{reporter} reported at {}: {}",
            local(f.tz, at),
            words.join(", ")
        ));
    }
    if !f.others.is_empty() {
        parts.push(format!("also open: {}", f.others.join("; ")));
    }
    if parts.is_empty() {
        "No recent observations at the home hub.".to_string()
    } else {
        format!("{}.", parts.join("; "))
    }
}

/// RCP NEWS2 Chart 4 response, in community terms (RESTORE2), by band, else by the alert's priority and rule.
fn recommendation(f: &Facts<'_>) -> &'static str {
    if f.rule == "news2"
        && let Some(s) = f.news2
    {
        return match s.band {
            Band::High => {
                "Emergency response: call 999 or arrange immediate clinical assessment (NEWS2 7 or more)."
            }
            Band::Medium => {
                "Urgent response: clinical review within 1 hour by a clinician competent in acute illness (GP, \
                 urgent community response or 111)."
            }
            Band::LowMedium => {
                "Urgent review of the parameter scoring 3 by a registered nurse or GP; consider escalation."
            }
            Band::Low => {
                "Assess the patient and increase the frequency of observations; inform the GP if concerned."
            }
        };
    }
    match (f.rule, f.severity) {
        ("soft_signs", _) => {
            "Take a full set of observations now (NEWS2) and review with the RESTORE2 escalation steps."
        }
        (r, _) if r.starts_with("missing") => {
            "Contact the patient or carer to find out why the reading is missing and ask them to take it."
        }
        ("weight_gain", _) => {
            "Review fluid status and the heart-failure plan (diuretic adjustment) the same day."
        }
        (_, Severity::High) => {
            "Act immediately: contact the patient now and arrange urgent assessment."
        }
        (_, Severity::Medium) => {
            "Act promptly: contact the patient and take a full set of observations."
        }
        (_, Severity::Low) => {
            "Review at the next contact; take a full set of observations if concerned."
        }
    }
}

/// `HH:MM` today, else `DD Mon HH:MM`, in the home's zone.
fn local(tz: &TimeZone, ms: Millis) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(t) => t.to_zoned(tz.clone()).strftime("%d %b %H:%M").to_string(),
        Err(_) => "an unknown time".to_string(),
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::news2::{self, Freshness, Inputs, Observed, Scale};

    fn facts<'a>(tz: &'a TimeZone, score: Option<&'a Score>) -> Facts<'a> {
        Facts {
            patient: "p-1",
            rule: "news2",
            severity: Severity::Medium,
            message: "NEWS2 6 (medium)",
            raised_at: 1_795_000_000_000,
            now: 1_795_000_000_000,
            tz,
            background: Some("Heart failure; lives alone."),
            agreements: vec![],
            news2: score,
            vitals: vec![(Code::Spo2, 93.0, 1_795_000_000_000)],
            unconfirmed: Vec::new(),
            soft_signs: None,
            monitoring_raised: false,
            others: vec![],
            actions: vec![],
        }
    }

    #[test]
    fn an_incomplete_news2_is_called_incomplete_and_the_band_sets_the_recommendation() {
        let tz = TimeZone::get("Europe/London").unwrap();
        let now = 1_795_000_000_000;
        let inputs = Inputs {
            spo2: Some(Observed::new(91.0, now)),
            pulse: Some(Observed::new(95.0, now)),
            resp_rate: Some(Observed::new(22.0, now)),
            ..Inputs::default()
        };
        let score = news2::score(&inputs, Scale::One, now, &Freshness::default());
        let s = build(&facts(&tz, Some(&score)));
        assert!(s.assessment.contains("INCOMPLETE"), "{}", s.assessment);
        assert!(s.assessment.contains("bp_sys"), "{}", s.assessment);
        assert!(s.recommendation.contains("1 hour"), "{}", s.recommendation);
        assert!(s.background.starts_with("Heart failure; lives alone"));
        assert_eq!(s.decision, "Awaiting a decision by the community team.");
        assert!(s.text.starts_with("S: p-1: NEWS2 6"));
        for field in ["S: ", " B: ", " A: ", " R: ", " D: "] {
            assert!(s.text.contains(field));
        }
    }

    #[test]
    fn a_value_held_for_a_repeat_is_shown_as_not_scored() {
        let tz = TimeZone::UTC;
        let mut f = facts(&tz, None);
        f.unconfirmed = vec![(Code::Spo2, 84.0, 1_795_000_060_000)];
        let a = assessment(&f);
        assert!(
            a.contains("awaiting a repeat reading (not scored yet): spo2 84 % at"),
            "{a}"
        );
        assert!(a.contains("latest: spo2 93 %"), "{a}");
    }

    #[test]
    fn soft_signs_and_actions_are_in_the_handover() {
        let tz = TimeZone::UTC;
        let signs = [SoftSign::NotUsualSelf, SoftSign::EatingDrinkingLess];
        let mut f = facts(&tz, None);
        f.rule = "soft_signs";
        f.soft_signs = Some((&signs, "carer", 1_795_000_000_000));
        f.actions = vec!["acknowledged by nurse-7".into()];
        let s = build(&f);
        assert!(
            s.assessment
                .contains("not their usual self, eating or drinking less")
        );
        assert!(s.recommendation.contains("full set of observations"));
        assert_eq!(s.decision, "acknowledged by nurse-7");
    }
}
