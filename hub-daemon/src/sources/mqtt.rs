//! MQTT source: JSON readings on `{prefix}/readings/{device}` and board frames on `{prefix}/frames/{device}`.
//!
//! QoS 1 with manual acknowledgements: the PubAck (and, for frames, the ack frame) is sent by the core loop after
//! the commit, never here. The poll loop only parses and hands over; it never awaits the database. The broker's
//! in-flight window bounds how many unacknowledged readings can be waiting, and the awaited bounded send into the
//! core pushes back on the broker when the core is busy.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::core::{Acknowledge, CoreInput, Notice};
use crate::gate::Registry;
use crate::telemetry as m;

/// Largest publish taken from the broker. Anything up to this is received and quarantined as `too_large` (the JSON
/// limit is 16 KiB) and acknowledged; a larger one would break the connection and be redelivered for ever, so
/// production brokers must set `message_size_limit` below it (docs/hub-daemon.md).
const MAX_INCOMING: usize = 16 * 1024 * 1024;

/// Room in rumqttc's request channel for every acknowledgement that can be owed at once. MQTT packet ids are 16-bit,
/// so a broker can have at most 65,535 QoS 1 publishes unacknowledged in one session: with this capacity `try_ack`
/// cannot fail for lack of room, whatever in-flight window the broker is configured with. (The channel allocates as
/// it fills, so the bound costs nothing in the normal case.)
const REQUEST_CAPACITY: usize = u16::MAX as usize + 64;

pub struct MqttSourceConfig {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub prefix: String,
    pub max_inflight: u16,
    pub registry: Arc<Registry>,
}

/// Acknowledges one publish once its fate is committed.
struct MqttAck {
    client: AsyncClient,
    publish: Publish,
    frame_ack_topic: Option<String>,
}

impl Acknowledge for MqttAck {
    fn committed(self: Box<Self>, frame_ack: Option<Vec<u8>>) {
        if let (Some(topic), Some(bytes)) = (self.frame_ack_topic, frame_ack)
            && let Err(e) = self
                .client
                .try_publish(topic, QoS::AtLeastOnce, false, bytes)
        {
            metrics::counter!(m::ACKS_FAILED).increment(1);
            tracing::warn!(error = %e, "ack frame not queued; the board will resend and be acked as a duplicate");
        }
        if self.publish.qos != QoS::AtMostOnce {
            // try_ack cannot block, and cannot find the channel full (REQUEST_CAPACITY); it fails only if the
            // connection is gone, and then the broker redelivers.
            if let Err(e) = self.client.try_ack(&self.publish) {
                metrics::counter!(m::ACKS_FAILED).increment(1);
                tracing::warn!(error = %e, "PubAck not queued; the broker will redeliver and the hub ack it as a duplicate");
            }
        }
    }
}

/// Runs the source until `shutdown`. `ready` fires once the first subscription is acknowledged.
pub async fn run(
    cfg: MqttSourceConfig,
    clock: impl Clock,
    tx: mpsc::Sender<CoreInput>,
    mut notices: mpsc::Receiver<Notice>,
    ready: oneshot::Sender<()>,
    shutdown: CancellationToken,
) {
    let mut notices_open = true;
    let mut opts = MqttOptions::new(cfg.client_id.clone(), cfg.host.clone(), cfg.port);
    opts.set_keep_alive(Duration::from_secs(30))
        // Persistent session: what we have not acknowledged is redelivered after a reconnect or restart.
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_max_packet_size(MAX_INCOMING, 64 * 1024)
        .set_request_channel_capacity(REQUEST_CAPACITY);
    let (client, mut eventloop) = AsyncClient::new(opts, REQUEST_CAPACITY);
    eventloop.set_network_options(crate::upstream::low_latency());
    let readings = format!("{}/readings/+", cfg.prefix);
    let frames = format!("{}/frames/+", cfg.prefix);
    let checkins = format!("{}/checkins/+", cfg.prefix);
    let mut ready = Some(ready);
    let mut backoff = Backoff::default();
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            ev = eventloop.poll() => ev,
            n = notices.recv(), if notices_open => {
                match n {
                    Some(n) => {
                        if let Err(e) = client.try_publish(n.topic, QoS::AtLeastOnce, false, n.payload) {
                            metrics::counter!(m::NOTICES_DROPPED).increment(1);
                            tracing::warn!(error = %e, "reminder not queued for the sensor broker");
                        }
                    }
                    None => notices_open = false,
                }
                continue;
            }
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                tracing::info!(broker = %format!("{}:{}", cfg.host, cfg.port), "sensor broker connected");
                let subs = [
                    (readings.clone(), QoS::AtLeastOnce),
                    (checkins.clone(), QoS::AtLeastOnce),
                    (frames.clone(), QoS::AtLeastOnce),
                ]
                .map(|(t, q)| rumqttc::SubscribeFilter::new(t, q));
                if let Err(e) = client.try_subscribe_many(subs) {
                    tracing::error!(error = %e, "cannot subscribe to sensor topics");
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let input = classify(&cfg, &client, p, clock.now_ms());
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    sent = tx.send(input) => if sent.is_err() { break },
                }
            }
            Ok(_) => {}
            Err(e) => {
                let wait = backoff.next_delay();
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "sensor broker connection lost");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
    let _ = client.try_disconnect();
}

fn classify(cfg: &MqttSourceConfig, client: &AsyncClient, p: Publish, now: i64) -> CoreInput {
    let payload = p.payload.clone();
    let mut routed = super::route(&cfg.prefix, &p.topic, &payload, &cfg.registry);
    let ack = MqttAck {
        client: client.clone(),
        publish: p,
        frame_ack_topic: routed.frame_ack_topic.take(),
    };
    routed.into_input(now, payload, Box::new(ack))
}

/// Capped exponential backoff with full jitter.
#[derive(Debug, Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    const BASE_MS: u64 = 100;
    const CAP_MS: u64 = 5_000;

    pub fn next_delay(&mut self) -> Duration {
        let ceiling = (Self::BASE_MS << self.attempt.min(16)).min(Self::CAP_MS);
        self.attempt = self.attempt.saturating_add(1);
        Duration::from_millis(rand::rng().random_range(ceiling / 2..=ceiling))
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}
