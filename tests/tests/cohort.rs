//! A simulated cohort through the real core loop: every labelled deterioration episode is detected, with at most a
//! fifth of the alerts of naive per-reading thresholds (issue 5).
//!
//! By default a scaled cohort keeps CI quick; `HEARTH_COHORT=full` runs 50 patients × 30 days. Either way the whole
//! report is printed (`-- --nocapture` to see it).

use hearth_tests::cohort::drive;
use hearth_tests::cohort::report::Report;
use hearth_tests::cohort::synth::{self, Spec};

fn spec() -> Spec {
    match std::env::var("HEARTH_COHORT").as_deref() {
        Ok("full") => Spec::FULL,
        _ => Spec {
            patients: 50,
            days: 30,
            ..Spec::FULL
        },
    }
}

#[tokio::test]
async fn hearth_detects_every_labelled_episode_with_a_fifth_of_the_naive_alerts() {
    let cohort = synth::generate(spec());
    let run = drive::run(&cohort).await;
    let report = Report::new(&cohort, run);
    println!("{}", report.table());
    let missed: Vec<String> = report
        .missed()
        .iter()
        .map(|e| format!("{} ({})", e.kind.as_str(), e.patient))
        .collect();
    assert!(missed.is_empty(), "missed episodes: {missed:?}");
    assert!(
        report.hearth_raises * 5 <= report.naive_alerts,
        "Hearth raised {} clinical alerts, naive thresholds {}: more than a fifth",
        report.hearth_raises,
        report.naive_alerts
    );
}
