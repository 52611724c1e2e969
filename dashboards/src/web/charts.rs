//! Seven-day trend charts of the NEWS2 vital signs, rendered server-side as inline SVG with each parameter's NEWS2
//! Chart 1 score bands shaded (scale 1 for SpO2), a text alternative and a data table for screen readers.
//!
//! The points come from what homes sent: each alert revision's triggering value (`code`, `value`, `observed_at`) and
//! the NEWS2 breakdown in `details.news2.subscores`. The community hub does not receive every reading.

use std::collections::BTreeMap;

use hearth_protocol::json::{format_rfc3339_millis, parse_rfc3339_millis};
use maud::{Markup, html};

use crate::store::RevisionRow;

/// A vital sign with its NEWS2 bands: `(from, to, score)` on a continuous axis (band edges half-way between the
/// chart's integer or one-decimal limits).
pub struct Vital {
    /// NEWS2 parameter name (as in `details.news2.subscores[].parameter`).
    pub key: &'static str,
    pub label: &'static str,
    pub unit: &'static str,
    pub y: (f64, f64),
    pub bands: &'static [(f64, f64, u8)],
}

/// NEWS2 Chart 1 (RCP 2017), scale 1 for SpO2.
pub const VITALS: [Vital; 5] = [
    Vital {
        key: "resp_rate",
        label: "Respiration rate",
        unit: "/min",
        y: (4.0, 36.0),
        bands: &[
            (0.0, 8.5, 3),
            (8.5, 11.5, 1),
            (11.5, 20.5, 0),
            (20.5, 24.5, 2),
            (24.5, 60.0, 3),
        ],
    },
    Vital {
        key: "spo2",
        label: "SpO₂",
        unit: "%",
        y: (80.0, 100.0),
        bands: &[
            (0.0, 91.5, 3),
            (91.5, 93.5, 2),
            (93.5, 95.5, 1),
            (95.5, 101.0, 0),
        ],
    },
    Vital {
        key: "bp_sys",
        label: "Systolic blood pressure",
        unit: "mmHg",
        y: (60.0, 240.0),
        bands: &[
            (0.0, 90.5, 3),
            (90.5, 100.5, 2),
            (100.5, 110.5, 1),
            (110.5, 219.5, 0),
            (219.5, 300.0, 3),
        ],
    },
    Vital {
        key: "pulse",
        label: "Pulse",
        unit: "/min",
        y: (30.0, 160.0),
        bands: &[
            (0.0, 40.5, 3),
            (40.5, 50.5, 1),
            (50.5, 90.5, 0),
            (90.5, 110.5, 1),
            (110.5, 130.5, 2),
            (130.5, 250.0, 3),
        ],
    },
    Vital {
        key: "temp",
        label: "Temperature",
        unit: "°C",
        y: (34.0, 41.0),
        bands: &[
            (0.0, 35.05, 3),
            (35.05, 36.05, 1),
            (36.05, 38.05, 0),
            (38.05, 39.05, 1),
            (39.05, 45.0, 2),
        ],
    },
];

/// The NEWS2 parameter a vocabulary code feeds.
fn vital_of_code(code: &str) -> Option<&'static str> {
    match code {
        "heart_rate" => Some("pulse"),
        "spo2" => Some("spo2"),
        "resp_rate" => Some("resp_rate"),
        "temp" => Some("temp"),
        "bp_sys" => Some("bp_sys"),
        _ => None,
    }
}

/// Points per vital (`key` → sorted, deduplicated `(time, value)`).
pub fn points(revisions: &[RevisionRow]) -> BTreeMap<&'static str, Vec<(i64, f64)>> {
    let mut out: BTreeMap<&'static str, Vec<(i64, f64)>> = BTreeMap::new();
    for r in revisions {
        if let (Some(code), Some(v), Some(t)) = (r.code.as_deref(), r.value, r.observed_at)
            && let Some(key) = vital_of_code(code)
        {
            out.entry(key).or_default().push((t, v));
        }
        let details: serde_json::Value = r
            .details
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default();
        if let Some(subs) = details["news2"]["subscores"].as_array() {
            for s in subs {
                let key = VITALS
                    .iter()
                    .map(|v| v.key)
                    .find(|k| Some(*k) == s["parameter"].as_str());
                let t = s["observed_at"]
                    .as_str()
                    .and_then(|t| parse_rfc3339_millis(t).ok());
                if let (Some(key), Some(v), Some(t)) = (key, s["value"].as_f64(), t) {
                    out.entry(key).or_default().push((t, v));
                }
            }
        }
    }
    for pts in out.values_mut() {
        pts.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        pts.dedup();
    }
    out
}

const W: f64 = 640.0;
const H: f64 = 170.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 22.0;

fn band_fill(score: u8) -> &'static str {
    match score {
        0 => "#ffffff",
        1 => "#fff1a8",
        2 => "#ffc98a",
        _ => "#f5a3a3",
    }
}

/// One chart of `v` over `[from, to]`.
pub fn chart(v: &Vital, pts: &[(i64, f64)], from: i64, to: i64) -> Markup {
    let span = (to - from).max(1) as f64;
    let (lo, hi) = v.y;
    let x = |t: i64| LEFT + (W - LEFT - 8.0) * ((t - from) as f64 / span);
    let y = |val: f64| {
        let c = val.clamp(lo, hi);
        8.0 + (H - BOTTOM - 8.0) * (1.0 - (c - lo) / (hi - lo))
    };
    let shown: Vec<&(i64, f64)> = pts.iter().filter(|(t, _)| *t >= from && *t <= to).collect();
    let line: String = shown
        .iter()
        .map(|(t, val)| format!("{:.1},{:.1}", x(*t), y(*val)))
        .collect::<Vec<_>>()
        .join(" ");
    let id = format!("chart-{}", v.key);
    let summary = match (shown.first(), shown.last()) {
        (Some(first), Some(last)) => format!(
            "{} over 7 days: {} points, first {} {}, latest {} {}.",
            v.label,
            shown.len(),
            first.1,
            v.unit,
            last.1,
            v.unit
        ),
        _ => format!("{}: no values in the last 7 days.", v.label),
    };
    html! {
        figure.chart {
            figcaption id=(id) { (v.label) " (" (v.unit) ")" }
            svg role="img" aria-labelledby=(id) aria-describedby=(format!("{id}-desc"))
                viewBox=(format!("0 0 {W} {H}")) width="100%" preserveAspectRatio="xMidYMid meet" {
                desc id=(format!("{id}-desc")) { (summary) }
                @for (b_lo, b_hi, score) in v.bands {
                    @let top = y(b_hi.min(hi));
                    @let bottom = y(b_lo.max(lo));
                    @if bottom > top {
                        rect x=(LEFT) y=(format!("{top:.1}")) width=(W - LEFT - 8.0) height=(format!("{:.1}", bottom - top))
                            fill=(band_fill(*score)) data-score=(score) {}
                    }
                }
                rect x=(LEFT) y="8" width=(W - LEFT - 8.0) height=(H - BOTTOM - 8.0) fill="none" stroke="#555" {}
                @for tick in [lo, (lo + hi) / 2.0, hi] {
                    text x=(LEFT - 4.0) y=(format!("{:.1}", y(tick) + 4.0)) text-anchor="end" font-size="11" fill="#222" { (tick) }
                }
                @for d in 0..=7 {
                    @let t = from + (span as i64) * d / 7;
                    text x=(format!("{:.1}", x(t))) y=(H - 6.0) text-anchor=(match d { 0 => "start", 7 => "end", _ => "middle" }) font-size="10" fill="#222" {
                        (format_rfc3339_millis(t)[5..10].to_string())
                    }
                }
                @if shown.len() > 1 {
                    polyline points=(line) fill="none" stroke="#0b3d91" stroke-width="2" {}
                }
                @for (t, val) in &shown {
                    circle cx=(format!("{:.1}", x(*t))) cy=(format!("{:.1}", y(*val))) r="3.5" fill="#0b3d91" {
                        title { (format_rfc3339_millis(*t)) ": " (val) " " (v.unit) }
                    }
                }
            }
            details {
                summary { "Values as a table" }
                table {
                    thead { tr { th scope="col" { "Observed (UTC)" } th scope="col" { (v.label) " (" (v.unit) ")" } } }
                    tbody {
                        @for (t, val) in &shown { tr { td { (format_rfc3339_millis(*t)) } td { (val) } } }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(code: &str, value: f64, t: i64, details: Option<&str>) -> RevisionRow {
        RevisionRow {
            alert_id: "a".into(),
            rev: 1,
            home: "h".into(),
            patient: "p".into(),
            state: "open".into(),
            severity: "high".into(),
            rule: "r".into(),
            code: Some(code.into()),
            value: Some(value),
            unit: None,
            device: None,
            observed_at: Some(t),
            raised_at: t,
            details: details.map(str::to_owned),
        }
    }

    #[test]
    fn heart_rate_feeds_pulse_and_news2_subscores_feed_their_parameters() {
        let d = r#"{"news2":{"total":7,"band":"high","subscores":[
            {"parameter":"resp_rate","value":24,"observed_at":"2026-11-22T10:00:00.000Z","score":2},
            {"parameter":"consciousness","value":"alert","observed_at":"2026-11-22T10:00:00.000Z","score":0}]}}"#;
        let p = points(&[
            rev("heart_rate", 120.0, 5, Some(d)),
            rev("heart_rate", 120.0, 5, None),
        ]);
        assert_eq!(p["pulse"], vec![(5, 120.0)], "deduplicated");
        assert_eq!(p["resp_rate"].len(), 1);
        assert!(!p.contains_key("consciousness"));
    }

    #[test]
    fn chart_shades_every_band_in_range_and_plots_points() {
        let svg = chart(&VITALS[1], &[(10, 90.0), (20, 97.0)], 0, 100).into_string();
        assert_eq!(svg.matches("data-score=").count(), 4, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("latest 97 %"));
    }
}
