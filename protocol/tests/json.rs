//! The MQTT JSON interop format: exact parse results, every rejection reason, RFC 3339 handling, round trips, and the
//! mechanical link between `json.rs`, `docs/protocol/json.md` and `protocol/schema/*.schema.json`.
#![cfg(feature = "alloc")]

use std::collections::BTreeSet;

use hearth_protocol::json::*;
use hearth_protocol::{Code, Invalid, Observation, Quantity};
use proptest::prelude::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------------------------
// Readings
// ---------------------------------------------------------------------------------------------------------------

fn num(name: &str, v: f64) -> RawObservation {
    RawObservation {
        name: name.into(),
        value: RawValue::Number(v),
    }
}

#[test]
fn reading_example_parses_exactly() {
    let r = parse_reading(
        br#"{"seq": 17, "t": "2026-11-22T10:15:00.120Z", "obs": {"heart_rate": 88, "spo2": 97}}"#,
    )
    .unwrap();
    assert_eq!(
        r,
        ReadingMessage {
            seq: 17,
            t: Some(1_795_342_500_120),
            obs: vec![num("heart_rate", 88.0), num("spo2", 97.0)],
        }
    );
    let resolved: Vec<Observation> = r.obs.iter().map(|o| o.resolve().unwrap()).collect();
    assert_eq!(
        resolved,
        [
            Observation::number(Code::HeartRate, Quantity::new(88, 0)),
            Observation::number(Code::Spo2, Quantity::new(97, 0)),
        ]
    );
}

#[test]
fn reading_without_time_leaves_it_to_the_hub() {
    let r = parse_reading(br#"{"seq":0,"obs":{"temp":36.6}}"#).unwrap();
    assert_eq!(
        r,
        ReadingMessage {
            seq: 0,
            t: None,
            obs: vec![num("temp", 36.6)]
        }
    );
    let r = parse_reading(br#"{"seq":4294967295,"t":null,"obs":{"temp":36.6}}"#).unwrap();
    assert_eq!((r.seq, r.t), (u32::MAX, None));
    assert_eq!(
        r.obs[0].resolve().unwrap(),
        Observation::number(Code::Temp, Quantity::new(366, -1))
    );
}

#[test]
fn reading_keeps_payload_order_and_accepts_whole_floats_for_seq() {
    let r =
        parse_reading(br#"{"obs":{"weight":72.35,"battery":80,"bp_sys":-3},"seq":17.0}"#).unwrap();
    assert_eq!(r.seq, 17);
    assert_eq!(
        r.obs,
        vec![
            num("weight", 72.35),
            num("battery", 80.0),
            num("bp_sys", -3.0)
        ]
    );
}

#[test]
fn explicit_invalid_values_are_parsed_never_numbers() {
    let r = parse_reading(
        br#"{"seq":18,"obs":{"heart_rate":91,"spo2":{"invalid":"motion_artefact"},"bp_sys":{"invalid":"nan","note":"cuff"}}}"#,
    )
    .unwrap();
    assert_eq!(
        r.obs[1],
        RawObservation {
            name: "spo2".into(),
            value: RawValue::Invalid(Invalid::MotionArtefact)
        }
    );
    assert_eq!(
        r.obs[1].resolve().unwrap(),
        Observation::invalid(Code::Spo2, Invalid::MotionArtefact)
    );
    assert_eq!(
        r.obs[2].resolve().unwrap(),
        Observation::invalid(Code::BpSys, Invalid::NaN)
    );
    assert_eq!(r.obs[2].resolve().unwrap().value.number(), None);
}

#[test]
fn every_invalid_reason_name_is_understood() {
    for id in 1..=u8::MAX {
        let Some(why) = Invalid::from_id(id) else {
            continue;
        };
        assert_eq!(invalid_from_name(why.as_str()), Some(why));
        let payload = format!(
            r#"{{"seq":1,"obs":{{"spo2":{{"invalid":"{}"}}}}}}"#,
            why.as_str()
        );
        assert_eq!(
            parse_reading(payload.as_bytes()).unwrap().obs[0].value,
            RawValue::Invalid(why)
        );
    }
    assert_eq!(invalid_from_name("NaN"), None);
}

#[test]
fn unknown_codes_reasons_and_implausible_values_pass_the_format_and_fail_resolve() {
    let r = parse_reading(
        br#"{"seq":1,"obs":{"lactate":2.1,"spo2":{"invalid":"cosmic_ray"},"bp_sys":2047,"heart_rate":3e9,"temp":1e-9}}"#,
    )
    .unwrap();
    assert_eq!(r.obs[0].resolve(), Err(ObsError::UnknownCode));
    assert_eq!(
        r.obs[1].value,
        RawValue::UnknownInvalid("cosmic_ray".into())
    );
    assert_eq!(r.obs[1].resolve(), Err(ObsError::UnknownInvalid));
    // Implausible, but a number: the validity gate quarantines it, not the format.
    assert_eq!(
        r.obs[2].resolve(),
        Ok(Observation::number(Code::BpSys, Quantity::new(2047, 0)))
    );
    assert_eq!(r.obs[3].resolve(), Err(ObsError::Unrepresentable));
    // Below the kept precision: rounds to zero at 6 decimals.
    assert_eq!(
        r.obs[4].resolve(),
        Ok(Observation::number(Code::Temp, Quantity::new(0, -6)))
    );
    assert_eq!(ObsError::UnknownCode.as_str(), "unknown_code");
    assert_eq!(ObsError::UnknownInvalid.as_str(), "unknown_invalid");
    assert_eq!(ObsError::Unrepresentable.as_str(), "unrepresentable");
}

#[test]
fn unknown_top_level_members_are_ignored() {
    let r =
        parse_reading(br#"{"fw":"1.2.0","seq":3,"extra":{"a":[1,2]},"obs":{"door":1}}"#).unwrap();
    assert_eq!(
        r,
        ReadingMessage {
            seq: 3,
            t: None,
            obs: vec![num("door", 1.0)]
        }
    );
}

fn err(payload: &[u8]) -> JsonError {
    parse_reading(payload).unwrap_err()
}

#[test]
fn every_reading_rejection_has_its_own_reason() {
    use JsonError::*;
    let cases: Vec<(Vec<u8>, JsonError, &str)> = vec![
        (
            vec![b' '; MAX_PAYLOAD + 1],
            TooLarge {
                len: MAX_PAYLOAD + 1,
            },
            "too_large",
        ),
        (
            b"{\"seq\":1,\"obs\":{\"a\xff\":1}}".to_vec(),
            InvalidUtf8 { offset: 18 },
            "invalid_utf8",
        ),
        (
            br#"{"a":[[[[[[[[1]]]]]]]]}"#.to_vec(),
            TooDeep { offset: 12 },
            "too_deep",
        ),
        (
            br#"{"seq":1,"obs":{"spo2":97}"#.to_vec(),
            Malformed {
                line: 1,
                column: 26,
            },
            "malformed",
        ),
        (
            b"{\"seq\":1,\n \"obs\":{\"spo2\":97,}}".to_vec(),
            Malformed {
                line: 2,
                column: 19,
            },
            "malformed",
        ),
        (b"".to_vec(), Malformed { line: 1, column: 0 }, "malformed"),
        (
            br#"{"seq":1,"obs":{"spo2":97}} {}"#.to_vec(),
            Malformed {
                line: 1,
                column: 29,
            },
            "malformed",
        ),
        (
            br#"{"seq":1,"obs":{"spo2":NaN}}"#.to_vec(),
            Malformed {
                line: 1,
                column: 24,
            },
            "malformed",
        ),
        (br#"[{"seq":1}]"#.to_vec(), NotObject, "not_object"),
        (
            br#"{"obs":{"spo2":97}}"#.to_vec(),
            MissingField { field: "seq" },
            "missing_field",
        ),
        (
            br#"{"seq":1}"#.to_vec(),
            MissingField { field: "obs" },
            "missing_field",
        ),
        (
            // An object value is either {"invalid"} or {"value", "unit"}; neither member: the value is missing.
            br#"{"seq":1,"obs":{"spo2":{"why":"nan"}}}"#.to_vec(),
            MissingField { field: "value" },
            "missing_field",
        ),
        (
            br#"{"seq":1,"seq":2,"obs":{"spo2":97}}"#.to_vec(),
            DuplicateField { field: "seq" },
            "duplicate_field",
        ),
        (
            br#"{"seq":1,"obs":{"spo2":"97"}}"#.to_vec(),
            BadField { field: "obs" },
            "bad_field",
        ),
        (
            br#"{"seq":1,"obs":{"spo2":null}}"#.to_vec(),
            BadField { field: "obs" },
            "bad_field",
        ),
        (
            br#"{"seq":1,"obs":[["spo2",97]]}"#.to_vec(),
            BadField { field: "obs" },
            "bad_field",
        ),
        (
            br#"{"seq":1,"obs":{"spo2":{"invalid":7}}}"#.to_vec(),
            BadField { field: "invalid" },
            "bad_field",
        ),
        (
            br#"{"seq":1,"t":"2026-11-22 10:15:00Z","obs":{"spo2":97}}"#.to_vec(),
            BadTime { field: "t" },
            "bad_time",
        ),
        (
            br#"{"seq":1,"t":1795342500,"obs":{"spo2":97}}"#.to_vec(),
            BadTime { field: "t" },
            "bad_time",
        ),
        (
            br#"{"seq":-1,"obs":{"spo2":97}}"#.to_vec(),
            BadSeq,
            "bad_seq",
        ),
        (
            br#"{"seq":4294967296,"obs":{"spo2":97}}"#.to_vec(),
            BadSeq,
            "bad_seq",
        ),
        (
            br#"{"seq":1.5,"obs":{"spo2":97}}"#.to_vec(),
            BadSeq,
            "bad_seq",
        ),
        (
            br#"{"seq":"1","obs":{"spo2":97}}"#.to_vec(),
            BadSeq,
            "bad_seq",
        ),
        (
            br#"{"seq":null,"obs":{"spo2":97}}"#.to_vec(),
            BadSeq,
            "bad_seq",
        ),
        (br#"{"seq":1,"obs":{}}"#.to_vec(), EmptyObs, "empty_obs"),
        (
            br#"{"seq":1,"obs":{"spo2":97,"heart_rate":80,"spo2":98}}"#.to_vec(),
            DuplicateCode { index: 2 },
            "duplicate_code",
        ),
    ];
    for (payload, want, code) in cases {
        let got = err(&payload);
        assert_eq!(got, want, "payload {:?}", String::from_utf8_lossy(&payload));
        assert_eq!(got.as_str(), code);
    }
    // 33 observations.
    let obs: Vec<String> = (0..33).map(|i| format!(r#""c{i}":{i}"#)).collect();
    let payload = format!(r#"{{"seq":1,"obs":{{{}}}}}"#, obs.join(","));
    let got = err(payload.as_bytes());
    assert_eq!(got, TooManyObs { count: 33 });
    assert_eq!(got.as_str(), "too_many_obs");
}

#[test]
fn limits_are_inclusive() {
    // Exactly 16 KiB, padded with whitespace, is accepted.
    let mut payload = br#"{"seq":1,"obs":{"spo2":97}}"#.to_vec();
    payload.resize(MAX_PAYLOAD, b' ');
    assert_eq!(parse_reading(&payload).unwrap().seq, 1);
    // Exactly 8 levels is accepted (the unknown member is then ignored).
    assert_eq!(
        parse_reading(br#"{"seq":1,"obs":{"spo2":97},"x":[[[[[[[1]]]]]]]}"#)
            .unwrap()
            .seq,
        1
    );
    // 32 observations are accepted.
    let obs: Vec<String> = (0..32).map(|i| format!(r#""c{i}":{i}"#)).collect();
    let payload = format!(r#"{{"seq":1,"obs":{{{}}}}}"#, obs.join(","));
    assert_eq!(parse_reading(payload.as_bytes()).unwrap().obs.len(), 32);
}

#[test]
fn hostile_depth_is_refused_before_parsing() {
    // serde_json would recurse on this; the byte scan refuses it at the ninth bracket.
    let payload = "[".repeat(MAX_PAYLOAD);
    assert_eq!(err(payload.as_bytes()), JsonError::TooDeep { offset: 8 });
    // Brackets inside strings (escaped quotes included) do not count.
    let payload = format!(
        r#"{{"seq":1,"note":"\"{}","obs":{{"spo2":97}}}}"#,
        "[{".repeat(100)
    );
    assert_eq!(parse_reading(payload.as_bytes()).unwrap().seq, 1);
}

#[test]
fn errors_display_their_position() {
    assert_eq!(
        JsonError::Malformed {
            line: 2,
            column: 18
        }
        .to_string(),
        "malformed at line 2 column 18"
    );
    assert_eq!(
        JsonError::MissingField { field: "seq" }.to_string(),
        "missing_field: `seq`"
    );
    assert_eq!(
        JsonError::TooDeep { offset: 8 }.to_string(),
        "too_deep at byte 8"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// RFC 3339
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn rfc3339_variants() {
    let base = 1_795_342_500_000; // 2026-11-22T10:15:00Z
    let ok = [
        ("2026-11-22T10:15:00Z", base),
        ("2026-11-22t10:15:00z", base),
        ("2026-11-22T10:15:00+00:00", base),
        ("2026-11-22T10:15:00-00:00", base),
        ("2026-11-22T11:15:00+01:00", base),
        ("2026-11-22T05:45:00-04:30", base),
        ("2026-11-23T10:14:00+23:59", base),
        ("2026-11-22T10:15:00.1Z", base + 100),
        ("2026-11-22T10:15:00.12Z", base + 120),
        ("2026-11-22T10:15:00.120Z", base + 120),
        ("2026-11-22T10:15:00.1234Z", base + 123),
        ("2026-11-22T10:15:00.12345Z", base + 123),
        ("2026-11-22T10:15:00.123456Z", base + 123),
        ("2026-11-22T10:15:00.1234567Z", base + 123),
        ("2026-11-22T10:15:00.12345678Z", base + 123),
        ("2026-11-22T10:15:00.999999999Z", base + 999),
        ("2026-11-22T10:15:00.9999999999999Z", base + 999),
        ("2024-02-29T23:59:59Z", 1_709_251_199_000),
        ("2000-01-01T00:00:00Z", 946_684_800_000),
        ("1969-12-31T23:59:59.999Z", -1),
        ("1970-01-01T00:00:00Z", 0),
        ("2016-12-31T23:59:60Z", 1_483_228_799_999),
        ("0000-01-01T00:00:00Z", MIN_MILLIS),
        ("9999-12-31T23:59:59.999Z", MAX_MILLIS),
    ];
    for (s, want) in ok {
        assert_eq!(parse_rfc3339_millis(s), Ok(want), "{s}");
    }
    let bad = [
        "",
        "2026-11-22",
        "2026-11-22T10:15Z",
        "2026-11-22T10:15:00",
        "2026-11-22 10:15:00Z",
        "2026-11-22_10:15:00Z",
        "2026-11-22T10:15:00.Z",
        "2026-11-22T10:15:00,120Z",
        "2026-11-22T10:15:00+0100",
        "2026-11-22T10:15:00+01",
        "2026-11-22T10:15:00+24:00",
        "2026-11-22T10:15:00+01:60",
        "2026-11-22T10:15:00ZZ",
        "2026-11-22T10:15:00Z ",
        " 2026-11-22T10:15:00Z",
        "2025-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-11-00T00:00:00Z",
        "2026-11-22T24:00:00Z",
        "2026-11-22T10:60:00Z",
        "2026-11-22T10:15:61Z",
        "2026-11-22T10:15:60Z",
        "26-11-22T10:15:00Z",
        "+2026-11-22T10:15:00Z",
        "0000-01-01T00:30:00+01:00",
        "２026-11-22T10:15:00Z",
    ];
    for s in bad {
        assert_eq!(parse_rfc3339_millis(s), Err(TimeError), "{s:?}");
    }
}

#[test]
fn rfc3339_formatting_is_utc_with_milliseconds() {
    assert_eq!(
        format_rfc3339_millis(1_795_342_500_120),
        "2026-11-22T10:15:00.120Z"
    );
    assert_eq!(format_rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(format_rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
    assert_eq!(
        format_rfc3339_millis(1_709_251_199_000),
        "2024-02-29T23:59:59.000Z"
    );
    assert_eq!(
        format_rfc3339_millis(MIN_MILLIS),
        "0000-01-01T00:00:00.000Z"
    );
    assert_eq!(
        format_rfc3339_millis(MAX_MILLIS),
        "9999-12-31T23:59:59.999Z"
    );
    // Out of RFC 3339's range: clamped, never a five-digit or negative year.
    assert_eq!(format_rfc3339_millis(i64::MIN), "0000-01-01T00:00:00.000Z");
    assert_eq!(format_rfc3339_millis(i64::MAX), "9999-12-31T23:59:59.999Z");
    // Offsets are converted, not kept.
    let ms = parse_rfc3339_millis("2026-11-22T11:15:00.5+01:00").unwrap();
    assert_eq!(format_rfc3339_millis(ms), "2026-11-22T10:15:00.500Z");
}

// ---------------------------------------------------------------------------------------------------------------
// Alerts, acks, heartbeats
// ---------------------------------------------------------------------------------------------------------------

fn clinical_alert() -> AlertMessage {
    AlertMessage {
        id: "01JD3K8Z6Q2W7Y4N5M0P1R9T8V".into(),
        rev: 2,
        home: "home-0042".into(),
        patient: "p-7f3a".into(),
        severity: Severity::High,
        state: AlertState::Escalated,
        kind: AlertKind::Clinical,
        rule: "threshold.spo2_low".into(),
        device: Some("oxi-1".into()),
        seq: Some(17),
        code: Some("spo2".into()),
        value: Some(88.0),
        unit: Some("%".into()),
        observed_at: Some(1_795_342_500_120),
        time_source: Some(TimeSource::Device),
        raised_at: 1_795_342_501_004,
        message: "SpO2 88 % (alert below 92 %), not acknowledged for 15 min".into(),
        incident: Some("5b1e0c1a-8d2f-4c3e-9a41-2f6d7e8b9c01".into()),
        details: json!({"news2": {"score": 7, "complete": false}}),
    }
}

fn technical_alert() -> AlertMessage {
    AlertMessage {
        id: "01JD3M2B7C9D0E1F2G3H4J5K6L".into(),
        rev: 1,
        home: "home-0042".into(),
        patient: "p-7f3a".into(),
        severity: Severity::Low,
        state: AlertState::Open,
        kind: AlertKind::Technical,
        rule: "device.silent".into(),
        device: Some("scale-1".into()),
        seq: None,
        code: None,
        value: None,
        unit: None,
        observed_at: None,
        time_source: None,
        raised_at: 1_795_341_600_000,
        message: "Scale silent for 26 h".into(),
        incident: None,
        details: Value::Null,
    }
}

#[test]
fn alert_serialises_to_the_exact_documented_bytes() {
    assert_eq!(
        serde_json::to_string(&technical_alert()).unwrap(),
        r#"{"id":"01JD3M2B7C9D0E1F2G3H4J5K6L","rev":1,"home":"home-0042","patient":"p-7f3a","severity":"low","state":"open","kind":"technical","rule":"device.silent","device":"scale-1","seq":null,"code":null,"value":null,"unit":null,"observed_at":null,"time_source":null,"raised_at":"2026-11-22T10:00:00.000Z","message":"Scale silent for 26 h","incident":null}"#
    );
    let v = serde_json::to_value(clinical_alert()).unwrap();
    assert_eq!(v["observed_at"], "2026-11-22T10:15:00.120Z");
    assert_eq!(v["raised_at"], "2026-11-22T10:15:01.004Z");
    assert_eq!(v["severity"], "high");
    assert_eq!(v["details"]["news2"]["score"], 7);
}

#[test]
fn alert_round_trips_through_both_parsers() {
    for alert in [clinical_alert(), technical_alert()] {
        let bytes = serde_json::to_vec(&alert).unwrap();
        assert_eq!(parse_alert(&bytes).unwrap(), alert);
        assert_eq!(
            serde_json::from_slice::<AlertMessage>(&bytes).unwrap(),
            alert
        );
    }
    assert_eq!(clinical_alert().code(), Some(Code::Spo2));
}

#[test]
fn alert_nullable_members_may_be_omitted_and_codes_stay_open() {
    let a = parse_alert(
        br#"{"id":"a","rev":1,"home":"h","patient":"p","severity":"medium","state":"updated","kind":"clinical",
            "rule":"news2","code":"lactate","raised_at":"2026-11-22T10:00:00Z","message":"m","extra":true}"#,
    )
    .unwrap();
    assert_eq!(a.code.as_deref(), Some("lactate"));
    assert_eq!(a.code(), None);
    assert_eq!(
        (a.device, a.seq, a.value, a.details),
        (None, None, None, Value::Null)
    );
}

#[test]
fn alert_rejections() {
    let good = serde_json::to_value(clinical_alert()).unwrap();
    let with = |k: &str, v: Value| {
        let mut o = good.clone();
        o[k] = v;
        parse_alert(&serde_json::to_vec(&o).unwrap()).unwrap_err()
    };
    use JsonError::*;
    assert_eq!(
        with("severity", json!("critical")),
        BadField { field: "severity" }
    );
    assert_eq!(with("state", json!("Open")), BadField { field: "state" });
    assert_eq!(with("kind", json!(null)), BadField { field: "kind" });
    assert_eq!(with("rev", json!(0)), BadField { field: "rev" });
    assert_eq!(with("rev", json!(-1)), BadField { field: "rev" });
    assert_eq!(
        with("seq", json!(4_294_967_296u64)),
        BadField { field: "seq" }
    );
    assert_eq!(with("value", json!("88")), BadField { field: "value" });
    assert_eq!(
        with("time_source", json!("gps")),
        BadField {
            field: "time_source"
        }
    );
    assert_eq!(with("details", json!([1])), BadField { field: "details" });
    assert_eq!(
        with("raised_at", json!("yesterday")),
        BadTime { field: "raised_at" }
    );
    assert_eq!(
        with("observed_at", json!(0)),
        BadTime {
            field: "observed_at"
        }
    );
    assert_eq!(
        with("raised_at", json!(null)),
        BadTime { field: "raised_at" }
    );
    let dup = br#"{"id":"a","id":"b","rev":1}"#;
    assert_eq!(parse_alert(dup), Err(DuplicateField { field: "id" }));
    let dup_in_details = br#"{"id":"a","rev":1,"home":"h","patient":"p","severity":"low","state":"open",
        "kind":"clinical","rule":"r","raised_at":"2026-11-22T10:00:00Z","message":"m","details":{"x":{"a":1,"a":2}}}"#;
    assert_eq!(
        parse_alert(dup_in_details),
        Err(DuplicateField { field: "details" })
    );
    assert_eq!(parse_alert(b"null"), Err(NotObject));
    // Deserialize goes through the same checks.
    let e = serde_json::from_slice::<AlertMessage>(dup).unwrap_err();
    assert_eq!(e.to_string(), "duplicate_field: `id`");
}

#[test]
fn severity_is_ordered_low_medium_high() {
    assert!(Severity::Low < Severity::Medium && Severity::Medium < Severity::High);
    assert_eq!(
        Severity::ALL,
        [Severity::Low, Severity::Medium, Severity::High]
    );
    assert_eq!(
        serde_json::to_string(&Severity::Medium).unwrap(),
        r#""medium""#
    );
    assert_eq!(
        serde_json::from_str::<AlertState>(r#""acknowledged""#).unwrap(),
        AlertState::Acknowledged
    );
    for s in AlertState::ALL {
        assert_eq!(AlertState::from_name(s.as_str()), Some(*s));
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
    }
    for k in AlertKind::ALL {
        assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
    }
    for t in TimeSource::ALL {
        assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
    }
}

#[test]
fn ack_parses_exactly_and_rejects_what_is_not_an_ack() {
    let a = parse_ack(br#"{"acks":[{"id":"x","rev":2},{"id":"y","rev":1,"stored_at":"later"}]}"#)
        .unwrap();
    assert_eq!(
        a,
        AckMessage {
            acks: vec![
                AckedAlert {
                    id: "x".into(),
                    rev: 2
                },
                AckedAlert {
                    id: "y".into(),
                    rev: 1
                }
            ]
        }
    );
    assert_eq!(parse_ack(br#"{"acks":[]}"#).unwrap().acks, vec![]);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        r#"{"acks":[{"id":"x","rev":2},{"id":"y","rev":1}]}"#
    );
    use JsonError::*;
    assert_eq!(parse_ack(br#"{}"#), Err(MissingField { field: "acks" }));
    assert_eq!(
        parse_ack(br#"{"acks":{"id":"x","rev":1}}"#),
        Err(BadField { field: "acks" })
    );
    assert_eq!(
        parse_ack(br#"{"acks":["x"]}"#),
        Err(BadField { field: "acks" })
    );
    assert_eq!(
        parse_ack(br#"{"acks":[{"id":"x"}]}"#),
        Err(MissingField { field: "rev" })
    );
    assert_eq!(
        parse_ack(br#"{"acks":[{"id":1,"rev":1}]}"#),
        Err(BadField { field: "id" })
    );
    assert_eq!(
        parse_ack(br#"{"acks":[{"id":"x","rev":0}]}"#),
        Err(BadField { field: "rev" })
    );
    assert_eq!(
        parse_ack(br#"{"acks":[],"acks":[]}"#),
        Err(DuplicateField { field: "acks" })
    );
    assert_eq!(
        parse_ack(b"{\"acks\":[}"),
        Err(Malformed {
            line: 1,
            column: 10
        })
    );
    assert_eq!(
        parse_ack(&[b' '; MAX_PAYLOAD + 1]),
        Err(TooLarge {
            len: MAX_PAYLOAD + 1
        })
    );
    assert_eq!(
        parse_ack(b"{\"acks\":[[[[[[[[[]]]]]]]]]}"),
        Err(TooDeep { offset: 15 })
    );
    assert_eq!(parse_ack(b"\xc3("), Err(InvalidUtf8 { offset: 0 }));
}

#[test]
fn heartbeat_parses_exactly_and_round_trips() {
    let h = parse_heartbeat(br#"{"home":"home-0042","at":"2026-11-22T10:16:00.000Z","outbox_depth":2,"oldest_pending_s":35}"#)
        .unwrap();
    let want = Heartbeat {
        home: "home-0042".into(),
        at: 1_795_342_560_000,
        outbox_depth: 2,
        oldest_pending_s: Some(35),
    };
    assert_eq!(h, want);
    assert_eq!(
        parse_heartbeat(&serde_json::to_vec(&want).unwrap()).unwrap(),
        want
    );
    let idle = Heartbeat {
        oldest_pending_s: None,
        outbox_depth: 0,
        ..want.clone()
    };
    assert_eq!(
        serde_json::to_string(&idle).unwrap(),
        r#"{"home":"home-0042","at":"2026-11-22T10:16:00.000Z","outbox_depth":0,"oldest_pending_s":null}"#
    );
    assert_eq!(
        serde_json::from_slice::<Heartbeat>(&serde_json::to_vec(&idle).unwrap()).unwrap(),
        idle
    );
    use JsonError::*;
    assert_eq!(
        parse_heartbeat(br#"{"home":"h","outbox_depth":0}"#),
        Err(MissingField { field: "at" })
    );
    assert_eq!(
        parse_heartbeat(br#"{"home":"h","at":"now","outbox_depth":0}"#),
        Err(BadTime { field: "at" })
    );
    assert_eq!(
        parse_heartbeat(br#"{"home":"h","at":"2026-11-22T10:16:00Z","outbox_depth":-1}"#),
        Err(BadField {
            field: "outbox_depth"
        })
    );
    assert_eq!(
        parse_heartbeat(
            br#"{"home":"h","at":"2026-11-22T10:16:00Z","outbox_depth":18446744073709551616}"#
        ),
        Err(BadField {
            field: "outbox_depth"
        })
    );
    assert_eq!(
        parse_heartbeat(
            br#"{"home":"h","at":"2026-11-22T10:16:00Z","outbox_depth":1,"oldest_pending_s":"1"}"#
        ),
        Err(BadField {
            field: "oldest_pending_s"
        })
    );
    assert_eq!(parse_heartbeat(b"1"), Err(NotObject));
}

#[test]
fn reading_serialises_in_the_documented_shape() {
    let r = ReadingMessage {
        seq: 18,
        t: Some(1_795_342_500_120),
        obs: vec![
            num("heart_rate", 91.0),
            RawObservation {
                name: "spo2".into(),
                value: RawValue::Invalid(Invalid::MotionArtefact),
            },
            RawObservation {
                name: "x".into(),
                value: RawValue::UnknownInvalid("why".into()),
            },
        ],
    };
    let s = serde_json::to_string(&r).unwrap();
    assert_eq!(
        s,
        r#"{"seq":18,"t":"2026-11-22T10:15:00.120Z","obs":{"heart_rate":91.0,"spo2":{"invalid":"motion_artefact"},"x":{"invalid":"why"}}}"#
    );
    assert_eq!(parse_reading(s.as_bytes()).unwrap(), r);
    assert_eq!(serde_json::from_str::<ReadingMessage>(&s).unwrap(), r);
}

// ---------------------------------------------------------------------------------------------------------------
// Topics
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn topics_build_and_parse() {
    assert_eq!(
        reading_topic(DEFAULT_HUB_PREFIX, "oxi-1"),
        "hub/readings/oxi-1"
    );
    assert_eq!(
        alert_topic(DEFAULT_CARE_PREFIX, "p-7f3a"),
        "care/alerts/p-7f3a"
    );
    assert_eq!(ack_topic("care", "home-0042"), "care/acks/home-0042");
    assert_eq!(
        heartbeat_topic("care", "home-0042"),
        "care/heartbeat/home-0042"
    );

    assert_eq!(
        parse_reading_topic("hub", "hub/readings/oxi-1"),
        Some("oxi-1")
    );
    assert_eq!(
        parse_reading_topic("site1/hub", "site1/hub/readings/oxi-1"),
        Some("oxi-1")
    );
    assert_eq!(
        parse_alert_topic("care", "care/alerts/p-7f3a"),
        Some("p-7f3a")
    );
    assert_eq!(
        parse_ack_topic("care", "care/acks/home-0042"),
        Some("home-0042")
    );
    assert_eq!(
        parse_heartbeat_topic("care", "care/heartbeat/home-0042"),
        Some("home-0042")
    );
    for bad in [
        "hub/readings/",
        "hub/readings",
        "hub/readings/a/b",
        "hub/readings/+",
        "hub/readings/#",
        "hub/readings/a+b",
        "hub/readings/a\0",
        "hubx/readings/a",
        "hub/reading/a",
        "hub/alerts/a",
        "xhub/readings/a",
        "/hub/readings/a",
        "hub//readings/a",
    ] {
        assert_eq!(parse_reading_topic("hub", bad), None, "{bad:?}");
    }
    assert_eq!(parse_ack_topic("care", "care/heartbeat/h"), None);
    assert_eq!(parse_heartbeat_topic("care", "care/acks/h"), None);
    assert!(is_valid_topic_id("home-0042") && !is_valid_topic_id("") && !is_valid_topic_id("a/b"));
}

// ---------------------------------------------------------------------------------------------------------------
// Docs and schemas, kept in step mechanically
// ---------------------------------------------------------------------------------------------------------------

fn repo_file(path: &str) -> String {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn schema(name: &str) -> Value {
    serde_json::from_str(&repo_file(&format!("protocol/schema/{name}.schema.json")))
        .expect("schema is JSON")
}

/// The ```json blocks that follow `<!-- example: KIND -->` markers in docs/protocol/json.md.
fn doc_examples() -> Vec<(String, String)> {
    let doc = repo_file("docs/protocol/json.md");
    let mut out = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(kind) = line
            .trim()
            .strip_prefix("<!-- example: ")
            .and_then(|r| r.strip_suffix(" -->"))
        else {
            continue;
        };
        assert_eq!(
            lines.next().map(str::trim),
            Some("```json"),
            "example {kind} must be a ```json block"
        );
        let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        out.push((kind.to_string(), body.join("\n")));
    }
    out
}

/// A minimal JSON Schema (2020-12) checker for exactly the keywords our schemas use; any other keyword fails the
/// test, so a schema cannot quietly rely on something this check ignores.
fn validate(schema: &Value, v: &Value, path: &str) -> Result<(), String> {
    let s = schema
        .as_object()
        .ok_or(format!("{path}: schema is not an object"))?;
    for (key, rule) in s {
        match key.as_str() {
            "$schema" | "$id" | "title" | "description" | "examples" => {}
            "type" => {
                let types: Vec<&str> = match rule {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                    _ => return Err(format!("{path}: bad type keyword")),
                };
                let is = |t: &str| match t {
                    "object" => v.is_object(),
                    "array" => v.is_array(),
                    "string" => v.is_string(),
                    "number" => v.is_number(),
                    "integer" => {
                        v.is_u64() || v.is_i64() || v.as_f64().is_some_and(|f| f == f.trunc())
                    }
                    "boolean" => v.is_boolean(),
                    "null" => v.is_null(),
                    _ => false,
                };
                if !types.iter().any(|t| is(t)) {
                    return Err(format!("{path}: {v} is not {types:?}"));
                }
            }
            "enum" => {
                if !rule.as_array().unwrap().contains(v) {
                    return Err(format!("{path}: {v} not in {rule}"));
                }
            }
            "minimum" | "maximum" => {
                if let Some(x) = v.as_f64() {
                    let bound = rule.as_f64().unwrap();
                    // Compare integers exactly where both are integers (u64 bounds lose precision as f64).
                    let ok = match (v.as_u64(), rule.as_u64(), v.as_i64()) {
                        (Some(a), Some(b), _) => {
                            if key == "minimum" {
                                a >= b
                            } else {
                                a <= b
                            }
                        }
                        (None, Some(_), Some(_)) => key == "maximum", // negative integer vs non-negative bound
                        _ => {
                            if key == "minimum" {
                                x >= bound
                            } else {
                                x <= bound
                            }
                        }
                    };
                    if !ok {
                        return Err(format!("{path}: {v} breaks {key} {rule}"));
                    }
                }
            }
            "format" => {
                if let (Some(t), "date-time") = (v.as_str(), rule.as_str().unwrap()) {
                    parse_rfc3339_millis(t)
                        .map_err(|_| format!("{path}: {t} is not a date-time"))?;
                }
            }
            "required" => {
                if let Some(o) = v.as_object() {
                    for r in rule.as_array().unwrap() {
                        if !o.contains_key(r.as_str().unwrap()) {
                            return Err(format!("{path}: missing {r}"));
                        }
                    }
                }
            }
            "minProperties" | "maxProperties" => {
                if let Some(o) = v.as_object() {
                    let n = rule.as_u64().unwrap() as usize;
                    if (key == "minProperties" && o.len() < n)
                        || (key == "maxProperties" && o.len() > n)
                    {
                        return Err(format!("{path}: {} members breaks {key} {n}", o.len()));
                    }
                }
            }
            "properties" => {
                if let Some(o) = v.as_object() {
                    for (k, sub) in rule.as_object().unwrap() {
                        if let Some(x) = o.get(k) {
                            validate(sub, x, &format!("{path}/{k}"))?;
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let (Some(o), false) = (v.as_object(), rule == &Value::Bool(true)) {
                    let known = s.get("properties").and_then(Value::as_object);
                    for (k, x) in o {
                        if known.is_some_and(|p| p.contains_key(k)) {
                            continue;
                        }
                        if rule == &Value::Bool(false) {
                            return Err(format!("{path}: unexpected {k}"));
                        }
                        validate(rule, x, &format!("{path}/{k}"))?;
                    }
                }
            }
            "items" => {
                if let Some(a) = v.as_array() {
                    for (i, x) in a.iter().enumerate() {
                        validate(rule, x, &format!("{path}/{i}"))?;
                    }
                }
            }
            "oneOf" => {
                let n = rule
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|sub| validate(sub, v, path).is_ok())
                    .count();
                if n != 1 {
                    return Err(format!("{path}: {v} matches {n} branches of oneOf"));
                }
            }
            other => panic!("schema keyword {other} is not understood by this test's checker"),
        }
    }
    Ok(())
}

/// Equal JSON, with numbers compared by value (`88` and `88.0` are the same number).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn parse_kind(kind: &str, payload: &[u8]) -> Result<Value, JsonError> {
    Ok(match kind {
        "reading" => serde_json::to_value(parse_reading(payload)?).unwrap(),
        "alert" => serde_json::to_value(parse_alert(payload)?).unwrap(),
        "ack" => serde_json::to_value(parse_ack(payload)?).unwrap(),
        "heartbeat" => serde_json::to_value(parse_heartbeat(payload)?).unwrap(),
        "action" => serde_json::to_value(parse_action(payload)?).unwrap(),
        "checkin" => serde_json::to_value(parse_checkin(payload)?).unwrap(),
        "baseline" => serde_json::to_value(parse_baseline(payload)?).unwrap(),
        other => panic!("unknown example kind {other}"),
    })
}

#[test]
fn documented_examples_parse_and_match_their_schema() {
    let examples = doc_examples();
    let kinds: BTreeSet<&str> = examples.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "ack",
            "action",
            "alert",
            "baseline",
            "checkin",
            "heartbeat",
            "reading"
        ])
    );
    for (kind, body) in &examples {
        let reparsed = parse_kind(kind, body.as_bytes())
            .unwrap_or_else(|e| panic!("{kind} example: {e}\n{body}"));
        let as_written: Value = serde_json::from_str(body).unwrap();
        let schema = schema(kind);
        validate(&schema, &as_written, kind)
            .unwrap_or_else(|e| panic!("{kind} example vs schema: {e}"));
        // What we write back is valid too (and means the same: same members, equal values).
        validate(&schema, &reparsed, kind).unwrap();
        assert!(
            same(&as_written, &reparsed),
            "{kind}: {as_written} came back as {reparsed}"
        );
    }
    // The first reading example is the one `reading_example_parses_exactly` pins.
    assert!(examples[0].1.contains(r#""t": "2026-11-22T10:15:00.120Z""#));
}

fn full_example(kind: &str) -> Value {
    match kind {
        "reading" => serde_json::to_value(ReadingMessage {
            seq: 1,
            t: Some(0),
            obs: vec![num("spo2", 97.0)],
        }),
        "alert" => serde_json::to_value(clinical_alert()),
        "ack" => serde_json::to_value(AckMessage {
            acks: vec![AckedAlert {
                id: "a".into(),
                rev: 1,
            }],
        }),
        "heartbeat" => serde_json::to_value(Heartbeat {
            home: "h".into(),
            at: 0,
            outbox_depth: 1,
            oldest_pending_s: Some(3),
        }),
        // An acknowledgement with every optional member filled (each is required only by other actions).
        "action" => serde_json::to_value(ActionMessage {
            action_id: "act-1".into(),
            alert_id: "a".into(),
            action: ActionKind::Acknowledge,
            by: "nurse-7".into(),
            at: 0,
            reason: Some("r".into()),
            until: Some(1),
            assignee: Some("gp".into()),
        }),
        "checkin" => serde_json::to_value(CheckinMessage {
            checkin_id: "ci-1".into(),
            reporter: Reporter::Carer,
            at: 0,
            consciousness: Some(Consciousness::Confusion),
            oxygen: Some(true),
            oxygen_l_min: Some(2.0),
            soft_signs: Some(vec![SoftSign::NotUsualSelf, SoftSign::Fall]),
            note: Some("n".into()),
        }),
        _ => unreachable!(),
    }
    .unwrap()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn schemas_list_exactly_our_members_and_requirements() {
    for kind in ["reading", "alert", "ack", "heartbeat", "action", "checkin"] {
        let schema = schema(kind);
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        let full = full_example(kind);
        assert_eq!(
            keys(&schema["properties"]),
            keys(&full),
            "{kind}: schema properties vs struct members"
        );
        validate(&schema, &full, kind).unwrap();

        // `required` says exactly which members our parser insists on.
        let required: BTreeSet<String> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        for member in keys(&full) {
            let mut without = full.clone();
            without.as_object_mut().unwrap().remove(&member);
            let got = parse_kind(kind, &serde_json::to_vec(&without).unwrap());
            if required.contains(&member) {
                let got = got.unwrap_err();
                assert_eq!(got.as_str(), "missing_field", "{kind}: dropping {member}");
                assert_eq!(got.to_string(), format!("missing_field: `{member}`"));
                assert!(validate(&schema, &without, kind).is_err());
            } else {
                assert!(
                    got.is_ok(),
                    "{kind}: {member} is optional in the schema but the parser says {got:?}"
                );
                // Optional members are nullable too.
                let mut null = full.clone();
                null[&member] = Value::Null;
                assert!(
                    parse_kind(kind, &serde_json::to_vec(&null).unwrap()).is_ok(),
                    "{kind}.{member}: null"
                );
                validate(&schema, &null, kind).unwrap();
            }
        }
    }
    // Nested: ack entries.
    let item = &schema("ack")["properties"]["acks"]["items"];
    assert_eq!(
        keys(&item["properties"]),
        keys(&full_example("ack")["acks"][0])
    );
    assert_eq!(item["required"], json!(["id", "rev"]));
}

#[test]
fn schema_enumerations_are_our_enumerations() {
    let alert = schema("alert");
    let names = |all: Vec<&str>| Value::from(all.into_iter().map(Value::from).collect::<Vec<_>>());
    let sorted = |v: &Value| {
        let mut a: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.to_string())
            .collect();
        a.sort();
        a
    };
    let p = &alert["properties"];
    assert_eq!(
        sorted(&p["severity"]["enum"]),
        sorted(&names(Severity::ALL.iter().map(|s| s.as_str()).collect()))
    );
    assert_eq!(
        sorted(&p["state"]["enum"]),
        sorted(&names(AlertState::ALL.iter().map(|s| s.as_str()).collect()))
    );
    assert_eq!(
        sorted(&p["kind"]["enum"]),
        sorted(&names(AlertKind::ALL.iter().map(|s| s.as_str()).collect()))
    );
    let mut ts = names(TimeSource::ALL.iter().map(|s| s.as_str()).collect());
    ts.as_array_mut().unwrap().push(Value::Null);
    assert_eq!(sorted(&p["time_source"]["enum"]), sorted(&ts));
    // The documented invalid reasons are exactly the vocabulary's.
    let reasons = &schema("reading")["properties"]["obs"]["additionalProperties"]["oneOf"][1]["properties"]
        ["invalid"]["examples"];
    let vocab: Vec<&str> = (1..=u8::MAX)
        .filter_map(Invalid::from_id)
        .map(Invalid::as_str)
        .collect();
    assert_eq!(sorted(reasons), sorted(&names(vocab)));
}

#[test]
fn schema_and_parser_agree_on_rejections() {
    let cases = [
        ("reading", r#"{"seq":-1,"obs":{"spo2":97}}"#),
        ("reading", r#"{"seq":4294967296,"obs":{"spo2":97}}"#),
        ("reading", r#"{"seq":1.5,"obs":{"spo2":97}}"#),
        ("reading", r#"{"seq":1,"obs":{}}"#),
        ("reading", r#"{"seq":1,"obs":{"spo2":"97"}}"#),
        ("reading", r#"{"seq":1,"obs":{"spo2":{"invalid":3}}}"#),
        ("reading", r#"{"seq":1,"obs":{"spo2":{"reason":"nan"}}}"#),
        ("reading", r#"{"seq":1,"t":"10:15","obs":{"spo2":97}}"#),
        (
            "alert",
            &serde_json::to_string(&{
                let mut a = serde_json::to_value(technical_alert()).unwrap();
                a["severity"] = json!("critical");
                a
            })
            .unwrap(),
        ),
        (
            "alert",
            &serde_json::to_string(&{
                let mut a = serde_json::to_value(technical_alert()).unwrap();
                a["rev"] = json!(0);
                a
            })
            .unwrap(),
        ),
        ("ack", r#"{"acks":[{"id":"a"}]}"#),
        ("ack", r#"{"acks":[{"id":"a","rev":0}]}"#),
        (
            "heartbeat",
            r#"{"home":"h","at":"2026-11-22T10:16:00Z","outbox_depth":-1}"#,
        ),
    ];
    for (kind, payload) in cases {
        assert!(
            parse_kind(kind, payload.as_bytes()).is_err(),
            "parser accepts {payload}"
        );
        let v: Value = serde_json::from_str(payload).unwrap();
        assert!(
            validate(&schema(kind), &v, kind).is_err(),
            "schema accepts {payload}"
        );
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------------------------

/// Text made of JSON's own characters, so the fuzzing reaches past the first byte of the parser.
fn jsonish() -> impl Strategy<Value = String> {
    proptest::string::string_regex(r#"[{}\[\]",:0-9a-z\\ .eE+\-tnul]{0,300}"#).unwrap()
}

fn any_reading() -> impl Strategy<Value = ReadingMessage> {
    let value = prop_oneof![
        (any::<i32>(), 0u32..=6)
            .prop_map(|(m, d)| RawValue::Number(m as f64 / 10f64.powi(d as i32))),
        (1u8..=10).prop_map(|id| RawValue::Invalid(Invalid::from_id(id).unwrap())),
        "[a-z_]{1,12}".prop_map(RawValue::UnknownInvalid),
    ];
    (
        any::<u32>(),
        proptest::option::of(MIN_MILLIS..=MAX_MILLIS),
        proptest::collection::btree_map("[a-z_0-9\"\\\\é]{0,12}", value, 1..=MAX_OBS),
    )
        .prop_map(|(seq, t, obs)| ReadingMessage {
            seq,
            t,
            obs: obs
                .into_iter()
                .map(|(name, value)| RawObservation { name, value })
                .collect(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn no_parser_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_reading(&bytes);
        let _ = parse_alert(&bytes);
        let _ = parse_ack(&bytes);
        let _ = parse_heartbeat(&bytes);
        if let Ok(s) = std::str::from_utf8(&bytes) {
            let _ = parse_rfc3339_millis(s);
            let _ = parse_reading_topic("hub", s);
        }
    }

    #[test]
    fn no_parser_panics_on_json_like_text(s in jsonish()) {
        for payload in [s.clone(), format!(r#"{{"seq":1,"obs":{{"spo2":{s}}}}}"#), format!(r#"{{"acks":[{s}]}}"#)] {
            let _ = parse_reading(payload.as_bytes());
            let _ = parse_alert(payload.as_bytes());
            let _ = parse_ack(payload.as_bytes());
            let _ = parse_heartbeat(payload.as_bytes());
        }
    }

    #[test]
    fn no_panic_on_rfc3339_shaped_text(s in r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{0,12})?([Zz]|[+-][0-9]{2}:[0-9]{2})?") {
        if let Ok(ms) = parse_rfc3339_millis(&s) {
            prop_assert!((MIN_MILLIS..=MAX_MILLIS).contains(&ms));
        }
    }

    #[test]
    fn rfc3339_round_trips(ms in MIN_MILLIS..=MAX_MILLIS) {
        let s = format_rfc3339_millis(ms);
        prop_assert_eq!(s.len(), 24);
        prop_assert_eq!(parse_rfc3339_millis(&s), Ok(ms));
    }

    #[test]
    fn reading_round_trips(r in any_reading()) {
        let bytes = serde_json::to_vec(&r).unwrap();
        prop_assume!(bytes.len() <= MAX_PAYLOAD);
        let back = parse_reading(&bytes).unwrap();
        prop_assert_eq!(back.seq, r.seq);
        prop_assert_eq!(back.t, r.t);
        prop_assert_eq!(back.obs.len(), r.obs.len());
        for (a, b) in back.obs.iter().zip(&r.obs) {
            prop_assert_eq!(&a.name, &b.name);
            match (&a.value, &b.value) {
                // serde_json's float parsing may differ from the printed value in the last bit; the quantity may not.
                (RawValue::Number(x), RawValue::Number(y)) => {
                    prop_assert_eq!(Quantity::from_f64(*x, MAX_DECIMALS), Quantity::from_f64(*y, MAX_DECIMALS));
                }
                (x, y) => prop_assert_eq!(x, y),
            }
        }
    }

    #[test]
    fn alert_round_trips(
        rev in 1u32..,
        seq in proptest::option::of(any::<u32>()),
        value in proptest::option::of(-1.0e6f64..1.0e6),
        observed_at in proptest::option::of(MIN_MILLIS..=MAX_MILLIS),
        raised_at in MIN_MILLIS..=MAX_MILLIS,
        sev in 0usize..3,
        state in 0usize..5,
        message in "\\PC{0,40}",
    ) {
        let a = AlertMessage {
            rev,
            seq,
            value,
            observed_at,
            raised_at,
            severity: Severity::ALL[sev],
            state: AlertState::ALL[state],
            message,
            ..clinical_alert()
        };
        let bytes = serde_json::to_vec(&a).unwrap();
        let back = parse_alert(&bytes).unwrap();
        // serde_json prints the shortest representation and (without float_roundtrip) may read it back 1 ulp off.
        let close = match (back.value, a.value) {
            (Some(x), Some(y)) => (x - y).abs() <= y.abs() * 1e-15,
            (x, y) => x == y,
        };
        prop_assert!(close, "value {:?} came back as {:?}", a.value, back.value);
        prop_assert_eq!(AlertMessage { value: a.value, ..back }, a);
    }
}

#[test]
fn a_value_with_its_unit_must_use_the_canonical_unit() {
    let r = parse_reading(
        br#"{"seq":1,"obs":{"temp":{"value":37.2,"unit":"Cel"},"spo2":{"value":98.6,"unit":"[degF]"}}}"#,
    )
    .unwrap();
    assert_eq!(
        r.obs[0].value,
        RawValue::WithUnit {
            value: 37.2,
            unit: "Cel".into()
        }
    );
    assert_eq!(
        r.obs[0].resolve().unwrap().value,
        hearth_protocol::Value::Number(Quantity::new(372, -1))
    );
    assert_eq!(r.obs[1].resolve(), Err(ObsError::UnitMismatch));
    assert_eq!(ObsError::UnitMismatch.as_str(), "unit_mismatch");
    // A unit object needs both members, of the right types.
    assert_eq!(
        parse_reading(br#"{"seq":1,"obs":{"temp":{"value":37.2}}}"#),
        Err(JsonError::MissingField { field: "unit" })
    );
    assert_eq!(
        parse_reading(br#"{"seq":1,"obs":{"temp":{"value":"37.2","unit":"Cel"}}}"#),
        Err(JsonError::BadField { field: "value" })
    );
    // It round-trips through the serializer.
    let again = parse_reading(serde_json::to_string(&r).unwrap().as_bytes()).unwrap();
    assert_eq!(again, r);
}

#[test]
fn nurse_actions_parse_and_require_their_fields() {
    let a = parse_action(
        br#"{"action_id":"a-1","alert_id":"x","action":"snooze","by":"nurse-7","at":"2026-11-23T09:00:00Z","reason":"visit booked","until":"2026-11-23T11:00:00Z"}"#,
    )
    .unwrap();
    assert_eq!(a.action, ActionKind::Snooze);
    assert_eq!(
        a.until,
        Some(parse_rfc3339_millis("2026-11-23T11:00:00Z").unwrap())
    );
    assert_eq!(a.reason.as_deref(), Some("visit booked"));
    let again = parse_action(serde_json::to_string(&a).unwrap().as_bytes()).unwrap();
    assert_eq!(again, a);
    let ack = br#"{"action_id":"a-2","alert_id":"x","action":"acknowledge","by":"n","at":"2026-11-23T09:00:00Z"}"#;
    assert_eq!(parse_action(ack).unwrap().action, ActionKind::Acknowledge);
    let missing = |body: &str| parse_action(body.as_bytes()).unwrap_err();
    assert_eq!(
        missing(
            r#"{"action_id":"a","alert_id":"x","action":"snooze","by":"n","at":"2026-11-23T09:00:00Z","reason":"r"}"#
        ),
        JsonError::MissingField { field: "until" }
    );
    assert_eq!(
        missing(
            r#"{"action_id":"a","alert_id":"x","action":"resolve","by":"n","at":"2026-11-23T09:00:00Z"}"#
        ),
        JsonError::MissingField { field: "reason" }
    );
    assert_eq!(
        missing(
            r#"{"action_id":"a","alert_id":"x","action":"assign","by":"n","at":"2026-11-23T09:00:00Z"}"#
        ),
        JsonError::MissingField { field: "assignee" }
    );
    assert_eq!(
        missing(
            r#"{"action_id":"a","alert_id":"x","action":"delete","by":"n","at":"2026-11-23T09:00:00Z"}"#
        ),
        JsonError::BadField { field: "action" }
    );
}

#[test]
fn checkin_reports_consciousness_oxygen_and_soft_signs_and_refuses_nonsense() {
    let ok = parse_checkin(
        br#"{"checkin_id":"c-1","reporter":"patient","at":"2026-11-23T09:00:00Z","oxygen_l_min":2}"#,
    )
    .unwrap();
    assert_eq!(ok.on_oxygen(), Some(true), "a flow means on oxygen");
    assert_eq!(ok.reporter, Reporter::Patient);
    let asked_none = parse_checkin(
        br#"{"checkin_id":"c-2","reporter":"carer","at":"2026-11-23T09:00:00Z","soft_signs":[]}"#,
    )
    .unwrap();
    assert_eq!(asked_none.soft_signs, Some(vec![]));
    let base = r#""checkin_id":"c-3","reporter":"carer","at":"2026-11-23T09:00:00Z""#;
    for (extra, reason, field) in [
        ("", "missing_field", "consciousness"),
        (r#","note":"only a note""#, "missing_field", "consciousness"),
        (r#","consciousness":"drowsy""#, "bad_field", "consciousness"),
        (r#","consciousness":"C""#, "bad_field", "consciousness"),
        (
            r#","soft_signs":["fall","fall"]"#,
            "duplicate_field",
            "soft_signs",
        ),
        (r#","soft_signs":["sad"]"#, "bad_field", "soft_signs"),
        (r#","soft_signs":"fall""#, "bad_field", "soft_signs"),
        (r#","oxygen":"yes""#, "bad_field", "oxygen"),
        (
            r#","oxygen":false,"oxygen_l_min":2"#,
            "bad_field",
            "oxygen_l_min",
        ),
        (
            r#","oxygen":true,"oxygen_l_min":16"#,
            "bad_field",
            "oxygen_l_min",
        ),
        (
            r#","oxygen":true,"oxygen_l_min":-1"#,
            "bad_field",
            "oxygen_l_min",
        ),
    ] {
        let payload = format!("{{{base}{extra}}}");
        let e = parse_checkin(payload.as_bytes()).unwrap_err();
        assert_eq!(e.as_str(), reason, "{payload}");
        assert!(e.to_string().contains(field), "{payload}: {e}");
    }
    let long = format!(
        r#"{{{base},"oxygen":false,"note":"{}"}}"#,
        "x".repeat(MAX_NOTE + 1)
    );
    assert_eq!(
        parse_checkin(long.as_bytes()).unwrap_err().as_str(),
        "bad_field"
    );
    let bad_id =
        r#"{"checkin_id":"a/b","reporter":"carer","at":"2026-11-23T09:00:00Z","oxygen":false}"#;
    assert_eq!(
        parse_checkin(bad_id.as_bytes()).unwrap_err().as_str(),
        "bad_field"
    );
    assert_eq!(checkin_topic("hub", "p-1"), "hub/checkins/p-1");
    assert_eq!(parse_checkin_topic("hub", "hub/checkins/p-1"), Some("p-1"));
    assert_eq!(parse_checkin_topic("hub", "hub/checkins/p/1"), None);
}

#[test]
fn baseline_needs_one_direction_a_clinician_and_a_reason() {
    let schema = schema("baseline");
    let full = json!({"baseline_id": "b", "patient": "p", "code": "spo2", "below": 88, "above": null,
        "severity": "high", "for_s": 60, "hysteresis": 1, "agreed_by": "Dr B", "agreed_at": "2026-11-23T09:30:00Z",
        "reason": "r", "until": "2027-01-01T00:00:00Z", "revoke": false});
    assert_eq!(
        keys(&schema["properties"]),
        keys(&full),
        "schema properties vs members"
    );
    validate(&schema, &full, "baseline").unwrap();
    let b = parse_baseline(full.to_string().as_bytes()).unwrap();
    assert_eq!(b.threshold(), (88.0, true));
    assert_eq!(b.severity, Some(Severity::High));
    for member in [
        "baseline_id",
        "patient",
        "code",
        "agreed_by",
        "agreed_at",
        "reason",
    ] {
        let mut without = full.clone();
        without.as_object_mut().unwrap().remove(member);
        let e = parse_baseline(without.to_string().as_bytes()).unwrap_err();
        assert_eq!(e.as_str(), "missing_field", "{member}");
        assert!(validate(&schema, &without, "baseline").is_err());
    }
    let mut both = full.clone();
    both["above"] = json!(99);
    assert_eq!(
        parse_baseline(both.to_string().as_bytes())
            .unwrap_err()
            .as_str(),
        "bad_field"
    );
    let mut neither = full.clone();
    neither["below"] = Value::Null;
    assert_eq!(
        parse_baseline(neither.to_string().as_bytes())
            .unwrap_err()
            .as_str(),
        "missing_field"
    );
    let mut no_severity = full.clone();
    no_severity["severity"] = Value::Null;
    assert_eq!(
        parse_baseline(no_severity.to_string().as_bytes())
            .unwrap_err()
            .as_str(),
        "missing_field"
    );
    no_severity["revoke"] = json!(true);
    assert!(
        parse_baseline(no_severity.to_string().as_bytes())
            .unwrap()
            .revoke,
        "a withdrawal needs no severity"
    );
    let mut blank = full.clone();
    blank["agreed_by"] = json!("  ");
    assert_eq!(
        parse_baseline(blank.to_string().as_bytes())
            .unwrap_err()
            .as_str(),
        "bad_field"
    );
}
