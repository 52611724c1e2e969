//! Power loss, not just kill: the daemon runs under an `LD_PRELOAD` shim that remembers every write to its database
//! files that no fsync has made durable yet ([`hearth_tests::power_cut`]). At random moments under load it is
//! SIGKILLed and its unsynced writes are thrown away — all of them (a volatile write cache lost whole), or, at half
//! the cuts, a random subset of them (a disk that had persisted some, in any order) — and it is restarted on what
//! remains.
//!
//! Checked: `PRAGMA integrity_check` is ok after every cut (on the database the restarted daemon recovered), and at
//! the end [`drain_and_verify`]: every reading a device saw acknowledged (reported durable) is there, every alert the
//! stored readings imply exists and reached the community hub in order, the audit chain holds. The test also
//! requires that the cuts did discard writes (else it proved nothing) and prints how many on a `FIGURE` line.
//!
//! `HEARTH_POWER_CUTS` sets the number of cuts (default 8 in CI; the soak mode runs 100).

use std::time::Duration;

use hearth_tests::db::HubDb;
use hearth_tests::hub::{Hub, HubConfig, Rule, SensorsBroker};
use hearth_tests::load::{CLINICAL_TOML, Load};
use hearth_tests::mosquitto::Mosquitto;
use hearth_tests::ports::free_port;
use hearth_tests::power_cut::{self, Cut, Discarded};
use hearth_tests::survival::drain_and_verify;
use hearth_tests::upstream::Receiver;
use rand::Rng;

const DEVICES: [&str; 4] = ["dev-1", "dev-2", "dev-3", "dev-4"];
/// A slow disk: each database fsync takes 3 ms longer, so a kill often lands with writes unsynced.
const FSYNC_DELAY_US: u64 = 3_000;

fn cuts() -> u32 {
    std::env::var("HEARTH_POWER_CUTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_was_reported_durable_survives_power_cuts_that_lose_unsynced_writes() {
    let upstream = Mosquitto::start();
    let receiver = Receiver::start(upstream.port()).await;
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
    // The database path is known once the hub exists: stop it cleanly and run it under the shim from now on.
    let db = hub.db_path();
    let env = power_cut::env(&db, FSYNC_DELAY_US);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    hub.set_env(&env);
    assert!(hub.terminate().await.success());
    hub.restart().await;
    let load = Load::start_paced(sensors_port, &DEVICES, Some(50.0)).await;

    let n = cuts();
    let mut rng = rand::rng();
    let mut total = Discarded::default();
    let mut with_loss = 0;
    for k in 0..n {
        let seen = load.acked_total();
        assert!(
            load.wait_acked_total_above(seen, Duration::from_secs(20))
                .await,
            "no reading acknowledged after start #{} (cut {k}); log tail:\n{}",
            hub.starts(),
            hub.log_tail(3000)
        );
        // The moment of the cut is the test's random choice, not a wait for a condition.
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..400))).await;
        hub.kill9();
        // Half the cuts lose every unsynced write; the others keep a random subset of them.
        let cut = if rng.random_bool(0.5) {
            Cut::DropAll
        } else {
            Cut::KeepSome(rng.random())
        };
        let d = power_cut::discard_unsynced(&db, cut);
        total.writes += d.writes;
        total.bytes += d.bytes;
        total.kept += d.kept;
        with_loss += u32::from(d.writes > 0);
        hub.restart().await;
        let ok = HubDb::open(&db).await.integrity_check().await;
        assert_eq!(ok, "ok", "integrity_check after power cut {k} ({d:?})");
    }
    let sims = load.stop().await;
    let s = drain_and_verify(&mut hub, &receiver, &sims).await;
    assert!(
        total.writes > 0,
        "no power cut found an unsynced write: the shim saw nothing, so this run proved nothing"
    );
    eprintln!(
        "FIGURE power_loss cuts={n} cuts_with_unsynced_writes={with_loss} unsynced_writes={} unsynced_bytes={} \
         of_which_kept={} \
         acked={} stored={} alerts={} messages={} resends={}",
        total.writes,
        total.bytes,
        total.kept,
        s.acked,
        s.stored,
        s.alerts,
        s.messages,
        s.resends()
    );
}
