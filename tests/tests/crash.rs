//! Power-cut safety: the daemon is SIGKILLed at random moments under continuous load and restarted each time.
//!
//! Afterwards: every reading the hub PubAcked is in the database (PubAck = committed, with the embedded broker),
//! every alert message the hub raised reached the simulated community hub, duplicates are only byte-identical
//! resends, per-patient order held, and SQLite's integrity check passes.
//!
//! The verdict is [`drain_and_verify`]: also every alert the stored readings imply exists, and the audit chain holds.
//!
//! `HEARTH_CRASH_KILLS` sets the number of kills (default 20 in CI). Soak mode (`scripts/soak.sh`):
//! `HEARTH_CRASH_KILLS=200 cargo test -p hearth-tests --test crash -- --nocapture`.

use std::time::Duration;

use hearth_tests::hub::{Hub, HubConfig, Rule, SensorsBroker};
use hearth_tests::load::{CLINICAL_TOML, Load};
use hearth_tests::mosquitto::Mosquitto;
use hearth_tests::ports::free_port;
use hearth_tests::survival::drain_and_verify;
use hearth_tests::upstream::Receiver;
use rand::Rng;

const DEVICES: [&str; 4] = ["dev-1", "dev-2", "dev-3", "dev-4"];

fn kills() -> u32 {
    std::env::var("HEARTH_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_committed_or_raised_is_lost_across_repeated_sigkills() {
    let upstream = Mosquitto::start();
    let receiver = Receiver::start(upstream.port()).await;
    // A fixed port: the sensors must find the embedded broker again after every restart.
    let sensors_port = free_port();
    let mut cfg =
        HubConfig::new(upstream.port()).sensors(SensorsBroker::Embedded { port: sensors_port });
    for (i, d) in DEVICES.iter().enumerate() {
        cfg = cfg.patient(&format!("p-{}", i + 1), &[d]);
    }
    cfg = cfg
        .rule(Rule::below("spo2", 92.0, "high"))
        .extra_toml(CLINICAL_TOML);
    cfg.resend_after_s = 1;
    let mut hub = Hub::start(cfg).await;
    let load = Load::start(sensors_port, &DEVICES).await;

    let n = kills();
    let started = std::time::Instant::now();
    let mut rng = rand::rng();
    for k in 0..n {
        // Some load must have flowed since the (re)start, or the kill tests nothing.
        let seen = load.acked_total();
        assert!(
            load.wait_acked_total_above(seen, Duration::from_secs(20))
                .await,
            "no reading PubAcked within 20 s after start #{} (kill {k}); hub log:\n{}",
            hub.starts(),
            hub.log_tail(4000)
        );
        // The kill moment is the test's random choice, not a wait for a condition.
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..400))).await;
        hub.kill9();
        hub.restart().await;
    }
    let seen = load.acked_total();
    assert!(
        load.wait_acked_total_above(seen, Duration::from_secs(20))
            .await,
        "no progress after the last restart"
    );
    let sims = load.stop().await;
    eprintln!(
        "crash: {n} kills in {:?}, {} readings PubAcked",
        started.elapsed(),
        sims.iter().map(|s| s.acked().len()).sum::<usize>()
    );

    let s = drain_and_verify(&mut hub, &receiver, &sims).await;
    assert!(s.acked >= 50, "too little load to mean anything: {s:?}");
    assert!(s.messages > 0, "the load should have raised alerts: {s:?}");
    eprintln!(
        "FIGURE crash_sigkill kills={n} acked={} stored={} alerts={} messages={} resends={} backlog={} drained_s={:.1}",
        s.acked,
        s.stored,
        s.alerts,
        s.messages,
        s.resends(),
        s.backlog,
        s.drained.as_secs_f64()
    );
}
