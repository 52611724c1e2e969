//! A simulated cohort (50 patients × 30 days of home readings, labelled deterioration episodes, device faults)
//! through the real core loop, against naive per-reading thresholds computed from the same readings (issue 5).
//!
//! The cohort runs once per test binary and every test reads the same report; `-- --nocapture` prints it in full.
//! `HEARTH_COHORT_SEED=n` runs another cohort of the same shape.

use std::sync::OnceLock;

use hearth_tests::cohort::drive;
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
        let run = rt.block_on(drive::run(&cohort));
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

/// Not met yet (0.28 of naive with seed FULL): NEWS2 raises an alert on a single reading that scores 3 (an oximeter
/// motion artefact, a thermometer reading low, a miscounted breath rate, a loose cuff), with no alarm delay and no
/// re-check, and those are 80 % of Hearth's false alerts. See docs/clinical-rules.md, "Simulated cohort".
#[test]
#[ignore = "not met yet: NEWS2 alerts on single artefact readings (docs/clinical-rules.md, Simulated cohort)"]
fn hearth_raises_at_most_a_fifth_of_the_naive_alerts() {
    let r = report();
    assert!(
        r.hearth_raises * 5 <= r.naive_alerts,
        "Hearth raised {} clinical alerts, naive thresholds {}: more than a fifth",
        r.hearth_raises,
        r.naive_alerts
    );
}

/// The controls that make the difference, one fault at a time: a device-invalid value is never scored, a single
/// out-of-range reading does not raise a threshold alert on its own (alarm delay + the re-check), and a reading that
/// arrives hours late fires no value rule.
#[test]
fn threshold_rules_never_alert_on_invalid_values_single_spikes_or_late_readings() {
    let r = report();
    let by = |fault: &str| -> usize {
        r.hearth_false_causes
            .iter()
            .filter(|((rule, why), _)| !rule.starts_with("news2") && why == fault)
            .map(|(_, n)| n)
            .sum()
    };
    for fault in [
        "oximeter motion artefact (flagged invalid)",
        "cuff error (NaN)",
        "pulse after exertion",
        "thermometer reading high",
        "late sync",
        "device clock wrong",
    ] {
        assert_eq!(by(fault), 0, "threshold alerts caused by {fault}");
    }
    assert!(
        r.naive_false_causes.get("pulse after exertion").copied().unwrap_or(0) > 0,
        "the naive baseline does alert on exertion: the fault is really in the data"
    );
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
