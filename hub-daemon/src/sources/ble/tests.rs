//! The source's logic against a scripted radio (no D-Bus): record download resumption, shared-device routing,
//! device time, backoff and the watchdog. The D-Bus tests in `tests/tests/ble.rs` are the end-to-end proof.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_stream_shim::ReceiverStream;
use uuid::Uuid;

use super::config::{BleConfig, BleDevice, Profile};
use super::health::BleHealth;
use super::radio::*;
use super::session::{Session, SessionError};
use super::sink::Sink;
use super::*;
use crate::clock::ManualClock;
use crate::core::CoreInput;
use crate::model::{ParsedReading, Reason};

/// A tiny stand-in for tokio-stream's wrapper (one use; not worth a dependency).
mod tokio_stream_shim {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    pub struct ReceiverStream<T>(pub tokio::sync::mpsc::Receiver<T>);

    impl<T> futures_util::Stream for ReceiverStream<T> {
        type Item = T;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
            self.0.poll_recv(cx)
        }
    }
}

type OnWrite = dyn Fn(&[u8]) -> Vec<Notification> + Send + Sync;
/// What the fake core saw: readings, or rejections with reason and detail.
type Seen = Arc<Mutex<Vec<Result<ParsedReading, (Reason, String)>>>>;

/// A scripted peripheral: fixed characteristics, canned reads, and a script run on each write.
struct FakePeripheral {
    chars: Vec<CharInfo>,
    reads: HashMap<Uuid, Vec<u8>>,
    writes: Mutex<Vec<(Uuid, Vec<u8>)>>,
    /// Given a write, what the device notifies.
    on_write: Box<OnWrite>,
    notify_tx: Mutex<Option<mpsc::Sender<Notification>>>,
    /// Notifications queued for the moment the hub subscribes.
    initial: Mutex<VecDeque<Notification>>,
}

fn ch(u: u16, read: bool, write: bool, notify: bool) -> CharInfo {
    CharInfo {
        service: sig(0x1800),
        uuid: sig(u),
        read,
        write,
        notify,
        indicate: false,
    }
}

#[async_trait::async_trait]
impl BlePeripheral for FakePeripheral {
    fn address(&self) -> String {
        "AA:BB:CC:DD:EE:FF".into()
    }
    async fn connect(&self) -> Result<(), RadioError> {
        Ok(())
    }
    async fn disconnect(&self) -> Result<(), RadioError> {
        Ok(())
    }
    async fn discover(&self) -> Result<Vec<CharInfo>, RadioError> {
        Ok(self.chars.clone())
    }
    async fn read(&self, uuid: Uuid) -> Result<Vec<u8>, RadioError> {
        self.reads
            .get(&uuid)
            .cloned()
            .ok_or_else(|| RadioError::NotFound(uuid.to_string()))
    }
    async fn write(&self, uuid: Uuid, value: &[u8]) -> Result<(), RadioError> {
        self.writes.lock().unwrap().push((uuid, value.to_vec()));
        let out = (self.on_write)(value);
        let tx = self.notify_tx.lock().unwrap().clone();
        if let Some(tx) = tx {
            for n in out {
                let _ = tx.send(n).await;
            }
        }
        Ok(())
    }
    async fn subscribe(&self, _uuid: Uuid) -> Result<(), RadioError> {
        let tx = self.notify_tx.lock().unwrap().clone();
        let queued: Vec<_> = self.initial.lock().unwrap().drain(..).collect();
        if let Some(tx) = tx {
            for n in queued {
                let _ = tx.send(n).await;
            }
        }
        Ok(())
    }
    async fn notifications(&self) -> Result<NotificationStream, RadioError> {
        let (tx, rx) = mpsc::channel(1024);
        *self.notify_tx.lock().unwrap() = Some(tx);
        Ok(Box::pin(ReceiverStream(rx)))
    }
}

/// The core's stand-in: records every reading and rejection and acknowledges it at once.
fn fake_core() -> (mpsc::Sender<CoreInput>, Seen) {
    let (tx, mut rx) = mpsc::channel::<CoreInput>(16);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let out = seen.clone();
    tokio::spawn(async move {
        while let Some(CoreInput::Reading(mut inb)) = rx.recv().await {
            let ack = inb.ack.take();
            out.lock()
                .unwrap()
                .push(inb.parsed.map_err(|r| (r.reason, r.detail)));
            if let Some(a) = ack {
                a.committed(None);
            }
        }
    });
    (tx, seen)
}

fn glucose_record(seq: u16) -> Notification {
    let mut v = vec![0x06];
    v.extend(seq.to_le_bytes());
    v.extend([0xEA, 0x07, 11, 23, 10, 0, 0]); // 2026-11-23 10:00:00
    v.extend([0x3C, 0xC0, 0x11]); // 6.0 mmol/L
    Notification {
        uuid: sig(0x2A18),
        value: v,
    }
}

fn racp_done() -> Notification {
    Notification {
        uuid: sig(0x2A52),
        value: vec![0x06, 0x00, 0x01, 0x01],
    }
}

fn device(profile: Profile) -> BleDevice {
    BleDevice {
        id: "dev".into(),
        address: "AA:BB:CC:DD:EE:FF".into(),
        profile,
        patient: Some("p".into()),
        users: Default::default(),
        bthome_key: None,
    }
}

fn hub_clock() -> ManualClock {
    // 2026-11-23 10:00:00 UTC
    ManualClock::new(1_795_428_000_000)
}

#[tokio::test]
async fn record_download_resumes_after_the_last_committed_sequence() {
    let (core, seen) = fake_core();
    // The store already has records up to 41.
    let sink = Sink::with_last(core, hub_clock(), HashMap::from([("dev".to_string(), 41)]));
    let p = FakePeripheral {
        chars: vec![
            ch(0x2A18, false, false, true),
            ch(0x2A52, false, true, true),
        ],
        reads: HashMap::new(),
        writes: Mutex::new(Vec::new()),
        on_write: Box::new(|req| {
            // ≥ 42 by sequence number: 42, 43, then success.
            assert_eq!(req, [0x01, 0x03, 0x01, 42, 0]);
            vec![glucose_record(42), glucose_record(43), racp_done()]
        }),
        notify_tx: Mutex::new(None),
        initial: Mutex::new(VecDeque::new()),
    };
    let cfg = BleConfig::default();
    let dev = device(Profile::Glucose);
    let health = BleHealth::new([("dev".to_string(), dev.address.clone(), "glucose")]);
    let (disc_tx, disc_rx) = watch::channel(0);
    let mut s = Session {
        dev: &dev,
        cfg: &cfg,
        sink: &sink,
        health: &health,
        disconnected: disc_rx,
        reconnect: false,
        connected: false,
    };
    let driver = async {
        tokio::time::timeout(Duration::from_secs(5), async {
            while seen.lock().unwrap().len() < 2 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("two records");
        disc_tx.send_modify(|g| *g += 1);
    };
    // The session runs until the disconnect the driver signals.
    let (r, ()) = tokio::join!(s.run(&p), driver);
    let writes = p.writes.lock().unwrap().clone();
    assert!(matches!(r, Err(SessionError::Disconnected)), "{r:?}");
    assert_eq!(writes.len(), 1);
    let seqs: Vec<u32> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.as_ref().unwrap().seq)
        .collect();
    assert_eq!(seqs, vec![42, 43]);
    assert_eq!(sink.committed("dev"), Some(43));
    // The record's own time, uncorrected (no Current Time): 10:00:00.
    let first = seen.lock().unwrap()[0].clone().unwrap();
    assert_eq!(first.observed_at, Some(1_795_428_000_000));
}

#[tokio::test]
async fn shared_scale_routes_users_and_holds_an_unknown_one() {
    let (core, seen) = fake_core();
    let sink = Sink::with_last(core, hub_clock(), HashMap::new());
    let weight = |user: u8| Notification {
        uuid: sig(0x2A9D),
        value: vec![0x04, 0x50, 0x46, user], // 90.0 kg, user id
    };
    let p = FakePeripheral {
        chars: vec![ch(0x2A9D, false, false, true)],
        reads: HashMap::new(),
        writes: Mutex::new(Vec::new()),
        on_write: Box::new(|_| Vec::new()),
        notify_tx: Mutex::new(None),
        initial: Mutex::new(VecDeque::from([weight(1), weight(2), weight(7)])),
    };
    let cfg = BleConfig::default();
    let mut dev = device(Profile::WeightScale);
    dev.patient = None;
    dev.users = [
        ("1".to_string(), "a".to_string()),
        ("2".to_string(), "b".to_string()),
    ]
    .into();
    let health = BleHealth::new([]);
    let (_disc_tx, disc_rx) = watch::channel(0);
    let mut s = Session {
        dev: &dev,
        cfg: &cfg,
        sink: &sink,
        health: &health,
        disconnected: disc_rx,
        reconnect: false,
        connected: false,
    };
    let _ = tokio::time::timeout(Duration::from_millis(300), s.run(&p)).await;
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].as_ref().unwrap().device, "dev.u1");
    assert_eq!(seen[1].as_ref().unwrap().device, "dev.u2");
    let (reason, detail) = seen[2].clone().unwrap_err();
    assert_eq!(reason, Reason::HeldForConfirmation);
    assert!(detail.contains("user id 7"), "{detail}");
}

#[test]
fn backoff_doubles_to_its_cap_with_jitter() {
    let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(800));
    let delays: Vec<u128> = (0..6).map(|_| b.next_delay().as_millis()).collect();
    for (d, base) in delays.iter().zip([100u128, 200, 400, 800, 800, 800]) {
        assert!(*d >= base * 3 / 4 && *d <= base * 5 / 4, "{delays:?}");
    }
    b.reset();
    assert!(b.next_delay() <= Duration::from_millis(125));
}

/// A central whose discovery keeps answering InProgress until it is power-cycled.
#[derive(Clone, Default)]
struct WedgedCentral {
    wedged: Arc<Mutex<bool>>,
    power_cycles: Arc<AtomicU32>,
    scans: Arc<AtomicU32>,
}

#[async_trait::async_trait]
impl BleCentral for WedgedCentral {
    type Peripheral = FakePeripheral;
    async fn events(&self) -> Result<EventStream, RadioError> {
        Ok(Box::pin(futures_util::stream::pending()))
    }
    async fn start_scan(&self, _: &[Uuid]) -> Result<(), RadioError> {
        self.scans.fetch_add(1, Ordering::SeqCst);
        if *self.wedged.lock().unwrap() {
            Err(RadioError::InProgress)
        } else {
            Ok(())
        }
    }
    async fn stop_scan(&self) -> Result<(), RadioError> {
        Ok(())
    }
    async fn peripheral(&self, _: &str) -> Result<Option<FakePeripheral>, RadioError> {
        Ok(None)
    }
    async fn advert(&self, _: &str) -> Result<Option<Advert>, RadioError> {
        Ok(None)
    }
    async fn power_cycle(&self) -> Result<(), RadioError> {
        self.power_cycles.fetch_add(1, Ordering::SeqCst);
        *self.wedged.lock().unwrap() = false;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn watchdog_power_cycles_an_adapter_stuck_in_progress() {
    let radio = WedgedCentral::default();
    *radio.wedged.lock().unwrap() = true;
    let (core, _) = fake_core();
    let sink = Arc::new(Sink::with_last(core, hub_clock(), HashMap::new()));
    let cfg = Arc::new(BleConfig {
        watchdog_in_progress: 3,
        watchdog_silence_s: 0,
        devices: vec![device(Profile::Bthome)],
        ..Default::default()
    });
    let health = Arc::new(BleHealth::new([]));
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(run(radio.clone(), cfg, sink, health.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(radio.power_cycles.load(Ordering::SeqCst), 1);
    // Three failed starts, then scanning again after the power cycle, and no further recovery.
    assert!(radio.scans.load(Ordering::SeqCst) >= 4);
    let snap = health.snapshot();
    assert_eq!(snap.adapter.recoveries, 1);
    assert_eq!(snap.adapter.last_recovery_cause, Some("in_progress"));
    assert!(snap.adapter.scanning);
    stop.cancel();
    task.await.unwrap();
}

fn motion(counter: Option<u32>, on: bool, key: &[u8; 16]) -> Vec<u8> {
    use hearth_protocol::bthome::{self, Advert, Binary, Object};
    let mut objects = heapless::Vec::new();
    let _ = objects.push(Object::Binary {
        kind: Binary::Motion,
        on,
    });
    let advert = Advert {
        encrypted: counter.is_some(),
        trigger_based: true,
        counter,
        packet_id: None,
        objects,
    };
    let mut out = [0u8; 64];
    let n = bthome::encode(
        &advert,
        [0x54, 0x48, 0xE6, 0x8F, 0x80, 0xA5],
        counter.map(|_| key),
        &mut out,
    )
    .unwrap();
    out[..n].to_vec()
}

#[tokio::test]
async fn bthome_counter_is_the_sequence_and_replays_repeats_downgrades_are_told_apart() {
    let key = [7u8; 16];
    let (core, seen) = fake_core();
    // The store has counter 4 from before a restart.
    let sink = Sink::with_last(core, hub_clock(), HashMap::from([("m".to_string(), 4)]));
    let dev = BleDevice {
        id: "m".into(),
        address: "54:48:E6:8F:80:A5".into(),
        profile: Profile::Bthome,
        patient: Some("p".into()),
        users: Default::default(),
        bthome_key: Some(hex::encode(key)),
    };
    let mut state = super::adverts::BthomeState::default();
    let five = motion(Some(5), true, &key);
    for data in [
        motion(Some(4), true, &key), // the advert stored last before the restart, repeated: dropped
        motion(Some(3), true, &key), // older: a replay across the restart
        five.clone(),                // new
        five.clone(),                // BlueZ repeating it: dropped, not a replay
        motion(Some(6), false, &key), // new
        five,                        // replay
        motion(None, true, &key),    // plaintext from a keyed device
    ] {
        state.advert(&dev, &data, &sink).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let seen = seen.lock().unwrap();
    let summary: Vec<String> = seen
        .iter()
        .map(|r| match r {
            Ok(p) => format!("seq {}", p.seq),
            Err((reason, _)) => reason.as_str().to_string(),
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            "replayed_sequence",
            "seq 5",
            "seq 6",
            "replayed_sequence",
            "bad_mac"
        ]
    );
}
