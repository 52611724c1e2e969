//! A simulated cohort (50 patients × 30 days of home readings, labelled deterioration episodes, device faults)
//! through the real core loop, against naive per-reading thresholds computed from the same readings (issue 5).
//!
//! The cohort runs once per test binary and every test reads the same report; `-- --nocapture` prints it in full.
//! `HEARTH_COHORT_SEED=n` runs another cohort of the same shape.

use std::sync::OnceLock;

use hearth_tests::cohort::drive::{self, Rules};
use hearth_tests::cohort::report::Report;
use hearth_tests::cohort::synth::{self, Spec};

fn spec() -> Spec {
    let seed = std::env::var("HEARTH_COHORT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(Spec::FULL.seed);
    Spec { seed, ..Spec::FULL }
}

fn report() -> &'static Report {
    static REPORT: OnceLock<Report> = OnceLock::new();
    REPORT.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let cohort = synth::generate(spec());
        let run = rt.block_on(drive::run(&cohort, Rules::ALL));
        let report = Report::new(&cohort, run);
        println!("{}", report.table());
        report
    })
}

#[test]
fn every_labelled_episode_is_detected() {
    let r = report();
    let missed: Vec<String> = r
        .missed()
        .iter()
        .map(|e| format!("{} ({})", e.kind.as_str(), e.patient))
        .collect();
    assert!(missed.is_empty(), "missed episodes: {missed:?}");
    assert!(r.episodes.len() >= 18, "the plan has 18 episodes");
}

/// Issue 5's alarm-burden target. Met since NEWS2 holds a value that changes a subscore for a confirming reading
/// (`rules::confirm`) and NEWS2-rising leaves to the NEWS2 alert the rises its band already shows: 0.18 of naive with
/// seed FULL (0.91 before). See docs/clinical-rules.md, "Simulated cohort".
#[test]
fn hearth_raises_at_most_a_fifth_of_the_naive_alerts() {
    let r = report();
    assert!(
        r.hearth_raises * 5 <= r.naive_alerts,
        "Hearth raised {} clinical alerts, naive thresholds {}: more than a fifth",
        r.hearth_raises,
        r.naive_alerts
    );
}

/// A device-invalid value is never scored, by any rule: not one alert is traced to a reading whose value the
/// device flagged (an oximeter's poor signal, a cuff error sent as NaN).
#[test]
fn no_alert_is_ever_raised_by_a_device_invalid_value() {
    let r = report();
    for ((rule, why), n) in &r.hearth_false_causes {
        assert!(
            why != "oximeter motion artefact (flagged invalid)" && why != "cuff error (NaN)",
            "{n} {rule} alerts caused by {why}"
        );
    }
}

/// A reading that reaches the hub more than 15 minutes after its device time (a phone syncing late, a device clock
/// running slow) is stored but fires no value rule: no alert is traced to one.
#[test]
fn no_value_alert_is_raised_by_a_reading_that_arrived_stale() {
    let r = report();
    assert!(r.stale_on_arrival > 0, "the cohort has stale readings");
    for ((rule, why), n) in &r.hearth_false_causes {
        assert!(
            why != "late sync" && why != "device clock wrong",
            "{n} {rule} alerts caused by {why}"
        );
    }
}

/// A single out-of-range reading does not raise a threshold alert on its own (the alarm delay and the re-check on
/// the patient's card): pulses taken after the stairs and hot-drink temperatures, which the naive baseline alerts
/// on, raise at most a tenth as many threshold alerts.
#[test]
fn threshold_rules_ride_out_single_spikes_the_naive_baseline_alerts_on() {
    let r = report();
    for fault in ["pulse after exertion", "thermometer reading high"] {
        let hearth: usize = r
            .hearth_false_causes
            .iter()
            .filter(|((rule, why), _)| why == fault && !rule.starts_with("news2"))
            .map(|(_, n)| n)
            .sum();
        let naive = r.naive_false_causes.get(fault).copied().unwrap_or(0);
        assert!(
            naive > 0,
            "the naive baseline alerts on {fault}: the fault is in the data"
        );
        assert!(
            hearth * 10 <= naive,
            "{fault}: Hearth {hearth}, naive {naive}"
        );
    }
}

#[test]
fn the_cohort_is_the_same_for_the_same_seed() {
    let spec = Spec {
        patients: 6,
        days: 3,
        ..Spec::FULL
    };
    let a = synth::generate(spec);
    let b = synth::generate(spec);
    let key = |c: &synth::Cohort| -> Vec<(String, u32, i64, String)> {
        c.sent
            .iter()
            .map(|s| (s.device.clone(), s.seq, s.delivered, format!("{:?}", s.obs)))
            .collect()
    };
    assert_eq!(key(&a), key(&b));
    assert!(!a.sent.is_empty());
}

/// What each rule family contributes, for the lead and the docs (about 3 min in debug: run it on purpose,
/// `cargo test -p hearth-tests --test cohort -- --ignored --nocapture rule_families`).
#[test]
#[ignore = "a measurement, not a check: prints the cohort with each rule family switched off"]
fn rule_families() {
    let cohort = synth::generate(spec());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "| rules | episodes detected | median onset → alert | clinical raises | of which false | ratio to naive |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, rules) in [
        ("thresholds + NEWS2 + trends (as configured)", Rules::ALL),
        (
            "thresholds + NEWS2",
            Rules {
                news2: true,
                trends: false,
            },
        ),
        (
            "thresholds + trends",
            Rules {
                news2: false,
                trends: true,
            },
        ),
        (
            "thresholds only",
            Rules {
                news2: false,
                trends: false,
            },
        ),
    ] {
        let r = Report::new(&cohort, rt.block_on(drive::run(&cohort, rules)));
        println!(
            "| {name} | {} / {} | {} | {} | {} | {:.2} |",
            r.episodes.len() - r.missed().len(),
            r.episodes.len(),
            r.hearth_median_h()
                .map_or("–".into(), |h| format!("{h:.1} h")),
            r.hearth_raises,
            r.hearth_false,
            r.hearth_raises as f64 / r.naive_alerts.max(1) as f64
        );
    }
}

/// The cuff whose clock goes 6 h slow (its readings arrive stale and fire nothing) is reported by one technical
/// `device_clock` alert — and no device of the patients whose phone syncs late is (hazard H05).
#[test]
fn a_wrong_device_clock_is_reported_and_late_syncing_is_not() {
    let r = report();
    assert_eq!(
        r.technical_by_rule.get("device_clock").copied(),
        Some(1),
        "{:?}",
        r.technical_by_rule
    );
}
