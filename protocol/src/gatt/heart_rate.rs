//! Heart Rate Measurement (0x2A37, Heart Rate Service 0x180D).

use super::cursor::{Reader, Writer};
use super::{Characteristic, DecodeError, EncodeError, MAX_ATTRIBUTE_LEN, Observations};
use crate::vocab::{Code, Invalid, Observation, Quantity};

/// The most RR intervals one value can hold: (512 − flags − uint8 heart rate) / 2.
pub const MAX_RR_INTERVALS: usize = (MAX_ATTRIBUTE_LEN - 2) / 2;

/// Heart Rate Value Format (flags bit 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HeartRateFormat {
    /// uint8 (bit 0 = 0).
    #[default]
    U8,
    /// uint16 (bit 0 = 1).
    U16,
}

/// Sensor Contact Status (flags bits 1–2, read as one 2-bit number: bit 2 "supported", bit 1 "detected").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SensorContact {
    /// 0 or 1: the sensor does not report contact. Encoded as 0.
    #[default]
    NotSupported,
    /// 2: supported, but the sensor is not in contact with the skin.
    NotDetected,
    /// 3: supported and in contact.
    Detected,
}

/// Heart Rate Measurement (GSS).
///
/// | flags bit | field present | format |
/// |---|---|---|
/// | – | Flags | 8bit |
/// | 0 = 0 / 1 | Heart Rate Value | uint8 / uint16, beats per minute |
/// | 1–2 | (Sensor Contact Status, no field) | |
/// | 3 | Energy Expended | uint16, kJ |
/// | 4 | RR-Interval × n, filling the rest | uint16 each, 1/1024 s |
/// | 5–7 | RFU (ignored) | |
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct HeartRateMeasurement {
    /// Beats per minute.
    pub heart_rate: u16,
    /// The wire format of `heart_rate`; kept so re-encoding reproduces the device's bytes.
    pub format: HeartRateFormat,
    pub sensor_contact: SensorContact,
    /// Accumulated energy expended since the last reset, kJ (saturates at 65535).
    pub energy_expended_kj: Option<u16>,
    /// RR intervals in units of 1/1024 s, oldest first. Empty = field absent.
    pub rr_intervals: heapless::Vec<u16, MAX_RR_INTERVALS>,
}

impl HeartRateMeasurement {
    /// One [`Code::HeartRate`] observation; [`Invalid::SensorDisplaced`] when the sensor supports contact detection
    /// and reports no contact (the value is then not from the patient's heart).
    pub fn observations(&self) -> Observations {
        let mut out = Observations::new();
        let obs = if self.sensor_contact == SensorContact::NotDetected {
            Observation::invalid(Code::HeartRate, Invalid::SensorDisplaced)
        } else {
            Observation::number(Code::HeartRate, Quantity::new(self.heart_rate as i32, 0))
        };
        let _ = out.push(obs);
        out
    }

    /// An RR interval in milliseconds (the wire unit is 1/1024 s, not ms).
    pub fn rr_interval_ms(raw: u16) -> f64 {
        raw as f64 * 1000.0 / 1024.0
    }
}

impl Characteristic for HeartRateMeasurement {
    const UUID: u16 = 0x2A37;
    const MIN_LEN: usize = 2;
    const MAX_LEN: usize = MAX_ATTRIBUTE_LEN;

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > Self::MAX_LEN {
            // No ATT value is longer; whatever follows byte 512 is not part of this one.
            return Err(DecodeError::TrailingBytes {
                offset: Self::MAX_LEN,
            });
        }
        let mut r = Reader::new(bytes);
        let flags = r.u8()?;
        let (heart_rate, format) = if flags & 0x01 != 0 {
            (r.u16()?, HeartRateFormat::U16)
        } else {
            (r.u8()? as u16, HeartRateFormat::U8)
        };
        let sensor_contact = match (flags >> 1) & 0x03 {
            2 => SensorContact::NotDetected,
            3 => SensorContact::Detected,
            _ => SensorContact::NotSupported,
        };
        let energy_expended_kj = if flags & 0x08 != 0 {
            Some(r.u16()?)
        } else {
            None
        };
        let mut rr_intervals = heapless::Vec::new();
        if flags & 0x10 != 0 {
            while r.remaining() >= 2 {
                let at = r.offset();
                let rr = r.u16()?;
                if rr_intervals.push(rr).is_err() {
                    return Err(DecodeError::TrailingBytes { offset: at });
                }
            }
        }
        // With RR intervals only an odd last byte can be left over; without them, anything left over is wrong.
        r.finish()?;
        Ok(HeartRateMeasurement {
            heart_rate,
            format,
            sensor_contact,
            energy_expended_kj,
            rr_intervals,
        })
    }

    fn encoded_len(&self) -> usize {
        let hr = match self.format {
            HeartRateFormat::U8 => 1,
            HeartRateFormat::U16 => 2,
        };
        1 + hr
            + if self.energy_expended_kj.is_some() {
                2
            } else {
                0
            }
            + 2 * self.rr_intervals.len()
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let len = self.encoded_len();
        if len > Self::MAX_LEN {
            return Err(EncodeError::OutOfRange {
                field: "RR-Interval count",
            });
        }
        let mut w = Writer::new(out, len)?;
        let mut flags = match self.sensor_contact {
            SensorContact::NotSupported => 0,
            SensorContact::NotDetected => 0b100,
            SensorContact::Detected => 0b110,
        };
        if self.format == HeartRateFormat::U16 {
            flags |= 0x01;
        }
        if self.energy_expended_kj.is_some() {
            flags |= 0x08;
        }
        if !self.rr_intervals.is_empty() {
            flags |= 0x10;
        }
        w.u8(flags)?;
        match self.format {
            HeartRateFormat::U8 => {
                let hr = u8::try_from(self.heart_rate).map_err(|_| EncodeError::OutOfRange {
                    field: "heart rate",
                })?;
                w.u8(hr)?;
            }
            HeartRateFormat::U16 => w.u16(self.heart_rate)?,
        }
        if let Some(e) = self.energy_expended_kj {
            w.u16(e)?;
        }
        for rr in &self.rr_intervals {
            w.u16(*rr)?;
        }
        Ok(w.len())
    }
}
