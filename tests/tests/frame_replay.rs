//! Board frames cannot be replayed, not even across a restart: the last committed sequence per device is persisted
//! with the readings, so a recorded frame sent again after the hub restarts is acknowledged as a duplicate (if it
//! was stored) or quarantined as `replayed_sequence` (if it never was), and in neither case stored or scored.

use std::time::Duration;

use hearth_tests::db::HubDb;
use hearth_tests::frames::board_frame;
use hearth_tests::hub::{Hub, HubConfig, Rule, SensorsBroker};
use hearth_tests::mosquitto::Mosquitto;
use hearth_tests::ports::free_port;
use hearth_tests::sensors::{SensorSim, Tag};
use hearth_tests::wait::poll_until;
use hearth_tests::{http, upstream::Receiver};

const T: Duration = Duration::from_secs(10);
const KEY: [u8; 32] = [0x42; 32];
const TOPIC: &str = "hub/frames/board-1";

fn tag(seq: u64) -> Tag {
    Tag {
        device: "board-1".into(),
        seq,
    }
}

/// Sends a frame and waits for its PubAck (embedded endpoint: after the commit of its fate).
async fn send(sim: &SensorSim, frame: Vec<u8>, seq: u64, times: usize) {
    sim.publish_raw(TOPIC, frame, tag(seq));
    sim.wait_acked(&tag(seq), times, T).await;
}

async fn wait_metric(hub: &Hub, name: &str, labels: &[(&str, &str)], want: f64) {
    let addr = hub.http_addr();
    poll_until(&format!("{name}{labels:?} = {want}"), T, || async {
        let v = http::metric(&http::metrics(addr).await?, name, labels).unwrap_or(0.0);
        if v == want {
            Ok(())
        } else {
            Err(format!("{v}"))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_frame_is_refused_after_a_hub_restart() {
    let upstream = Mosquitto::start();
    let receiver = Receiver::start(upstream.port()).await;
    let port = free_port();
    let mut hub = Hub::start(
        HubConfig::new(upstream.port())
            .sensors(SensorsBroker::Embedded { port })
            .patient("p-b", &["board-1"])
            .device_with_key("board-1", &hex::encode(KEY))
            .rule(Rule::below("spo2", 92.0, "high")),
    )
    .await;
    let sim = SensorSim::connect(port, "board-1-link").await;

    // What an attacker on the link records: seq 1 (jammed, never reached the hub), 2 and 3 (committed).
    let recorded: Vec<Vec<u8>> = (1..=3)
        .map(|s| board_frame("board-1", s, 85, &KEY))
        .collect();
    send(&sim, recorded[1].clone(), 2, 1).await;
    send(&sim, recorded[2].clone(), 3, 1).await;
    let first = receiver.wait_for_alert(T, |a| a.patient == "p-b").await;
    assert_eq!(first.seq, Some(2));

    hub.kill9();
    hub.restart().await;
    sim.wait_connected(T).await;

    // Every recorded frame, replayed after the restart.
    send(&sim, recorded[2].clone(), 3, 2).await;
    send(&sim, recorded[1].clone(), 2, 2).await;
    send(&sim, recorded[0].clone(), 1, 1).await;
    wait_metric(&hub, "hearth_readings_duplicate_total", &[], 2.0).await;
    wait_metric(
        &hub,
        "hearth_readings_quarantined_total",
        &[("reason", "replayed_sequence")],
        1.0,
    )
    .await;
    let samples = http::metrics(hub.http_addr()).await.unwrap();
    assert_eq!(
        http::metric(&samples, "hearth_readings_committed_total", &[]).unwrap_or(0.0),
        0.0,
        "nothing replayed was stored"
    );
    let mut db = HubDb::open(&hub.db_path()).await;
    assert_eq!(
        db.reading_keys().await,
        vec![("board-1".to_string(), 2), ("board-1".to_string(), 3)]
    );

    // The board itself carries on: its next frame is stored.
    send(&sim, board_frame("board-1", 4, 97, &KEY), 4, 1).await;
    wait_metric(&hub, "hearth_readings_committed_total", &[], 1.0).await;
    let alerts: Vec<_> = receiver
        .alerts_dedup()
        .into_iter()
        .filter(|a| a.patient == "p-b")
        .map(|a| (a.id, a.rev))
        .collect();
    assert!(
        alerts.iter().all(|(id, _)| *id == first.id),
        "no replay raised a new alert: {alerts:?}"
    );
}
