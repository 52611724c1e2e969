//! The community hub (`hearth-community`, in-process through its library) and a simulated home that talks to it over
//! a broker: publishes alerts and heartbeats the way the home hub does and records the acks and nurse actions it
//! gets back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hearth_community::clock::{AnyClock, ManualClock, SystemClock};
use hearth_community::config::Config;
use hearth_community::service::{self, Running};
use hearth_community::store::Store;
use hearth_protocol::json::{self, AckMessage, ActionMessage};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::postgres::Postgres;

/// Which database the community hub uses in a test.
pub enum Db {
    /// A fresh SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on this private server.
    Postgres(Arc<Postgres>),
}

/// A running community hub. Stopped when dropped.
pub struct Community {
    pub http: SocketAddr,
    pub store: Store,
    pub url: String,
    shutdown: CancellationToken,
    running: Option<Running>,
    _dir: tempfile::TempDir,
}

impl Community {
    /// Starts against the broker on `broker_port`; `clock` None means the system clock. Waits for the subscriptions.
    pub async fn start(broker_port: u16, db: &Db, clock: Option<ManualClock>) -> Community {
        Self::start_with(broker_port, db, clock, |_| {}).await
    }

    /// Like [`Community::start`], adjusting the configuration first.
    pub async fn start_with(
        broker_port: u16,
        db: &Db,
        clock: Option<ManualClock>,
        adjust: impl FnOnce(&mut Config),
    ) -> Community {
        let dir = tempfile::Builder::new()
            .prefix("hearth-community-")
            .tempdir()
            .expect("tempdir");
        let url = match db {
            Db::Sqlite => format!("sqlite://{}", dir.path().join("community.db").display()),
            Db::Postgres(pg) => pg.fresh_database(),
        };
        let mut cfg = Config::default_config();
        cfg.mqtt.broker = format!("mqtt://127.0.0.1:{broker_port}");
        cfg.mqtt.client_id = format!("community-test-{:08x}", rand::random::<u32>());
        cfg.database.url = url.clone();
        cfg.http.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        adjust(&mut cfg);
        let clock = match clock {
            Some(c) => AnyClock::Manual(c),
            None => AnyClock::System(SystemClock),
        };
        let shutdown = CancellationToken::new();
        let mut running = service::start(cfg, clock, shutdown.clone())
            .await
            .expect("start the community hub");
        assert!(
            running.wait_subscribed(Duration::from_secs(10)).await,
            "community hub did not subscribe within 10 s"
        );
        Community {
            http: running.http,
            store: running.store.clone(),
            url,
            shutdown,
            running: Some(running),
            _dir: dir,
        }
    }

    /// Adds a dashboard account.
    pub async fn add_user(&self, username: &str, role: &str, password: &str) {
        let hash = hearth_community::accounts::hash_password(password).expect("hash");
        self.store
            .add_user(username, role, &hash, 0)
            .await
            .expect("add user");
    }

    /// Stops every task and waits for them.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(r) = self.running.take() {
            r.join().await;
        }
    }
}

impl Drop for Community {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// What a simulated home has received.
#[derive(Clone, Debug, Default)]
pub struct HomeInbox {
    /// Every ack message, in arrival order, with its topic.
    pub acks: Vec<(String, AckMessage)>,
    pub actions: Vec<(String, ActionMessage)>,
}

impl HomeInbox {
    /// Every acked (id, rev), duplicates included.
    pub fn acked(&self) -> Vec<(String, u32)> {
        self.acks
            .iter()
            .flat_map(|(_, a)| a.acks.iter().map(|x| (x.id.clone(), x.rev)))
            .collect()
    }
}

/// One MQTT client playing any number of homes: publishes alerts/heartbeats, records acks and actions for all.
pub struct SimHomes {
    pub client: AsyncClient,
    inbox: watch::Sender<HomeInbox>,
    task: JoinHandle<()>,
}

impl SimHomes {
    /// Connects to `127.0.0.1:port` and subscribes to every home's acks and actions.
    pub async fn connect(port: u16) -> SimHomes {
        let mut opts = MqttOptions::new(
            format!("sim-homes-{:08x}", rand::random::<u32>()),
            "127.0.0.1",
            port,
        );
        opts.set_keep_alive(Duration::from_secs(15));
        opts.set_inflight(1000);
        opts.set_request_channel_capacity(20_000);
        let (client, mut eventloop) = AsyncClient::new(opts, 20_000);
        let (inbox, _) = watch::channel(HomeInbox::default());
        let (sub_tx, mut sub_rx) = watch::channel(0u32);
        let task = {
            let client = client.clone();
            let inbox = inbox.clone();
            tokio::spawn(async move {
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            let _ = client.try_subscribe_many([
                                rumqttc::SubscribeFilter::new(
                                    "care/acks/+".into(),
                                    QoS::AtLeastOnce,
                                ),
                                rumqttc::SubscribeFilter::new(
                                    "care/actions/+".into(),
                                    QoS::AtLeastOnce,
                                ),
                            ]);
                        }
                        Ok(Event::Incoming(Packet::SubAck(_))) => sub_tx.send_modify(|n| *n += 1),
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            if json::parse_ack_topic("care", &p.topic).is_some() {
                                let ack = json::parse_ack(&p.payload)
                                    .expect("community hub sent a malformed ack");
                                inbox.send_modify(|i| i.acks.push((p.topic.clone(), ack)));
                            } else {
                                let a = json::parse_action(&p.payload)
                                    .expect("community hub sent a malformed action");
                                inbox.send_modify(|i| i.actions.push((p.topic.clone(), a)));
                            }
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            })
        };
        tokio::time::timeout(Duration::from_secs(10), sub_rx.wait_for(|n| *n > 0))
            .await
            .expect("sim homes not subscribed within 10 s")
            .expect("sim homes task ended");
        SimHomes {
            client,
            inbox,
            task,
        }
    }

    /// Publishes a raw payload on `topic` (QoS 1).
    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.into())
            .await
            .expect("queue publish");
    }

    pub fn inbox(&self) -> HomeInbox {
        self.inbox.borrow().clone()
    }

    /// Waits until `check(inbox)` holds, at most `timeout`; panics with the inbox otherwise.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        check: impl Fn(&HomeInbox) -> bool,
    ) -> HomeInbox {
        let mut rx = self.inbox.subscribe();
        match tokio::time::timeout(timeout, rx.wait_for(|i| check(i))).await {
            Ok(Ok(i)) => i.clone(),
            _ => panic!(
                "timed out after {timeout:?} waiting for {what}; inbox: {:?}",
                self.inbox()
            ),
        }
    }
}

impl Drop for SimHomes {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An alert payload in the wire format, as a home hub writes it.
// One argument per field a test varies; a builder would hide which fields a test sets.
#[allow(clippy::too_many_arguments)]
pub fn alert_json(
    id: &str,
    rev: u32,
    home: &str,
    patient: &str,
    severity: &str,
    state: &str,
    raised_at_ms: i64,
    details: Option<serde_json::Value>,
) -> String {
    let mut v = serde_json::json!({
        "id": id, "rev": rev, "home": home, "patient": patient, "severity": severity, "state": state,
        "kind": "clinical", "rule": "news2", "device": "oximeter-1", "seq": 7, "code": "spo2", "value": 89,
        "unit": "%", "observed_at": json::format_rfc3339_millis(raised_at_ms - 1000), "time_source": "device",
        "raised_at": json::format_rfc3339_millis(raised_at_ms), "message": format!("NEWS2 alert rev {rev}"),
    });
    if let Some(d) = details {
        v["details"] = d;
    }
    v.to_string()
}

/// A heartbeat payload.
pub fn heartbeat_json(home: &str, at_ms: i64, outbox_depth: u64) -> String {
    serde_json::json!({"home": home, "at": json::format_rfc3339_millis(at_ms), "outbox_depth": outbox_depth,
        "oldest_pending_s": null})
    .to_string()
}
