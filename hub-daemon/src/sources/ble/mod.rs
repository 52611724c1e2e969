//! The Bluetooth LE source: standard health devices over GATT and BTHome sensors over adverts, on BlueZ.
//!
//! ```text
//! radio events ──► scanner + watchdog (this task) ──► BTHome adverts ──► sink ──bounded──► core
//!                        │ seen / disconnected
//!                        ▼
//!                  one task per enrolled GATT device: wait until seen → session (connect, time, records, live)
//!                  → on failure back off (capped, jittered) → wait until seen again
//! ```
//!
//! - [`radio`]: the trait the logic is written against; [`bluez`]: its btleplug implementation.
//! - [`session`]: one GATT connection; [`device_time`]: coincident timestamps and untrusted times.
//! - [`adverts`]: BTHome; [`sink`]: readings to the core with commit acknowledgements.
//! - [`health`]: per-device and adapter health (metrics, `GET /api/ble`); [`config`]: `[ble]`; [`cli`]: `hearthd ble`.
//!
//! Self-healing: a device that drops is reconnected when next seen, after a backoff that doubles up to
//! `reconnect_max_ms` (±25 % jitter, so many devices do not retry in step). A watchdog power-cycles the adapter when
//! BlueZ keeps answering `InProgress`, or when nothing at all has been heard for `watchdog_silence_s` and restarting
//! discovery did not help; every recovery is counted (`hearth_ble_adapter_recoveries_total{cause}`).

pub mod adverts;
pub mod bluez;
pub mod cli;
pub mod config;
pub mod device_time;
pub mod health;
pub mod radio;
pub mod session;
pub mod sink;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use rand::Rng;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use config::{BleConfig, BleDevice, Profile};
use health::BleHealth;
use radio::{BleCentral, RadioError, RadioEvent, sig};
use session::{Session, SessionError};
use sink::Sink;

/// How often the watchdog looks.
const WATCHDOG_TICK: Duration = Duration::from_millis(500);
/// Longest silence threshold after repeated silent recoveries (a home with no device nearby is not a fault).
const MAX_SILENCE: Duration = Duration::from_secs(6 * 3600);

struct Signals {
    seen: watch::Sender<u64>,
    disconnected: watch::Sender<u64>,
}

fn bump(tx: &watch::Sender<u64>) {
    tx.send_modify(|g| *g = g.wrapping_add(1));
}

/// Capped exponential backoff with ±25 % jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    pub fn reset(&mut self) {
        self.next = self.min;
    }

    /// The delay to wait now; doubles the next one up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        base.mul_f64(rand::rng().random_range(0.75..1.25))
    }
}

/// Runs the source until `stop`; returns an error only if the core loop stopped.
pub async fn run<R: BleCentral, C: Clock>(
    radio: R,
    cfg: Arc<BleConfig>,
    sink: Arc<Sink<C>>,
    health: Arc<BleHealth>,
    stop: CancellationToken,
) {
    let radio = Arc::new(radio);
    let in_progress = Arc::new(AtomicU32::new(0));
    let mut signals = HashMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    for dev in cfg.devices.iter().filter(|d| d.profile != Profile::Bthome) {
        let (seen, seen_rx) = watch::channel(0);
        let (disconnected, disc_rx) = watch::channel(0);
        signals.insert(
            dev.address.to_ascii_uppercase(),
            Signals { seen, disconnected },
        );
        tasks.spawn(device_loop(
            radio.clone(),
            dev.clone(),
            cfg.clone(),
            sink.clone(),
            health.clone(),
            seen_rx,
            disc_rx,
            in_progress.clone(),
            stop.clone(),
        ));
    }
    let scanner = Scanner {
        radio,
        cfg: cfg.clone(),
        sink,
        health,
        signals,
        in_progress,
        bthome: adverts::BthomeState::default(),
        silence: Duration::from_secs(cfg.watchdog_silence_s),
        by_address: cfg
            .devices
            .iter()
            .map(|d| (d.address.to_ascii_uppercase(), d.clone()))
            .collect(),
    };
    scanner.run(stop.clone()).await;
    stop.cancel();
    while tasks.join_next().await.is_some() {}
}

struct Scanner<R, C> {
    radio: Arc<R>,
    cfg: Arc<BleConfig>,
    sink: Arc<Sink<C>>,
    health: Arc<BleHealth>,
    signals: HashMap<String, Signals>,
    in_progress: Arc<AtomicU32>,
    bthome: adverts::BthomeState,
    by_address: HashMap<String, BleDevice>,
    /// The silence the watchdog tolerates now (doubles after a silent recovery that heard nothing since).
    silence: Duration,
}

/// Why the scanner restarts its event stream and discovery.
enum Restart {
    Recovered,
    StreamEnded,
    Stop,
}

impl<R: BleCentral, C: Clock> Scanner<R, C> {
    fn filter(&self) -> Vec<uuid::Uuid> {
        let mut s: Vec<_> = self
            .cfg
            .devices
            .iter()
            .map(|d| sig(d.profile.service()))
            .collect();
        s.sort();
        s.dedup();
        s
    }

    async fn run(mut self, stop: CancellationToken) {
        let mut backoff = Backoff::new(
            Duration::from_millis(self.cfg.reconnect_min_ms),
            Duration::from_millis(self.cfg.reconnect_max_ms),
        );
        loop {
            match self.session(&stop).await {
                Ok(Restart::Stop) | Err(sink::CoreGone) => return,
                Ok(Restart::Recovered) => backoff.reset(),
                Ok(Restart::StreamEnded) => {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                }
            }
        }
    }

    /// One event stream and discovery: until it ends, the watchdog recovers the adapter, or `stop`.
    async fn session(&mut self, stop: &CancellationToken) -> Result<Restart, sink::CoreGone> {
        let mut events = match self.radio.events().await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "Bluetooth events unavailable");
                return Ok(Restart::StreamEnded);
            }
        };
        let silence_base = Duration::from_secs(self.cfg.watchdog_silence_s);
        let mut last_event = Instant::now();
        let mut heard = self.health.heard_count();
        let mut discovery_restarted = false;
        let mut scanning = self.start_scan().await;
        let mut tick = tokio::time::interval(WATCHDOG_TICK);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(Restart::Stop),
                ev = events.next() => match ev {
                    None => return Ok(Restart::StreamEnded),
                    Some(ev) => {
                        if matches!(ev, RadioEvent::Seen(_) | RadioEvent::Heard(_)) {
                            self.health.heard();
                        }
                        self.event(ev).await?;
                    }
                },
                _ = tick.tick() => {
                    let h = self.health.heard_count();
                    if h != heard || self.health.any_connected() {
                        heard = h;
                        last_event = Instant::now();
                        discovery_restarted = false;
                        self.silence = silence_base;
                        let now = self.sink.now();
                        self.health.adapter(|a| a.last_event_at = Some(now));
                    }
                    if !scanning {
                        scanning = self.start_scan().await;
                    }
                    let errors = self.in_progress.load(Ordering::SeqCst);
                    if errors >= self.cfg.watchdog_in_progress.max(1) {
                        self.recover("in_progress").await;
                        return Ok(Restart::Recovered);
                    }
                    let silence = self.silence;
                    let quiet = !silence.is_zero() && !self.cfg.devices.is_empty()
                        && last_event.elapsed() >= silence;
                    if quiet && !discovery_restarted {
                        tracing::warn!(silent_s = silence.as_secs(), "no Bluetooth events; restarting discovery");
                        let _ = self.radio.stop_scan().await;
                        if self.radio.start_scan(&self.filter()).await.is_err() {
                            self.recover("discovery_failed").await;
                            return Ok(Restart::Recovered);
                        }
                        discovery_restarted = true;
                        last_event = Instant::now();
                    } else if quiet {
                        self.recover("silence").await;
                        // Quiet after a power cycle too: maybe nobody is near. Wait longer before the next one.
                        self.silence = (silence * 2).min(MAX_SILENCE);
                        return Ok(Restart::Recovered);
                    }
                }
            }
        }
    }

    async fn start_scan(&self) -> bool {
        match self.radio.start_scan(&self.filter()).await {
            Ok(()) => {
                self.in_progress.store(0, Ordering::SeqCst);
                self.health.adapter(|a| a.scanning = true);
                true
            }
            Err(e) => {
                if e == RadioError::InProgress {
                    self.in_progress.fetch_add(1, Ordering::SeqCst);
                }
                tracing::warn!(error = %e, "cannot start Bluetooth discovery");
                self.health.adapter(|a| a.scanning = false);
                false
            }
        }
    }

    async fn recover(&self, cause: &'static str) {
        tracing::warn!(cause, "Bluetooth adapter looks wedged; power-cycling it");
        metrics::counter!(health::ADAPTER_RECOVERIES, "cause" => cause).increment(1);
        let now = self.sink.now();
        self.health.adapter(|a| {
            a.recoveries += 1;
            a.last_recovery_at = Some(now);
            a.last_recovery_cause = Some(cause);
            a.scanning = false;
        });
        self.in_progress.store(0, Ordering::SeqCst);
        if let Err(e) = self.radio.power_cycle().await {
            tracing::error!(error = %e, "adapter power cycle failed");
        }
    }

    async fn event(&mut self, ev: RadioEvent) -> Result<(), sink::CoreGone> {
        match ev {
            RadioEvent::Seen(adv) => {
                let Some(dev) = self.by_address.get(&adv.address) else {
                    return Ok(());
                };
                let now = self.sink.now();
                self.health.device(&dev.id, |h| {
                    h.last_seen_at = Some(now);
                    if adv.rssi.is_some() {
                        h.rssi = adv.rssi;
                    }
                });
                if dev.profile == Profile::Bthome {
                    if let Some(data) = adverts::service_data(&adv) {
                        let dev = dev.clone();
                        self.bthome.advert(&dev, data, &self.sink).await?;
                    }
                } else if let Some(s) = self.signals.get(&adv.address) {
                    bump(&s.seen);
                }
            }
            RadioEvent::Disconnected(address) => {
                if let Some(s) = self.signals.get(&address.to_ascii_uppercase()) {
                    bump(&s.disconnected);
                }
            }
            RadioEvent::Connected(_) | RadioEvent::Heard(_) => {}
        }
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
async fn device_loop<R: BleCentral, C: Clock>(
    radio: Arc<R>,
    dev: BleDevice,
    cfg: Arc<BleConfig>,
    sink: Arc<Sink<C>>,
    health: Arc<BleHealth>,
    mut seen: watch::Receiver<u64>,
    disconnected: watch::Receiver<u64>,
    in_progress: Arc<AtomicU32>,
    stop: CancellationToken,
) {
    let mut backoff = Backoff::new(
        Duration::from_millis(cfg.reconnect_min_ms),
        Duration::from_millis(cfg.reconnect_max_ms),
    );
    let mut ever_connected = false;
    loop {
        // Connect only to a device that is around: wait for an advert.
        tokio::select! {
            _ = stop.cancelled() => return,
            r = seen.changed() => if r.is_err() { return },
        }
        let p = match radio.peripheral(&dev.address).await {
            Ok(Some(p)) => p,
            Ok(None) => continue,
            Err(e) => {
                tracing::debug!(device = %dev.id, error = %e, "device lookup failed");
                continue;
            }
        };
        let mut s = Session {
            dev: &dev,
            cfg: &cfg,
            sink: &sink,
            health: &health,
            disconnected: disconnected.clone(),
            reconnect: ever_connected,
            connected: false,
        };
        let result = tokio::select! {
            _ = stop.cancelled() => return,
            r = s.run(&p) => r,
        };
        let connected = s.connected;
        ever_connected |= connected;
        let _ = tokio::time::timeout(Duration::from_secs(2), radio::BlePeripheral::disconnect(&p))
            .await;
        let now = sink.now();
        let err = result.err();
        if let Some(SessionError::CoreGone(_)) = err {
            return;
        }
        if let Some(SessionError::Radio(RadioError::InProgress)) = err {
            in_progress.fetch_add(1, Ordering::SeqCst);
        } else if connected {
            in_progress.store(0, Ordering::SeqCst);
        }
        let msg = err.as_ref().map(|e| e.to_string());
        tracing::info!(device = %dev.id, reason = msg.as_deref().unwrap_or("ended"), "Bluetooth session ended");
        health.device(&dev.id, |h| {
            if h.connected {
                h.last_disconnected_at = Some(now);
            }
            h.connected = false;
            if !connected {
                h.connect_failures += 1;
            }
            h.last_error = msg;
        });
        if connected {
            backoff.reset();
        } else {
            metrics::counter!(health::CONNECT_FAILURES, "device" => dev.id.clone()).increment(1);
        }
        let delay = backoff.next_delay();
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        // Adverts seen during the backoff count: a device still in range is tried again at once.
    }
}

#[cfg(test)]
mod tests;
