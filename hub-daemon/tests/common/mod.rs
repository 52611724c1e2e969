//! The core loop with a real SQLite store and a manual clock, shared by the simulated-time test files.
#![allow(dead_code)] // each test file uses part of the rig

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hearth_protocol::{Code, Observation, Quantity};
use hearthd::clock::{Clock, ManualClock, Millis};
use hearthd::config::Config;
use hearthd::core::{Acknowledge, Core, CoreInput, Inbound};
use hearthd::model::{ParsedObs, ParsedReading, Source};
use hearthd::store::Store;
use sqlx::Row;
use tokio::sync::Notify;

pub const START: Millis = 1_795_000_000_000;
pub const MIN: Millis = 60_000;
pub const HOUR: Millis = 60 * MIN;

pub struct Rig {
    pub core: Core<ManualClock>,
    pub clock: ManualClock,
    pub store: Store,
    pub acks: Arc<AtomicUsize>,
    pub seq: u32,
    pub _dir: tempfile::TempDir,
}

pub struct CountAck(pub Arc<AtomicUsize>);
impl Acknowledge for CountAck {
    fn committed(self: Box<Self>, _frame_ack: Option<Vec<u8>>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Rig {
    /// A rig on a fresh database with configuration `raw`.
    pub async fn from_config(raw: &str) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("h.db")).await.unwrap();
        Rig::with_config(dir, store, raw).await
    }

    pub async fn with_config(dir: tempfile::TempDir, store: Store, raw: &str) -> Rig {
        let cfg = Arc::new(Config::parse(raw, std::path::Path::new("t")).unwrap());
        let clock = ManualClock::new(START);
        let core = Core::load(cfg, clock.clone(), store.clone(), Arc::new(Notify::new()))
            .await
            .unwrap();
        Rig {
            core,
            clock,
            store,
            acks: Arc::new(AtomicUsize::new(0)),
            seq: 0,
            _dir: dir,
        }
    }

    /// A reading observed now, from `device`.
    pub async fn send(&mut self, device: &str, obs: Vec<Observation>) {
        self.seq += 1;
        let now = self.clock.now_ms();
        self.send_at(device, self.seq, Some(now), obs).await;
    }

    pub async fn send_at(
        &mut self,
        device: &str,
        seq: u32,
        t: Option<Millis>,
        obs: Vec<Observation>,
    ) {
        let parsed = ParsedReading {
            device: device.into(),
            seq,
            observed_at: t,
            obs: obs.into_iter().map(ParsedObs::Ok).collect(),
        };
        let inbound = Inbound {
            source: Source::MqttJson,
            received_at: self.clock.now_ms(),
            payload: bytes::Bytes::from_static(b"{}"),
            parsed: Ok(parsed),
            ack: Some(Box::new(CountAck(self.acks.clone()))),
        };
        self.core
            .step(&mut vec![CoreInput::Reading(inbound)])
            .await
            .unwrap();
    }

    /// Advances the clock minute by minute, running the timers as the daemon would.
    pub async fn pass(&mut self, ms: Millis) {
        let end = self.clock.now_ms() + ms;
        while self.clock.now_ms() < end {
            self.clock.advance(MIN.min(end - self.clock.now_ms()));
            self.core.tick().await.unwrap();
        }
    }

    pub async fn outbox(&self) -> Vec<(String, i64, String)> {
        sqlx::query("SELECT alert_id, rev, payload FROM outbox ORDER BY id")
            .fetch_all(self.store.reader())
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    }

    pub async fn states(&self) -> Vec<String> {
        self.outbox()
            .await
            .iter()
            .map(|(_, _, p)| {
                let v: serde_json::Value = serde_json::from_str(p).unwrap();
                format!(
                    "{}:{}",
                    v["rule"].as_str().unwrap(),
                    v["state"].as_str().unwrap()
                )
            })
            .collect()
    }
}

pub fn spo2(v: i32) -> Observation {
    Observation::number(Code::Spo2, Quantity::new(v, 0))
}
pub fn hr(v: i32) -> Observation {
    Observation::number(Code::HeartRate, Quantity::new(v, 0))
}

pub fn obs(code: Code, v: i32, exp: i8) -> Observation {
    Observation::number(code, Quantity::new(v, exp))
}

/// Counts acknowledgements (the sources' side of invariant 1).
pub fn acked(rig: &Rig) -> usize {
    rig.acks.load(Ordering::SeqCst)
}
