//! Simulated health devices built on [`super::SimBluez`]: the GATT databases of a heart-rate strap, cuff, oximeter,
//! scale, thermometer and glucose meter (each with Battery, Device Information and Current Time), their measurement
//! values written byte by byte from the Bluetooth GSS layouts, a glucose meter that answers Record Access Control
//! Point requests, and BTHome v2 sensors.

use std::sync::{Arc, Mutex};

use time::OffsetDateTime;

use super::{CharSpec, PeripheralSpec, ServiceSpec, SimDevice};

pub const HEART_RATE: u16 = 0x2A37;
pub const TEMPERATURE: u16 = 0x2A1C;
pub const BLOOD_PRESSURE: u16 = 0x2A35;
pub const PLX_SPOT_CHECK: u16 = 0x2A5E;
pub const PLX_CONTINUOUS: u16 = 0x2A5F;
pub const WEIGHT: u16 = 0x2A9D;
pub const GLUCOSE: u16 = 0x2A18;
pub const RACP: u16 = 0x2A52;
pub const CURRENT_TIME: u16 = 0x2A2B;
pub const BATTERY: u16 = 0x2A19;
pub const FIRMWARE: u16 = 0x2A26;

/// Date Time (7 bytes).
pub fn date_time(t: OffsetDateTime) -> [u8; 7] {
    let y = (t.year() as u16).to_le_bytes();
    [
        y[0],
        y[1],
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    ]
}

/// Current Time (10 bytes): Date Time, day of week, fractions256, adjust reason.
pub fn current_time(t: OffsetDateTime) -> Vec<u8> {
    let mut v = date_time(t).to_vec();
    v.extend([t.weekday().number_from_monday(), 0, 0]);
    v
}

/// SFLOAT with exponent 0 (whole units).
pub fn sfloat(v: u16) -> [u8; 2] {
    (v & 0x0FFF).to_le_bytes()
}

pub const SFLOAT_NAN: [u8; 2] = [0xFF, 0x07];

/// Heart Rate Measurement: uint8 value, no other fields.
pub fn heart_rate(bpm: u8) -> Vec<u8> {
    vec![0x00, bpm]
}

/// Blood Pressure Measurement in mmHg with timestamp, pulse and (optionally) user id. `None` systolic = NaN (a cuff
/// error).
pub fn blood_pressure(
    sys: Option<u16>,
    dia: u16,
    pulse: u16,
    user: Option<u8>,
    at: OffsetDateTime,
) -> Vec<u8> {
    let mut flags = 0x02 | 0x04;
    if user.is_some() {
        flags |= 0x08;
    }
    let mut v = vec![flags];
    v.extend(sys.map(sfloat).unwrap_or(SFLOAT_NAN));
    v.extend(sfloat(dia));
    v.extend(sys.map(|s| sfloat((s + 2 * dia) / 3)).unwrap_or(SFLOAT_NAN));
    v.extend(date_time(at));
    v.extend(sfloat(pulse));
    if let Some(u) = user {
        v.push(u);
    }
    v
}

/// Temperature Measurement in °F tenths (e.g. 1022 = 102.2 °F) with timestamp.
pub fn temperature_f(tenths: u32, at: OffsetDateTime) -> Vec<u8> {
    let m = tenths.to_le_bytes();
    let mut v = vec![0x01 | 0x02, m[0], m[1], m[2], 0xFF];
    v.extend(date_time(at));
    v
}

/// PLX Spot-check: SpO2 and pulse, with a timestamp; `clock_not_set` sets flags bit 4.
pub fn plx_spot_check(spo2: u16, pulse: u16, at: OffsetDateTime, clock_not_set: bool) -> Vec<u8> {
    let mut v = vec![0x01 | if clock_not_set { 0x10 } else { 0 }];
    v.extend(sfloat(spo2));
    v.extend(sfloat(pulse));
    v.extend(date_time(at));
    v
}

/// Weight Measurement in kg × 200 (0xFFFF = measurement unsuccessful), with timestamp and user id.
pub fn weight_raw(raw: u16, user: Option<u8>, at: OffsetDateTime) -> Vec<u8> {
    let mut v = vec![0x02 | if user.is_some() { 0x04 } else { 0 }];
    v.extend(raw.to_le_bytes());
    v.extend(date_time(at));
    if let Some(u) = user {
        v.push(u);
    }
    v
}

/// Glucose Measurement in mmol/L tenths (mol/L SFLOAT, exponent −4), capillary blood from a finger.
pub fn glucose(seq: u16, mmol_tenths: u16, at: OffsetDateTime) -> Vec<u8> {
    let mut v = vec![0x02 | 0x04];
    v.extend(seq.to_le_bytes());
    v.extend(date_time(at));
    v.extend((0xC000 | (mmol_tenths & 0x0FFF)).to_le_bytes());
    v.push(0x11);
    v
}

fn common(services: &mut Vec<ServiceSpec>, clock: OffsetDateTime) {
    services.push(ServiceSpec {
        uuid: 0x180F,
        chars: vec![CharSpec::new(BATTERY, &["read", "notify"], &[87])],
    });
    services.push(ServiceSpec {
        uuid: 0x180A,
        chars: vec![CharSpec::new(FIRMWARE, &["read"], b"2.4.1")],
    });
    services.push(ServiceSpec {
        uuid: 0x1805,
        chars: vec![CharSpec::new(
            CURRENT_TIME,
            &["read", "write", "notify"],
            &current_time(clock),
        )],
    });
}

/// A GATT device of `service` with measurement characteristics `chars`, whose clock reads `clock`.
pub fn health_device(
    address: &str,
    name: &str,
    service: u16,
    chars: Vec<CharSpec>,
    clock: OffsetDateTime,
) -> PeripheralSpec {
    let mut services = vec![ServiceSpec {
        uuid: service,
        chars,
    }];
    common(&mut services, clock);
    PeripheralSpec {
        address: address.into(),
        name: Some(name.into()),
        rssi: -60,
        services,
        advertised: vec![service],
        ..Default::default()
    }
}

pub fn heart_rate_strap(address: &str, clock: OffsetDateTime) -> PeripheralSpec {
    health_device(
        address,
        "HRM",
        0x180D,
        vec![CharSpec::new(HEART_RATE, &["notify"], &[])],
        clock,
    )
}

pub fn cuff(address: &str, clock: OffsetDateTime) -> PeripheralSpec {
    health_device(
        address,
        "BPM",
        0x1810,
        vec![CharSpec::new(BLOOD_PRESSURE, &["indicate"], &[])],
        clock,
    )
}

pub fn oximeter(address: &str, clock: OffsetDateTime) -> PeripheralSpec {
    health_device(
        address,
        "PLX",
        0x1822,
        vec![
            CharSpec::new(PLX_SPOT_CHECK, &["indicate"], &[]),
            CharSpec::new(PLX_CONTINUOUS, &["notify"], &[]),
        ],
        clock,
    )
}

pub fn scale(address: &str, clock: OffsetDateTime) -> PeripheralSpec {
    health_device(
        address,
        "Scale",
        0x181D,
        vec![CharSpec::new(WEIGHT, &["indicate"], &[])],
        clock,
    )
}

pub fn thermometer(address: &str, clock: OffsetDateTime) -> PeripheralSpec {
    health_device(
        address,
        "Thermo",
        0x1809,
        vec![CharSpec::new(TEMPERATURE, &["indicate"], &[])],
        clock,
    )
}

pub fn glucose_meter(address: &str, clock: OffsetDateTime) -> PeripheralSpec {
    health_device(
        address,
        "Glucose",
        0x1808,
        vec![
            CharSpec::new(GLUCOSE, &["notify"], &[]),
            CharSpec::new(RACP, &["write", "indicate"], &[]),
        ],
        clock,
    )
}

/// (sequence number, encoded measurement), oldest first.
pub type Records = Arc<Mutex<Vec<(u16, Vec<u8>)>>>;
/// RACP requests as (operator, first sequence number asked for).
pub type Requests = Arc<Mutex<Vec<(u8, Option<u16>)>>>;

/// A glucose meter's record store: answers "report stored records" (all, or ≥ a sequence number) over the RACP.
pub struct GlucoseStore {
    /// (sequence number, encoded measurement), oldest first.
    pub records: Records,
    /// Drop the connection after sending this many records of the next download (once).
    pub disconnect_after: Arc<Mutex<Option<usize>>>,
    /// Every request received, as (operator, first sequence asked for).
    pub requests: Requests,
    task: tokio::task::JoinHandle<()>,
}

impl GlucoseStore {
    pub fn serve(dev: &SimDevice) -> GlucoseStore {
        let records: Records = Arc::default();
        let disconnect_after: Arc<Mutex<Option<usize>>> = Arc::default();
        let requests: Requests = Arc::default();
        let mut writes = dev.writes(RACP);
        let task = {
            let (dev, records, disconnect_after, requests) = (
                dev.clone(),
                records.clone(),
                disconnect_after.clone(),
                requests.clone(),
            );
            tokio::spawn(async move {
                while let Some(req) = writes.recv().await {
                    // 0x01 report; operator 0x01 all | 0x03 ≥ (filter 0x01 sequence number, uint16)
                    let from = match req.as_slice() {
                        [0x01, 0x01] => None,
                        [0x01, 0x03, 0x01, lo, hi] => Some(u16::from_le_bytes([*lo, *hi])),
                        _ => {
                            dev.notify(
                                RACP,
                                &[0x06, 0x00, req.first().copied().unwrap_or(0), 0x02],
                            )
                            .await;
                            continue;
                        }
                    };
                    requests.lock().unwrap().push((req[1], from));
                    let batch: Vec<Vec<u8>> = records
                        .lock()
                        .unwrap()
                        .iter()
                        .filter(|(s, _)| from.is_none_or(|f| *s >= f))
                        .map(|(_, v)| v.clone())
                        .collect();
                    let cut = disconnect_after.lock().unwrap().take();
                    let mut dropped = false;
                    for (sent, r) in batch.iter().enumerate() {
                        if cut == Some(sent) {
                            dev.disconnect().await;
                            dropped = true;
                            break;
                        }
                        if !dev.notify(GLUCOSE, r).await {
                            dropped = true;
                            break;
                        }
                    }
                    if !dropped {
                        let code = if batch.is_empty() { 0x06 } else { 0x01 };
                        dev.notify(RACP, &[0x06, 0x00, 0x01, code]).await;
                    }
                }
            })
        };
        GlucoseStore {
            records,
            disconnect_after,
            requests,
            task,
        }
    }

    pub fn push(&self, seq: u16, value: Vec<u8>) {
        self.records.lock().unwrap().push((seq, value));
    }
}

impl Drop for GlucoseStore {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A BTHome v2 sensor advertising service data 0xFCD2 (no GATT).
pub fn bthome_sensor(address: &str) -> PeripheralSpec {
    PeripheralSpec {
        address: address.into(),
        name: Some("SBMO-003Z".into()),
        rssi: -70,
        advertised: vec![0xFCD2],
        ..Default::default()
    }
}
