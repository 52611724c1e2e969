//! Heart rate, SpO2 and signal quality on synthesised PPG with known answers.

use hearth_firmware::drivers::max30102::PpgSample;
use hearth_firmware::dsp::ppg::{PpgConfig, PpgReport, PpgWindow};
use hearth_firmware::synth::{self, PpgSpec};
use hearth_protocol::{Invalid, Quantity, Value};

/// 8 s at 25 samples/s.
const N: usize = 200;

fn run(spec: &PpgSpec) -> PpgReport {
    let mut samples = [PpgSample::default(); N];
    synth::ppg(spec, &mut samples);
    let mut w = PpgWindow::<N>::new();
    for s in samples {
        w.push(s);
    }
    let r = w.analyze(&PpgConfig::new(spec.sample_rate_hz), false);
    println!("{spec:?}\n  → {r:?}");
    r
}

fn number(v: Value) -> i32 {
    match v {
        Value::Number(Quantity {
            mantissa,
            exponent: 0,
        }) => mantissa,
        other => panic!("expected an integer, got {other:?}"),
    }
}

#[test]
fn clean_72_bpm_with_r_half_gives_72_and_97_percent() {
    let spec = PpgSpec::clean(72.0, 0.5);
    let r = run(&spec);
    assert!((number(r.heart_rate) - 72).abs() <= 1, "{r:?}");
    // 110 − 25 × 0.5 = 97.5: the measured R rounds to 97 or 98.
    assert!((97..=98).contains(&number(r.spo2)), "{r:?}");
    assert!((r.quality.ratio_r - 0.5).abs() < 0.02, "{r:?}");
    assert!(r.quality.sqi >= 80, "{r:?}");
}

#[test]
fn clean_120_bpm_with_r_0_8_gives_120_and_90_percent() {
    let spec = PpgSpec::clean(120.0, 0.8);
    let r = run(&spec);
    assert!((number(r.heart_rate) - 120).abs() <= 2, "{r:?}");
    assert!((89..=91).contains(&number(r.spo2)), "{r:?}");
    assert!((r.quality.ratio_r - 0.8).abs() < 0.03, "{r:?}");
}

#[test]
fn slow_48_bpm_hypoxic_r_1_2_gives_48_and_80_percent() {
    let spec = PpgSpec::clean(48.0, 1.2);
    let r = run(&spec);
    assert!((number(r.heart_rate) - 48).abs() <= 1, "{r:?}");
    assert!((79..=81).contains(&number(r.spo2)), "{r:?}");
}

#[test]
fn r_below_0_4_is_clamped_to_100_percent() {
    let r = run(&PpgSpec::clean(72.0, 0.3));
    assert_eq!(number(r.spo2), 100);
}

#[test]
fn r_above_2_4_is_outside_calibration_and_not_a_number() {
    let r = run(&PpgSpec::clean(72.0, 2.6));
    assert_eq!(r.spo2, Value::Invalid(Invalid::LowSignalQuality));
}

#[test]
fn motion_corrupted_ppg_is_motion_artefact_never_a_number() {
    for seed in 1..=10 {
        let spec = PpgSpec {
            motion: true,
            seed,
            ..PpgSpec::clean(72.0, 0.5)
        };
        let r = run(&spec);
        assert_eq!(
            r.heart_rate,
            Value::Invalid(Invalid::MotionArtefact),
            "seed {seed}: {r:?}"
        );
        assert_eq!(
            r.spo2,
            Value::Invalid(Invalid::MotionArtefact),
            "seed {seed}: {r:?}"
        );
        assert!(r.quality.sqi < 50, "seed {seed}: {r:?}");
    }
}

#[test]
fn poor_perfusion_is_low_signal_quality() {
    let spec = PpgSpec {
        perfusion: 0.0003,
        ..PpgSpec::clean(72.0, 0.5)
    };
    let r = run(&spec);
    assert_eq!(
        r.heart_rate,
        Value::Invalid(Invalid::LowSignalQuality),
        "{r:?}"
    );
    assert_eq!(r.spo2, Value::Invalid(Invalid::LowSignalQuality), "{r:?}");
}

#[test]
fn no_finger_is_sensor_displaced() {
    let spec = PpgSpec {
        dc_red: 900.0,
        dc_ir: 1100.0,
        ..PpgSpec::clean(72.0, 0.5)
    };
    let r = run(&spec);
    assert_eq!(r.spo2, Value::Invalid(Invalid::SensorDisplaced));
}

#[test]
fn accelerometer_motion_flag_overrides_a_clean_ppg() {
    let mut samples = [PpgSample::default(); N];
    synth::ppg(&PpgSpec::clean(72.0, 0.5), &mut samples);
    let mut w = PpgWindow::<N>::new();
    samples.iter().for_each(|s| {
        w.push(*s);
    });
    let r = w.analyze(&PpgConfig::new(25), true);
    assert_eq!(r.heart_rate, Value::Invalid(Invalid::MotionArtefact));
    assert!(r.quality.sqi >= 80, "the PPG itself was clean: {r:?}");
}

#[test]
fn too_short_a_window_is_not_a_number() {
    let mut samples = [PpgSample::default(); 50];
    synth::ppg(&PpgSpec::clean(72.0, 0.5), &mut samples);
    let mut w = PpgWindow::<N>::new();
    samples.iter().for_each(|s| {
        w.push(*s);
    });
    let r = w.analyze(&PpgConfig::new(25), false);
    assert_eq!(r.heart_rate, Value::Invalid(Invalid::LowSignalQuality));
}

#[test]
fn heart_rate_is_accurate_across_the_range_at_100_hz() {
    // 100 samples/s, 8 s: 800 samples.
    for bpm in [40.0, 60.0, 90.0, 150.0, 180.0] {
        let spec = PpgSpec {
            sample_rate_hz: 100,
            ..PpgSpec::clean(bpm, 0.6)
        };
        let mut samples = [PpgSample::default(); 800];
        synth::ppg(&spec, &mut samples);
        let mut w = PpgWindow::<800>::new();
        samples.iter().for_each(|s| {
            w.push(*s);
        });
        let r = w.analyze(&PpgConfig::new(100), false);
        println!("{bpm} → {r:?}");
        assert!(
            (number(r.heart_rate) - bpm as i32).abs() <= 2,
            "{bpm}: {r:?}"
        );
        assert!((94..=96).contains(&number(r.spo2)), "{bpm}: {r:?}");
    }
}
