//! `hearthd news2 …`: score one set of observations with NEWS2 and print the breakdown as JSON.
//!
//! Uses [`crate::rules::news2::score`], the function the core loop uses, with every given value observed "now":
//! what a clinician or technician sees here is what the hub would score. Values are checked against the same
//! plausible ranges as the validity gate ([`Code::plausible`]). Bad input exits 2 with one line on stderr.
//!
//! ```text
//! hearthd news2 --resp-rate 22 --spo2 93 --scale 1 --bp-sys 105 --pulse 112 --consciousness A --temp 38.4
//! ```

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use hearth_protocol::Code;
use hearth_protocol::json::Severity;
use serde::Serialize;

use crate::clock::{Clock, Millis, SystemClock};
use crate::rules::news2::{self, Acvpu, AirOrOxygen, Freshness, Inputs, Observed, Scale, Score};

/// The observations to score. Every one is optional; the ones left out are listed as `missing`.
/// Numbers are taken as text and parsed here, so that a bad value is a one-line error rather than clap's usage text.
#[derive(Args, Debug, Clone, Default)]
pub struct News2Args {
    /// Respiration rate, breaths per minute.
    #[arg(long, value_name = "PER_MIN", allow_negative_numbers = true)]
    pub resp_rate: Option<String>,
    /// SpO2, %.
    #[arg(long, value_name = "PERCENT", allow_negative_numbers = true)]
    pub spo2: Option<String>,
    /// SpO2 scale: 1, or 2 for a patient a clinician has put on scale 2 (target 88–92 %).
    #[arg(long, value_name = "1|2", default_value = "1")]
    pub scale: String,
    /// The patient is on supplemental oxygen (default: breathing air).
    #[arg(long)]
    pub oxygen: bool,
    /// Systolic blood pressure, mmHg.
    #[arg(long, value_name = "MMHG", allow_negative_numbers = true)]
    pub bp_sys: Option<String>,
    /// Pulse, beats per minute.
    #[arg(long, value_name = "PER_MIN", allow_negative_numbers = true)]
    pub pulse: Option<String>,
    /// ACVPU: A (alert), C (new confusion), V (voice), P (pain), U (unresponsive).
    #[arg(long, value_name = "A|C|V|P|U")]
    pub consciousness: Option<String>,
    /// Temperature, °C.
    #[arg(long, value_name = "CELSIUS", allow_negative_numbers = true)]
    pub temp: Option<String>,
}

/// Prints the score as JSON on stdout (exit 0), or one line on stderr (exit 2).
pub fn run(args: News2Args) -> ExitCode {
    let result = evaluate(&args, SystemClock.now_ms())
        .and_then(|s| serde_json::to_string_pretty(&Report::new(&s)).map_err(|e| e.to_string()));
    match result {
        Ok(text) => {
            // A closed pipe (`| head`) is not worth a panic.
            let _ = writeln!(std::io::stdout(), "{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", e.replace('\n', " "));
            ExitCode::from(2)
        }
    }
}

/// Parses `args` and scores them as observed at `now`, with the default freshness windows.
pub fn evaluate(args: &News2Args, now: Millis) -> Result<Score, String> {
    let at = |value: f64| Observed::new(value, now);
    let scale = match args.scale.trim() {
        "1" => Scale::One,
        "2" => Scale::Two,
        other => return Err(format!("--scale: expected 1 or 2, got {other:?}")),
    };
    let consciousness = match &args.consciousness {
        Some(c) => Some(Observed::new(
            c.parse::<Acvpu>()
                .map_err(|e| format!("--consciousness: {e}"))?,
            now,
        )),
        None => None,
    };
    let oxygen = if args.oxygen {
        AirOrOxygen::Oxygen
    } else {
        AirOrOxygen::Air
    };
    let inputs = Inputs {
        resp_rate: number("--resp-rate", &args.resp_rate, Code::RespRate)?.map(at),
        spo2: number("--spo2", &args.spo2, Code::Spo2)?.map(at),
        air_or_oxygen: Some(Observed::new(oxygen, now)),
        bp_sys: number("--bp-sys", &args.bp_sys, Code::BpSys)?.map(at),
        pulse: number("--pulse", &args.pulse, Code::HeartRate)?.map(at),
        consciousness,
        temp: number("--temp", &args.temp, Code::Temp)?.map(at),
    };
    Ok(news2::score(&inputs, scale, now, &Freshness::default()))
}

/// What the command prints: the score (fields in [`Score`] order) plus the alert `severity` it would raise (`null`
/// for the low band).
#[derive(Serialize)]
pub struct Report<'a> {
    #[serde(flatten)]
    pub score: &'a Score,
    pub severity: Option<Severity>,
}

impl<'a> Report<'a> {
    pub fn new(score: &'a Score) -> Self {
        Report {
            score,
            severity: score.severity(),
        }
    }
}

/// A finite number inside the gate's plausible range for `code`.
fn number(flag: &str, text: &Option<String>, code: Code) -> Result<Option<f64>, String> {
    let Some(text) = text else { return Ok(None) };
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{flag}: expected a number, got {text:?}"))?;
    if !code.is_plausible(v) {
        let (lo, hi) = code.plausible();
        return Err(format!(
            "{flag}: {v} is outside the plausible range {lo}–{hi} {}",
            code.unit()
        ));
    }
    Ok(Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> News2Args {
        News2Args {
            scale: "1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn nothing_given_is_an_incomplete_zero_on_air() {
        let s = evaluate(&args(), 0).unwrap();
        assert_eq!(s.total, 0);
        assert!(!s.complete);
        assert_eq!(s.missing.len(), 6, "all but air or oxygen: {:?}", s.missing);
    }

    #[test]
    fn bad_values_are_errors_that_name_the_flag() {
        type Case = (fn(&mut News2Args), &'static str);
        let cases: [Case; 5] = [
            (|a| a.spo2 = Some("abc".into()), "--spo2: expected a number"),
            (|a| a.spo2 = Some("NaN".into()), "--spo2: NaN is outside"),
            (|a| a.temp = Some("-3".into()), "--temp: -3 is outside"),
            (|a| a.scale = "3".into(), "--scale: expected 1 or 2"),
            (
                |a| a.consciousness = Some("X".into()),
                "--consciousness: expected one of",
            ),
        ];
        for (set, want) in cases {
            let mut a = args();
            set(&mut a);
            let e = evaluate(&a, 0).unwrap_err();
            assert!(e.starts_with(want), "{e:?} should start with {want:?}");
        }
    }
}
