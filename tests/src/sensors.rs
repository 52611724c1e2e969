//! A simulated device (or a gateway for several) publishing JSON readings QoS1 to `hub/readings/{device}` and
//! recording which of them the broker PubAcked.
//!
//! With the hub's embedded broker a PubAck means "committed to the hub's database" (the hub acks manually after the
//! commit), which is the promise crash tests check. PubAcks are matched to readings through rumqttc's packet ids:
//! `Outgoing::Publish(pkid)` events come in the order publishes were queued, `Incoming(PubAck(pkid))` closes one.
//!
//! Reconnection is done by hand so that this matching stays exact: on any connection error the whole rumqttc client
//! (its queue and in-flight state) is thrown away under the same lock that publishing takes, and everything not yet
//! PubAcked counts as lost — a new client starts from an empty queue. Nothing unacked is ever resent automatically.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::time_fmt::rfc3339;

/// What a PubAck is matched back to: a reading of `device` with `seq` (raw publishes pick their own tag).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag {
    pub device: String,
    pub seq: u64,
}

#[derive(Default)]
struct Inner {
    generation: u64,
    client: Option<AsyncClient>,
    connected: bool,
    /// Queued to rumqttc, no packet id yet (in queue order).
    queued: VecDeque<Tag>,
    /// Sent with a packet id, waiting for the PubAck. A pkid can carry two tags after a collision.
    in_flight: HashMap<u16, VecDeque<Tag>>,
    /// A publish held back by rumqttc because its pkid was still in flight (`Outgoing::AwaitAck`).
    collided: Option<(u16, Tag)>,
    /// Every PubAck received, in order (a tag appears twice if it was published and acked twice).
    acked: Vec<Tag>,
    /// Tags dropped unacked by a disconnection.
    lost: Vec<Tag>,
    published: u64,
}

/// A connection to the sensors' broker (the hub's embedded one, or a Mosquitto the hub subscribes to).
pub struct SensorSim {
    inner: Arc<Mutex<Inner>>,
    changed: watch::Sender<u64>,
    port: Arc<Mutex<u16>>,
    client_id: String,
    prefix: String,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
    /// The handle the test holds (not an event-loop task's copy): dropping it stops the loop.
    owner: bool,
}

fn options(client_id: &str, port: u16) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(5));
    o.set_inflight(100);
    o.set_max_packet_size(1 << 20, 1 << 20);
    o
}

impl SensorSim {
    /// Connects to `127.0.0.1:port` with readings on `hub/readings/{device}`; returns once connected.
    pub async fn connect(port: u16, client_id: &str) -> SensorSim {
        Self::connect_with_prefix(port, client_id, "hub").await
    }

    /// Like [`SensorSim::connect`] with another topic prefix.
    pub async fn connect_with_prefix(port: u16, client_id: &str, prefix: &str) -> SensorSim {
        let (changed, _) = watch::channel(0);
        let sim = SensorSim {
            inner: Arc::new(Mutex::new(Inner::default())),
            changed,
            port: Arc::new(Mutex::new(port)),
            client_id: client_id.into(),
            prefix: prefix.into(),
            task: Arc::new(Mutex::new(None)),
            owner: true,
        };
        sim.new_generation();
        sim.wait_connected(Duration::from_secs(10)).await;
        sim
    }

    /// Points later reconnections at another port (an embedded broker on port 0 moves on restart).
    pub fn set_port(&self, port: u16) {
        *self.port.lock().unwrap() = port;
    }

    /// Publishes `{"seq":seq,"t":t,"obs":obs}` to `hub/readings/{device}` (QoS1); `t: None` leaves `t` out.
    /// Returns at once; use [`SensorSim::wait_acked`] for the PubAck.
    pub fn publish_reading(
        &self,
        device: &str,
        seq: u64,
        t: Option<OffsetDateTime>,
        obs: serde_json::Value,
    ) -> Tag {
        let mut body = serde_json::json!({"seq": seq, "obs": obs});
        if let Some(t) = t {
            body["t"] = serde_json::Value::String(rfc3339(t));
        }
        let tag = Tag {
            device: device.into(),
            seq,
        };
        self.publish_raw(
            &format!("{}/readings/{device}", self.prefix),
            body.to_string().into_bytes(),
            tag.clone(),
        );
        tag
    }

    /// Publishes any payload to any topic (QoS1), recording its PubAck under `tag`.
    pub fn publish_raw(&self, topic: &str, payload: Vec<u8>, tag: Tag) {
        let mut inner = self.inner.lock().unwrap();
        inner.published += 1;
        let queued = inner.client.as_ref().map(|c| {
            c.try_publish(topic, QoS::AtLeastOnce, false, payload)
                .is_ok()
        });
        if queued == Some(true) {
            inner.queued.push_back(tag);
        } else {
            inner.lost.push(tag);
        }
    }

    /// Waits until `tag` has been PubAcked at least `times` times.
    pub async fn wait_acked(&self, tag: &Tag, times: usize, timeout: Duration) {
        let ok = self
            .wait_inner(timeout, |i| {
                i.acked.iter().filter(|t| *t == tag).count() >= times
            })
            .await;
        if !ok {
            // Build the message first: panicking while holding the lock would poison it for the event loop.
            let msg = {
                let i = self.inner.lock().unwrap();
                format!(
                    "{tag:?} not PubAcked {times}× within {timeout:?} (acked so far: {}, lost: {:?}, connected: {})",
                    i.acked.len(),
                    i.lost,
                    i.connected
                )
            };
            panic!("{msg}");
        }
    }

    /// Waits until the client is connected (ConnAck received).
    pub async fn wait_connected(&self, timeout: Duration) {
        let ok = self.wait_inner(timeout, |i| i.connected).await;
        assert!(
            ok,
            "sensor simulator not connected to port {} within {timeout:?}",
            self.port.lock().unwrap()
        );
    }

    /// Waits (bounded) until fewer than `max` publishes are outstanding; `false` on timeout.
    pub async fn wait_outstanding_below(&self, max: usize, timeout: Duration) -> bool {
        self.wait_inner(timeout, |i| outstanding(i) < max).await
    }

    /// Waits (bounded) until at least `n` PubAcks have arrived in total; `false` on timeout.
    pub async fn wait_acked_total(&self, n: usize, timeout: Duration) -> bool {
        self.wait_inner(timeout, |i| i.acked.len() >= n).await
    }

    /// Every PubAck so far, in arrival order.
    pub fn acked(&self) -> Vec<Tag> {
        self.inner.lock().unwrap().acked.clone()
    }

    /// How many times `tag` was PubAcked.
    pub fn ack_count(&self, tag: &Tag) -> usize {
        self.inner
            .lock()
            .unwrap()
            .acked
            .iter()
            .filter(|t| *t == tag)
            .count()
    }

    /// Publishes dropped unacked by a disconnection (or never queued because there was no connection).
    pub fn lost(&self) -> Vec<Tag> {
        self.inner.lock().unwrap().lost.clone()
    }

    /// Publishes queued or in flight, not yet PubAcked.
    pub fn outstanding(&self) -> usize {
        outstanding(&self.inner.lock().unwrap())
    }

    pub fn is_connected(&self) -> bool {
        self.inner.lock().unwrap().connected
    }

    async fn wait_inner(&self, timeout: Duration, pred: impl Fn(&Inner) -> bool) -> bool {
        let mut rx = self.changed.subscribe();
        let inner = self.inner.clone();
        tokio::time::timeout(timeout, rx.wait_for(|_| pred(&inner.lock().unwrap())))
            .await
            .is_ok()
    }

    /// Throws the current client away (if any) and starts a fresh one with its own event-loop task.
    fn new_generation(&self) {
        let port = *self.port.lock().unwrap();
        let (client, eventloop) = AsyncClient::new(options(&self.client_id, port), 10_000);
        let generation = {
            let mut i = self.inner.lock().unwrap();
            drop_unacked(&mut i);
            i.generation += 1;
            i.client = Some(client);
            i.generation
        };
        let this = SensorSim {
            inner: self.inner.clone(),
            changed: self.changed.clone(),
            port: self.port.clone(),
            client_id: self.client_id.clone(),
            prefix: self.prefix.clone(),
            task: self.task.clone(),
            owner: false,
        };
        let handle = tokio::spawn(async move { this.run(generation, eventloop).await });
        // The previous loop (if any) is the one calling us and returns right after.
        *self.task.lock().unwrap() = Some(handle);
    }

    async fn run(self, generation: u64, mut eventloop: EventLoop) {
        loop {
            let ev = eventloop.poll().await;
            // The lock is held in a block of its own so the guard never lives across an await.
            let disconnected = {
                let mut i = self.inner.lock().unwrap();
                if i.generation != generation {
                    return;
                }
                match ev {
                    Ok(ev) => {
                        on_event(&mut i, ev);
                        false
                    }
                    Err(_) => {
                        i.connected = false;
                        drop_unacked(&mut i);
                        i.client = None;
                        true
                    }
                }
            };
            self.changed.send_modify(|n| *n += 1);
            if disconnected {
                // Bounded reconnect pace while the broker (or the hub) is away.
                tokio::time::sleep(Duration::from_millis(50)).await;
                self.new_generation();
                return;
            }
        }
    }
}

fn on_event(i: &mut Inner, ev: Event) {
    match ev {
        Event::Incoming(Packet::ConnAck(_)) => i.connected = true,
        Event::Outgoing(Outgoing::Publish(pkid)) => {
            let tag = match i.collided.take() {
                Some((p, tag)) if p == pkid => tag,
                other => {
                    i.collided = other;
                    i.queued
                        .pop_front()
                        .expect("Outgoing::Publish without a queued publish")
                }
            };
            i.in_flight.entry(pkid).or_default().push_back(tag);
        }
        Event::Outgoing(Outgoing::AwaitAck(pkid)) => {
            let tag = i
                .queued
                .pop_front()
                .expect("AwaitAck without a queued publish");
            i.collided = Some((pkid, tag));
        }
        Event::Incoming(Packet::PubAck(ack)) => {
            if let Some(tag) = i.in_flight.get_mut(&ack.pkid).and_then(VecDeque::pop_front) {
                i.acked.push(tag);
            }
        }
        _ => {}
    }
}

fn outstanding(i: &Inner) -> usize {
    i.queued.len()
        + i.in_flight.values().map(VecDeque::len).sum::<usize>()
        + usize::from(i.collided.is_some())
}

fn drop_unacked(i: &mut Inner) {
    let mut lost: Vec<Tag> = i.queued.drain(..).collect();
    lost.extend(i.in_flight.drain().flat_map(|(_, q)| q));
    lost.extend(i.collided.take().map(|(_, t)| t));
    i.lost.extend(lost);
}

impl Drop for SensorSim {
    fn drop(&mut self) {
        if self.owner
            && let Some(t) = self.task.lock().unwrap().take()
        {
            t.abort();
        }
    }
}
