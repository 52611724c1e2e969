//! The community hub's side: subscribes to `care/alerts/#`, acknowledges every alert end to end
//! (`care/acks/{home}`) as soon as it arrives, and records when each arrived.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde::Deserialize;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::rig::HOME_ID;

/// The fields of an AlertMessage the benchmark looks at.
#[derive(Debug, Deserialize)]
struct AlertMsg {
    id: String,
    rev: u32,
    state: String,
    kind: String,
    device: Option<String>,
    seq: Option<u32>,
    rule: Option<String>,
    raised_at: String,
}

/// One alert message as received.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub at: Instant,
    pub rev: u32,
    pub state: String,
    pub kind: String,
    pub device: Option<String>,
    pub seq: Option<u32>,
    pub rule: Option<String>,
    /// The hub's clock when it raised the alert (before the commit), and ours when it arrived; unix ms.
    pub raised_at_ms: Option<i64>,
    pub arrived_wall_ms: i64,
}

#[derive(Debug, Default)]
pub struct Received {
    pub arrivals: Vec<Arrival>,
    /// (id, rev) seen more than once (resends).
    pub duplicates: u64,
    pub unparsable: u64,
    seen: HashSet<(String, u32)>,
}

/// The running community hub: arrivals accumulate in `received`; `stop` ends its tasks.
pub struct CommunityHub {
    pub received: Arc<Mutex<Received>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl CommunityHub {
    /// Stops before the broker does, so its connection loss is not reported.
    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Connects, subscribes, and returns once the subscription is acknowledged.
pub async fn start(port: u16) -> anyhow::Result<CommunityHub> {
    let mut opts = MqttOptions::new("bench-community-hub", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true)
        .set_max_packet_size(1 << 20, 1 << 20)
        .set_inflight(1000)
        .set_request_channel_capacity(4096);
    let (client, mut eventloop) = AsyncClient::new(opts, 4096);
    // Small QoS 1 packets must not wait for Nagle (the broker runs set_tcp_nodelay too); rumqttc defaults to Nagle.
    let mut net = rumqttc::NetworkOptions::new();
    net.set_tcp_nodelay(true);
    eventloop.set_network_options(net);
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, i64, bytes::Bytes)>();
    let (sub_tx, sub_rx) = oneshot::channel();
    let mut sub_tx = Some(sub_tx);
    let sub_client = client.clone();
    // The poll loop only stamps and forwards: acking from here could block on the request channel it drives.
    let poll = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = tx.send((Instant::now(), crate::load::now_ms(), p.payload));
                }
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = sub_client.try_subscribe("care/alerts/#", QoS::AtLeastOnce);
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(s) = sub_tx.take() {
                        let _ = s.send(());
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("community-hub connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    let received = Arc::new(Mutex::new(Received::default()));
    let rec = received.clone();
    let ack_topic = format!("care/acks/{HOME_ID}");
    let acker = tokio::spawn(async move {
        while let Some((at, wall, payload)) = rx.recv().await {
            let Ok(m) = serde_json::from_slice::<AlertMsg>(&payload) else {
                rec.lock().await.unparsable += 1;
                continue;
            };
            let ack = format!(r#"{{"acks":[{{"id":"{}","rev":{}}}]}}"#, m.id, m.rev);
            if let Err(e) = client
                .publish(ack_topic.as_str(), QoS::AtLeastOnce, false, ack)
                .await
            {
                eprintln!("ack not queued: {e}");
            }
            let mut r = rec.lock().await;
            if !r.seen.insert((m.id.clone(), m.rev)) {
                r.duplicates += 1;
                continue;
            }
            r.arrivals.push(Arrival {
                at,
                rev: m.rev,
                state: m.state,
                kind: m.kind,
                device: m.device,
                seq: m.seq,
                rule: m.rule,
                raised_at_ms: hearth_protocol::json::parse_rfc3339_millis(&m.raised_at).ok(),
                arrived_wall_ms: wall,
            });
        }
    });
    tokio::time::timeout(Duration::from_secs(10), sub_rx)
        .await
        .map_err(|_| anyhow::anyhow!("no SubAck from the upstream broker within 10 s"))??;
    Ok(CommunityHub {
        received,
        tasks: vec![poll, acker],
    })
}
