//! Temperature Measurement (0x2A1C) and Intermediate Temperature (0x2A1E), Health Thermometer Service 0x1809.

use super::convert;
use super::cursor::{Reader, Writer};
use super::{Characteristic, DateTime, DecodeError, EncodeError, Observations};
use crate::vocab::{Code, Observation, Value};

/// Temperature unit (flags bit 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TemperatureUnit {
    #[default]
    Celsius,
    Fahrenheit,
}

code_enum! {
    /// Temperature Type (GSS): where on the body the temperature was taken.
    pub enum TemperatureType {
        Armpit = 1,
        Body = 2,
        Ear = 3,
        Finger = 4,
        GastroIntestinalTract = 5,
        Mouth = 6,
        Rectum = 7,
        Toe = 8,
        Tympanum = 9,
    }
}

/// Temperature Measurement (GSS). Intermediate Temperature shares the layout.
///
/// | flags bit | field present | format |
/// |---|---|---|
/// | – | Flags | 8bit |
/// | – | Temperature Measurement Value | FLOAT, °C if bit 0 = 0, °F if bit 0 = 1 |
/// | 1 | Time Stamp | Date Time (7) |
/// | 2 | Temperature Type | uint8 |
/// | 3–7 | RFU (ignored) | |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TemperatureMeasurement {
    pub unit: TemperatureUnit,
    /// In `unit`, with the device's precision.
    pub value: Value,
    pub timestamp: Option<DateTime>,
    pub temperature_type: Option<TemperatureType>,
}

impl TemperatureMeasurement {
    /// The temperature in °C (Cel); °F is converted keeping the device's precision.
    pub fn celsius(&self) -> Value {
        match self.unit {
            TemperatureUnit::Celsius => self.value,
            TemperatureUnit::Fahrenheit => convert::fahrenheit_to_celsius(self.value),
        }
    }

    /// One [`Code::Temp`] observation in Cel. A FLOAT special value stays [`Value::Invalid`].
    pub fn observations(&self) -> Observations {
        let mut out = Observations::new();
        let _ = out.push(Observation {
            code: Code::Temp,
            value: self.celsius(),
        });
        out
    }

    fn decode_inner(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let flags = r.u8()?;
        let unit = if flags & 0x01 != 0 {
            TemperatureUnit::Fahrenheit
        } else {
            TemperatureUnit::Celsius
        };
        let value = r.float()?;
        let timestamp = if flags & 0x02 != 0 {
            Some(DateTime::read(&mut r)?)
        } else {
            None
        };
        let temperature_type = if flags & 0x04 != 0 {
            Some(TemperatureType::from_u8(r.u8()?))
        } else {
            None
        };
        r.finish()?;
        Ok(TemperatureMeasurement {
            unit,
            value,
            timestamp,
            temperature_type,
        })
    }

    fn len_inner(&self) -> usize {
        5 + if self.timestamp.is_some() {
            DateTime::LEN
        } else {
            0
        } + self.temperature_type.map_or(0, |_| 1)
    }

    fn encode_inner(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out, self.len_inner())?;
        let mut flags = 0u8;
        if self.unit == TemperatureUnit::Fahrenheit {
            flags |= 0x01;
        }
        if self.timestamp.is_some() {
            flags |= 0x02;
        }
        if self.temperature_type.is_some() {
            flags |= 0x04;
        }
        w.u8(flags)?;
        w.float(self.value, "temperature")?;
        if let Some(t) = &self.timestamp {
            t.write(&mut w)?;
        }
        if let Some(t) = self.temperature_type {
            w.u8(t.to_u8())?;
        }
        Ok(w.len())
    }
}

impl Characteristic for TemperatureMeasurement {
    const UUID: u16 = 0x2A1C;
    const MIN_LEN: usize = 5;
    const MAX_LEN: usize = 13;

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

/// Intermediate Temperature (0x2A1E): the Temperature Measurement layout, sent while a measurement is in progress.
/// It is not a result, so it yields no observations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IntermediateTemperature(pub TemperatureMeasurement);

impl Characteristic for IntermediateTemperature {
    const UUID: u16 = 0x2A1E;
    const MIN_LEN: usize = TemperatureMeasurement::MIN_LEN;
    const MAX_LEN: usize = TemperatureMeasurement::MAX_LEN;

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        TemperatureMeasurement::decode_inner(bytes).map(IntermediateTemperature)
    }

    fn encoded_len(&self) -> usize {
        self.0.len_inner()
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        self.0.encode_inner(out)
    }
}
