//! The README's main job, `hearthd demo`, end to end: the daemon, the embedded broker, the simulated home and the
//! in-process community hub come up, the deteriorating patient raises threshold and NEWS2 alerts that reach the
//! community hub, and the demo stops cleanly. The demo runs on the wall clock by design (a person watches it), so
//! this test takes its full 55 s (the patient's recovery comes later and is not waited for).

use std::process::Command;

#[test]
fn the_demo_raises_alerts_that_reach_the_community_hub_and_stops_cleanly() {
    let out = Command::new(env!("CARGO_BIN_EXE_hearthd"))
        .args(["demo", "--duration-s", "55"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run hearthd demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = || {
        format!(
            "stdout:\n{stdout}\nstderr tail:\n{}",
            String::from_utf8_lossy(&out.stderr)
                .chars()
                .rev()
                .take(3000)
                .collect::<String>()
                .chars()
                .rev()
                .collect::<String>()
        )
    };
    assert!(out.status.success(), "{}", report());
    for expected in [
        "NURSE DASHBOARD:  http://",
        "log in as nurse / hearth-demo",
        "carer reports: not their usual self",
        "spo2_below_92",
        "NEWS2 3 (low-medium)",
        "heart_rate_above_130",
        "Demo stopped cleanly.",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?}\n{}",
            report()
        );
    }
}
