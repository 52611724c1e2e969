//! The clinical engine around thresholds and NEWS2, as part of the core loop (it owns this state, like the rest):
//! check-ins (consciousness, oxygen, RESTORE2 soft signs), SBARD on every clinical alert, trends, missing scheduled
//! readings with reminders, incidents, flap control, learned device cadence and expiring personal baselines.
//!
//! The decisions are the pure functions in [`crate::rules`]; this module keeps their state and turns findings into
//! alert revisions. What a restart must not forget is rebuilt from the database in [`Clinic::load`].

use std::collections::{HashMap, HashSet, VecDeque};

use hearth_protocol::json::{BaselineMessage, CheckinMessage, Consciousness, Severity, SoftSign};
use hearth_protocol::{Code, Value};

use super::{Core, NewAlert, Rejection};
use crate::clock::{Clock, Millis};
use crate::config::Config;
use crate::gate::{self, MAX_FUTURE_MS};
use crate::model::{Alert, AlertKind, AlertState, Reading, Reason, Source, Trigger};
use crate::rules::confirm;
use crate::rules::flap::Flap;
use crate::rules::news2::{self, Acvpu, AirOrOxygen, Score};
use crate::rules::sbard::{self, Facts};
use crate::rules::schedule;
use crate::rules::threshold::{RuleBook, Threshold};
use crate::rules::trend::{self, Series};
use crate::store::{AlertEvent, CheckinRow, Store, StoreError, WriteBatch};
use crate::telemetry as m;

const MINUTE_MS: Millis = 60_000;
/// Codes kept as series for trends (one point a minute at most).
const TREND_CODES: [Code; 4] = [Code::Weight, Code::HeartRate, Code::Spo2, Code::Temp];
/// A device reporting at least this often is continuous: its cadence is learned.
const CONTINUOUS_MS: Millis = 30 * MINUTE_MS;
/// Readings needed before a learned cadence is trusted.
const CADENCE_MIN_SAMPLES: u32 = 20;

/// A check-in on its way to the core: parsed (or why not), not yet committed.
pub struct CheckinInbound {
    pub patient: String,
    pub received_at: Millis,
    pub payload: bytes::Bytes,
    pub parsed: Result<CheckinMessage, Rejection>,
    pub ack: Option<Box<dyn super::Acknowledge>>,
}

/// A message for the home (display, board buzzer): reminders of scheduled readings.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub topic: String,
    pub payload: String,
}

/// Soft signs in force for a patient.
#[derive(Debug, Clone)]
struct SoftSigns {
    signs: Vec<SoftSign>,
    reporter: String,
    at: Millis,
    /// Monitoring stays raised until then.
    raised_until: Millis,
}

/// Exponentially weighted mean interval between a device's readings.
#[derive(Debug, Clone, Default)]
struct Cadence {
    last: Option<Millis>,
    mean_ms: f64,
    samples: u32,
}

/// State of the clinical engine, owned by the core.
#[derive(Default)]
pub(super) struct Clinic {
    soft_signs: HashMap<String, SoftSigns>,
    series: HashMap<(String, Code), Series>,
    /// Each patient's recent NEWS2 subscores, for the rising-score trend.
    news2_history: HashMap<String, VecDeque<trend::ScoredAt>>,
    latest_news2: HashMap<String, Score>,
    /// Per patient and parameter, a value waiting for a confirming reading before it enters NEWS2 (`rules::confirm`).
    /// Not persisted: after a restart the next reading is held anew.
    pub(super) news2_held: HashMap<(String, news2::Parameter), confirm::Scored>,
    flaps: HashMap<(String, String), Flap>,
    last_code_at: HashMap<(String, Code), Millis>,
    reminders_sent: HashSet<(String, String, Millis)>,
    /// Slots whose missing-reading alert was raised: a nurse resolving it does not bring it back for the same slot.
    missing_alerted: HashSet<(String, String, Millis)>,
    cadence: HashMap<String, Cadence>,
    /// What the team did with each open alert, for the SBARD decision.
    actions: HashMap<String, Vec<String>>,
    /// Bounded queue of notices for the home; drained by [`Core::take_notices`].
    notices: Vec<Notice>,
    /// Ids of baselines from the community hub already applied (a resend is not applied twice).
    baselines_seen: HashSet<String>,
    /// Expired baselines the team has been told about this run.
    expiry_told: HashSet<(String, String)>,
}

impl Clinic {
    /// Rebuilds what trends, schedules, NEWS2 inputs and soft signs need from the last days of the database.
    pub(super) async fn load(
        cfg: &Config,
        store: &Store,
        now: Millis,
    ) -> Result<(Clinic, HashMap<String, news2::Inputs>), StoreError> {
        let mut c = Clinic::default();
        let mut inputs: HashMap<String, news2::Inputs> = HashMap::new();
        let keep = cfg.clinical.trends.longest_window_ms().max(2 * 86_400_000);
        for (patient, _device, observed_at, _received, obs) in
            store.readings_since(now - keep).await?
        {
            for (code, v) in decode_obs(&obs) {
                c.note_value(&patient, code, v, observed_at, keep);
                let slot = news2_slot(inputs.entry(patient.clone()).or_default(), code);
                if let Some(slot) = slot
                    && slot.is_none_or(|s| s.at <= observed_at)
                {
                    *slot = Some(news2::Observed::new(v, observed_at));
                }
            }
        }
        let raise_ms = cfg.clinical.soft_signs_raise_for_s as Millis * 1000;
        for (patient, reporter, _at, body) in store.checkins_since(now - raise_ms.max(keep)).await?
        {
            // The body is the message as committed, in the wire format.
            let Ok(msg) = hearth_protocol::json::parse_checkin(body.as_bytes()) else {
                continue;
            };
            apply_checkin_inputs(inputs.entry(patient.clone()).or_default(), &msg);
            c.note_soft_signs(&patient, &reporter, &msg, raise_ms);
        }
        for (patient, schedule, due_at) in store.reminders_since(now - 2 * 86_400_000).await? {
            c.reminders_sent.insert((patient, schedule, due_at));
        }
        Ok((c, inputs))
    }

    /// Applies the baselines the community hub sent before a restart over the configured rules.
    pub(super) async fn load_baselines(
        &mut self,
        store: &Store,
        rules: &mut RuleBook,
    ) -> Result<(), StoreError> {
        for (id, body) in store.baselines().await? {
            if let Ok(b) = hearth_protocol::json::parse_baseline(body.as_bytes()) {
                apply_baseline(rules, &b);
            }
            self.baselines_seen.insert(id);
        }
        Ok(())
    }

    fn note_value(&mut self, patient: &str, code: Code, v: f64, at: Millis, keep_ms: Millis) {
        let last = self
            .last_code_at
            .entry((patient.to_string(), code))
            .or_insert(at);
        *last = (*last).max(at);
        if TREND_CODES.contains(&code) {
            self.series
                .entry((patient.to_string(), code))
                .or_insert_with(|| Series::new(keep_ms, MINUTE_MS))
                .push(at, v);
        }
    }

    fn note_soft_signs(
        &mut self,
        patient: &str,
        reporter: &str,
        msg: &CheckinMessage,
        raise_ms: Millis,
    ) {
        match msg.soft_signs.as_deref() {
            Some([]) => {
                self.soft_signs.remove(patient);
            }
            Some(signs) => {
                self.soft_signs.insert(
                    patient.to_string(),
                    SoftSigns {
                        signs: signs.to_vec(),
                        reporter: reporter.to_string(),
                        at: msg.at,
                        raised_until: msg.at + raise_ms,
                    },
                );
            }
            None => {}
        }
    }

    /// Whether the patient's monitoring is raised (soft signs reported recently).
    pub(super) fn monitoring_raised(&self, patient: &str, now: Millis) -> bool {
        self.soft_signs
            .get(patient)
            .is_some_and(|s| now < s.raised_until)
    }

    pub(super) fn note_action(&mut self, alert_id: &str, what: String) {
        self.actions
            .entry(alert_id.to_string())
            .or_default()
            .push(what);
    }
}

/// Puts a baseline into the rule book (or withdraws one). The message was validated by [`Core::baseline`].
fn apply_baseline(rules: &mut RuleBook, b: &BaselineMessage) {
    let Some(code) = Code::from_name(&b.code) else {
        return;
    };
    if b.revoke {
        rules.remove_override(&b.patient, code, b.threshold().1);
    } else if let Some(t) = Threshold::from_baseline(b) {
        rules.set_override(&b.patient, t);
    }
}

/// The NEWS2 slot a measured code fills.
fn news2_slot(i: &mut news2::Inputs, code: Code) -> Option<&mut Option<news2::Observed<f64>>> {
    Some(match code {
        Code::RespRate => &mut i.resp_rate,
        Code::Spo2 => &mut i.spo2,
        Code::BpSys => &mut i.bp_sys,
        Code::HeartRate => &mut i.pulse,
        Code::Temp => &mut i.temp,
        _ => return None,
    })
}

/// Consciousness and oxygen from a check-in, where newer than what is held.
fn apply_checkin_inputs(i: &mut news2::Inputs, msg: &CheckinMessage) -> bool {
    let mut changed = false;
    if let Some(c) = msg.consciousness
        && i.consciousness.is_none_or(|o| o.at <= msg.at)
    {
        let acvpu = match c {
            Consciousness::Alert => Acvpu::Alert,
            Consciousness::Confusion => Acvpu::Confusion,
            Consciousness::Voice => Acvpu::Voice,
            Consciousness::Pain => Acvpu::Pain,
            Consciousness::Unresponsive => Acvpu::Unresponsive,
        };
        i.consciousness = Some(news2::Observed::new(acvpu, msg.at));
        changed = true;
    }
    if let Some(on) = msg.on_oxygen()
        && i.air_or_oxygen.is_none_or(|o| o.at <= msg.at)
    {
        let v = if on {
            AirOrOxygen::Oxygen
        } else {
            AirOrOxygen::Air
        };
        i.air_or_oxygen = Some(news2::Observed::new(v, msg.at));
        changed = true;
    }
    changed
}

/// `{"spo2":[97,0],"heart_rate":{"invalid":"nan"}}` → the numbers (invalid values are not numbers).
fn decode_obs(obs: &str) -> Vec<(Code, f64)> {
    let Ok(serde_json::Value::Object(m)) = serde_json::from_str(obs) else {
        return Vec::new();
    };
    m.iter()
        .filter_map(|(k, v)| {
            let code = Code::from_name(k)?;
            let mantissa = v.get(0)?.as_i64()?;
            let exponent = v.get(1)?.as_i64()?;
            Some((code, mantissa as f64 * 10f64.powi(exponent as i32)))
        })
        .collect()
}

impl<C: Clock> Core<C> {
    /// Gates and applies a check-in; its fate is committed with the rest of the batch before it is acknowledged.
    pub(super) async fn checkin(
        &mut self,
        c: CheckinInbound,
        now: Millis,
        batch: &mut WriteBatch,
    ) -> Result<(), StoreError> {
        metrics::counter!(m::CHECKINS_RECEIVED).increment(1);
        let ctx = gate::Inbound {
            source: Source::Checkin,
            received_at: c.received_at,
            payload: &c.payload,
        };
        let label = Some(format!("checkin:{}", c.patient));
        let msg = match c.parsed {
            Ok(msg) => msg,
            Err(r) => {
                batch
                    .quarantine
                    .push(gate::quarantined(&ctx, label, None, r.reason, r.detail));
                return Ok(());
            }
        };
        if self.cfg.patient(&c.patient).is_none() {
            let detail = "check-in for a patient this home does not care for".to_string();
            let q = gate::quarantined(&ctx, label, None, Reason::UnknownPatient, detail);
            batch.quarantine.push(q);
            return Ok(());
        }
        if msg.at > now + MAX_FUTURE_MS {
            let detail = format!("check-in time is {} s in the future", (msg.at - now) / 1000);
            let q = gate::quarantined(&ctx, label, None, Reason::TimeInFuture, detail);
            batch.quarantine.push(q);
            return Ok(());
        }
        let resent = batch
            .checkins
            .iter()
            .any(|r| r.patient == c.patient && r.id == msg.checkin_id)
            || self
                .store
                .checkin_exists(&c.patient, &msg.checkin_id)
                .await?;
        if resent {
            metrics::counter!(m::CHECKINS_DUPLICATE).increment(1);
            return Ok(());
        }
        batch.checkins.push(CheckinRow {
            patient: c.patient.clone(),
            id: msg.checkin_id.clone(),
            at: msg.at,
            received_at: c.received_at,
            reporter: msg.reporter.as_str().to_string(),
            body: serde_json::to_string(&msg).unwrap_or_default(),
        });
        let raise_ms = self.cfg.clinical.soft_signs_raise_for_s as Millis * 1000;
        self.clinic
            .note_soft_signs(&c.patient, msg.reporter.as_str(), &msg, raise_ms);
        self.soft_signs_alert(&c.patient, &msg, now, batch);
        let inputs = self.news2_inputs.entry(c.patient.clone()).or_default();
        if apply_checkin_inputs(inputs, &msg) || msg.soft_signs.is_some() {
            self.news2_evaluate(&c.patient, None, now, batch);
        }
        Ok(())
    }

    /// A personal baseline from the community hub: validated, applied to the rule book, kept (so a restart keeps it)
    /// and appended to the audit chain. One for an unknown patient or code is refused and counted.
    pub(super) fn baseline(&mut self, b: BaselineMessage, now: Millis, batch: &mut WriteBatch) {
        if self.clinic.baselines_seen.contains(&b.baseline_id) {
            return;
        }
        let known_code = Code::from_name(&b.code).is_some();
        if self.cfg.patient(&b.patient).is_none() || !known_code {
            metrics::counter!(m::BASELINES_REFUSED).increment(1);
            tracing::warn!(baseline = %b.baseline_id, "baseline for an unknown patient or code refused");
            tracing::debug!(patient = %b.patient, code = %b.code, "refused baseline");
            return;
        }
        self.clinic.baselines_seen.insert(b.baseline_id.clone());
        apply_baseline(std::sync::Arc::make_mut(&mut self.rules), &b);
        let body = serde_json::to_string(&b).unwrap_or_default();
        batch
            .baselines
            .push((b.baseline_id.clone(), b.patient.clone(), now, body.clone()));
        batch.events.push(AlertEvent {
            alert_id: format!("baseline:{}", b.baseline_id),
            rev: 0,
            at: now,
            event: if b.revoke {
                "baseline_revoked"
            } else {
                "baseline_agreed"
            },
            detail: body,
        });
        metrics::counter!(m::BASELINES_APPLIED).increment(1);
        tracing::info!(baseline = %b.baseline_id, revoke = b.revoke, "personal baseline applied");
    }

    /// Soft signs raise (or update) a low-priority alert asking for a full set of observations; "none noticed"
    /// resolves it.
    fn soft_signs_alert(
        &mut self,
        patient: &str,
        msg: &CheckinMessage,
        now: Millis,
        batch: &mut WriteBatch,
    ) {
        let key = (patient.to_string(), "clinical:soft_signs".to_string());
        let Some(signs) = msg.soft_signs.as_deref() else {
            return;
        };
        let reporter = msg.reporter.as_str();
        if signs.is_empty() {
            if self.open.contains_key(&key) {
                let message = format!("{reporter} reports no soft signs");
                self.set_state(&key, AlertState::Resolved, message, now, batch);
            }
            return;
        }
        let words: Vec<&str> = signs.iter().map(|s| s.describe()).collect();
        let message = format!("{reporter} reports: {}", words.join(", "));
        let details = serde_json::json!({
            "soft_signs": signs,
            "reporter": reporter,
            "note": msg.note,
        });
        if let Some(a) = self.open.get_mut(&key) {
            a.details = Some(details);
            self.revise(
                &key,
                AlertState::Updated,
                None,
                None,
                None,
                message,
                now,
                batch,
            );
        } else {
            let new = NewAlert {
                kind: AlertKind::Clinical,
                rule: "soft_signs",
                severity: Severity::Low,
                trigger: None,
                message,
                details: Some(details),
            };
            self.raise_alert(patient, &key.1, new, now, batch);
        }
    }

    /// After a reading is accepted: series for trends, schedules, learned cadence; then the trend rules.
    pub(super) fn clinical_after_reading(
        &mut self,
        r: &Reading,
        now: Millis,
        batch: &mut WriteBatch,
    ) {
        let keep = self.cfg.clinical.trends.longest_window_ms();
        let mut codes = Vec::new();
        for o in &r.obs {
            let Value::Number(q) = o.value else { continue };
            self.clinic
                .note_value(&r.patient, o.code, q.to_f64(), r.observed_at, keep);
            codes.push(o.code);
        }
        self.learn_cadence(&r.device, r.received_at);
        for code in &codes {
            self.resolve_missing(&r.patient, *code, r.observed_at, now, batch);
        }
        if self.cfg.clinical.trends.enabled {
            self.trends(&r.patient, &codes, now, batch);
        }
    }

    fn learn_cadence(&mut self, device: &str, at: Millis) {
        let c = self.clinic.cadence.entry(device.to_string()).or_default();
        if let Some(last) = c.last
            && at > last
        {
            let gap = (at - last) as f64;
            c.mean_ms = if c.samples == 0 {
                gap
            } else {
                0.9 * c.mean_ms + 0.1 * gap
            };
            c.samples += 1;
        }
        c.last = Some(c.last.map_or(at, |l| l.max(at)));
    }

    fn trends(&mut self, patient: &str, codes: &[Code], now: Millis, batch: &mut WriteBatch) {
        let cfg = self.cfg.clinical.trends.clone();
        let scale2 = self.news2_scale(patient) == news2::Scale::Two;
        for &code in codes {
            let Some(s) = self.clinic.series.get(&(patient.to_string(), code)) else {
                continue;
            };
            let s = s.clone();
            match code {
                Code::Weight => {
                    let key = "clinical:trend:weight_gain";
                    let active = self.is_open(patient, key);
                    let found = trend::weight_gain(&s, now, &cfg, active).map(|g| {
                        format!(
                            "weight up {:.1} kg in {} (from {:.1} to {:.1} kg)",
                            g.delta(),
                            span(g.to_at - g.from_at),
                            g.from,
                            g.to
                        )
                    });
                    self.trend_finding(
                        patient,
                        key,
                        "weight_gain",
                        Severity::Medium,
                        found,
                        now,
                        batch,
                    );
                }
                Code::HeartRate => {
                    let key = "clinical:trend:tachycardia";
                    let active = self.is_open(patient, key);
                    let window = cfg.tachycardia_window_s as Millis * 1000;
                    let found = trend::sustained(
                        &s,
                        now,
                        window,
                        cfg.tachycardia_bpm,
                        true,
                        cfg.sustained_fraction,
                        active,
                    )
                    .map(|f| {
                        format!(
                            "pulse above {} /min for {:.0} % of the last {}",
                            f.limit,
                            f.fraction * 100.0,
                            span(window)
                        )
                    });
                    self.trend_finding(
                        patient,
                        key,
                        "sustained_tachycardia",
                        Severity::Medium,
                        found,
                        now,
                        batch,
                    );
                }
                Code::Spo2 => {
                    let key = "clinical:trend:desaturation";
                    let active = self.is_open(patient, key);
                    let window = cfg.desaturation_window_s as Millis * 1000;
                    let target = if scale2 { 88.0 } else { 94.0 };
                    let found = trend::sustained(
                        &s,
                        now,
                        window,
                        target,
                        false,
                        cfg.sustained_fraction,
                        active,
                    )
                    .map(|f| {
                        format!(
                            "SpO2 below {} % for {:.0} % of the last {}",
                            f.limit,
                            f.fraction * 100.0,
                            span(window)
                        )
                    });
                    self.trend_finding(
                        patient,
                        key,
                        "sustained_desaturation",
                        Severity::Medium,
                        found,
                        now,
                        batch,
                    );
                }
                Code::Temp => {
                    let key = "clinical:trend:temperature";
                    let active = self.is_open(patient, key);
                    let found = trend::temperature_rising(&s, now, &cfg, active).map(|g| {
                        format!(
                            "temperature rising from {:.1} to {:.1} °C in {}",
                            g.from,
                            g.to,
                            span(g.to_at - g.from_at)
                        )
                    });
                    self.trend_finding(
                        patient,
                        key,
                        "temperature_rising",
                        Severity::Low,
                        found,
                        now,
                        batch,
                    );
                }
                _ => {}
            }
        }
    }

    /// Raises, updates or resolves a trend's alert from what the detector found.
    #[allow(clippy::too_many_arguments)]
    fn trend_finding(
        &mut self,
        patient: &str,
        key: &str,
        rule: &'static str,
        severity: Severity,
        found: Option<String>,
        now: Millis,
        batch: &mut WriteBatch,
    ) {
        let k = (patient.to_string(), key.to_string());
        match (found, self.open.contains_key(&k)) {
            (Some(message), false) => {
                metrics::counter!(m::TRENDS_DETECTED, "rule" => rule).increment(1);
                let new = NewAlert {
                    kind: AlertKind::Clinical,
                    rule,
                    severity,
                    trigger: None,
                    message,
                    details: Some(serde_json::json!({ "trend": rule })),
                };
                self.raise_alert(patient, key, new, now, batch);
            }
            (None, true) => {
                let message = format!("{} no longer seen", rule.replace('_', " "));
                self.set_state(&k, AlertState::Resolved, message, now, batch);
            }
            _ => {}
        }
    }

    fn is_open(&self, patient: &str, key: &str) -> bool {
        self.open
            .contains_key(&(patient.to_string(), key.to_string()))
    }

    /// NEWS2 history for the rising-score trend; called with every new score.
    pub(super) fn news2_scored(
        &mut self,
        patient: &str,
        score: &Score,
        alerting: bool,
        now: Millis,
        batch: &mut WriteBatch,
    ) {
        let window = self.cfg.clinical.trends.news2_rise_window_s as Millis * 1000;
        let mut subscores = [None; 7];
        for (slot, p) in subscores.iter_mut().zip(news2::Parameter::ALL) {
            *slot = score.subscore(p).map(|s| s.score);
        }
        let h = self
            .clinic
            .news2_history
            .entry(patient.to_string())
            .or_default();
        h.push_back((now, subscores));
        while h.front().is_some_and(|(t, _)| *t < now - window) {
            h.pop_front();
        }
        let h = h.clone();
        self.clinic
            .latest_news2
            .insert(patient.to_string(), score.clone());
        if !self.cfg.clinical.trends.enabled {
            return;
        }
        let key = "clinical:trend:news2_rising";
        let active = self.is_open(patient, key);
        // A score that alerts by itself (its band, or any score while monitoring is raised), or an open NEWS2
        // alert, already tells the team: the rising trend is for rises nothing else shows, not a second alert.
        let covered = alerting || self.is_open(patient, "clinical:news2");
        if covered && !active {
            return;
        }
        let cfg = self.cfg.clinical.trends.clone();
        let found = trend::news2_rising(&h, &cfg, active).map(|g| {
            format!(
                "NEWS2 rose from {} to {} within {} (on the parameters scored both times)",
                g.from,
                g.to,
                span(g.to_at - g.from_at)
            )
        });
        // Low: the score alerts by its own band; a rise inside the low band needs attention, not a page.
        self.trend_finding(
            patient,
            key,
            "news2_rising",
            Severity::Low,
            found,
            now,
            batch,
        );
    }

    /// A reading of `code` satisfies the patient's schedules for it: any open missing-reading alert resolves.
    fn resolve_missing(
        &mut self,
        patient: &str,
        code: Code,
        at: Millis,
        now: Millis,
        batch: &mut WriteBatch,
    ) {
        let Some(p) = self.cfg.patient(patient) else {
            return;
        };
        let names: Vec<String> = p
            .schedules
            .iter()
            .filter(|s| s.code() == code)
            .map(|s| s.name.clone())
            .collect();
        for name in names {
            let k = (patient.to_string(), format!("clinical:missing:{name}"));
            if self.open.contains_key(&k) {
                let message = format!("{} received ({})", code.as_str(), local_time(&self.cfg, at));
                self.set_state(&k, AlertState::Resolved, message, now, batch);
            }
        }
    }

    /// Timers of the clinical engine: schedules, flapping alerts gone quiet, learned cadence, expired baselines,
    /// raised monitoring that has run out.
    pub(super) fn clinical_tick(&mut self, now: Millis, batch: &mut WriteBatch) {
        self.schedules(now, batch);
        self.quiet_flaps(now, batch);
        self.learned_silence(now, batch);
        self.expired_baselines(now, batch);
    }

    fn schedules(&mut self, now: Millis, batch: &mut WriteBatch) {
        let tz = self.cfg.timezone();
        let cfg = self.cfg.clone();
        for p in &cfg.patients {
            for s in &p.schedules {
                let Some(slot) = schedule::current_slot(&s.minutes(), now, &tz) else {
                    continue;
                };
                let grace = s.grace_s as Millis * 1000;
                // A slot that fell due (and ran out of grace) while the hub was not running is not chased.
                if slot.due_at + grace < self.started_at {
                    continue;
                }
                let code = s.code();
                let taken = self
                    .clinic
                    .last_code_at
                    .get(&(p.id.clone(), code))
                    .is_some_and(|t| *t >= slot.opens_at);
                if taken {
                    continue;
                }
                let sent = (p.id.clone(), s.name.clone(), slot.due_at);
                if !self.clinic.reminders_sent.contains(&sent) {
                    self.clinic.reminders_sent.insert(sent);
                    batch
                        .reminders
                        .push((p.id.clone(), s.name.clone(), slot.due_at, now));
                    let payload = serde_json::json!({
                        "patient": p.id,
                        "schedule": s.name,
                        "code": code.as_str(),
                        "due": hearth_protocol::json::format_rfc3339_millis(slot.due_at),
                        "message": format!("Time to take your {} reading (due {})", code.as_str().replace('_', " "), slot.label),
                    });
                    self.remind(&p.id, &payload);
                }
                let key = format!("clinical:missing:{}", s.name);
                let slot_key = (p.id.clone(), s.name.clone(), slot.due_at);
                if now >= slot.due_at + grace
                    && !self.is_open(&p.id, &key)
                    && self.clinic.missing_alerted.insert(slot_key)
                {
                    let message = format!(
                        "no {} by {} (reminder sent at {}, none since)",
                        code.as_str().replace('_', " "),
                        slot.label,
                        slot.label
                    );
                    let new = NewAlert {
                        kind: AlertKind::Clinical,
                        rule: "missing_reading",
                        severity: Severity::Low,
                        trigger: None,
                        message,
                        details: Some(serde_json::json!({
                            "schedule": s.name,
                            "code": code.as_str(),
                            "due": hearth_protocol::json::format_rfc3339_millis(slot.due_at),
                        })),
                    };
                    self.raise_alert(&p.id, &key, new, now, batch);
                }
            }
        }
    }

    /// Admits a measured value into the patient's NEWS2 inputs unless it would change its subscore unconfirmed
    /// (`rules::confirm`). Returns whether the inputs changed. A held worsening to a subscore of 2 or 3 from a spot-check
    /// device asks the home for a repeat reading (a continuous device repeats by itself).
    pub(super) fn news2_admit(
        &mut self,
        patient: &str,
        device: &str,
        param: news2::Parameter,
        value: news2::Observed<f64>,
        now: Millis,
    ) -> bool {
        let scale = self.news2_scale(patient);
        let mut rule = self.cfg.clinical.news2_confirm.rule();
        if !self.cfg.alerting.news2 {
            // Nothing is scored: the SBARD handover shows every latest value as it came.
            rule.after_ms = 0;
        }
        let ask_repeat = self.cfg.clinical.news2_confirm.ask_repeat;
        let o2_fresh_ms = self
            .cfg
            .clinical
            .news2_freshness
            .windows()
            .window_ms(news2::Parameter::AirOrOxygen);
        let inputs = self.news2_inputs.entry(patient.to_string()).or_default();
        // As the score sees it: oxygen counts only while its check-in is fresh.
        let on_oxygen = inputs
            .air_or_oxygen
            .is_some_and(|o| o.value == AirOrOxygen::Oxygen && now - o.at <= o2_fresh_ms);
        let Some(slot) = param.code().and_then(|c| news2_slot(inputs, c)) else {
            return false;
        };
        if !value.value.is_finite() || slot.is_some_and(|s| s.at > value.at) {
            // Not finite (never scored), or older than the value in the score: a late reading never replaces it.
            return false;
        }
        let scored = |o: news2::Observed<f64>| {
            news2::parameter_score(param, o.value, scale, on_oxygen)
                .map(|score| confirm::Scored { value: o, score })
        };
        let (Some(new), current) = (scored(value), slot.and_then(scored)) else {
            return false;
        };
        // One alarm delay per patient and code: the threshold rules' own `for_s` (an agreed baseline's, say 600 s for
        // a continuous oximeter) holds the NEWS2 value as long, so one re-check confirms both. Looked up only for a
        // reading that changes the subscore: a steady one is accepted whatever the delay.
        if rule.after_ms > 0
            && new.score != confirm::base(&rule, current, new)
            && let Some(code) = param.code()
        {
            let longest = self
                .rules
                .groups(patient, code, now)
                .iter()
                .flatten()
                .map(|t| t.for_ms)
                .max()
                .unwrap_or(0);
            // At most half the window, so a confirming reading always has room (a threshold rule with a very long
            // `for_s` must not make a held change unconfirmable).
            rule.after_ms = rule.after_ms.max(longest).min(rule.within_ms / 2);
        }
        let key = (patient.to_string(), param);
        let held = self.clinic.news2_held.get(&key).copied();
        let (verdict, still_held) = confirm::judge(&rule, current, held, new);
        match still_held {
            Some(h) => self.clinic.news2_held.insert(key, h),
            None => self.clinic.news2_held.remove(&key),
        };
        let counter =
            |v: &'static str| metrics::counter!(m::NEWS2_VALUES, "verdict" => v).increment(1);
        match verdict {
            confirm::Verdict::Accept { refuted } => {
                if refuted.is_some() {
                    counter("refuted");
                }
                *slot = Some(value);
                true
            }
            confirm::Verdict::Confirmed { .. } => {
                counter("confirmed");
                *slot = Some(value);
                true
            }
            confirm::Verdict::Hold { first } => {
                counter("held");
                let worse = new.score >= 2 && new.score > confirm::base(&rule, current, new);
                if first && ask_repeat && worse && !self.is_continuous(device) {
                    self.ask_repeat(patient, param, value.at + rule.after_ms, now);
                }
                false
            }
        }
    }

    /// A device that reports at least every 30 min: configured so, or learned from its readings.
    fn is_continuous(&self, device: &str) -> bool {
        let configured = self
            .cfg
            .device(device)
            .and_then(|d| d.expected_every_s)
            .is_some_and(|s| (s as Millis) * 1000 <= CONTINUOUS_MS);
        configured
            || self.clinic.cadence.get(device).is_some_and(|c| {
                c.samples >= CADENCE_MIN_SAMPLES && c.mean_ms <= CONTINUOUS_MS as f64
            })
    }

    /// Asks the home display (or a board's buzzer) for a repeat reading of `param`; advisory, like a reminder.
    fn ask_repeat(&mut self, patient: &str, param: news2::Parameter, due: Millis, now: Millis) {
        let what = match param {
            news2::Parameter::RespRate => "breathing rate",
            news2::Parameter::Spo2 => "oxygen level",
            news2::Parameter::BpSys => "blood pressure",
            news2::Parameter::Pulse => "pulse",
            news2::Parameter::Temp => "temperature",
            news2::Parameter::AirOrOxygen | news2::Parameter::Consciousness => return,
        };
        let payload = serde_json::json!({
            "patient": patient,
            "repeat": param.as_str(),
            "due": hearth_protocol::json::format_rfc3339_millis(due.max(now)),
            "message": format!("Please rest for a few minutes, then take your {what} reading again"),
        });
        self.remind(patient, &payload);
    }

    /// Sends `payload` to the patient's home display on `{prefix}/reminders/{patient}` (schedules and repeat requests).
    fn remind(&mut self, patient: &str, payload: &serde_json::Value) {
        metrics::counter!(m::REMINDERS_SENT).increment(1);
        let topic = format!("{}/reminders/{}", self.cfg.sensors.topic_prefix, patient);
        self.push_notice(Notice {
            topic,
            payload: payload.to_string(),
        });
    }

    fn push_notice(&mut self, n: Notice) {
        // Bounded: reminders are advisory (the team's alert follows); a backlog means nobody is draining them.
        if self.clinic.notices.len() >= 256 {
            metrics::counter!(m::NOTICES_DROPPED).increment(1);
            tracing::warn!("notice queue full; reminder not sent to the home");
            return;
        }
        self.clinic.notices.push(n);
    }

    /// Notices produced since the last call (sent by the daemon to the home's broker after commit).
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.clinic.notices)
    }

    /// Threshold raise with flap control: a group that keeps breaching is held open rather than raised anew.
    /// Returns true when the raise was absorbed by a held alert.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn flap_raise(
        &mut self,
        k: &(String, String),
        severity: Severity,
        rule: &str,
        trigger: &Trigger,
        message: &str,
        now: Millis,
        batch: &mut WriteBatch,
    ) -> bool {
        let window = self.cfg.clinical.flap_window_s as Millis * 1000;
        let flap = self.clinic.flaps.entry(k.clone()).or_default();
        flap.note_raise(now, window);
        let Some(open) = self.open.get(k) else {
            return false;
        };
        // Held open through a recovery: this breach continues the same alert.
        if severity > open.severity {
            self.revise(
                k,
                AlertState::Updated,
                Some(severity),
                Some(rule),
                Some(trigger.clone()),
                message.to_string(),
                now,
                batch,
            );
        }
        true
    }

    /// Threshold resolve with flap control. Returns true when the alert is held open instead of resolving.
    pub(super) fn flap_hold(
        &mut self,
        k: &(String, String),
        now: Millis,
        batch: &mut WriteBatch,
    ) -> bool {
        let cfg = &self.cfg.clinical;
        let (window, count, quiet) = (
            cfg.flap_window_s as Millis * 1000,
            cfg.flap_count,
            cfg.flap_quiet_s,
        );
        let Some(flap) = self.clinic.flaps.get_mut(k) else {
            return false;
        };
        if !flap.flapping(now, window, count) {
            return false;
        }
        let first_hold = flap.held_since.is_none();
        flap.held_since = Some(now);
        let raises = flap.raises(now, window);
        let flagged = self
            .open
            .get(k)
            .and_then(|a| a.details.as_ref())
            .is_some_and(|d| d.get("flapping").is_some());
        if first_hold && !flagged {
            metrics::counter!(m::ALERTS_FLAPPING).increment(1);
            if let Some(a) = self.open.get_mut(k) {
                let mut d = a.details.take().unwrap_or_else(|| serde_json::json!({}));
                d["flapping"] = serde_json::json!({ "raises": raises, "window_s": window / 1000 });
                a.details = Some(d);
            }
            let message = format!(
                "flapping: {raises} alerts in {}; held open until stable for {}",
                span(window),
                span(quiet as Millis * 1000)
            );
            self.set_state(k, AlertState::Updated, message, now, batch);
        }
        true
    }

    fn quiet_flaps(&mut self, now: Millis, batch: &mut WriteBatch) {
        let quiet = self.cfg.clinical.flap_quiet_s as Millis * 1000;
        let done: Vec<(String, String)> = self
            .clinic
            .flaps
            .iter()
            .filter(|(_, f)| f.quiet(now, quiet))
            .map(|(k, _)| k.clone())
            .collect();
        for k in done {
            self.clinic.flaps.remove(&k);
            if self.open.contains_key(&k) {
                let message = format!("stable for {} after flapping", span(quiet));
                self.set_state(&k, AlertState::Resolved, message, now, batch);
            }
        }
        let window = self.cfg.clinical.flap_window_s as Millis * 1000;
        self.clinic
            .flaps
            .retain(|_, f| f.held_since.is_some() || f.raises(now, window) > 0);
    }

    /// A continuous device with no configured cadence is silent after several of its learned intervals.
    fn learned_silence(&mut self, now: Millis, batch: &mut WriteBatch) {
        let intervals = self.cfg.clinical.learned_silence_intervals as f64;
        let silent: Vec<(String, Millis, f64)> = self
            .clinic
            .cadence
            .iter()
            .filter(|(d, c)| {
                c.samples >= CADENCE_MIN_SAMPLES
                    && c.mean_ms <= CONTINUOUS_MS as f64
                    && self
                        .cfg
                        .device(d)
                        .is_none_or(|d| d.expected_every_s.is_none())
            })
            .filter_map(|(d, c)| {
                let last = c.last?;
                let limit = (c.mean_ms * intervals).max(MINUTE_MS as f64);
                ((now - last) as f64 > limit).then(|| (d.clone(), last, c.mean_ms))
            })
            .collect();
        for (device, last, mean) in silent {
            let key = (
                self.patient_or_home(&device),
                format!("technical:device_silent:{device}"),
            );
            if self.open.contains_key(&key) {
                continue;
            }
            let message = format!(
                "device {device} silent for {} (it usually reports every {})",
                span(now - last),
                span(mean as Millis)
            );
            self.raise(
                &key.0,
                &key.1,
                AlertKind::Technical,
                "device_silent",
                Severity::Medium,
                None,
                message,
                now,
                batch,
            );
        }
    }

    /// A personal baseline past its `until` no longer applies (the rule book falls back to the default); the team is
    /// told once, so a clinician reviews it.
    fn expired_baselines(&mut self, now: Millis, batch: &mut WriteBatch) {
        let rules = self.rules.clone();
        let cfg = self.cfg.clone();
        for p in &cfg.patients {
            for t in rules.own(&p.id) {
                let Some(until) = t.until.filter(|u| now >= *u) else {
                    continue;
                };
                let key = format!("technical:baseline_expired:{}", t.name);
                if !self.clinic.expiry_told.insert((p.id.clone(), key.clone())) {
                    continue;
                }
                let message = format!(
                    "{} expired {}; the default rule applies until a clinician reviews it",
                    t.describe(),
                    hearth_protocol::json::format_rfc3339_millis(until)
                );
                self.raise(
                    &p.id,
                    &key,
                    AlertKind::Technical,
                    "baseline_expired",
                    Severity::Low,
                    None,
                    message,
                    now,
                    batch,
                );
            }
        }
    }

    /// The incident a new alert joins: a clinical alert joins the patient's open incident or starts one.
    pub(super) fn incident_for(&self, patient: &str, kind: AlertKind) -> Option<String> {
        if kind != AlertKind::Clinical {
            return None;
        }
        self.open
            .values()
            .filter(|a| a.patient == patient && a.kind == AlertKind::Clinical)
            .find_map(|a| a.incident.clone())
            .or_else(|| Some(uuid::Uuid::new_v4().to_string()))
    }

    /// Writes the SBARD handover into a clinical alert's details.
    pub(super) fn attach_sbard(&self, a: &mut Alert, now: Millis) {
        if a.kind != AlertKind::Clinical {
            return;
        }
        let tz = self.cfg.timezone();
        let patient = self.cfg.patient(&a.patient);
        let mut agreements = Vec::new();
        if let Some(n) = patient
            .and_then(|p| p.news2.as_ref())
            .filter(|n| n.scale == 2)
        {
            agreements.push(format!(
                "on SpO2 scale 2 (agreed by {}: {})",
                n.agreed_by.as_deref().unwrap_or("?"),
                n.reason.as_deref().unwrap_or("")
            ));
        }
        for t in self.rules.own(&a.patient) {
            if t.until.is_none_or(|u| now < u) {
                agreements.push(t.describe());
            }
        }
        let mut vitals: Vec<(Code, f64, Millis)> = Vec::new();
        if let Some(i) = self.news2_inputs.get(&a.patient) {
            for (code, o) in [
                (Code::RespRate, i.resp_rate),
                (Code::Spo2, i.spo2),
                (Code::BpSys, i.bp_sys),
                (Code::HeartRate, i.pulse),
                (Code::Temp, i.temp),
            ] {
                if let Some(o) = o {
                    vitals.push((code, o.value, o.at));
                }
            }
        }
        let mut unconfirmed: Vec<(Code, f64, Millis)> = self
            .clinic
            .news2_held
            .iter()
            .filter(|((p, _), _)| *p == a.patient)
            .filter_map(|((_, param), h)| Some((param.code()?, h.value.value, h.value.at)))
            .collect();
        unconfirmed.sort_by_key(|(c, _, _)| c.as_str());
        if let Some((at, w)) = self
            .clinic
            .series
            .get(&(a.patient.clone(), Code::Weight))
            .and_then(Series::latest)
        {
            vitals.push((Code::Weight, w, at));
        }
        let soft = self.clinic.soft_signs.get(&a.patient);
        let others: Vec<String> = self
            .open
            .values()
            .filter(|o| o.patient == a.patient && o.kind == AlertKind::Clinical && o.id != a.id)
            .map(|o| o.message.clone())
            .collect();
        let facts = Facts {
            patient: &a.patient,
            rule: &a.rule,
            severity: a.severity,
            message: &a.message,
            raised_at: a.raised_at,
            now,
            tz: &tz,
            background: patient.and_then(|p| p.background.as_deref()),
            agreements,
            news2: self.clinic.latest_news2.get(&a.patient),
            vitals,
            unconfirmed,
            soft_signs: soft.map(|s| (s.signs.as_slice(), s.reporter.as_str(), s.at)),
            monitoring_raised: self.clinic.monitoring_raised(&a.patient, now),
            others,
            actions: self.clinic.actions.get(&a.id).cloned().unwrap_or_default(),
        };
        let s = sbard::build(&facts);
        let mut d = a.details.take().unwrap_or_else(|| serde_json::json!({}));
        if !d.is_object() {
            d = serde_json::json!({ "value": d });
        }
        d["sbard"] = serde_json::to_value(&s).unwrap_or_default();
        a.details = Some(d);
    }
}

/// `90 min`, `3 h`, `2 days`.
fn span(ms: Millis) -> String {
    let min = ms / MINUTE_MS;
    match min {
        0 => "under a minute".to_string(),
        m if m < 120 => format!("{m} min"),
        m if m < 48 * 60 => format!("{} h", m / 60),
        m => format!("{} days", m / (24 * 60)),
    }
}

fn local_time(cfg: &Config, ms: Millis) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned(cfg.timezone()).strftime("%H:%M").to_string())
        .unwrap_or_default()
}
