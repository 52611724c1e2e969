//! A simulated cohort for measuring alarm burden and detection (issue 5): a deterministic generator of patients'
//! home readings with labelled deterioration episodes and realistic device faults ([`synth`]), a driver that runs them
//! through the hub's real core loop with a real SQLite store and simulated time ([`drive`]), and a report that
//! compares Hearth with a naive per-reading threshold baseline computed from the same readings ([`report`]).
//!
//! `tests/tests/cohort.rs` asserts the targets on 50 patients × 30 days; `cargo test -p hearth-tests --test cohort --
//! --nocapture` prints the report, and `docs/clinical-rules.md` ("Simulated cohort") records it.

pub mod drive;
pub mod report;
pub mod synth;
