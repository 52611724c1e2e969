//! The fixtures themselves work, against real brokers and real files (no hearthd needed).

use std::time::Duration;

use hearth_tests::db::HubDb;
use hearth_tests::hub::{Hub, HubConfig, Rule, SensorsBroker};
use hearth_tests::mosquitto::Mosquitto;
use hearth_tests::sensors::{SensorSim, Tag};
use hearth_tests::time_fmt;
use hearth_tests::upstream::Receiver;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;
use tokio::sync::mpsc;

const T: Duration = Duration::from_secs(10);

#[test]
fn mosquitto_fixture_starts_on_a_free_port() {
    let a = Mosquitto::start();
    let b = Mosquitto::start();
    assert_ne!(a.port(), b.port());
    assert_ne!(
        a.port(),
        1883,
        "must never use the machine's shared broker port"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", a.port())).is_ok());
    assert_eq!(a.url(), format!("mqtt://127.0.0.1:{}", a.port()));
}

#[test]
fn mosquitto_fixture_stops_and_starts_again_on_the_same_port() {
    let mut m = Mosquitto::start();
    let port = m.port();
    m.stop();
    assert!(!m.is_running());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port still open after stop"
    );
    m.start_again();
    assert_eq!(m.port(), port);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
}

/// A plain MQTT client that forwards every publish on `filter` into a channel.
async fn spy(port: u16, filter: &str) -> (AsyncClient, mpsc::UnboundedReceiver<(String, Vec<u8>)>) {
    let (client, mut el) = AsyncClient::new(
        MqttOptions::new(format!("spy-{}", rand::random::<u32>()), "127.0.0.1", port),
        100,
    );
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let (sub_tx, mut sub_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(ev) = el.poll().await {
            match ev {
                Event::Incoming(Packet::Publish(p)) => {
                    let _ = tx.send((p.topic.clone(), p.payload.to_vec()));
                }
                Event::Incoming(Packet::SubAck(_)) => {
                    let _ = sub_tx.send(());
                }
                _ => {}
            }
        }
    });
    tokio::time::timeout(T, sub_rx.recv())
        .await
        .expect("spy SubAck");
    (client, rx)
}

fn alert(id: &str, rev: u64) -> String {
    json!({"id": id, "rev": rev, "home": "home-x", "patient": "p-1", "severity": "high", "state": "open",
           "kind": "clinical", "rule": "spo2_below_92", "raised_at": "2026-11-22T10:00:00Z", "message": "m"})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_receiver_records_alerts_and_acks_them_through_a_real_mosquitto() {
    let broker = Mosquitto::start();
    let receiver = Receiver::start(broker.port()).await;
    let (hub, mut acks) = spy(broker.port(), "care/acks/#").await;

    receiver.set_acking(false);
    hub.publish("care/alerts/p-1", QoS::AtLeastOnce, false, alert("a-1", 1))
        .await
        .unwrap();
    receiver.wait_for_alert(T, |a| a.id == "a-1").await;
    receiver.set_acking(true);
    hub.publish("care/alerts/p-1", QoS::AtLeastOnce, false, alert("a-2", 1))
        .await
        .unwrap();
    hub.publish("care/alerts/p-1", QoS::AtLeastOnce, false, alert("a-2", 1))
        .await
        .unwrap();
    hub.publish("care/alerts/p-1", QoS::AtLeastOnce, false, alert("a-2", 2))
        .await
        .unwrap();

    // Acks come in receive order, so the first ack being a-2 proves a-1 (received while acking was off) got none.
    let (topic, body) = tokio::time::timeout(T, acks.recv()).await.unwrap().unwrap();
    assert_eq!(topic, "care/acks/home-x");
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body, json!({"acks": [{"id": "a-2", "rev": 1}]}));

    let all = receiver
        .wait_for_alerts(T, "4 messages", |a| (a.len() == 4).then(|| a.to_vec()))
        .await;
    let keys: Vec<_> = all.iter().map(|a| a.key()).collect();
    assert_eq!(
        keys,
        [
            ("a-1".into(), 1),
            ("a-2".into(), 1),
            ("a-2".into(), 1),
            ("a-2".into(), 2)
        ]
    );
    let dedup: Vec<_> = receiver.alerts_dedup().iter().map(|a| a.key()).collect();
    assert_eq!(
        dedup,
        [("a-1".into(), 1), ("a-2".into(), 1), ("a-2".into(), 2)]
    );
    assert_eq!(receiver.received()[0].topic, "care/alerts/p-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_receiver_comes_back_after_its_broker_restarts() {
    let mut broker = Mosquitto::start();
    let receiver = Receiver::start(broker.port()).await;
    broker.stop();
    broker.start_again();
    // The receiver resubscribes on its own; a publisher that retries until the alert is seen stands in for the hub.
    let (hub, _) = spy(broker.port(), "unused/#").await;
    let deadline = tokio::time::Instant::now() + T;
    while receiver.alerts().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "receiver never came back"
        );
        hub.publish("care/alerts/p-9", QoS::AtLeastOnce, false, alert("a-9", 1))
            .await
            .unwrap();
        let _ = tokio::time::timeout(
            Duration::from_millis(200),
            receiver.wait_for_alerts(T, "", |a| a.first().cloned()),
        )
        .await;
    }
    assert_eq!(receiver.alerts()[0].id, "a-9");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensor_simulator_records_pubacks_and_loses_only_unacked_publishes() {
    let mut broker = Mosquitto::start();
    let (_c, mut seen) = spy(broker.port(), "hub/readings/#").await;
    let sim = SensorSim::connect(broker.port(), "sim-1").await;
    let now = time_fmt::now();
    let mut tags = Vec::new();
    for seq in 1..=200 {
        tags.push(sim.publish_reading("dev-1", seq, Some(now), json!({"spo2": 97})));
    }
    for t in &tags {
        sim.wait_acked(t, 1, T).await;
    }
    assert_eq!(sim.acked(), tags, "every publish PubAcked once, in order");
    assert_eq!(sim.outstanding(), 0);
    let (topic, body) = seen.recv().await.unwrap();
    assert_eq!(topic, "hub/readings/dev-1");
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["seq"], 1);
    assert_eq!(body["obs"], json!({"spo2": 97}));
    assert_eq!(time_fmt::parse(body["t"].as_str().unwrap()), Some(now));

    // The same tag twice: two PubAcks.
    let dup = sim.publish_reading("dev-1", 1, None, json!({"spo2": 97}));
    sim.wait_acked(&dup, 2, T).await;
    assert_eq!(sim.ack_count(&dup), 2);
    assert!(sim.lost().is_empty());

    broker.stop();
    broker.start_again();
    sim.wait_connected(T).await;
    let after = sim.publish_reading("dev-1", 500, None, json!({"spo2": 97}));
    sim.wait_acked(&after, 1, T).await;
    assert_eq!(
        sim.acked().last(),
        Some(&Tag {
            device: "dev-1".into(),
            seq: 500
        })
    );
}

#[test]
fn hub_config_builder_writes_the_contract_toml() {
    let cfg = HubConfig::new(4321)
        .sensors(SensorsBroker::External { port: 5555 })
        .patient("p-1", &["dev-1"])
        .patient_rule("p-1", Rule::below("spo2", 88.0, "high"))
        .device("dev-3")
        .rule(Rule::below("spo2", 92.0, "high").hysteresis(1.0).for_s(120))
        .rule(Rule::above("temp", 38.5, "medium"));
    let text = cfg.to_toml(std::path::Path::new("/tmp/x y/hearth.db"));
    let v: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(v["home"]["id"].as_str(), Some("home-e2e"));
    assert_eq!(
        v["sensors"]["broker"].as_str(),
        Some("mqtt://127.0.0.1:5555")
    );
    assert_eq!(
        v["upstream"]["broker"].as_str(),
        Some("mqtt://127.0.0.1:4321")
    );
    assert_eq!(v["storage"]["path"].as_str(), Some("/tmp/x y/hearth.db"));
    assert_eq!(v["http"]["listen"].as_str(), Some("127.0.0.1:0"));
    assert_eq!(v["patients"][0]["devices"][0].as_str(), Some("dev-1"));
    assert_eq!(v["patients"][0]["rules"][0]["below"].as_integer(), Some(88));
    assert_eq!(v["devices"][0]["id"].as_str(), Some("dev-3"));
    assert_eq!(v["rules"][0]["hysteresis"].as_integer(), Some(1));
    assert_eq!(v["rules"][0]["for_s"].as_integer(), Some(120));
    assert_eq!(v["rules"][1]["above"].as_float(), Some(38.5));
    assert_eq!(
        Rule::below("spo2", 92.0, "high").default_name(),
        "spo2_below_92"
    );
    let embedded = HubConfig::new(1).to_toml(std::path::Path::new("h.db"));
    let v: toml::Value = toml::from_str(&embedded).unwrap();
    assert_eq!(v["sensors"]["broker"].as_str(), Some("embedded"));
    assert_eq!(v["sensors"]["listen"].as_str(), Some("127.0.0.1:0"));
}

#[test]
#[should_panic(expected = "HEARTHD_BIN=/nonexistent/hearthd does not exist")]
fn hub_fixture_names_a_missing_binary() {
    // Only this test in this binary reads HEARTHD_BIN.
    unsafe { std::env::set_var("HEARTHD_BIN", "/nonexistent/hearthd") };
    let _ = Hub::binary();
}

#[tokio::test]
async fn read_only_db_fixture_reads_a_live_wal_database() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hearth.db");
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
    let mut w = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    for sql in [
        "CREATE TABLE readings(device TEXT, seq INTEGER, patient TEXT, observed_at INTEGER, time_source TEXT, \
         received_at INTEGER, obs TEXT, UNIQUE(device, seq))",
        "CREATE TABLE outbox(id INTEGER PRIMARY KEY, alert_id TEXT, rev INTEGER, patient TEXT, payload TEXT, \
         created_at INTEGER, delivered_at INTEGER)",
        "INSERT INTO readings VALUES ('dev-1', 1, 'p-1', 0, 'device', 0, '{}')",
        "INSERT INTO outbox VALUES (1, 'a-1', 1, 'p-1', '{}', 0, NULL)",
    ] {
        sqlx::raw_sql(sql).execute(&mut w).await.unwrap();
    }
    // Live: the writer is still open.
    let mut r = HubDb::open(&path).await;
    assert_eq!(r.count("readings").await, 1);
    assert_eq!(r.reading_rows("dev-1", 1).await, 1);
    assert_eq!(r.outbox().await[0].alert_id, "a-1");
    assert!(!r.outbox().await[0].delivered);
    assert_eq!(r.integrity_check().await, "ok");
    assert!(
        sqlx::raw_sql("INSERT INTO readings VALUES ('x', 2, 'p', 0, 'd', 0, '{}')")
            .execute(r.conn())
            .await
            .is_err()
    );
    drop(r);
    w.close().await.unwrap();
    // After the writer closed (WAL checkpointed away).
    let mut r = HubDb::open(&path).await;
    assert_eq!(r.reading_keys().await, [("dev-1".to_string(), 1)]);
}
