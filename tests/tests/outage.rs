//! The community hub's broker goes away under load and comes back.
//!
//! While it is away the hub keeps raising alerts into its outbox and raises the technical `upstream_unreachable`
//! alert; once it is back, every alert is delivered in per-patient raise order and the outbox drains.

use std::time::Duration;

use hearth_tests::check::assert_delivered_in_order;
use hearth_tests::db::HubDb;
use hearth_tests::http;
use hearth_tests::hub::{Hub, HubConfig, Rule};
use hearth_tests::load::Load;
use hearth_tests::mosquitto::Mosquitto;
use hearth_tests::upstream::Receiver;
use hearth_tests::wait::poll_until;

const DEVICES: [&str; 3] = ["dev-1", "dev-2", "dev-3"];
const T: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_raised_during_an_upstream_outage_are_delivered_in_order_afterwards() {
    let mut upstream = Mosquitto::start();
    let receiver = Receiver::start(upstream.port()).await;
    let mut cfg = HubConfig::new(upstream.port());
    for (i, d) in DEVICES.iter().enumerate() {
        cfg = cfg.patient(&format!("p-{}", i + 1), &[d]);
    }
    // The load breaches and recovers over and over: flap control would hold one alert open per patient, and this
    // test needs alerts raised throughout the outage (hearth_tests::load::CLINICAL_TOML).
    cfg = cfg
        .rule(Rule::below("spo2", 92.0, "high"))
        .extra_toml(hearth_tests::load::CLINICAL_TOML);
    cfg.resend_after_s = 1;
    cfg.heartbeat_s = 1;
    cfg.unreachable_alert_after_s = 2;
    let hub = Hub::start(cfg).await;
    let addr = hub.http_addr();
    // Paced: every sixth reading opens an alert and the next normal one resolves it, so 50 readings/s per device
    // leave a few hundred messages to drain. Unpaced, the backlog grew with the machine's speed (1,300 messages on a
    // fast run) and the test measured drain throughput, which belongs in the benchmark (docs/performance.md).
    let load = Load::start_paced(hub.sensors_port(), &DEVICES, Some(50.0)).await;

    // Up: alerts flow.
    receiver.wait_for_alert(T, |a| a.kind != "technical").await;
    upstream.stop();
    poll_until("hearth_upstream_connected = 0", T, || async {
        let v = http::metric(
            &http::metrics(addr).await?,
            "hearth_upstream_connected",
            &[],
        );
        if v == Some(0.0) {
            Ok(())
        } else {
            Err(format!("{v:?}"))
        }
    })
    .await;

    // Down: alerts keep being raised and pile up in the outbox.
    let raised_at_outage = http::metric(
        &http::metrics(addr).await.unwrap(),
        "hearth_alerts_raised_total",
        &[],
    )
    .unwrap_or(0.0);
    poll_until(
        "alerts raised and held in the outbox during the outage",
        T,
        || async {
            let raised = http::metric(
                &http::metrics(addr).await?,
                "hearth_alerts_raised_total",
                &[],
            )
            .unwrap_or(0.0);
            let depth = http::get_json(addr, "/api/outbox").await?["depth"]
                .as_u64()
                .unwrap_or(0);
            if raised >= raised_at_outage + 6.0 && depth >= 6 {
                Ok(())
            } else {
                Err(format!("raised {raised}, depth {depth}"))
            }
        },
    )
    .await;
    let technical = poll_until("a technical upstream_unreachable alert", T, || async {
        let alerts = http::get_json(addr, "/api/alerts").await?;
        alerts
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|x| {
                        x["kind"] == "technical" && x.to_string().contains("upstream_unreachable")
                    })
                    .cloned()
            })
            .ok_or_else(|| alerts.to_string().chars().take(2000).collect())
    })
    .await;
    assert_eq!(
        technical["patient"], "home",
        "a hub-wide technical alert belongs to \"home\": {technical}"
    );
    let sims = load.stop().await;
    assert!(sims.iter().all(|s| !s.acked().is_empty()));

    // Back: everything is delivered, in order, and the outbox drains.
    upstream.start_again();
    poll_until(
        "outbox drained after the upstream returned",
        Duration::from_secs(60),
        || async {
            let v = http::get_json(addr, "/api/outbox").await?;
            if v["depth"] == 0 {
                Ok(())
            } else {
                Err(v.to_string().chars().take(500).collect())
            }
        },
    )
    .await;
    let outbox = HubDb::open(&hub.db_path()).await.outbox().await;
    assert_delivered_in_order(&outbox, &receiver.received());
    let tech_id = technical["id"].as_str().unwrap().to_string();
    assert!(
        receiver.alerts().iter().any(|a| a.id == tech_id),
        "the upstream_unreachable alert was delivered too"
    );
}
