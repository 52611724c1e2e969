//! The crash matrix: the daemon is killed (SIGKILL, from a failpoint) at every step of a reading's and an alert's
//! path, under load, then restarted; nothing committed or raised may be lost.
//!
//! Each test arms one point of `hearthd::failpoints` with `FAILPOINTS="{point}={n}*off->return"`: the daemon passes
//! the point `n` times and dies on the next; it is restarted armed again (`HEARTH_MATRIX_ROUNDS` kills per point,
//! default 2), and finally restarted without the failpoint. The test then checks, through
//! [`drain_and_verify`]: zero committed (PubAcked) readings lost, zero alerts lost (every episode the stored readings
//! imply has its alert, every alert message reached the simulated community hub and is marked delivered), the hub
//! saw duplicates only as byte-identical resends of the same (id, rev), per-patient order kept, integrity_check ok,
//! the audit hash chain intact. It also measures how long each restart took to be ready and how long after the last
//! restart every alert message pending at it was delivered, and prints both on a `FIGURE` line (docs/reliability.md).
//!
//! The binary under test must be built with `--features failpoints` (`cargo test --workspace` does that, because
//! this crate enables the feature); a build without it never dies, and the test says so.

use std::time::{Duration, Instant};

use hearth_tests::http;
use hearth_tests::hub::{Hub, HubConfig, Rule, SensorsBroker};
use hearth_tests::load::{CLINICAL_TOML, Load};
use hearth_tests::mosquitto::Mosquitto;
use hearth_tests::ports::free_port;
use hearth_tests::survival::{drain_and_verify, wait_stored};
use hearth_tests::upstream::Receiver;
use hearth_tests::wait::poll_until;
use hearthd::failpoints as fp;
use rand::Rng;

const DEVICES: [&str; 4] = ["dev-1", "dev-2", "dev-3", "dev-4"];
/// The bound for resending what was pending at a restart. A correctness bound (the resend timer and the
/// restart's outbox scan work), not a speed target: measured figures are far below it.
/// Readings per second per device: steady load (100/s in all, a third of them raising or resolving an alert) that
/// the debug build absorbs without a backlog, so each case takes seconds.
const PER_DEVICE_HZ: f64 = 25.0;
const RESENT_WITHIN: Duration = Duration::from_secs(30);

/// Kill rounds per point: `HEARTH_MATRIX_ROUNDS` (default 2; the soak mode runs 10).
fn rounds() -> u32 {
    std::env::var("HEARTH_MATRIX_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2)
        .max(1)
}

/// Where the devices publish.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Via {
    /// The hub's own endpoint: a PubAck means committed.
    Endpoint,
    /// A Mosquitto the hub subscribes to (persistent session, manual acks): a PubAck means the broker has it, and
    /// the hub must take every such reading over, across its restarts.
    Mosquitto,
}

/// Kills the daemon at `point` (after `passes` to `2 × passes` passes, chosen at random each round) and restarts it,
/// [`rounds`] times; then verifies that nothing was lost.
async fn kill_at(point: &'static str, passes: u32, via: Via) {
    assert!(fp::ALL.contains(&point), "{point} is not a failpoint");
    let upstream = Mosquitto::start();
    let receiver = Receiver::start(upstream.port()).await;
    let sensors_broker = (via == Via::Mosquitto).then(Mosquitto::start);
    // A fixed port: the devices must find the embedded endpoint again after the restart.
    let sensors_port = match &sensors_broker {
        Some(m) => m.port(),
        None => free_port(),
    };
    let sensors = match via {
        Via::Endpoint => SensorsBroker::Embedded { port: sensors_port },
        Via::Mosquitto => SensorsBroker::External { port: sensors_port },
    };
    let mut cfg = HubConfig::new(upstream.port()).sensors(sensors);
    for (i, d) in DEVICES.iter().enumerate() {
        cfg = cfg.patient(&format!("p-{}", i + 1), &[d]);
    }
    cfg = cfg
        .rule(Rule::below("spo2", 92.0, "high"))
        .extra_toml(CLINICAL_TOML);
    cfg.resend_after_s = 1;
    let spec = |rng: &mut rand::rngs::ThreadRng| {
        let n = rng.random_range(passes..=2 * passes);
        format!("{point}={n}*off->return")
    };
    let mut rng = rand::rng();
    let mut hub = Hub::start_with_env(cfg, &[("FAILPOINTS", &spec(&mut rng))]).await;
    let load = Load::start_paced(sensors_port, &DEVICES, Some(PER_DEVICE_HZ)).await;

    let rounds = rounds();
    let mut ready = Duration::ZERO;
    let mut restarted = Instant::now();
    for round in 1..=rounds {
        let died = hub.wait_exit(Duration::from_secs(60)).await;
        let hits = hub
            .log_tail(1 << 24)
            .matches(&format!("failpoint {point} hit"))
            .count();
        assert!(
            died.is_some() && hits == round as usize,
            "hearthd did not die at {point} (round {round}) within 60 s under load (exit: {died:?}, hits {hits}). \
             Is target/debug/hearthd built with `--features failpoints`? (`cargo build -p hearthd --features \
             failpoints`). Log tail:\n{}",
            hub.log_tail(3000)
        );
        // Armed again for the next round; the last restart runs clean so delivery can be measured.
        if round == rounds {
            hub.set_env(&[]);
        } else {
            hub.set_env(&[("FAILPOINTS", &spec(&mut rng))]);
        }
        restarted = Instant::now();
        hub.restart().await;
        ready = ready.max(restarted.elapsed());
    }
    let addr = hub.http_addr();
    let outbox = http::get_json(addr, "/api/outbox")
        .await
        .expect("GET /api/outbox");
    let pending: Vec<(String, u64)> = outbox["pending"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["alert_id"].as_str().unwrap_or_default().to_string(),
                p["rev"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    poll_until(
        "every alert message pending at the restart delivered",
        RESENT_WITHIN,
        || async {
            let v = http::get_json(addr, "/api/outbox").await?;
            let still: Vec<_> = v["pending"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| {
                    pending.iter().any(|(id, rev)| {
                        p["alert_id"].as_str() == Some(id) && p["rev"].as_u64() == Some(*rev)
                    })
                })
                .cloned()
                .collect();
            if still.is_empty() {
                Ok(())
            } else {
                Err(format!("{still:?}"))
            }
        },
    )
    .await;
    let resent = restarted.elapsed();

    // The restarted daemon takes load again before the verdict.
    let seen = load.acked_total();
    assert!(
        load.wait_acked_total_above(seen + 20, Duration::from_secs(30))
            .await,
        "no progress after the restart; log tail:\n{}",
        hub.log_tail(3000)
    );
    let sims = load.stop().await;
    if via == Via::Mosquitto {
        wait_stored(&hub, &sims, Duration::from_secs(60)).await;
    }
    let s = drain_and_verify(&mut hub, &receiver, &sims).await;
    assert!(s.acked >= 50, "too little load to mean anything: {s:?}");
    assert!(s.messages > 0, "the load should have raised alerts: {s:?}");
    eprintln!(
        "FIGURE crash_matrix via={via:?} point={point} kills={rounds} max_ready_ms={} pending_at_restart={} (depth {}) all_delivered_ms={} \
         acked={} stored={} alerts={} messages={} resends={}",
        ready.as_millis(),
        pending.len(),
        outbox["depth"],
        resent.as_millis(),
        s.acked,
        s.stored,
        s.alerts,
        s.messages,
        s.resends()
    );
}

/// One test per point and sensors path: `name`, `name_via_mosquitto`: point, passes before the kill.
macro_rules! matrix {
    ($($name:ident, $via_mosquitto:ident: $point:expr, $passes:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            kill_at($point, $passes, Via::Endpoint).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $via_mosquitto() {
            kill_at($point, $passes, Via::Mosquitto).await;
        }
    )*};
}

matrix! {
    kill_when_a_reading_is_received, kill_when_a_reading_is_received_via_mosquitto: fp::READING_RECEIVED, 100;
    kill_when_an_alert_is_raised_before_its_commit, kill_when_an_alert_is_raised_before_its_commit_via_mosquitto:
        fp::ALERT_RAISED, 20;
    kill_after_the_commit_before_the_ack, kill_after_the_commit_before_the_ack_via_mosquitto:
        fp::READING_COMMITTED, 60;
    kill_after_the_outbox_row_is_written, kill_after_the_outbox_row_is_written_via_mosquitto: fp::OUTBOX_WRITTEN, 20;
    kill_after_the_reading_is_acknowledged, kill_after_the_reading_is_acknowledged_via_mosquitto:
        fp::READING_ACKNOWLEDGED, 60;
    kill_after_an_alert_is_published, kill_after_an_alert_is_published_via_mosquitto: fp::ALERT_PUBLISHED, 20;
    kill_when_the_broker_pubacks_an_alert, kill_when_the_broker_pubacks_an_alert_via_mosquitto: fp::ALERT_PUBACK, 20;
    kill_when_the_community_hub_acks_an_alert, kill_when_the_community_hub_acks_an_alert_via_mosquitto:
        fp::ALERT_ACKED, 20;
    kill_after_delivery_is_committed, kill_after_delivery_is_committed_via_mosquitto: fp::ALERT_DELIVERED, 20;
}
