//! The core loop: the one task that owns clinical state and is the only writer of the database.
//!
//! It takes batches of inbound readings (group commit), runs the validity gate and the rules — synchronous functions
//! of (state, reading, now) — commits readings, quarantine, alerts, audit events and outbox rows in ONE transaction,
//! and only then acknowledges the readings to whatever sent them (invariants 1 and 2). A failed commit stops the
//! daemon: its sources have not acknowledged anything uncommitted, so a restart loses nothing ("crash-only").

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_protocol::json::{
    ActionKind, ActionMessage, AlertMessage, Severity, format_rfc3339_millis,
};
use hearth_protocol::{Code, Value};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, Millis};
use crate::config::Config;
use crate::gate::{self, Registry, Verdict};
use crate::model::{
    Alert, AlertKind, AlertState, ParsedReading, Reading, Reason, Source, TimeSource, Trigger,
    severity_str,
};
use crate::rules::news2;
use crate::rules::threshold::{self, GroupState, RuleBook, Transition};
use crate::store::{
    AlertEvent, DeliveryUpdate, DeviceRow, OutboxInsert, Store, StoreError, WriteBatch,
};
use crate::telemetry as m;

mod clinical;
mod device_clock;
pub use clinical::{CheckinInbound, Notice};

/// Called once the fate of an inbound message is committed (stored, quarantined or known duplicate).
/// `frame_ack` carries the encoded acknowledgement frame for board frames.
pub trait Acknowledge: Send + Sync + 'static {
    fn committed(self: Box<Self>, frame_ack: Option<Vec<u8>>);
}

/// A message from a source, parsed but not yet gated.
pub struct Inbound {
    pub source: Source,
    pub received_at: Millis,
    pub payload: bytes::Bytes,
    /// The parsed reading, or why it could not be parsed (quarantined as is).
    pub parsed: Result<ParsedReading, Rejection>,
    pub ack: Option<Box<dyn Acknowledge>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub device: Option<String>,
    pub seq: Option<u32>,
    pub reason: Reason,
    pub detail: String,
}

/// Everything the core loop consumes.
pub enum CoreInput {
    Reading(Inbound),
    Delivery(DeliveryUpdate),
    /// A nurse's action from the community hub.
    Action(ActionMessage),
    /// A carer's or patient's check-in.
    Checkin(CheckinInbound),
    /// A personal baseline agreed in the community hub.
    Baseline(hearth_protocol::json::BaselineMessage),
    UpstreamLink {
        up: bool,
        at: Millis,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Escalation stops climbing after this many levels (then it is a standing escalated alert).
const MAX_ESCALATIONS: u32 = 3;
/// Budget enforcement runs every this many ticks.
const BUDGET_EVERY_TICKS: u64 = 60;
const HOME: &str = "home";

pub struct Core<C: Clock> {
    cfg: Arc<Config>,
    clock: C,
    store: Store,
    registry: Registry,
    rules: Arc<RuleBook>,
    devices: HashMap<String, DeviceRow>,
    groups: HashMap<(String, String), GroupState>,
    open: HashMap<(String, String), Alert>,
    /// Each patient's latest value of every NEWS2 parameter (rebuilt from new readings after a restart).
    news2_inputs: HashMap<String, news2::Inputs>,
    upstream_down_since: Option<Millis>,
    started_at: Millis,
    ticks: u64,
    outbox_changed: Arc<Notify>,
    clinic: clinical::Clinic,
    /// Per device, the delays of its last readings: a wrong clock shows as a steady one (`device_clock`).
    delays: HashMap<String, device_clock::Delays>,
    notice_tx: Option<mpsc::Sender<Notice>>,
}

impl<C: Clock> Core<C> {
    /// Loads the state the core owns from the database.
    pub async fn load(
        cfg: Arc<Config>,
        clock: C,
        store: Store,
        outbox_changed: Arc<Notify>,
    ) -> Result<Self, CoreError> {
        let devices = store
            .devices()
            .await?
            .into_iter()
            .map(|d| (d.id.clone(), d))
            .collect();
        let open = store
            .alerts(true)
            .await?
            .into_iter()
            .map(|a| ((a.patient.clone(), a.key.clone()), a))
            .collect();
        let groups = store
            .rule_states()
            .await?
            .into_iter()
            .filter_map(|(p, k, s)| serde_json::from_str(&s).ok().map(|g| ((p, k), g)))
            .collect();
        let started_at = clock.now_ms();
        let (mut clinic, news2_inputs) = clinical::Clinic::load(&cfg, &store, started_at).await?;
        let mut rules = RuleBook::from_config(&cfg);
        clinic.load_baselines(&store, &mut rules).await?;
        Ok(Core {
            registry: Registry::from_config(&cfg),
            rules: Arc::new(rules),
            cfg,
            clock,
            store,
            devices,
            groups,
            open,
            news2_inputs,
            upstream_down_since: None,
            started_at,
            ticks: 0,
            outbox_changed,
            clinic,
            delays: HashMap::new(),
            notice_tx: None,
        })
    }

    /// Runs until `shutdown`; returns an error only when the database refuses a commit.
    ///
    /// `readings` carries what the sources send; `control` carries delivery progress, nurse actions and link state,
    /// and is served first, so an acknowledgement never waits behind a queue of readings.
    pub async fn run(
        mut self,
        mut readings: mpsc::Receiver<CoreInput>,
        mut control: mpsc::Receiver<CoreInput>,
        shutdown: CancellationToken,
    ) -> Result<(), CoreError> {
        let mut tick = tokio::time::interval(Duration::from_millis(self.cfg.alerting.tick_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let max = self.cfg.storage.max_batch;
        let gather = Duration::from_millis(self.cfg.storage.gather_ms);
        let mut buf = Vec::with_capacity(max);
        let mut urgent = Vec::new();
        let mut control_open = true;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                n = control.recv_many(&mut urgent, max), if control_open => {
                    if n == 0 {
                        control_open = false;
                        continue;
                    }
                    self.step(&mut urgent).await?;
                }
                n = readings.recv_many(&mut buf, max) => {
                    if n == 0 { break; }
                    // Group commit: at low rates wait a moment for more, so each fsync carries several readings.
                    let deadline = tokio::time::Instant::now() + gather;
                    while buf.len() < max {
                        let room = max - buf.len();
                        match tokio::time::timeout_at(deadline, readings.recv_many(&mut buf, room)).await {
                            Ok(n) if n > 0 => {}
                            _ => break,
                        }
                    }
                    while let Ok(c) = control.try_recv() {
                        buf.push(c);
                    }
                    self.step(&mut buf).await?;
                }
                _ = tick.tick() => self.tick().await?,
            }
        }
        Ok(())
    }

    /// Processes one batch of inputs and commits it.
    pub async fn step(&mut self, inputs: &mut Vec<CoreInput>) -> Result<(), CoreError> {
        let now = self.clock.now_ms();
        let mut batch = WriteBatch::default();
        let mut acks: Vec<(Box<dyn Acknowledge>, Option<String>)> = Vec::new();
        let mut touched: Vec<String> = Vec::new();
        for input in inputs.drain(..) {
            match input {
                CoreInput::Reading(mut inb) => {
                    let ack = inb.ack.take();
                    let source = inb.source;
                    let frame_device = self.ingest(inb, now, &mut batch, &mut touched).await?;
                    if let Some(ack) = ack {
                        acks.push((
                            ack,
                            frame_device
                                .filter(|_| matches!(source, Source::MqttFrame | Source::Serial)),
                        ));
                    }
                }
                CoreInput::Delivery(d) => {
                    if let DeliveryUpdate::Delivered { .. } = d {
                        metrics::counter!(m::ALERT_MESSAGES_DELIVERED).increment(1);
                    }
                    if let DeliveryUpdate::Published { resend: true, .. } = d {
                        metrics::counter!(m::UPSTREAM_RESENDS).increment(1);
                    }
                    batch.delivery.push(d);
                }
                CoreInput::Action(a) => self.apply_action(a, now, &mut batch),
                CoreInput::Baseline(b) => self.baseline(b, now, &mut batch),
                CoreInput::Checkin(mut c) => {
                    let ack = c.ack.take();
                    self.checkin(c, now, &mut batch).await?;
                    if let Some(ack) = ack {
                        acks.push((ack, None));
                    }
                }
                CoreInput::UpstreamLink { up, at } => {
                    if up {
                        self.upstream_down_since = None;
                    } else {
                        self.upstream_down_since.get_or_insert(at);
                    }
                    self.check_upstream(now, &mut batch);
                }
            }
        }
        touched.sort();
        touched.dedup();
        for d in touched {
            if let Some(row) = self.devices.get(&d) {
                batch.devices.push(row.clone());
            }
        }
        self.commit(&batch).await?;
        let acked = !acks.is_empty();
        for (ack, frame_device) in acks {
            let frame_ack = frame_device.and_then(|d| self.frame_ack(&d));
            ack.committed(frame_ack);
        }
        if acked {
            crate::failpoints::crash_point(crate::failpoints::READING_ACKNOWLEDGED);
        }
        Ok(())
    }

    async fn commit(&self, batch: &WriteBatch) -> Result<(), CoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        self.store.commit(batch).await?;
        metrics::histogram!(m::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
        metrics::counter!(m::READINGS_COMMITTED).increment(batch.readings.len() as u64);
        for q in &batch.quarantine {
            metrics::counter!(m::READINGS_QUARANTINED, "reason" => q.reason.as_str()).increment(1);
        }
        if !batch.outbox.is_empty() || !batch.delivery.is_empty() {
            self.outbox_changed.notify_one();
        }
        if !batch.alerts.is_empty() {
            self.alert_gauges();
        }
        Ok(())
    }

    /// Open alerts by state and kind (resolved ones are not held).
    fn alert_gauges(&self) {
        for kind in [AlertKind::Clinical, AlertKind::Technical] {
            for state in AlertState::ALL
                .iter()
                .filter(|s| **s != AlertState::Resolved)
            {
                let n = self
                    .open
                    .values()
                    .filter(|a| a.kind == kind && a.state == *state)
                    .count();
                metrics::gauge!(m::ALERTS_OPEN, "state" => state.as_str(), "kind" => kind.as_str())
                    .set(n as f64);
            }
        }
    }

    /// Gates one reading and applies the rules. Returns the device id when a frame ack is owed.
    async fn ingest(
        &mut self,
        inb: Inbound,
        now: Millis,
        batch: &mut WriteBatch,
        touched: &mut Vec<String>,
    ) -> Result<Option<String>, CoreError> {
        metrics::counter!(m::READINGS_RECEIVED, "source" => inb.source.as_str()).increment(1);
        let ctx = gate::Inbound {
            source: inb.source,
            received_at: inb.received_at,
            payload: &inb.payload,
        };
        let parsed = match inb.parsed {
            Ok(p) => p,
            Err(r) => {
                batch
                    .quarantine
                    .push(gate::quarantined(&ctx, r.device, r.seq, r.reason, r.detail));
                return Ok(None);
            }
        };
        let device = parsed.device.clone();
        let seq = parsed.seq;
        match gate::check(&self.registry, self.devices.get(&device), parsed, &ctx, now) {
            Verdict::Duplicate => {
                metrics::counter!(m::READINGS_DUPLICATE).increment(1);
                Ok(Some(device))
            }
            Verdict::OlderSequence => {
                let in_batch = batch
                    .readings
                    .iter()
                    .any(|r| r.device == device && r.seq == seq);
                if in_batch || self.store.reading_exists(&device, seq).await? {
                    metrics::counter!(m::READINGS_DUPLICATE).increment(1);
                } else {
                    let last = self
                        .devices
                        .get(&device)
                        .and_then(|d| d.last_seq)
                        .unwrap_or(0);
                    let detail = format!("sequence {seq} after {last}, never stored before");
                    batch.quarantine.push(gate::quarantined(
                        &ctx,
                        Some(device.clone()),
                        Some(seq),
                        Reason::ReplayedSequence,
                        detail,
                    ));
                }
                Ok(Some(device))
            }
            Verdict::Reject(q) => {
                batch.quarantine.push(q);
                Ok(None)
            }
            Verdict::Accept { reading, rejected } => {
                batch.quarantine.extend(rejected);
                self.note_device(&reading, touched);
                self.apply_rules(&reading, now, batch);
                batch.readings.push(reading);
                Ok(Some(device))
            }
        }
    }

    fn note_device(&mut self, r: &Reading, touched: &mut Vec<String>) {
        let d = self
            .devices
            .entry(r.device.clone())
            .or_insert_with(|| DeviceRow {
                id: r.device.clone(),
                ..Default::default()
            });
        d.last_seq = Some(r.seq);
        if r.time_source == TimeSource::Device {
            d.last_observed_at = Some(r.observed_at);
        }
        d.last_seen_at = d.last_seen_at.max(r.received_at);
        if let Some(b) = r
            .obs
            .iter()
            .find(|o| o.code == Code::Battery)
            .and_then(|o| o.value.number())
        {
            d.battery = Some(b);
        }
        touched.push(r.device.clone());
    }

    fn apply_rules(&mut self, r: &Reading, now: Millis, batch: &mut WriteBatch) {
        let stale = now - r.observed_at > (self.cfg.alerting.stale_after_s as Millis) * 1000;
        self.device_clock_check(r, now, batch);
        for o in &r.obs {
            // An invalid value has no number: it can never be scored (invariant 6).
            let Value::Number(q) = o.value else { continue };
            let v = q.to_f64();
            if o.code == Code::Battery {
                self.battery_rule(r, v, now, batch);
                continue;
            }
            if stale {
                metrics::counter!(m::READINGS_STALE).increment(1);
                continue;
            }
            let trigger = Trigger {
                device: r.device.clone(),
                seq: r.seq,
                code: o.code,
                value: v,
                observed_at: r.observed_at,
                time_source: r.time_source,
            };
            let rules = self.rules.clone();
            for group in rules.groups(&r.patient, o.code, now) {
                let Some(first) = group.first() else { continue };
                let key = first.group_key();
                let gk = (r.patient.clone(), key.clone());
                let state = self.groups.entry(gk.clone()).or_default();
                let before = state.clone();
                let transition = threshold::evaluate(&group, state, v, r.observed_at);
                if *state != before {
                    let json = serde_json::to_string(&*state).unwrap_or_default();
                    batch
                        .rule_state
                        .push((r.patient.clone(), key.clone(), json));
                }
                let Some(transition) = transition else {
                    continue;
                };
                let msg = |rule: &str| format!("{} {} {}: {}", o.code, q, o.code.unit(), rule);
                match transition {
                    Transition::Raise { severity, rule } => {
                        let message = msg(&rule);
                        if self.flap_raise(&gk, severity, &rule, &trigger, &message, now, batch) {
                            continue;
                        }
                        self.raise(
                            &r.patient,
                            &key,
                            AlertKind::Clinical,
                            &rule,
                            severity,
                            Some(trigger.clone()),
                            message,
                            now,
                            batch,
                        );
                    }
                    Transition::Upgrade { severity, rule } => {
                        let message = msg(&rule);
                        self.revise(
                            &gk,
                            AlertState::Updated,
                            Some(severity),
                            Some(&rule),
                            Some(trigger.clone()),
                            message,
                            now,
                            batch,
                        );
                    }
                    Transition::Resolve { rule } => {
                        if self.flap_hold(&gk, now, batch) {
                            continue;
                        }
                        let message =
                            format!("{} recovered to {} {} ({rule})", o.code, q, o.code.unit());
                        self.revise(
                            &gk,
                            AlertState::Resolved,
                            None,
                            None,
                            Some(trigger.clone()),
                            message,
                            now,
                            batch,
                        );
                    }
                }
            }
        }
        self.news2_rule(r, now, batch);
        self.clinical_after_reading(r, now, batch);
        // A device that speaks again is no longer silent.
        let silent = (
            self.patient_or_home(&r.device),
            format!("technical:device_silent:{}", r.device),
        );
        if self.open.contains_key(&silent) {
            let message = format!("device {} is reporting again", r.device);
            self.set_state(&silent, AlertState::Resolved, message, now, batch);
        }
    }

    /// Applies a nurse's action to an open alert. Acknowledge, snooze and resolve are new revisions (sent back
    /// upstream, so the community hub sees the home recorded them); an assignment goes into the audit trail.
    /// An action on an alert that is not open (already resolved, unknown) is counted and logged.
    fn apply_action(&mut self, a: ActionMessage, now: Millis, batch: &mut WriteBatch) {
        let found = self
            .open
            .iter()
            .find(|(_, al)| al.id == a.alert_id)
            .map(|(k, _)| k.clone());
        let Some(key) = found else {
            metrics::counter!(m::ACTIONS_IGNORED).increment(1);
            tracing::info!(alert = %a.alert_id, action = a.action.as_str(), "action for an alert that is not open");
            return;
        };
        metrics::counter!(m::ACTIONS_APPLIED, "action" => a.action.as_str()).increment(1);
        let who = format!("{} (action {})", a.by, a.action_id);
        let decision = match a.action {
            ActionKind::Acknowledge => format!("acknowledged by {}", a.by),
            ActionKind::Assign => format!(
                "assigned to {} by {}",
                a.assignee.as_deref().unwrap_or("?"),
                a.by
            ),
            ActionKind::Snooze => format!(
                "escalation snoozed until {} by {}: {}",
                a.until.map(format_rfc3339_millis).unwrap_or_default(),
                a.by,
                a.reason.as_deref().unwrap_or("")
            ),
            ActionKind::Resolve => format!(
                "resolved by {}: {}",
                a.by,
                a.reason.as_deref().unwrap_or("")
            ),
        };
        self.clinic.note_action(&a.alert_id, decision);
        match a.action {
            ActionKind::Acknowledge => {
                match self.open.get_mut(&key) {
                    Some(al) if !al.acknowledged => al.acknowledged = true,
                    _ => return,
                }
                let message = format!("acknowledged by {who}");
                self.set_state(&key, AlertState::Acknowledged, message, now, batch);
            }
            ActionKind::Snooze => {
                if let Some(al) = self.open.get_mut(&key) {
                    al.snoozed_until = a.until;
                }
                let until = a.until.map(format_rfc3339_millis).unwrap_or_default();
                let reason = a.reason.unwrap_or_default();
                let message = format!("escalation snoozed until {until} by {who}: {reason}");
                self.set_state(&key, AlertState::Updated, message, now, batch);
            }
            ActionKind::Resolve => {
                let outcome = a.reason.unwrap_or_default();
                let message = format!("resolved by {who}: {outcome}");
                self.set_state(&key, AlertState::Resolved, message, now, batch);
                // The episode is closed: a value still out of range raises a new alert, not a silent one.
                if let Some(g) = self.groups.get_mut(&key) {
                    g.open = None;
                    g.breach_since.clear();
                    let json = serde_json::to_string(&*g).unwrap_or_default();
                    batch.rule_state.push((key.0.clone(), key.1.clone(), json));
                }
            }
            ActionKind::Assign => {
                let Some(al) = self.open.get_mut(&key) else {
                    return;
                };
                al.assignee = a.assignee.clone();
                let detail = format!("to {} by {who}", a.assignee.unwrap_or_default());
                let event = AlertEvent {
                    alert_id: al.id.clone(),
                    rev: al.rev,
                    at: now,
                    event: "assigned",
                    detail,
                };
                batch.alerts.retain(|x| x.id != al.id);
                batch.alerts.push(al.clone());
                batch.events.push(event);
            }
        }
    }

    /// NEWS2 (RCP 2017) from the patient's latest value of each parameter. One alert per patient, raised and
    /// upgraded by the Chart 4 band; it carries the whole score. A score with missing or stale parameters says so
    /// and is a lower bound: it may raise or upgrade an alert, never resolve one.
    fn news2_rule(&mut self, r: &Reading, now: Millis, batch: &mut WriteBatch) {
        // The latest values are kept even with NEWS2 scoring off: the SBARD handover shows them.
        let mut trigger = None;
        for o in &r.obs {
            let Some(v) = o.value.number() else { continue };
            let Some(param) = news2::Parameter::from_code(o.code) else {
                continue;
            };
            let observed = news2::Observed::new(v, r.observed_at);
            if self.news2_admit(&r.patient, &r.device, param, observed, now) {
                trigger.get_or_insert(Trigger {
                    device: r.device.clone(),
                    seq: r.seq,
                    code: o.code,
                    value: v,
                    observed_at: r.observed_at,
                    time_source: r.time_source,
                });
            }
        }
        if trigger.is_some() {
            self.news2_evaluate(&r.patient.clone(), trigger, now, batch);
        }
    }

    /// Scores NEWS2 for `patient` from the latest inputs and raises, upgrades or resolves its alert. `trigger` is
    /// the reading that changed an input (`None` for a check-in). While soft signs have raised the patient's
    /// monitoring, a score of 1–4 raises a low-priority alert (RESTORE2: soft signs plus any score need a review).
    fn news2_evaluate(
        &mut self,
        patient: &str,
        trigger: Option<Trigger>,
        now: Millis,
        batch: &mut WriteBatch,
    ) {
        if !self.cfg.alerting.news2 {
            return;
        }
        let scale = self.news2_scale(patient);
        let inputs = self.news2_inputs.entry(patient.to_string()).or_default();
        let freshness = self.cfg.clinical.news2_freshness.windows();
        let score = news2::score(inputs, scale, now, &freshness);
        let raised = self.clinic.monitoring_raised(patient, now);
        let severity = score
            .severity()
            .or_else(|| (raised && score.total >= 1).then_some(Severity::Low));
        self.news2_scored(patient, &score, severity.is_some(), now, batch);
        let key = (patient.to_string(), "clinical:news2".to_string());
        let details = serde_json::json!({ "news2": &score, "monitoring": if raised { "raised" } else { "usual" } });
        let mut message = format!("NEWS2 {} ({})", score.total, score.band);
        if !score.complete {
            let gaps: Vec<String> = score
                .missing
                .iter()
                .chain(&score.stale)
                .map(|p| p.to_string())
                .collect();
            message.push_str(&format!(
                ", incomplete (at least; not scored: {})",
                gaps.join(", ")
            ));
        }
        if raised {
            message.push_str(", monitoring raised after soft signs");
        }
        match (self.open.get(&key).map(|a| a.severity), severity) {
            (None, Some(severity)) => {
                let new = NewAlert {
                    kind: AlertKind::Clinical,
                    rule: "news2",
                    severity,
                    trigger,
                    message,
                    details: Some(details),
                };
                self.raise_alert(&key.0, &key.1, new, now, batch);
            }
            (Some(open), Some(severity)) if severity > open => {
                if let Some(a) = self.open.get_mut(&key) {
                    a.details = Some(details);
                }
                self.revise(
                    &key,
                    AlertState::Updated,
                    Some(severity),
                    None,
                    trigger,
                    message,
                    now,
                    batch,
                );
            }
            (Some(_), None) if score.complete => {
                if let Some(a) = self.open.get_mut(&key) {
                    a.details = Some(details);
                }
                self.revise(
                    &key,
                    AlertState::Resolved,
                    None,
                    None,
                    trigger,
                    message,
                    now,
                    batch,
                );
            }
            _ => {}
        }
    }

    fn news2_scale(&self, patient: &str) -> news2::Scale {
        let on_scale_2 = self
            .cfg
            .patients
            .iter()
            .any(|p| p.id == patient && p.news2.as_ref().is_some_and(|n| n.scale == 2));
        if on_scale_2 {
            news2::Scale::Two
        } else {
            news2::Scale::One
        }
    }

    fn battery_rule(&mut self, r: &Reading, pct: f64, now: Millis, batch: &mut WriteBatch) {
        let low = self.cfg.alerting.battery_low_pct;
        let key = (
            r.patient.clone(),
            format!("technical:battery_low:{}", r.device),
        );
        let open = self.open.contains_key(&key);
        if !open && pct < low {
            let message = format!("device {} battery at {pct} %", r.device);
            self.raise(
                &key.0,
                &key.1,
                AlertKind::Technical,
                "battery_low",
                Severity::Low,
                None,
                message,
                now,
                batch,
            );
        } else if open && pct >= low + 5.0 {
            let message = format!("device {} battery back to {pct} %", r.device);
            self.set_state(&key, AlertState::Resolved, message, now, batch);
        }
    }

    fn patient_or_home(&self, device: &str) -> String {
        self.registry
            .patient(device)
            .map(str::to_string)
            .unwrap_or_else(|_| HOME.to_string())
    }

    /// Timers: silent devices, escalation, upstream reachability, storage budget.
    pub async fn tick(&mut self) -> Result<(), CoreError> {
        let now = self.clock.now_ms();
        self.ticks += 1;
        let mut batch = WriteBatch::default();
        let cfg = self.cfg.clone();
        for d in &cfg.devices {
            let Some(every) = d.expected_every_s else {
                continue;
            };
            let last = self
                .devices
                .get(&d.id)
                .map(|r| r.last_seen_at)
                .unwrap_or(0)
                .max(self.started_at);
            let key = (
                self.patient_or_home(&d.id),
                format!("technical:device_silent:{}", d.id),
            );
            if now - last > 3 * (every as Millis) * 1000 && !self.open.contains_key(&key) {
                let message = format!("device {} silent for {} min", d.id, (now - last) / 60_000);
                self.raise(
                    &key.0,
                    &key.1,
                    AlertKind::Technical,
                    "device_silent",
                    Severity::Medium,
                    None,
                    message,
                    now,
                    &mut batch,
                );
            }
        }
        let escalate_ms = |sev: Severity| {
            let s = match sev {
                Severity::Low => self.cfg.alerting.escalate_low_after_s,
                _ => self.cfg.alerting.escalate_after_s,
            };
            (s as Millis) * 1000
        };
        let due: Vec<_> = self
            .open
            .iter()
            .filter(|(_, a)| {
                a.kind == AlertKind::Clinical && !a.acknowledged && a.escalations < MAX_ESCALATIONS
            })
            // Levels climb every escalate_after_s from the alert's last revision; a snooze defers the next one to
            // its expiry (escalating then if still unacknowledged), never to a burst of every missed level.
            .filter(|(_, a)| {
                let due = match a.snoozed_until {
                    Some(until) if a.updated_at < until => until,
                    _ => a.updated_at + escalate_ms(a.severity),
                };
                now >= due
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            let level = self.open[&k].escalations + 1;
            let message = format!("not acknowledged: escalation level {level}");
            self.set_state(&k, AlertState::Escalated, message, now, &mut batch);
        }
        self.check_upstream(now, &mut batch);
        self.clinical_tick(now, &mut batch);
        if self.ticks % BUDGET_EVERY_TICKS == 1 {
            self.check_storage(now, &mut batch).await?;
        }
        self.commit(&batch).await?;
        self.send_notices();
        Ok(())
    }

    /// Hands committed notices (reminders) to the sensor side, if a sender is attached; without one they wait for
    /// [`Core::take_notices`] (tests).
    fn send_notices(&mut self) {
        let Some(tx) = self.notice_tx.clone() else {
            return;
        };
        for n in self.take_notices() {
            if tx.try_send(n).is_err() {
                metrics::counter!(m::NOTICES_DROPPED).increment(1);
                tracing::warn!("sensor side not taking notices; reminder dropped");
            }
        }
    }

    /// Attaches the channel reminders go out on.
    pub fn with_notices(mut self, tx: mpsc::Sender<Notice>) -> Self {
        self.notice_tx = Some(tx);
        self
    }

    fn check_upstream(&mut self, now: Millis, batch: &mut WriteBatch) {
        let key = (
            HOME.to_string(),
            "technical:upstream_unreachable".to_string(),
        );
        let open = self.open.contains_key(&key);
        match self.upstream_down_since {
            Some(since)
                if !open
                    && now - since
                        >= (self.cfg.upstream.unreachable_alert_after_s as Millis) * 1000 =>
            {
                let message = format!("community hub unreachable for {} s", (now - since) / 1000);
                self.raise(
                    &key.0,
                    &key.1,
                    AlertKind::Technical,
                    "upstream_unreachable",
                    Severity::Medium,
                    None,
                    message,
                    now,
                    batch,
                );
            }
            None if open => {
                self.set_state(
                    &key,
                    AlertState::Resolved,
                    "community hub reachable again".into(),
                    now,
                    batch,
                );
            }
            _ => {}
        }
    }

    /// Above 80 % of the budget a technician is warned; at 90 % the oldest readings are evicted (never alerts).
    async fn check_storage(
        &mut self,
        now: Millis,
        batch: &mut WriteBatch,
    ) -> Result<(), CoreError> {
        let budget = self.cfg.storage.budget_mb * 1024 * 1024;
        let used = self.store.used_bytes().await?;
        let key = (
            HOME.to_string(),
            "technical:storage_nearly_full".to_string(),
        );
        let open = self.open.contains_key(&key);
        if !open && used > budget * 8 / 10 {
            let mb = self.cfg.storage.budget_mb;
            let message = format!("database uses {} of {mb} MB", used / (1024 * 1024));
            let rule = "storage_nearly_full";
            self.raise(
                &key.0,
                &key.1,
                AlertKind::Technical,
                rule,
                Severity::Low,
                None,
                message,
                now,
                batch,
            );
        } else if open && used < budget * 7 / 10 {
            let message = "database usage back under 70 %".to_string();
            self.set_state(&key, AlertState::Resolved, message, now, batch);
        }
        let evicted = self.store.enforce_budget(budget * 9 / 10).await?;
        if evicted > 0 {
            metrics::counter!(m::READINGS_EVICTED).increment(evicted);
            let key = (HOME.to_string(), "technical:readings_evicted".to_string());
            if !self.open.contains_key(&key) {
                let message = format!(
                    "storage budget reached: {evicted} oldest readings evicted (alerts kept)"
                );
                self.raise(
                    &key.0,
                    &key.1,
                    AlertKind::Technical,
                    "readings_evicted",
                    Severity::Low,
                    None,
                    message,
                    now,
                    batch,
                );
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn raise(
        &mut self,
        patient: &str,
        key: &str,
        kind: AlertKind,
        rule: &str,
        severity: Severity,
        trigger: Option<Trigger>,
        message: String,
        now: Millis,
        batch: &mut WriteBatch,
    ) {
        let new = NewAlert {
            kind,
            rule,
            severity,
            trigger,
            message,
            details: None,
        };
        self.raise_alert(patient, key, new, now, batch);
    }

    fn raise_alert(
        &mut self,
        patient: &str,
        key: &str,
        new: NewAlert<'_>,
        now: Millis,
        batch: &mut WriteBatch,
    ) {
        let NewAlert {
            kind,
            rule,
            severity,
            trigger,
            message,
            details,
        } = new;
        let incident = self.incident_for(patient, kind);
        let mut alert = Alert {
            id: uuid::Uuid::new_v4().to_string(),
            rev: 1,
            patient: patient.to_string(),
            key: key.to_string(),
            kind,
            rule: rule.to_string(),
            severity,
            state: AlertState::Open,
            trigger,
            raised_at: now,
            updated_at: now,
            message,
            escalations: 0,
            acknowledged: false,
            snoozed_until: None,
            assignee: None,
            details,
            incident,
        };
        self.attach_sbard(&mut alert, now);
        crate::failpoints::crash_point(crate::failpoints::ALERT_RAISED);
        metrics::counter!(m::ALERTS_RAISED, "severity" => severity_str(severity), "kind" => kind.as_str()).increment(1);
        tracing::info!(alert = %alert.id, kind = kind.as_str(), rule, severity = severity_str(severity), "alert raised");
        self.emit(&alert, "raised", now, batch);
        self.open
            .insert((patient.to_string(), key.to_string()), alert);
    }

    /// A new revision that changes only the state (and says why).
    fn set_state(
        &mut self,
        k: &(String, String),
        state: AlertState,
        message: String,
        now: Millis,
        batch: &mut WriteBatch,
    ) {
        self.revise(k, state, None, None, None, message, now, batch);
    }

    /// A new revision of an open alert (update, escalation or resolution).
    #[allow(clippy::too_many_arguments)]
    fn revise(
        &mut self,
        k: &(String, String),
        state: AlertState,
        severity: Option<Severity>,
        rule: Option<&str>,
        trigger: Option<Trigger>,
        message: String,
        now: Millis,
        batch: &mut WriteBatch,
    ) {
        let Some(mut alert) = self.open.remove(k) else {
            return;
        };
        alert.rev += 1;
        alert.state = state;
        alert.updated_at = now;
        alert.message = message;
        if let Some(s) = severity {
            alert.severity = s;
        }
        if let Some(r) = rule {
            alert.rule = r.to_string();
        }
        if trigger.is_some() {
            alert.trigger = trigger;
        }
        if state == AlertState::Escalated {
            alert.escalations += 1;
        }
        self.attach_sbard(&mut alert, now);
        tracing::info!(alert = %alert.id, rev = alert.rev, state = state.as_str(), "alert revised");
        self.emit(&alert, state.as_str(), now, batch);
        if state != AlertState::Resolved {
            self.open.insert(k.clone(), alert);
        }
    }

    fn emit(&self, a: &Alert, event: &'static str, now: Millis, batch: &mut WriteBatch) {
        let payload = serde_json::to_string(&self.message(a)).unwrap_or_default();
        batch.alerts.retain(|x| x.id != a.id);
        batch.alerts.push(a.clone());
        batch.events.push(AlertEvent {
            alert_id: a.id.clone(),
            rev: a.rev,
            at: now,
            event,
            detail: a.message.clone(),
        });
        batch.outbox.push(OutboxInsert {
            alert_id: a.id.clone(),
            rev: a.rev,
            patient: a.patient.clone(),
            topic: format!("{}/alerts/{}", self.cfg.upstream.topic_prefix, a.patient),
            payload,
            created_at: now,
        });
    }

    /// The JSON contract message for an alert revision.
    pub fn message(&self, a: &Alert) -> AlertMessage {
        alert_message(&self.cfg.home.id, a)
    }

    fn frame_ack(&self, device: &str) -> Option<Vec<u8>> {
        let key = self.registry.frame_key(device)?;
        let seq = self.devices.get(device)?.last_seq?;
        crate::sources::frames::encode_ack(device, seq, key)
    }
}

/// What a new alert is about.
struct NewAlert<'a> {
    kind: AlertKind,
    rule: &'a str,
    severity: Severity,
    trigger: Option<Trigger>,
    message: String,
    details: Option<serde_json::Value>,
}

/// Builds the alert message of the JSON contract (`protocol/schema/alert.schema.json`).
pub fn alert_message(home: &str, a: &Alert) -> AlertMessage {
    let t = a.trigger.as_ref();
    AlertMessage {
        id: a.id.clone(),
        rev: a.rev,
        home: home.to_string(),
        patient: a.patient.clone(),
        severity: a.severity,
        state: a.state,
        kind: a.kind,
        rule: a.rule.clone(),
        device: t.map(|t| t.device.clone()),
        seq: t.map(|t| t.seq),
        code: t.map(|t| t.code.as_str().to_string()),
        value: t.map(|t| t.value),
        unit: t.map(|t| t.code.unit().to_string()),
        observed_at: t.map(|t| t.observed_at),
        time_source: t.map(|t| t.time_source),
        raised_at: a.raised_at,
        message: a.message.clone(),
        incident: a.incident.clone(),
        details: a.details.clone().unwrap_or(serde_json::Value::Null),
    }
}

impl<C: Clock> Core<C> {
    /// Test access: the open alert of a patient's episode group.
    pub fn open_alert(&self, patient: &str, key: &str) -> Option<&Alert> {
        self.open.get(&(patient.to_string(), key.to_string()))
    }
}

/// Convenience for quarantining whole messages a source could not parse.
pub fn rejection(
    device: Option<String>,
    seq: Option<u32>,
    reason: Reason,
    detail: impl Into<String>,
) -> Rejection {
    Rejection {
        device,
        seq,
        reason,
        detail: detail.into(),
    }
}
