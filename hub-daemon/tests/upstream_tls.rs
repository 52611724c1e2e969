//! `mqtts://` upstream: alerts reach a Mosquitto that requires TLS client certificates (generated here), and a
//! daemon that cannot verify the server — another CA, an expired certificate, a certificate for another name, or no
//! TLS at all on the port — delivers nothing and raises `upstream_unreachable`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hearth_protocol::json::{self, AlertKind, AlertState, Severity};
use hearthd::clock::SystemClock;
use hearthd::config::Config;
use hearthd::daemon::{self, Bound};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, Transport};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);

struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn write(dir: &Path, name: &str, pem: String) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, pem).unwrap();
    p
}

/// What is wrong with the server's certificate.
#[derive(Clone, Copy)]
enum ServerCert {
    Good,
    /// Valid in 2020 only.
    Expired,
    /// For `mqtt.example.org`, not the `localhost` the hub dials.
    OtherName,
}

/// A CA, a server certificate for localhost/127.0.0.1 and a client certificate for the home, made at test time.
fn pki(dir: &Path, tag: &str) -> Pki {
    pki_with(dir, tag, ServerCert::Good)
}

fn pki_with(dir: &Path, tag: &str, kind: ServerCert) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("Hearth test CA {tag}"));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let mut server = match kind {
        ServerCert::OtherName => {
            CertificateParams::new(vec!["mqtt.example.org".to_string()]).unwrap()
        }
        _ => {
            let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
            p.subject_alt_names
                .push(SanType::IpAddress([127, 0, 0, 1].into()));
            p
        }
    };
    if let ServerCert::Expired = kind {
        server.not_before = rcgen::date_time_ymd(2020, 1, 1);
        server.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let server_key = KeyPair::generate().unwrap();
    let server_cert = server.signed_by(&server_key, &ca).unwrap();

    let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
    client
        .distinguished_name
        .push(DnType::CommonName, "home-0001");
    let client_key = KeyPair::generate().unwrap();
    let client_cert = client.signed_by(&client_key, &ca).unwrap();

    Pki {
        ca: write(dir, &format!("ca-{tag}.pem"), ca.pem()),
        server_cert: write(dir, &format!("server-{tag}.pem"), server_cert.pem()),
        server_key: write(
            dir,
            &format!("server-{tag}.key"),
            server_key.serialize_pem(),
        ),
        client_cert: write(dir, &format!("client-{tag}.pem"), client_cert.pem()),
        client_key: write(
            dir,
            &format!("client-{tag}.key"),
            client_key.serialize_pem(),
        ),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Mosquitto(Child);
impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Mosquitto that accepts only TLS clients presenting a certificate from our CA.
fn tls_mosquitto(dir: &Path, pki: &Pki, port: u16) -> Mosquitto {
    mosquitto(
        dir,
        &format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nrequire_certificate true\n\
             cafile {}\ncertfile {}\nkeyfile {}\npersistence false\nlog_dest stderr\n",
            pki.ca.display(),
            pki.server_cert.display(),
            pki.server_key.display()
        ),
        port,
    )
}

/// Plain MQTT where the hub expects TLS.
fn plaintext_mosquitto(dir: &Path, port: u16) -> Mosquitto {
    mosquitto(
        dir,
        &format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        port,
    )
}

fn mosquitto(dir: &Path, body: &str, port: u16) -> Mosquitto {
    let conf = dir.join("mosquitto.conf");
    std::fs::write(&conf, body).unwrap();
    let broker = Mosquitto(
        Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto (Debian package) must be installed: scripts/install-test-deps.sh"),
    );
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return broker;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("mosquitto did not listen on {port}");
}

fn config(dir: &Path, upstream_port: u16, ca: &Path, client: &Pki) -> Config {
    let raw = format!(
        r#"
[home]
id = "home-0001"
[sensors]
listen = "127.0.0.1:0"
[upstream]
broker = "mqtts://localhost:{upstream_port}"
unreachable_alert_after_s = 1
[upstream.tls]
ca_file = "{}"
cert_file = "{}"
key_file = "{}"
[storage]
path = "{}"
[http]
listen = "127.0.0.1:0"
[[patients]]
id = "p-1"
devices = ["dev-1"]
[[rules]]
code = "spo2"
below = 92
severity = "high"
"#,
        ca.display(),
        client.client_cert.display(),
        client.client_key.display(),
        dir.join("h.db").display()
    );
    Config::parse(&raw, Path::new("test.toml")).unwrap()
}

async fn start(cfg: Config, stop: CancellationToken) -> Bound {
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let r = daemon::run(cfg, SystemClock, stop, move |b| {
            let _ = tx.send(b.clone());
        })
        .await;
        if let Err(e) = r {
            eprintln!("daemon: {e:#}");
        }
    });
    tokio::time::timeout(WAIT, rx)
        .await
        .expect("daemon ready in time")
        .expect("daemon started")
}

async fn send_breach(sensors: std::net::SocketAddr) {
    let (client, mut events) = AsyncClient::new(
        MqttOptions::new("dev-1-gw", sensors.ip().to_string(), sensors.port()),
        10,
    );
    let body = format!(
        r#"{{"seq":1,"t":"{}","obs":{{"spo2":88}}}}"#,
        json::format_rfc3339_millis(now_ms())
    );
    client
        .publish("hub/readings/dev-1", QoS::AtLeastOnce, false, body)
        .await
        .unwrap();
    tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(Event::Incoming(Packet::PubAck(_))) = events.poll().await {
                break;
            }
        }
    })
    .await
    .expect("the hub acknowledged the reading");
}

fn now_ms() -> i64 {
    hearthd::clock::Clock::now_ms(&SystemClock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_reaches_a_tls_broker_that_requires_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path(), "good");
    let port = free_port();
    let _broker = tls_mosquitto(dir.path(), &pki, port);

    // The community hub's receiver, itself a TLS client with a certificate.
    let mut opts = MqttOptions::new("community", "localhost", port);
    let read = |p: &Path| std::fs::read(p).unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    opts.set_transport(Transport::tls(
        read(&pki.ca),
        Some((read(&pki.client_cert), read(&pki.client_key))),
        None,
    ));
    let (receiver, mut events) = AsyncClient::new(opts, 10);
    receiver
        .subscribe("care/alerts/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    let (alert_tx, mut alert_rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = alert_tx.send(p.payload).await;
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });

    let stop = CancellationToken::new();
    let bound = start(config(dir.path(), port, &pki.ca, &pki), stop.clone()).await;
    send_breach(bound.sensors_broker).await;

    let payload = tokio::time::timeout(WAIT, alert_rx.recv())
        .await
        .expect("alert over TLS in time")
        .unwrap();
    let alert = json::parse_alert(&payload).unwrap();
    assert_eq!(alert.patient, "p-1");
    assert_eq!(alert.severity, Severity::High);
    assert_eq!(alert.state, AlertState::Open);
    assert_eq!(alert.kind, AlertKind::Clinical);
    assert_eq!(alert.value, Some(88.0));
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_signed_by_another_ca_is_refused_and_raises_upstream_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let real = pki(dir.path(), "real");
    let impostor = pki(dir.path(), "impostor");
    let port = free_port();
    let _broker = tls_mosquitto(dir.path(), &impostor, port);
    assert_refused_and_raised(dir.path(), port, &real).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_server_certificate_is_refused_and_raises_upstream_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let expired = pki_with(dir.path(), "expired", ServerCert::Expired);
    let port = free_port();
    let _broker = tls_mosquitto(dir.path(), &expired, port);
    assert_refused_and_raised(dir.path(), port, &expired).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_for_another_name_is_refused_and_raises_upstream_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let other = pki_with(dir.path(), "other-name", ServerCert::OtherName);
    let port = free_port();
    let _broker = tls_mosquitto(dir.path(), &other, port);
    assert_refused_and_raised(dir.path(), port, &other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_server_on_the_tls_port_is_refused_and_raises_upstream_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let trusted = pki(dir.path(), "trusted");
    let port = free_port();
    let _broker = plaintext_mosquitto(dir.path(), port);
    assert_refused_and_raised(dir.path(), port, &trusted).await;
}

/// Starts a daemon that trusts `trusted` against the broker on `port`, raises a clinical alert, and checks that
/// nothing is delivered and that `upstream_unreachable` is raised.
async fn assert_refused_and_raised(dir: &Path, port: u16, trusted: &Pki) {
    let stop = CancellationToken::new();
    let bound = start(config(dir, port, &trusted.ca, trusted), stop.clone()).await;
    send_breach(bound.sensors_broker).await;

    // Observable through the technician API: the alert stays in the outbox and a technical alert is open.
    let url = format!("http://{}/api/alerts?state=open", bound.http);
    let deadline = tokio::time::Instant::now() + WAIT;
    let rules = loop {
        let body = http_get(&url).await;
        let alerts: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
        let rules: Vec<String> = alerts
            .iter()
            .map(|a| a["rule"].as_str().unwrap().to_string())
            .collect();
        if rules.iter().any(|r| r == "upstream_unreachable")
            || tokio::time::Instant::now() > deadline
        {
            break rules;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        rules.contains(&"upstream_unreachable".to_string()),
        "open alerts: {rules:?}"
    );
    assert!(
        rules.contains(&"spo2_below_92".to_string()),
        "the clinical alert is kept for later: {rules:?}"
    );
    let outbox: serde_json::Value =
        serde_json::from_str(&http_get(&format!("http://{}/api/outbox", bound.http)).await)
            .unwrap();
    assert!(
        outbox["depth"].as_i64().unwrap() >= 2,
        "nothing was delivered: {outbox}"
    );
    assert!(
        outbox["pending"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["attempts"] == 0),
        "nothing was even published on the refused connection: {outbox}"
    );
    stop.cancel();
}

/// A minimal HTTP/1.0 GET (the technician API is plain loopback HTTP).
async fn http_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    s.write_all(format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    buf.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}
