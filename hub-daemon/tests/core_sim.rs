//! The core loop with a real SQLite store and a manual clock: days of home life in milliseconds.

mod common;

use std::sync::atomic::Ordering;

use common::*;
use hearth_protocol::json::{AlertState, Severity};
use hearth_protocol::{Code, Invalid, Observation, Quantity};
use hearthd::clock::Clock;
use hearthd::core::CoreInput;
use hearthd::store::Store;
use sqlx::Row;

const CONFIG: &str = r#"
[home]
id = "home-t"
[alerting]
news2 = false
stale_after_s = 900
escalate_after_s = 900
battery_low_pct = 15
[[devices]]
id = "ox-1"
expected_every_s = 600
[[patients]]
id = "p-1"
devices = ["ox-1", "scale-1"]
[[rules]]
code = "spo2"
below = 92
severity = "high"
hysteresis = 1
[[rules]]
code = "heart_rate"
above = 110
severity = "medium"
for_s = 300
"#;

impl Rig {
    async fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("h.db")).await.unwrap();
        Rig::with(dir, store).await
    }

    async fn with(dir: tempfile::TempDir, store: Store) -> Rig {
        Rig::with_config(dir, store, CONFIG).await
    }

    async fn news2() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("h.db")).await.unwrap();
        Rig::with_config(dir, store, NEWS2_CONFIG).await
    }
}

#[tokio::test]
async fn alert_and_outbox_row_are_committed_with_the_reading_then_acknowledged() {
    let mut rig = Rig::new().await;
    rig.send("ox-1", vec![spo2(90)]).await;
    assert_eq!(
        rig.acks.load(Ordering::SeqCst),
        1,
        "acknowledged after the commit"
    );
    let readings: i64 = sqlx::query("SELECT COUNT(*) FROM readings")
        .fetch_one(rig.store.reader())
        .await
        .unwrap()
        .get(0);
    assert_eq!(readings, 1);
    let outbox = rig.outbox().await;
    assert_eq!(outbox.len(), 1);
    let events: i64 =
        sqlx::query("SELECT COUNT(*) FROM alert_events WHERE alert_id = ? AND event = 'raised'")
            .bind(&outbox[0].0)
            .fetch_one(rig.store.reader())
            .await
            .unwrap()
            .get(0);
    assert_eq!(events, 1, "the audit trail starts in the same transaction");
}

#[tokio::test]
async fn a_device_invalid_value_is_stored_but_never_scored() {
    let mut rig = Rig::new().await;
    rig.send(
        "ox-1",
        vec![Observation::invalid(Code::Spo2, Invalid::NaN), hr(80)],
    )
    .await;
    assert!(rig.outbox().await.is_empty());
    let obs = rig.store.readings_since(0).await.unwrap().remove(0).4;
    assert!(obs.contains(r#""spo2":{"invalid":"nan"}"#), "{obs}");
}

#[tokio::test]
async fn stale_readings_fire_no_value_rule() {
    let mut rig = Rig::new().await;
    let two_hours_ago = rig.clock.now_ms() - 2 * HOUR;
    rig.send_at("ox-1", 1, Some(two_hours_ago), vec![spo2(80)])
        .await;
    assert!(
        rig.outbox().await.is_empty(),
        "an old value must not raise an alarm now"
    );
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM readings")
        .fetch_one(rig.store.reader())
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "but it is kept");
}

/// A device whose clock runs six hours slow: every reading arrives stale and fires nothing, so the hub says so with
/// a technical alert (hazard H05) — and not for a phone that delivers a backlog — and resolves it once the clock is
/// set.
#[tokio::test]
async fn a_device_clock_hours_slow_raises_a_technical_alert() {
    let mut rig = Rig::new().await;
    // A backlog: five readings taken over four hours a day ago, delivered together.
    let now = rig.clock.now_ms();
    for (i, ago) in [1680, 1630, 1580, 1530, 1480].into_iter().enumerate() {
        rig.send_at("ox-1", 1 + i as u32, Some(now - ago * MIN), vec![spo2(97)])
            .await;
    }
    assert!(
        payloads(&rig, "device_clock").await.is_empty(),
        "a backlog is not a clock"
    );
    for i in 0..5u32 {
        rig.clock.advance(30 * MIN);
        let t = rig.clock.now_ms() - 6 * HOUR;
        rig.send_at("ox-1", 10 + i, Some(t), vec![spo2(85)]).await;
    }
    let alerts = payloads(&rig, "device_clock").await;
    assert_eq!(alerts.len(), 1, "five readings 6 h late, each the same");
    assert_eq!(alerts[0]["kind"], "technical");
    assert!(
        alerts[0]["message"]
            .as_str()
            .unwrap()
            .contains("about 360 min")
    );
    assert!(
        rig.states().await.iter().all(|s| !s.starts_with("spo2")),
        "the stale values themselves still fire nothing"
    );
    let now = rig.clock.now_ms();
    rig.send_at("ox-1", 20, Some(now), vec![spo2(97)]).await; // the clock was set
    let alerts = payloads(&rig, "device_clock").await;
    assert_eq!(alerts.last().unwrap()["state"], "resolved");
}

#[tokio::test]
async fn duration_rule_needs_five_minutes_of_tachycardia() {
    let mut rig = Rig::new().await;
    for _ in 0..5 {
        rig.send("ox-1", vec![hr(120)]).await;
        rig.clock.advance(MIN);
    }
    assert!(rig.outbox().await.is_empty(), "4 minutes is not enough");
    rig.send("ox-1", vec![hr(121)]).await;
    assert_eq!(rig.states().await, vec!["heart_rate_above_110:open"]);
}

#[tokio::test]
async fn silent_device_raises_a_technical_alert_and_resolves_when_it_speaks() {
    let mut rig = Rig::new().await;
    rig.send("ox-1", vec![spo2(97)]).await;
    rig.pass(29 * MIN).await;
    assert!(rig.outbox().await.is_empty());
    rig.pass(2 * MIN).await;
    assert_eq!(rig.states().await, vec!["device_silent:open"]);
    rig.pass(10 * HOUR).await;
    assert_eq!(
        rig.states().await.len(),
        1,
        "one alert for the whole silence"
    );
    rig.send("ox-1", vec![spo2(97)]).await;
    assert_eq!(
        rig.states().await,
        vec!["device_silent:open", "device_silent:resolved"]
    );
}

#[tokio::test]
async fn unacknowledged_alert_escalates_three_times_over_48_hours_then_stays() {
    let mut rig = Rig::new().await;
    rig.send("ox-1", vec![spo2(88)]).await;
    rig.pass(48 * HOUR).await;
    let states = rig.states().await;
    let clinical: Vec<_> = states.iter().filter(|s| s.starts_with("spo2")).collect();
    assert_eq!(
        clinical,
        vec![
            "spo2_below_92:open",
            "spo2_below_92:escalated",
            "spo2_below_92:escalated",
            "spo2_below_92:escalated"
        ]
    );
    let alert = rig.core.open_alert("p-1", "clinical:spo2:below").unwrap();
    assert_eq!(alert.escalations, 3);
    assert_eq!(alert.state, AlertState::Escalated);
    assert_eq!(alert.severity, Severity::High);
}

#[tokio::test]
async fn open_alert_and_breach_timer_survive_a_restart() {
    let mut rig = Rig::new().await;
    rig.send("ox-1", vec![spo2(88)]).await;
    for _ in 0..3 {
        rig.send("ox-1", vec![hr(120)]).await;
        rig.clock.advance(MIN);
    }
    let now = rig.clock.now_ms();
    let seq = rig.seq;
    let Rig { store, _dir, .. } = rig;
    // A new core on the same database, as after a crash.
    let mut rig = Rig::with(_dir, store).await;
    rig.clock.set(now);
    rig.seq = seq;
    rig.send("ox-1", vec![spo2(87)]).await;
    assert_eq!(
        rig.states().await,
        vec!["spo2_below_92:open"],
        "the open alert was reloaded: no second alert"
    );
    rig.clock.advance(2 * MIN);
    rig.send("ox-1", vec![hr(125)]).await;
    assert!(
        rig.states()
            .await
            .contains(&"heart_rate_above_110:open".to_string()),
        "breach timer kept across restart"
    );
}

#[tokio::test]
async fn resent_reading_is_a_duplicate_and_an_unseen_older_one_is_a_replay() {
    let mut rig = Rig::new().await;
    let t = rig.clock.now_ms();
    rig.send_at("ox-1", 5, Some(t), vec![spo2(97)]).await;
    rig.send_at("ox-1", 6, Some(t + 1), vec![spo2(97)]).await;
    rig.send_at("ox-1", 5, Some(t), vec![spo2(97)]).await;
    rig.send_at("ox-1", 3, Some(t), vec![spo2(97)]).await;
    assert_eq!(
        rig.acks.load(Ordering::SeqCst),
        4,
        "every message is answered"
    );
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM readings")
        .fetch_one(rig.store.reader())
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    let reasons: Vec<String> = sqlx::query("SELECT reason FROM quarantine")
        .fetch_all(rig.store.reader())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(reasons, vec!["replayed_sequence"]);
}

#[tokio::test]
async fn battery_low_is_technical_and_has_hysteresis() {
    let mut rig = Rig::new().await;
    let battery = |v| Observation::number(Code::Battery, Quantity::new(v, 0));
    rig.send("ox-1", vec![battery(14)]).await;
    rig.send("ox-1", vec![battery(16)]).await;
    assert_eq!(rig.states().await, vec!["battery_low:open"]);
    rig.send("ox-1", vec![battery(25)]).await;
    assert_eq!(
        rig.states().await,
        vec!["battery_low:open", "battery_low:resolved"]
    );
}

fn action(rig: &Rig, alert_id: &str, body: serde_json::Value) -> CoreInput {
    let mut v = serde_json::json!({
        "action_id": format!("act-{}", rig.clock.now_ms()),
        "alert_id": alert_id,
        "by": "nurse-7",
        "at": hearth_protocol::json::format_rfc3339_millis(rig.clock.now_ms()),
    });
    v.as_object_mut()
        .unwrap()
        .extend(body.as_object().unwrap().clone());
    CoreInput::Action(hearth_protocol::json::parse_action(v.to_string().as_bytes()).unwrap())
}

async fn first_alert_id(rig: &Rig) -> String {
    rig.outbox().await[0].0.clone()
}

#[tokio::test]
async fn a_nurse_acknowledgement_stops_escalation_and_goes_back_upstream() {
    let mut rig = Rig::new().await;
    rig.send("ox-1", vec![spo2(88)]).await;
    let id = first_alert_id(&rig).await;
    rig.pass(10 * MIN).await;
    let ack = action(&rig, &id, serde_json::json!({"action": "acknowledge"}));
    rig.core.step(&mut vec![ack]).await.unwrap();
    rig.pass(48 * HOUR).await;
    let clinical: Vec<_> = rig
        .states()
        .await
        .into_iter()
        .filter(|s| s.starts_with("spo2"))
        .collect();
    assert_eq!(
        clinical,
        vec!["spo2_below_92:open", "spo2_below_92:acknowledged"],
        "no escalation after the ack"
    );
    let by: String = sqlx::query(
        "SELECT detail FROM alert_events WHERE alert_id = ? AND event = 'acknowledged'",
    )
    .bind(&id)
    .fetch_one(rig.store.reader())
    .await
    .unwrap()
    .get(0);
    assert!(by.contains("nurse-7"), "the audit trail says who: {by}");
}

#[tokio::test]
async fn a_snooze_pauses_escalation_until_it_expires() {
    let mut rig = Rig::new().await;
    rig.send("ox-1", vec![spo2(88)]).await;
    let id = first_alert_id(&rig).await;
    let until = hearth_protocol::json::format_rfc3339_millis(rig.clock.now_ms() + 2 * HOUR);
    let snooze = action(
        &rig,
        &id,
        serde_json::json!({"action": "snooze", "reason": "visit booked", "until": until}),
    );
    rig.core.step(&mut vec![snooze]).await.unwrap();
    rig.pass(2 * HOUR - MIN).await;
    let clinical = |states: Vec<String>| {
        states
            .into_iter()
            .filter(|s| s.starts_with("spo2"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        clinical(rig.states().await),
        vec!["spo2_below_92:open", "spo2_below_92:updated"]
    );
    rig.pass(2 * MIN).await;
    assert_eq!(
        clinical(rig.states().await),
        vec![
            "spo2_below_92:open",
            "spo2_below_92:updated",
            "spo2_below_92:escalated"
        ],
        "escalation resumes when the snooze expires"
    );
}

#[tokio::test]
async fn a_nurse_resolution_closes_the_episode_and_a_new_breach_raises_a_new_alert() {
    let mut rig = Rig::new().await;
    rig.send("ox-1", vec![spo2(88)]).await;
    let id = first_alert_id(&rig).await;
    let resolve = action(
        &rig,
        &id,
        serde_json::json!({"action": "resolve", "reason": "probe on cold finger"}),
    );
    rig.core.step(&mut vec![resolve]).await.unwrap();
    rig.send("ox-1", vec![spo2(89)]).await;
    let outbox = rig.outbox().await;
    assert_eq!(
        rig.states().await,
        vec![
            "spo2_below_92:open",
            "spo2_below_92:resolved",
            "spo2_below_92:open"
        ]
    );
    assert_ne!(outbox[2].0, id, "a new alert, not the closed one");
    // An action for an alert that is no longer open changes nothing.
    let late = action(&rig, &id, serde_json::json!({"action": "acknowledge"}));
    rig.core.step(&mut vec![late]).await.unwrap();
    assert_eq!(rig.outbox().await.len(), 3);
}

#[tokio::test]
async fn an_assignment_is_audited_without_a_new_revision() {
    let mut rig = Rig::new().await;
    rig.send("ox-1", vec![spo2(88)]).await;
    let id = first_alert_id(&rig).await;
    let assign = action(
        &rig,
        &id,
        serde_json::json!({"action": "assign", "assignee": "gp-frailty-lead"}),
    );
    rig.core.step(&mut vec![assign]).await.unwrap();
    assert_eq!(rig.outbox().await.len(), 1);
    let assignee: String = sqlx::query("SELECT assignee FROM alerts WHERE id = ?")
        .bind(&id)
        .fetch_one(rig.store.reader())
        .await
        .unwrap()
        .get(0);
    assert_eq!(assignee, "gp-frailty-lead");
    let n: i64 =
        sqlx::query("SELECT COUNT(*) FROM alert_events WHERE alert_id = ? AND event = 'assigned'")
            .bind(&id)
            .fetch_one(rig.store.reader())
            .await
            .unwrap()
            .get(0);
    assert_eq!(n, 1);
}

/// These tests check the chart arithmetic and the alert's shape reading by reading, so every reading is scored at
/// once; holding a changed value for a confirming reading is tested in `clinical_sim.rs`.
const NEWS2_CONFIG: &str = r#"
[home]
id = "home-t"
[clinical.news2_confirm]
after_s = 0
[[patients]]
id = "p-1"
devices = ["ox-1"]
[[patients]]
id = "p-copd"
devices = ["ox-2"]
[patients.news2]
scale = 2
agreed_by = "Dr A. Patel"
agreed_at = "2026-11-02T10:00:00Z"
reason = "hypercapnic respiratory failure, target 88-92 %"
"#;

/// The alert messages of `rule` in the outbox, in order.
async fn payloads(rig: &Rig, rule: &str) -> Vec<serde_json::Value> {
    rig.outbox()
        .await
        .iter()
        .map(|(_, _, p)| serde_json::from_str::<serde_json::Value>(p).unwrap())
        .filter(|v| v["rule"] == rule)
        .collect()
}

#[tokio::test]
async fn news2_alert_carries_every_subscore_and_says_which_parameters_are_missing() {
    let mut rig = Rig::news2().await;
    // RR 26 → 3, SpO2 91 → 3, BP 100 → 2, pulse 120 → 2, temp 39.5 → 2 (NEWS2 chart 1): 12, high.
    let set = vec![
        obs(Code::RespRate, 26, 0),
        obs(Code::Spo2, 91, 0),
        obs(Code::BpSys, 100, 0),
        obs(Code::HeartRate, 120, 0),
        obs(Code::Temp, 395, -1),
    ];
    rig.send("ox-1", set).await;
    let alerts = payloads(&rig, "news2").await;
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a["severity"], "high");
    let score = &a["details"]["news2"];
    assert_eq!(score["total"], 12);
    assert_eq!(score["band"], "high");
    assert_eq!(score["scale"], 1);
    assert_eq!(
        score["complete"], false,
        "consciousness and oxygen come from check-ins: never presented as complete"
    );
    assert_eq!(
        score["missing"],
        serde_json::json!(["air_or_oxygen", "consciousness"])
    );
    assert_eq!(score["subscores"].as_array().unwrap().len(), 5);
    assert!(a["message"].as_str().unwrap().contains("incomplete"), "{a}");
}

#[tokio::test]
async fn scale_2_is_used_only_for_the_patient_a_clinician_put_on_it() {
    let mut rig = Rig::news2().await;
    rig.send("ox-2", vec![obs(Code::Spo2, 89, 0)]).await;
    assert!(
        payloads(&rig, "news2").await.is_empty(),
        "SpO2 89 on scale 2 scores 0"
    );
    rig.send("ox-1", vec![obs(Code::Spo2, 89, 0)]).await;
    let alerts = payloads(&rig, "news2").await;
    assert_eq!(alerts.len(), 1, "on scale 1 it scores 3: low-medium");
    assert_eq!(alerts[0]["patient"], "p-1");
    assert_eq!(alerts[0]["severity"], "medium");
    assert_eq!(alerts[0]["details"]["news2"]["band"], "low-medium");
}

#[tokio::test]
async fn an_incomplete_news2_upgrades_but_never_resolves() {
    let mut rig = Rig::news2().await;
    rig.send("ox-1", vec![obs(Code::RespRate, 26, 0)]).await;
    rig.send(
        "ox-1",
        vec![obs(Code::Spo2, 91, 0), obs(Code::HeartRate, 120, 0)],
    )
    .await;
    let states: Vec<_> = payloads(&rig, "news2")
        .await
        .iter()
        .map(|a| (a["state"].clone(), a["severity"].clone()))
        .collect();
    assert_eq!(
        states,
        vec![
            (serde_json::json!("open"), serde_json::json!("medium")),
            (serde_json::json!("updated"), serde_json::json!("high"))
        ]
    );
    // Normal values again: the partial total falls to 0, but consciousness is unknown, so it is not resolved.
    rig.send(
        "ox-1",
        vec![
            obs(Code::RespRate, 16, 0),
            obs(Code::Spo2, 97, 0),
            obs(Code::HeartRate, 70, 0),
        ],
    )
    .await;
    assert_eq!(payloads(&rig, "news2").await.len(), 2);
}
