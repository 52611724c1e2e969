//! Turns the raw observations into the figures, checks them against the targets, prints them (for people, and one
//! `RESULT {json}` line for machines).

use std::collections::HashMap;
use std::time::Instant;

use serde::Serialize;

use crate::alerts::Received;
use crate::procfs::ProcSample;
use crate::verify::DbCheck;
use crate::{Args, Broker};

/// One timeline point, taken about once a second.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    pub t_s: f64,
    pub committed: u64,
    pub rss_kib: u64,
    pub cpu_s: f64,
}

pub struct Inputs<'a> {
    pub args: &'a Args,
    pub nproc: usize,
    pub cpu_model: String,
    pub loadavg_before: String,
    pub start: Instant,
    pub paced_end: Instant,
    pub published: u64,
    pub committed: u64,
    /// (seconds since start, committed) right after the load stopped.
    pub at_paced_end: (f64, u64),
    pub all_committed_at: Option<Instant>,
    pub breaches: u64,
    pub breach_times: &'a HashMap<(String, u32), (Instant, i64)>,
    pub received: &'a Received,
    pub at_ready: ProcSample,
    pub hub_end: ProcSample,
    pub broker_at_ready: Option<ProcSample>,
    pub broker_end: Option<ProcSample>,
    pub self_cpu: f64,
    pub timeline: Vec<Sample>,
    pub final_metrics: &'a str,
    pub hub_exit: Option<i32>,
    pub db: DbCheck,
    pub load_errors: Vec<String>,
    pub broker_acked: u64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub command: String,
    pub broker: Broker,
    pub target_rate: f64,
    pub devices: usize,
    pub patients: usize,
    pub duration_s: u64,
    pub breach_every: u64,
    pub published: u64,
    pub broker_acked: u64,
    pub committed: u64,
    pub offered_rate: f64,
    /// Committed per second while the load ran (committed when it stopped ÷ its length).
    pub committed_rate_during_load: f64,
    /// Slowest and median one-second commit rate during the load (first and last second excluded).
    pub committed_rate_per_s_min: f64,
    pub committed_rate_per_s_median: f64,
    /// Backlog not yet committed when the load stopped, and how long it took to clear.
    pub backlog_at_end: u64,
    pub drain_s: Option<f64>,
    /// Everything published ÷ (first publish → last commit).
    pub sustained_rate: Option<f64>,
    pub alerts_expected: u64,
    pub alerts_raised_received: u64,
    pub alerts_resolved_received: u64,
    pub alerts_missing: u64,
    pub alert_resends_seen: u64,
    pub other_alerts: Vec<String>,
    pub latency_ms_p50: Option<f64>,
    pub latency_ms_p99: Option<f64>,
    pub latency_ms_max: Option<f64>,
    /// The latency split at the hub's `raised_at` stamp (wall clock, ms resolution): reading in → rules ran, and
    /// rules ran → commit, outbox, upstream publish, broker, community hub.
    pub publish_to_raised_ms_p50: Option<f64>,
    pub publish_to_raised_ms_p99: Option<f64>,
    pub raised_to_arrival_ms_p50: Option<f64>,
    pub raised_to_arrival_ms_p99: Option<f64>,
    pub hub_peak_rss_mib: f64,
    pub hub_cpu_s: f64,
    pub hub_cpu_us_per_reading: f64,
    pub sensors_broker_peak_rss_mib: Option<f64>,
    pub sensors_broker_cpu_us_per_reading: Option<f64>,
    pub load_generator_cpu_us_per_reading: f64,
    pub commit_seconds_mean_ms: Option<f64>,
    pub commits: Option<f64>,
    pub readings_per_commit: Option<f64>,
    pub hub_exit_code: Option<i32>,
    pub db: DbCheck,
    pub load_errors: Vec<String>,
    pub timeline: Vec<Sample>,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    /// /proc/loadavg (1-minute) before and after the run: anything above ~0 means other work shared the cores.
    pub loadavg_before: String,
    pub loadavg_after: String,
}

fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

impl Report {
    pub fn build(i: Inputs<'_>) -> Report {
        let a = i.args;
        let secs = |t: Instant| t.duration_since(i.start).as_secs_f64();
        let paced_s = secs(i.paced_end).max(1e-9);

        // Reading → alert: the raise (rev 1) of each breach, matched by the breaching reading's device and seq.
        let mut latencies = Vec::new();
        let (mut to_raise, mut raise_to_arrival) = (Vec::new(), Vec::new());
        let (mut raised, mut resolved) = (0u64, 0u64);
        let mut other: HashMap<String, u64> = HashMap::new();
        for arr in &i.received.arrivals {
            if arr.kind != "clinical" {
                *other
                    .entry(format!(
                        "{} {}",
                        arr.rule.as_deref().unwrap_or("?"),
                        arr.state
                    ))
                    .or_default() += 1;
                continue;
            }
            if arr.state == "resolved" {
                resolved += 1;
            } else if arr.rev == 1 {
                raised += 1;
                let key = (arr.device.clone().unwrap_or_default(), arr.seq.unwrap_or(0));
                if let Some((t0, wall0)) = i.breach_times.get(&key) {
                    latencies.push(arr.at.duration_since(*t0).as_secs_f64() * 1e3);
                    if let Some(r) = arr.raised_at_ms {
                        to_raise.push((r - wall0) as f64);
                        raise_to_arrival.push((arr.arrived_wall_ms - r) as f64);
                    }
                }
            }
        }
        latencies.sort_by(f64::total_cmp);
        to_raise.sort_by(f64::total_cmp);
        raise_to_arrival.sort_by(f64::total_cmp);
        let matched = latencies.len() as u64;

        // One-second commit rates while the load ran.
        let mut rates: Vec<f64> = i
            .timeline
            .windows(2)
            .filter(|w| w[1].t_s <= paced_s + 0.05 && w[0].t_s >= 1.0)
            .map(|w| {
                (w[1].committed - w[0].committed.min(w[1].committed)) as f64 / (w[1].t_s - w[0].t_s)
            })
            .collect();
        rates.sort_by(f64::total_cmp);

        let hub_cpu = i.hub_end.cpu_s - i.at_ready.cpu_s;
        let per_reading = |cpu: f64| cpu * 1e6 / (i.committed.max(1) as f64);
        let commit_sum = crate::metrics::value(i.final_metrics, "hearth_commit_seconds_sum");
        let commit_count = crate::metrics::value(i.final_metrics, "hearth_commit_seconds_count");
        let other_alerts = {
            let mut v: Vec<String> = other
                .into_iter()
                .map(|(k, n)| format!("{k} ×{n}"))
                .collect();
            v.sort();
            v
        };
        Report {
            machine: Machine {
                nproc: i.nproc,
                cpu_model: i.cpu_model,
                loadavg_before: i.loadavg_before,
                loadavg_after: crate::procfs::loadavg(),
            },
            command: std::env::args().collect::<Vec<_>>().join(" "),
            broker: a.broker,
            target_rate: a.rate,
            devices: a.devices,
            patients: a.devices.div_ceil(a.devices_per_patient),
            duration_s: a.duration_s,
            breach_every: a.breach_every,
            published: i.published,
            broker_acked: i.broker_acked,
            committed: i.committed,
            offered_rate: i.published as f64 / paced_s,
            committed_rate_during_load: i.at_paced_end.1 as f64 / i.at_paced_end.0.max(1e-9),
            committed_rate_per_s_min: rates.first().copied().unwrap_or(0.0),
            committed_rate_per_s_median: percentile(&rates, 0.5).unwrap_or(0.0),
            backlog_at_end: i.published.saturating_sub(i.at_paced_end.1),
            drain_s: i
                .all_committed_at
                .map(|t| t.saturating_duration_since(i.paced_end).as_secs_f64()),
            sustained_rate: i.all_committed_at.map(|t| i.published as f64 / secs(t)),
            alerts_expected: i.breaches,
            alerts_raised_received: raised,
            alerts_resolved_received: resolved,
            alerts_missing: i.breaches.saturating_sub(matched),
            alert_resends_seen: i.received.duplicates,
            other_alerts,
            latency_ms_p50: percentile(&latencies, 0.50),
            latency_ms_p99: percentile(&latencies, 0.99),
            latency_ms_max: latencies.last().copied(),
            publish_to_raised_ms_p50: percentile(&to_raise, 0.5),
            publish_to_raised_ms_p99: percentile(&to_raise, 0.99),
            raised_to_arrival_ms_p50: percentile(&raise_to_arrival, 0.5),
            raised_to_arrival_ms_p99: percentile(&raise_to_arrival, 0.99),
            hub_peak_rss_mib: i.hub_end.hwm_kib as f64 / 1024.0,
            hub_cpu_s: hub_cpu,
            hub_cpu_us_per_reading: per_reading(hub_cpu),
            sensors_broker_peak_rss_mib: i.broker_end.map(|b| b.hwm_kib as f64 / 1024.0),
            sensors_broker_cpu_us_per_reading: match (i.broker_at_ready, i.broker_end) {
                (Some(s), Some(e)) => Some(per_reading(e.cpu_s - s.cpu_s)),
                _ => None,
            },
            load_generator_cpu_us_per_reading: per_reading(i.self_cpu),
            commit_seconds_mean_ms: (commit_count > 0.0).then(|| commit_sum / commit_count * 1e3),
            commits: (commit_count > 0.0).then_some(commit_count),
            readings_per_commit: (commit_count > 0.0).then(|| i.committed as f64 / commit_count),
            hub_exit_code: i.hub_exit,
            db: i.db,
            load_errors: i.load_errors,
            timeline: i.timeline,
        }
    }

    /// Every reading committed (metrics and database, no gaps), every breach alerted, a clean exit.
    pub fn correct(&self) -> bool {
        self.committed == self.published
            && self.db.error.is_none()
            && self.db.readings == self.published
            && self.db.devices_with_gaps == 0
            && self.db.quarantined == 0
            && self.db.clinical_alerts == self.alerts_expected
            && self.alerts_missing == 0
            && self.hub_exit_code == Some(0)
            && self.load_errors.is_empty()
    }

    pub fn print(&self) {
        let opt = |v: Option<f64>, d: usize| v.map_or("n/a".to_string(), |v| format!("{v:.d$}"));
        let yes = |b: bool| if b { "MET" } else { "NOT MET" };
        println!("hearth-bench — hearthd over MQTT");
        println!(
            "  machine        {} CPU(s), {}; load average before {} after {}",
            self.machine.nproc,
            self.machine.cpu_model,
            self.machine.loadavg_before,
            self.machine.loadavg_after
        );
        println!("  command        {}", self.command);
        println!(
            "  load           {:.0} readings/s target, {} devices / {} patients, {} s, sensors broker {:?}, breach every {} readings per patient",
            self.target_rate,
            self.devices,
            self.patients,
            self.duration_s,
            self.broker,
            self.breach_every
        );
        println!("throughput");
        println!(
            "  published      {} (broker acked {}), offered {:.0}/s",
            self.published, self.broker_acked, self.offered_rate
        );
        println!(
            "  committed      {} — {:.0}/s during the load (per-second min {:.0}, median {:.0})",
            self.committed,
            self.committed_rate_during_load,
            self.committed_rate_per_s_min,
            self.committed_rate_per_s_median
        );
        println!(
            "  backlog        {} readings when the load stopped, drained in {} s",
            self.backlog_at_end,
            opt(self.drain_s, 2)
        );
        println!(
            "  sustained      {} readings/s (everything published ÷ first publish → last commit)",
            opt(self.sustained_rate, 0)
        );
        println!(
            "  group commit   {} commits, {} readings/commit, mean commit {} ms",
            opt(self.commits, 0),
            opt(self.readings_per_commit, 1),
            opt(self.commit_seconds_mean_ms, 2)
        );
        println!("alerts");
        println!(
            "  expected {}  raised {}  resolved {}  missing {}  resends {}  other {:?}",
            self.alerts_expected,
            self.alerts_raised_received,
            self.alerts_resolved_received,
            self.alerts_missing,
            self.alert_resends_seen,
            self.other_alerts
        );
        println!(
            "  reading→alert  p50 {} ms  p99 {} ms  max {} ms",
            opt(self.latency_ms_p50, 2),
            opt(self.latency_ms_p99, 2),
            opt(self.latency_ms_max, 2)
        );
        println!(
            "  split at the hub's raised_at (ms resolution): publish→raised p50 {} p99 {} ms; raised→arrival p50 {} p99 {} ms",
            opt(self.publish_to_raised_ms_p50, 0),
            opt(self.publish_to_raised_ms_p99, 0),
            opt(self.raised_to_arrival_ms_p50, 0),
            opt(self.raised_to_arrival_ms_p99, 0)
        );
        println!(
            "resources (hearthd process{})",
            if self.broker == Broker::Embedded {
                ", its MQTT endpoint included"
            } else {
                ""
            }
        );
        println!("  peak RSS       {:.1} MiB", self.hub_peak_rss_mib);
        println!(
            "  CPU            {:.2} s, {:.1} µs per reading",
            self.hub_cpu_s, self.hub_cpu_us_per_reading
        );
        if let (Some(rss), Some(cpu)) = (
            self.sensors_broker_peak_rss_mib,
            self.sensors_broker_cpu_us_per_reading,
        ) {
            println!(
                "  mosquitto      {rss:.1} MiB peak, {cpu:.1} µs per reading (sensors broker, separate process)"
            );
        }
        println!(
            "  load generator {:.1} µs per reading",
            self.load_generator_cpu_us_per_reading
        );
        println!("correctness");
        println!(
            "  database       {} readings, {} devices with gaps, {} quarantined, {} clinical alerts, {} undelivered{}",
            self.db.readings,
            self.db.devices_with_gaps,
            self.db.quarantined,
            self.db.clinical_alerts,
            self.db.outbox_undelivered,
            self.db
                .error
                .as_deref()
                .map(|e| format!(", ERROR {e}"))
                .unwrap_or_default()
        );
        println!("  hearthd exit   {:?}", self.hub_exit_code);
        for e in self.load_errors.iter().take(5) {
            println!("  load error     {e}");
        }
        println!(
            "  verdict        {}",
            if self.correct() {
                "every reading committed, every alert delivered"
            } else {
                "INCOMPLETE — see above"
            }
        );
        println!("targets (issue: 2-core box, broker and load generator on the same machine)");
        if self.target_rate >= 10_000.0 && self.devices >= 1000 {
            let ok = self.sustained_rate.unwrap_or(0.0) >= 10_000.0
                && self.alerts_missing == 0
                && self.correct();
            println!(
                "  ≥ 10,000 readings/s, 1,000 devices, zero missing   {}",
                yes(ok)
            );
            println!(
                "  ≤ 30 µs CPU per reading at 10,000/s                {}",
                yes(self.hub_cpu_us_per_reading <= 30.0)
            );
        }
        if (self.target_rate - 1000.0).abs() < 1.0 {
            println!(
                "  p99 reading→alert ≤ 10 ms at 1,000/s               {}",
                yes(self.latency_ms_p99.is_some_and(|p| p <= 10.0))
            );
        }
        println!(
            "  peak RSS ≤ 30 MB                                   {}",
            yes(self.hub_peak_rss_mib * 1.048_576 <= 30.0)
        );
        match serde_json::to_string(self) {
            Ok(json) => println!("RESULT {json}"),
            Err(e) => println!("RESULT {{\"error\":\"{e}\"}}"),
        }
    }
}
