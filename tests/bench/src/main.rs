//! `hearth-bench`: the hub daemon's benchmark.
//!
//! Drives the real `hearthd run` (a release build, as a child process) through its MQTT contract at a chosen rate
//! for N devices, and reports sustained committed readings/s, reading→alert latency (p50/p99/max), the daemon's peak
//! RSS and its CPU time per reading — and checks that every reading was committed (metrics and database: count and
//! no sequence gaps) and that every breach raised an alert that reached the community hub.
//!
//! Layout: [`rig`] starts Mosquitto and hearthd on free ports in a temp dir; [`load`] publishes paced readings;
//! [`alerts`] plays the community hub (records and acknowledges alerts); [`metrics`] scrapes `/metrics`;
//! [`procfs`] reads CPU and memory from `/proc`; [`verify`] checks the database after the run.

mod alerts;
mod load;
mod metrics;
mod procfs;
mod report;
mod rig;
mod verify;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};

use crate::report::{Report, Sample};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Broker {
    /// The hub's own MQTT endpoint (`sensors.broker = "embedded"`, PUBACK after commit): what a home runs by default.
    Embedded,
    /// A private Mosquitto for the sensors (the hub subscribes to it).
    Mosquitto,
}

/// Benchmark the hub daemon over MQTT.
#[derive(Debug, Parser)]
#[command(name = "hearth-bench", version)]
pub struct Args {
    /// Readings per second offered, in total.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Number of devices (readings go round-robin over them).
    #[arg(long, default_value_t = 100)]
    pub devices: usize,
    /// Devices per patient (patients = devices / this, rounded up).
    #[arg(long, default_value_t = 2)]
    pub devices_per_patient: usize,
    /// How long the paced load runs, seconds.
    #[arg(long, default_value_t = 30)]
    pub duration_s: u64,
    /// The sensors broker.
    #[arg(long, value_enum, default_value_t = Broker::Embedded)]
    pub broker: Broker,
    /// The hearthd binary (default: next to this binary, else target/release/hearthd).
    #[arg(long)]
    pub hearthd: Option<PathBuf>,
    /// Every K-th reading of each patient has SpO2 88 (breach); the next one 97 resolves it.
    #[arg(long, default_value_t = 50)]
    pub breach_every: u64,
    /// Publishing MQTT connections.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// How long to wait for the hub to commit the backlog after the load stops, seconds.
    #[arg(long, default_value_t = 120)]
    pub drain_timeout_s: u64,
    /// Keep the temporary directory (config, database, logs) and print where it is.
    #[arg(long)]
    pub keep: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.rate > 0.0 && args.devices > 0 && args.duration_s > 0,
        "rate, devices and duration must be > 0"
    );
    anyhow::ensure!(
        args.devices_per_patient > 0 && args.breach_every >= 2 && args.connections > 0,
        "devices-per-patient ≥ 1, breach-every ≥ 2, connections ≥ 1"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(run(&args))?;
    report.print();
    if report.correct() {
        Ok(())
    } else {
        std::process::exit(1)
    }
}

async fn run(args: &Args) -> anyhow::Result<Report> {
    let hearthd = rig::find_hearthd(args.hearthd.clone())?;
    let loadavg_before = procfs::loadavg();
    let tmp = tempfile::Builder::new().prefix("hearth-bench-").tempdir()?;
    let dir = tmp.path().to_path_buf();

    let patients: Vec<Vec<String>> = (0..args.devices)
        .collect::<Vec<_>>()
        .chunks(args.devices_per_patient)
        .map(|c| c.iter().map(|&d| rig::device_id(d)).collect())
        .collect();
    // The hub's window of unacknowledged readings is its default, 1000; Mosquitto may send it that many.
    let (_upstream, upstream_port) = rig::mosquitto(&dir, "upstream", 1000)?;
    let sensors = match args.broker {
        Broker::Embedded => None,
        Broker::Mosquitto => Some(rig::mosquitto(&dir, "sensors", 1000)?),
    };
    let config = rig::hub_config(&rig::HubSetup {
        dir: &dir,
        sensors_port: sensors.as_ref().map(|s| s.1),
        upstream_port,
        patients: &patients,
    });
    let (mut hub, ready) = rig::start_hub(&hearthd, &dir, &config)?;
    let sensors_port = ready.sensors_broker.port();
    let community = alerts::start(upstream_port).await?;
    let received = community.received.clone();

    let at_ready = procfs::sample(ready.pid).context("hub process gone")?;
    let broker_pid = sensors.as_ref().map(|s| s.0.pid());
    let broker_at_ready = broker_pid.and_then(procfs::sample);
    let self_cpu0 = procfs::self_cpu_s();

    // Patients to connections round-robin; each connection's rate is proportional to its devices.
    let conns = args.connections.min(patients.len());
    let mut per_conn: Vec<Vec<Vec<String>>> = vec![Vec::new(); conns];
    for (i, p) in patients.iter().enumerate() {
        per_conn[i % conns].push(p.clone());
    }
    let breach_times: load::BreachTimes = Arc::new(Mutex::new(HashMap::new()));
    let start = Instant::now();
    let duration = Duration::from_secs(args.duration_s);
    let mut tasks = Vec::new();
    for (c, pts) in per_conn.into_iter().enumerate() {
        let n: usize = pts.iter().map(Vec::len).sum();
        let plan = load::LoadPlan {
            broker_port: sensors_port,
            conn: c,
            patients: pts,
            rate: args.rate * n as f64 / args.devices as f64,
            duration,
            breach_every: args.breach_every,
            start,
        };
        tasks.push(tokio::spawn(load::run(plan, breach_times.clone())));
    }

    // Once a second: committed count, the hub's RSS and CPU — the timeline shows whether the rate is sustained.
    let mut timeline: Vec<Sample> = Vec::new();
    let mut next_sample = start;
    while !tasks.iter().all(|t| t.is_finished()) {
        if Instant::now() >= next_sample {
            timeline.push(sample(&ready, start).await);
            next_sample += Duration::from_secs(1);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await?);
    }
    let published: u64 = outcomes.iter().map(|o| o.published).sum();
    let paced_end = outcomes
        .iter()
        .filter_map(|o| o.paced_until)
        .max()
        .unwrap_or(start);
    let end_of_load = sample(&ready, start).await;
    let at_paced_end = (end_of_load.t_s, end_of_load.committed);
    timeline.push(end_of_load);

    // Wait until the hub has committed everything it was sent.
    let drain_deadline = Instant::now() + Duration::from_secs(args.drain_timeout_s);
    let mut committed = 0;
    let mut all_committed_at = None;
    while Instant::now() < drain_deadline {
        committed = metrics::committed(ready.http).await.unwrap_or(committed);
        if committed >= published {
            all_committed_at = Some(Instant::now());
            break;
        }
        if Instant::now() >= next_sample {
            timeline.push(sample(&ready, start).await);
            next_sample += Duration::from_secs(1);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Then until every breach's alert and its resolution reached the community hub (or a resend period passed).
    let breaches: u64 = outcomes.iter().map(|o| o.breaches).sum();
    let alert_deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (raised, resolved) = {
            let r = received.lock().await;
            let raised = r
                .arrivals
                .iter()
                .filter(|a| a.kind == "clinical" && a.rev == 1)
                .count() as u64;
            let resolved = r
                .arrivals
                .iter()
                .filter(|a| a.kind == "clinical" && a.state == "resolved")
                .count() as u64;
            (raised, resolved)
        };
        if (raised >= breaches && resolved >= breaches) || Instant::now() > alert_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let hub_end = procfs::sample(ready.pid).context("hub process gone")?;
    let broker_end = broker_pid.and_then(procfs::sample);
    let self_cpu = procfs::self_cpu_s() - self_cpu0;
    let final_metrics = metrics::get(ready.http, "/metrics")
        .await
        .unwrap_or_default();

    community.stop();
    let exit = hub.stop(Duration::from_secs(30));
    let db = verify::database(&dir.join("hearth.db"), &outcomes).await;
    let received = std::mem::take(&mut *received.lock().await);
    let (nproc, cpu_model) = procfs::machine();

    let report = Report::build(report::Inputs {
        args,
        nproc,
        cpu_model,
        loadavg_before,
        start,
        paced_end,
        published,
        committed,
        at_paced_end,
        all_committed_at,
        breaches,
        breach_times: &breach_times.lock().expect("breach map"),
        received: &received,
        at_ready,
        hub_end,
        broker_at_ready,
        broker_end,
        self_cpu,
        timeline,
        final_metrics: &final_metrics,
        hub_exit: exit,
        db,
        load_errors: outcomes
            .iter()
            .flat_map(|o| o.errors.iter().cloned())
            .collect(),
        broker_acked: outcomes.iter().map(|o| o.acked).sum(),
    });
    if args.keep {
        let kept = tmp.keep();
        eprintln!("kept {}", kept.display());
    } else if !report.correct() {
        eprintln!("hearthd log tail:\n{}", hub.log_tail(20));
    }
    Ok(report)
}

async fn sample(ready: &rig::Ready, start: Instant) -> Sample {
    let committed = metrics::committed(ready.http).await.unwrap_or(0);
    let p = procfs::sample(ready.pid).unwrap_or_default();
    Sample {
        t_s: start.elapsed().as_secs_f64(),
        committed,
        rss_kib: p.rss_kib,
        cpu_s: p.cpu_s,
    }
}
