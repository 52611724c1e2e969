//! `hearth-community-bench`: the community hub's benchmark, on a private Mosquitto and a private PostgreSQL (or
//! SQLite), both started here on free ports.
//!
//! 1. **Ingest**: `--homes` homes, each its own MQTT connection subscribed to its ack topic, publish `--alerts`
//!    alerts in total as fast as the broker takes them; the figure is alerts committed *and acked end to end* per
//!    second (first publish → last ack), and every alert must be acked.
//! 2. **Queue render**: the database is bulk-loaded with `--queue-homes` homes and `--incidents` incidents (a fifth
//!    open, the rest closed), then the caseload queue page (`GET /`, logged in, top 500 rows of the open ones) and the
//!    homes page are fetched `--renders` times each over HTTP; p50/p95/max are reported.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use hearth_community::clock::{Clock, SystemClock};
use hearth_protocol::json;
use hearth_tests::community::{Community, Db, alert_json};
use hearth_tests::mosquitto::Mosquitto;
use hearth_tests::postgres::Postgres;
use hearth_tests::web::WebClient;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    Postgres,
    Sqlite,
}

/// Benchmark the community hub.
#[derive(Debug, Parser)]
#[command(name = "hearth-community-bench")]
struct Args {
    #[arg(long, value_enum, default_value_t = Backend::Postgres)]
    db: Backend,
    /// Homes (MQTT connections) in the ingest phase.
    #[arg(long, default_value_t = 200)]
    homes: usize,
    /// Alerts published in the ingest phase, in total.
    #[arg(long, default_value_t = 20_000)]
    alerts: usize,
    /// Homes in the database for the render phase.
    #[arg(long, default_value_t = 10_000)]
    queue_homes: usize,
    /// Incidents (open + closed) in the database for the render phase.
    #[arg(long, default_value_t = 50_000)]
    incidents: usize,
    /// Page fetches per page in the render phase.
    #[arg(long, default_value_t = 30)]
    renders: usize,
}

type Acked = Arc<Mutex<HashSet<(String, u32)>>>;

async fn home(port: u16, id: String, acked: Acked) -> AsyncClient {
    let mut opts = MqttOptions::new(format!("bench-{id}"), "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30))
        .set_inflight(100);
    let (client, mut el) = AsyncClient::new(opts, 1000);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let c = client.clone();
    let topic = json::ack_topic("care", &id);
    tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = c.try_subscribe(topic.clone(), QoS::AtLeastOnce);
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = tx.try_send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if let Ok(a) = json::parse_ack(&p.payload) {
                        let mut s = acked.lock().unwrap();
                        s.extend(a.acks.into_iter().map(|x| (x.id, x.rev)));
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    let _ = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await;
    client
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn ingest(args: &Args, broker: &Mosquitto, hub: &Community) -> anyhow::Result<()> {
    let acked: Acked = Arc::default();
    let mut clients = Vec::new();
    for i in 0..args.homes {
        clients.push((
            format!("bh-{i:05}"),
            home(broker.port(), format!("bh-{i:05}"), acked.clone()).await,
        ));
    }
    let now = SystemClock.now_ms();
    let per_home = args.alerts.div_ceil(args.homes);
    let bodies: Vec<Vec<(String, String)>> = clients
        .iter()
        .enumerate()
        .map(|(h, (id, _))| {
            (0..per_home)
                .map(|k| {
                    let p = format!("bp-{h:05}-{}", k % 4);
                    (
                        json::alert_topic("care", &p),
                        alert_json(&format!("{id}-{k}"), 1, id, &p, "medium", "open", now, None),
                    )
                })
                .collect()
        })
        .collect();
    let total = per_home * args.homes;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for ((_, c), msgs) in clients.iter().zip(bodies) {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            for (t, b) in msgs {
                c.publish(t, QoS::AtLeastOnce, false, b)
                    .await
                    .expect("publish");
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let n = acked.lock().unwrap().len();
        if n >= total {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {n} of {total} acked after 600 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let c = hub.store.counts().await?;
    anyhow::ensure!(
        c.revisions as usize >= total,
        "stored {} of {total}",
        c.revisions
    );
    println!(
        "ingest: {total} alerts from {} homes stored and acked end to end in {secs:.2} s = {:.0} alerts/s",
        args.homes,
        total as f64 / secs
    );
    Ok(())
}

/// Bulk-loads homes and incidents with multi-row INSERTs (generated values only, no input).
async fn bulk_load(args: &Args, hub: &Community) -> anyhow::Result<()> {
    let pool = hub.store.pool();
    let now = SystemClock.now_ms();
    let t = Instant::now();
    for chunk in (0..args.queue_homes).collect::<Vec<_>>().chunks(1000) {
        let values: Vec<String> = chunk
            .iter()
            .map(|i| {
                format!(
                    "('qh-{i:05}', {now}, {}, {now}, {}, NULL, 0, NULL)",
                    now - (*i as i64 % 600) * 1000,
                    i % 5
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO homes (id, first_seen_at, last_seen_at, last_heartbeat_at, outbox_depth, oldest_pending_s, silent, silent_since) VALUES {}",
            values.join(",")
        );
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
    }
    let sev = ["low", "medium", "high"];
    for chunk in (0..args.incidents).collect::<Vec<_>>().chunks(1000) {
        let values: Vec<String> = chunk
            .iter()
            .map(|i| {
                let s = i % 3;
                let open = i64::from(i % 5 == 0);
                let raised = now - (*i as i64 % 10_080) * 60_000;
                let details = r#"{"news2":{"total":5,"band":"medium"},"sbard":{"situation":"SpO2 falling","recommendation":"visit today"}}"#;
                format!(
                    "('qa-{i:06}', 1, 'qh-{:05}', 'qp-{:06}', '{}', {}, 'open', 'clinical', 'news2', 'ox-1', 'spo2', 91.0, '%', {raised}, {raised}, {raised}, 'NEWS2 5', '{details}', {}, 'medium', {open}, {now}, NULL, NULL, NULL, NULL, NULL, NULL)",
                    i % args.queue_homes,
                    i % (args.incidents / 3).max(1),
                    sev[s],
                    s + 1,
                    i % 10
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO alerts (id, rev, home, patient, severity, severity_rank, state, kind, rule, device, code, value, unit, observed_at, raised_at, first_raised_at, message, details, news2_total, news2_band, is_open, received_at, assignee, acked_by, acked_at, snoozed_until, snooze_reason, outcome) VALUES {}",
            values.join(",")
        );
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
    }
    println!(
        "render: loaded {} homes and {} incidents ({} open) in {:.1} s",
        args.queue_homes,
        args.incidents,
        args.incidents.div_ceil(5),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn render(args: &Args, hub: &Community) -> anyhow::Result<()> {
    bulk_load(args, hub).await?;
    hub.add_user("bench", "nurse", "bench-password").await;
    let mut web = WebClient::new(hub.http);
    let r = web.login("bench", "bench-password").await;
    anyhow::ensure!(r.status == 303, "login failed: {}", r.status);
    for (page, path) in [("queue", "/"), ("homes", "/homes")] {
        let mut times = Vec::with_capacity(args.renders);
        let mut bytes = 0;
        for _ in 0..args.renders {
            let t = Instant::now();
            let resp = web.get(path).await;
            times.push(t.elapsed());
            anyhow::ensure!(resp.status == 200, "{path}: {}", resp.status);
            bytes = resp.body.len();
        }
        times.sort();
        println!(
            "render: {page} page ({path}, {} kB): p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms over {} fetches",
            bytes / 1024,
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.95).as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
            args.renders
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let pg = (args.db == Backend::Postgres).then(|| Arc::new(Postgres::start()));
    let db = || match &pg {
        Some(pg) => Db::Postgres(pg.clone()),
        None => Db::Sqlite,
    };
    println!("hearth-community-bench: {:?}", args);
    let broker = Mosquitto::start();
    let hub = Community::start(broker.port(), &db(), None).await;
    ingest(&args, &broker, &hub).await.context("ingest phase")?;
    hub.stop().await;
    // A fresh database for the render phase, so the ingest's rows do not count.
    let hub = Community::start(broker.port(), &db(), None).await;
    render(&args, &hub).await.context("render phase")?;
    hub.stop().await;
    Ok(())
}
