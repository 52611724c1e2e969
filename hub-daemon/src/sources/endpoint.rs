//! The embedded MQTT endpoint: the default way devices and gateways reach the hub, with no external service.
//!
//! An MQTT 3.1.1 server (loopback by default) that hands every PUBLISH to the core loop and sends the PUBACK only
//! once the reading is committed — so a device deletes a reading only when the hub has it on disk (invariant 1).
//! A general-purpose broker cannot do that: rumqttd, like Mosquitto, acknowledges a publish on receipt, and an
//! embedded broker dies with the daemon, taking whatever it had acknowledged but not delivered. Hence this small
//! server on rumqttc's own packet codec (`mqttbytes`) instead of an embedded broker.
//!
//! Back-pressure: each connection may have `max_inflight` publishes awaiting their commit; beyond that the endpoint
//! stops reading the socket, and TCP pushes back on the device. Boards subscribe to
//! `{prefix}/frame-acks/{device}` for their acknowledgement frames, sent at QoS 0 (an ack frame is idempotent: it
//! names the highest committed sequence, and the next one repeats it). QoS 2 publishes are answered PUBREC after the
//! commit and PUBCOMP on PUBREL.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use rumqttc::mqttbytes::{self, QoS, matches, valid_filter};
use rumqttc::{
    ConnAck, ConnectReturnCode, Packet, PubAck, PubComp, PubRec, Publish, SubAck,
    SubscribeReasonCode, UnsubAck,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::core::{Acknowledge, CoreInput, Notice};
use crate::device_auth::{self, Credentials};
use crate::gate::Registry;
use crate::model::Reason;
use crate::telemetry as m;

/// Largest packet read whole; a larger PUBLISH is skipped, quarantined as `too_large` and acknowledged.
pub const MAX_PACKET: usize = 256 * 1024;
/// A client must send CONNECT within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct EndpointConfig {
    pub prefix: String,
    /// Publishes per connection awaiting their commit before the endpoint stops reading.
    pub max_inflight: usize,
    pub registry: Arc<Registry>,
    /// Device credentials (`[sensors.auth]`): when set, every client logs in as a device and may publish and
    /// subscribe only under its own id (`crate::device_auth`).
    pub credentials: Option<Arc<Credentials>>,
}

/// A connection's subscription filters and its outgoing packet queue.
type Subscription = (Vec<String>, mpsc::Sender<Packet>);

/// Connections and their subscriptions (for acknowledgement frames to boards).
#[derive(Default)]
struct Subscribers {
    conns: Mutex<HashMap<u64, Subscription>>,
}

impl Subscribers {
    fn publish(&self, topic: &str, payload: Vec<u8>) {
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        for (filters, tx) in conns.values() {
            if filters.iter().any(|f| matches(topic, f)) {
                // QoS 0: an ack frame lost here is repeated by the next one.
                let _ = tx.try_send(Packet::Publish(Publish::new(
                    topic,
                    QoS::AtMostOnce,
                    payload.clone(),
                )));
            }
        }
    }
}

struct Shared<C> {
    cfg: EndpointConfig,
    clock: C,
    core: mpsc::Sender<CoreInput>,
    subs: Subscribers,
    next_id: AtomicU64,
}

/// Serves connections on `listener` until `shutdown`.
pub async fn serve<C: Clock + Clone>(
    listener: TcpListener,
    cfg: EndpointConfig,
    clock: C,
    core: mpsc::Sender<CoreInput>,
    mut notices: mpsc::Receiver<Notice>,
    shutdown: CancellationToken,
) {
    let mut notices_open = true;
    let shared = Arc::new(Shared {
        cfg,
        clock,
        core,
        subs: Subscribers::default(),
        next_id: AtomicU64::new(1),
    });
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    let stop = shutdown.clone();
                    conns.spawn(async move {
                        if let Err(e) = connection(stream, shared, stop).await {
                            tracing::debug!(%peer, error = %e, "sensor connection closed");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            n = notices.recv(), if notices_open => match n {
                // QoS 0 to whoever subscribed (the home display): a reminder is advisory, the team's alert follows.
                Some(n) => shared.subs.publish(&n.topic, n.payload.into_bytes()),
                None => notices_open = false,
            },
        }
    }
    conns.shutdown().await;
}

#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("keep-alive expired")]
    KeepAlive,
    #[error("the core loop stopped")]
    CoreGone,
    #[error("login refused: {0}")]
    Refused(&'static str),
}

async fn connection<C: Clock + Clone>(
    stream: TcpStream,
    shared: Arc<Shared<C>>,
    shutdown: CancellationToken,
) -> Result<(), ConnError> {
    let (mut rd, mut wr) = stream.into_split();
    let max_inflight = shared.cfg.max_inflight.max(1);
    let (out_tx, mut out_rx) = mpsc::channel::<Packet>(2 * max_inflight + 16);
    let writer = tokio::spawn(async move {
        let mut buf = BytesMut::with_capacity(1024);
        while let Some(p) = out_rx.recv().await {
            buf.clear();
            if p.write(&mut buf, usize::MAX).is_err() || wr.write_all(&buf).await.is_err() {
                break;
            }
        }
    });
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let result = session(&mut rd, id, &shared, &out_tx, max_inflight, &shutdown).await;
    shared
        .subs
        .conns
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
    drop(out_tx);
    // Let queued acknowledgements reach the device before the socket closes.
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
    result
}

async fn session<C: Clock + Clone>(
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    id: u64,
    shared: &Arc<Shared<C>>,
    out: &mpsc::Sender<Packet>,
    max_inflight: usize,
    shutdown: &CancellationToken,
) -> Result<(), ConnError> {
    let permits = Arc::new(Semaphore::new(max_inflight));
    let mut buf = BytesMut::with_capacity(4096);
    let mut keep_alive: Option<Duration> = None;
    let mut connected = false;
    // The device this connection logged in as, when device credentials are configured.
    let mut identity: Option<String> = None;
    let mut skip = 0usize;
    loop {
        // Frame and handle every complete packet already buffered.
        loop {
            if skip > 0 {
                let n = skip.min(buf.len());
                buf.advance(n);
                skip -= n;
                if skip > 0 {
                    break;
                }
            }
            match Packet::read(&mut buf, MAX_PACKET) {
                Ok(Packet::Connect(c)) if !connected => {
                    if let Some(creds) = &shared.cfg.credentials {
                        let login = c.login.map(|l| (l.username, l.password));
                        match creds.verify_async(login).await {
                            Ok(device) => identity = Some(device),
                            Err(refusal) => {
                                metrics::counter!(device_auth::CONNECTIONS_REFUSED, "reason" => refusal.as_str())
                                    .increment(1);
                                tracing::warn!(client = %c.client_id, reason = refusal.as_str(), "sensor login refused");
                                let _ = out.try_send(Packet::ConnAck(ConnAck::new(
                                    ConnectReturnCode::BadUserNamePassword,
                                    false,
                                )));
                                return Err(ConnError::Refused(refusal.as_str()));
                            }
                        }
                    }
                    connected = true;
                    keep_alive = (c.keep_alive > 0)
                        .then(|| Duration::from_millis(c.keep_alive as u64 * 1500));
                    tracing::debug!(client = %c.client_id, "sensor client connected");
                    let _ = out.try_send(Packet::ConnAck(ConnAck::new(
                        ConnectReturnCode::Success,
                        false,
                    )));
                    let mut conns = shared.subs.conns.lock().unwrap_or_else(|e| e.into_inner());
                    conns.insert(id, (Vec::new(), out.clone()));
                }
                Ok(_) if !connected => {
                    return Err(ConnError::Protocol("first packet is not CONNECT".into()));
                }
                Ok(Packet::Connect(_)) => return Err(ConnError::Protocol("second CONNECT".into())),
                Ok(Packet::Publish(p)) => {
                    crate::failpoints::crash_point(crate::failpoints::READING_RECEIVED);
                    let routed = match &identity {
                        Some(device)
                            if !device_auth::may_publish(
                                &shared.cfg.prefix,
                                device,
                                shared.cfg.registry.patient(device).ok(),
                                &p.topic,
                            ) =>
                        {
                            denied_publish(device, &p.topic)
                        }
                        _ => super::route(
                            &shared.cfg.prefix,
                            &p.topic,
                            &p.payload,
                            &shared.cfg.registry,
                        ),
                    };
                    let ctx = HandOver {
                        shared,
                        out,
                        permits: &permits,
                        shutdown,
                    };
                    ctx.send(p.pkid, p.qos, routed, p.payload).await?;
                }
                Ok(Packet::PubRel(r)) => {
                    let _ = out.try_send(Packet::PubComp(PubComp::new(r.pkid)));
                }
                Ok(Packet::Subscribe(s)) => {
                    let codes = s
                        .filters
                        .iter()
                        .map(|f| {
                            if allowed_filter(&shared.cfg, identity.as_deref(), &f.path) {
                                SubscribeReasonCode::Success(if f.qos == QoS::AtMostOnce {
                                    QoS::AtMostOnce
                                } else {
                                    QoS::AtLeastOnce
                                })
                            } else {
                                SubscribeReasonCode::Failure
                            }
                        })
                        .collect();
                    if let Some((filters, _)) = shared
                        .subs
                        .conns
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_mut(&id)
                    {
                        filters.extend(
                            s.filters
                                .iter()
                                .filter(|f| {
                                    allowed_filter(&shared.cfg, identity.as_deref(), &f.path)
                                })
                                .map(|f| f.path.clone()),
                        );
                    }
                    let _ = out.try_send(Packet::SubAck(SubAck::new(s.pkid, codes)));
                }
                Ok(Packet::Unsubscribe(u)) => {
                    if let Some((filters, _)) = shared
                        .subs
                        .conns
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_mut(&id)
                    {
                        filters.retain(|f| !u.topics.contains(f));
                    }
                    let _ = out.try_send(Packet::UnsubAck(UnsubAck::new(u.pkid)));
                }
                Ok(Packet::PingReq) => {
                    let _ = out.try_send(Packet::PingResp);
                }
                Ok(Packet::Disconnect) => return Ok(()),
                // Acknowledgements of our QoS 0 ack frames cannot arrive; anything else a client sends is ignored.
                Ok(_) => {}
                Err(mqttbytes::Error::InsufficientBytes(_)) => break,
                Err(mqttbytes::Error::PayloadSizeLimitExceeded(len)) => {
                    let Some(head) = publish_head(&buf, len) else {
                        if buf.len() >= OVERSIZE_PEEK {
                            return Err(ConnError::Protocol(format!(
                                "oversized non-PUBLISH packet of {len} bytes"
                            )));
                        }
                        break; // need the topic and packet id first
                    };
                    skip = head.frame_len;
                    let detail =
                        format!("too_large: MQTT payload of {len} bytes exceeds {MAX_PACKET}");
                    let device = head.topic.rsplit('/').next().map(str::to_string);
                    let routed = match &identity {
                        Some(d)
                            if !device_auth::may_publish(
                                &shared.cfg.prefix,
                                d,
                                shared.cfg.registry.patient(d).ok(),
                                &head.topic,
                            ) =>
                        {
                            denied_publish(d, &head.topic)
                        }
                        _ => super::Routed::rejected(device, Reason::Malformed, detail),
                    };
                    let ctx = HandOver {
                        shared,
                        out,
                        permits: &permits,
                        shutdown,
                    };
                    ctx.send(head.pkid, head.qos, routed, bytes::Bytes::new())
                        .await?;
                }
                Err(e) => return Err(ConnError::Protocol(e.to_string())),
            }
        }
        let limit = if connected {
            keep_alive
        } else {
            Some(CONNECT_TIMEOUT)
        };
        let read = async {
            match limit {
                Some(d) => tokio::time::timeout(d, rd.read_buf(&mut buf))
                    .await
                    .map_err(|_| ConnError::KeepAlive)?,
                None => rd.read_buf(&mut buf).await,
            }
            .map_err(ConnError::Io)
        };
        let n = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            n = read => n?,
        };
        if n == 0 {
            return Ok(());
        }
    }
}

/// A valid filter this connection may subscribe to (with device credentials: only its own ack frames).
fn allowed_filter(cfg: &EndpointConfig, identity: Option<&str>, filter: &str) -> bool {
    let allowed = valid_filter(filter)
        && identity.is_none_or(|device| {
            let patient = cfg.registry.patient(device).ok();
            device_auth::may_subscribe(&cfg.prefix, device, patient, filter)
        });
    if !allowed && identity.is_some() {
        metrics::counter!(device_auth::ACCESS_DENIED, "kind" => "subscribe").increment(1);
    }
    allowed
}

/// A publish under another device's id: quarantined (`bad_topic`, naming both devices) and acknowledged, never routed
/// — nothing silent, and the payload is kept as evidence.
fn denied_publish(device: &str, topic: &str) -> super::Routed {
    metrics::counter!(device_auth::ACCESS_DENIED, "kind" => "publish").increment(1);
    tracing::warn!(device, %topic, "a device published outside its own topics");
    super::Routed::rejected(
        Some(device.to_string()),
        Reason::BadTopic,
        format!("device {device} may not publish to {topic:?}"),
    )
}

/// Hands one publish (routed) to the core with the handle that will acknowledge it after the commit.
struct HandOver<'a, C> {
    shared: &'a Arc<Shared<C>>,
    out: &'a mpsc::Sender<Packet>,
    permits: &'a Arc<Semaphore>,
    shutdown: &'a CancellationToken,
}

impl<C: Clock + Clone> HandOver<'_, C> {
    async fn send(
        self,
        pkid: u16,
        qos: QoS,
        mut routed: super::Routed,
        payload: bytes::Bytes,
    ) -> Result<(), ConnError> {
        // QoS 0 needs no acknowledgement, so takes no in-flight permit; QoS 1 and 2 wait for one (back-pressure).
        let permit = match qos {
            QoS::AtMostOnce => None,
            _ => self.permits.clone().acquire_owned().await.ok(),
        };
        let ack = EndpointAck {
            out: self.out.clone(),
            pkid,
            qos,
            frame_ack_topic: routed.frame_ack_topic.take(),
            shared: self.shared.clone(),
            _permit: permit,
        };
        let input = routed.into_input(self.shared.clock.now_ms(), payload, Box::new(ack));
        tokio::select! {
            _ = self.shutdown.cancelled() => Err(ConnError::CoreGone),
            sent = self.shared.core.send(input) => sent.map_err(|_| ConnError::CoreGone),
        }
    }
}

/// Acknowledges one publish after its fate is committed; releases its in-flight permit.
struct EndpointAck<C> {
    out: mpsc::Sender<Packet>,
    pkid: u16,
    qos: QoS,
    frame_ack_topic: Option<String>,
    shared: Arc<Shared<C>>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl<C: Clock + Clone> Acknowledge for EndpointAck<C> {
    fn committed(self: Box<Self>, frame_ack: Option<Vec<u8>>) {
        if let (Some(topic), Some(bytes)) = (&self.frame_ack_topic, frame_ack) {
            self.shared.subs.publish(topic, bytes);
        }
        let packet = match self.qos {
            QoS::AtMostOnce => return,
            QoS::AtLeastOnce => Packet::PubAck(PubAck::new(self.pkid)),
            QoS::ExactlyOnce => Packet::PubRec(PubRec::new(self.pkid)),
        };
        // The channel holds more than the in-flight window, so this fails only if the client has gone: it will
        // resend, and the hub acknowledges the resend as a duplicate.
        if self.out.try_send(packet).is_err() {
            metrics::counter!(m::ACKS_FAILED).increment(1);
        }
    }
}

/// Bytes needed to read an oversized PUBLISH's topic and packet id (fixed header + longest topic + id).
const OVERSIZE_PEEK: usize = 5 + 2 + 65_535 + 2;

struct PublishHead {
    topic: String,
    pkid: u16,
    qos: QoS,
    frame_len: usize,
}

/// The topic and packet id at the start of a PUBLISH too large to read whole, once enough bytes are buffered.
fn publish_head(buf: &[u8], remaining_len: usize) -> Option<PublishHead> {
    let byte1 = *buf.first()?;
    if byte1 >> 4 != 3 {
        return None;
    }
    let qos = match (byte1 >> 1) & 0b11 {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    };
    // Remaining length is a 1–4 byte varint after the first byte.
    let len_bytes = buf.iter().skip(1).take(4).position(|b| b & 0x80 == 0)? + 1;
    let header = 1 + len_bytes;
    let topic_len = u16::from_be_bytes([*buf.get(header)?, *buf.get(header + 1)?]) as usize;
    let topic = std::str::from_utf8(buf.get(header + 2..header + 2 + topic_len)?)
        .ok()?
        .to_string();
    let pkid = if qos == QoS::AtMostOnce {
        0
    } else {
        let at = header + 2 + topic_len;
        u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?])
    };
    Some(PublishHead {
        topic,
        pkid,
        qos,
        frame_len: header + remaining_len,
    })
}

/// Binds the endpoint's listener (port 0 picks a free port).
pub async fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_head_of_an_oversized_publish() {
        let mut p = Publish::new("hub/readings/dev-1", QoS::AtLeastOnce, vec![b'x'; 300_000]);
        p.pkid = 7;
        let mut buf = BytesMut::new();
        Packet::Publish(p).write(&mut buf, usize::MAX).unwrap();
        let err = Packet::read(&mut buf.clone(), MAX_PACKET).unwrap_err();
        let mqttbytes::Error::PayloadSizeLimitExceeded(len) = err else {
            panic!("{err:?}")
        };
        let head = publish_head(&buf[..64], len).unwrap();
        assert_eq!(head.topic, "hub/readings/dev-1");
        assert_eq!(head.pkid, 7);
        assert_eq!(head.qos, QoS::AtLeastOnce);
        assert_eq!(head.frame_len, buf.len());
        assert!(
            publish_head(&buf[..10], len).is_none(),
            "not enough bytes yet"
        );
    }
}
