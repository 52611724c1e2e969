//! `[clinical]`: the clinical engine beyond thresholds and NEWS2 — local time for schedules, RESTORE2 soft signs,
//! flap control and trends — and the per-patient parts (`[[patients.schedules]]`, agreed personal baselines).

use hearth_protocol::Code;
use serde::Deserialize;

use crate::clock::Millis;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Clinical {
    /// IANA time zone of the home: schedules ("weight by 10:00") and the SBARD text use local time.
    pub timezone: String,
    /// After a check-in with soft signs, the patient's monitoring level stays raised this long.
    pub soft_signs_raise_for_s: u64,
    /// An alert raised this many times within `flap_window_s` is flapping: it is held open instead of resolving.
    pub flap_count: u32,
    pub flap_window_s: u64,
    /// A flapping alert resolves once its value has stayed recovered this long.
    pub flap_quiet_s: u64,
    /// A continuous device (one reading at least every 30 min) with no `expected_every_s` is silent after this many
    /// of its learned intervals.
    pub learned_silence_intervals: u32,
    pub trends: Trends,
    /// How old each NEWS2 parameter may be and still be scored.
    pub news2_freshness: News2Freshness,
    /// A measured value that would change its NEWS2 subscore waits for a second reading (`rules::confirm`).
    pub news2_confirm: News2Confirm,
}

/// `[clinical.news2_confirm]` (see `docs/clinical-rules.md`, *Confirmation*).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct News2Confirm {
    /// The confirming reading comes at least this long after the held one, or the longest `for_s` of the patient's
    /// threshold rules on that code if longer; 0 scores every reading at once.
    pub after_s: u64,
    /// A held value older than this confirms nothing (twice-daily spot checks confirm with the next check).
    pub within_s: u64,
    /// Ask the home display for a repeat reading when a value is held (`{prefix}/reminders/{patient}`).
    pub ask_repeat: bool,
}

impl Default for News2Confirm {
    fn default() -> Self {
        News2Confirm {
            // The NHS advice for home oximetry: re-check an unexpected reading about 5 minutes later.
            after_s: 240,
            within_s: 36 * 3600,
            ask_repeat: true,
        }
    }
}

impl News2Confirm {
    pub fn rule(&self) -> crate::rules::confirm::Confirm {
        crate::rules::confirm::Confirm {
            after_ms: self.after_s as Millis * 1000,
            within_ms: self.within_s as Millis * 1000,
        }
    }

    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        if self.after_s > 24 * 3600 {
            return Err((
                "clinical.news2_confirm.after_s".into(),
                "expected at most 1 day (0 turns confirmation off)".into(),
            ));
        }
        // A confirming reading must fit between `after_s` and `within_s`: a window too narrow would let a held
        // change never be confirmed.
        if self.within_s < 2 * self.after_s || self.within_s > 7 * 24 * 3600 {
            return Err((
                "clinical.news2_confirm.within_s".into(),
                "expected at least twice after_s and at most 7 days".into(),
            ));
        }
        Ok(())
    }
}

/// `[clinical.news2_freshness]`: per-parameter windows, seconds (see `docs/clinical-rules.md`, *Freshness*).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct News2Freshness {
    pub resp_rate_s: u64,
    pub spo2_s: u64,
    pub air_or_oxygen_s: u64,
    pub bp_sys_s: u64,
    pub pulse_s: u64,
    pub consciousness_s: u64,
    pub temp_s: u64,
}

impl Default for News2Freshness {
    fn default() -> Self {
        let f = crate::rules::news2::Freshness::default();
        let s = |ms: Millis| (ms / 1000) as u64;
        News2Freshness {
            resp_rate_s: s(f.resp_rate_ms),
            spo2_s: s(f.spo2_ms),
            air_or_oxygen_s: s(f.air_or_oxygen_ms),
            bp_sys_s: s(f.bp_sys_ms),
            pulse_s: s(f.pulse_ms),
            consciousness_s: s(f.consciousness_ms),
            temp_s: s(f.temp_ms),
        }
    }
}

impl News2Freshness {
    /// The windows as the scoring function takes them.
    pub fn windows(&self) -> crate::rules::news2::Freshness {
        let ms = |s: u64| s as Millis * 1000;
        crate::rules::news2::Freshness {
            resp_rate_ms: ms(self.resp_rate_s),
            spo2_ms: ms(self.spo2_s),
            air_or_oxygen_ms: ms(self.air_or_oxygen_s),
            bp_sys_ms: ms(self.bp_sys_s),
            pulse_ms: ms(self.pulse_s),
            consciousness_ms: ms(self.consciousness_s),
            temp_ms: ms(self.temp_s),
        }
    }

    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        for (k, v) in [
            ("resp_rate_s", self.resp_rate_s),
            ("spo2_s", self.spo2_s),
            ("air_or_oxygen_s", self.air_or_oxygen_s),
            ("bp_sys_s", self.bp_sys_s),
            ("pulse_s", self.pulse_s),
            ("consciousness_s", self.consciousness_s),
            ("temp_s", self.temp_s),
        ] {
            if v == 0 || v > 7 * 24 * 3600 {
                return Err((
                    format!("clinical.news2_freshness.{k}"),
                    "expected 1 s to 7 days".to_string(),
                ));
            }
        }
        Ok(())
    }
}

impl Default for Clinical {
    fn default() -> Self {
        Clinical {
            timezone: "Europe/London".into(),
            soft_signs_raise_for_s: 24 * 3600,
            flap_count: 3,
            flap_window_s: 3600,
            flap_quiet_s: 1800,
            learned_silence_intervals: 5,
            trends: Trends::default(),
            news2_freshness: News2Freshness::default(),
            news2_confirm: News2Confirm::default(),
        }
    }
}

/// Trend rules; see `docs/clinical-rules.md` for the source of each default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Trends {
    pub enabled: bool,
    /// Heart failure: a gain of more than this over the window (NICE NG106: > 2 kg in 3 days).
    pub weight_gain_kg: f64,
    pub weight_gain_window_s: u64,
    /// NEWS2 rising by at least this within the window (RCP: a rising score is deterioration).
    pub news2_rise: u8,
    pub news2_rise_window_s: u64,
    /// Sustained tachycardia: pulse above this for `sustained_fraction` of the window.
    pub tachycardia_bpm: f64,
    pub tachycardia_window_s: u64,
    /// Sustained desaturation: SpO2 below the patient's scale target (94 %, or 88 % on scale 2) for
    /// `sustained_fraction` of the window.
    pub desaturation_window_s: u64,
    pub sustained_fraction: f64,
    /// Temperature rising by at least this within the window and reaching `temp_rise_min_c`.
    pub temp_rise_c: f64,
    pub temp_rise_window_s: u64,
    pub temp_rise_min_c: f64,
}

impl Default for Trends {
    fn default() -> Self {
        Trends {
            enabled: true,
            weight_gain_kg: 2.0,
            weight_gain_window_s: 3 * 24 * 3600,
            news2_rise: 2,
            news2_rise_window_s: 24 * 3600,
            tachycardia_bpm: 100.0,
            tachycardia_window_s: 3600,
            desaturation_window_s: 1800,
            sustained_fraction: 0.8,
            temp_rise_c: 1.0,
            temp_rise_window_s: 24 * 3600,
            temp_rise_min_c: 37.5,
        }
    }
}

impl Trends {
    /// The longest history any trend looks back over.
    pub fn longest_window_ms(&self) -> Millis {
        [
            self.weight_gain_window_s,
            self.news2_rise_window_s,
            self.tachycardia_window_s,
            self.desaturation_window_s,
            self.temp_rise_window_s,
        ]
        .into_iter()
        .max()
        .unwrap_or(0) as Millis
            * 1000
    }

    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        let err = |k: &str, m: &str| Err((format!("clinical.trends.{k}"), m.to_string()));
        if !(0.0..=1.0).contains(&self.sustained_fraction) || self.sustained_fraction == 0.0 {
            return err("sustained_fraction", "expected a fraction in (0, 1]");
        }
        for (k, v) in [
            ("weight_gain_window_s", self.weight_gain_window_s),
            ("news2_rise_window_s", self.news2_rise_window_s),
            ("tachycardia_window_s", self.tachycardia_window_s),
            ("desaturation_window_s", self.desaturation_window_s),
            ("temp_rise_window_s", self.temp_rise_window_s),
        ] {
            if v == 0 || v > 14 * 24 * 3600 {
                return err(k, "expected a window of 1 s to 14 days");
            }
        }
        if self.weight_gain_kg <= 0.0 || self.temp_rise_c <= 0.0 || self.news2_rise == 0 {
            return err("weight_gain_kg", "expected positive rises");
        }
        Ok(())
    }
}

/// A reading the patient is expected to take by given local times: `code = "weight"`, `at = ["10:00"]` means a
/// weight between midnight and 10:00; `at = ["09:00", "18:00"]` means one by 09:00 and another between 09:00 and
/// 18:00. At the due time a reminder goes to the home; `grace_s` later, a low-priority alert goes to the team.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Names the schedule in alerts and reminders, e.g. `weight_morning`.
    pub name: String,
    pub code: String,
    /// Local times, `HH:MM`, in order.
    pub at: Vec<String>,
    #[serde(default = "default_grace_s")]
    pub grace_s: u64,
}

fn default_grace_s() -> u64 {
    3600
}

impl Schedule {
    pub fn code(&self) -> Code {
        Code::from_name(&self.code).expect("validated")
    }

    /// Minutes after local midnight of each due time.
    pub fn minutes(&self) -> Vec<u32> {
        self.at.iter().filter_map(|t| parse_hhmm(t)).collect()
    }

    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        let err = |k: &str, m: &str| Err((k.to_string(), m.to_string()));
        if self.name.is_empty() || !super::is_topic_safe(&self.name) {
            return err("name", "expected a non-empty name without '/', '+', '#'");
        }
        if Code::from_name(&self.code).is_none() {
            return err("code", "expected an observation code such as \"weight\"");
        }
        if self.at.is_empty() {
            return err("at", "expected at least one \"HH:MM\"");
        }
        let minutes = self.minutes();
        if minutes.len() != self.at.len() {
            return err("at", "expected local times as \"HH:MM\" (00:00 to 23:59)");
        }
        if minutes.windows(2).any(|w| w[0] >= w[1]) {
            return err("at", "expected times in increasing order");
        }
        if self.grace_s == 0 || self.grace_s > 12 * 3600 {
            return err("grace_s", "expected 1 s to 12 h");
        }
        Ok(())
    }
}

fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// Who agreed a personal baseline, when, why, and until when — required on every `[[patients.rules]]`.
pub(super) fn validate_agreement(
    agreed_by: Option<&str>,
    agreed_at: Option<&str>,
    reason: Option<&str>,
    until: Option<&str>,
) -> Result<(), (String, String)> {
    let err = |k: &str, m: &str| Err((k.to_string(), m.to_string()));
    let given = |s: Option<&str>| s.is_some_and(|s| !s.trim().is_empty());
    if !given(agreed_by) {
        return err(
            "agreed_by",
            "a personal baseline needs agreed_by (the clinician who agreed it)",
        );
    }
    if !given(reason) {
        return err(
            "reason",
            "a personal baseline needs the reason it was agreed",
        );
    }
    let parse = hearth_protocol::json::parse_rfc3339_millis;
    match agreed_at.map(parse) {
        Some(Ok(_)) => {}
        _ => return err("agreed_at", "expected an RFC 3339 date-time"),
    }
    if let Some(u) = until
        && parse(u).is_err()
    {
        return err("until", "expected an RFC 3339 date-time");
    }
    Ok(())
}
