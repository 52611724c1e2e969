//! One connection to an enrolled GATT device: connect, discover, read Device Information, Battery and Current Time
//! (the coincident timestamp), subscribe to the profile's measurements, download stored records through the Record
//! Access Control Point, then forward live measurements until the device goes away.
//!
//! Generic over [`BlePeripheral`], so it runs against BlueZ in the daemon and a scripted radio in the unit tests.

use std::time::Duration;

use futures_util::StreamExt;
use hearth_protocol::gatt::{
    self, Characteristic as _, CurrentTime, Decoded, RacpResponseCode, RecordAccessControlPoint,
    RecordFilter, RecordSelection,
};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::model::{ParsedObs, Reason};

use super::config::{BleConfig, BleDevice};
use super::device_time::{DeviceClock, ReadingTime, current_time_at};
use super::health::{self, BleHealth};
use super::radio::{BlePeripheral, CharInfo, Notification, NotificationStream, RadioError, sig};
use super::sink::{Committed, CoreGone, Sink};

const BATTERY_LEVEL: u16 = 0x2A19;
const FIRMWARE_REVISION: u16 = 0x2A26;
const CURRENT_TIME: u16 = 0x2A2B;
const RACP: u16 = 0x2A52;

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("radio: {0}")]
    Radio(#[from] RadioError),
    #[error("{0} timed out")]
    Timeout(&'static str),
    #[error("the device disconnected")]
    Disconnected,
    #[error("record download refused: {0:?}")]
    Racp(RacpResponseCode),
    #[error(transparent)]
    CoreGone(#[from] CoreGone),
}

/// Everything a session needs besides the peripheral.
pub struct Session<'a, C> {
    pub dev: &'a BleDevice,
    pub cfg: &'a BleConfig,
    pub sink: &'a Sink<C>,
    pub health: &'a BleHealth,
    /// Changes when the central reports this device disconnected.
    pub disconnected: watch::Receiver<u64>,
    /// This connection follows an earlier one (counted as a reconnect once connected).
    pub reconnect: bool,
    /// Set once the device is connected.
    pub connected: bool,
}

/// What a connection reads values with: the device's clock and the notification stream.
struct Live {
    clock: DeviceClock,
    stream: NotificationStream,
}

impl<C: Clock> Session<'_, C> {
    fn op_timeout(&self) -> Duration {
        Duration::from_millis(self.cfg.op_timeout_ms)
    }

    async fn op<T>(
        &self,
        what: &'static str,
        f: impl std::future::Future<Output = Result<T, RadioError>>,
    ) -> Result<T, SessionError> {
        match tokio::time::timeout(self.op_timeout(), f).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(SessionError::Timeout(what)),
        }
    }

    /// Runs one connection until the device disconnects or an operation fails.
    pub async fn run<P: BlePeripheral>(&mut self, p: &P) -> Result<(), SessionError> {
        let _ = self.disconnected.borrow_and_update();
        self.op("connect", p.connect()).await?;
        self.connected = true;
        let now = self.sink.now();
        let reconnect = self.reconnect;
        if reconnect {
            metrics::counter!(health::RECONNECTS, "device" => self.dev.id.clone()).increment(1);
        }
        self.health.device(&self.dev.id, |h| {
            h.connected = true;
            h.reconnects += u64::from(reconnect);
            h.last_connected_at = Some(now);
            h.last_error = None;
        });
        let chars = self.op("discover", p.discover()).await?;
        let find = |u: u16| chars.iter().find(|c| c.uuid == sig(u)).copied();
        // Take the stream before subscribing, so no indication is missed.
        let stream = self.op("notifications", p.notifications()).await?;
        self.read_info(p, &find).await?;
        let clock = self.read_clock(p, &find).await?;
        let mut live = Live { clock, stream };
        for m in self.dev.profile.measurements() {
            if let Some(c) = find(*m).filter(|c| c.notify || c.indicate) {
                self.op("subscribe", p.subscribe(c.uuid)).await?;
            }
        }
        if self.dev.profile.has_records()
            && let Some(racp) = find(RACP).filter(|c| c.write && (c.indicate || c.notify))
        {
            self.op("subscribe", p.subscribe(racp.uuid)).await?;
            self.download(p, &mut live).await?;
        }
        loop {
            tokio::select! {
                n = live.stream.next() => match n {
                    Some(n) => { self.handle(&n, &live.clock).await?; }
                    None => return Err(SessionError::Disconnected),
                },
                _ = self.disconnected.changed() => return Err(SessionError::Disconnected),
            }
        }
    }

    async fn read_info<P: BlePeripheral>(
        &self,
        p: &P,
        find: &impl Fn(u16) -> Option<CharInfo>,
    ) -> Result<(), SessionError> {
        if let Some(c) = find(FIRMWARE_REVISION).filter(|c| c.read) {
            let v = self.op("read firmware", p.read(c.uuid)).await?;
            let fw = String::from_utf8_lossy(&v)
                .trim_end_matches('\0')
                .to_string();
            self.health
                .device(&self.dev.id, |h| h.firmware_revision = Some(fw));
        }
        if let Some(c) = find(BATTERY_LEVEL).filter(|c| c.read) {
            let v = self.op("read battery", p.read(c.uuid)).await?;
            match gatt::decode(BATTERY_LEVEL, &v) {
                Ok(d @ Decoded::BatteryLevel(b)) => {
                    self.health
                        .device(&self.dev.id, |h| h.battery = Some(b.percent));
                    // A shared device's battery belongs to no single patient, and a record-numbered device has no
                    // sequence number to spare for it: those stay in the device's health only.
                    if self.dev.patient.is_some()
                        && self.dev.users.is_empty()
                        && !self.dev.profile.has_records()
                    {
                        let obs = d.observations().into_iter().map(ParsedObs::Ok).collect();
                        let seq = self.sink.next_seq(&self.dev.id);
                        // Not waited for: a battery level is read again on every connection.
                        drop(
                            self.sink
                                .reading(&self.dev.id, seq, ReadingTime::None, obs, &v)
                                .await?,
                        );
                    }
                }
                _ => {
                    self.sink
                        .reject(
                            Some(&self.dev.id),
                            Reason::Malformed,
                            format!("battery level {}", hex::encode(&v)),
                            &v,
                        )
                        .await?
                }
            }
        }
        Ok(())
    }

    /// Reads Current Time (the coincident timestamp); sets the device's clock when it was reset and is writable.
    async fn read_clock<P: BlePeripheral>(
        &self,
        p: &P,
        find: &impl Fn(u16) -> Option<CharInfo>,
    ) -> Result<DeviceClock, SessionError> {
        let min_year = self.cfg.min_plausible_year;
        let Some(c) = find(CURRENT_TIME).filter(|c| c.read) else {
            return Ok(DeviceClock::unknown(min_year));
        };
        let v = self.op("read current time", p.read(c.uuid)).await?;
        let hub_now = self.sink.now();
        let Ok(ct) = CurrentTime::decode(&v) else {
            tracing::warn!(device = %self.dev.id, value = %hex::encode(&v), "unreadable Current Time");
            return Ok(DeviceClock {
                reset: true,
                ..DeviceClock::unknown(min_year)
            });
        };
        let mut clock = DeviceClock::coincident(&ct, hub_now, min_year);
        let mut set = false;
        if clock.reset
            && c.write
            && let Some(now) = current_time_at(self.sink.now())
        {
            let mut buf = [0u8; 10];
            if let Ok(n) = now.encode(&mut buf) {
                self.op("set current time", p.write(c.uuid, &buf[..n]))
                    .await?;
                clock = DeviceClock::set_by_hub(min_year);
                set = true;
                tracing::info!(device = %self.dev.id, "device clock was reset; set it to the hub's time");
            }
        }
        self.health.device(&self.dev.id, |h| {
            h.clock_offset_ms = clock.offset_ms;
            h.clock_set_by_hub = set;
        });
        Ok(clock)
    }

    /// Downloads the records after the last committed one, waiting for their commit.
    async fn download<P: BlePeripheral>(
        &mut self,
        p: &P,
        live: &mut Live,
    ) -> Result<(), SessionError> {
        let selection = match self.sink.committed(&self.dev.id) {
            Some(last) if last < u16::MAX as u32 => {
                RecordSelection::GreaterOrEqual(RecordFilter::SequenceNumber(last as u16 + 1))
            }
            Some(_) => return Ok(()),
            None => RecordSelection::All,
        };
        let req = RecordAccessControlPoint::ReportStoredRecords(selection);
        let mut buf = [0u8; 20];
        let n = req.encode(&mut buf).map_err(|_| {
            SessionError::Radio(RadioError::Other("cannot encode the RACP request".into()))
        })?;
        self.op("write RACP", p.write(sig(RACP), &buf[..n])).await?;
        let mut pending: Vec<Committed> = Vec::new();
        let mut count = 0u64;
        loop {
            let next = tokio::select! {
                n = tokio::time::timeout(self.op_timeout(), live.stream.next()) => n,
                _ = self.disconnected.changed() => return Err(SessionError::Disconnected),
            };
            let n = match next {
                Ok(Some(n)) => n,
                Ok(None) => return Err(SessionError::Disconnected),
                Err(_) => return Err(SessionError::Timeout("record download")),
            };
            if n.uuid == sig(RACP) {
                match gatt::decode(RACP, &n.value) {
                    Ok(Decoded::RecordAccessControlPoint(RecordAccessControlPoint::Response {
                        response_code,
                        ..
                    })) => match response_code {
                        RacpResponseCode::Success | RacpResponseCode::NoRecordsFound => break,
                        other => return Err(SessionError::Racp(other)),
                    },
                    _ => continue,
                }
            }
            if let Some(c) = self.handle(&n, &live.clock).await? {
                pending.push(c);
                count += 1;
            }
        }
        for c in pending {
            // A dropped acknowledgement means the core stopped.
            c.await.map_err(|_| CoreGone)?;
        }
        metrics::counter!(health::RECORDS_DOWNLOADED).increment(count);
        self.health
            .device(&self.dev.id, |h| h.records_downloaded += count);
        tracing::info!(device = %self.dev.id, records = count, "stored records downloaded");
        Ok(())
    }

    /// Decodes one notified value and sends it to the core (or holds it). Returns its commit receiver, if sent.
    async fn handle(
        &self,
        n: &Notification,
        clock: &DeviceClock,
    ) -> Result<Option<Committed>, SessionError> {
        let Some(uuid) = super::radio::short(&n.uuid) else {
            return Ok(None);
        };
        let now = self.sink.now();
        self.health.heard();
        self.health
            .device(&self.dev.id, |h| h.last_seen_at = Some(now));
        let decoded = match gatt::decode(uuid, &n.value) {
            Ok(d) => d,
            Err(e) => {
                let detail = format!("characteristic 0x{uuid:04X}: {e}");
                self.sink
                    .reject(Some(&self.dev.id), Reason::Malformed, detail, &n.value)
                    .await?;
                return Ok(None);
            }
        };
        let obs: Vec<ParsedObs> = decoded
            .observations()
            .into_iter()
            .map(ParsedObs::Ok)
            .collect();
        if obs.is_empty() {
            return Ok(None);
        }
        let time = clock.correct(decoded.timestamp().as_ref(), decoded.clock_not_set());
        let user = match &decoded {
            Decoded::BloodPressure(v) => v.user_id,
            Decoded::Weight(v) => v.user_id,
            _ => None,
        };
        let device = if self.dev.users.is_empty() {
            self.dev.id.clone()
        } else {
            match user.filter(|u| self.dev.patient_of_user(*u).is_some()) {
                Some(u) => self.dev.user_device_id(u),
                None => {
                    self.hold(user, time, &n.value).await?;
                    return Ok(None);
                }
            }
        };
        let seq = match &decoded {
            Decoded::Glucose(g) if self.dev.profile.has_records() => g.sequence_number as u32,
            _ => self.sink.next_seq(&device),
        };
        Ok(Some(
            self.sink.reading(&device, seq, time, obs, &n.value).await?,
        ))
    }

    /// A shared device's reading that names no known user: held for a person to confirm, with its original time.
    async fn hold(
        &self,
        user: Option<u8>,
        time: ReadingTime,
        payload: &[u8],
    ) -> Result<(), CoreGone> {
        metrics::counter!(health::HELD).increment(1);
        let who = match user {
            Some(u) => format!("user id {u} is not mapped to a patient"),
            None => "no user id".to_string(),
        };
        let when = match time {
            ReadingTime::Device(t) => format!(
                "observed {} (device time, corrected)",
                hearth_protocol::json::format_rfc3339_millis(t)
            ),
            ReadingTime::None => format!(
                "received {}",
                hearth_protocol::json::format_rfc3339_millis(self.sink.now())
            ),
            ReadingTime::Untrusted(why) => format!(
                "received {}, device time untrusted ({})",
                hearth_protocol::json::format_rfc3339_millis(self.sink.now()),
                why.as_str()
            ),
        };
        let detail = format!(
            "shared device {}: {who}; {when}; held for confirmation",
            self.dev.id
        );
        self.sink
            .reject(
                Some(&self.dev.id),
                Reason::HeldForConfirmation,
                detail,
                payload,
            )
            .await
    }
}
