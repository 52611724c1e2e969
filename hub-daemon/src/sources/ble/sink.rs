//! Hands what the Bluetooth source reads to the core loop, as [`Inbound`] messages over the bounded channel.
//!
//! Sequence numbers: the gate wants them to increase per device id. A device that numbers its records (glucose)
//! uses its own record numbers, so a download resumes from the last one *committed* — the core updates the device's
//! `last_seq` in the same transaction as the readings, and [`Sink::committed`] learns it from the commit
//! acknowledgement, so a record is never skipped (it is asked for again unless committed) nor stored twice (the gate
//! answers a re-sent record as a duplicate). Other devices get consecutive numbers continuing from the store's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::clock::{Clock, Millis};
use crate::core::{Acknowledge, CoreInput, Inbound, rejection};
use crate::model::{ParsedObs, ParsedReading, Reason, Source};
use crate::store::Store;

use super::device_time::ReadingTime;
use super::health;

#[derive(Debug, thiserror::Error)]
#[error("the core loop stopped")]
pub struct CoreGone;

/// Resolves when the core has committed the message's fate.
pub type Committed = oneshot::Receiver<()>;

struct AckToSource {
    done: oneshot::Sender<()>,
    device: String,
    seq: u32,
    committed: Arc<Mutex<HashMap<String, u32>>>,
}

impl Acknowledge for AckToSource {
    fn committed(self: Box<Self>, _frame_ack: Option<Vec<u8>>) {
        let mut c = self.committed.lock().unwrap_or_else(|e| e.into_inner());
        let e = c.entry(self.device).or_insert(0);
        *e = (*e).max(self.seq);
        drop(c);
        let _ = self.done.send(());
    }
}

pub struct Sink<C> {
    core: mpsc::Sender<CoreInput>,
    clock: C,
    /// Next sequence number per device id (counting devices).
    next: Mutex<HashMap<String, u32>>,
    /// Highest sequence committed per device id.
    committed: Arc<Mutex<HashMap<String, u32>>>,
}

impl<C: Clock> Sink<C> {
    /// Continues each device's numbering from what the store has.
    pub async fn new(
        core: mpsc::Sender<CoreInput>,
        clock: C,
        store: &Store,
    ) -> Result<Sink<C>, crate::store::StoreError> {
        let last: HashMap<String, u32> = store
            .devices()
            .await?
            .into_iter()
            .filter_map(|d| Some((d.id, d.last_seq?)))
            .collect();
        Ok(Sink::with_last(core, clock, last))
    }

    pub fn with_last(
        core: mpsc::Sender<CoreInput>,
        clock: C,
        last: HashMap<String, u32>,
    ) -> Sink<C> {
        Sink {
            core,
            clock,
            next: Mutex::new(last.iter().map(|(k, v)| (k.clone(), v + 1)).collect()),
            committed: Arc::new(Mutex::new(last)),
        }
    }

    pub fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// The next number for a counting device.
    pub fn next_seq(&self, device: &str) -> u32 {
        let mut n = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let e = n.entry(device.to_string()).or_insert(1);
        let s = *e;
        *e = e.saturating_add(1);
        s
    }

    /// The highest sequence number committed for `device`.
    pub fn committed(&self, device: &str) -> Option<u32> {
        self.committed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(device)
            .copied()
    }

    /// Sends a reading; the returned receiver resolves once it is committed.
    pub async fn reading(
        &self,
        device: &str,
        seq: u32,
        time: ReadingTime,
        obs: Vec<ParsedObs>,
        payload: &[u8],
    ) -> Result<Committed, CoreGone> {
        if let ReadingTime::Untrusted(why) = time {
            metrics::counter!(health::UNTRUSTED_TIME, "reason" => why.as_str()).increment(1);
        }
        let (done, rx) = oneshot::channel();
        let inbound = Inbound {
            source: Source::Ble,
            received_at: self.clock.now_ms(),
            payload: bytes::Bytes::copy_from_slice(payload),
            parsed: Ok(ParsedReading {
                device: device.to_string(),
                seq,
                observed_at: time.observed_at(),
                obs,
            }),
            ack: Some(Box::new(AckToSource {
                done,
                device: device.to_string(),
                seq,
                committed: self.committed.clone(),
            })),
        };
        self.core
            .send(CoreInput::Reading(inbound))
            .await
            .map_err(|_| CoreGone)?;
        Ok(rx)
    }

    /// Sends something that cannot become a reading, to be quarantined (or held) with its reason.
    pub async fn reject(
        &self,
        device: Option<&str>,
        reason: Reason,
        detail: String,
        payload: &[u8],
    ) -> Result<(), CoreGone> {
        let inbound = Inbound {
            source: Source::Ble,
            received_at: self.clock.now_ms(),
            payload: bytes::Bytes::copy_from_slice(payload),
            parsed: Err(rejection(device.map(str::to_string), None, reason, detail)),
            ack: None,
        };
        self.core
            .send(CoreInput::Reading(inbound))
            .await
            .map_err(|_| CoreGone)
    }
}
