//! The alert receiver: homes' alerts and heartbeats in over MQTT, committed, then acknowledged end to end.
//!
//! Two tasks, as in the home hub's upstream publisher: the poll loop only drives the MQTT connection and forwards
//! publishes through a bounded channel (back-pressure reaches the broker, which stops sending once our unacknowledged
//! window is full); the ingest task parses, commits a batch in one transaction, and only then sends the
//! application-level ack to each home (`{prefix}/acks/{home}`) and the MQTT PubAck (manual acks). A crash between
//! the commit and the acks is harmless: the home resends the same (id, rev) and the store is idempotent on it.
//!
//! Subscriptions are MQTT shared subscriptions (`$share/{group}/…`), so several instances split the homes' traffic;
//! any instance can acknowledge any home because the ack goes to the home's own topic.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hearth_protocol::json::{self, AckMessage, AckedAlert};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::clock::{AnyClock, Clock};
use crate::config::{self, Config};
use crate::live::LiveEvent;
use crate::store::{Inbound, Store};

pub const ALERTS_RECEIVED: &str = "community_alert_revisions_stored_total";
pub const ALERTS_DUPLICATE: &str = "community_alert_revisions_duplicate_total";
pub const QUARANTINED: &str = "community_messages_quarantined_total";
pub const STORE_FAILURES: &str = "community_store_failures_total";

/// Most messages committed in one transaction.
pub const MAX_BATCH: usize = 256;
/// The ingest channel's capacity.
const CHANNEL: usize = 1024;
/// Publishes the poll loop holds while ingest is behind. The broker sends at most its in-flight window of
/// unacknowledged QoS 1 messages (Mosquitto `max_inflight_messages`), so this is rarely approached; at the cap the
/// loop stops polling (back-pressure to the broker).
const PENDING_CAP: usize = 4096;
/// rumqttc's request channel capacity (PubAcks and ack publishes).
const REQUESTS: usize = 32_768;
// Why this cannot deadlock: rumqttc sends queued requests (our PubAcks and acks) only from inside `poll()`, and only
// once the events it already read are consumed. So the poll loop must keep polling while ingest is behind: it
// buffers publishes (up to PENDING_CAP) instead of waiting on the ingest channel. Only at the cap does it stop
// polling; ingest can then process at most CHANNEL + PENDING_CAP messages, queuing at most two requests each, which
// REQUESTS holds, so ingest never waits on a full request channel while the poll loop waits on ingest. (A first
// version waited on the ingest channel inside the poll loop: under a burst from 200 homes the request channel
// filled, both sides waited, and the broker dropped the connection for a missed keepalive.)
const _: () = assert!(2 * (CHANNEL + PENDING_CAP) < REQUESTS);

#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    #[error("mqtt.broker: {0}")]
    Broker(String),
}

/// The MQTT client options for this instance: manual acks (PubAck only after commit), a clean session (the homes
/// resend anything not acknowledged end to end, so no broker session is needed), a large request queue (acks).
pub fn mqtt_options(cfg: &Config) -> Result<MqttOptions, ReceiverError> {
    let (host, port) = config::broker_addr(&cfg.mqtt.broker).map_err(ReceiverError::Broker)?;
    let mut opts = MqttOptions::new(cfg.mqtt.client_id.clone(), host, port);
    opts.set_keep_alive(Duration::from_secs(15))
        .set_clean_session(true)
        .set_manual_acks(true)
        .set_inflight(1000)
        .set_max_packet_size(1 << 20, 1 << 20)
        .set_request_channel_capacity(REQUESTS);
    Ok(opts)
}

/// The MQTT client (shared with the dashboard, which publishes nurses' actions) and its event loop.
pub fn mqtt_client(cfg: &Config) -> Result<(AsyncClient, EventLoop), ReceiverError> {
    let opts = mqtt_options(cfg)?;
    let (client, mut eventloop) = AsyncClient::new(opts, REQUESTS);
    let mut net = rumqttc::NetworkOptions::new();
    net.set_tcp_nodelay(true);
    eventloop.set_network_options(net);
    Ok((client, eventloop))
}

/// The subscription filters of this instance: shared (`$share/{group}/…`) unless `mqtt.share_group` is empty (one
/// instance, or a broker without shared subscriptions).
pub fn filters(cfg: &Config) -> [String; 2] {
    let (g, p) = (&cfg.mqtt.share_group, &cfg.mqtt.topic_prefix);
    let share = if g.is_empty() {
        String::new()
    } else {
        format!("$share/{g}/")
    };
    [
        format!("{share}{p}/alerts/#"),
        format!("{share}{p}/heartbeat/#"),
    ]
}

/// What the receiver works with.
pub struct Receiver {
    pub cfg: Arc<Config>,
    pub store: Store,
    pub clock: AnyClock,
    /// The client whose event loop [`run`] drives (acks go out through it).
    pub client: AsyncClient,
    pub live: broadcast::Sender<LiveEvent>,
    /// Told each time the subscriptions are acknowledged.
    pub subscribed: Option<tokio::sync::watch::Sender<u64>>,
}

/// Runs the receiver until `shutdown`.
pub async fn run(r: Receiver, mut eventloop: EventLoop, shutdown: CancellationToken) {
    let Receiver {
        cfg,
        store,
        clock,
        client,
        live,
        subscribed,
    } = r;
    let (tx, rx) = mpsc::channel::<Publish>(CHANNEL);
    let ingest = tokio::spawn(ingest_loop(
        cfg.clone(),
        store,
        clock,
        client.clone(),
        rx,
        live,
        shutdown.clone(),
    ));
    let subs = filters(&cfg);
    let mut failures = 0u32;
    let mut pending: std::collections::VecDeque<Publish> = std::collections::VecDeque::new();
    loop {
        let ev = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = tx.reserve(), if !pending.is_empty() => {
                match (permit, pending.pop_front()) {
                    (Ok(permit), Some(p)) => permit.send(p),
                    (Err(_), _) => break,
                    (Ok(_), None) => {}
                }
                continue;
            }
            ev = eventloop.poll(), if pending.len() < PENDING_CAP => ev,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                failures = 0;
                tracing::info!("connected to the homes' broker");
                let filters = subs
                    .iter()
                    .map(|f| rumqttc::SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
                if let Err(e) = client.try_subscribe_many(filters) {
                    tracing::error!(error = %e, "cannot subscribe to alerts and heartbeats");
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                if let Some(s) = &subscribed {
                    s.send_modify(|n| *n += 1);
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => match tx.try_send(p) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(p)) => pending.push_back(p),
                Err(mpsc::error::TrySendError::Closed(_)) => break,
            },
            Ok(_) => {}
            Err(e) => {
                failures = failures.saturating_add(1);
                if failures == 1 {
                    tracing::warn!(error = %e, "homes' broker connection lost; reconnecting");
                }
                // Unacknowledged publishes of the lost session are resent by the homes; drop our copies so their
                // PubAcks are not sent on the new connection with stale packet ids.
                pending.clear();
                let delay = Duration::from_millis(100u64 << failures.min(6));
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    drop(tx);
    let _ = ingest.await;
    let _ = client.try_disconnect();
}

/// Classifies one publish. Never fails: what is not an alert or a heartbeat on its own topic is quarantined.
pub fn classify(prefix: &str, topic: &str, payload: &[u8]) -> Inbound {
    let reject = |reason: &str| Inbound::Rejected {
        topic: topic.to_string(),
        reason: reason.to_string(),
        payload: String::from_utf8_lossy(&payload[..payload.len().min(json::MAX_PAYLOAD)])
            .into_owned(),
    };
    if let Some(patient) = json::parse_alert_topic(prefix, topic) {
        match json::parse_alert(payload) {
            Ok(a) if a.patient != patient => reject("topic_mismatch"),
            // The home id becomes a topic level of the ack: it must be one.
            Ok(a) if !json::is_valid_topic_id(&a.home) => reject("bad_home_id"),
            Ok(a) => Inbound::Alert(Box::new(a)),
            Err(e) => reject(e.as_str()),
        }
    } else if let Some(home) = json::parse_heartbeat_topic(prefix, topic) {
        match json::parse_heartbeat(payload) {
            Ok(h) if h.home != home => reject("topic_mismatch"),
            Ok(h) => Inbound::Heartbeat(h),
            Err(e) => reject(e.as_str()),
        }
    } else {
        reject("unexpected_topic")
    }
}

async fn ingest_loop(
    cfg: Arc<Config>,
    store: Store,
    clock: AnyClock,
    client: AsyncClient,
    mut rx: mpsc::Receiver<Publish>,
    live: broadcast::Sender<LiveEvent>,
    shutdown: CancellationToken,
) {
    let prefix = cfg.mqtt.topic_prefix.clone();
    let mut publishes: Vec<Publish> = Vec::with_capacity(MAX_BATCH);
    loop {
        publishes.clear();
        match rx.recv().await {
            Some(p) => publishes.push(p),
            None => break,
        }
        while publishes.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => publishes.push(p),
                Err(_) => break,
            }
        }
        let batch: Vec<Inbound> = publishes
            .iter()
            .map(|p| classify(&prefix, &p.topic, &p.payload))
            .collect();
        // Until it commits, nothing is acknowledged; retry with a bounded pace (the homes resend meanwhile, and the
        // duplicates are harmless).
        let mut attempt = 0u32;
        let outcome = loop {
            match store.ingest(&batch, clock.now_ms()).await {
                Ok(o) => break Some(o),
                Err(e) => {
                    attempt += 1;
                    metrics::counter!(STORE_FAILURES).increment(1);
                    tracing::error!(error = %e, attempt, "cannot commit received alerts; will retry");
                    tokio::select! {
                        _ = shutdown.cancelled() => break None,
                        _ = tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt.min(10)))) => {}
                    }
                }
            }
        };
        let Some(outcome) = outcome else { break };
        metrics::counter!(ALERTS_RECEIVED).increment(outcome.new_revisions);
        metrics::counter!(ALERTS_DUPLICATE).increment(outcome.duplicates);
        if outcome.quarantined > 0 {
            metrics::counter!(QUARANTINED).increment(outcome.quarantined);
            for m in &batch {
                if let Inbound::Rejected { reason, .. } = m {
                    tracing::warn!(%reason, "message from a home quarantined");
                }
            }
        }
        send_acks(&client, &prefix, &outcome.acks).await;
        for p in &publishes {
            if let Err(e) = client.ack(p).await {
                tracing::warn!(error = %e, "cannot queue a PubAck");
            }
        }
        for home in &outcome.recovered_homes {
            tracing::info!(%home, "home heard from again");
            let _ = live.send(LiveEvent::Homes);
        }
        if !outcome.changed_alerts.is_empty() {
            let _ = live.send(LiveEvent::Alerts(outcome.changed_alerts.clone()));
        }
    }
}

/// One ack message per home naming every revision of the batch (the home ignores names it did not send).
async fn send_acks(
    client: &AsyncClient,
    prefix: &str,
    acks: &BTreeMap<String, Vec<(String, u32)>>,
) {
    for (home, revs) in acks {
        let msg = AckMessage {
            acks: revs
                .iter()
                .map(|(id, rev)| AckedAlert {
                    id: id.clone(),
                    rev: *rev,
                })
                .collect(),
        };
        let body = match serde_json::to_vec(&msg) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode an ack");
                continue;
            }
        };
        if let Err(e) = client
            .publish(json::ack_topic(prefix, home), QoS::AtLeastOnce, false, body)
            .await
        {
            // The home resends, and the next copy is acked again.
            tracing::warn!(error = %e, %home, "cannot queue an ack");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALERT: &str = r#"{"id":"a1","rev":1,"home":"home-1","patient":"p-1","severity":"high","state":"open",
        "kind":"clinical","rule":"news2","raised_at":"2026-11-22T10:00:00.000Z","message":"NEWS2 7"}"#;

    #[test]
    fn alert_on_its_patients_topic_is_accepted() {
        assert!(matches!(
            classify("care", "care/alerts/p-1", ALERT.as_bytes()),
            Inbound::Alert(_)
        ));
    }

    #[test]
    fn alert_on_another_patients_topic_is_quarantined() {
        match classify("care", "care/alerts/p-2", ALERT.as_bytes()) {
            Inbound::Rejected { reason, .. } => assert_eq!(reason, "topic_mismatch"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_payload_is_quarantined_with_the_protocol_reason() {
        match classify("care", "care/alerts/p-1", b"{\"id\":") {
            Inbound::Rejected { reason, .. } => assert_eq!(reason, "malformed"),
            other => panic!("{other:?}"),
        }
    }
}
