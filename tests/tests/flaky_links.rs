//! Flaky and dead links: a fault proxy ([`FaultProxy`]) sits between the hub and both of its brokers — the sensors'
//! Mosquitto and the community hub's — and closes, resets and stalls connections at random (seeded) while devices
//! publish and alerts flow. Then the links calm down and everything must converge: no reading the sensors' broker
//! accepted is lost, no alert is lost, per-patient order is kept, and every duplicate the community hub saw is a
//! byte-identical resend of the same (id, rev) (the receiver is idempotent on it).
//!
//! A second case puts the proxy between the devices and the hub's own endpoint (PubAck = committed).
//!
//! `HEARTH_PROXY_SECS` sets how long the faults last (default 25 s in CI; the soak mode runs 600 s);
//! `HEARTH_PROXY_SEED` replays a schedule (the seed is printed on the `FIGURE` line and in failures).

use std::net::SocketAddr;
use std::time::Duration;

use hearth_tests::hub::{Hub, HubConfig, Rule, SensorsBroker};
use hearth_tests::load::{CLINICAL_TOML, Load};
use hearth_tests::mosquitto::Mosquitto;
use hearth_tests::proxy::{FaultProxy, Faults};
use hearth_tests::survival::{drain_and_verify, wait_stored};
use hearth_tests::upstream::Receiver;

const DEVICES: [&str; 4] = ["dev-1", "dev-2", "dev-3", "dev-4"];
const PER_DEVICE_HZ: f64 = 20.0;

fn faulty_for() -> Duration {
    let s = std::env::var("HEARTH_PROXY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(25);
    Duration::from_secs(s)
}

fn seed() -> u64 {
    std::env::var("HEARTH_PROXY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random)
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn config(upstream_port: u16, sensors: SensorsBroker) -> HubConfig {
    let mut cfg = HubConfig::new(upstream_port).sensors(sensors);
    for (i, d) in DEVICES.iter().enumerate() {
        cfg = cfg.patient(&format!("p-{}", i + 1), &[d]);
    }
    cfg = cfg
        .rule(Rule::below("spo2", 92.0, "high"))
        .extra_toml(CLINICAL_TOML);
    cfg.resend_after_s = 1;
    cfg
}

/// Runs the load for [`faulty_for`] with the proxies rough, then calms them and lets everything converge.
async fn run_faulty(proxies: &[&FaultProxy], load: &Load, hub: &Hub) {
    let faulty = faulty_for();
    let end = tokio::time::Instant::now() + faulty;
    // Progress must continue through the faults: check every few seconds that PubAcks still arrive.
    while tokio::time::Instant::now() < end {
        let seen = load.acked_total();
        let step = (end - tokio::time::Instant::now()).min(Duration::from_secs(5));
        tokio::time::sleep(step).await;
        assert!(
            load.wait_acked_total_above(seen, Duration::from_secs(30))
                .await,
            "no reading acknowledged for 30 s under faults; hub log tail:\n{}",
            hub.log_tail(3000)
        );
    }
    for p in proxies {
        p.calm();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_or_reordered_through_flaky_links_to_both_brokers() {
    let seed = seed();
    let upstream = Mosquitto::start();
    let sensors = Mosquitto::start();
    let receiver = Receiver::start(upstream.port()).await;
    let up = FaultProxy::start(loopback(upstream.port()), seed, Faults::default()).await;
    let down = FaultProxy::start(
        loopback(sensors.port()),
        seed.wrapping_add(1),
        Faults::default(),
    )
    .await;
    let cfg = config(up.port(), SensorsBroker::External { port: down.port() });
    let mut hub = Hub::start(cfg).await;
    // The devices publish to the sensors' broker directly; the flaky link is the hub's.
    let load = Load::start_paced(sensors.port(), &DEVICES, Some(PER_DEVICE_HZ)).await;
    run_faulty(&[&up, &down], &load, &hub).await;
    let sims = load.stop().await;
    wait_stored(&hub, &sims, Duration::from_secs(60)).await;
    let s = drain_and_verify(&mut hub, &receiver, &sims).await;
    assert!(s.messages > 0, "the load should have raised alerts: {s:?}");
    eprintln!(
        "FIGURE flaky_links both_brokers seed={seed} secs={} upstream[{}] sensors[{}] acked={} stored={} alerts={} \
         messages={} resends={}",
        faulty_for().as_secs(),
        up.stats().summary(),
        down.stats().summary(),
        s.acked,
        s.stored,
        s.alerts,
        s.messages,
        s.resends()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_committed_is_lost_through_a_flaky_link_to_the_hubs_endpoint() {
    let seed = seed();
    let upstream = Mosquitto::start();
    let receiver = Receiver::start(upstream.port()).await;
    let up = FaultProxy::start(loopback(upstream.port()), seed, Faults::default()).await;
    let mut hub = Hub::start(config(up.port(), SensorsBroker::Embedded { port: 0 })).await;
    let down = FaultProxy::start(
        loopback(hub.sensors_port()),
        seed.wrapping_add(1),
        Faults::default(),
    )
    .await;
    let load = Load::start_paced(down.port(), &DEVICES, Some(PER_DEVICE_HZ)).await;
    run_faulty(&[&up, &down], &load, &hub).await;
    let sims = load.stop().await;
    let s = drain_and_verify(&mut hub, &receiver, &sims).await;
    assert!(s.messages > 0, "the load should have raised alerts: {s:?}");
    eprintln!(
        "FIGURE flaky_links endpoint seed={seed} secs={} upstream[{}] sensors[{}] acked={} stored={} alerts={} \
         messages={} resends={}",
        faulty_for().as_secs(),
        up.stats().summary(),
        down.stats().summary(),
        s.acked,
        s.stored,
        s.alerts,
        s.messages,
        s.resends()
    );
}
