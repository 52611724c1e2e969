//! Scores a run against the labels, and computes the naive per-reading threshold baseline from the same readings.
//!
//! - **Detected**: a clinical alert for the patient is *raised*, or an open one is *upgraded* to a higher severity,
//!   between the episode's onset and its end. Time to alert is from onset to the first such revision.
//! - **Alerts**: Hearth's clinical alerts are counted as raises (an update, escalation or resolution of the same
//!   alert is not a new alert); technical alerts (device silent, battery) are counted apart. The naive baseline
//!   alerts on every observation beyond a fixed limit on the patient's card ([`Patient::limits`]); a gentler
//!   variant alerts only when a parameter crosses into breach (the previous value of it was within limits).
//! - **False alerts**: raised outside every labelled episode of the patient; each is traced to the reading that
//!   triggered it and that reading's injected fault, if any.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use hearth_protocol::Code;

use super::drive::Run;
use super::synth::{Cohort, DAY, EpisodeKind, HOUR, MIN, Millis, Noise, Sample};

/// How one episode was caught.
#[derive(Debug, Clone)]
pub struct Catch {
    pub at: Millis,
    pub rule: String,
}

#[derive(Debug, Clone)]
pub struct EpisodeResult {
    pub patient: String,
    pub kind: EpisodeKind,
    pub onset: Millis,
    pub end: Millis,
    pub hearth: Option<Catch>,
    pub naive: Option<Catch>,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub patients: usize,
    pub days: i64,
    pub readings: usize,
    /// Readings that reach the hub more than 15 min after their (device) time: late sync and wrong clocks.
    pub stale_on_arrival: usize,
    pub episodes: Vec<EpisodeResult>,
    pub hearth_raises: usize,
    pub hearth_revisions: usize,
    pub hearth_false: usize,
    pub technical_raises: usize,
    /// Low-priority alerts for a scheduled reading not taken (no naive equivalent; counted apart).
    pub missing_raises: usize,
    /// Incidents the clinical raises belong to (a patient's concurrent alerts share one).
    pub incidents: usize,
    pub technical_by_rule: BTreeMap<String, usize>,
    pub naive_alerts: usize,
    pub naive_false: usize,
    pub naive_crossings: usize,
    /// Hearth raises by rule: (during episodes, outside).
    pub hearth_by_rule: BTreeMap<String, (usize, usize)>,
    /// False Hearth raises by (rule, fault of the triggering reading).
    pub hearth_false_causes: BTreeMap<(String, String), usize>,
    /// False naive alerts by fault of the reading.
    pub naive_false_causes: BTreeMap<String, usize>,
    /// False alerts by patient profile: (Hearth, naive).
    pub false_by_profile: BTreeMap<String, (usize, usize)>,
    pub run: Run,
}

fn rank(severity: &str) -> u8 {
    match severity {
        "low" => 1,
        "medium" => 2,
        "high" => 3,
        _ => 0,
    }
}

/// The fault of the patient's latest reading delivered in the minute (the driver's step) before `at`, if any; a
/// faulty one wins over a clean one in the same step.
fn same_step(readings: &[(Millis, Option<Noise>)], at: Millis) -> Option<Option<Noise>> {
    let end = readings.partition_point(|(t, _)| *t <= at);
    let step: Vec<Option<Noise>> = readings[..end]
        .iter()
        .rev()
        .take_while(|(t, _)| *t > at - MIN)
        .map(|(_, n)| *n)
        .collect();
    if step.is_empty() {
        return None;
    }
    Some(step.iter().copied().find(Option::is_some).flatten())
}

fn profile(c: &Cohort, p: usize) -> String {
    let p = &c.patients[p];
    let mut s = format!("{:?}", p.profile);
    if p.continuous {
        s.push_str(" (continuous oximetry)");
    }
    s
}

fn fault(n: Option<Noise>) -> String {
    n.map_or("none (physiological noise)", Noise::as_str)
        .to_string()
}

impl Report {
    pub fn new(c: &Cohort, run: Run) -> Report {
        let index: HashMap<&str, usize> = c
            .patients
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.as_str(), i))
            .collect();
        let by_reading: HashMap<(&str, u32), Option<Noise>> = c
            .sent
            .iter()
            .map(|s| ((s.device.as_str(), s.seq), s.noise))
            .collect();
        let mut per_patient: Vec<Vec<(Millis, Option<Noise>)>> = vec![Vec::new(); c.patients.len()];
        for s in &c.sent {
            per_patient[s.patient].push((s.delivered, s.noise));
        }
        let mut r = Report {
            patients: c.patients.len(),
            days: c.spec.days,
            readings: c.sent.len(),
            stale_on_arrival: c
                .sent
                .iter()
                .filter(|s| s.delivered - s.device_time > 15 * MIN)
                .count(),
            ..Default::default()
        };
        // Hearth: raises and upgrades, per patient.
        let mut severity: HashMap<&str, &str> = HashMap::new();
        let mut incidents = std::collections::HashSet::new();
        let mut signals: Vec<(usize, Millis, &str)> = Vec::new();
        for v in &run.revisions {
            let before = severity.insert(&v.alert, &v.severity);
            if !v.clinical {
                if v.rev == 1 {
                    r.technical_raises += 1;
                    *r.technical_by_rule.entry(v.rule.clone()).or_default() += 1;
                }
                continue;
            }
            r.hearth_revisions += 1;
            let Some(&p) = index.get(v.patient.as_str()) else {
                continue;
            };
            if v.rule == "missing_reading" {
                r.missing_raises += usize::from(v.rev == 1);
                continue;
            }
            if v.rev == 1
                && let Some(i) = &v.incident
            {
                incidents.insert(i.clone());
            }
            let raised = v.rev == 1;
            let upgraded = before.is_some_and(|b| rank(&v.severity) > rank(b));
            if raised || upgraded {
                signals.push((p, v.at, &v.rule));
            }
            if !raised {
                continue;
            }
            r.hearth_raises += 1;
            let during = c.episode_at(p, v.at).is_some();
            let e = r.hearth_by_rule.entry(v.rule.clone()).or_default();
            if during {
                e.0 += 1;
            } else {
                e.1 += 1;
                r.hearth_false += 1;
                r.false_by_profile.entry(profile(c, p)).or_default().0 += 1;
                let why = match v.device.as_deref().zip(v.seq) {
                    Some(k) => fault(by_reading.get(&k).copied().flatten()),
                    // A trend or a check-in names no reading: take the patient's reading processed in the same step.
                    None => match same_step(&per_patient[p], v.at) {
                        Some(n) => format!("{} (reading in the same step)", fault(n)),
                        None => "no reading (check-in or timer)".to_string(),
                    },
                };
                let rule = match &v.band {
                    Some(b) => format!("{} ({b})", v.rule),
                    None => v.rule.clone(),
                };
                *r.hearth_false_causes.entry((rule, why)).or_default() += 1;
            }
        }
        // Naive: every observation beyond a card limit is an alert.
        let mut naive: Vec<(usize, Millis, String)> = Vec::new();
        let mut breaching: HashMap<(usize, Code, bool), bool> = HashMap::new();
        for s in &c.sent {
            let limits = c.patients[s.patient].limits();
            for &(code, sample) in &s.obs {
                let Sample::Number(v, _) = sample else {
                    continue;
                };
                for &(lc, below, limit) in limits.iter().filter(|l| l.0 == code) {
                    let breach = if below { v < limit } else { v > limit };
                    let was = breaching
                        .insert((s.patient, lc, below), breach)
                        .unwrap_or(false);
                    if !breach {
                        continue;
                    }
                    r.naive_alerts += 1;
                    if !was {
                        r.naive_crossings += 1;
                    }
                    let dir = if below { "below" } else { "above" };
                    naive.push((s.patient, s.delivered, format!("{code}_{dir}_{limit:.1}")));
                    if c.episode_at(s.patient, s.taken).is_none() {
                        r.naive_false += 1;
                        r.false_by_profile
                            .entry(profile(c, s.patient))
                            .or_default()
                            .1 += 1;
                        *r.naive_false_causes.entry(fault(s.noise)).or_default() += 1;
                    }
                }
            }
        }
        for e in &c.episodes {
            let first = |xs: &mut dyn Iterator<Item = (Millis, String)>| {
                xs.filter(|(t, _)| e.onset <= *t && *t <= e.end)
                    .min_by_key(|(t, _)| *t)
                    .map(|(at, rule)| Catch { at, rule })
            };
            let hearth = first(
                &mut signals
                    .iter()
                    .filter(|s| s.0 == e.patient)
                    .map(|s| (s.1, s.2.to_string())),
            );
            let naive = first(
                &mut naive
                    .iter()
                    .filter(|s| s.0 == e.patient)
                    .map(|s| (s.1, s.2.clone())),
            );
            r.episodes.push(EpisodeResult {
                patient: c.patients[e.patient].id.clone(),
                kind: e.kind,
                onset: e.onset,
                end: e.end,
                hearth,
                naive,
            });
        }
        r.incidents = incidents.len();
        r.run = run;
        r
    }

    pub fn patient_days(&self) -> f64 {
        (self.patients as i64 * self.days) as f64
    }

    pub fn missed(&self) -> Vec<&EpisodeResult> {
        self.episodes
            .iter()
            .filter(|e| e.hearth.is_none())
            .collect()
    }

    fn median_h(&self, pick: impl Fn(&EpisodeResult) -> Option<&Catch>) -> Option<f64> {
        let mut xs: Vec<Millis> = self
            .episodes
            .iter()
            .filter_map(|e| pick(e).map(|c| c.at - e.onset))
            .collect();
        xs.sort_unstable();
        let n = xs.len();
        if n == 0 {
            return None;
        }
        let m = if n % 2 == 1 {
            xs[n / 2] as f64
        } else {
            (xs[n / 2 - 1] + xs[n / 2]) as f64 / 2.0
        };
        Some(m / HOUR as f64)
    }

    pub fn hearth_median_h(&self) -> Option<f64> {
        self.median_h(|e| e.hearth.as_ref())
    }

    pub fn naive_median_h(&self) -> Option<f64> {
        self.median_h(|e| e.naive.as_ref())
    }

    /// The report as Markdown tables.
    pub fn table(&self) -> String {
        let pd = self.patient_days();
        let det = |f: fn(&EpisodeResult) -> bool| self.episodes.iter().filter(|e| f(e)).count();
        let n = self.episodes.len();
        let h = |x: Option<f64>| x.map_or("–".to_string(), |v| format!("{v:.1} h"));
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Cohort: {} patients × {} days ({} patient-days), {} readings sent, {} stored, {} labelled episodes.\n",
            self.patients, self.days, pd, self.readings, self.run.readings_stored, n
        );
        let _ = writeln!(
            s,
            "| | Hearth | naive per-reading thresholds |\n|---|---|---|"
        );
        let _ = writeln!(
            s,
            "| episodes detected | {} / {n} | {} / {n} |",
            det(|e| e.hearth.is_some()),
            det(|e| e.naive.is_some())
        );
        let _ = writeln!(
            s,
            "| median time from onset to first alert | {} | {} |",
            h(self.hearth_median_h()),
            h(self.naive_median_h())
        );
        let _ = writeln!(
            s,
            "| clinical alerts (raises) | {} ({:.3} per patient-day) | {} ({:.3} per patient-day) |",
            self.hearth_raises,
            self.hearth_raises as f64 / pd,
            self.naive_alerts,
            self.naive_alerts as f64 / pd
        );
        let _ = writeln!(
            s,
            "| … of which outside any labelled episode | {} | {} |",
            self.hearth_false, self.naive_false
        );
        let _ = writeln!(
            s,
            "| incidents the raises opened or joined (one per patient at a time) | {} | |",
            self.incidents
        );
        let _ = writeln!(
            s,
            "| ratio Hearth / naive | {:.3} | 1 |",
            self.hearth_raises as f64 / self.naive_alerts.max(1) as f64
        );
        let _ = writeln!(
            s,
            "| naive, alerting only on crossing into breach | | {} ({:.3} per patient-day) |",
            self.naive_crossings,
            self.naive_crossings as f64 / pd
        );
        let _ = writeln!(
            s,
            "| Hearth clinical revisions (updates, escalations, resolutions incl.) | {} | |",
            self.hearth_revisions
        );
        let _ = writeln!(
            s,
            "| technical alerts (raises) | {} ({}) | |",
            self.technical_raises,
            self.technical_by_rule
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            s,
            "| missing scheduled reading: reminders to the home, then low alerts (not in the ratio) | {} reminders, {} alerts | |",
            self.run.reminders, self.missing_raises
        );
        let _ = writeln!(
            s,
            "| NEWS2 values held for confirmation: repeat readings asked of the home (spot checks only) | {} | |",
            self.run.repeat_asks
        );
        let _ = writeln!(
            s,
            "| nurse resolutions at reviews | {} | |",
            self.run.nurse_resolutions
        );
        let q: Vec<String> = self
            .run
            .quarantined
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(s, "| quarantined readings | {} | |", q.join(", "));
        let _ = writeln!(
            s,
            "| readings stale on arrival (late sync, wrong device clock): no value rule | {} | |\n",
            self.stale_on_arrival
        );

        let _ = writeln!(
            s,
            "| episode | patient | onset (day hh:mm) | length | Hearth: first alert | after | naive: first alert | after |\n|---|---|---|---|---|---|---|---|"
        );
        for e in &self.episodes {
            let when = |c: &Option<Catch>| match c {
                Some(c) => (c.rule.clone(), fmt_dur(c.at - e.onset)),
                None => ("**missed**".to_string(), "–".to_string()),
            };
            let (hr, ht) = when(&e.hearth);
            let (nr, nt) = when(&e.naive);
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {hr} | {ht} | {nr} | {nt} |",
                e.kind.as_str(),
                e.patient,
                fmt_day(e.onset),
                fmt_dur(e.end - e.onset)
            );
        }
        let _ = writeln!(
            s,
            "\n| Hearth rule | raises during episodes | raises outside |\n|---|---|---|"
        );
        for (rule, (d, o)) in &self.hearth_by_rule {
            let _ = writeln!(s, "| {rule} | {d} | {o} |");
        }
        let _ = writeln!(
            s,
            "\n| Hearth false alert: rule | triggering reading's fault | alerts |\n|---|---|---|"
        );
        for ((rule, why), k) in &self.hearth_false_causes {
            let _ = writeln!(s, "| {rule} | {why} | {k} |");
        }
        let _ = writeln!(
            s,
            "\n| false alerts by patient profile | Hearth | naive |\n|---|---|---|"
        );
        for (p, (h, n)) in &self.false_by_profile {
            let _ = writeln!(s, "| {p} | {h} | {n} |");
        }
        let _ = writeln!(
            s,
            "\n| naive false alert: reading's fault | alerts |\n|---|---|"
        );
        for (why, k) in &self.naive_false_causes {
            let _ = writeln!(s, "| {why} | {k} |");
        }
        s
    }
}

fn fmt_day(t: Millis) -> String {
    let rel = t - super::synth::START;
    format!(
        "{} {:02}:{:02}",
        rel / DAY + 1,
        (rel % DAY) / HOUR,
        (rel % HOUR) / MIN
    )
}

fn fmt_dur(ms: Millis) -> String {
    if ms >= DAY {
        format!("{:.1} d", ms as f64 / DAY as f64)
    } else {
        format!("{:.1} h", ms as f64 / HOUR as f64)
    }
}
