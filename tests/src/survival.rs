//! What every fault test checks once its faults are over: nothing committed or raised was lost.
//!
//! [`drain_and_verify`] lets the daemon deliver what is pending, stops it politely, and then checks, read-only:
//! - SQLite's `PRAGMA integrity_check` is `ok` and `hearthd audit-verify` accepts the audit hash chain;
//! - every reading a device saw acknowledged (PubAck = committed) is in the database;
//! - no alert was lost: every clinical episode the stored readings imply (`spo2 < 92` in [`crate::load::PATTERN`])
//!   has its alert, every alert has its outbox rows, every outbox row reached the simulated community hub and was
//!   marked delivered, per patient in raise order, and every duplicate the receiver saw is a byte-identical resend
//!   of the same (id, rev) ([`crate::check::assert_delivered_in_order`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;

use crate::check::assert_delivered_in_order;
use crate::db::HubDb;
use crate::http;
use crate::hub::Hub;
use crate::sensors::SensorSim;
use crate::upstream::Receiver;
use crate::wait::poll_for;

/// The threshold of the load's rule (`Rule::below("spo2", 92.0, …)`).
pub const SPO2_BELOW: f64 = 92.0;

/// What [`drain_and_verify`] counted.
#[derive(Debug, Clone, Default)]
pub struct Survival {
    /// PubAcks the devices received (each one a committed reading).
    pub acked: usize,
    /// Readings in the database.
    pub stored: usize,
    /// Alerts in the database.
    pub alerts: usize,
    /// Alert messages (outbox rows) raised.
    pub messages: usize,
    /// Messages the community hub received, resends included.
    pub received: usize,
    /// Messages pending when the faults ended, and how long they took to drain.
    pub backlog: u64,
    pub drained: Duration,
}

impl Survival {
    /// Resends the community hub saw (all of them byte-identical to the first arrival, or the check failed).
    pub fn resends(&self) -> usize {
        self.received.saturating_sub(self.messages)
    }
}

/// Waits for the outbox to drain (bounded), stops the daemon with SIGTERM and runs every check listed in the module
/// documentation; panics with the details of the first failed check.
pub async fn drain_and_verify(
    hub: &mut Hub,
    receiver: &Receiver,
    sims: &[Arc<SensorSim>],
) -> Survival {
    // A liveness bound, not a speed target: at least 10 messages/s (a backlog from an unpaced load can be thousands
    // of messages, delivered one per patient at a time, each committed before the next).
    let depth = http::get_json(hub.http_addr(), "/api/outbox")
        .await
        .ok()
        .and_then(|v| v["depth"].as_u64())
        .unwrap_or(0);
    let drain_started = std::time::Instant::now();
    wait_drained(hub, receiver, Duration::from_secs(60.max(depth / 10))).await;
    let drained = drain_started.elapsed();
    let status = hub.terminate().await;
    assert!(status.success(), "SIGTERM → exit 0, got {status}");

    let mut db = HubDb::open(&hub.db_path()).await;
    assert_eq!(db.integrity_check().await, "ok");
    let verify = std::process::Command::new(Hub::binary())
        .args(["audit-verify", "--config"])
        .arg(hub.config_path())
        .output()
        .expect("run hearthd audit-verify");
    assert!(
        verify.status.success(),
        "audit chain: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );

    let stored: BTreeSet<(String, i64)> = db.reading_keys().await.into_iter().collect();
    let mut lost = Vec::new();
    let mut acked = 0;
    for sim in sims {
        for t in sim.acked() {
            acked += 1;
            if !stored.contains(&(t.device.clone(), t.seq as i64)) {
                lost.push(t);
            }
        }
    }
    assert!(
        lost.is_empty(),
        "{} PubAcked (committed) readings missing from the database: {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );

    let outbox = db.outbox().await;
    let alert_ids: BTreeSet<String> = db.alert_ids().await.into_iter().collect();
    let in_outbox: BTreeSet<String> = outbox.iter().map(|r| r.alert_id.clone()).collect();
    let missing: Vec<_> = alert_ids.difference(&in_outbox).collect();
    assert!(
        missing.is_empty(),
        "alerts with no outbox row (raised but never sent): {missing:?}"
    );
    let (want, got) = episodes(&mut db).await;
    assert_eq!(
        got, want,
        "clinical spo2 alerts per patient (got) differ from the episodes the stored readings imply (want)"
    );
    let received = receiver.received();
    assert_delivered_in_order(&outbox, &received);
    Survival {
        acked,
        stored: stored.len(),
        alerts: alert_ids.len(),
        messages: outbox.len(),
        received: received.len(),
        backlog: depth,
        drained,
    }
}

/// Waits (bounded) until every reading the devices saw PubAcked is in the database. With an external broker a
/// PubAck means only "the broker has it", so this is how long the hub took to take everything over.
pub async fn wait_stored(hub: &Hub, sims: &[Arc<SensorSim>], timeout: Duration) {
    let want: BTreeSet<(String, i64)> = sims
        .iter()
        .flat_map(|s| s.acked())
        .map(|t| (t.device, t.seq as i64))
        .collect();
    let path = hub.db_path();
    let r = poll_for("every PubAcked reading stored", timeout, || async {
        let have: BTreeSet<(String, i64)> = HubDb::open(&path)
            .await
            .reading_keys()
            .await
            .into_iter()
            .collect();
        let missing = want.difference(&have).count();
        if missing == 0 {
            Ok(())
        } else {
            Err(format!("{missing} of {} missing", want.len()))
        }
    })
    .await;
    if let Err(e) = r {
        panic!("{e}\nhub log tail:\n{}", hub.log_tail(3000));
    }
}

/// Waits until the outbox is empty; on timeout panics saying, for each patient's stuck head of line, whether the
/// receiver ever got it.
pub async fn wait_drained(hub: &Hub, receiver: &Receiver, timeout: Duration) {
    let addr = hub.http_addr();
    let drained = poll_for("outbox drained", timeout, || async {
        let v = http::get_json(addr, "/api/outbox").await?;
        if v["depth"] == 0 {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;
    let Err(e) = drained else { return };
    let v = http::get_json(addr, "/api/outbox")
        .await
        .unwrap_or_default();
    let alerts = receiver.alerts();
    let mut heads = BTreeMap::new();
    for p in v["pending"].as_array().into_iter().flatten() {
        heads
            .entry(p["patient"].as_str().unwrap_or("").to_string())
            .or_insert_with(|| p.clone());
    }
    let detail: Vec<String> = heads
        .values()
        .map(|p| {
            let id = p["alert_id"].as_str().unwrap_or("");
            let n = alerts
                .iter()
                .filter(|a| a.id == id && p["rev"] == a.rev)
                .count();
            format!("head {p} received {n}x")
        })
        .collect();
    panic!(
        "{}\n  depth {}; {}\nhub log tail:\n{}",
        e.chars().take(300).collect::<String>(),
        v["depth"],
        detail.join("\n  "),
        hub.log_tail(3000)
    );
}

/// Per patient: the number of `spo2 < 92` episodes in the stored readings (in sequence order, which is the order
/// the core saw them: one device per patient, sequence numbers only grow), and the number of clinical spo2 alerts.
async fn episodes(db: &mut HubDb) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let rows =
        sqlx::query(
            "SELECT patient, device, seq, CAST(obs AS BLOB) FROM readings ORDER BY patient, device, seq",
        )
            .fetch_all(db.conn())
            .await
            .expect("select readings");
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    let mut devices: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut breached: BTreeMap<String, bool> = BTreeMap::new();
    for r in &rows {
        let patient: String = r.get(0);
        devices.entry(patient.clone()).or_default().insert(r.get(1));
        let raw: Vec<u8> = r.get(3);
        let obs: serde_json::Value =
            serde_json::from_str(&hearthd::store::stored_obs_json(&raw)).unwrap_or_default();
        // Stored as [mantissa, exponent].
        let Some(v) = obs["spo2"]
            .as_array()
            .and_then(|a| Some(a.first()?.as_f64()? * 10f64.powi(a.get(1)?.as_i64()? as i32)))
        else {
            continue;
        };
        let was = breached.entry(patient.clone()).or_default();
        want.entry(patient.clone()).or_default();
        if v < SPO2_BELOW && !*was {
            *want.get_mut(&patient).expect("inserted") += 1;
        }
        *breached.get_mut(&patient).expect("inserted") = v < SPO2_BELOW;
    }
    for (p, d) in &devices {
        assert_eq!(
            d.len(),
            1,
            "episode check needs one device per patient; {p} has {d:?}"
        );
    }
    let mut got: BTreeMap<String, usize> = want.keys().map(|p| (p.clone(), 0)).collect();
    for r in sqlx::query(
        "SELECT patient FROM alerts WHERE kind = 'clinical' AND key = 'clinical:spo2:below'",
    )
    .fetch_all(db.conn())
    .await
    .expect("select alerts")
    {
        *got.entry(r.get(0)).or_default() += 1;
    }
    (want, got)
}
