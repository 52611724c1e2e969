//! NEWS2 against the Royal College of Physicians' chart (2017, Chart 1 scoring, Chart 4 response), as written in
//! docs/clinical-rules.md — every band edge of every parameter from both sides, the response bands, incomplete and
//! stale scores, rounding — and `hearthd news2` run as the real binary.

use std::process::{Command, Output};

use hearth_protocol::json::Severity;
use hearthd::clock::Millis;
use hearthd::rules::news2::{
    Acvpu, AirOrOxygen, Band, Freshness, Inputs, Observed, Parameter, Scale, Score, score,
};
use serde_json::{Value as Json, json};

/// 2027-01-15T08:00:00Z.
const NOW: Millis = 1_800_000_000_000;
const MINUTE: Millis = 60_000;
const HOUR: Millis = 60 * MINUTE;

/// Sets one parameter of the inputs to a value (observed now), or to an observation time.
type SetValue = fn(&mut Inputs, f64);
type SetAt = fn(&mut Inputs, Millis);

fn fresh<T>(value: T) -> Option<Observed<T>> {
    Some(Observed::new(value, NOW))
}

/// A complete set with every parameter scoring 0, observed now.
fn normal() -> Inputs {
    Inputs {
        resp_rate: fresh(16.0),
        spo2: fresh(97.0),
        air_or_oxygen: fresh(AirOrOxygen::Air),
        bp_sys: fresh(125.0),
        pulse: fresh(72.0),
        consciousness: fresh(Acvpu::Alert),
        temp: fresh(36.8),
    }
}

fn news2(inputs: &Inputs, scale: Scale) -> Score {
    score(inputs, scale, NOW, &Freshness::default())
}

fn subscore(s: &Score, p: Parameter) -> u8 {
    s.subscore(p)
        .unwrap_or_else(|| panic!("{p} was not scored: {s:?}"))
        .score
}

/// Checks one chart row: each (value, expected score), with everything else normal.
fn row(p: Parameter, scale: Scale, set: SetValue, table: &[(f64, u8)]) {
    for &(value, want) in table {
        let mut inputs = normal();
        set(&mut inputs, value);
        let s = news2(&inputs, scale);
        assert_eq!(
            subscore(&s, p),
            want,
            "{p} {value} on scale {}",
            scale.number()
        );
        assert!(s.complete);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Chart 1, row by row. Each pair of adjacent entries straddles one edge of the chart.

#[test]
fn respiration_rate_edges() {
    #[rustfmt::skip]
    let table = [
        (2.0, 3), (8.0, 3),   // ≤ 8 → 3
        (9.0, 1), (11.0, 1),  // 9–11 → 1
        (12.0, 0), (20.0, 0), // 12–20 → 0
        (21.0, 2), (24.0, 2), // 21–24 → 2
        (25.0, 3), (60.0, 3), // ≥ 25 → 3
    ];
    row(
        Parameter::RespRate,
        Scale::One,
        |i, v| i.resp_rate = fresh(v),
        &table,
    );
}

#[test]
fn spo2_scale_1_edges() {
    #[rustfmt::skip]
    let table = [
        (50.0, 3), (91.0, 3), // ≤ 91 → 3
        (92.0, 2), (93.0, 2), // 92–93 → 2
        (94.0, 1), (95.0, 1), // 94–95 → 1
        (96.0, 0), (100.0, 0), // ≥ 96 → 0
    ];
    row(
        Parameter::Spo2,
        Scale::One,
        |i, v| i.spo2 = fresh(v),
        &table,
    );
}

#[test]
fn spo2_scale_1_does_not_depend_on_oxygen() {
    #[rustfmt::skip]
    let table = [(91.0, 3), (92.0, 2), (93.0, 2), (94.0, 1), (95.0, 1), (96.0, 0), (100.0, 0)];
    row(
        Parameter::Spo2,
        Scale::One,
        |i, v| {
            i.spo2 = fresh(v);
            i.air_or_oxygen = fresh(AirOrOxygen::Oxygen);
        },
        &table,
    );
}

#[test]
fn spo2_scale_2_on_air_edges() {
    #[rustfmt::skip]
    let table = [
        (50.0, 3), (83.0, 3), // ≤ 83 → 3
        (84.0, 2), (85.0, 2), // 84–85 → 2
        (86.0, 1), (87.0, 1), // 86–87 → 1
        (88.0, 0), (92.0, 0), // 88–92 → 0
        (93.0, 0), (94.0, 0), (95.0, 0), (96.0, 0), (97.0, 0), (100.0, 0), // ≥ 93 on air → 0
    ];
    row(
        Parameter::Spo2,
        Scale::Two,
        |i, v| {
            i.spo2 = fresh(v);
            i.air_or_oxygen = fresh(AirOrOxygen::Air);
        },
        &table,
    );
}

#[test]
fn spo2_scale_2_on_oxygen_edges() {
    #[rustfmt::skip]
    let table = [
        (50.0, 3), (83.0, 3), // ≤ 83 → 3
        (84.0, 2), (85.0, 2), // 84–85 → 2
        (86.0, 1), (87.0, 1), // 86–87 → 1
        (88.0, 0), (92.0, 0), // 88–92 → 0 either way
        (93.0, 1), (94.0, 1), // 93–94 on oxygen → 1
        (95.0, 2), (96.0, 2), // 95–96 on oxygen → 2
        (97.0, 3), (100.0, 3), // ≥ 97 on oxygen → 3
    ];
    row(
        Parameter::Spo2,
        Scale::Two,
        |i, v| {
            i.spo2 = fresh(v);
            i.air_or_oxygen = fresh(AirOrOxygen::Oxygen);
        },
        &table,
    );
}

#[test]
fn air_scores_0_and_oxygen_scores_2_on_both_scales() {
    for scale in [Scale::One, Scale::Two] {
        for (o, want) in [(AirOrOxygen::Air, 0), (AirOrOxygen::Oxygen, 2)] {
            let mut inputs = normal();
            inputs.spo2 = fresh(90.0); // 0 on scale 2 either way; 3 on scale 1 either way
            inputs.air_or_oxygen = fresh(o);
            let s = news2(&inputs, scale);
            assert_eq!(subscore(&s, Parameter::AirOrOxygen), want, "{o:?}");
            let spo2 = if scale == Scale::One { 3 } else { 0 };
            assert_eq!(s.total, spo2 + want);
        }
    }
}

#[test]
fn systolic_bp_edges() {
    #[rustfmt::skip]
    let table = [
        (40.0, 3), (90.0, 3),   // ≤ 90 → 3
        (91.0, 2), (100.0, 2),  // 91–100 → 2
        (101.0, 1), (110.0, 1), // 101–110 → 1
        (111.0, 0), (219.0, 0), // 111–219 → 0
        (220.0, 3), (300.0, 3), // ≥ 220 → 3
    ];
    row(
        Parameter::BpSys,
        Scale::One,
        |i, v| i.bp_sys = fresh(v),
        &table,
    );
}

#[test]
fn pulse_edges() {
    #[rustfmt::skip]
    let table = [
        (20.0, 3), (40.0, 3),   // ≤ 40 → 3
        (41.0, 1), (50.0, 1),   // 41–50 → 1
        (51.0, 0), (90.0, 0),   // 51–90 → 0
        (91.0, 1), (110.0, 1),  // 91–110 → 1
        (111.0, 2), (130.0, 2), // 111–130 → 2
        (131.0, 3), (250.0, 3), // ≥ 131 → 3
    ];
    row(
        Parameter::Pulse,
        Scale::One,
        |i, v| i.pulse = fresh(v),
        &table,
    );
}

#[test]
fn temperature_edges() {
    #[rustfmt::skip]
    let table = [
        (25.0, 3), (35.0, 3), // ≤ 35.0 → 3
        (35.1, 1), (36.0, 1), // 35.1–36.0 → 1
        (36.1, 0), (38.0, 0), // 36.1–38.0 → 0
        (38.1, 1), (39.0, 1), // 38.1–39.0 → 1
        (39.1, 2), (45.0, 2), // ≥ 39.1 → 2
    ];
    row(
        Parameter::Temp,
        Scale::One,
        |i, v| i.temp = fresh(v),
        &table,
    );
}

#[test]
fn alert_scores_0_and_new_confusion_voice_pain_unresponsive_score_3() {
    for (c, want) in [
        (Acvpu::Alert, 0),
        (Acvpu::Confusion, 3),
        (Acvpu::Voice, 3),
        (Acvpu::Pain, 3),
        (Acvpu::Unresponsive, 3),
    ] {
        let mut inputs = normal();
        inputs.consciousness = fresh(c);
        let s = news2(&inputs, Scale::One);
        assert_eq!(subscore(&s, Parameter::Consciousness), want, "{c:?}");
        assert_eq!(s.total, want);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Aggregate and Chart 4 bands.

/// (description, inputs changed from normal, scale, total, band, alert severity).
type BandCase = (
    &'static str,
    fn(&mut Inputs),
    Scale,
    u8,
    Band,
    Option<Severity>,
);

#[test]
fn aggregate_totals_and_every_band() {
    let cases: [BandCase; 10] = [
        ("all normal", |_| {}, Scale::One, 0, Band::Low, None),
        (
            "1 is low",
            |i| i.pulse = fresh(95.0),
            Scale::One,
            1,
            Band::Low,
            None,
        ),
        (
            "4 without a 3 is low: RR 21 (2) + pulse 91 (1) + temp 38.1 (1)",
            |i| {
                i.resp_rate = fresh(21.0);
                i.pulse = fresh(91.0);
                i.temp = fresh(38.1);
            },
            Scale::One,
            4,
            Band::Low,
            None,
        ),
        (
            "a single 3 alone is low-medium: new confusion",
            |i| i.consciousness = fresh(Acvpu::Confusion),
            Scale::One,
            3,
            Band::LowMedium,
            Some(Severity::Medium),
        ),
        (
            "a single 3 with total 4 is low-medium: SBP 90 (3) + pulse 91 (1)",
            |i| {
                i.bp_sys = fresh(90.0);
                i.pulse = fresh(91.0);
            },
            Scale::One,
            4,
            Band::LowMedium,
            Some(Severity::Medium),
        ),
        (
            "total 5 with a single 3 is medium: RR 25 (3) + SpO2 93 (2)",
            |i| {
                i.resp_rate = fresh(25.0);
                i.spo2 = fresh(93.0);
            },
            Scale::One,
            5,
            Band::Medium,
            Some(Severity::Medium),
        ),
        (
            "total 5 without a 3 is medium: RR 22 (2) + SpO2 92 (2) + pulse 91 (1)",
            |i| {
                i.resp_rate = fresh(22.0);
                i.spo2 = fresh(92.0);
                i.pulse = fresh(91.0);
            },
            Scale::One,
            5,
            Band::Medium,
            Some(Severity::Medium),
        ),
        (
            "6 is medium: oxygen (2) + SpO2 93 (2) + pulse 111 (2)",
            |i| {
                i.air_or_oxygen = fresh(AirOrOxygen::Oxygen);
                i.spo2 = fresh(93.0);
                i.pulse = fresh(111.0);
            },
            Scale::One,
            6,
            Band::Medium,
            Some(Severity::Medium),
        ),
        (
            "7 is high: oxygen (2) + SpO2 92 (2) + RR 21 (2) + temp 38.1 (1)",
            |i| {
                i.air_or_oxygen = fresh(AirOrOxygen::Oxygen);
                i.spo2 = fresh(92.0);
                i.resp_rate = fresh(21.0);
                i.temp = fresh(38.1);
            },
            Scale::One,
            7,
            Band::High,
            Some(Severity::High),
        ),
        (
            "the maximum is 20: every parameter at its worst, scale 2 on oxygen",
            |i| {
                i.resp_rate = fresh(30.0);
                i.spo2 = fresh(98.0);
                i.air_or_oxygen = fresh(AirOrOxygen::Oxygen);
                i.bp_sys = fresh(85.0);
                i.pulse = fresh(140.0);
                i.consciousness = fresh(Acvpu::Unresponsive);
                i.temp = fresh(34.0);
            },
            Scale::Two,
            20,
            Band::High,
            Some(Severity::High),
        ),
    ];
    for (what, change, scale, total, band, severity) in cases {
        let mut inputs = normal();
        change(&mut inputs);
        let s = news2(&inputs, scale);
        assert_eq!((s.total, s.band), (total, band), "{what}");
        assert_eq!(s.severity(), severity, "{what}");
        assert!(s.complete, "{what}");
        assert_eq!(s.subscores.len(), 7, "{what}");
        assert_eq!(
            s.total,
            s.subscores.iter().map(|x| x.score).sum::<u8>(),
            "{what}"
        );
    }
}

#[test]
fn bands_are_ordered_by_urgency() {
    assert!(Band::Low < Band::LowMedium);
    assert!(Band::LowMedium < Band::Medium);
    assert!(Band::Medium < Band::High);
}

// ---------------------------------------------------------------------------------------------------------------
// Missing and stale parameters.

#[test]
fn missing_parameters_make_an_incomplete_score_that_names_them() {
    let inputs = Inputs {
        resp_rate: fresh(25.0),
        pulse: fresh(95.0),
        ..Inputs::default()
    };
    let s = news2(&inputs, Scale::One);
    assert!(!s.complete);
    assert_eq!(
        s.missing,
        [
            Parameter::Spo2,
            Parameter::AirOrOxygen,
            Parameter::BpSys,
            Parameter::Consciousness,
            Parameter::Temp
        ]
    );
    assert!(s.stale.is_empty());
    assert_eq!(s.total, 4, "a lower bound: what was scored");
    assert_eq!(s.band, Band::LowMedium);
    let scored: Vec<Parameter> = s.subscores.iter().map(|x| x.parameter).collect();
    assert_eq!(scored, [Parameter::RespRate, Parameter::Pulse]);
}

#[test]
fn nothing_observed_is_zero_and_incomplete_never_a_reassuring_complete_zero() {
    let s = news2(&Inputs::default(), Scale::One);
    assert_eq!((s.total, s.band, s.complete), (0, Band::Low, false));
    assert_eq!(s.missing, Parameter::ALL);
    assert!(s.subscores.is_empty());
}

#[test]
fn a_number_that_is_not_finite_is_missing_not_scored() {
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut inputs = normal();
        inputs.bp_sys = fresh(bad);
        let s = news2(&inputs, Scale::One);
        assert_eq!(s.missing, [Parameter::BpSys], "{bad}");
        assert!(!s.complete);
        assert_eq!(s.total, 0);
    }
}

#[test]
fn a_parameter_older_than_its_window_is_stale_and_not_scored() {
    // Defaults: 1 h for the vital signs and consciousness, 12 h for air or oxygen. Exactly the window is fresh.
    let cases: [(Parameter, SetAt, Millis); 7] = [
        (
            Parameter::RespRate,
            |i, at| i.resp_rate = Some(Observed::new(30.0, at)),
            HOUR,
        ),
        (
            Parameter::Spo2,
            |i, at| i.spo2 = Some(Observed::new(85.0, at)),
            HOUR,
        ),
        (
            Parameter::AirOrOxygen,
            |i, at| i.air_or_oxygen = Some(Observed::new(AirOrOxygen::Oxygen, at)),
            12 * HOUR,
        ),
        (
            Parameter::BpSys,
            |i, at| i.bp_sys = Some(Observed::new(85.0, at)),
            HOUR,
        ),
        (
            Parameter::Pulse,
            |i, at| i.pulse = Some(Observed::new(140.0, at)),
            HOUR,
        ),
        (
            Parameter::Consciousness,
            |i, at| i.consciousness = Some(Observed::new(Acvpu::Voice, at)),
            HOUR,
        ),
        (
            Parameter::Temp,
            |i, at| i.temp = Some(Observed::new(34.0, at)),
            HOUR,
        ),
    ];
    for (p, set, window) in cases {
        assert_eq!(Freshness::default().window_ms(p), window, "{p}");
        // Each value above scores 2 (oxygen) or 3 when it is current.
        let mut inputs = normal();
        set(&mut inputs, NOW - window);
        let s = news2(&inputs, Scale::One);
        assert!(s.complete, "{p} exactly at its window is still current");
        assert!(s.total >= 2, "{p}: {s:?}");

        let mut inputs = normal();
        set(&mut inputs, NOW - window - 1);
        let s = news2(&inputs, Scale::One);
        assert!(!s.complete, "{p} one ms past its window");
        assert_eq!(s.stale, [p]);
        assert!(s.missing.is_empty());
        assert!(s.subscore(p).is_none(), "{p} stale but scored");
        assert_eq!(s.total, 0, "{p}: a stale value never counts as current");
    }
}

#[test]
fn freshness_windows_are_configurable_per_parameter() {
    let tight = Freshness {
        temp_ms: 10 * MINUTE,
        ..Freshness::default()
    };
    let mut inputs = normal();
    inputs.temp = Some(Observed::new(39.5, NOW - 15 * MINUTE));
    assert_eq!(
        score(&inputs, Scale::One, NOW, &Freshness::default()).total,
        2
    );
    let s = score(&inputs, Scale::One, NOW, &tight);
    assert_eq!((s.total, s.complete), (0, false));
    assert_eq!(s.stale, [Parameter::Temp]);
}

#[test]
fn a_reading_slightly_in_the_future_counts_as_current() {
    let mut inputs = normal();
    inputs.pulse = Some(Observed::new(135.0, NOW + 5_000));
    let s = news2(&inputs, Scale::One);
    assert!(s.complete);
    assert_eq!(subscore(&s, Parameter::Pulse), 3);
}

#[test]
fn missing_and_stale_are_listed_separately() {
    let mut inputs = normal();
    inputs.temp = None;
    inputs.resp_rate = Some(Observed::new(16.0, NOW - 2 * HOUR));
    inputs.consciousness = Some(Observed::new(Acvpu::Alert, NOW - 2 * HOUR));
    let s = news2(&inputs, Scale::One);
    assert_eq!(s.missing, [Parameter::Temp]);
    assert_eq!(s.stale, [Parameter::RespRate, Parameter::Consciousness]);
    assert!(!s.complete);
}

#[test]
fn scale_2_without_current_air_or_oxygen_scores_spo2_as_on_air_and_is_incomplete() {
    // SpO2 97 on scale 2 is 0 on air but 3 on oxygen: unknown → the lower bound (air), flagged incomplete.
    let mut inputs = normal();
    inputs.spo2 = fresh(97.0);
    inputs.air_or_oxygen = None;
    let s = news2(&inputs, Scale::Two);
    assert_eq!(subscore(&s, Parameter::Spo2), 0);
    assert_eq!(s.missing, [Parameter::AirOrOxygen]);
    assert!(!s.complete);

    inputs.air_or_oxygen = Some(Observed::new(AirOrOxygen::Oxygen, NOW - 13 * HOUR));
    let s = news2(&inputs, Scale::Two);
    assert_eq!(subscore(&s, Parameter::Spo2), 0);
    assert_eq!(s.stale, [Parameter::AirOrOxygen]);

    inputs.air_or_oxygen = fresh(AirOrOxygen::Oxygen);
    let s = news2(&inputs, Scale::Two);
    assert_eq!(subscore(&s, Parameter::Spo2), 3);
    assert_eq!(s.total, 5);
    assert!(s.complete);
}

// ---------------------------------------------------------------------------------------------------------------
// Rounding: half up to the chart's precision (integers; temperature 0.1 °C) before the chart is looked up.

#[test]
fn non_integer_values_are_rounded_half_up_to_the_chart_precision() {
    #[rustfmt::skip]
    let cases: [(Parameter, SetValue, f64, f64, u8); 16] = [
        (Parameter::RespRate, |i, v| i.resp_rate = fresh(v), 8.49, 8.0, 3),
        (Parameter::RespRate, |i, v| i.resp_rate = fresh(v), 8.5, 9.0, 1),
        (Parameter::RespRate, |i, v| i.resp_rate = fresh(v), 20.49, 20.0, 0),
        (Parameter::RespRate, |i, v| i.resp_rate = fresh(v), 20.5, 21.0, 2),
        (Parameter::Spo2, |i, v| i.spo2 = fresh(v), 91.4, 91.0, 3),
        (Parameter::Spo2, |i, v| i.spo2 = fresh(v), 91.5, 92.0, 2),
        (Parameter::Spo2, |i, v| i.spo2 = fresh(v), 95.5, 96.0, 0),
        (Parameter::BpSys, |i, v| i.bp_sys = fresh(v), 90.5, 91.0, 2),
        (Parameter::BpSys, |i, v| i.bp_sys = fresh(v), 219.5, 220.0, 3),
        (Parameter::Pulse, |i, v| i.pulse = fresh(v), 130.4, 130.0, 2),
        (Parameter::Pulse, |i, v| i.pulse = fresh(v), 130.5, 131.0, 3),
        (Parameter::Temp, |i, v| i.temp = fresh(v), 35.04, 35.0, 3),
        // 35.05 is stored as 35.0499999…; it still rounds up, as written.
        (Parameter::Temp, |i, v| i.temp = fresh(v), 35.05, 35.1, 1),
        (Parameter::Temp, |i, v| i.temp = fresh(v), 38.04, 38.0, 0),
        (Parameter::Temp, |i, v| i.temp = fresh(v), 38.05, 38.1, 1),
        (Parameter::Temp, |i, v| i.temp = fresh(v), 39.05, 39.1, 2),
    ];
    for (p, set, value, rounded, want) in cases {
        let mut inputs = normal();
        set(&mut inputs, value);
        let s = news2(&inputs, Scale::One);
        let sub = s.subscore(p).unwrap();
        assert_eq!(sub.rounded, Some(rounded), "{p} {value}");
        assert_eq!(sub.score, want, "{p} {value} → {rounded}");
        assert_eq!(
            sub.value,
            hearthd::rules::news2::SubscoreValue::Number(value),
            "the value as observed is kept"
        );
    }
}

#[test]
fn spo2_scale_2_rounds_before_the_air_oxygen_split() {
    let mut inputs = normal();
    inputs.air_or_oxygen = fresh(AirOrOxygen::Oxygen);
    for (v, want) in [(92.49, 0), (92.5, 1), (94.5, 2), (96.5, 3)] {
        inputs.spo2 = fresh(v);
        assert_eq!(
            subscore(&news2(&inputs, Scale::Two), Parameter::Spo2),
            want,
            "{v}"
        );
    }
}

// ---------------------------------------------------------------------------------------------------------------
// JSON shape.

#[test]
fn score_serializes_with_snake_case_names_and_kebab_case_bands() {
    let inputs = Inputs {
        resp_rate: fresh(20.5),
        air_or_oxygen: fresh(AirOrOxygen::Oxygen),
        consciousness: Some(Observed::new(Acvpu::Confusion, NOW - 30 * MINUTE)),
        temp: Some(Observed::new(37.0, NOW - 2 * HOUR)),
        ..Inputs::default()
    };
    let s = news2(&inputs, Scale::Two);
    assert_eq!(
        serde_json::to_value(&s).unwrap(),
        json!({
            "total": 7,
            "band": "high",
            "scale": 2,
            "complete": false,
            "subscores": [
                {"parameter": "resp_rate", "value": 20.5, "rounded": 21.0,
                 "observed_at": "2027-01-15T08:00:00.000Z", "score": 2},
                {"parameter": "air_or_oxygen", "value": "oxygen",
                 "observed_at": "2027-01-15T08:00:00.000Z", "score": 2},
                {"parameter": "consciousness", "value": "confusion",
                 "observed_at": "2027-01-15T07:30:00.000Z", "score": 3},
            ],
            "missing": ["spo2", "bp_sys", "pulse"],
            "stale": ["temp"],
        })
    );
    let mut c = normal();
    c.consciousness = fresh(Acvpu::Pain);
    assert_eq!(
        serde_json::to_value(news2(&c, Scale::One)).unwrap()["band"],
        "low-medium"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// `hearthd news2`, the real binary.

fn hearthd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearthd"))
        .arg("news2")
        .args(args)
        .output()
        .expect("run hearthd")
}

fn scores(args: &[&str]) -> Json {
    let out = hearthd(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    assert!(stderr.is_empty(), "unexpected stderr: {stderr}");
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// (parameter, value as given, score) of each subscore.
fn breakdown(j: &Json) -> Vec<(String, Json, u64)> {
    j["subscores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["parameter"].as_str().unwrap().to_owned(),
                s["value"].clone(),
                s["score"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn cli_scores_the_issue_example_by_the_chart() {
    // By hand from Chart 1 (scale 1, on air):
    //   RR 22 → 21–24 → 2;  SpO2 93 → 92–93 → 2;  air → 0;  SBP 105 → 101–110 → 1;
    //   pulse 112 → 111–130 → 2;  A → 0;  temp 38.4 → 38.1–39.0 → 1.   Total 8 → ≥ 7 → high.
    let j = scores(&[
        "--resp-rate",
        "22",
        "--spo2",
        "93",
        "--scale",
        "1",
        "--bp-sys",
        "105",
        "--pulse",
        "112",
        "--consciousness",
        "A",
        "--temp",
        "38.4",
    ]);
    assert_eq!(j["total"], 8);
    assert_eq!(j["band"], "high");
    assert_eq!(j["severity"], "high");
    assert_eq!(j["scale"], 1);
    assert_eq!(j["complete"], true);
    assert_eq!(j["missing"], json!([]));
    assert_eq!(j["stale"], json!([]));
    assert_eq!(
        breakdown(&j),
        [
            ("resp_rate".into(), json!(22.0), 2),
            ("spo2".into(), json!(93.0), 2),
            ("air_or_oxygen".into(), json!("air"), 0),
            ("bp_sys".into(), json!(105.0), 1),
            ("pulse".into(), json!(112.0), 2),
            ("consciousness".into(), json!("alert"), 0),
            ("temp".into(), json!(38.4), 1),
        ]
    );
}

#[test]
fn cli_scale_2_on_oxygen_and_missing_parameters_are_listed() {
    // SpO2 95 on oxygen, scale 2 → 2; oxygen → 2; new confusion → 3. Total 7 (a lower bound) → high, incomplete.
    let j = scores(&[
        "--spo2",
        "95",
        "--scale",
        "2",
        "--oxygen",
        "--consciousness",
        "c",
    ]);
    assert_eq!(j["total"], 7);
    assert_eq!(j["band"], "high");
    assert_eq!(j["scale"], 2);
    assert_eq!(j["complete"], false);
    assert_eq!(
        j["missing"],
        json!(["resp_rate", "bp_sys", "pulse", "temp"])
    );
}

#[test]
fn cli_single_3_is_low_medium_with_medium_severity() {
    let j = scores(&["--bp-sys", "88"]);
    assert_eq!(j["total"], 3);
    assert_eq!(j["band"], "low-medium");
    assert_eq!(j["severity"], "medium");
    assert_eq!(j["complete"], false);
}

#[test]
fn cli_bad_input_exits_2_with_one_line() {
    for args in [
        &["--spo2", "abc"][..],
        &["--spo2", "127"],
        &["--temp", "-3"],
        &["--pulse", "NaN"],
        &["--consciousness", "X"],
        &["--scale", "3"],
    ] {
        let out = hearthd(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr:?}");
        assert!(stderr.starts_with("error: --"), "{args:?}: {stderr:?}");
    }
}
