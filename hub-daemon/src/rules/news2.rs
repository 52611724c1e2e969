//! NEWS2, the National Early Warning Score 2 (Royal College of Physicians, 2017): Chart 1 scoring, Chart 4 response.
//!
//! [`score`] is a pure function of (observations with their times, scale, `now`, freshness windows): no clock, no
//! I/O. The core loop and `hearthd news2` call the same function.
//!
//! - Numbers are rounded half up to the chart's precision before scoring (integers; temperature 0.1 °C): the chart's
//!   ranges are written at that precision and leave gaps otherwise (SpO2 91.5 is neither "≤ 91" nor "92–93").
//! - A parameter older than its [`Freshness`] window is *stale* and is not scored; one never observed is *missing*.
//!   Either makes the score incomplete (`complete == false`), and its `total` is then a lower bound: every parameter
//!   not scored contributed 0 and could have contributed up to 3.
//! - The response band follows Chart 4 (see [`Band`]); [`Band::severity`] maps it to an alert priority.
//!
//! See `docs/clinical-rules.md` for the chart, the reasoning behind the windows and the severity mapping.

use std::fmt;
use std::str::FromStr;

use hearth_protocol::Code;
use hearth_protocol::json::{Severity, format_rfc3339_millis};
use serde::{Serialize, Serializer};

use crate::clock::Millis;

const MINUTE_MS: Millis = 60_000;
const HOUR_MS: Millis = 60 * MINUTE_MS;

/// One row of NEWS2 Chart 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Parameter {
    RespRate,
    Spo2,
    AirOrOxygen,
    BpSys,
    Pulse,
    Consciousness,
    Temp,
}

impl Parameter {
    /// Every parameter, in chart order (the order of [`Score::subscores`], `missing` and `stale`).
    pub const ALL: [Parameter; 7] = [
        Parameter::RespRate,
        Parameter::Spo2,
        Parameter::AirOrOxygen,
        Parameter::BpSys,
        Parameter::Pulse,
        Parameter::Consciousness,
        Parameter::Temp,
    ];

    /// The name in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Parameter::RespRate => "resp_rate",
            Parameter::Spo2 => "spo2",
            Parameter::AirOrOxygen => "air_or_oxygen",
            Parameter::BpSys => "bp_sys",
            Parameter::Pulse => "pulse",
            Parameter::Consciousness => "consciousness",
            Parameter::Temp => "temp",
        }
    }

    /// The observation code a measured parameter comes from; `None` for the two a carer records (air or oxygen,
    /// consciousness). Pulse is scored from [`Code::HeartRate`] (cuff, oximeter or ECG).
    pub const fn code(self) -> Option<Code> {
        match self {
            Parameter::RespRate => Some(Code::RespRate),
            Parameter::Spo2 => Some(Code::Spo2),
            Parameter::BpSys => Some(Code::BpSys),
            Parameter::Pulse => Some(Code::HeartRate),
            Parameter::Temp => Some(Code::Temp),
            Parameter::AirOrOxygen | Parameter::Consciousness => None,
        }
    }

    /// The parameter scored from observation `code`, if any.
    pub fn from_code(code: Code) -> Option<Parameter> {
        Parameter::ALL.into_iter().find(|p| p.code() == Some(code))
    }
}

impl fmt::Display for Parameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The SpO2 scale. Scale 2 is only for patients a clinician has put on it (hypercapnic respiratory failure, target
/// 88–92 %); it is configuration, never inferred from readings. Serialized as the number `1` or `2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scale {
    #[default]
    One,
    Two,
}

impl Scale {
    pub const fn number(self) -> u8 {
        match self {
            Scale::One => 1,
            Scale::Two => 2,
        }
    }
}

impl Serialize for Scale {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.number())
    }
}

/// The "air or oxygen" row: is the patient breathing supplemental oxygen?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AirOrOxygen {
    Air,
    Oxygen,
}

/// ACVPU. `Confusion` means *new* confusion (new-onset confusion, disorientation or agitation): a patient's known,
/// long-standing confusion is recorded as their baseline, not as C.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Acvpu {
    Alert,
    Confusion,
    Voice,
    Pain,
    Unresponsive,
}

impl Acvpu {
    /// The chart letter.
    pub const fn letter(self) -> char {
        match self {
            Acvpu::Alert => 'A',
            Acvpu::Confusion => 'C',
            Acvpu::Voice => 'V',
            Acvpu::Pain => 'P',
            Acvpu::Unresponsive => 'U',
        }
    }
}

/// Not one of A, C, V, P, U.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected one of A, C, V, P, U, got {0:?}")]
pub struct ParseAcvpuError(pub String);

impl FromStr for Acvpu {
    type Err = ParseAcvpuError;

    /// The chart letter or the word, any case: `A`, `c`, `voice`.
    fn from_str(s: &str) -> Result<Acvpu, ParseAcvpuError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "a" | "alert" => Ok(Acvpu::Alert),
            "c" | "confusion" => Ok(Acvpu::Confusion),
            "v" | "voice" => Ok(Acvpu::Voice),
            "p" | "pain" => Ok(Acvpu::Pain),
            "u" | "unresponsive" => Ok(Acvpu::Unresponsive),
            _ => Err(ParseAcvpuError(s.to_owned())),
        }
    }
}

/// A value and the time it was observed (UTC unix ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observed<T> {
    pub value: T,
    pub at: Millis,
}

impl<T> Observed<T> {
    pub const fn new(value: T, at: Millis) -> Self {
        Observed { value, at }
    }
}

/// The latest observation of each parameter, each optional. Numbers are in the canonical units (/min, %, mmHg, °C).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Inputs {
    pub resp_rate: Option<Observed<f64>>,
    pub spo2: Option<Observed<f64>>,
    pub air_or_oxygen: Option<Observed<AirOrOxygen>>,
    pub bp_sys: Option<Observed<f64>>,
    pub pulse: Option<Observed<f64>>,
    pub consciousness: Option<Observed<Acvpu>>,
    pub temp: Option<Observed<f64>>,
}

/// How old each parameter may be and still count as current. An observation exactly this old is still fresh.
/// See `docs/clinical-rules.md` for why the defaults are what they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    pub resp_rate_ms: Millis,
    pub spo2_ms: Millis,
    pub air_or_oxygen_ms: Millis,
    pub bp_sys_ms: Millis,
    pub pulse_ms: Millis,
    pub consciousness_ms: Millis,
    pub temp_ms: Millis,
}

impl Default for Freshness {
    /// 1 h for the measured vital signs and for consciousness (they belong to one set of observations, and a
    /// patient who was alert this morning may be newly confused now); 12 h for air or oxygen, which changes rarely.
    fn default() -> Self {
        Freshness {
            resp_rate_ms: HOUR_MS,
            spo2_ms: HOUR_MS,
            air_or_oxygen_ms: 12 * HOUR_MS,
            bp_sys_ms: HOUR_MS,
            pulse_ms: HOUR_MS,
            consciousness_ms: HOUR_MS,
            temp_ms: HOUR_MS,
        }
    }
}

impl Freshness {
    /// The window of parameter `p`.
    pub const fn window_ms(&self, p: Parameter) -> Millis {
        match p {
            Parameter::RespRate => self.resp_rate_ms,
            Parameter::Spo2 => self.spo2_ms,
            Parameter::AirOrOxygen => self.air_or_oxygen_ms,
            Parameter::BpSys => self.bp_sys_ms,
            Parameter::Pulse => self.pulse_ms,
            Parameter::Consciousness => self.consciousness_ms,
            Parameter::Temp => self.temp_ms,
        }
    }
}

/// A scored value as it was observed: a number, or the category. Serialized untagged (`22.5`, `"oxygen"`,
/// `"confusion"`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SubscoreValue {
    Number(f64),
    AirOrOxygen(AirOrOxygen),
    Consciousness(Acvpu),
}

/// One parameter's contribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Subscore {
    pub parameter: Parameter,
    /// As observed (not rounded).
    pub value: SubscoreValue,
    /// For numbers, the value rounded to the chart's precision: the number actually looked up in the chart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rounded: Option<f64>,
    /// UTC unix ms; RFC 3339 in JSON.
    #[serde(serialize_with = "ser_time")]
    pub observed_at: Millis,
    /// 0–3 (air or oxygen: 0 or 2).
    pub score: u8,
}

/// Chart 4 clinical risk (Chart 3 thresholds and triggers). Ordered from least to most urgent.
/// Serialized as `low`, `low-medium`, `medium`, `high`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Band {
    /// Aggregate 0–4 with no single 3: ward-based response (registered-nurse assessment at 1–4).
    Low,
    /// A 3 in any single parameter, aggregate below 5: urgent ward-based response.
    LowMedium,
    /// Aggregate 5–6: key threshold for urgent response (review within 1 h).
    Medium,
    /// Aggregate 7 or more: urgent or emergency response (review within 30 min).
    High,
}

impl Band {
    pub const fn as_str(self) -> &'static str {
        match self {
            Band::Low => "low",
            Band::LowMedium => "low-medium",
            Band::Medium => "medium",
            Band::High => "high",
        }
    }

    /// The alert priority (IEC 60601-1-8 vocabulary) this band raises; `None` for `Low`, which is recorded but does
    /// not alert (chronically 1–4 is common in frail patients, and alerting on it is alarm fatigue). `LowMedium` is
    /// `Medium`: RCP calls for an *urgent* response to a single 3 (IEC "act promptly"), each parameter that scores 3
    /// is dangerous on its own, and at home there is no ward team at hand. The band itself (kept in the alert's
    /// details) still tells the two apart.
    pub const fn severity(self) -> Option<Severity> {
        match self {
            Band::Low => None,
            Band::LowMedium | Band::Medium => Some(Severity::Medium),
            Band::High => Some(Severity::High),
        }
    }
}

impl fmt::Display for Band {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A NEWS2 score. When `complete` is false, `total` and `band` are lower bounds: the parameters named in `missing`
/// and `stale` were not scored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    /// 0–20; sum of the subscores.
    pub total: u8,
    pub band: Band,
    pub scale: Scale,
    /// Every parameter present and fresh.
    pub complete: bool,
    /// The parameters scored, in chart order.
    pub subscores: Vec<Subscore>,
    /// Never observed (or not a finite number), in chart order.
    pub missing: Vec<Parameter>,
    /// Observed, but longer ago than the freshness window allows, in chart order. Not scored.
    pub stale: Vec<Parameter>,
}

impl Score {
    /// The alert priority of [`Score::band`].
    pub const fn severity(&self) -> Option<Severity> {
        self.band.severity()
    }

    /// The subscore of `p`, when it was scored.
    pub fn subscore(&self, p: Parameter) -> Option<&Subscore> {
        self.subscores.iter().find(|s| s.parameter == p)
    }
}

/// Scores `inputs` against NEWS2 Chart 1 on `scale` at time `now`.
///
/// On scale 2 a SpO2 of 93 % or more scores by air or oxygen; when air or oxygen is missing or stale it is scored as
/// on air (0, the lower bound) and the score is incomplete.
pub fn score(inputs: &Inputs, scale: Scale, now: Millis, freshness: &Freshness) -> Score {
    // Evaluated in chart order so that `missing` and `stale` come out in chart order.
    let mut sort = Sorter {
        now,
        freshness,
        missing: Vec::new(),
        stale: Vec::new(),
    };
    let resp_rate = sort.number(Parameter::RespRate, inputs.resp_rate);
    let spo2 = sort.number(Parameter::Spo2, inputs.spo2);
    let air_or_oxygen = sort.fresh(Parameter::AirOrOxygen, inputs.air_or_oxygen);
    let bp_sys = sort.number(Parameter::BpSys, inputs.bp_sys);
    let pulse = sort.number(Parameter::Pulse, inputs.pulse);
    let consciousness = sort.fresh(Parameter::Consciousness, inputs.consciousness);
    let temp = sort.number(Parameter::Temp, inputs.temp);
    let Sorter { missing, stale, .. } = sort;

    let on_oxygen = air_or_oxygen.is_some_and(|o| o.value == AirOrOxygen::Oxygen);
    let numeric = |parameter, o: Option<Observed<f64>>, per_unit: i64, f: &dyn Fn(i64) -> u8| {
        o.map(|o| {
            let r = round_half_up(o.value, per_unit);
            Subscore {
                parameter,
                value: SubscoreValue::Number(o.value),
                rounded: Some(r as f64 / per_unit as f64),
                observed_at: o.at,
                score: f(r),
            }
        })
    };
    let spo2_score = |s| match scale {
        Scale::One => spo2_scale1_score(s),
        Scale::Two => spo2_scale2_score(s, on_oxygen),
    };
    let subscores: Vec<Subscore> = [
        numeric(Parameter::RespRate, resp_rate, 1, &resp_rate_score),
        numeric(Parameter::Spo2, spo2, 1, &spo2_score),
        air_or_oxygen.map(|o| Subscore {
            parameter: Parameter::AirOrOxygen,
            value: SubscoreValue::AirOrOxygen(o.value),
            rounded: None,
            observed_at: o.at,
            score: air_or_oxygen_score(o.value),
        }),
        numeric(Parameter::BpSys, bp_sys, 1, &bp_sys_score),
        numeric(Parameter::Pulse, pulse, 1, &pulse_score),
        consciousness.map(|c| Subscore {
            parameter: Parameter::Consciousness,
            value: SubscoreValue::Consciousness(c.value),
            rounded: None,
            observed_at: c.at,
            score: consciousness_score(c.value),
        }),
        numeric(Parameter::Temp, temp, 10, &temp_tenths_score),
    ]
    .into_iter()
    .flatten()
    .collect();

    let total: u8 = subscores.iter().map(|s| s.score).sum();
    let any_three = subscores.iter().any(|s| s.score == 3);
    Score {
        total,
        band: band(total, any_three),
        scale,
        complete: missing.is_empty() && stale.is_empty(),
        subscores,
        missing,
        stale,
    }
}

/// Sorts each parameter into fresh (returned), stale or missing (recorded).
struct Sorter<'a> {
    now: Millis,
    freshness: &'a Freshness,
    missing: Vec<Parameter>,
    stale: Vec<Parameter>,
}

impl Sorter<'_> {
    fn fresh<T>(&mut self, p: Parameter, o: Option<Observed<T>>) -> Option<Observed<T>> {
        let Some(o) = o else {
            self.missing.push(p);
            return None;
        };
        // A reading from slightly in the future (device clock skew) counts as fresh; the gate bounds the skew.
        if self.now.saturating_sub(o.at) <= self.freshness.window_ms(p) {
            Some(o)
        } else {
            self.stale.push(p);
            None
        }
    }

    /// A number that is not finite was never really observed: it is missing, never scored.
    fn number(&mut self, p: Parameter, o: Option<Observed<f64>>) -> Option<Observed<f64>> {
        self.fresh(p, o.filter(|o| o.value.is_finite()))
    }
}

/// The subscore a measured parameter's value alone would get: what a new reading is compared with before it enters
/// the score (`rules::confirm`). `None` for the categorical parameters (from check-ins, never held).
pub fn parameter_score(p: Parameter, value: f64, scale: Scale, on_oxygen: bool) -> Option<u8> {
    let r = |per_unit| round_half_up(value, per_unit);
    Some(match p {
        Parameter::RespRate => resp_rate_score(r(1)),
        Parameter::Spo2 => match scale {
            Scale::One => spo2_scale1_score(r(1)),
            Scale::Two => spo2_scale2_score(r(1), on_oxygen),
        },
        Parameter::BpSys => bp_sys_score(r(1)),
        Parameter::Pulse => pulse_score(r(1)),
        Parameter::Temp => temp_tenths_score(r(10)),
        Parameter::AirOrOxygen | Parameter::Consciousness => return None,
    })
}

/// Chart 3/4: ≥ 7 high; 5–6 medium; otherwise a single 3 is low-medium; otherwise low.
fn band(total: u8, any_three: bool) -> Band {
    match total {
        7.. => Band::High,
        5..=6 => Band::Medium,
        _ if any_three => Band::LowMedium,
        _ => Band::Low,
    }
}

/// `v` rounded half up to `1 / per_unit`, as an integer count of those units (per_unit 1 → integers, 10 → tenths).
/// The 1e-6 slack makes a decimal such as 35.05, stored in binary as 35.04999…, round up as it is written. Values
/// beyond the i64 range saturate (`as` never panics); callers pass finite numbers only.
fn round_half_up(v: f64, per_unit: i64) -> i64 {
    (v * per_unit as f64 + 0.5 + 1e-6).floor() as i64
}

// Chart 1, row by row, on values already rounded to the chart's precision.

fn resp_rate_score(rr: i64) -> u8 {
    match rr {
        ..=8 => 3,
        9..=11 => 1,
        12..=20 => 0,
        21..=24 => 2,
        25.. => 3,
    }
}

fn spo2_scale1_score(s: i64) -> u8 {
    match s {
        ..=91 => 3,
        92..=93 => 2,
        94..=95 => 1,
        96.. => 0,
    }
}

fn spo2_scale2_score(s: i64, on_oxygen: bool) -> u8 {
    match (s, on_oxygen) {
        (..=83, _) => 3,
        (84..=85, _) => 2,
        (86..=87, _) => 1,
        (88..=92, _) => 0,
        (93.., false) => 0,
        (93..=94, true) => 1,
        (95..=96, true) => 2,
        (97.., true) => 3,
    }
}

fn air_or_oxygen_score(o: AirOrOxygen) -> u8 {
    match o {
        AirOrOxygen::Air => 0,
        AirOrOxygen::Oxygen => 2,
    }
}

fn bp_sys_score(bp: i64) -> u8 {
    match bp {
        ..=90 => 3,
        91..=100 => 2,
        101..=110 => 1,
        111..=219 => 0,
        220.. => 3,
    }
}

fn pulse_score(p: i64) -> u8 {
    match p {
        ..=40 => 3,
        41..=50 => 1,
        51..=90 => 0,
        91..=110 => 1,
        111..=130 => 2,
        131.. => 3,
    }
}

fn consciousness_score(c: Acvpu) -> u8 {
    match c {
        Acvpu::Alert => 0,
        Acvpu::Confusion | Acvpu::Voice | Acvpu::Pain | Acvpu::Unresponsive => 3,
    }
}

/// Temperature in tenths of a degree: ≤ 35.0 → 3; 35.1–36.0 → 1; 36.1–38.0 → 0; 38.1–39.0 → 1; ≥ 39.1 → 2.
fn temp_tenths_score(t: i64) -> u8 {
    match t {
        ..=350 => 3,
        351..=360 => 1,
        361..=380 => 0,
        381..=390 => 1,
        391.. => 2,
    }
}

fn ser_time<S: Serializer>(ms: &Millis, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_rfc3339_millis(*ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_half_up_at_the_chart_precision() {
        assert_eq!(round_half_up(91.5, 1), 92);
        assert_eq!(round_half_up(91.49, 1), 91);
        assert_eq!(round_half_up(20.5, 1), 21);
        assert_eq!(round_half_up(35.05, 10), 351, "35.05 is 35.0499… in binary");
        assert_eq!(round_half_up(35.04, 10), 350);
        assert_eq!(round_half_up(38.45, 10), 385);
        assert_eq!(round_half_up(f64::MAX, 1), i64::MAX, "saturates, no panic");
    }

    #[test]
    fn band_follows_chart_4() {
        assert_eq!(band(0, false), Band::Low);
        assert_eq!(band(4, false), Band::Low);
        assert_eq!(band(3, true), Band::LowMedium);
        assert_eq!(band(4, true), Band::LowMedium);
        assert_eq!(band(5, true), Band::Medium);
        assert_eq!(band(6, false), Band::Medium);
        assert_eq!(band(7, false), Band::High);
        assert_eq!(band(20, true), Band::High);
    }

    #[test]
    fn parameters_map_to_observation_codes_and_back() {
        assert_eq!(
            Parameter::from_code(Code::HeartRate),
            Some(Parameter::Pulse)
        );
        assert_eq!(Parameter::from_code(Code::BpDia), None);
        for p in Parameter::ALL {
            if let Some(c) = p.code() {
                assert_eq!(Parameter::from_code(c), Some(p));
            }
        }
    }

    #[test]
    fn acvpu_parses_letters_and_words() {
        assert_eq!("A".parse(), Ok(Acvpu::Alert));
        assert_eq!("c".parse(), Ok(Acvpu::Confusion));
        assert_eq!("Unresponsive".parse(), Ok(Acvpu::Unresponsive));
        assert!("X".parse::<Acvpu>().is_err());
        assert!("".parse::<Acvpu>().is_err());
    }
}
