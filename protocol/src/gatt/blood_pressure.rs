//! Blood Pressure Measurement (0x2A35), Intermediate Cuff Pressure (0x2A36) and Blood Pressure Feature (0x2A49),
//! Blood Pressure Service 0x1810.

use super::cursor::{Reader, Writer};
use super::{
    Characteristic, DateTime, DecodeError, EncodeError, Observations, convert, first_reason,
    with_status,
};
use crate::vocab::{Code, Invalid, Observation, Value};

/// Blood pressure unit (flags bit 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PressureUnit {
    #[default]
    MmHg,
    KPa,
}

/// Pulse Rate Range Detection (Measurement Status bits 3–4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PulseRateRange {
    /// 0: within the device's range.
    #[default]
    WithinRange,
    /// 1: exceeds the device's upper limit.
    ExceedsUpperLimit,
    /// 2: below the device's lower limit.
    BelowLowerLimit,
    /// 3: reserved for future use.
    Reserved,
}

/// Blood Pressure Measurement Status (GSS, 16 bits; bits 6–15 RFU).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BloodPressureStatus {
    /// Bit 0: body movement detected during the measurement.
    pub body_movement: bool,
    /// Bit 1: cuff fit too loose.
    pub cuff_too_loose: bool,
    /// Bit 2: irregular pulse detected (a clinical finding, not a measurement fault).
    pub irregular_pulse: bool,
    /// Bits 3–4.
    pub pulse_rate_range: PulseRateRange,
    /// Bit 5: improper measurement position.
    pub improper_position: bool,
}

impl BloodPressureStatus {
    /// Reads the defined bits; RFU bits are ignored.
    pub const fn from_bits(bits: u16) -> Self {
        BloodPressureStatus {
            body_movement: bits & 0x0001 != 0,
            cuff_too_loose: bits & 0x0002 != 0,
            irregular_pulse: bits & 0x0004 != 0,
            pulse_rate_range: match (bits >> 3) & 0x03 {
                0 => PulseRateRange::WithinRange,
                1 => PulseRateRange::ExceedsUpperLimit,
                2 => PulseRateRange::BelowLowerLimit,
                _ => PulseRateRange::Reserved,
            },
            improper_position: bits & 0x0020 != 0,
        }
    }

    /// The bit field, RFU bits 0.
    pub const fn bits(&self) -> u16 {
        let range = match self.pulse_rate_range {
            PulseRateRange::WithinRange => 0,
            PulseRateRange::ExceedsUpperLimit => 1,
            PulseRateRange::BelowLowerLimit => 2,
            PulseRateRange::Reserved => 3,
        };
        (self.body_movement as u16)
            | (self.cuff_too_loose as u16) << 1
            | (self.irregular_pulse as u16) << 2
            | range << 3
            | (self.improper_position as u16) << 5
    }

    /// Why the pressures cannot be trusted, if they cannot: a loose cuff or wrong position → [`Invalid::SensorDisplaced`]
    /// (the sensor is not applied as the validation protocol requires), body movement → [`Invalid::MotionArtefact`].
    /// An irregular pulse does not invalidate the pressures.
    pub fn pressure_reason(&self) -> Option<Invalid> {
        first_reason(&[
            (self.cuff_too_loose, Invalid::SensorDisplaced),
            (self.improper_position, Invalid::SensorDisplaced),
            (self.body_movement, Invalid::MotionArtefact),
        ])
    }

    /// Why the pulse rate cannot be trusted, if it cannot: the pressure reasons (same oscillometric measurement), then
    /// a pulse outside the device's range → [`Invalid::PositiveInfinity`] / [`Invalid::NegativeInfinity`].
    pub fn pulse_reason(&self) -> Option<Invalid> {
        self.pressure_reason().or(match self.pulse_rate_range {
            PulseRateRange::ExceedsUpperLimit => Some(Invalid::PositiveInfinity),
            PulseRateRange::BelowLowerLimit => Some(Invalid::NegativeInfinity),
            PulseRateRange::WithinRange | PulseRateRange::Reserved => None,
        })
    }
}

/// Blood Pressure Measurement (GSS). Intermediate Cuff Pressure shares the layout.
///
/// | flags bit | field present | format |
/// |---|---|---|
/// | – | Flags | 8bit |
/// | – | Systolic, Diastolic, Mean Arterial Pressure | 3 × SFLOAT, mmHg if bit 0 = 0, kPa if bit 0 = 1 |
/// | 1 | Time Stamp | Date Time (7) |
/// | 2 | Pulse Rate | SFLOAT, beats per minute |
/// | 3 | User ID | uint8 (0xFF = unknown user) |
/// | 4 | Measurement Status | 16bit |
/// | 5–7 | RFU (ignored) | |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BloodPressureMeasurement {
    pub unit: PressureUnit,
    /// In `unit`. For Intermediate Cuff Pressure this is the current cuff pressure.
    pub systolic: Value,
    /// In `unit`. Unused (normally NaN) for Intermediate Cuff Pressure.
    pub diastolic: Value,
    /// Mean arterial pressure, in `unit`. Unused (normally NaN) for Intermediate Cuff Pressure.
    pub mean_arterial_pressure: Value,
    pub timestamp: Option<DateTime>,
    /// Beats per minute.
    pub pulse_rate: Option<Value>,
    /// 0xFF = unknown user.
    pub user_id: Option<u8>,
    pub status: Option<BloodPressureStatus>,
}

impl BloodPressureMeasurement {
    fn in_mmhg(&self, v: Value) -> Value {
        match self.unit {
            PressureUnit::MmHg => v,
            PressureUnit::KPa => convert::kpa_to_mmhg(v),
        }
    }

    /// Systolic, diastolic, MAP (`mm[Hg]`) and, if present, pulse rate (/min). An SFLOAT special value stays its own
    /// [`Invalid`] reason (a NaN cuff is never 2047); otherwise the status bits may invalidate the values (see
    /// [`BloodPressureStatus::pressure_reason`] and [`BloodPressureStatus::pulse_reason`]).
    pub fn observations(&self) -> Observations {
        let pressure_reason = self.status.and_then(|s| s.pressure_reason());
        let pulse_reason = self.status.and_then(|s| s.pulse_reason());
        let mut out = Observations::new();
        for (code, v) in [
            (Code::BpSys, self.systolic),
            (Code::BpDia, self.diastolic),
            (Code::BpMap, self.mean_arterial_pressure),
        ] {
            let _ = out.push(Observation {
                code,
                value: with_status(self.in_mmhg(v), pressure_reason),
            });
        }
        if let Some(p) = self.pulse_rate {
            let _ = out.push(Observation {
                code: Code::HeartRate,
                value: with_status(p, pulse_reason),
            });
        }
        out
    }

    fn decode_inner(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let flags = r.u8()?;
        let unit = if flags & 0x01 != 0 {
            PressureUnit::KPa
        } else {
            PressureUnit::MmHg
        };
        let systolic = r.sfloat()?;
        let diastolic = r.sfloat()?;
        let mean_arterial_pressure = r.sfloat()?;
        let timestamp = if flags & 0x02 != 0 {
            Some(DateTime::read(&mut r)?)
        } else {
            None
        };
        let pulse_rate = if flags & 0x04 != 0 {
            Some(r.sfloat()?)
        } else {
            None
        };
        let user_id = if flags & 0x08 != 0 {
            Some(r.u8()?)
        } else {
            None
        };
        let status = if flags & 0x10 != 0 {
            Some(BloodPressureStatus::from_bits(r.u16()?))
        } else {
            None
        };
        r.finish()?;
        Ok(BloodPressureMeasurement {
            unit,
            systolic,
            diastolic,
            mean_arterial_pressure,
            timestamp,
            pulse_rate,
            user_id,
            status,
        })
    }

    fn len_inner(&self) -> usize {
        7 + if self.timestamp.is_some() {
            DateTime::LEN
        } else {
            0
        } + self.pulse_rate.map_or(0, |_| 2)
            + self.user_id.map_or(0, |_| 1)
            + self.status.map_or(0, |_| 2)
    }

    fn encode_inner(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out, self.len_inner())?;
        let flags = (self.unit == PressureUnit::KPa) as u8
            | (self.timestamp.is_some() as u8) << 1
            | (self.pulse_rate.is_some() as u8) << 2
            | (self.user_id.is_some() as u8) << 3
            | (self.status.is_some() as u8) << 4;
        w.u8(flags)?;
        w.sfloat(self.systolic, "systolic")?;
        w.sfloat(self.diastolic, "diastolic")?;
        w.sfloat(self.mean_arterial_pressure, "mean arterial pressure")?;
        if let Some(t) = &self.timestamp {
            t.write(&mut w)?;
        }
        if let Some(p) = self.pulse_rate {
            w.sfloat(p, "pulse rate")?;
        }
        if let Some(u) = self.user_id {
            w.u8(u)?;
        }
        if let Some(s) = self.status {
            w.u16(s.bits())?;
        }
        Ok(w.len())
    }
}

impl Characteristic for BloodPressureMeasurement {
    const UUID: u16 = 0x2A35;
    const MIN_LEN: usize = 7;
    const MAX_LEN: usize = 19;

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_inner(bytes)
    }

    fn encoded_len(&self) -> usize {
        self.len_inner()
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        self.encode_inner(out)
    }
}

/// Intermediate Cuff Pressure (0x2A36): the Blood Pressure Measurement layout, sent while the cuff inflates or
/// deflates; the systolic field is the current cuff pressure and diastolic and MAP are unused. Not a result, so it
/// yields no observations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IntermediateCuffPressure(pub BloodPressureMeasurement);

impl IntermediateCuffPressure {
    /// The current cuff pressure in `mm[Hg]`.
    pub fn current_cuff_pressure_mmhg(&self) -> Value {
        self.0.in_mmhg(self.0.systolic)
    }
}

impl Characteristic for IntermediateCuffPressure {
    const UUID: u16 = 0x2A36;
    const MIN_LEN: usize = BloodPressureMeasurement::MIN_LEN;
    const MAX_LEN: usize = BloodPressureMeasurement::MAX_LEN;

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        BloodPressureMeasurement::decode_inner(bytes).map(IntermediateCuffPressure)
    }

    fn encoded_len(&self) -> usize {
        self.0.len_inner()
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        self.0.encode_inner(out)
    }
}

flag_struct! {
    /// Blood Pressure Feature (GSS, 16 bits): which status bits the cuff can set. Bits 6–15 are treated as RFU.
    pub struct BloodPressureFeature: u16 {
        body_movement_detection = 0,
        cuff_fit_detection = 1,
        irregular_pulse_detection = 2,
        pulse_rate_range_detection = 3,
        measurement_position_detection = 4,
        multiple_bonds = 5,
    }
}

impl Characteristic for BloodPressureFeature {
    const UUID: u16 = 0x2A49;
    const MIN_LEN: usize = 2;
    const MAX_LEN: usize = 2;

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let f = BloodPressureFeature::from_bits(r.u16()?);
        r.finish()?;
        Ok(f)
    }

    fn encoded_len(&self) -> usize {
        2
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out, 2)?;
        w.u16(self.bits())?;
        Ok(w.len())
    }
}
