//! `hearthd demo`: a whole home on one machine with no external service.
//!
//! The daemon runs on its embedded MQTT endpoint and a fresh database; an in-process rumqttd plays the community
//! hub's broker, and the real community hub (`hearth-community`, in-process through its library, on SQLite in the
//! same temporary directory) receives the alerts, acknowledges them end to end and serves the nurse dashboard with a
//! demo login. A simulated home sends readings for three patients — one deteriorates, then recovers, and her carer
//! reports soft signs; one is a COPD patient whose low SpO2 is within the personal baseline a clinician agreed. Each
//! alert is also printed (with its SBARD handover) as it reaches the community hub; a nurse who acknowledges it in the
//! browser stops the home's escalation.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, anyhow};
use hearth_community::live::LiveEvent;
use hearth_community::store::AlertRow;
use hearth_protocol::json;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, DEFAULT_CONFIG};
use crate::{broker, daemon};

/// Seconds between simulated readings of each device.
const EVERY_S: u64 = 2;
/// The dashboard's demo account (loopback only, a throwaway database).
const DEMO_USER: &str = "nurse";
const DEMO_PASSWORD: &str = "hearth-demo";

pub async fn run(shutdown: CancellationToken, duration_s: Option<u64>) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    // The community hub's broker, played by an in-process rumqttd.
    let community = tokio::task::spawn_blocking(|| {
        broker::start_embedded(SocketAddr::from(([127, 0, 0, 1], 0)), 100)
    })
    .await??;
    let mut cfg = Config::parse(DEFAULT_CONFIG, std::path::Path::new("<embedded default>"))?;
    cfg.sensors.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    cfg.upstream.broker = format!("mqtt://{community}");
    cfg.upstream.heartbeat_s = 10;
    cfg.http.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    cfg.storage.path = dir.path().join("hearth.db");
    cfg.alerting.escalate_after_s = 90;
    // The demo plays hours of deterioration in about a minute, so NEWS2's re-check delay (240 s at home) shrinks with
    // it: a changed value is confirmed by the readings of the next 6 s (docs/clinical-rules.md, Confirmation).
    cfg.clinical.news2_confirm.after_s = 6;
    let home = cfg.home.id.clone();
    let care_prefix = cfg.upstream.topic_prefix.clone();
    let hub_prefix = cfg.sensors.topic_prefix.clone();

    // The community hub, on the same broker.
    let mut ccfg = hearth_community::config::Config::default_config();
    ccfg.mqtt.broker = format!("mqtt://{community}");
    ccfg.mqtt.topic_prefix = care_prefix.clone();
    // One instance; the in-process broker's shared subscriptions did not deliver to it.
    ccfg.mqtt.share_group = String::new();
    ccfg.database.url = format!("sqlite://{}", dir.path().join("community.db").display());
    ccfg.http.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    // Plain http on loopback: some browsers refuse Secure cookies on http://127.0.0.1.
    ccfg.http.secure_cookies = false;
    let stop_community = shutdown.child_token();
    let running = hearth_community::service::start(
        ccfg,
        hearth_community::clock::AnyClock::System(Default::default()),
        stop_community.clone(),
    )
    .await
    .context("starting the community hub")?;
    let hash = hearth_community::accounts::hash_password(DEMO_PASSWORD)?;
    running
        .store
        .add_user(DEMO_USER, "nurse", &hash, SystemClock.now_ms())
        .await?;
    let dashboard = running.http;

    let stop = shutdown.child_token();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let daemon_stop = stop.clone();
    let mut daemon = tokio::spawn(async move {
        daemon::run(cfg, SystemClock, daemon_stop, move |b| {
            let _ = ready_tx.send(b.clone());
        })
        .await
    });
    let bound = tokio::select! {
        b = ready_rx => b.map_err(|_| anyhow!("the daemon stopped before it was ready"))?,
        r = &mut daemon => return r?.and(Err(anyhow!("the daemon stopped before it was ready"))),
    };

    println!();
    println!("Hearth demo — home {home}");
    let sensors = bound.sensors_broker;
    println!("  hub daemon ready; devices reach its MQTT endpoint on {sensors}");
    println!("  the community hub's broker is on {community}");
    println!();
    println!("  NURSE DASHBOARD:  http://{dashboard}/   log in as {DEMO_USER} / {DEMO_PASSWORD}");
    println!(
        "  (acknowledge an alert there and the home stops escalating it; escalation here is after {} s)",
        90
    );
    println!();
    println!(
        "  technician API:  http://{}/api/alerts  /api/devices  /api/quarantine  /metrics",
        bound.http
    );
    println!(
        "  simulated home: p-0001 deteriorates then recovers, p-0002 is well, p-0003 (COPD) sits at her baseline"
    );
    println!("  Ctrl-C stops.\n");
    println!(
        "Community nurse view (alerts as the community hub stores them and acknowledges them end to end):"
    );

    let nurse = tokio::spawn(print_alerts(
        running.store.clone(),
        running.live.subscribe(),
        stop.clone(),
    ));
    let sim = tokio::spawn(simulated_home(
        bound.sensors_broker,
        hub_prefix,
        stop.clone(),
    ));

    let outcome = tokio::select! {
        _ = shutdown.cancelled() => Ok(()),
        _ = async { tokio::time::sleep(Duration::from_secs(duration_s.unwrap_or(u64::MAX / 4))).await } => Ok(()),
        r = &mut daemon => r?.and(Err(anyhow!("the daemon stopped unexpectedly"))),
    };
    stop.cancel();
    let _ = sim.await;
    let _ = nurse.await;
    if !daemon.is_finished() {
        daemon.await??;
    }
    stop_community.cancel();
    running.join().await;
    println!("\nDemo stopped cleanly.");
    outcome
}

fn mqtt(id: &str, broker: SocketAddr) -> (AsyncClient, rumqttc::EventLoop) {
    let mut opts = MqttOptions::new(id, broker.ip().to_string(), broker.port());
    opts.set_keep_alive(Duration::from_secs(15));
    AsyncClient::new(opts, 64)
}

/// Prints each alert the community hub stores, as a community nurse would see it.
async fn print_alerts(
    store: hearth_community::store::Store,
    mut live: tokio::sync::broadcast::Receiver<LiveEvent>,
    stop: CancellationToken,
) {
    // Each revision once (a nurse's action also announces the alert, unchanged until the home answers).
    let mut printed = std::collections::HashSet::new();
    loop {
        let ev = tokio::select! {
            _ = stop.cancelled() => break,
            ev = live.recv() => ev,
        };
        match ev {
            Ok(LiveEvent::Alerts(ids)) => {
                for id in ids {
                    if let Ok(Some(a)) = store.alert(&id).await
                        && printed.insert((a.id.clone(), a.rev))
                    {
                        println!("{}", nurse_line(&a));
                        // A new clinical alert comes with its handover.
                        let details: serde_json::Value = a
                            .details
                            .as_deref()
                            .and_then(|d| serde_json::from_str(d).ok())
                            .unwrap_or_default();
                        if a.rev == 1
                            && let Some(text) = details["sbard"]["text"].as_str()
                        {
                            println!("        {text}");
                        }
                    }
                }
            }
            Ok(LiveEvent::Homes) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(_) => break,
        }
    }
}

fn nurse_line(a: &AlertRow) -> String {
    let at = json::format_rfc3339_millis(SystemClock.now_ms());
    let short_id: String = a.id.chars().take(8).collect();
    format!(
        "  {}  {:<6} {:<12} {:<7} {:<10} {}  [alert {short_id} rev {}]",
        &at[11..19],
        a.severity.to_uppercase(),
        a.state,
        a.patient,
        a.kind,
        a.message,
        a.rev
    )
}

/// Three patients' devices publishing the JSON interop format.
async fn simulated_home(broker: SocketAddr, prefix: String, stop: CancellationToken) {
    let (client, mut events) = mqtt("demo-home-gateway", broker);
    let poller = stop.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = poller.cancelled() => break,
                ev = events.poll() => if ev.is_err() { tokio::time::sleep(Duration::from_millis(200)).await },
            }
        }
    });
    let mut tick = tokio::time::interval(Duration::from_secs(EVERY_S));
    for step in 0u32.. {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let t = json::format_rfc3339_millis(SystemClock.now_ms());
        let (spo2, hr) = deteriorating(step);
        let readings = [
            (
                "oximeter-0001",
                format!(
                    r#"{{"seq":{},"t":"{t}","obs":{{"spo2":{spo2},"heart_rate":{hr}}}}}"#,
                    step + 1
                ),
            ),
            (
                "oximeter-0002",
                format!(
                    r#"{{"seq":{},"t":"{t}","obs":{{"spo2":{},"heart_rate":72}}}}"#,
                    step + 1,
                    96 + step % 2
                ),
            ),
            (
                "oximeter-0003",
                format!(
                    r#"{{"seq":{},"t":"{t}","obs":{{"spo2":{},"heart_rate":84}}}}"#,
                    step + 1,
                    88 + step % 3
                ),
            ),
        ];
        for (device, body) in readings {
            let _ = client
                .publish(
                    format!("{prefix}/readings/{device}"),
                    QoS::AtLeastOnce,
                    false,
                    body,
                )
                .await;
        }
        if step == 8 {
            // A carer notices what no sensor measures (RESTORE2 soft signs), and reports consciousness and oxygen,
            // which completes p-0001's NEWS2.
            let body = format!(
                r#"{{"checkin_id":"demo-1","reporter":"carer","at":"{t}","consciousness":"alert","oxygen":false,"soft_signs":["not_usual_self","more_sleepy"],"note":"very tired this morning"}}"#
            );
            let _ = client
                .publish(
                    format!("{prefix}/checkins/p-0001"),
                    QoS::AtLeastOnce,
                    false,
                    body,
                )
                .await;
        }
        if step == 3 {
            // A gateway that was never enrolled: quarantined with a reason, counted, never scored.
            let body = format!(r#"{{"seq":1,"t":"{t}","obs":{{"spo2":70}}}}"#);
            let _ = client
                .publish(
                    format!("{prefix}/readings/unknown-gw-9"),
                    QoS::AtLeastOnce,
                    false,
                    body,
                )
                .await;
        }
    }
}

/// p-0001: well, then SpO2 falls and the pulse climbs over a minute, then recovery.
fn deteriorating(step: u32) -> (u32, u32) {
    const SPO2: [u32; 20] = [
        96, 96, 95, 95, 94, 93, 93, 92, 91, 90, 89, 89, 88, 89, 90, 92, 93, 94, 95, 96,
    ];
    const HR: [u32; 20] = [
        82, 84, 88, 92, 98, 104, 110, 116, 122, 128, 133, 135, 134, 130, 122, 112, 104, 96, 90, 86,
    ];
    let i = (step as usize / 2).min(SPO2.len() - 1);
    (SPO2[i], HR[i])
}
