//! Continuous load for fault tests: one simulated device per patient, each publishing readings as fast as its
//! PubAcks allow (a bounded window), with breaching values mixed in so alerts open and resolve all the time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::task::JoinHandle;

use crate::sensors::SensorSim;
use crate::time_fmt::now;

/// How many publishes one device may have unacked at a time.
pub const WINDOW: usize = 8;

/// spo2 values cycled by every device: three breaching (below 92), then three normal, so every cycle opens and
/// resolves an alert under a `spo2 < 92` rule.
pub const PATTERN: [u32; 6] = [90, 88, 91, 96, 97, 95];

/// `[clinical]` settings for a hub under this load: its pattern breaches every sixth reading on purpose (to keep
/// alert traffic flowing through the fault tests), which flap control would hold open and trends would add to; both
/// are switched off so that every breach is one alert episode (`tests/src/survival.rs` counts on it).
pub const CLINICAL_TOML: &str =
    "\n[clinical]\nflap_count = 1000000000\n[clinical.trends]\nenabled = false\n";

/// A running load generator; [`Load::stop`] ends it and returns the simulators for inspection.
pub struct Load {
    stop: Arc<AtomicBool>,
    sims: Vec<Arc<SensorSim>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts one simulator per device on `127.0.0.1:port`, each publishing to `hub/readings/{device}`.
    pub async fn start(port: u16, devices: &[&str]) -> Load {
        Load::start_paced(port, devices, None).await
    }

    /// Like [`Load::start`], each device publishing at most `per_device_hz` readings per second (`None`: as fast as
    /// the PubAcks allow). The pace is an upper bound; back-pressure can only slow it further.
    pub async fn start_paced(port: u16, devices: &[&str], per_device_hz: Option<f64>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        let mut sims = Vec::new();
        for d in devices {
            let sim = Arc::new(SensorSim::connect(port, &format!("load-{d}")).await);
            sims.push(sim.clone());
            let device = d.to_string();
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let mut seq = 0u64;
                let mut pace = per_device_hz.map(|hz| {
                    let mut i = tokio::time::interval(Duration::from_secs_f64(1.0 / hz));
                    // A stall is not made up with a burst: the rate stays an upper bound.
                    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    i
                });
                while !stop.load(Ordering::SeqCst) {
                    // Back-pressure: wait for a slot and a connection (both bounded, re-checked each turn).
                    if !sim.is_connected() {
                        let _ = tokio::time::timeout(
                            Duration::from_millis(200),
                            sim.wait_connected(Duration::from_secs(60)),
                        )
                        .await;
                        continue;
                    }
                    if !sim
                        .wait_outstanding_below(WINDOW, Duration::from_millis(200))
                        .await
                    {
                        continue;
                    }
                    if let Some(p) = pace.as_mut() {
                        p.tick().await;
                    }
                    seq += 1;
                    let v = PATTERN[(seq as usize) % PATTERN.len()];
                    sim.publish_reading(&device, seq, Some(now()), json!({"spo2": v}));
                }
            }));
        }
        Load { stop, sims, tasks }
    }

    /// PubAcks received so far, over all devices.
    pub fn acked_total(&self) -> usize {
        self.sims.iter().map(|s| s.acked().len()).sum()
    }

    /// Waits (bounded) until more than `n` PubAcks have arrived in total; `false` on timeout.
    pub async fn wait_acked_total_above(&self, n: usize, timeout: Duration) -> bool {
        crate::wait::poll_for("load progress", timeout, || async {
            if self.acked_total() > n {
                Ok(())
            } else {
                Err(format!("{}", self.acked_total()))
            }
        })
        .await
        .is_ok()
    }

    /// Stops publishing, waits (bounded) until nothing is in flight, and returns the simulators (with their PubAck
    /// records).
    pub async fn stop(self) -> Vec<Arc<SensorSim>> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            t.await.expect("load task");
        }
        // Let what is in flight settle (acked, or lost with its connection), so a check that follows sees every
        // reading the hub will ever commit from this load.
        for s in &self.sims {
            s.wait_outstanding_below(1, Duration::from_secs(10)).await;
        }
        self.sims
    }
}
