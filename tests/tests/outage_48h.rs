//! A 48-hour upstream outage at a realistic home load (10 readings/s), in simulated time.
//!
//! The daemon's core loop and its real SQLite store run in-process on a [`ManualClock`]: readings are handed to the
//! core exactly as the sources hand them (a minute of them per batch), its timers tick every simulated second, and the
//! upstream publisher is not running and the link reported down — what the core sees while the community hub is
//! unreachable. Then a real Mosquitto and the simulated community hub are connected through the real publisher
//! (`hearthd::upstream::run`) and the outbox must drain completely, in per-patient order.
//!
//! Checked: every alert the readings imply was raised and none was ever evicted; readings are either stored or
//! evicted and counted (`readings_evicted` counter = generated − stored), and an eviction raises the technical
//! `readings_evicted` alert; the database's disk size (file + WAL) stays within the `[storage] budget_mb`; after the
//! reconnect every alert message is delivered. Figures are printed on a `FIGURE` line.
//!
//! CI runs a scaled version: `HEARTH_OUTAGE_HOURS` (default 2) at `HEARTH_OUTAGE_BUDGET_MB` (default 4, small
//! enough that eviction happens). The soak mode runs the full outage: `HEARTH_OUTAGE_HOURS=48
//! HEARTH_OUTAGE_BUDGET_MB=400` (1.73 M readings; figures in docs/reliability.md).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_protocol::{Code, Observation, Quantity};
use hearth_tests::check::assert_delivered_in_order;
use hearth_tests::db::HubDb;
use hearth_tests::mosquitto::Mosquitto;
use hearth_tests::upstream::Receiver;
use hearthd::clock::{Clock, ManualClock, Millis};
use hearthd::config::Config;
use hearthd::core::{Acknowledge, Core, CoreInput, Inbound};
use hearthd::model::{ParsedObs, ParsedReading, Source};
use hearthd::store::Store;
use sqlx::Row;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

const START: Millis = 1_795_000_000_000;
const DEVICES: usize = 10;
/// Each device breaches (SpO2 88 for 3 s) once every this many minutes, at its own offset.
const BREACH_EVERY_MIN: u64 = 30;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

struct NoAck;
impl Acknowledge for NoAck {
    fn committed(self: Box<Self>, _frame_ack: Option<Vec<u8>>) {}
}

fn config(upstream_port: u16, db: &std::path::Path, budget_mb: u64) -> Config {
    let mut raw = format!(
        "[home]\nid = \"home-48h\"\n[upstream]\nbroker = \"mqtt://127.0.0.1:{upstream_port}\"\nresend_after_s = 2\nheartbeat_s = 1\n\
         unreachable_alert_after_s = 120\n[storage]\npath = {:?}\nbudget_mb = {budget_mb}\n\
         [alerting]\nnews2 = false\nstale_after_s = 900\nescalate_after_s = 86400\n\
         [[rules]]\ncode = \"spo2\"\nbelow = 92\nseverity = \"high\"\n",
        db.to_str().expect("utf-8 path")
    );
    for d in 1..=DEVICES {
        raw.push_str(&format!(
            "[[patients]]\nid = \"p-{d}\"\ndevices = [\"ox-{d}\"]\n"
        ));
    }
    // Every breach is one alert episode (flap control would hold some open: each device breaches twice an hour).
    raw.push_str(hearth_tests::load::CLINICAL_TOML);
    Config::parse(&raw, std::path::Path::new("outage_48h.toml")).expect("config")
}

/// SpO2 of device `d` at simulated second `s`: 88 for the first 3 s of its breach minute, else 97.
fn spo2(d: usize, s: u64) -> i32 {
    let minute = s / 60;
    if (minute + 7 * d as u64).is_multiple_of(BREACH_EVERY_MIN) && s % 60 < 3 {
        88
    } else {
        97
    }
}

fn reading(d: usize, seq: u32, t: Millis, now: Millis, spo2: i32) -> CoreInput {
    let obs = vec![
        Observation::number(Code::Spo2, Quantity::new(spo2, 0)),
        Observation::number(Code::HeartRate, Quantity::new(72, 0)),
    ];
    CoreInput::Reading(Inbound {
        source: Source::MqttJson,
        received_at: now,
        payload: bytes::Bytes::from_static(b"{}"),
        parsed: Ok(ParsedReading {
            device: format!("ox-{d}"),
            seq,
            observed_at: Some(t),
            obs: obs.into_iter().map(ParsedObs::Ok).collect(),
        }),
        ack: Some(Box::new(NoAck)),
    })
}

fn disk_bytes(db: &std::path::Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
        .map(|m| m.len())
        .sum()
}

async fn scalar(store: &Store, sql: &'static str) -> i64 {
    sqlx::query(sql)
        .fetch_one(store.reader())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_48_hour_upstream_outage_keeps_every_alert_within_the_disk_budget_then_drains() {
    let hours = env_u64("HEARTH_OUTAGE_HOURS", 2);
    let budget_mb = env_u64("HEARTH_OUTAGE_BUDGET_MB", 4);
    let upstream = Mosquitto::start();
    let receiver = Receiver::start(upstream.port()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("hearth.db");
    let cfg = Arc::new(config(upstream.port(), &db, budget_mb));
    let store = Store::open(&db).await.expect("open store");
    let clock = ManualClock::new(START);
    let outbox_changed = Arc::new(Notify::new());
    let mut core = Core::load(
        cfg.clone(),
        clock.clone(),
        store.clone(),
        outbox_changed.clone(),
    )
    .await
    .expect("load core");

    // The outage: the link is down from the start.
    core.step(&mut vec![CoreInput::UpstreamLink {
        up: false,
        at: START,
    }])
    .await
    .expect("link down");
    let started = Instant::now();
    let seconds = hours * 3600;
    let mut batch = Vec::with_capacity(600);
    let mut generated = 0u64;
    let mut episodes = 0u64;
    let mut peak_disk = 0u64;
    for s in 0..seconds {
        clock.advance(1000);
        let now = clock.now_ms();
        // Every device sends one reading a second: its sequence number is the second's.
        let seq = s as u32 + 1;
        for d in 1..=DEVICES {
            let v = spo2(d, s);
            if v < 92 && (s == 0 || spo2(d, s - 1) >= 92) {
                episodes += 1;
            }
            batch.push(reading(d, seq, now - 500, now, v));
            generated += 1;
        }
        if batch.len() >= 600 {
            core.step(&mut batch).await.expect("commit");
        }
        core.tick().await.expect("tick");
        if s % 3600 == 0 {
            peak_disk = peak_disk.max(disk_bytes(&db));
        }
    }
    core.step(&mut batch).await.expect("commit");
    // One more storage check at the end (they run every 60 ticks).
    for _ in 0..60 {
        clock.advance(1000);
        core.tick().await.expect("tick");
    }
    peak_disk = peak_disk.max(disk_bytes(&db));
    let simulated_in = started.elapsed();

    let stored = scalar(&store, "SELECT COUNT(*) FROM readings").await as u64;
    let evicted: i64 = sqlx::query("SELECT value FROM counters WHERE name = 'readings_evicted'")
        .fetch_optional(store.reader())
        .await
        .expect("counters")
        .map(|r| r.get(0))
        .unwrap_or(0);
    let evicted = evicted as u64;
    let clinical = scalar(
        &store,
        "SELECT COUNT(*) FROM alerts WHERE kind = 'clinical'",
    )
    .await as u64;
    let technical: Vec<String> = sqlx::query("SELECT rule FROM alerts WHERE kind = 'technical'")
        .fetch_all(store.reader())
        .await
        .expect("alerts")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let depth = store.outbox_depth().await.expect("depth").0 as u64;
    let used = store.used_bytes().await.expect("used");
    let budget = budget_mb * 1024 * 1024;

    assert_eq!(
        generated,
        stored + evicted,
        "every reading is stored or evicted and counted (generated {generated}, stored {stored}, evicted {evicted})"
    );
    assert_eq!(
        clinical, episodes,
        "one clinical alert per breach episode, none evicted"
    );
    assert!(
        technical.iter().any(|r| r == "upstream_unreachable"),
        "{technical:?}"
    );
    if evicted > 0 {
        assert!(
            technical.iter().any(|r| r == "readings_evicted"),
            "an eviction raises the technical readings_evicted alert: {technical:?}"
        );
    }
    assert!(
        used <= budget,
        "used {used} bytes over the budget of {budget}"
    );
    assert!(
        peak_disk <= budget + budget / 10 + 8 * 1024 * 1024,
        "database file + WAL peaked at {peak_disk} bytes for a budget of {budget}"
    );
    // Every alert message raised during the outage is waiting: nothing was sent, nothing dropped.
    let rows = scalar(&store, "SELECT COUNT(*) FROM outbox").await as u64;
    assert_eq!(depth, rows, "nothing delivered during the outage");

    // The link comes back: the real publisher drains the outbox through a real broker to the community hub.
    let (readings_tx, readings_rx) = mpsc::channel(16);
    let (control_tx, control_rx) = mpsc::channel(1024);
    let stop = CancellationToken::new();
    let core_task = tokio::spawn(core.run(readings_rx, control_rx, stop.clone()));
    let publisher = tokio::spawn(hearthd::upstream::run(
        cfg.clone(),
        store.clone(),
        clock.clone(),
        control_tx,
        outbox_changed.clone(),
        stop.clone(),
    ));
    outbox_changed.notify_one();
    // Simulated time runs 5× faster than real time now, so the resend and heartbeat timers fire during the drain.
    let ticker = {
        let clock = clock.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                clock.advance(500);
            }
        })
    };
    let drain_started = Instant::now();
    let drain_limit = Duration::from_secs(60 + rows / 20);
    loop {
        let (d, _) = store.outbox_depth().await.expect("depth");
        if d == 0 {
            break;
        }
        assert!(
            drain_started.elapsed() < drain_limit,
            "outbox not drained {drain_limit:?} after the reconnect: {d} of {rows} pending"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained_in = drain_started.elapsed();
    stop.cancel();
    ticker.abort();
    let _ = publisher.await;
    core_task.await.expect("core task").expect("core");
    drop(readings_tx);
    let outbox = HubDb::open(&db).await.outbox().await;
    assert_delivered_in_order(&outbox, &receiver.received());
    // On a clean link every delivered message was PubAcked by the broker, and the PubAck is recorded on its own row
    // (heartbeats, QoS 0, are published meanwhile and must not shift the bookkeeping).
    let no_puback = scalar(
        &store,
        "SELECT COUNT(*) FROM outbox WHERE puback_at IS NULL",
    )
    .await;
    assert_eq!(
        no_puback, 0,
        "delivered messages with no broker PubAck recorded"
    );
    store.close().await;
    let disk = disk_bytes(&db);
    eprintln!(
        "FIGURE outage hours={hours} rate=10/s generated={generated} stored={stored} evicted={evicted} \
         budget_mb={budget_mb} used_mb={:.1} disk_mb={:.1} peak_disk_mb={:.1} bytes_per_reading={:.0} \
         clinical_alerts={clinical} technical={technical:?} outbox_rows={rows} drained_in_s={:.1} \
         simulated_in_s={:.1}",
        used as f64 / 1048576.0,
        disk as f64 / 1048576.0,
        peak_disk as f64 / 1048576.0,
        used as f64 / stored.max(1) as f64,
        drained_in.as_secs_f64(),
        simulated_in.as_secs_f64()
    );
}
