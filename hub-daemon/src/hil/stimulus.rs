//! Stimulus as the board's command lines: PPG windows and accelerometer traces synthesised by the firmware
//! library's `synth` module (the same waveforms its own tests validate, with known answers).

use hearth_firmware::drivers::lis3dh::MilliG;
use hearth_firmware::drivers::max30102::PpgSample;
use hearth_firmware::synth::{self, PpgSpec, Segment};

/// Samples in one PPG window (8 s at 25 Hz, the board's window).
pub const PPG_WINDOW: usize = 200;
/// The accelerometer's sample period.
pub const ACCEL_PERIOD_MS: u32 = 10;
/// An impact, as the board's fall detector defines it (|a| > 2.5 g).
const IMPACT_MG: i64 = 2500;

pub fn trace(name: &str) -> Option<&'static [Segment]> {
    match name {
        "fall" => Some(synth::FALL),
        "sit_down" => Some(synth::SIT_DOWN),
        "stumble" => Some(synth::STUMBLE),
        "fall_and_get_up" => Some(synth::FALL_AND_GET_UP),
        _ => None,
    }
}

/// `P <red> <ir>` lines for one window.
pub fn ppg_lines(bpm: f32, r: f32, motion: bool, seed: u32) -> Vec<String> {
    let spec = PpgSpec {
        motion,
        seed,
        ..PpgSpec::clean(bpm, r)
    };
    let mut samples = [PpgSample::default(); PPG_WINDOW];
    synth::ppg(&spec, &mut samples);
    samples
        .iter()
        .map(|s| format!("P {} {}\n", s.red, s.ir))
        .collect()
}

/// One accelerometer sample as a command line, and whether it is an impact.
pub struct AccelSample {
    pub line: String,
    pub impact: bool,
}

pub fn accel_lines(trace: &[Segment], seed: u32) -> Vec<AccelSample> {
    let mut out = Vec::new();
    synth::accel(trace, ACCEL_PERIOD_MS, seed, |MilliG { x, y, z }| {
        let m2 = x as i64 * x as i64 + y as i64 * y as i64 + z as i64 * z as i64;
        out.push(AccelSample {
            line: format!("A {x} {y} {z}\n"),
            impact: m2 > IMPACT_MG * IMPACT_MG,
        });
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fall_trace_has_an_impact_and_the_sit_down_none() {
        let fall = accel_lines(trace("fall").unwrap(), 5);
        let first = fall.iter().position(|s| s.impact).unwrap();
        // 1 s standing + 300 ms free fall at 100 Hz.
        assert_eq!(first, 130);
        assert!(
            !accel_lines(trace("sit_down").unwrap(), 5)
                .iter()
                .any(|s| s.impact)
        );
        assert_eq!(ppg_lines(72.0, 0.5, false, 1).len(), PPG_WINDOW);
    }
}
