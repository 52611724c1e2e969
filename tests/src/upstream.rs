//! A simulated community-hub receiver: subscribes to `care/alerts/#` (QoS1) on the upstream broker, records every
//! alert message in arrival order (duplicates included: resends are part of what tests check), and — while acking
//! is on — answers each with the end-to-end ack `care/acks/{home}` `{"acks":[{"id","rev"}]}`.
//!
//! The receiver rides out broker outages: it reconnects and subscribes again after every ConnAck (the broker keeps
//! no session, persistence is off), which is what a real community hub does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// An alert as the contract describes it (HUB-CONTRACT.md, "Wire"). Lenient on purpose: fields a technical alert
/// may leave out are optional, and tests that check the exact shape look at [`Received::raw`].
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct AlertMessage {
    pub id: String,
    pub rev: u64,
    #[serde(default)]
    pub home: String,
    #[serde(default)]
    pub patient: String,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub rule: String,
    #[serde(default)]
    pub device: Option<String>,
    #[serde(default)]
    pub seq: Option<u64>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub value: Option<serde_json::Value>,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub observed_at: Option<String>,
    #[serde(default)]
    pub time_source: Option<String>,
    #[serde(default)]
    pub raised_at: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub details: Option<serde_json::Value>,
    #[serde(default)]
    pub incident: Option<String>,
}

impl AlertMessage {
    /// `(id, rev)`: what identifies one message of an alert, and what the end-to-end ack names.
    pub fn key(&self) -> (String, u64) {
        (self.id.clone(), self.rev)
    }

    /// The numeric value, if any.
    pub fn value_f64(&self) -> Option<f64> {
        self.value.as_ref().and_then(|v| v.as_f64())
    }
}

/// One message as it arrived.
#[derive(Clone, Debug)]
pub struct Received {
    pub topic: String,
    /// The payload bytes exactly as received (resends must be identical).
    pub payload: Vec<u8>,
    /// The payload as JSON, `Null` if it was not JSON.
    pub raw: serde_json::Value,
    /// The payload as an alert, `None` if it does not have the contract's shape.
    pub alert: Option<AlertMessage>,
}

/// The simulated receiver. Dropping it stops its event loop.
pub struct Receiver {
    client: AsyncClient,
    received: watch::Sender<Vec<Received>>,
    acking: Arc<AtomicBool>,
    connected: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl Receiver {
    /// Connects to the broker on `127.0.0.1:port`, subscribes to `care/alerts/#` and waits for the subscription.
    /// Acking is on.
    pub async fn start(port: u16) -> Receiver {
        Self::start_with_prefix(port, "care").await
    }

    /// Like [`Receiver::start`] with another upstream topic prefix.
    pub async fn start_with_prefix(port: u16, prefix: &str) -> Receiver {
        let mut opts = MqttOptions::new(
            format!("e2e-receiver-{}", rand::random::<u32>()),
            "127.0.0.1",
            port,
        );
        opts.set_keep_alive(Duration::from_secs(5));
        opts.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(opts, 1000);
        let (received, _) = watch::channel(Vec::new());
        let (connected_tx, connected) = watch::channel(false);
        let (subscribed_tx, mut subscribed) = watch::channel(0u64);
        let acking = Arc::new(AtomicBool::new(true));
        let task = {
            let client = client.clone();
            let received = received.clone();
            let acking = acking.clone();
            let filter = format!("{prefix}/alerts/#");
            let ack_prefix = prefix.to_string();
            tokio::spawn(async move {
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            // No session survives on the broker: subscribe on every connection.
                            let _ = client.try_subscribe(filter.clone(), QoS::AtLeastOnce);
                            let _ = connected_tx.send(true);
                        }
                        Ok(Event::Incoming(Packet::SubAck(_))) => {
                            subscribed_tx.send_modify(|n| *n += 1);
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            let raw: serde_json::Value =
                                serde_json::from_slice(&p.payload).unwrap_or_default();
                            let alert: Option<AlertMessage> =
                                serde_json::from_value(raw.clone()).ok();
                            let ack = alert
                                .as_ref()
                                .filter(|_| acking.load(Ordering::SeqCst))
                                .map(|a| {
                                    let topic = format!("{ack_prefix}/acks/{}", a.home);
                                    let body =
                                        serde_json::json!({"acks": [{"id": a.id, "rev": a.rev}]});
                                    (topic, body.to_string())
                                });
                            // Record first, then ack: the ack says "stored".
                            received.send_modify(|v| {
                                v.push(Received {
                                    topic: p.topic.clone(),
                                    payload: p.payload.to_vec(),
                                    raw,
                                    alert,
                                })
                            });
                            if let Some((topic, body)) = ack {
                                let _ = client.try_publish(topic, QoS::AtLeastOnce, false, body);
                            }
                        }
                        Ok(_) => {}
                        Err(_) => {
                            let _ = connected_tx.send(false);
                            // Bounded reconnect pace while the broker is away.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            })
        };
        tokio::time::timeout(Duration::from_secs(10), subscribed.wait_for(|n| *n > 0))
            .await
            .expect("receiver did not get its SubAck within 10 s")
            .expect("receiver task ended");
        Receiver {
            client,
            received,
            acking,
            connected,
            task,
        }
    }

    /// Turns the end-to-end acks on or off (off: the hub must keep the alerts in its outbox and resend them).
    pub fn set_acking(&self, on: bool) {
        self.acking.store(on, Ordering::SeqCst);
    }

    /// Acks `(id, rev)` explicitly (e.g. after turning automatic acks back on, for messages already received).
    pub async fn ack(&self, home: &str, id: &str, rev: u64) {
        let body = serde_json::json!({"acks": [{"id": id, "rev": rev}]}).to_string();
        self.client
            .publish(format!("care/acks/{home}"), QoS::AtLeastOnce, false, body)
            .await
            .expect("queue ack");
    }

    /// Whether the receiver is currently connected to its broker.
    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Every message received so far, in arrival order, duplicates included.
    pub fn received(&self) -> Vec<Received> {
        self.received.borrow().clone()
    }

    /// Every alert received so far, in arrival order, duplicates included.
    pub fn alerts(&self) -> Vec<AlertMessage> {
        self.received
            .borrow()
            .iter()
            .filter_map(|r| r.alert.clone())
            .collect()
    }

    /// Alerts in arrival order with duplicates of an `(id, rev)` removed (first arrival kept).
    pub fn alerts_dedup(&self) -> Vec<AlertMessage> {
        let mut seen = std::collections::HashSet::new();
        self.alerts()
            .into_iter()
            .filter(|a| seen.insert(a.key()))
            .collect()
    }

    /// Waits until an alert matching `pred` has arrived (it may already have) and returns the first such alert.
    /// Panics after `timeout` with everything received so far.
    pub async fn wait_for_alert(
        &self,
        timeout: Duration,
        pred: impl Fn(&AlertMessage) -> bool,
    ) -> AlertMessage {
        self.wait_for_alerts(timeout, "an alert matching the predicate", |all| {
            all.iter().find(|a| pred(a)).cloned()
        })
        .await
    }

    /// Waits until `check` over all alerts received so far (arrival order, duplicates included) returns `Some`.
    pub async fn wait_for_alerts<T>(
        &self,
        timeout: Duration,
        what: &str,
        check: impl Fn(&[AlertMessage]) -> Option<T>,
    ) -> T {
        let mut rx = self.received.subscribe();
        let mut out = None;
        let res = tokio::time::timeout(
            timeout,
            rx.wait_for(|v| {
                let alerts: Vec<AlertMessage> = v.iter().filter_map(|r| r.alert.clone()).collect();
                out = check(&alerts);
                out.is_some()
            }),
        )
        .await;
        match (res, out) {
            (Ok(Ok(_)), Some(v)) => v,
            _ => panic!(
                "timed out after {timeout:?} waiting for {what}; received so far:\n{}",
                self.dump()
            ),
        }
    }

    /// Everything received, one message per line, for failure messages.
    pub fn dump(&self) -> String {
        let v = self.received.borrow();
        if v.is_empty() {
            return "(nothing)".into();
        }
        v.iter()
            .map(|r| format!("  {} {}", r.topic, String::from_utf8_lossy(&r.payload)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
