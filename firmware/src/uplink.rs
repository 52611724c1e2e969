//! Uplinks: the board frame over a serial line, and standard Bluetooth SIG characteristic values for a BLE board.
//!
//! Serial: each encoded frame already ends in its `0x00` delimiter; [`send_pending`] writes a `0x00` before each one
//! too, so a hub that joined mid-frame resynchronises at once (`docs/protocol/frame.md`, "Serial framing").
//!
//! BLE: a board that speaks the standard health services instead of Hearth's frame exposes Health Thermometer
//! (Temperature Measurement 0x2A1C), Pulse Oximeter (PLX Spot-check 0x2A5E), Weight Scale (Weight Measurement
//! 0x2A9D) and Battery (Battery Level 0x2A19). [`characteristic`] turns an [`Observation`] into that characteristic's
//! value with `hearth_protocol::gatt`'s encoders; an invalid PPG value becomes SFLOAT NaN (so no receiver can score
//! it) plus the PLX device/sensor status bit that `gatt::plx_reason` maps back to the same [`Invalid`] reason.

use embedded_io::Write;
use hearth_protocol::frame::{self, DeviceKey, DeviceTime, Frame, FrameError, MAX_ENCODED_LEN};
use hearth_protocol::gatt::{
    BatteryLevel, Characteristic, EncodeError, PlxDeviceSensorStatus, PlxSpotCheckMeasurement,
    SpO2Pr, TemperatureMeasurement, TemperatureType, TemperatureUnit, WEIGHT_UNSUCCESSFUL,
    WeightMeasurement, WeightUnit,
};
use hearth_protocol::{Code, Invalid, Observation, Value};

use crate::store::{FrameQueue, Pushed, QueueError, SeqCounter, SeqError, SeqStore};

/// Why a reading could not be framed and queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum UplinkError<E> {
    Seq(SeqError<E>),
    Frame(FrameError),
    Queue(QueueError),
}

/// Builds a frame of `observations` with the next sequence number, encodes it with `key`, and queues it.
pub fn queue_observations<S: SeqStore, const SLOTS: usize>(
    queue: &mut FrameQueue<SLOTS>,
    seq: &mut SeqCounter<S>,
    key: &DeviceKey,
    device_id: &frame::DeviceId,
    time: DeviceTime,
    observations: &[Observation],
) -> Result<(u32, Pushed), UplinkError<S::Error>> {
    let mut obs = heapless::Vec::new();
    for o in observations {
        obs.push(*o)
            .map_err(|_| UplinkError::Frame(FrameError::TooManyObservations))?;
    }
    let n = seq.next_seq().map_err(UplinkError::Seq)?;
    let f = Frame {
        device_id: device_id.clone(),
        seq: n,
        time,
        observations: obs,
    };
    let mut buf = [0u8; MAX_ENCODED_LEN];
    let len = frame::encode_frame(&f, key, &mut buf).map_err(UplinkError::Frame)?;
    let pushed = queue
        .push(n, buf.get(..len).unwrap_or(&[]))
        .map_err(UplinkError::Queue)?;
    Ok((n, pushed))
}

/// Writes every queued frame not yet sent, each preceded by a `0x00`, and flushes. Returns how many were written.
/// A write error leaves the failed frame unsent, to be tried again.
pub fn send_pending<W: Write, const SLOTS: usize>(
    queue: &mut FrameQueue<SLOTS>,
    w: &mut W,
) -> Result<usize, W::Error> {
    let mut n = 0;
    while let Some((_, bytes)) = queue.next_unsent() {
        w.write_all(&[0])?;
        w.write_all(bytes)?;
        queue.mark_sent();
        n += 1;
    }
    w.flush()?;
    Ok(n)
}

/// A characteristic value ready to notify: UUID, bytes and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GattValue {
    pub uuid: u16,
    pub len: usize,
    pub bytes: [u8; GATT_VALUE_MAX],
}

impl GattValue {
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}

/// Longest value [`characteristic`] produces (PLX Spot-check with device/sensor status: 8 bytes).
pub const GATT_VALUE_MAX: usize = 19;

/// Why an observation has no characteristic value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum GattError {
    /// This code has no characteristic here (falls go in Hearth's frame).
    Unsupported(Code),
    /// A PLX value needs both SpO2 and pulse rate: use [`plx_spot_check`].
    NeedsPair,
    Encode(EncodeError),
}

fn finish<C: Characteristic>(c: &C) -> Result<GattValue, GattError> {
    let mut v = GattValue {
        uuid: C::UUID,
        len: 0,
        bytes: [0; GATT_VALUE_MAX],
    };
    v.len = c.encode(&mut v.bytes).map_err(GattError::Encode)?;
    Ok(v)
}

/// The PLX device/sensor status bit that the hub's decoder (`gatt::plx_reason`) maps back to `why`.
fn plx_status(why: Invalid) -> PlxDeviceSensorStatus {
    let mut s = PlxDeviceSensorStatus::default();
    match why {
        Invalid::MotionArtefact => s.erratic_signal_detected = true,
        Invalid::SensorDisplaced => s.sensor_displaced = true,
        Invalid::DeviceFault => s.equipment_malfunction_detected = true,
        _ => s.poor_signal_detected = true,
    }
    s
}

/// PLX Spot-check Measurement (0x2A5E) from an SpO2 and a pulse-rate value. If either is invalid both are sent as
/// SFLOAT NaN with the matching device/sensor status bit (SpO2 and pulse come from the same window: if one cannot
/// be trusted neither can the other). No timestamp: the board's clock is not trusted, and the clock-not-set flag
/// (bit 4) says so.
pub fn plx_spot_check(spo2: Value, pulse: Value) -> Result<GattValue, GattError> {
    let why = match (spo2, pulse) {
        (Value::Invalid(w), _) | (_, Value::Invalid(w)) => Some(w),
        _ => None,
    };
    let reading = match why {
        Some(w) => SpO2Pr {
            spo2: Value::Invalid(w),
            pulse_rate: Value::Invalid(w),
        },
        None => SpO2Pr {
            spo2,
            pulse_rate: pulse,
        },
    };
    finish(&PlxSpotCheckMeasurement {
        reading,
        timestamp: None,
        measurement_status: None,
        device_sensor_status: why.map(plx_status),
        pulse_amplitude_index: None,
        device_clock_not_set: true,
    })
}

/// The characteristic value for one observation: temperature (0x2A1C, °C, body), weight (0x2A9D, SI), battery
/// (0x2A19). SpO2 and heart rate go together through [`plx_spot_check`].
pub fn characteristic(o: &Observation) -> Result<GattValue, GattError> {
    match o.code {
        Code::Temp => finish(&TemperatureMeasurement {
            unit: TemperatureUnit::Celsius,
            value: o.value,
            timestamp: None,
            temperature_type: Some(TemperatureType::Body),
        }),
        Code::Weight => {
            // 0.005 kg resolution; an invalid weight is the specification's "measurement unsuccessful".
            let weight = match o.value {
                Value::Number(q) => {
                    kg_to_wss(q.to_f64()).ok_or(GattError::Encode(EncodeError::OutOfRange {
                        field: "weight",
                    }))?
                }
                Value::Invalid(_) => WEIGHT_UNSUCCESSFUL,
            };
            finish(&WeightMeasurement {
                unit: WeightUnit::Si,
                weight,
                timestamp: None,
                user_id: None,
                bmi_height: None,
            })
        }
        Code::Battery => {
            let percent = match o.value {
                Value::Number(q) => q.to_f64(),
                Value::Invalid(_) => -1.0,
            };
            if !(0.0..=100.0).contains(&percent) {
                return Err(GattError::Encode(EncodeError::OutOfRange {
                    field: "battery level",
                }));
            }
            finish(&BatteryLevel {
                percent: libm::round(percent) as u8,
            })
        }
        Code::Spo2 | Code::HeartRate => Err(GattError::NeedsPair),
        other => Err(GattError::Unsupported(other)),
    }
}

/// kg → Weight Measurement units of 0.005 kg, rounded; `None` if it does not fit below 0xFFFF (327.675 kg).
fn kg_to_wss(kg: f64) -> Option<u16> {
    let units = libm::round(kg * 200.0);
    if (0.0..(WEIGHT_UNSUCCESSFUL as f64)).contains(&units) {
        Some(units as u16)
    } else {
        None
    }
}
