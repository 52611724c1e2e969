//! The hub side of a HIL run: the real daemon (in-process, fresh database, serial source pointed at the tap), an
//! in-process MQTT broker standing in for the community hub's, and a community-hub receiver that records and
//! acknowledges every alert message. The daemon can be stopped and restarted on the same database (a hub outage).
//!
//! The hub's clock is the system clock plus an offset the scenario moves forward (`advance_s`), so "five minutes
//! of outage" is five minutes for the hub without five minutes of wall time.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow};
use hearth_protocol::json::{self, AckMessage, AckedAlert, AlertMessage};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, Millis, SystemClock};
use crate::config::Config;
use crate::{broker, daemon};

pub const HOME: &str = "hil-home";
pub const PATIENT: &str = "p-hil";

/// The system clock plus a forward offset.
#[derive(Clone, Default)]
pub struct HilClock(Arc<AtomicI64>);

impl HilClock {
    pub fn advance(&self, ms: Millis) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for HilClock {
    fn now_ms(&self) -> Millis {
        SystemClock.now_ms() + self.0.load(Ordering::SeqCst)
    }
}

/// An alert message as the community hub received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub alert: AlertMessage,
}

pub struct Hub {
    cfg: Config,
    clock: HilClock,
    running: Option<(
        CancellationToken,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    )>,
    pub received: Arc<Mutex<Vec<Received>>>,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Hub {
    /// Starts the community stand-in and the daemon for `device` (with its frame key) on serial line `serial`.
    pub async fn start(
        device: &str,
        key_hex: &str,
        rules: &[toml::Table],
        serial: SocketAddr,
        clock: HilClock,
    ) -> anyhow::Result<Hub> {
        let dir = tempfile::Builder::new()
            .prefix("hearth-hil-hub-")
            .tempdir()?;
        let community = tokio::task::spawn_blocking(|| {
            broker::start_embedded(SocketAddr::from(([127, 0, 0, 1], 0)), 100)
        })
        .await??;
        let cfg = config(
            device,
            key_hex,
            rules,
            serial,
            community,
            &dir.path().join("hub.db"),
        )?;
        let stop = CancellationToken::new();
        let received = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn(community_hub(
            community,
            cfg.upstream.topic_prefix.clone(),
            received.clone(),
            stop.clone(),
        ));
        let mut hub = Hub {
            cfg,
            clock,
            running: None,
            received,
            stop,
            _dir: dir,
        };
        hub.up().await?;
        Ok(hub)
    }

    pub fn db_path(&self) -> &Path {
        &self.cfg.storage.path
    }

    pub fn is_up(&self) -> bool {
        self.running.is_some()
    }

    /// Starts the daemon (again), on the same database; returns once it is ready.
    pub async fn up(&mut self) -> anyhow::Result<()> {
        if self.running.is_some() {
            return Ok(());
        }
        let token = self.stop.child_token();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (cfg, clock, t) = (self.cfg.clone(), self.clock.clone(), token.clone());
        let mut task = tokio::spawn(async move {
            daemon::run(cfg, clock, t, move |_| {
                let _ = ready_tx.send(());
            })
            .await
        });
        tokio::select! {
            r = ready_rx => r.map_err(|_| anyhow!("the hub stopped before it was ready"))?,
            r = &mut task => return Err(r?.err().unwrap_or_else(|| anyhow!("the hub stopped before it was ready"))),
        }
        self.running = Some((token, task));
        Ok(())
    }

    /// Stops the daemon cleanly (its serial line closes).
    pub async fn down(&mut self) -> anyhow::Result<()> {
        if let Some((token, task)) = self.running.take() {
            token.cancel();
            task.await.context("the hub task")??;
        }
        Ok(())
    }

    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        let r = self.down().await;
        self.stop.cancel();
        r
    }
}

fn config(
    device: &str,
    key_hex: &str,
    rules: &[toml::Table],
    serial: SocketAddr,
    community: SocketAddr,
    db: &Path,
) -> anyhow::Result<Config> {
    let mut rules_text = String::new();
    if !rules.is_empty() {
        let mut t = toml::Table::new();
        t.insert(
            "rules".into(),
            toml::Value::Array(rules.iter().cloned().map(toml::Value::Table).collect()),
        );
        rules_text = toml::to_string(&t)?;
    }
    let text = format!(
        r#"
[home]
id = "{HOME}"
[sensors]
listen = "127.0.0.1:0"
[upstream]
broker = "mqtt://{community}"
resend_after_s = 2
[storage]
path = {db}
[http]
listen = "127.0.0.1:0"
[alerting]
news2 = false
stale_after_s = 86400
escalate_after_s = 86400
[[devices]]
id = "{device}"
frame_key = "{key_hex}"
[[patients]]
id = "{PATIENT}"
devices = ["{device}"]
[[serial]]
path = "tcp:{serial}"

{rules_text}"#,
        db = toml::Value::String(db.display().to_string()),
    );
    Config::parse(&text, Path::new("<HIL hub configuration>")).map_err(|e| anyhow!("{e}"))
}

/// The community hub stand-in: records alert messages and acknowledges each (so the hub stops resending).
async fn community_hub(
    broker: SocketAddr,
    prefix: String,
    received: Arc<Mutex<Vec<Received>>>,
    stop: CancellationToken,
) {
    let mut opts = MqttOptions::new("hil-community-hub", broker.ip().to_string(), broker.port());
    opts.set_keep_alive(Duration::from_secs(15));
    let (client, mut events) = AsyncClient::new(opts, 64);
    let ack_topic = json::ack_topic(&prefix, HOME);
    loop {
        let ev = tokio::select! {
            _ = stop.cancelled() => break,
            ev = events.poll() => ev,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                let _ = client
                    .subscribe(format!("{prefix}/alerts/#"), QoS::AtLeastOnce)
                    .await;
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let Ok(alert) = json::parse_alert(&p.payload) else {
                    continue;
                };
                let ack = AckMessage {
                    acks: vec![AckedAlert {
                        id: alert.id.clone(),
                        rev: alert.rev,
                    }],
                };
                received
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Received { alert });
                if let Ok(body) = serde_json::to_vec(&ack) {
                    let _ = client
                        .publish(ack_topic.clone(), QoS::AtLeastOnce, false, body)
                        .await;
                }
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
