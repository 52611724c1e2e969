//! Pulse oximeter: PLX Spot-check Measurement (0x2A5E), PLX Continuous Measurement (0x2A5F) and PLX Features
//! (0x2A60), Pulse Oximeter Service 0x1822.

use super::cursor::{Reader, Writer};
use super::{
    Characteristic, DateTime, DecodeError, EncodeError, Observations, first_reason, with_status,
};
use crate::vocab::{Code, Invalid, Observation, Value};

flag_struct! {
    /// PLX Measurement Status (GSS, 16 bits; bits 0–4 RFU). In PLX Features it says which bits are supported.
    pub struct PlxMeasurementStatus: u16 {
        measurement_ongoing = 5,
        early_estimated_data = 6,
        validated_data = 7,
        fully_qualified_data = 8,
        data_from_measurement_storage = 9,
        data_for_demonstration = 10,
        data_for_testing = 11,
        calibration_ongoing = 12,
        measurement_unavailable = 13,
        questionable_measurement_detected = 14,
        invalid_measurement_detected = 15,
    }
}

flag_struct! {
    /// PLX Device and Sensor Status (GSS, 24 bits; bits 16–23 RFU). In PLX Features it says which bits are
    /// supported.
    pub struct PlxDeviceSensorStatus: u32 {
        extended_display_update_ongoing = 0,
        equipment_malfunction_detected = 1,
        signal_processing_irregularity_detected = 2,
        inadequate_signal_detected = 3,
        poor_signal_detected = 4,
        low_perfusion_detected = 5,
        erratic_signal_detected = 6,
        nonpulsatile_signal_detected = 7,
        questionable_pulse_detected = 8,
        signal_analysis_ongoing = 9,
        sensor_interference_detected = 10,
        sensor_unconnected_to_user = 11,
        unknown_sensor_connected = 12,
        sensor_displaced = 13,
        sensor_malfunctioning = 14,
        sensor_disconnected = 15,
    }
}

/// Why SpO2 and pulse rate cannot be trusted given the two status fields, most fundamental reason first:
///
/// | status bit | reason |
/// |---|---|
/// | equipment malfunction, sensor malfunctioning, unknown sensor connected | [`Invalid::DeviceFault`] |
/// | sensor displaced, sensor disconnected, sensor unconnected to user | [`Invalid::SensorDisplaced`] |
/// | measurement unavailable, invalid measurement, calibration ongoing, data for demonstration, data for testing | [`Invalid::MeasurementUnsuccessful`] |
/// | erratic signal | [`Invalid::MotionArtefact`] |
/// | low perfusion, poor signal, inadequate signal, nonpulsatile signal, signal processing irregularity, sensor interference, questionable pulse, questionable measurement | [`Invalid::LowSignalQuality`] |
///
/// Informational bits (measurement ongoing, early estimate, validated, fully qualified, from storage, extended display
/// update, signal analysis ongoing) leave the values as numbers.
pub fn plx_reason(
    m: Option<PlxMeasurementStatus>,
    d: Option<PlxDeviceSensorStatus>,
) -> Option<Invalid> {
    let m = m.unwrap_or_default();
    let d = d.unwrap_or_default();
    first_reason(&[
        (d.equipment_malfunction_detected, Invalid::DeviceFault),
        (d.sensor_malfunctioning, Invalid::DeviceFault),
        (d.unknown_sensor_connected, Invalid::DeviceFault),
        (d.sensor_displaced, Invalid::SensorDisplaced),
        (d.sensor_disconnected, Invalid::SensorDisplaced),
        (d.sensor_unconnected_to_user, Invalid::SensorDisplaced),
        (m.measurement_unavailable, Invalid::MeasurementUnsuccessful),
        (
            m.invalid_measurement_detected,
            Invalid::MeasurementUnsuccessful,
        ),
        (m.calibration_ongoing, Invalid::MeasurementUnsuccessful),
        // Demonstration and test data are not from the patient.
        (m.data_for_demonstration, Invalid::MeasurementUnsuccessful),
        (m.data_for_testing, Invalid::MeasurementUnsuccessful),
        (d.erratic_signal_detected, Invalid::MotionArtefact),
        (d.low_perfusion_detected, Invalid::LowSignalQuality),
        (d.poor_signal_detected, Invalid::LowSignalQuality),
        (d.inadequate_signal_detected, Invalid::LowSignalQuality),
        (d.nonpulsatile_signal_detected, Invalid::LowSignalQuality),
        (
            d.signal_processing_irregularity_detected,
            Invalid::LowSignalQuality,
        ),
        (d.sensor_interference_detected, Invalid::LowSignalQuality),
        (d.questionable_pulse_detected, Invalid::LowSignalQuality),
        (
            m.questionable_measurement_detected,
            Invalid::LowSignalQuality,
        ),
    ])
}

/// One SpO2 / pulse-rate pair (GSS "SpO2PR"): two SFLOATs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SpO2Pr {
    /// Percent.
    pub spo2: Value,
    /// Beats per minute.
    pub pulse_rate: Value,
}

impl SpO2Pr {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SpO2Pr {
            spo2: r.sfloat()?,
            pulse_rate: r.sfloat()?,
        })
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.sfloat(self.spo2, "SpO2")?;
        w.sfloat(self.pulse_rate, "pulse rate")
    }

    fn observations(&self, reason: Option<Invalid>) -> Observations {
        let mut out = Observations::new();
        let _ = out.push(Observation {
            code: Code::Spo2,
            value: with_status(self.spo2, reason),
        });
        let _ = out.push(Observation {
            code: Code::HeartRate,
            value: with_status(self.pulse_rate, reason),
        });
        out
    }
}

/// PLX Spot-check Measurement (GSS).
///
/// | flags bit | field present | format |
/// |---|---|---|
/// | – | Flags | 8bit |
/// | – | SpO2PR-Spot-Check: SpO2, PR | 2 × SFLOAT (%, bpm) |
/// | 0 | Timestamp | Date Time (7) |
/// | 1 | Measurement Status | 16bit |
/// | 2 | Device and Sensor Status | 24bit |
/// | 3 | Pulse Amplitude Index | SFLOAT (%) |
/// | 4 | (Device Clock is Not Set, no field) | |
/// | 5–7 | RFU (ignored) | |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PlxSpotCheckMeasurement {
    pub reading: SpO2Pr,
    pub timestamp: Option<DateTime>,
    pub measurement_status: Option<PlxMeasurementStatus>,
    pub device_sensor_status: Option<PlxDeviceSensorStatus>,
    /// Percent.
    pub pulse_amplitude_index: Option<Value>,
    /// Flags bit 4: the device's clock is not set, so `timestamp` is not a real time.
    pub device_clock_not_set: bool,
}

impl PlxSpotCheckMeasurement {
    /// SpO2 (%) and pulse rate (/min), invalidated per [`plx_reason`].
    pub fn observations(&self) -> Observations {
        self.reading.observations(plx_reason(
            self.measurement_status,
            self.device_sensor_status,
        ))
    }
}

impl Characteristic for PlxSpotCheckMeasurement {
    const UUID: u16 = 0x2A5E;
    const MIN_LEN: usize = 5;
    const MAX_LEN: usize = 19;

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let flags = r.u8()?;
        let reading = SpO2Pr::read(&mut r)?;
        let timestamp = if flags & 0x01 != 0 {
            Some(DateTime::read(&mut r)?)
        } else {
            None
        };
        let measurement_status = if flags & 0x02 != 0 {
            Some(PlxMeasurementStatus::from_bits(r.u16()?))
        } else {
            None
        };
        let device_sensor_status = if flags & 0x04 != 0 {
            Some(PlxDeviceSensorStatus::from_bits(r.u24()?))
        } else {
            None
        };
        let pulse_amplitude_index = if flags & 0x08 != 0 {
            Some(r.sfloat()?)
        } else {
            None
        };
        r.finish()?;
        Ok(PlxSpotCheckMeasurement {
            reading,
            timestamp,
            measurement_status,
            device_sensor_status,
            pulse_amplitude_index,
            device_clock_not_set: flags & 0x10 != 0,
        })
    }

    fn encoded_len(&self) -> usize {
        5 + if self.timestamp.is_some() {
            DateTime::LEN
        } else {
            0
        } + self.measurement_status.map_or(0, |_| 2)
            + self.device_sensor_status.map_or(0, |_| 3)
            + self.pulse_amplitude_index.map_or(0, |_| 2)
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out, self.encoded_len())?;
        let flags = self.timestamp.is_some() as u8
            | (self.measurement_status.is_some() as u8) << 1
            | (self.device_sensor_status.is_some() as u8) << 2
            | (self.pulse_amplitude_index.is_some() as u8) << 3
            | (self.device_clock_not_set as u8) << 4;
        w.u8(flags)?;
        self.reading.write(&mut w)?;
        if let Some(t) = &self.timestamp {
            t.write(&mut w)?;
        }
        if let Some(m) = self.measurement_status {
            w.u16(m.bits())?;
        }
        if let Some(d) = self.device_sensor_status {
            w.u24(d.bits(), "device and sensor status")?;
        }
        if let Some(p) = self.pulse_amplitude_index {
            w.sfloat(p, "pulse amplitude index")?;
        }
        Ok(w.len())
    }
}

/// PLX Continuous Measurement (GSS).
///
/// | flags bit | field present | format |
/// |---|---|---|
/// | – | Flags | 8bit |
/// | – | SpO2PR-Normal: SpO2, PR | 2 × SFLOAT |
/// | 0 | SpO2PR-Fast | 2 × SFLOAT |
/// | 1 | SpO2PR-Slow | 2 × SFLOAT |
/// | 2 | Measurement Status | 16bit |
/// | 3 | Device and Sensor Status | 24bit |
/// | 4 | Pulse Amplitude Index | SFLOAT (%) |
/// | 5–7 | RFU (ignored) | |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PlxContinuousMeasurement {
    pub normal: SpO2Pr,
    pub fast: Option<SpO2Pr>,
    pub slow: Option<SpO2Pr>,
    pub measurement_status: Option<PlxMeasurementStatus>,
    pub device_sensor_status: Option<PlxDeviceSensorStatus>,
    /// Percent.
    pub pulse_amplitude_index: Option<Value>,
}

impl PlxContinuousMeasurement {
    /// SpO2 (%) and pulse rate (/min) from SpO2PR-Normal (the averaging the device recommends for display),
    /// invalidated per [`plx_reason`]. Fast and Slow stay available in the struct.
    pub fn observations(&self) -> Observations {
        self.normal.observations(plx_reason(
            self.measurement_status,
            self.device_sensor_status,
        ))
    }
}

impl Characteristic for PlxContinuousMeasurement {
    const UUID: u16 = 0x2A5F;
    const MIN_LEN: usize = 5;
    const MAX_LEN: usize = 20;

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let flags = r.u8()?;
        let normal = SpO2Pr::read(&mut r)?;
        let fast = if flags & 0x01 != 0 {
            Some(SpO2Pr::read(&mut r)?)
        } else {
            None
        };
        let slow = if flags & 0x02 != 0 {
            Some(SpO2Pr::read(&mut r)?)
        } else {
            None
        };
        let measurement_status = if flags & 0x04 != 0 {
            Some(PlxMeasurementStatus::from_bits(r.u16()?))
        } else {
            None
        };
        let device_sensor_status = if flags & 0x08 != 0 {
            Some(PlxDeviceSensorStatus::from_bits(r.u24()?))
        } else {
            None
        };
        let pulse_amplitude_index = if flags & 0x10 != 0 {
            Some(r.sfloat()?)
        } else {
            None
        };
        r.finish()?;
        Ok(PlxContinuousMeasurement {
            normal,
            fast,
            slow,
            measurement_status,
            device_sensor_status,
            pulse_amplitude_index,
        })
    }

    fn encoded_len(&self) -> usize {
        5 + self.fast.map_or(0, |_| 4)
            + self.slow.map_or(0, |_| 4)
            + self.measurement_status.map_or(0, |_| 2)
            + self.device_sensor_status.map_or(0, |_| 3)
            + self.pulse_amplitude_index.map_or(0, |_| 2)
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out, self.encoded_len())?;
        let flags = self.fast.is_some() as u8
            | (self.slow.is_some() as u8) << 1
            | (self.measurement_status.is_some() as u8) << 2
            | (self.device_sensor_status.is_some() as u8) << 3
            | (self.pulse_amplitude_index.is_some() as u8) << 4;
        w.u8(flags)?;
        self.normal.write(&mut w)?;
        for p in [&self.fast, &self.slow].into_iter().flatten() {
            p.write(&mut w)?;
        }
        if let Some(m) = self.measurement_status {
            w.u16(m.bits())?;
        }
        if let Some(d) = self.device_sensor_status {
            w.u24(d.bits(), "device and sensor status")?;
        }
        if let Some(p) = self.pulse_amplitude_index {
            w.sfloat(p, "pulse amplitude index")?;
        }
        Ok(w.len())
    }
}

flag_struct! {
    /// PLX Features, Supported Features bits 2–7 (GSS). Bits 0 and 1 ("Measurement Status support present",
    /// "Device and Sensor Status support present") are the presence of the two `Option` fields of [`PlxFeatures`].
    pub struct PlxSupportedFeatures: u16 {
        measurement_storage_for_spot_check = 2,
        timestamp_for_spot_check = 3,
        spo2pr_fast = 4,
        spo2pr_slow = 5,
        pulse_amplitude_index = 6,
        multiple_bonds = 7,
    }
}

/// PLX Features (GSS).
///
/// | bit of Supported Features | field present | format |
/// |---|---|---|
/// | – | Supported Features | 16bit |
/// | 0 | Measurement Status Support | 16bit |
/// | 1 | Device and Sensor Status Support | 24bit |
/// | 8–15 | RFU (ignored) | |
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PlxFeatures {
    pub supported: PlxSupportedFeatures,
    /// Which Measurement Status bits the device can set.
    pub measurement_status_support: Option<PlxMeasurementStatus>,
    /// Which Device and Sensor Status bits the device can set.
    pub device_sensor_status_support: Option<PlxDeviceSensorStatus>,
}

impl Characteristic for PlxFeatures {
    const UUID: u16 = 0x2A60;
    const MIN_LEN: usize = 2;
    const MAX_LEN: usize = 7;

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let bits = r.u16()?;
        let measurement_status_support = if bits & 0x01 != 0 {
            Some(PlxMeasurementStatus::from_bits(r.u16()?))
        } else {
            None
        };
        let device_sensor_status_support = if bits & 0x02 != 0 {
            Some(PlxDeviceSensorStatus::from_bits(r.u24()?))
        } else {
            None
        };
        r.finish()?;
        Ok(PlxFeatures {
            supported: PlxSupportedFeatures::from_bits(bits),
            measurement_status_support,
            device_sensor_status_support,
        })
    }

    fn encoded_len(&self) -> usize {
        2 + self.measurement_status_support.map_or(0, |_| 2)
            + self.device_sensor_status_support.map_or(0, |_| 3)
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out, self.encoded_len())?;
        let bits = self.supported.bits()
            | self.measurement_status_support.is_some() as u16
            | (self.device_sensor_status_support.is_some() as u16) << 1;
        w.u16(bits)?;
        if let Some(m) = self.measurement_status_support {
            w.u16(m.bits())?;
        }
        if let Some(d) = self.device_sensor_status_support {
            w.u24(d.bits(), "device and sensor status support")?;
        }
        Ok(w.len())
    }
}
