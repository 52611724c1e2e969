//! Upstream publisher: the durable outbox → the community hub over MQTT QoS 1.
//!
//! A message is *delivered* only when the community hub's application-level acknowledgement
//! (`{prefix}/acks/{home}`, sent after its own commit) names its (alert id, rev); the broker's PubAck is recorded but
//! means only "in broker memory" (invariant 3). Per patient one message is in flight at a time (head of line), so a
//! patient's alerts arrive in the order they were raised even across resends and restarts; patients proceed in
//! parallel. Resends carry the same id and rev; the receiver is idempotent on them.
//!
//! Two tasks: the poll loop only drives the MQTT connection and forwards events (it never touches the database), and
//! the publisher reads the outbox, publishes, and reports progress to the core loop, the only writer.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use hearth_protocol::json::{self, Heartbeat};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, Millis};
use crate::config::{self, Config};
use crate::core::CoreInput;
use crate::failpoints::{self, crash_point};
use crate::sources::mqtt::Backoff;
use crate::store::{DeliveryUpdate, OutboxRow, Store};
use crate::telemetry as m;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream.broker: {0}")]
    Url(String),
    #[error("upstream TLS: cannot read {path}: {source}")]
    TlsFile {
        path: String,
        source: std::io::Error,
    },
}

/// Largest packet taken from the community hub's broker.
const UPSTREAM_MAX_INCOMING: usize = 256 * 1024;

/// What the poll loop forwards.
enum LinkEvent {
    Up,
    Down(String),
    /// A message on a topic we subscribe to: acknowledgements or nurse actions.
    Message(String, bytes::Bytes),
    Sent(u16),
    PubAck(u16),
}

struct Flight {
    row: OutboxRow,
    sent_at: Millis,
}

/// TCP_NODELAY: an alert is one small packet, and Nagle's algorithm would hold it back waiting for an ACK (measured:
/// ~25 ms of the reading→alert latency).
pub fn low_latency() -> rumqttc::NetworkOptions {
    let mut n = rumqttc::NetworkOptions::new();
    n.set_tcp_nodelay(true);
    n
}

pub fn mqtt_options(cfg: &Config) -> Result<MqttOptions, UpstreamError> {
    let (host, port, tls) =
        config::broker_addr(&cfg.upstream.broker).map_err(UpstreamError::Url)?;
    let mut opts = MqttOptions::new(format!("hearthd-{}-upstream", cfg.home.id), host, port);
    let cap = 2 * cfg.upstream.max_in_flight + 64;
    opts.set_keep_alive(Duration::from_secs(15))
        // The outbox is the durable state; the broker session need not be.
        .set_clean_session(true)
        // Above the JSON limit (16 KiB), so an oversized ack or action is read, refused as `too_large` and counted,
        // instead of breaking the connection (rumqttc's default limit is 10 KiB).
        .set_max_packet_size(UPSTREAM_MAX_INCOMING, UPSTREAM_MAX_INCOMING)
        .set_request_channel_capacity(cap)
        .set_inflight(cfg.upstream.max_in_flight.min(u16::MAX as usize) as u16);
    if tls {
        let t = cfg
            .upstream
            .tls
            .as_ref()
            .ok_or_else(|| UpstreamError::Url("mqtts:// needs [upstream.tls]".into()))?;
        let transport = crate::tls::client_transport(t).map_err(|e| UpstreamError::TlsFile {
            path: e.path,
            source: e.source,
        })?;
        opts.set_transport(transport);
    }
    Ok(opts)
}

/// Runs the publisher until `shutdown`.
pub async fn run(
    cfg: Arc<Config>,
    store: Store,
    clock: impl Clock,
    core: mpsc::Sender<CoreInput>,
    outbox_changed: Arc<Notify>,
    shutdown: CancellationToken,
) -> Result<(), UpstreamError> {
    let opts = mqtt_options(&cfg)?;
    let (client, mut eventloop) = AsyncClient::new(opts, 2 * cfg.upstream.max_in_flight + 64);
    eventloop.set_network_options(low_latency());
    let (ev_tx, mut ev_rx) = mpsc::channel::<LinkEvent>(256);
    let ack_topic = json::ack_topic(&cfg.upstream.topic_prefix, &cfg.home.id);
    let action_topic = json::action_topic(&cfg.upstream.topic_prefix, &cfg.home.id);
    let baseline_topic = json::baseline_topic(&cfg.upstream.topic_prefix, &cfg.home.id);
    let poll_shutdown = shutdown.clone();
    let poll = tokio::spawn(async move {
        let mut backoff = Backoff::default();
        loop {
            let ev = tokio::select! {
                _ = poll_shutdown.cancelled() => break,
                ev = eventloop.poll() => ev,
            };
            let forward = match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff.reset();
                    Some(LinkEvent::Up)
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    Some(LinkEvent::Message(p.topic, p.payload))
                }
                Ok(Event::Incoming(Packet::PubAck(a))) => Some(LinkEvent::PubAck(a.pkid)),
                // QoS 0 heartbeats are reported with packet id 0 and get no PubAck: only alert messages (QoS 1,
                // pkid ≥ 1) may take an entry of the sent queue, or later PubAcks land on the wrong outbox rows.
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) if pkid != 0 => {
                    Some(LinkEvent::Sent(pkid))
                }
                Ok(_) => None,
                Err(e) => {
                    if ev_tx.send(LinkEvent::Down(e.to_string())).await.is_err() {
                        break;
                    }
                    tokio::select! {
                        _ = poll_shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                    None
                }
            };
            if let Some(f) = forward
                && ev_tx.send(f).await.is_err()
            {
                break;
            }
        }
    });

    let mut p = Publisher {
        cfg: cfg.clone(),
        store,
        client,
        core,
        connected: false,
        in_flight: HashMap::new(),
        acked: HashSet::new(),
        sent_fifo: VecDeque::new(),
        by_pkid: HashMap::new(),
        last_heartbeat: 0,
    };
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            ev = ev_rx.recv() => match ev {
                None => break,
                Some(LinkEvent::Up) => {
                    tracing::info!("community hub connected");
                    p.connected = true;
                    metrics::gauge!(m::UPSTREAM_CONNECTED).set(1.0);
                    let subs = [&ack_topic, &action_topic, &baseline_topic]
                        .map(|t| rumqttc::SubscribeFilter::new(t.clone(), QoS::AtLeastOnce));
                    if let Err(e) = p.client.try_subscribe_many(subs) {
                        tracing::error!(error = %e, "cannot subscribe to acknowledgements and actions");
                    }
                    // Whatever was in flight on the old connection is resent, same id and rev.
                    p.in_flight.clear();
                    p.sent_fifo.clear();
                    p.by_pkid.clear();
                    p.report(CoreInput::UpstreamLink { up: true, at: clock.now_ms() }).await;
                    p.fill(clock.now_ms()).await;
                }
                Some(LinkEvent::Down(why)) => {
                    if p.connected {
                        tracing::warn!(error = %why, "community hub connection lost");
                    }
                    p.connected = false;
                    metrics::gauge!(m::UPSTREAM_CONNECTED).set(0.0);
                    p.in_flight.clear();
                    p.report(CoreInput::UpstreamLink { up: false, at: clock.now_ms() }).await;
                }
                Some(LinkEvent::Message(topic, payload)) if topic == ack_topic => {
                    p.on_ack(&payload, clock.now_ms()).await
                }
                Some(LinkEvent::Message(topic, payload)) if topic == action_topic => p.on_action(&payload).await,
                Some(LinkEvent::Message(topic, payload)) if topic == baseline_topic => {
                    p.on_baseline(&payload).await
                }
                Some(LinkEvent::Message(topic, _)) => tracing::warn!(%topic, "message on an unexpected topic"),
                Some(LinkEvent::Sent(pkid)) => {
                    if let Some(outbox) = p.sent_fifo.pop_front() {
                        p.by_pkid.insert(pkid, outbox);
                    }
                }
                Some(LinkEvent::PubAck(pkid)) => {
                    if let Some((outbox_id, alert_id, rev)) = p.by_pkid.remove(&pkid) {
                        crash_point(failpoints::ALERT_PUBACK);
                        let at = clock.now_ms();
                        p.report(CoreInput::Delivery(DeliveryUpdate::PubAcked { outbox_id, alert_id, rev, at })).await;
                    }
                }
            },
            _ = outbox_changed.notified() => p.fill(clock.now_ms()).await,
            _ = tick.tick() => p.on_tick(clock.now_ms()).await,
        }
    }
    let _ = p.client.try_disconnect();
    poll.abort();
    Ok(())
}

struct Publisher {
    cfg: Arc<Config>,
    store: Store,
    client: AsyncClient,
    core: mpsc::Sender<CoreInput>,
    connected: bool,
    /// Per patient, the one message awaiting the community hub's acknowledgement.
    in_flight: HashMap<String, Flight>,
    /// Outbox rows the community hub has acknowledged whose delivery the core may not have committed yet: the
    /// patient's next message is sent without waiting for that commit. Kept across reconnects (an ack is a fact);
    /// pruned on the tick once committed.
    acked: HashSet<i64>,
    sent_fifo: VecDeque<(i64, String, u32)>,
    by_pkid: HashMap<u16, (i64, String, u32)>,
    last_heartbeat: Millis,
}

impl Publisher {
    async fn report(&self, input: CoreInput) {
        // The core outlives the publisher during shutdown; a closed channel means we are stopping.
        let _ = self.core.send(input).await;
    }

    /// Publishes the head of line of every patient with nothing in flight.
    async fn fill(&mut self, now: Millis) {
        if !self.connected {
            return;
        }
        let room = self
            .cfg
            .upstream
            .max_in_flight
            .saturating_sub(self.in_flight.len());
        if room == 0 {
            return;
        }
        let busy: HashSet<String> = self.in_flight.keys().cloned().collect();
        let due = match self.store.outbox_heads(&busy, &self.acked, room).await {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the outbox");
                return;
            }
        };
        for row in due {
            self.publish(row, now, false).await;
        }
    }

    async fn publish(&mut self, row: OutboxRow, now: Millis, resend: bool) {
        match self.client.try_publish(
            row.topic.clone(),
            QoS::AtLeastOnce,
            false,
            row.payload.clone().into_bytes(),
        ) {
            Ok(()) => {
                crash_point(failpoints::ALERT_PUBLISHED);
                self.sent_fifo
                    .push_back((row.id, row.alert_id.clone(), row.rev));
                let update = DeliveryUpdate::Published {
                    outbox_id: row.id,
                    alert_id: row.alert_id.clone(),
                    rev: row.rev,
                    at: now,
                    resend,
                };
                self.in_flight
                    .insert(row.patient.clone(), Flight { row, sent_at: now });
                self.report(CoreInput::Delivery(update)).await;
            }
            Err(e) => tracing::warn!(error = %e, "alert not queued for publishing; will retry"),
        }
    }

    async fn on_ack(&mut self, payload: &[u8], now: Millis) {
        let acks = match json::parse_ack(payload) {
            Ok(a) => a,
            Err(e) => {
                metrics::counter!(m::UPSTREAM_MESSAGES_REJECTED, "topic" => "acks", "reason" => e.as_str())
                    .increment(1);
                tracing::warn!(error = %e, "malformed acknowledgement from the community hub");
                return;
            }
        };
        for a in acks.acks {
            crash_point(failpoints::ALERT_ACKED);
            let patient = self
                .in_flight
                .iter()
                .find(|(_, f)| f.row.alert_id == a.id && f.row.rev == a.rev)
                .map(|(p, _)| p.clone());
            if let Some(p) = patient
                && let Some(f) = self.in_flight.remove(&p)
            {
                self.acked.insert(f.row.id);
            }
            // Recorded even when not in flight here (an ack of an earlier send): the update is idempotent.
            self.report(CoreInput::Delivery(DeliveryUpdate::Delivered {
                alert_id: a.id,
                rev: a.rev,
                at: now,
            }))
            .await;
        }
    }

    /// A nurse's action: applied by the core, which owns alert state.
    async fn on_action(&mut self, payload: &[u8]) {
        match json::parse_action(payload) {
            Ok(a) => self.report(CoreInput::Action(a)).await,
            Err(e) => {
                metrics::counter!(m::UPSTREAM_MESSAGES_REJECTED, "topic" => "actions", "reason" => e.as_str())
                    .increment(1);
                tracing::warn!(error = %e, "malformed action from the community hub");
            }
        }
    }

    /// A personal baseline agreed in the dashboard: applied by the core, which owns the rule book.
    async fn on_baseline(&mut self, payload: &[u8]) {
        match json::parse_baseline(payload) {
            Ok(b) => self.report(CoreInput::Baseline(b)).await,
            Err(e) => {
                metrics::counter!(m::UPSTREAM_MESSAGES_REJECTED, "topic" => "baselines")
                    .increment(1);
                tracing::warn!(error = %e, "malformed baseline from the community hub");
            }
        }
    }

    async fn on_tick(&mut self, now: Millis) {
        let resend_ms = (self.cfg.upstream.resend_after_s as Millis) * 1000;
        if self.connected {
            let overdue: Vec<String> = self
                .in_flight
                .iter()
                .filter(|(_, f)| now - f.sent_at >= resend_ms)
                .map(|(p, _)| p.clone())
                .collect();
            for p in overdue {
                if let Some(f) = self.in_flight.remove(&p) {
                    self.publish(f.row, now, true).await;
                }
            }
            self.fill(now).await;
        }
        if !self.acked.is_empty() {
            match self.store.outbox_undelivered_among(&self.acked).await {
                Ok(still) => self.acked = still,
                Err(e) => tracing::warn!(error = %e, "cannot read the outbox"),
            }
        }
        let (depth, oldest) = self.store.outbox_depth().await.unwrap_or((0, None));
        let oldest_s = oldest.map(|t| ((now - t).max(0) / 1000) as u64);
        metrics::gauge!(m::OUTBOX_DEPTH).set(depth as f64);
        metrics::gauge!(m::OUTBOX_OLDEST_AGE).set(oldest_s.unwrap_or(0) as f64);
        let every = (self.cfg.upstream.heartbeat_s as Millis) * 1000;
        if self.connected && now - self.last_heartbeat >= every {
            self.last_heartbeat = now;
            let hb = Heartbeat {
                home: self.cfg.home.id.clone(),
                at: now,
                outbox_depth: depth.max(0) as u64,
                oldest_pending_s: oldest_s,
            };
            let topic = format!(
                "{}/heartbeat/{}",
                self.cfg.upstream.topic_prefix, self.cfg.home.id
            );
            let body = serde_json::to_vec(&hb).unwrap_or_default();
            if let Err(e) = self.client.try_publish(topic, QoS::AtMostOnce, false, body) {
                tracing::debug!(error = %e, "heartbeat not queued");
            }
        }
    }
}
