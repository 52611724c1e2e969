//! Fall detection on synthesised acceleration traces.

use hearth_firmware::drivers::lis3dh::MilliG;
use hearth_firmware::dsp::fall::{FallConfig, FallDetector, FallEvent};
use hearth_firmware::synth;
use hearth_protocol::{Code, Quantity, Value};

fn events(trace: &[synth::Segment], seed: u32) -> Vec<(usize, FallEvent)> {
    let mut d = FallDetector::new(FallConfig::default());
    let mut out = Vec::new();
    let mut i = 0;
    synth::accel(trace, 10, seed, |a| {
        if let Some(e) = d.push(a) {
            out.push((i, e));
        }
        i += 1;
    });
    out
}

#[test]
fn a_fall_with_stillness_is_reported_once_two_seconds_after_impact() {
    for seed in 1..=5 {
        let e = events(synth::FALL, seed);
        assert_eq!(e.len(), 1, "seed {seed}: {e:?}");
        let (at, ev) = e[0];
        // Impact at 1300 ms (sample 130); rebounds end at 1430 ms; 2 s of stillness → sample 143 + 200 − 1.
        assert_eq!(at, 342, "seed {seed}");
        assert_eq!(ev.free_fall_ms, 300);
        assert!((3200..3300).contains(&ev.impact_mg), "{ev:?}");
        let o = ev.observation();
        assert_eq!(o.code, Code::Fall);
        assert_eq!(o.value, Value::Number(Quantity::new(1, 0)));
    }
}

#[test]
fn sitting_down_hard_is_not_a_fall() {
    for seed in 1..=5 {
        assert!(events(synth::SIT_DOWN, seed).is_empty());
    }
}

#[test]
fn a_stumble_with_short_free_fall_is_not_a_fall() {
    assert!(events(synth::STUMBLE, 1).is_empty());
}

#[test]
fn getting_straight_up_after_impact_is_not_reported() {
    assert!(events(synth::FALL_AND_GET_UP, 1).is_empty());
}

#[test]
fn free_fall_without_impact_times_out() {
    let mut d = FallDetector::new(FallConfig::default());
    let g = MilliG {
        x: 0,
        y: 0,
        z: 1000,
    };
    let free = MilliG { x: 0, y: 0, z: 100 };
    for _ in 0..20 {
        assert_eq!(d.push(free), None);
    }
    // Then 1.5 s of ordinary standing, then an impact-sized spike: too late.
    for _ in 0..150 {
        assert_eq!(d.push(g), None);
    }
    assert_eq!(
        d.push(MilliG {
            x: 0,
            y: 0,
            z: 3000
        }),
        None
    );
    for _ in 0..300 {
        assert_eq!(d.push(g), None);
    }
}

#[test]
fn thresholds_are_exclusive_at_their_edges() {
    let c = FallConfig::default();
    let mut d = FallDetector::new(c);
    // Exactly 0.4 g is not free fall.
    for _ in 0..20 {
        d.push(MilliG { x: 0, y: 0, z: 400 });
    }
    assert_eq!(d.state(), hearth_firmware::dsp::fall::FallState::Idle);
    // 80 ms (8 samples at 10 ms) below 0.4 g is enough; exactly 2.5 g is not an impact, 2.501 g is.
    for _ in 0..8 {
        d.push(MilliG { x: 0, y: 0, z: 399 });
    }
    d.push(MilliG {
        x: 0,
        y: 0,
        z: 2500,
    });
    assert!(matches!(
        d.state(),
        hearth_firmware::dsp::fall::FallState::AwaitImpact { .. }
    ));
    d.push(MilliG {
        x: 0,
        y: 0,
        z: 2501,
    });
    assert!(matches!(
        d.state(),
        hearth_firmware::dsp::fall::FallState::AwaitStill { .. }
    ));
}
