//! Power-cut safety: the daemon is SIGKILLed at random moments under continuous load and restarted each time.
//!
//! Afterwards: every reading the hub PubAcked is in the database (PubAck = committed, with the embedded broker),
//! every alert message the hub raised reached the simulated community hub, duplicates are only byte-identical
//! resends, per-patient order held, and SQLite's integrity check passes.
//!
//! `HEARTH_CRASH_KILLS` sets the number of kills (default 20, about 30–60 s). Soak mode:
//! `HEARTH_CRASH_KILLS=500 cargo test -p hearth-tests --test crash -- --nocapture`.

use std::collections::BTreeSet;
use std::time::Duration;

use hearth_tests::check::assert_delivered_in_order;
use hearth_tests::db::HubDb;
use hearth_tests::http;
use hearth_tests::hub::{Hub, HubConfig, Rule, SensorsBroker};
use hearth_tests::load::Load;
use hearth_tests::mosquitto::Mosquitto;
use hearth_tests::ports::free_port;
use hearth_tests::upstream::Receiver;
use hearth_tests::wait::poll_for;
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
    cfg = cfg.rule(Rule::below("spo2", 92.0, "high"));
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

    // Let the last run deliver everything, then stop it politely.
    let addr = hub.http_addr();
    let drained = poll_for(
        "outbox drained after the last restart",
        Duration::from_secs(60),
        || async {
            let v = http::get_json(addr, "/api/outbox").await?;
            if v["depth"] == 0 {
                Ok(())
            } else {
                Err(v.to_string())
            }
        },
    )
    .await;
    if let Err(e) = drained {
        // Say, for each patient's stuck head of line, whether the receiver ever got it (and so acked it).
        let v = http::get_json(addr, "/api/outbox")
            .await
            .unwrap_or_default();
        let alerts = receiver.alerts();
        let mut heads = std::collections::BTreeMap::new();
        for p in v["pending"].as_array().into_iter().flatten() {
            heads
                .entry(p["patient"].as_str().unwrap_or("").to_string())
                .or_insert_with(|| p.clone());
        }
        let detail: Vec<String> = heads
            .values()
            .map(|p| {
                let id = p["alert_id"].as_str().unwrap_or("");
                let n = alerts
                    .iter()
                    .filter(|a| a.id == id && p["rev"] == a.rev)
                    .count();
                format!("head {p} received {n}x")
            })
            .collect();
        panic!(
            "{}\n  depth {}; {}\nhub log tail:\n{}",
            e.chars().take(300).collect::<String>(),
            v["depth"],
            detail.join("\n  "),
            hub.log_tail(3000)
        );
    }
    let status = hub.terminate().await;
    assert!(status.success(), "SIGTERM → exit 0, got {status}");

    let mut db = HubDb::open(&hub.db_path()).await;
    assert_eq!(db.integrity_check().await, "ok");
    // The audit hash chain survived every kill intact (no torn or missing row).
    let verify = std::process::Command::new(hearth_tests::hub::Hub::binary())
        .args(["audit-verify", "--config"])
        .arg(hub.config_path())
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "audit chain: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let stored: BTreeSet<(String, i64)> = db.reading_keys().await.into_iter().collect();
    let mut lost = Vec::new();
    let mut acked = 0;
    for sim in &sims {
        for t in sim.acked() {
            acked += 1;
            if !stored.contains(&(t.device.clone(), t.seq as i64)) {
                lost.push(t);
            }
        }
    }
    assert!(
        acked >= 50,
        "too little load to mean anything: {acked} PubAcks"
    );
    assert!(
        lost.is_empty(),
        "{} PubAcked readings missing from the database: {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );

    let outbox = db.outbox().await;
    assert!(!outbox.is_empty(), "the load should have raised alerts");
    let alert_ids: BTreeSet<String> = db.alert_ids().await.into_iter().collect();
    let in_outbox: BTreeSet<String> = outbox.iter().map(|r| r.alert_id.clone()).collect();
    let missing: Vec<_> = alert_ids.difference(&in_outbox).collect();
    assert!(
        missing.is_empty(),
        "alerts with no outbox row (raised but never sent): {missing:?}"
    );
    assert_delivered_in_order(&outbox, &receiver.received());
}
