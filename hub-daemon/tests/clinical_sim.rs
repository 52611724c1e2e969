//! The clinical engine in the real core with a real store and a manual clock: check-ins, soft signs, SBARD,
//! incidents, trends, schedules, flapping, learned cadence and expiring baselines.

mod common;

use common::*;
use hearth_protocol::Code;
use hearth_protocol::json::parse_checkin;
use hearthd::clock::{Clock, Millis};
use hearthd::core::{CheckinInbound, CoreInput};
use serde_json::Value;

const DAY: Millis = 24 * HOUR;

const CONFIG: &str = r#"
[home]
id = "home-c"
[alerting]
escalate_after_s = 900
[clinical]
timezone = "Europe/London"
[[patients]]
id = "p-1"
devices = ["ox-1", "scale-1", "cuff-1", "therm-1"]
background = "Heart failure (NYHA III), lives alone; daughter visits daily"
[[patients.schedules]]
name = "weight_morning"
code = "weight"
at = ["10:00"]
grace_s = 3600
[[patients]]
id = "p-2"
devices = ["ox-2"]
[[patients.rules]]
code = "spo2"
below = 88
severity = "high"
agreed_by = "Dr B. Okafor"
agreed_at = "2026-11-01T09:00:00Z"
reason = "COPD, usual SpO2 88-92 %"
until = "2026-11-20T09:00:00Z"
[[rules]]
code = "spo2"
below = 92
severity = "high"
hysteresis = 1
[[rules]]
code = "heart_rate"
above = 130
severity = "high"
hysteresis = 5
"#;

async fn rig() -> Rig {
    Rig::from_config(CONFIG).await
}

async fn checkin(rig: &mut Rig, patient: &str, body: &str) {
    let now = rig.clock.now_ms();
    let input = CoreInput::Checkin(CheckinInbound {
        patient: patient.into(),
        received_at: now,
        payload: bytes::Bytes::from(body.to_string()),
        parsed: parse_checkin(body.as_bytes()).map_err(|e| {
            hearthd::core::rejection(None, None, hearthd::model::Reason::Malformed, e.to_string())
        }),
        ack: Some(Box::new(CountAck(rig.acks.clone()))),
    });
    rig.core.step(&mut vec![input]).await.unwrap();
}

fn at(rig: &Rig) -> String {
    hearth_protocol::json::format_rfc3339_millis(rig.clock.now_ms())
}

/// Every alert message sent upstream, in order.
async fn sent(rig: &Rig) -> Vec<Value> {
    rig.outbox()
        .await
        .iter()
        .map(|(_, _, p)| serde_json::from_str(p).unwrap())
        .collect()
}

async fn sent_rule(rig: &Rig, rule: &str) -> Vec<Value> {
    sent(rig)
        .await
        .into_iter()
        .filter(|v| v["rule"] == rule)
        .collect()
}

fn vitals(
    rr: i32,
    spo2: i32,
    sys: i32,
    pulse: i32,
    temp_tenths: i32,
) -> Vec<hearth_protocol::Observation> {
    vec![
        obs(Code::RespRate, rr, 0),
        obs(Code::Spo2, spo2, 0),
        obs(Code::BpSys, sys, 0),
        obs(Code::HeartRate, pulse, 0),
        obs(Code::Temp, temp_tenths, -1),
    ]
}

/// A reading and its repeat ten minutes later: what confirms a value that changes a NEWS2 subscore
/// (`[clinical.news2_confirm]`, `after_s = 240` by default, or the code's threshold `for_s` if longer).
async fn confirmed(rig: &mut Rig, device: &str, obs: Vec<hearth_protocol::Observation>) {
    rig.send(device, obs.clone()).await;
    rig.clock.advance(10 * MIN);
    rig.send(device, obs).await;
}

#[tokio::test]
async fn new_confusion_from_a_carer_scores_three_and_completes_the_news2() {
    let mut rig = rig().await;
    // All vitals normal: NEWS2 0 but incomplete (consciousness and oxygen never reported) → no alert.
    rig.send("ox-1", vitals(16, 97, 130, 72, 368)).await;
    assert!(sent_rule(&rig, "news2").await.is_empty());
    let body = format!(
        r#"{{"checkin_id":"c-1","reporter":"carer","at":"{}","consciousness":"confusion","oxygen":false}}"#,
        at(&rig)
    );
    checkin(&mut rig, "p-1", &body).await;
    assert_eq!(
        acked(&rig),
        2,
        "the check-in is acknowledged once committed"
    );
    let news2 = sent_rule(&rig, "news2").await;
    assert_eq!(news2.len(), 1, "{news2:#?}");
    let d = &news2[0]["details"]["news2"];
    assert_eq!(d["total"], 3);
    assert_eq!(d["band"], "low-medium", "a 3 in a single parameter");
    assert_eq!(
        d["complete"], true,
        "consciousness and oxygen came from the carer"
    );
    let c = d["subscores"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["parameter"] == "consciousness")
        .unwrap();
    assert_eq!(
        (c["value"].as_str(), c["score"].as_u64()),
        (Some("confusion"), Some(3))
    );
    assert_eq!(news2[0]["severity"], "medium");
    // The handover says what the team needs.
    let sbard = &news2[0]["details"]["sbard"];
    assert!(
        sbard["background"]
            .as_str()
            .unwrap()
            .contains("Heart failure")
    );
    assert!(
        sbard["recommendation"]
            .as_str()
            .unwrap()
            .contains("parameter scoring 3")
    );
    assert!(
        sbard["text"]
            .as_str()
            .unwrap()
            .starts_with("S: p-1: NEWS2 3")
    );
}

#[tokio::test]
async fn supplemental_oxygen_scores_two() {
    let mut rig = rig().await;
    let body = format!(
        r#"{{"checkin_id":"c-2","reporter":"nurse","at":"{}","consciousness":"alert","oxygen_l_min":2}}"#,
        at(&rig)
    );
    checkin(&mut rig, "p-1", &body).await;
    confirmed(&mut rig, "ox-1", vitals(20, 95, 115, 92, 375)).await;
    // RR 20 → 0, SpO2 95 → 1, oxygen → 2, BP 115 → 0, pulse 92 → 1, A → 0, 37.5 → 0: 4, low band: no alert.
    assert!(sent_rule(&rig, "news2").await.is_empty());
    let body = format!(
        r#"{{"checkin_id":"c-3","reporter":"carer","at":"{}","soft_signs":["not_usual_self","eating_drinking_less"],"note":"quiet today"}}"#,
        at(&rig)
    );
    checkin(&mut rig, "p-1", &body).await;
    // Soft signs: a low alert asking for observations, and the score of 4 now alerts too (monitoring raised).
    let soft = sent_rule(&rig, "soft_signs").await;
    assert_eq!(soft.len(), 1);
    assert_eq!(soft[0]["severity"], "low");
    assert!(
        soft[0]["message"]
            .as_str()
            .unwrap()
            .contains("not their usual self")
    );
    assert_eq!(soft[0]["details"]["note"], "quiet today");
    let news2 = sent_rule(&rig, "news2").await;
    assert_eq!(news2.len(), 1, "monitoring raised: NEWS2 4 alerts");
    assert_eq!(news2[0]["details"]["news2"]["total"], 4);
    assert_eq!(news2[0]["details"]["monitoring"], "raised");
    assert!(
        news2[0]["details"]["sbard"]["assessment"]
            .as_str()
            .unwrap()
            .contains("eating or drinking less")
    );
    // One incident for the patient: the NEWS2 alert joins the soft-signs one.
    assert_eq!(news2[0]["incident"], soft[0]["incident"]);
    assert!(news2[0]["incident"].is_string());
    // "None noticed" closes the soft-signs alert.
    let body = format!(
        r#"{{"checkin_id":"c-4","reporter":"carer","at":"{}","soft_signs":[]}}"#,
        at(&rig)
    );
    checkin(&mut rig, "p-1", &body).await;
    let soft = sent_rule(&rig, "soft_signs").await;
    assert_eq!(soft.last().unwrap()["state"], "resolved");
}

#[tokio::test]
async fn a_resent_check_in_counts_once_and_bad_ones_are_quarantined_with_a_reason() {
    let mut rig = rig().await;
    let body = format!(
        r#"{{"checkin_id":"c-9","reporter":"carer","at":"{}","soft_signs":["fall"]}}"#,
        at(&rig)
    );
    checkin(&mut rig, "p-1", &body).await;
    checkin(&mut rig, "p-1", &body).await;
    assert_eq!(acked(&rig), 2, "both acknowledged");
    assert_eq!(
        sent_rule(&rig, "soft_signs").await.len(),
        1,
        "one alert revision"
    );
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM checkins")
        .fetch_one(rig.store.reader())
        .await
        .unwrap();
    assert_eq!(stored, 1);
    checkin(&mut rig, "p-unknown", &body).await;
    checkin(
        &mut rig,
        "p-1",
        r#"{"checkin_id":"c-10","reporter":"carer"}"#,
    )
    .await;
    let future = hearth_protocol::json::format_rfc3339_millis(rig.clock.now_ms() + HOUR);
    let body =
        format!(r#"{{"checkin_id":"c-11","reporter":"carer","at":"{future}","oxygen":true}}"#);
    checkin(&mut rig, "p-1", &body).await;
    let reasons: Vec<String> = sqlx::query_scalar("SELECT reason FROM quarantine ORDER BY id")
        .fetch_all(rig.store.reader())
        .await
        .unwrap();
    assert_eq!(reasons, ["unknown_patient", "malformed", "time_in_future"]);
    assert_eq!(
        acked(&rig),
        5,
        "quarantined check-ins are acknowledged too (committed, to quarantine)"
    );
}

#[tokio::test]
async fn weight_gain_of_more_than_two_kilograms_in_three_days_raises_a_trend_alert() {
    let mut rig = rig().await;
    for (day, tenths) in [(0, 800), (1, 806), (2, 814)] {
        rig.clock.set(START + day * DAY);
        rig.send("scale-1", vec![obs(Code::Weight, tenths, -1)])
            .await;
    }
    assert!(sent_rule(&rig, "weight_gain").await.is_empty());
    rig.clock.set(START + 3 * DAY - HOUR);
    rig.send("scale-1", vec![obs(Code::Weight, 823, -1)]).await;
    let w = sent_rule(&rig, "weight_gain").await;
    assert_eq!(w.len(), 1);
    assert_eq!(w[0]["severity"], "medium");
    assert!(
        w[0]["message"]
            .as_str()
            .unwrap()
            .contains("weight up 2.3 kg"),
        "{}",
        w[0]["message"]
    );
    assert!(
        w[0]["details"]["sbard"]["recommendation"]
            .as_str()
            .unwrap()
            .contains("heart-failure plan")
    );
    // Back down after diuretics: resolves.
    rig.clock.advance(DAY);
    rig.send("scale-1", vec![obs(Code::Weight, 810, -1)]).await;
    assert_eq!(
        sent_rule(&rig, "weight_gain").await.last().unwrap()["state"],
        "resolved"
    );
}

#[tokio::test]
async fn sustained_tachycardia_needs_most_of_an_hour_not_a_burst() {
    let mut rig = rig().await;
    // Ten minutes of 125 /min: below the 130 threshold, not yet sustained.
    for _ in 0..10 {
        rig.send("ox-1", vec![hr(125)]).await;
        rig.clock.advance(MIN);
    }
    assert!(sent_rule(&rig, "sustained_tachycardia").await.is_empty());
    for _ in 0..50 {
        rig.send("ox-1", vec![hr(118)]).await;
        rig.clock.advance(MIN);
    }
    let t = sent_rule(&rig, "sustained_tachycardia").await;
    assert_eq!(t.len(), 1, "an hour above 100 /min");
    assert!(
        t[0]["message"]
            .as_str()
            .unwrap()
            .contains("pulse above 100")
    );
}

#[tokio::test]
async fn a_rising_news2_is_a_trend_even_within_the_low_band() {
    let mut rig = rig().await;
    let body = format!(
        r#"{{"checkin_id":"c-20","reporter":"patient","at":"{}","consciousness":"alert","oxygen":false}}"#,
        at(&rig)
    );
    checkin(&mut rig, "p-1", &body).await;
    rig.send("ox-1", vitals(16, 97, 130, 72, 368)).await; // 0
    rig.clock.advance(6 * HOUR);
    confirmed(&mut rig, "ox-1", vitals(21, 95, 130, 92, 370)).await; // RR 2 + SpO2 1 + pulse 1 = 4
    let r = sent_rule(&rig, "news2_rising").await;
    assert_eq!(r.len(), 1);
    assert!(
        r[0]["message"]
            .as_str()
            .unwrap()
            .contains("NEWS2 rose from 0 to 4")
    );
    assert!(
        sent_rule(&rig, "news2").await.is_empty(),
        "4 is still the low band"
    );
}

#[tokio::test]
async fn a_missed_morning_weight_reminds_the_patient_then_alerts_the_team_then_resolves() {
    let mut rig = rig().await;
    // November is GMT: 10:00 London is 10:00 UTC. START is 2026-11-18T11:06:40Z, after that day's slot (which
    // fell due before the hub started, so it is not chased); the next one is the 19th.
    let due = hearth_protocol::json::parse_rfc3339_millis("2026-11-19T10:00:00Z").unwrap();
    rig.pass(due - rig.clock.now_ms() - MIN).await;
    assert!(rig.core.take_notices().is_empty(), "not due yet");
    rig.pass(2 * MIN).await;
    let notices = rig.core.take_notices();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].topic, "hub/reminders/p-1");
    let n: Value = serde_json::from_str(&notices[0].payload).unwrap();
    assert_eq!(n["schedule"], "weight_morning");
    assert_eq!(n["due"], "2026-11-19T10:00:00.000Z");
    assert!(
        sent_rule(&rig, "missing_reading").await.is_empty(),
        "grace period"
    );
    rig.pass(HOUR).await;
    let m = sent_rule(&rig, "missing_reading").await;
    assert_eq!(m.len(), 1, "no weight by 10:00 plus an hour's grace");
    assert_eq!(m[0]["severity"], "low");
    assert!(
        m[0]["message"]
            .as_str()
            .unwrap()
            .contains("no weight by 10:00")
    );
    assert!(
        m[0]["details"]["sbard"]["recommendation"]
            .as_str()
            .unwrap()
            .contains("Contact the patient")
    );
    // A nurse resolves it (she phoned; the scale is broken): the same slot does not alert again.
    let id = m[0]["id"].as_str().unwrap().to_string();
    let resolve = serde_json::json!({"action_id": "act-1", "alert_id": id, "action": "resolve",
        "by": "nurse-7", "at": at(&rig), "reason": "scale broken, replacement ordered"});
    let a = hearth_protocol::json::parse_action(resolve.to_string().as_bytes()).unwrap();
    rig.core
        .step(&mut vec![CoreInput::Action(a)])
        .await
        .unwrap();
    rig.pass(HOUR).await;
    assert!(
        rig.core.take_notices().is_empty(),
        "one reminder per due time"
    );
    let m = sent_rule(&rig, "missing_reading").await;
    assert_eq!(
        m.len(),
        2,
        "raised, resolved by the nurse, not raised again for the slot: {m:#?}"
    );
    assert_eq!(m[1]["state"], "resolved");
    rig.send("scale-1", vec![obs(Code::Weight, 802, -1)]).await;
    // The next morning the weight was taken before 10:00: no reminder.
    rig.clock.set(due + DAY - 2 * HOUR);
    rig.send("scale-1", vec![obs(Code::Weight, 801, -1)]).await;
    rig.pass(3 * HOUR).await;
    assert!(rig.core.take_notices().is_empty());
    let all = sent_rule(&rig, "missing_reading").await;
    assert_eq!(all.len(), 2, "{all:#?}");
}

#[tokio::test]
async fn a_value_flapping_at_its_threshold_is_held_open_as_one_alert() {
    let mut rig = rig().await;
    for _ in 0..6 {
        rig.send("ox-1", vec![spo2(91)]).await;
        rig.clock.advance(5 * MIN);
        rig.send("ox-1", vec![spo2(94)]).await;
        rig.clock.advance(5 * MIN);
    }
    let raised: Vec<Value> = sent(&rig)
        .await
        .into_iter()
        .filter(|v| v["rule"] != "news2" && v["code"] == "spo2" && v["rev"] == 1)
        .collect();
    assert_eq!(
        raised.len(),
        3,
        "three raises make it flapping; later breaches join the held alert"
    );
    let last = sent(&rig)
        .await
        .into_iter()
        .rfind(|v| v["id"] == raised[2]["id"])
        .unwrap();
    assert_eq!(last["state"], "updated");
    assert!(last["message"].as_str().unwrap().contains("flapping"));
    // Quiet for 30 min: resolves.
    rig.send("ox-1", vec![spo2(96)]).await;
    rig.pass(31 * MIN).await;
    let last = sent(&rig)
        .await
        .into_iter()
        .rfind(|v| v["id"] == raised[2]["id"])
        .unwrap();
    assert_eq!(last["state"], "resolved");
    assert!(last["message"].as_str().unwrap().contains("stable"));
}

#[tokio::test]
async fn a_continuous_device_without_a_configured_cadence_is_silent_after_missing_its_learned_rhythm()
 {
    let mut rig = rig().await;
    for _ in 0..30 {
        rig.send("ox-2", vec![spo2(95)]).await;
        rig.clock.advance(MIN);
    }
    rig.pass(4 * MIN).await;
    assert!(sent_rule(&rig, "device_silent").await.is_empty());
    rig.pass(3 * MIN).await;
    let s = sent_rule(&rig, "device_silent").await;
    assert_eq!(s.len(), 1, "five learned one-minute intervals");
    assert!(
        s[0]["message"]
            .as_str()
            .unwrap()
            .contains("usually reports every 1 min")
    );
    assert_eq!(
        s[0]["incident"],
        Value::Null,
        "technical alerts are not clinical incidents"
    );
}

#[tokio::test]
async fn an_expired_personal_baseline_gives_way_to_the_default_and_tells_the_team() {
    let mut rig = rig().await;
    // START (2026-11-18) is before `until` (2026-11-20): SpO2 90 is above p-2's agreed 88.
    rig.send("ox-2", vec![spo2(90)]).await;
    let threshold = |v: &&Value| v["rule"] != "news2" && v["code"] == "spo2";
    assert!(sent(&rig).await.iter().filter(threshold).count() == 0);
    rig.send("ox-2", vec![spo2(95)]).await;
    rig.clock.set(START + 3 * DAY);
    rig.pass(MIN).await;
    let e = sent_rule(&rig, "baseline_expired").await;
    assert_eq!(e.len(), 1);
    assert!(e[0]["message"].as_str().unwrap().contains("Dr B. Okafor"));
    rig.send("ox-2", vec![spo2(90)]).await;
    assert!(
        sent(&rig)
            .await
            .iter()
            .filter(threshold)
            .any(|v| v["severity"] == "high"),
        "the default SpO2 < 92 applies again"
    );
}

#[tokio::test]
async fn soft_signs_and_trends_survive_a_restart() {
    let mut rig = rig().await;
    for (day, tenths) in [(0, 800), (1, 808)] {
        rig.clock.set(START + day * DAY);
        rig.send("scale-1", vec![obs(Code::Weight, tenths, -1)])
            .await;
    }
    let body = format!(
        r#"{{"checkin_id":"c-30","reporter":"carer","at":"{}","soft_signs":["more_sleepy"]}}"#,
        at(&rig)
    );
    checkin(&mut rig, "p-1", &body).await;
    // Restart: a new core on the same database.
    let store = rig.store.clone();
    let dir = std::mem::replace(&mut rig._dir, tempfile::tempdir().unwrap());
    let mut rig2 = Rig::with_config(dir, store, CONFIG).await;
    rig2.seq = rig.seq; // the devices' sequence numbers go on
    rig2.clock.set(START + 2 * DAY - HOUR);
    rig2.send("scale-1", vec![obs(Code::Weight, 822, -1)]).await;
    assert_eq!(
        sent_rule(&rig2, "weight_gain").await.len(),
        1,
        "history came back from the database"
    );
    confirmed(&mut rig2, "ox-1", vitals(16, 97, 130, 92, 368)).await; // NEWS2 at least 1 (pulse 92)
    let news2 = sent_rule(&rig2, "news2").await;
    assert_eq!(
        news2.len(),
        1,
        "monitoring is still raised after the restart"
    );
    assert_eq!(news2[0]["details"]["monitoring"], "raised");
    assert_eq!(news2[0]["severity"], "low");
}

async fn baseline(rig: &mut Rig, body: Value) {
    let b = hearth_protocol::json::parse_baseline(body.to_string().as_bytes()).unwrap();
    rig.core
        .step(&mut vec![CoreInput::Baseline(b)])
        .await
        .unwrap();
}

fn threshold_alerts(all: &[Value]) -> Vec<&Value> {
    all.iter()
        .filter(|v| v["rule"] != "news2" && v["code"] == "spo2" && v["rev"] == 1)
        .collect()
}

#[tokio::test]
async fn a_baseline_agreed_in_the_community_hub_applies_survives_a_restart_and_can_be_withdrawn() {
    let mut rig = rig().await;
    let agreed = serde_json::json!({"baseline_id": "bl-1", "patient": "p-1", "code": "spo2", "below": 86,
        "severity": "high", "agreed_by": "Dr C. Reyes", "agreed_at": "2026-11-18T09:00:00Z",
        "reason": "COPD, lives at 87-91 %"});
    baseline(&mut rig, agreed.clone()).await;
    baseline(&mut rig, serde_json::json!({"baseline_id": "bl-2", "patient": "p-nobody", "code": "spo2",
        "below": 80, "severity": "high", "agreed_by": "Dr C", "agreed_at": "2026-11-18T09:00:00Z", "reason": "r"}))
    .await;
    rig.send("ox-1", vec![spo2(89)]).await;
    assert!(
        threshold_alerts(&sent(&rig).await).is_empty(),
        "89 is above her agreed 86"
    );
    rig.send("ox-1", vec![spo2(85)]).await;
    let all = sent(&rig).await;
    let raised = threshold_alerts(&all);
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0]["rule"], "spo2_below_86_personal");
    let background = raised[0]["details"]["sbard"]["background"]
        .as_str()
        .unwrap();
    assert!(
        background.contains("agreed by Dr C. Reyes: COPD"),
        "{background}"
    );
    let events: Vec<(String, String)> =
        sqlx::query_as("SELECT alert_id, event FROM alert_events WHERE event LIKE 'baseline%'")
            .fetch_all(rig.store.reader())
            .await
            .unwrap();
    assert_eq!(
        events,
        [("baseline:bl-1".to_string(), "baseline_agreed".to_string())]
    );

    // Restart: the baseline is still in force.
    rig.send("ox-1", vec![spo2(97)]).await;
    let store = rig.store.clone();
    let dir = std::mem::replace(&mut rig._dir, tempfile::tempdir().unwrap());
    let mut rig = Rig::with_config(dir, store, CONFIG).await;
    rig.seq = 100;
    rig.send("ox-1", vec![spo2(89)]).await;
    assert_eq!(
        threshold_alerts(&sent(&rig).await).len(),
        1,
        "still 86 after the restart"
    );
    // Withdrawn: the default (92) applies again.
    let mut revoke = agreed.clone();
    revoke["baseline_id"] = "bl-3".into();
    revoke["revoke"] = true.into();
    baseline(&mut rig, revoke).await;
    rig.send("ox-1", vec![spo2(97)]).await;
    rig.send("ox-1", vec![spo2(90)]).await;
    let all = sent(&rig).await;
    let raised = threshold_alerts(&all);
    assert_eq!(raised.len(), 2);
    assert_eq!(raised[1]["rule"], "spo2_below_92");
}

#[tokio::test]
async fn news2_freshness_is_configurable_per_parameter() {
    let raw = format!("{CONFIG}\n[clinical.news2_freshness]\nspo2_s = 600\n")
        .replace("[clinical]\ntimezone = \"Europe/London\"\n", "");
    let mut rig = Rig::from_config(&raw).await;
    confirmed(&mut rig, "ox-1", vec![spo2(91)]).await; // SpO2 91 scores 3: low-medium, an alert
    rig.clock.advance(20 * MIN);
    // RR 26 → 3, pulse 135 → 3, temp 39.5 → 2: 8 without SpO2, high — an upgrade, so a new revision.
    let set = vec![
        obs(Code::RespRate, 26, 0),
        hr(135),
        obs(Code::Temp, 395, -1),
    ];
    confirmed(&mut rig, "ox-1", set).await;
    let news2 = sent_rule(&rig, "news2").await;
    assert_eq!(news2.last().unwrap()["severity"], "high");
    let last = &news2.last().unwrap()["details"]["news2"];
    assert_eq!(
        last["stale"],
        serde_json::json!(["spo2"]),
        "30 min is older than the 10 min configured"
    );
}

/// A single reading that would change a NEWS2 subscore (an oximeter on a moving hand) is held: no alert, the home is
/// asked for a repeat reading, and a normal repeat refutes it. A low value that lasts past the re-check delay (4 min
/// by default) is confirmed and scored, from the confirming reading.
#[tokio::test]
async fn a_single_artefact_is_held_for_a_repeat_and_a_lasting_change_is_scored() {
    let mut rig = rig().await;
    let body = format!(
        r#"{{"checkin_id":"c-40","reporter":"carer","at":"{}","consciousness":"alert","oxygen":false}}"#,
        at(&rig)
    );
    checkin(&mut rig, "p-1", &body).await;
    rig.send("ox-1", vitals(16, 97, 130, 72, 368)).await; // all normal: accepted at once
    rig.core.take_notices();

    rig.clock.advance(5 * MIN);
    rig.send("ox-1", vec![spo2(84)]).await; // 3 if it were scored
    assert!(
        sent_rule(&rig, "news2").await.is_empty(),
        "held, not scored"
    );
    let notices = rig.core.take_notices();
    assert_eq!(notices.len(), 1, "a repeat reading is asked for");
    assert_eq!(notices[0].topic, "hub/reminders/p-1");
    let n: Value = serde_json::from_str(&notices[0].payload).unwrap();
    assert_eq!(n["repeat"], "spo2");
    assert!(n["message"].as_str().unwrap().contains("oxygen level"));

    rig.clock.advance(3 * MIN);
    rig.send("ox-1", vec![spo2(96)]).await; // the repeat: normal, the 84 was an artefact
    rig.clock.advance(10 * MIN);
    rig.send("ox-1", vec![spo2(85)]).await; // held anew (the 84 is gone)
    assert!(sent_rule(&rig, "news2").await.is_empty());

    rig.clock.advance(2 * MIN);
    rig.send("ox-1", vec![spo2(86)]).await; // 2 min: too soon to confirm
    assert!(sent_rule(&rig, "news2").await.is_empty());
    rig.clock.advance(3 * MIN);
    rig.send("ox-1", vec![spo2(87)]).await; // 5 min after the first low one: confirmed
    let news2 = sent_rule(&rig, "news2").await;
    assert_eq!(news2.len(), 1, "a lasting desaturation is scored");
    let sub = &news2[0]["details"]["news2"]["subscores"];
    let spo2_sub = sub
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["parameter"] == "spo2")
        .unwrap();
    assert_eq!(
        spo2_sub["value"], 87.0,
        "scored from the confirming reading"
    );
    assert_eq!(spo2_sub["score"], 3);
    assert_eq!(news2[0]["details"]["news2"]["band"], "low-medium");
    assert!(
        sent_rule(&rig, "news2_rising").await.is_empty(),
        "the rise from 0 to 3 is told by the NEWS2 alert itself, not a second alert"
    );
}

/// With `after_s = 0` every reading is scored at once (the behaviour before confirmation).
#[tokio::test]
async fn confirmation_can_be_turned_off() {
    let raw = format!("{CONFIG}\n[clinical.news2_confirm]\nafter_s = 0\n")
        .replace("[clinical]\ntimezone = \"Europe/London\"\n", "");
    let mut rig = Rig::from_config(&raw).await;
    rig.send("ox-1", vec![spo2(91)]).await;
    assert_eq!(sent_rule(&rig, "news2").await.len(), 1);
    assert!(
        rig.core.take_notices().is_empty(),
        "nothing held, nothing asked"
    );
}
