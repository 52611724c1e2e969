//! The hub over MQTT, end to end: readings in on the sensors' broker, alerts out to a simulated community hub.
//!
//! Every scenario runs twice: with the daemon's embedded broker (`<scenario>::embedded`) and with the sensors on a
//! private Mosquitto (`<scenario>::mosquitto`). The upstream is always a private Mosquitto with the receiver acking.
//! "Nothing else was sent" is proven by order, not by waiting: per patient the hub sends one alert at a time in the
//! order raised (HUB-CONTRACT.md, "Wire"), so a later expected message arriving means no unexpected one came before.

use std::time::Duration;

use hearth_tests::http;
use hearth_tests::hub::{HubConfig, Rule};
use hearth_tests::rig::{EVENT_TIMEOUT as T, Rig, SensorsVia};
use hearth_tests::time_fmt::{now, now_plus_s, parse};
use hearth_tests::upstream::AlertMessage;
use hearth_tests::wait::poll_for;
use serde_json::json;

/// Both broker variants of each scenario, as `scenario::embedded` and `scenario::mosquitto`.
macro_rules! on_both_brokers {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$name(hearth_tests::rig::SensorsVia::Embedded).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mosquitto() {
                super::$name(hearth_tests::rig::SensorsVia::Mosquitto).await
            }
        }
    )*};
}

on_both_brokers!(
    a_breaching_reading_raises_an_alert_that_matches_the_contract,
    an_episode_of_breaching_readings_raises_exactly_one_alert,
    a_breach_after_resolution_raises_a_new_alert,
    a_duration_rule_fires_only_after_the_breach_held_for_for_s,
    a_value_inside_the_hysteresis_band_does_not_resolve,
    a_per_patient_rule_overrides_the_default,
    a_stale_reading_is_stored_but_fires_nothing,
    a_severity_upgrade_updates_the_same_alert,
    every_bad_input_is_quarantined_with_its_reason,
    a_duplicate_reading_is_stored_once_and_acked_twice,
    the_outbox_keeps_alerts_until_acked_then_drains,
    health_and_readiness_endpoints_answer,
    an_oversized_message_is_counted_and_later_readings_still_flow,
    board_frames_are_authenticated_acknowledged_and_replays_refused,
    a_nurse_acknowledgement_reaches_the_home_and_comes_back_as_a_revision,
    no_patient_identifier_appears_in_logs_or_metric_labels,
    a_carer_check_in_by_mqtt_or_http_raises_soft_signs_with_an_sbard_handover,
);

/// p-1 wears dev-1, p-2 wears dev-2, dev-3 is known but bound to nobody.
fn base(cfg: HubConfig) -> HubConfig {
    cfg.patient("p-1", &["dev-1"])
        .patient("p-2", &["dev-2"])
        .device("dev-3")
}

fn spo2_below_92() -> Rule {
    Rule::below("spo2", 92.0, "high")
}

/// The messages for `patient`, deduplicated by (id, rev), in arrival order.
fn of(rig: &Rig, patient: &str) -> Vec<AlertMessage> {
    rig.receiver
        .alerts_dedup()
        .into_iter()
        .filter(|a| a.patient == patient)
        .collect()
}

fn summary(alerts: &[AlertMessage]) -> Vec<(String, u64, String, Option<u64>)> {
    alerts
        .iter()
        .map(|a| (a.id.clone(), a.rev, a.state.clone(), a.seq))
        .collect()
}

async fn a_breaching_reading_raises_an_alert_that_matches_the_contract(via: SensorsVia) {
    let rig = Rig::start(via, |c| base(c).rule(spo2_below_92())).await;
    let before = now();
    let t = now_plus_s(-10);
    rig.reading("dev-1", 1, t, json!({"spo2": 90})).await;
    let a = rig.receiver.wait_for_alert(T, |a| a.patient == "p-1").await;
    let received = rig.receiver.received();
    let record = received
        .iter()
        .find(|r| r.alert.as_ref() == Some(&a))
        .unwrap();
    let raw = &record.raw;
    assert_eq!(
        record.topic, "care/alerts/p-1",
        "alert topic is care/alerts/{{patient}}"
    );

    // Exactly the contract's fields; `details` optional.
    let mut keys: Vec<&str> = raw
        .as_object()
        .expect("alert is a JSON object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.retain(|k| *k != "details");
    keys.sort();
    let mut expected = vec![
        "id",
        "rev",
        "home",
        "patient",
        "severity",
        "state",
        "kind",
        "rule",
        "device",
        "seq",
        "code",
        "value",
        "unit",
        "observed_at",
        "time_source",
        "raised_at",
        "message",
        "incident",
    ];
    expected.sort();
    assert_eq!(keys, expected, "alert fields: {raw}");

    assert!(!a.id.is_empty(), "id: {raw}");
    assert_eq!(a.rev, 1, "first message of an alert is rev 1: {raw}");
    assert_eq!(a.home, "home-e2e");
    assert_eq!(a.patient, "p-1");
    assert_eq!(a.severity, "high");
    assert_eq!(a.state, "open", "{raw}");
    assert!(
        raw["kind"].is_string() && a.kind != "technical",
        "a vital-sign alert is not technical: {raw}"
    );
    assert_eq!(
        a.rule, "spo2_below_92",
        "default rule name is {{code}}_{{below|above}}_{{threshold}}"
    );
    assert_eq!(a.device.as_deref(), Some("dev-1"));
    assert_eq!(a.seq, Some(1));
    assert_eq!(a.code.as_deref(), Some("spo2"));
    assert_eq!(a.value_f64(), Some(90.0), "{raw}");
    assert_eq!(a.unit.as_deref(), Some("%"), "canonical UCUM unit of spo2");
    assert_eq!(
        a.observed_at.as_deref().and_then(parse),
        Some(t),
        "observed_at is the device time: {raw}"
    );
    assert!(
        raw["time_source"].as_str().is_some_and(|s| !s.is_empty()),
        "time_source: {raw}"
    );
    let raised = a
        .raised_at
        .as_deref()
        .and_then(parse)
        .unwrap_or_else(|| panic!("raised_at RFC 3339: {raw}"));
    assert!(
        raised >= before - time::Duration::seconds(2)
            && raised <= now() + time::Duration::seconds(2),
        "{raw}"
    );
    assert!(
        a.message.as_deref().is_some_and(|m| !m.is_empty()),
        "message: {raw}"
    );

    // The hub's own views agree, and the end-to-end ack empties the outbox.
    rig.wait_outbox_depth(0, T).await;
    let open = rig.api("/api/alerts?state=open").await;
    let listed = open
        .as_array()
        .expect("array")
        .iter()
        .find(|x| x["id"] == a.id.as_str());
    assert_eq!(
        listed.map(|x| x["rev"].clone()),
        Some(json!(1)),
        "/api/alerts?state=open: {open}"
    );
    rig.wait_metric("hearth_alerts_raised_total", &[("severity", "high")], |v| {
        v == 1.0
    })
    .await;
    rig.wait_metric("hearth_alert_messages_delivered_total", &[], |v| v >= 1.0)
        .await;
}

async fn an_episode_of_breaching_readings_raises_exactly_one_alert(via: SensorsVia) {
    let rig = Rig::start(via, |c| base(c).rule(spo2_below_92())).await;
    for (seq, v) in [(1, 90), (2, 89), (3, 91), (4, 88), (5, 90)] {
        rig.reading(
            "dev-1",
            seq,
            now_plus_s(-60 + seq as i64 * 5),
            json!({"spo2": v}),
        )
        .await;
    }
    rig.reading("dev-1", 6, now_plus_s(-10), json!({"spo2": 96}))
        .await;
    let got = rig.receiver.wait_for_alerts(T, "the resolution", |_| {
        let p1 = of(&rig, "p-1");
        p1.iter().any(|a| a.state == "resolved").then_some(p1)
    });
    let got = got.await;
    assert_eq!(
        got.len(),
        2,
        "one open + one resolved, nothing in between: {:?}",
        summary(&got)
    );
    assert_eq!(
        (got[0].rev, got[0].state.as_str(), got[0].seq),
        (1, "open", Some(1))
    );
    assert_eq!(
        (got[1].id.as_str(), got[1].rev, got[1].seq),
        (got[0].id.as_str(), 2, Some(6))
    );
    rig.wait_metric("hearth_alerts_raised_total", &[], |v| v == 1.0)
        .await;
}

async fn a_breach_after_resolution_raises_a_new_alert(via: SensorsVia) {
    let rig = Rig::start(via, |c| base(c).rule(spo2_below_92())).await;
    rig.reading("dev-1", 1, now_plus_s(-30), json!({"spo2": 90}))
        .await;
    rig.reading("dev-1", 2, now_plus_s(-20), json!({"spo2": 97}))
        .await;
    rig.reading("dev-1", 3, now_plus_s(-10), json!({"spo2": 89}))
        .await;
    let got = rig
        .receiver
        .wait_for_alerts(T, "three messages for p-1", |_| {
            let p1 = of(&rig, "p-1");
            (p1.len() >= 3).then_some(p1)
        })
        .await;
    let s = summary(&got);
    assert_eq!(got.len(), 3, "{s:?}");
    assert_eq!((got[0].rev, got[0].state.as_str()), (1, "open"), "{s:?}");
    assert_eq!(
        (&got[1].id, got[1].rev, got[1].state.as_str()),
        (&got[0].id, 2, "resolved"),
        "{s:?}"
    );
    assert_eq!(
        (got[2].rev, got[2].state.as_str(), got[2].seq),
        (1, "open", Some(3)),
        "{s:?}"
    );
    assert_ne!(got[2].id, got[0].id, "re-arm raises a new alert id: {s:?}");
}

async fn a_duration_rule_fires_only_after_the_breach_held_for_for_s(via: SensorsVia) {
    let rig = Rig::start(via, |c| base(c).rule(spo2_below_92().for_s(120))).await;
    let t0 = now_plus_s(-600);
    let at = |s: i64| t0 + time::Duration::seconds(s);
    // p-1: breach held at t0, t0+60, t0+120 → alerts on the third.
    rig.reading("dev-1", 1, at(0), json!({"spo2": 90})).await;
    rig.reading("dev-1", 2, at(60), json!({"spo2": 90})).await;
    rig.reading("dev-1", 3, at(120), json!({"spo2": 90})).await;
    // p-2: a recovery at t0+60 resets the clock → alerts only at t0+240.
    for (seq, s, v) in [
        (1, 0, 90),
        (2, 60, 95),
        (3, 120, 90),
        (4, 180, 90),
        (5, 240, 90),
    ] {
        rig.reading("dev-2", seq, at(s), json!({"spo2": v})).await;
    }
    let p1 = rig.receiver.wait_for_alert(T, |a| a.patient == "p-1").await;
    assert_eq!(
        (p1.seq, p1.observed_at.as_deref().and_then(parse)),
        (Some(3), Some(at(120))),
        "{p1:?}"
    );
    let p2 = rig.receiver.wait_for_alert(T, |a| a.patient == "p-2").await;
    assert_eq!(
        (p2.seq, p2.observed_at.as_deref().and_then(parse)),
        (Some(5), Some(at(240))),
        "{p2:?}"
    );
}

async fn a_value_inside_the_hysteresis_band_does_not_resolve(via: SensorsVia) {
    let rig = Rig::start(via, |c| base(c).rule(spo2_below_92().hysteresis(2.0))).await;
    rig.reading("dev-1", 1, now_plus_s(-40), json!({"spo2": 90}))
        .await;
    rig.reading("dev-1", 2, now_plus_s(-30), json!({"spo2": 93}))
        .await; // above 92, inside 92..94
    rig.reading("dev-1", 3, now_plus_s(-20), json!({"spo2": 93.5}))
        .await;
    rig.reading("dev-1", 4, now_plus_s(-10), json!({"spo2": 95}))
        .await; // past 92 + 2
    let got = rig
        .receiver
        .wait_for_alerts(T, "the resolution", |_| {
            let p1 = of(&rig, "p-1");
            p1.iter().any(|a| a.state == "resolved").then_some(p1)
        })
        .await;
    let s = summary(&got);
    assert_eq!(got.len(), 2, "{s:?}");
    assert_eq!(
        (got[1].rev, got[1].state.as_str(), got[1].seq),
        (2, "resolved", Some(4)),
        "{s:?}"
    );
}

async fn a_per_patient_rule_overrides_the_default(via: SensorsVia) {
    let rig = Rig::start(via, |c| {
        base(c)
            .patient_rule("p-2", Rule::below("spo2", 88.0, "high"))
            .rule(spo2_below_92())
    })
    .await;
    rig.reading("dev-2", 1, now_plus_s(-20), json!({"spo2": 90}))
        .await; // breaches the default only
    rig.reading("dev-2", 2, now_plus_s(-10), json!({"spo2": 87}))
        .await;
    rig.reading("dev-1", 1, now_plus_s(-10), json!({"spo2": 90}))
        .await;
    let p2 = rig.receiver.wait_for_alert(T, |a| a.patient == "p-2").await;
    assert_eq!(
        (p2.rule.as_str(), p2.seq),
        ("spo2_below_88", Some(2)),
        "{p2:?}"
    );
    let p1 = rig.receiver.wait_for_alert(T, |a| a.patient == "p-1").await;
    assert_eq!(
        (p1.rule.as_str(), p1.seq),
        ("spo2_below_92", Some(1)),
        "{p1:?}"
    );
}

async fn a_stale_reading_is_stored_but_fires_nothing(via: SensorsVia) {
    let rig = Rig::start(via, |c| base(c).rule(spo2_below_92())).await;
    rig.reading("dev-1", 1, now_plus_s(-2 * 3600), json!({"spo2": 80}))
        .await;
    rig.reading("dev-1", 2, now_plus_s(-5), json!({"spo2": 90}))
        .await;
    let first = rig.receiver.wait_for_alert(T, |a| a.patient == "p-1").await;
    assert_eq!(
        first.seq,
        Some(2),
        "the first alert must come from the fresh reading: {first:?}"
    );
    let mut db = rig.db().await;
    let rows = db.reading_rows("dev-1", 1).await;
    assert_eq!(rows, 1, "the stale reading is stored");
}

async fn a_severity_upgrade_updates_the_same_alert(via: SensorsVia) {
    let rig = Rig::start(via, |c| {
        base(c)
            .rule(Rule::below("spo2", 94.0, "medium"))
            .rule(spo2_below_92())
    })
    .await;
    rig.reading("dev-1", 1, now_plus_s(-40), json!({"spo2": 93}))
        .await;
    rig.reading("dev-1", 2, now_plus_s(-30), json!({"spo2": 93}))
        .await; // same severity: nothing
    rig.reading("dev-1", 3, now_plus_s(-20), json!({"spo2": 90}))
        .await; // upgrade
    rig.reading("dev-1", 4, now_plus_s(-10), json!({"spo2": 96}))
        .await; // resolve
    let got = rig
        .receiver
        .wait_for_alerts(T, "the resolution", |_| {
            let p1 = of(&rig, "p-1");
            p1.iter().any(|a| a.state == "resolved").then_some(p1)
        })
        .await;
    let s = summary(&got);
    assert_eq!(got.len(), 3, "open, updated, resolved: {s:?}");
    let a = &got[0];
    assert_eq!(
        (
            a.rev,
            a.state.as_str(),
            a.severity.as_str(),
            a.rule.as_str()
        ),
        (1, "open", "medium", "spo2_below_94")
    );
    let b = &got[1];
    assert_eq!(
        (
            &b.id,
            b.rev,
            b.state.as_str(),
            b.severity.as_str(),
            b.rule.as_str(),
            b.seq
        ),
        (&a.id, 2, "updated", "high", "spo2_below_92", Some(3))
    );
    assert_eq!(
        (&got[2].id, got[2].rev, got[2].state.as_str()),
        (&a.id, 3, "resolved")
    );
}

async fn every_bad_input_is_quarantined_with_its_reason(via: SensorsVia) {
    let rig = Rig::start(via, |c| base(c).rule(spo2_below_92())).await;
    let r = |seq: u64, t: Option<time::OffsetDateTime>, obs: serde_json::Value| {
        let mut v = json!({"seq": seq, "obs": obs});
        if let Some(t) = t {
            v["t"] = json!(hearth_tests::time_fmt::rfc3339(t));
        }
        v.to_string().into_bytes()
    };
    let deep = format!(
        "{{\"seq\":40,\"obs\":{{\"spo2\":{}1{}}}}}",
        "[".repeat(2000),
        "]".repeat(2000)
    );
    let mut too_large = r(41, Some(now_plus_s(-5)), json!({"spo2": 97}));
    too_large.truncate(too_large.len() - 1);
    // Above the hub's JSON limit (16 KiB, protocol::json::MAX_PAYLOAD), well below any broker's packet limit.
    too_large.extend_from_slice(format!(",\"pad\":\"{}\"}}", "x".repeat(32 * 1024)).as_bytes());
    // (topic device, payload, reason, detail word). Order matters for the sequence/time cases: seq 10 is the last
    // good reading of dev-1 when 11 (earlier time) and 5 (lower seq, never stored) arrive.
    let cases: Vec<(&str, Vec<u8>, &str, Option<&str>)> = vec![
        (
            "dev-nobody",
            r(1, Some(now_plus_s(-5)), json!({"spo2": 97})),
            "unknown_device",
            None,
        ),
        (
            "dev-3",
            r(1, Some(now_plus_s(-5)), json!({"spo2": 97})),
            "unbound_device",
            None,
        ),
        (
            "dev-1",
            r(1, Some(now_plus_s(-5)), json!({"systolic": 120})),
            "unknown_code",
            None,
        ),
        (
            "dev-1",
            r(2, Some(now_plus_s(-5)), json!({"spo2": 127})),
            "implausible_value",
            None,
        ),
        (
            "dev-1",
            r(
                3,
                Some(now_plus_s(-5)),
                json!({"temp": {"value": 98.6, "unit": "[degF]"}}),
            ),
            "unit_mismatch",
            None,
        ),
        (
            "dev-1",
            r(4, Some(now_plus_s(3600)), json!({"spo2": 97})),
            "time_in_future",
            None,
        ),
        (
            "dev-1",
            r(10, Some(now_plus_s(-60)), json!({"spo2": 97})),
            "",
            None,
        ), // the good one
        (
            "dev-1",
            r(11, Some(now_plus_s(-120)), json!({"spo2": 97})),
            "time_before_last",
            None,
        ),
        (
            "dev-1",
            r(5, Some(now_plus_s(-30)), json!({"spo2": 97})),
            "replayed_sequence",
            None,
        ),
        (
            "dev-1",
            vec![0xff, 0xfe, b'{', 0x80],
            "malformed",
            Some("invalid_utf8"),
        ),
        ("dev-1", deep.into_bytes(), "malformed", Some("too_deep")),
        (
            "dev-1",
            br#"{"t":"2026-01-01T00:00:00Z","obs":{"spo2":97}}"#.to_vec(),
            "malformed",
            Some("missing_field"),
        ),
        ("dev-1", r(42, None, json!({"spo2": 97})), "", None), // t is optional
        (
            "dev-1",
            br#"{"seq":43,"t":"yesterday","obs":{"spo2":97}}"#.to_vec(),
            "malformed",
            Some("bad_time"),
        ),
        (
            "",
            r(1, Some(now_plus_s(-5)), json!({"spo2": 97})),
            "bad_topic",
            None,
        ),
        ("dev-1", too_large, "malformed", Some("too_large")),
    ];
    let mut failures = Vec::new();
    let mut expected: std::collections::BTreeMap<&str, f64> = Default::default();
    for (i, (device, payload, reason, detail)) in cases.into_iter().enumerate() {
        let tag = hearth_tests::sensors::Tag {
            device: format!("case-{i}"),
            seq: i as u64,
        };
        if reason.is_empty() {
            let before = rig
                .metric("hearth_readings_committed_total", &[])
                .await
                .unwrap_or(0.0);
            rig.sensors
                .publish_raw(&format!("hub/readings/{device}"), payload, tag.clone());
            let addr = rig.hub.http_addr();
            let ok = poll_for(&format!("case {i}: committed"), T, || async {
                let v = http::metric(
                    &http::metrics(addr).await?,
                    "hearth_readings_committed_total",
                    &[],
                );
                if v.unwrap_or(0.0) > before {
                    Ok(())
                } else {
                    Err(format!("{v:?}"))
                }
            })
            .await;
            if let Err(e) = ok {
                failures.push(format!("good reading (case {i}) not accepted: {e}"));
            }
            continue;
        }
        *expected.entry(reason).or_default() += 1.0;
        // Relative to the count before this case, so one case's failure cannot pass or fail the next.
        let addr = rig.hub.http_addr();
        let before = rig
            .metric("hearth_readings_quarantined_total", &[("reason", reason)])
            .await
            .unwrap_or(0.0);
        let want = before + 1.0;
        rig.sensors
            .publish_raw(&format!("hub/readings/{device}"), payload, tag.clone());
        let counted = poll_for(
            &format!("{reason} counted {want}"),
            Duration::from_secs(5),
            || async {
                let v = http::metric(
                    &http::metrics(addr).await?,
                    "hearth_readings_quarantined_total",
                    &[("reason", reason)],
                );
                if v == Some(want) {
                    Ok(())
                } else {
                    Err(format!("{v:?}"))
                }
            },
        )
        .await;
        if let Err(e) = counted {
            let recent = http::get_json(addr, "/api/quarantine?limit=3")
                .await
                .unwrap_or_default();
            failures.push(format!(
                "case {i} ({reason}{}): {e}; newest quarantine rows: {recent}",
                detail.map(|d| format!("/{d}")).unwrap_or_default()
            ));
            continue;
        }
        let q = rig.api("/api/quarantine?limit=1").await;
        let row = &q[0];
        if row["reason"] != reason {
            failures.push(format!(
                "case {i}: newest quarantine row is not {reason}: {row}"
            ));
        }
        if let Some(d) = detail
            && !row["detail"].as_str().is_some_and(|s| s.contains(d))
        {
            failures.push(format!("case {i}: {reason} detail should say {d}: {row}"));
        }
        for key in ["received_at", "source", "device", "seq", "reason", "detail"] {
            if row.get(key).is_none() {
                failures.push(format!("case {i}: quarantine row lacks `{key}`: {row}"));
            }
        }
        if !device.is_empty() && reason != "malformed" && row["device"] != device {
            failures.push(format!(
                "case {i}: quarantine row device should be {device}: {row}"
            ));
        }
    }
    let q = rig.api("/api/quarantine").await;
    let n = q.as_array().map(Vec::len).unwrap_or(0);
    let total: f64 = expected.values().sum();
    if (n as f64) < total {
        failures.push(format!("/api/quarantine lists {n} rows, expected {total}"));
    }
    assert!(
        failures.is_empty(),
        "quarantine failures:\n  {}",
        failures.join("\n  ")
    );
}

async fn a_duplicate_reading_is_stored_once_and_acked_twice(via: SensorsVia) {
    let rig = Rig::start(via, |c| base(c).rule(spo2_below_92())).await;
    let t = now_plus_s(-10);
    let tag = rig.reading("dev-1", 1, t, json!({"spo2": 97})).await;
    let again = rig
        .sensors
        .publish_reading("dev-1", 1, Some(t), json!({"spo2": 97}));
    rig.sensors.wait_acked(&again, 2, T).await;
    assert_eq!(rig.sensors.ack_count(&tag), 2, "both publishes PubAcked");
    rig.wait_metric("hearth_readings_duplicate_total", &[], |v| v == 1.0)
        .await;
    assert_eq!(
        rig.metric("hearth_readings_committed_total", &[]).await,
        Some(1.0)
    );
    assert_eq!(rig.db().await.reading_rows("dev-1", 1).await, 1);
    let q = rig.api("/api/quarantine").await;
    assert_eq!(q, json!([]), "a duplicate is not quarantined");
}

async fn the_outbox_keeps_alerts_until_acked_then_drains(via: SensorsVia) {
    let rig = Rig::start(via, |c| base(c).rule(spo2_below_92())).await;
    rig.receiver.set_acking(false);
    rig.reading("dev-1", 1, now_plus_s(-10), json!({"spo2": 90}))
        .await;
    rig.reading("dev-2", 1, now_plus_s(-10), json!({"spo2": 85}))
        .await;
    // Unacked: each alert is resent (resend_after_s = 2) with the same id and rev, byte for byte.
    let (a, b) = rig
        .receiver
        .wait_for_alerts(Duration::from_secs(15), "a resend of both alerts", |all| {
            let n = |p: &str| all.iter().filter(|x| x.patient == p).count();
            let first = |p: &str| all.iter().find(|x| x.patient == p).cloned();
            (n("p-1") >= 2 && n("p-2") >= 2).then(|| (first("p-1").unwrap(), first("p-2").unwrap()))
        })
        .await;
    for r in rig.receiver.received() {
        let al = r.alert.clone().unwrap();
        let orig = if al.patient == "p-1" { &a } else { &b };
        assert_eq!(al.key(), orig.key(), "a resend carries the same id and rev");
    }
    let payloads: Vec<_> = rig
        .receiver
        .received()
        .into_iter()
        .filter(|r| r.topic.ends_with("p-1"))
        .map(|r| r.payload)
        .collect();
    assert!(
        payloads.windows(2).all(|w| w[0] == w[1]),
        "resends are identical"
    );
    let outbox = rig.api("/api/outbox").await;
    assert_eq!(outbox["depth"], 2, "{outbox}");
    rig.wait_metric("hearth_outbox_depth", &[], |v| v == 2.0)
        .await;
    rig.wait_metric("hearth_upstream_resends_total", &[], |v| v >= 2.0)
        .await;

    rig.receiver.set_acking(true);
    rig.wait_outbox_depth(0, Duration::from_secs(15)).await;
    rig.wait_metric("hearth_outbox_depth", &[], |v| v == 0.0)
        .await;
    rig.wait_metric("hearth_alert_messages_delivered_total", &[], |v| v == 2.0)
        .await;
    let mut db = rig.db().await;
    let rows = db.outbox().await;
    assert!(
        rows.iter().all(|r| r.delivered),
        "every outbox row delivered: {rows:?}"
    );
}

async fn health_and_readiness_endpoints_answer(via: SensorsVia) {
    let rig = Rig::start(via, base).await;
    let h = http::get(rig.hub.http_addr(), "/healthz").await.unwrap();
    assert_eq!((h.status, h.body.trim()), (200, "ok"));
    let r = http::get(rig.hub.http_addr(), "/readyz").await.unwrap();
    assert_eq!((r.status, r.body.trim()), (200, "ready"));
    let up = rig
        .wait_metric("hearth_upstream_connected", &[], |v| v == 1.0)
        .await;
    assert_eq!(up, 1.0);
    let devices = rig.api("/api/devices").await;
    assert!(devices.is_array(), "{devices}");
}

const BOARD_KEY: [u8; 32] = [7; 32];

fn board_frame(seq: u32, spo2: i32, key: &[u8; 32]) -> Vec<u8> {
    use hearth_protocol::frame::{self, ClockStatus, DeviceKey, DeviceTime, Frame};
    use hearth_protocol::{Code, Observation, Quantity};
    let mut observations = heapless::Vec::new();
    observations
        .push(Observation::number(Code::Spo2, Quantity::new(spo2, 0)))
        .unwrap();
    let f = Frame {
        device_id: frame::device_id("board-1").unwrap(),
        seq,
        time: DeviceTime {
            millis: (now_plus_s(-5).unix_timestamp_nanos() / 1_000_000) as i64 + seq as i64,
            clock: ClockStatus::Utc,
        },
        observations,
    };
    let mut buf = [0u8; frame::MAX_ENCODED_LEN];
    let n = frame::encode_frame(&f, &DeviceKey::new(*key), &mut buf).unwrap();
    buf[..n].to_vec()
}

/// A board's frames end to end: a valid one is committed, raises its alert and is answered with an authenticated
/// ack frame; a tampered frame, a frame under another key and an older sequence are each quarantined with their own
/// reason and never scored.
async fn board_frames_are_authenticated_acknowledged_and_replays_refused(via: SensorsVia) {
    use hearth_protocol::frame::{self, DeviceKey};
    let rig = Rig::start(via, |c| {
        base(c)
            .patient("p-b", &["board-1"])
            .device_with_key("board-1", &hex::encode(BOARD_KEY))
            .rule(spo2_below_92())
    })
    .await;
    // The board listens for its acknowledgement frames.
    let port = match &rig.sensors_broker {
        Some(m) => m.port(),
        None => rig.hub.sensors_port(),
    };
    let mut opts = rumqttc::MqttOptions::new("board-1", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    let (board, mut events) = rumqttc::AsyncClient::new(opts, 16);
    board
        .subscribe("hub/frame-acks/board-1", rumqttc::QoS::AtMostOnce)
        .await
        .unwrap();
    let (acks_tx, mut acks) = tokio::sync::mpsc::channel(16);
    let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut subscribed_tx = Some(subscribed_tx);
        while let Ok(ev) = events.poll().await {
            match ev {
                rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)) => {
                    if let Some(tx) = subscribed_tx.take() {
                        let _ = tx.send(());
                    }
                }
                rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) => {
                    let _ = acks_tx.send(p.payload).await;
                }
                _ => {}
            }
        }
    });
    tokio::time::timeout(T, subscribed)
        .await
        .expect("board subscribed in time")
        .unwrap();

    let frame_topic = "hub/frames/board-1";
    let tag = |seq| hearth_tests::sensors::Tag {
        device: "board-1".into(),
        seq,
    };
    rig.sensors
        .publish_raw(frame_topic, board_frame(2, 88, &BOARD_KEY), tag(2));
    let alert = rig.receiver.wait_for_alert(T, |a| a.patient == "p-b").await;
    assert_eq!(alert.seq, Some(2));
    assert_eq!(alert.value.as_ref().and_then(|v| v.as_f64()), Some(88.0));
    let ack = tokio::time::timeout(T, acks.recv())
        .await
        .expect("ack frame in time")
        .unwrap();
    let ack = frame::decode_ack(&ack, &DeviceKey::new(BOARD_KEY)).expect("authentic ack frame");
    assert_eq!(ack.seq, 2, "the board may drop everything up to 2");

    let mut forged = board_frame(3, 97, &BOARD_KEY);
    let mid = forged.len() / 2;
    forged[mid] ^= 0x01;
    rig.sensors.publish_raw(frame_topic, forged, tag(3));
    rig.sensors
        .publish_raw(frame_topic, board_frame(4, 97, &[9; 32]), tag(4));
    rig.sensors
        .publish_raw(frame_topic, board_frame(1, 70, &BOARD_KEY), tag(1));
    for reason in ["wrong_key", "replayed_sequence"] {
        rig.wait_metric(
            "hearth_readings_quarantined_total",
            &[("reason", reason)],
            |v| v == 1.0,
        )
        .await;
    }
    // The flipped bit may land in the COBS framing rather than the MAC'd body: either way it is refused.
    let q = rig.api("/api/quarantine").await;
    let reasons: Vec<&str> = q
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 3, "{q}");
    assert!(reasons[2] == "bad_mac" || reasons[2] == "malformed", "{q}");
    assert_eq!(
        rig.metric("hearth_readings_committed_total", &[]).await,
        Some(1.0),
        "only the authentic frame was stored"
    );
    assert_eq!(
        of(&rig, "p-b").len(),
        1,
        "the replayed SpO2 70 was never scored"
    );
}

/// A message larger than the brokers' or the hub's MQTT packet limit must not silently vanish nor cut the hub off
/// its sensors: it is counted as quarantined (malformed/too_large) and the next reading is still committed.
async fn an_oversized_message_is_counted_and_later_readings_still_flow(via: SensorsVia) {
    let rig = Rig::start(via, |c| base(c).rule(spo2_below_92())).await;
    let mut big = br#"{"seq":1,"obs":{"spo2":97},"pad":""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 512 * 1024));
    big.extend_from_slice(br#""}"#);
    let tag = hearth_tests::sensors::Tag {
        device: "big".into(),
        seq: 1,
    };
    // From a second client: a broker may drop the sender of an oversized packet, which is not the point here.
    let other =
        hearth_tests::sensors::SensorSim::connect(rig.hub.sensors_port(), "e2e-oversized").await;
    other.publish_raw("hub/readings/dev-1", big, tag);
    rig.reading("dev-1", 2, now_plus_s(-5), json!({"spo2": 97}))
        .await;
    rig.wait_metric("hearth_readings_committed_total", &[], |v| v == 1.0)
        .await;
    rig.wait_metric(
        "hearth_readings_quarantined_total",
        &[("reason", "malformed")],
        |v| v == 1.0,
    )
    .await;
}

/// The community hub sends a nurse's acknowledgement on `care/actions/{home}`; the home records it (audit, new
/// revision) and publishes the `acknowledged` revision back, so the dashboard sees the home stop escalating.
async fn a_nurse_acknowledgement_reaches_the_home_and_comes_back_as_a_revision(via: SensorsVia) {
    let rig = Rig::start(via, |c| base(c).rule(spo2_below_92())).await;
    rig.reading("dev-1", 1, now_plus_s(-5), json!({"spo2": 88}))
        .await;
    let alert = rig.receiver.wait_for_alert(T, |a| a.patient == "p-1").await;

    nurse_acknowledges(&rig, &alert.id, "act-1").await;
    let acked = rig
        .receiver
        .wait_for_alert(T, |a| a.id == alert.id && a.state == "acknowledged")
        .await;
    assert_eq!(acked.rev, alert.rev + 1);
    let message = acked.message.unwrap_or_default();
    assert!(message.contains("nurse-7"), "{message}");
    rig.wait_metric(
        "hearth_nurse_actions_applied_total",
        &[("action", "acknowledge")],
        |v| v == 1.0,
    )
    .await;
}

/// Patient identifiers stay out of the daemon's logs (at the default level) and out of metric labels: a planted
/// identifier goes through readings, alerts, quarantine, a nurse action and the technician API, and is then searched
/// for in the log and in /metrics.
async fn no_patient_identifier_appears_in_logs_or_metric_labels(via: SensorsVia) {
    const PLANTED: &str = "PLANTED-NHS-943-476-5919";
    let rig = Rig::start(via, |c| {
        c.patient(PLANTED, &["dev-1"]).rule(spo2_below_92())
    })
    .await;
    rig.reading("dev-1", 1, now_plus_s(-5), json!({"spo2": 88}))
        .await;
    rig.reading("dev-1", 2, now_plus_s(-4), json!({"spo2": 400}))
        .await; // quarantined: implausible
    let alert = rig
        .receiver
        .wait_for_alert(T, |a| a.patient == PLANTED)
        .await;
    nurse_acknowledges(&rig, &alert.id, "act-9").await;
    rig.receiver
        .wait_for_alert(T, |a| a.id == alert.id && a.state == "acknowledged")
        .await;
    let _ = rig.api("/api/alerts").await;
    let metrics = hearth_tests::http::get(rig.hub.http_addr(), "/metrics")
        .await
        .unwrap()
        .body;
    assert!(
        !metrics.contains(PLANTED),
        "a metric label carries the patient id"
    );
    let log = rig.hub.log_tail(usize::MAX);
    assert!(log.contains("alert raised"), "the log was captured: {log}");
    assert!(
        !log.contains(PLANTED),
        "the log carries the patient id:\n{log}"
    );
}

/// The community hub's dashboard sends a nurse's acknowledgement of `alert_id` to the home.
async fn nurse_acknowledges(rig: &Rig, alert_id: &str, action_id: &str) {
    let opts = rumqttc::MqttOptions::new(action_id, "127.0.0.1", rig.upstream.port());
    let (dashboard, mut events) = rumqttc::AsyncClient::new(opts, 8);
    tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let action = json!({
        "action_id": action_id, "alert_id": alert_id, "action": "acknowledge", "by": "nurse-7",
        "at": hearth_tests::time_fmt::rfc3339(now_plus_s(0)),
    });
    dashboard
        .publish(
            "care/actions/home-e2e",
            rumqttc::QoS::AtLeastOnce,
            false,
            action.to_string(),
        )
        .await
        .unwrap();
}

async fn a_carer_check_in_by_mqtt_or_http_raises_soft_signs_with_an_sbard_handover(
    via: SensorsVia,
) {
    let rig = Rig::start(via, base).await;
    let at = hearth_tests::time_fmt::rfc3339(now_plus_s(-5));
    let body = json!({"checkin_id": "ci-1", "reporter": "carer", "at": at,
                      "soft_signs": ["not_usual_self", "more_sleepy"], "note": "slept all morning"});
    let tag = hearth_tests::sensors::Tag {
        device: "checkin-p-1".into(),
        seq: 1,
    };
    rig.sensors.publish_raw(
        "hub/checkins/p-1",
        body.to_string().into_bytes(),
        tag.clone(),
    );
    rig.sensors.wait_acked(&tag, 1, T).await;
    let soft = rig
        .receiver
        .wait_for_alert(T, |a| a.patient == "p-1" && a.rule == "soft_signs")
        .await;
    assert_eq!(soft.severity, "low");
    assert_eq!(soft.kind, "clinical");
    let details = soft.details.clone().expect("details");
    assert_eq!(
        details["soft_signs"],
        json!(["not_usual_self", "more_sleepy"])
    );
    let sbard = details["sbard"]["text"].as_str().unwrap();
    assert!(sbard.contains("more sleepy than usual"), "{sbard}");
    assert!(
        soft.incident.is_some(),
        "a clinical alert belongs to an incident"
    );

    // The same through the local HTTP API (the home tablet): answered after commit; refusals say why.
    let addr = rig.hub.http_addr();
    let body = json!({"checkin_id": "ci-2", "reporter": "patient", "at": at, "soft_signs": []});
    let r = http::post_json(addr, "/api/checkins/p-2", &body.to_string())
        .await
        .unwrap();
    assert_eq!(r.status, 202, "{}", r.body);
    let r = http::post_json(addr, "/api/checkins/p-9", &body.to_string())
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    let r = http::post_json(
        addr,
        "/api/checkins/p-1",
        r#"{"checkin_id":"x","reporter":"carer"}"#,
    )
    .await
    .unwrap();
    assert_eq!((r.status, r.body.as_str()), (422, "missing_field: `at`"));
    rig.wait_metric("hearth_checkins_received_total", &[], |v| v == 2.0)
        .await;
    rig.wait_metric("hearth_checkins_refused_total", &[], |v| v == 1.0)
        .await;
}
