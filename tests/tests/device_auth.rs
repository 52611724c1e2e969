//! Devices authenticate before anything they send is stored.
//!
//! - A Mosquitto configured as a home would be: no anonymous clients, TLS client certificates from the home's CA
//!   (the certificate's common name is the MQTT user), a CRL, and per-device ACLs so a device can write only to its
//!   own topics. Refused: no certificate, another CA's certificate, an expired one, a revoked one; a publish to
//!   another device's topic is dropped by the broker and nothing is stored.
//! - The hub's embedded endpoint with `[sensors.auth]`: username = device id, argon2id password hashes, a device
//!   publishes and subscribes only under its own id.
//!
//! Certificates, CRLs and password hashes are made at test time; brokers listen on free ports.

use std::path::Path;
use std::time::Duration;

use hearth_tests::db::HubDb;
use hearth_tests::http;
use hearth_tests::hub::{Hub, HubConfig, SensorsBroker};
use hearth_tests::mosquitto::Mosquitto;
use hearth_tests::pki::{Ca, CertFiles, Validity, connect_outcome, tls_options};
use hearth_tests::time_fmt::{now_plus_s, rfc3339};
use hearth_tests::wait::poll_until;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};

const T: Duration = Duration::from_secs(10);
const HUB_USER: &str = "hearthd-hub";

/// The hub reads every device's topics and writes ack frames; each device writes only its own topics and reads
/// only its own ack frames (`%u` is the certificate's common name).
const ACL: &str = "\
user hearthd-hub
topic read hub/readings/+
topic read hub/frames/+
topic write hub/frame-acks/+

pattern write hub/readings/%u
pattern write hub/frames/%u
pattern read hub/frame-acks/%u
";

/// A Mosquitto that admits only clients with a current, unrevoked certificate from `ca`, and applies [`ACL`].
fn secure_broker(dir: &Path, ca: &mut Ca, revoked: &[u64]) -> Mosquitto {
    let server = ca.server(Validity::Current);
    let crl = ca.crl(revoked);
    let acl = dir.join("acl");
    std::fs::write(&acl, ACL).unwrap();
    let ca_cert = ca.cert.clone();
    Mosquitto::start_configured(|port| {
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\nrequire_certificate true\n\
             use_identity_as_username true\ncafile {}\ncertfile {}\nkeyfile {}\ncrlfile {}\nacl_file {}\n\
             persistence false\nlog_type all\n",
            ca_cert.display(),
            server.cert.display(),
            server.key.display(),
            crl.display(),
            acl.display()
        )
    })
}

fn reading(seq: u64, spo2: u32) -> String {
    format!(
        r#"{{"seq":{seq},"t":"{}","obs":{{"spo2":{spo2}}}}}"#,
        rfc3339(now_plus_s(-5))
    )
}

/// Publishes at QoS 1 and waits for the PubAck (from the broker, or — on the embedded endpoint — after the commit).
async fn publish_acked(client: &AsyncClient, events: &mut EventLoop, topic: &str, body: String) {
    client
        .publish(topic, QoS::AtLeastOnce, false, body)
        .await
        .unwrap();
    tokio::time::timeout(T, async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => return,
                Ok(_) => {}
                Err(e) => panic!("connection failed while publishing to {topic}: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no PubAck for {topic}"));
}

async fn connected(opts: MqttOptions) -> (AsyncClient, EventLoop) {
    let (outcome, client, events) = connect_outcome(opts).await;
    outcome.expect("a legitimate client connects");
    (client, events)
}

async fn metric(hub: &Hub, name: &str, labels: &[(&str, &str)]) -> f64 {
    let samples = http::metrics(hub.http_addr()).await.unwrap();
    http::metric(&samples, name, labels).unwrap_or(0.0)
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
async fn mosquitto_refuses_devices_without_a_current_certificate_from_the_home_ca() {
    let dir = tempfile::tempdir().unwrap();
    let mut ca = Ca::new(dir.path(), "home");
    let mut other_ca = Ca::new(dir.path(), "other");
    let good = ca.client("dev-1", Validity::Current);
    let expired = ca.client("dev-2", Validity::Expired);
    let revoked = ca.client("dev-3", Validity::Current);
    let foreign = other_ca.client("dev-4", Validity::Current);
    let broker = secure_broker(dir.path(), &mut ca, &[revoked.serial]);

    let attempt =
        |name: &str, client: Option<&CertFiles>| tls_options(name, broker.port(), &ca.cert, client);
    let (ok, ..) = connect_outcome(attempt("dev-1", Some(&good))).await;
    assert_eq!(ok, Ok(()), "control: the enrolled device connects");
    for (case, opts) in [
        ("no certificate", attempt("anon", None)),
        ("another CA's certificate", attempt("dev-4", Some(&foreign))),
        ("an expired certificate", attempt("dev-2", Some(&expired))),
        (
            "a revoked certificate (CRL)",
            attempt("dev-3", Some(&revoked)),
        ),
    ] {
        let (outcome, ..) = connect_outcome(opts).await;
        assert!(
            outcome.is_err(),
            "{case} was admitted; broker log:\n{}",
            broker.log()
        );
    }
    // Plain MQTT on the TLS port gets nowhere either.
    let plain = MqttOptions::new("plain", "127.0.0.1", broker.port());
    let (outcome, ..) = connect_outcome(plain).await;
    assert!(outcome.is_err(), "a plaintext client was admitted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_mosquitto_a_device_can_publish_only_its_own_readings() {
    let dir = tempfile::tempdir().unwrap();
    let mut ca = Ca::new(dir.path(), "home");
    let dev1 = ca.client("dev-1", Validity::Current);
    let dev2 = ca.client("dev-2", Validity::Current);
    let hub_cert = ca.client(HUB_USER, Validity::Current);
    let broker = secure_broker(dir.path(), &mut ca, &[]);
    let upstream = Mosquitto::start();
    let tls = format!(
        "\n[sensors.tls]\nca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}\n",
        ca.cert, hub_cert.cert, hub_cert.key
    );
    let hub = Hub::start(
        HubConfig::new(upstream.port())
            .sensors(SensorsBroker::ExternalTls {
                port: broker.port(),
            })
            .patient("p-1", &["dev-1"])
            .patient("p-2", &["dev-2"])
            .extra_toml(&tls),
    )
    .await;

    // dev-2 writes to dev-1's topic: Mosquitto acknowledges (MQTT 3.1.1 has no negative PubAck) and drops it.
    let (c2, mut e2) = connected(tls_options("dev-2", broker.port(), &ca.cert, Some(&dev2))).await;
    publish_acked(&c2, &mut e2, "hub/readings/dev-1", reading(7, 70)).await;
    // dev-1's own reading, sent after it, is stored: by then the forged one would have arrived had it been passed on.
    let (c1, mut e1) = connected(tls_options("dev-1", broker.port(), &ca.cert, Some(&dev1))).await;
    publish_acked(&c1, &mut e1, "hub/readings/dev-1", reading(1, 97)).await;
    wait_metric(&hub, "hearth_readings_committed_total", &[], 1.0).await;
    // dev-2's own topic still works for dev-2.
    publish_acked(&c2, &mut e2, "hub/readings/dev-2", reading(1, 96)).await;
    wait_metric(&hub, "hearth_readings_committed_total", &[], 2.0).await;

    assert_eq!(
        metric(&hub, "hearth_readings_received_total", &[]).await,
        2.0,
        "the hub never saw the forged publish"
    );
    let mut db = HubDb::open(&hub.db_path()).await;
    assert_eq!(
        db.reading_keys().await,
        vec![("dev-1".to_string(), 1), ("dev-2".to_string(), 1)],
        "only each device's own reading is stored"
    );
    assert_eq!(db.count("quarantine").await, 0);
    let log = broker.log();
    assert!(
        log.contains("Denied PUBLISH from dev-2"),
        "Mosquitto logs the denial: {log}"
    );
}

/// An argon2id hash with cheap parameters (the PHC string carries them, so the hub needs no configuration).
fn quick_hash(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(1024, 1, 1, None).unwrap();
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"hearth-test-salt").unwrap();
    a.hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

fn login(hub: &Hub, client_id: &str, user: Option<(&str, &str)>) -> MqttOptions {
    let mut opts = MqttOptions::new(client_id, "127.0.0.1", hub.sensors_port());
    opts.set_keep_alive(Duration::from_secs(30));
    if let Some((u, p)) = user {
        opts.set_credentials(u, p);
    }
    opts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_endpoint_admits_enrolled_devices_only_under_their_own_ids() {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("devices.passwd");
    std::fs::write(
        &creds,
        format!(
            "# device:argon2id hash\ndev-1:{}\ndev-2:{}\n",
            quick_hash("pw-dev-1"),
            quick_hash("pw-dev-2")
        ),
    )
    .unwrap();
    let upstream = Mosquitto::start();
    let hub = Hub::start(
        HubConfig::new(upstream.port())
            .patient("p-1", &["dev-1"])
            .patient("p-2", &["dev-2"])
            .extra_toml(&format!("\n[sensors.auth]\ncredentials_file = {creds:?}\n")),
    )
    .await;

    for (reason, user) in [
        ("no_credentials", None),
        ("bad_password", Some(("dev-1", "pw-dev-2"))),
        ("unknown_device", Some(("dev-9", "pw-dev-1"))),
    ] {
        let (outcome, ..) = connect_outcome(login(&hub, "x", user)).await;
        assert!(outcome.is_err(), "{reason}: admitted");
        wait_metric(
            &hub,
            "hearth_sensor_connections_refused_total",
            &[("reason", reason)],
            1.0,
        )
        .await;
    }

    let (c1, mut e1) = connected(login(&hub, "gw-1", Some(("dev-1", "pw-dev-1")))).await;
    publish_acked(&c1, &mut e1, "hub/readings/dev-1", reading(1, 97)).await;
    // Acknowledged (after the commit of its quarantine record), never stored as dev-2's reading.
    publish_acked(&c1, &mut e1, "hub/readings/dev-2", reading(5, 70)).await;
    // A subscription to another device's ack frames is refused in the SubAck.
    c1.subscribe("hub/frame-acks/dev-2", QoS::AtMostOnce)
        .await
        .unwrap();
    c1.subscribe("hub/frame-acks/dev-1", QoS::AtMostOnce)
        .await
        .unwrap();
    let mut codes = Vec::new();
    tokio::time::timeout(T, async {
        while codes.len() < 2 {
            if let Event::Incoming(Packet::SubAck(s)) = e1.poll().await.unwrap() {
                codes.extend(s.return_codes);
            }
        }
    })
    .await
    .expect("two SubAcks");
    use rumqttc::SubscribeReasonCode::{Failure, Success};
    assert_eq!(codes, vec![Failure, Success(QoS::AtMostOnce)]);

    let mut db = HubDb::open(&hub.db_path()).await;
    assert_eq!(db.reading_keys().await, vec![("dev-1".to_string(), 1)]);
    let q = http::get_json(hub.http_addr(), "/api/quarantine")
        .await
        .unwrap();
    let q = q.as_array().unwrap();
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0]["reason"], "bad_topic");
    let detail = q[0]["detail"].as_str().unwrap();
    assert!(detail.contains("dev-1 may not publish"), "{detail}");
    assert_eq!(
        metric(
            &hub,
            "hearth_sensor_access_denied_total",
            &[("kind", "publish")]
        )
        .await,
        1.0
    );
}
