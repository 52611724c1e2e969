//! Weight settling on synthesised weighings.

use hearth_firmware::dsp::weight::{Calibration, SettleConfig, WeightSettler};
use hearth_firmware::synth;
use hearth_protocol::{Code, Observation, Quantity};

fn weigh(grams: i32, hold_s: u32) -> Vec<Observation> {
    let mut s = WeightSettler::<32>::new(SettleConfig::default());
    let mut out = Vec::new();
    synth::weighing(grams, hold_s, 7, |g| out.extend(s.push(g)));
    out
}

#[test]
fn one_weighing_gives_exactly_one_reading_at_the_true_weight() {
    let r = weigh(72_400, 5);
    assert_eq!(
        r,
        vec![Observation::number(Code::Weight, Quantity::new(7240, -2))]
    );
}

#[test]
fn stepping_off_before_it_settles_gives_nothing() {
    // 1 s hold: fewer than 20 samples in band after the sway.
    assert!(weigh(72_400, 1).is_empty());
}

#[test]
fn a_second_weighing_after_stepping_off_reports_again() {
    let mut s = WeightSettler::<32>::new(SettleConfig::default());
    let mut out = Vec::new();
    synth::weighing(60_000, 4, 1, |g| out.extend(s.push(g)));
    synth::weighing(61_050, 4, 2, |g| out.extend(s.push(g)));
    assert_eq!(
        out,
        vec![
            Observation::number(Code::Weight, Quantity::new(6000, -2)),
            Observation::number(Code::Weight, Quantity::new(6105, -2)),
        ]
    );
}

#[test]
fn a_swing_over_50_g_in_the_window_prevents_settling() {
    let mut s = WeightSettler::<32>::new(SettleConfig::default());
    for i in 0..100 {
        // ±60 g alternating around 70 kg.
        let g = if i % 2 == 0 { 70_060 } else { 69_940 };
        assert_eq!(s.push(g), None);
    }
    // Within ±50 g: settles after 20 samples.
    let mut got = None;
    for i in 0..20 {
        got = got.or(s.push(if i % 2 == 0 { 70_050 } else { 69_950 }));
    }
    assert_eq!(
        got,
        Some(Observation::number(Code::Weight, Quantity::new(7000, -2)))
    );
}

#[test]
fn calibration_maps_counts_to_grams() {
    // 8 388 608 counts full scale; say 420 counts per 10 g with a tare of 8 200.
    let c = Calibration {
        offset: 8_200,
        num: 10,
        den: 420,
    };
    assert_eq!(c.grams(8_200), 0);
    assert_eq!(c.grams(8_200 + 420 * 7_000), 70_000);
    assert_eq!(c.grams(8_200 - 4_200), -100);
}
