//! The load generator: a few MQTT connections (QoS 1) publishing JSON readings round-robin over their devices at a
//! paced rate.
//!
//! Pacing is a token bucket over the run: every millisecond tick a connection publishes however many readings are
//! due by then (`elapsed × rate − sent`), so the offered rate holds without a sleep per message, and a stall is made
//! up afterwards rather than silently lowering the load. Every patient's readings go through one connection, so
//! they reach the hub in the order they were published (the rule state depends on that order).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

/// SpO2 of an ordinary reading, and of a breaching one (below the 92 % rule).
const SPO2_OK: u32 = 97;
const SPO2_BREACH: u32 = 88;

/// When each breaching reading (device, seq) was handed to the MQTT client: monotonic, and wall-clock ms (to compare
/// with the alert's `raised_at`, stamped by the hub's clock on the same machine).
pub type BreachTimes = Arc<Mutex<HashMap<(String, u32), (Instant, i64)>>>;

pub struct LoadPlan {
    pub broker_port: u16,
    pub conn: usize,
    /// This connection's patients, each with its device ids.
    pub patients: Vec<Vec<String>>,
    /// Readings per second this connection offers.
    pub rate: f64,
    pub duration: Duration,
    /// Every `breach_every`-th reading of a patient breaches; the one after it resolves.
    pub breach_every: u64,
    pub start: Instant,
}

/// What one connection did.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    /// Readings handed to the client, by device: the last seq (seqs run 1..=last, no gaps).
    pub last_seq: HashMap<String, u32>,
    pub published: u64,
    pub breaches: u64,
    /// PubAcks the broker returned.
    pub acked: u64,
    /// When the paced phase ended (the closing readings follow).
    pub paced_until: Option<Instant>,
    pub errors: Vec<String>,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs one publishing connection to completion: the paced phase, a closing non-breaching reading for every
/// patient whose last reading breached (so every alert is also resolved), then waits for all PubAcks.
pub async fn run(plan: LoadPlan, breach_times: BreachTimes) -> LoadOutcome {
    let mut opts = MqttOptions::new(
        format!("bench-load-{}", plan.conn),
        "127.0.0.1",
        plan.broker_port,
    );
    opts.set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true)
        .set_inflight(1000)
        .set_request_channel_capacity(4096);
    let (client, mut eventloop) = AsyncClient::new(opts, 4096);
    // Small QoS 1 packets must not wait for Nagle (the broker runs set_tcp_nodelay too); rumqttc defaults to Nagle.
    let mut net = rumqttc::NetworkOptions::new();
    net.set_tcp_nodelay(true);
    eventloop.set_network_options(net);
    let acked = Arc::new(AtomicU64::new(0));
    let connected = Arc::new(AtomicBool::new(false));
    let (err_tx, mut err_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let poll = {
        let acked = acked.clone();
        let connected = connected.clone();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        connected.store(true, Ordering::SeqCst)
                    }
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                    Ok(_) => {}
                    Err(e) => {
                        let _ = err_tx.send(format!("load connection: {e}"));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        })
    };
    let mut out = LoadOutcome::default();
    let wait_connected = Instant::now();
    while !connected.load(Ordering::SeqCst) && wait_connected.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Round-robin order: patient by patient, each patient's devices in turn.
    let slots: Vec<(usize, String, String)> = plan
        .patients
        .iter()
        .enumerate()
        .flat_map(|(p, ds)| {
            ds.iter()
                .map(move |d| (p, d.clone(), format!("hub/readings/{d}")))
        })
        .collect();
    let mut seq: Vec<u32> = vec![0; slots.len()];
    let mut per_patient: Vec<u64> = vec![0; plan.patients.len()];
    let mut last_breached: Vec<Option<usize>> = vec![None; plan.patients.len()];
    let mut next = 0usize;

    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sent: u64 = 0;
    'paced: loop {
        tick.tick().await;
        let elapsed = plan.start.elapsed();
        let end = elapsed >= plan.duration;
        let due = (elapsed.min(plan.duration).as_secs_f64() * plan.rate) as u64;
        while sent < due {
            let slot = next;
            next = (next + 1) % slots.len();
            let p = slots[slot].0;
            per_patient[p] += 1;
            // `is_multiple_of` needs Rust 1.87; the workspace's rust-version is 1.85.
            #[allow(clippy::manual_is_multiple_of)]
            let breach = per_patient[p] % plan.breach_every == 0;
            if publish(
                &client,
                &slots,
                &mut seq,
                slot,
                breach,
                &breach_times,
                &mut out,
            )
            .await
            .is_err()
            {
                break 'paced;
            }
            last_breached[p] = breach.then_some(slot);
            sent += 1;
        }
        if end {
            break;
        }
    }
    out.paced_until = Some(Instant::now());
    // Resolve what is still breached, from the same device, so the last alert of each patient is closed too.
    for slot in last_breached.into_iter().flatten() {
        if publish(
            &client,
            &slots,
            &mut seq,
            slot,
            false,
            &breach_times,
            &mut out,
        )
        .await
        .is_err()
        {
            break;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.load(Ordering::Relaxed) < out.published && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    out.acked = acked.load(Ordering::Relaxed);
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), poll).await;
    while let Ok(e) = err_rx.try_recv() {
        out.errors.push(e);
    }
    for (i, (_, d, _)) in slots.iter().enumerate() {
        if seq[i] > 0 {
            out.last_seq.insert(d.clone(), seq[i]);
        }
    }
    out
}

async fn publish(
    client: &AsyncClient,
    slots: &[(usize, String, String)],
    seq: &mut [u32],
    slot: usize,
    breach: bool,
    breach_times: &BreachTimes,
    out: &mut LoadOutcome,
) -> Result<(), ()> {
    seq[slot] += 1;
    let s = seq[slot];
    let spo2 = if breach { SPO2_BREACH } else { SPO2_OK };
    let wall = now_ms();
    let t = hearth_protocol::json::format_rfc3339_millis(wall);
    let payload = format!(r#"{{"seq":{s},"t":"{t}","obs":{{"spo2":{spo2},"heart_rate":80}}}}"#);
    if breach {
        // Recorded before the publish is queued, so the measured latency includes the client and broker hop.
        breach_times
            .lock()
            .expect("breach map")
            .insert((slots[slot].1.clone(), s), (Instant::now(), wall));
        out.breaches += 1;
    }
    match client
        .publish(slots[slot].2.as_str(), QoS::AtLeastOnce, false, payload)
        .await
    {
        Ok(()) => {
            out.published += 1;
            Ok(())
        }
        Err(e) => {
            out.errors.push(format!("publish: {e}"));
            seq[slot] -= 1;
            Err(())
        }
    }
}
