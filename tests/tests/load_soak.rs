//! Load: a burst of 500 readings/s for a minute (CI) or 50/s for an hour (soak), through the hub's own endpoint.
//!
//! Ten devices publish QoS 1 at a paced rate, each with a bounded window of unacknowledged publishes: when the hub
//! is slower than the offered rate, its endpoint stops reading and the devices wait (back-pressure), so nothing is
//! ever dropped. Checked: no publish was dropped by a device, every device's stored sequence numbers are exactly
//! 1..=n with n what it published (zero gaps, zero duplicates), nothing quarantined, integrity_check ok. Measured and
//! printed on a `FIGURE` line: offered and achieved rate, and the daemon's RSS (`/proc/PID/status`) before the load,
//! during it, after it, and its peak (figures in docs/reliability.md; speed and memory are figures, not assertions).
//!
//! `HEARTH_LOAD_RATE` (readings/s, default 500) and `HEARTH_LOAD_SECS` (default 60); the soak mode runs
//! `HEARTH_LOAD_RATE=50 HEARTH_LOAD_SECS=3600`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hearth_tests::db::HubDb;
use hearth_tests::hub::{Hub, HubConfig, Rule};
use hearth_tests::load::{CLINICAL_TOML, Load};
use hearth_tests::mosquitto::Mosquitto;
use hearth_tests::survival::wait_stored;
use sqlx::Row;

const DEVICES: [&str; 10] = [
    "dev-1", "dev-2", "dev-3", "dev-4", "dev-5", "dev-6", "dev-7", "dev-8", "dev-9", "dev-10",
];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// (VmRSS, VmHWM) of `pid` in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_absorbed_with_back_pressure_and_no_gaps() {
    let rate = env_u64("HEARTH_LOAD_RATE", 500);
    let secs = env_u64("HEARTH_LOAD_SECS", 60);
    let upstream = Mosquitto::start();
    let mut cfg = HubConfig::new(upstream.port());
    for (i, d) in DEVICES.iter().enumerate() {
        cfg = cfg.patient(&format!("p-{}", i + 1), &[d]);
    }
    // The load's values never breach this: the figure is the reading path's, not the alert path's.
    cfg = cfg
        .rule(Rule::below("spo2", 80.0, "high"))
        .extra_toml(CLINICAL_TOML);
    let mut hub = Hub::start(cfg).await;
    let pid = hub.pid().expect("running");
    let (rss_before, _) = rss_kib(pid);
    let per_device = rate as f64 / DEVICES.len() as f64;
    let load = Load::start_paced(hub.sensors_port(), &DEVICES, Some(per_device)).await;
    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed() < Duration::from_secs(secs) {
        // A pacing loop for the measurement, not a wait for a condition.
        tokio::time::sleep(Duration::from_secs(secs.min(10))).await;
        samples.push(rss_kib(pid).0);
    }
    let sims = load.stop().await;
    let elapsed = started.elapsed();
    let (rss_after, rss_peak) = rss_kib(pid);
    wait_stored(&hub, &sims, Duration::from_secs(60)).await;
    let status = hub.terminate().await;
    assert!(status.success(), "SIGTERM → exit 0, got {status}");

    let lost: Vec<_> = sims.iter().flat_map(|s| s.lost()).collect();
    assert!(
        lost.is_empty(),
        "devices dropped {} publishes (back-pressure must make them wait instead): {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    let mut published: BTreeMap<String, u64> = BTreeMap::new();
    for t in sims.iter().flat_map(|s| s.acked()) {
        let e = published.entry(t.device).or_default();
        *e = (*e).max(t.seq);
    }
    let mut db = HubDb::open(&hub.db_path()).await;
    assert_eq!(db.integrity_check().await, "ok");
    assert_eq!(db.count("quarantine").await, 0, "nothing quarantined");
    let rows =
        sqlx::query("SELECT device, COUNT(*), MIN(seq), MAX(seq) FROM readings GROUP BY device")
            .fetch_all(db.conn())
            .await
            .expect("readings per device");
    let mut total = 0u64;
    for r in &rows {
        let device: String = r.get(0);
        let (n, lo, hi): (i64, i64, i64) = (r.get(1), r.get(2), r.get(3));
        let want = published.get(&device).copied().unwrap_or(0) as i64;
        assert_eq!(
            (n, lo, hi),
            (want, 1, want),
            "{device}: stored (count, min, max) must be exactly 1..={want}"
        );
        total += n as u64;
    }
    assert_eq!(rows.len(), DEVICES.len(), "every device stored readings");
    eprintln!(
        "FIGURE load offered={rate}/s secs={} achieved={:.0}/s readings={total} gaps=0 dropped=0 \
         rss_kib_before={rss_before} rss_kib_samples={samples:?} rss_kib_after={rss_after} rss_kib_peak={rss_peak}",
        elapsed.as_secs(),
        total as f64 / elapsed.as_secs_f64()
    );
}
