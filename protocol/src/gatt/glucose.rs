//! Glucose Measurement (0x2A18) and Glucose Measurement Context (0x2A34), Glucose Service 0x1808.

use super::cursor::{Reader, Writer};
use super::{
    Characteristic, DateTime, DecodeError, EncodeError, Observations, convert, first_reason,
    with_status,
};
use crate::vocab::{Code, Invalid, Observation, Value};

/// Glucose concentration unit (flags bit 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum GlucoseUnit {
    /// kg/L (mg/dL devices send e.g. 95 × 10⁻⁵ kg/L).
    #[default]
    KgPerL,
    /// mol/L (mmol/L devices send e.g. 55 × 10⁻⁴ mol/L).
    MolPerL,
}

code_enum! {
    /// Glucose sample type (low nibble of Type-Sample Location).
    pub enum GlucoseType {
        CapillaryWholeBlood = 1,
        CapillaryPlasma = 2,
        VenousWholeBlood = 3,
        VenousPlasma = 4,
        ArterialWholeBlood = 5,
        ArterialPlasma = 6,
        UndeterminedWholeBlood = 7,
        UndeterminedPlasma = 8,
        InterstitialFluid = 9,
        ControlSolution = 10,
    }
}

code_enum! {
    /// Sample location (high nibble of Type-Sample Location).
    pub enum SampleLocation {
        Finger = 1,
        AlternateSiteTest = 2,
        Earlobe = 3,
        ControlSolution = 4,
        NotAvailable = 15,
    }
}

flag_struct! {
    /// Sensor Status Annunciation (16 bits; bits 12–15 RFU).
    pub struct GlucoseSensorStatus: u16 {
        device_battery_low = 0,
        sensor_malfunction = 1,
        sample_size_insufficient = 2,
        strip_insertion_error = 3,
        strip_type_incorrect = 4,
        result_too_high = 5,
        result_too_low = 6,
        sensor_temperature_too_high = 7,
        sensor_temperature_too_low = 8,
        sensor_read_interrupted = 9,
        general_device_fault = 10,
        time_fault = 11,
    }
}

impl GlucoseSensorStatus {
    /// Why the concentration cannot be used as a number, most fundamental first:
    ///
    /// | bit | reason |
    /// |---|---|
    /// | 1 sensor malfunction, 10 general device fault | [`Invalid::DeviceFault`] |
    /// | 2 sample too small, 3 strip insertion error, 4 wrong strip, 7/8 sensor temperature out of range, 9 strip pulled too soon | [`Invalid::MeasurementUnsuccessful`] |
    /// | 5 result higher than the device can process | [`Invalid::PositiveInfinity`] (a "HI" reading) |
    /// | 6 result lower than the device can process | [`Invalid::NegativeInfinity`] (a "LO" reading) |
    ///
    /// Bit 0 (battery low) is informational; bit 11 (time fault) affects the time, not the value.
    pub fn reason(&self) -> Option<Invalid> {
        first_reason(&[
            (self.sensor_malfunction, Invalid::DeviceFault),
            (self.general_device_fault, Invalid::DeviceFault),
            (
                self.sample_size_insufficient,
                Invalid::MeasurementUnsuccessful,
            ),
            (self.strip_insertion_error, Invalid::MeasurementUnsuccessful),
            (self.strip_type_incorrect, Invalid::MeasurementUnsuccessful),
            (
                self.sensor_temperature_too_high,
                Invalid::MeasurementUnsuccessful,
            ),
            (
                self.sensor_temperature_too_low,
                Invalid::MeasurementUnsuccessful,
            ),
            (
                self.sensor_read_interrupted,
                Invalid::MeasurementUnsuccessful,
            ),
            (self.result_too_high, Invalid::PositiveInfinity),
            (self.result_too_low, Invalid::NegativeInfinity),
        ])
    }
}

/// Glucose Concentration with its Type-Sample Location (present together, flags bit 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GlucoseConcentration {
    pub unit: GlucoseUnit,
    /// In `unit`, with the device's precision.
    pub value: Value,
    /// Values above 15 cannot be encoded (it is a nibble).
    pub sample_type: GlucoseType,
    /// Values above 15 cannot be encoded (it is a nibble).
    pub location: SampleLocation,
}

/// Glucose Measurement (GSS).
///
/// | flags bit | field present | format |
/// |---|---|---|
/// | – | Flags | 8bit |
/// | – | Sequence Number | uint16 |
/// | – | Base Time | Date Time (7) |
/// | 0 | Time Offset | sint16, minutes |
/// | 1 | Glucose Concentration; Type-Sample Location | SFLOAT (kg/L if bit 2 = 0, mol/L if bit 2 = 1); 8bit: type = low nibble, location = high nibble |
/// | 3 | Sensor Status Annunciation | 16bit |
/// | 4 | (Context Information Follows, no field) | |
/// | 5–7 | RFU (ignored) | |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GlucoseMeasurement {
    pub sequence_number: u16,
    pub base_time: DateTime,
    /// Minutes to add to `base_time` for the user-facing time.
    pub time_offset_min: Option<i16>,
    pub concentration: Option<GlucoseConcentration>,
    pub sensor_status: Option<GlucoseSensorStatus>,
    /// A Glucose Measurement Context with the same sequence number follows.
    pub context_follows: bool,
}

impl GlucoseMeasurement {
    /// Base Time + Time Offset, the time the meter shows the user; `None` if the base date is not known or not a
    /// real calendar date.
    pub fn user_facing_time(&self) -> Option<DateTime> {
        let Some(offset) = self.time_offset_min else {
            return Some(self.base_time).filter(|t| t.is_date_known());
        };
        let base = self.base_time.to_primitive()?;
        let t = base.checked_add(time::Duration::minutes(offset as i64))?;
        DateTime::from_primitive(t)
    }

    /// The concentration in mmol/L: mol/L × 1000 exactly; kg/L ÷ 0.180156 kg/mol × 1000, rounded to the device's
    /// resolution (see `docs/protocol/gatt.md`).
    pub fn mmol_per_l(&self) -> Option<Value> {
        self.concentration.map(|c| match c.unit {
            GlucoseUnit::KgPerL => convert::glucose_kg_per_l_to_mmol_per_l(c.value),
            GlucoseUnit::MolPerL => convert::glucose_mol_per_l_to_mmol_per_l(c.value),
        })
    }

    /// One [`Code::Glucose`] observation in mmol/L, if a concentration is present. A control-solution test is not a
    /// patient value and becomes [`Invalid::MeasurementUnsuccessful`]; sensor status bits apply per
    /// [`GlucoseSensorStatus::reason`].
    pub fn observations(&self) -> Observations {
        let mut out = Observations::new();
        if let (Some(c), Some(v)) = (self.concentration, self.mmol_per_l()) {
            let control = c.sample_type == GlucoseType::ControlSolution
                || c.location == SampleLocation::ControlSolution;
            let reason = self.sensor_status.and_then(|s| s.reason()).or(if control {
                Some(Invalid::MeasurementUnsuccessful)
            } else {
                None
            });
            let _ = out.push(Observation {
                code: Code::Glucose,
                value: with_status(v, reason),
            });
        }
        out
    }
}

impl Characteristic for GlucoseMeasurement {
    const UUID: u16 = 0x2A18;
    const MIN_LEN: usize = 10;
    const MAX_LEN: usize = 17;

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let flags = r.u8()?;
        let sequence_number = r.u16()?;
        let base_time = DateTime::read(&mut r)?;
        let time_offset_min = if flags & 0x01 != 0 {
            Some(r.i16()?)
        } else {
            None
        };
        let concentration = if flags & 0x02 != 0 {
            let value = r.sfloat()?;
            let type_location = r.u8()?;
            Some(GlucoseConcentration {
                unit: if flags & 0x04 != 0 {
                    GlucoseUnit::MolPerL
                } else {
                    GlucoseUnit::KgPerL
                },
                value,
                sample_type: GlucoseType::from_u8(type_location & 0x0F),
                location: SampleLocation::from_u8(type_location >> 4),
            })
        } else {
            None
        };
        let sensor_status = if flags & 0x08 != 0 {
            Some(GlucoseSensorStatus::from_bits(r.u16()?))
        } else {
            None
        };
        r.finish()?;
        Ok(GlucoseMeasurement {
            sequence_number,
            base_time,
            time_offset_min,
            concentration,
            sensor_status,
            context_follows: flags & 0x10 != 0,
        })
    }

    fn encoded_len(&self) -> usize {
        10 + self.time_offset_min.map_or(0, |_| 2)
            + self.concentration.map_or(0, |_| 3)
            + self.sensor_status.map_or(0, |_| 2)
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out, self.encoded_len())?;
        let mol = self
            .concentration
            .is_some_and(|c| c.unit == GlucoseUnit::MolPerL);
        let flags = self.time_offset_min.is_some() as u8
            | (self.concentration.is_some() as u8) << 1
            | (mol as u8) << 2
            | (self.sensor_status.is_some() as u8) << 3
            | (self.context_follows as u8) << 4;
        w.u8(flags)?;
        w.u16(self.sequence_number)?;
        self.base_time.write(&mut w)?;
        if let Some(o) = self.time_offset_min {
            w.i16(o)?;
        }
        if let Some(c) = self.concentration {
            w.sfloat(c.value, "glucose concentration")?;
            w.u8(nibbles(
                c.sample_type.to_u8(),
                c.location.to_u8(),
                "glucose type",
                "sample location",
            )?)?;
        }
        if let Some(s) = self.sensor_status {
            w.u16(s.bits())?;
        }
        Ok(w.len())
    }
}

/// Packs two nibbles, `low` in bits 0–3 (GSS: the field listed first is the least significant nibble).
fn nibbles(
    low: u8,
    high: u8,
    low_name: &'static str,
    high_name: &'static str,
) -> Result<u8, EncodeError> {
    if low > 0x0F {
        return Err(EncodeError::OutOfRange { field: low_name });
    }
    if high > 0x0F {
        return Err(EncodeError::OutOfRange { field: high_name });
    }
    Ok(low | high << 4)
}

code_enum! {
    /// Carbohydrate ID.
    pub enum CarbohydrateId {
        Breakfast = 1,
        Lunch = 2,
        Dinner = 3,
        Snack = 4,
        Drink = 5,
        Supper = 6,
        Brunch = 7,
    }
}

code_enum! {
    /// Meal.
    pub enum Meal {
        Preprandial = 1,
        Postprandial = 2,
        Fasting = 3,
        Casual = 4,
        Bedtime = 5,
    }
}

code_enum! {
    /// Tester (low nibble of Tester-Health).
    pub enum Tester {
        SelfTest = 1,
        HealthCareProfessional = 2,
        LabTest = 3,
        NotAvailable = 15,
    }
}

code_enum! {
    /// Health (high nibble of Tester-Health).
    pub enum Health {
        MinorIssues = 1,
        MajorIssues = 2,
        DuringMenses = 3,
        UnderStress = 4,
        NoIssues = 5,
        NotAvailable = 15,
    }
}

code_enum! {
    /// Medication ID.
    pub enum MedicationId {
        RapidActingInsulin = 1,
        ShortActingInsulin = 2,
        IntermediateActingInsulin = 3,
        LongActingInsulin = 4,
        PreMixedInsulin = 5,
    }
}

/// Carbohydrate intake (flags bit 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Carbohydrate {
    pub id: CarbohydrateId,
    /// Kilograms (SFLOAT; e.g. 60 g is 60 × 10⁻³).
    pub kg: Value,
}

/// Tester and health (flags bit 2; one byte of two nibbles).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TesterHealth {
    pub tester: Tester,
    pub health: Health,
}

/// Exercise (flags bit 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Exercise {
    /// Seconds; 0xFFFF = overrun.
    pub duration_s: u16,
    /// Percent.
    pub intensity_percent: u8,
}

/// Medication unit (flags bit 5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MedicationUnit {
    #[default]
    Kilograms,
    Litres,
}

/// Medication (flags bit 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Medication {
    pub id: MedicationId,
    pub unit: MedicationUnit,
    /// In `unit` (SFLOAT).
    pub value: Value,
}

/// Glucose Measurement Context (GSS). Carries no observations the hub scores (HbA1c is kept in the struct).
///
/// | flags bit | field present | format |
/// |---|---|---|
/// | – | Flags | 8bit |
/// | – | Sequence Number | uint16 |
/// | 7 | Extended Flags | 8bit (all RFU) |
/// | 0 | Carbohydrate ID; Carbohydrate | uint8; SFLOAT kg |
/// | 1 | Meal | uint8 |
/// | 2 | Tester-Health | 8bit: tester = low nibble, health = high nibble |
/// | 3 | Exercise Duration; Exercise Intensity | uint16 s; uint8 % |
/// | 4 | Medication ID; Medication | uint8; SFLOAT, kg if bit 5 = 0, litres if bit 5 = 1 |
/// | 6 | HbA1c | SFLOAT % |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GlucoseMeasurementContext {
    pub sequence_number: u16,
    /// All bits RFU; kept as received so a re-encode reproduces it.
    pub extended_flags: Option<u8>,
    pub carbohydrate: Option<Carbohydrate>,
    pub meal: Option<Meal>,
    pub tester_health: Option<TesterHealth>,
    pub exercise: Option<Exercise>,
    pub medication: Option<Medication>,
    /// Percent.
    pub hba1c: Option<Value>,
}

impl Characteristic for GlucoseMeasurementContext {
    const UUID: u16 = 0x2A34;
    const MIN_LEN: usize = 3;
    const MAX_LEN: usize = 17;

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let flags = r.u8()?;
        let sequence_number = r.u16()?;
        let extended_flags = if flags & 0x80 != 0 {
            Some(r.u8()?)
        } else {
            None
        };
        let carbohydrate = if flags & 0x01 != 0 {
            Some(Carbohydrate {
                id: CarbohydrateId::from_u8(r.u8()?),
                kg: r.sfloat()?,
            })
        } else {
            None
        };
        let meal = if flags & 0x02 != 0 {
            Some(Meal::from_u8(r.u8()?))
        } else {
            None
        };
        let tester_health = if flags & 0x04 != 0 {
            let b = r.u8()?;
            Some(TesterHealth {
                tester: Tester::from_u8(b & 0x0F),
                health: Health::from_u8(b >> 4),
            })
        } else {
            None
        };
        let exercise = if flags & 0x08 != 0 {
            Some(Exercise {
                duration_s: r.u16()?,
                intensity_percent: r.u8()?,
            })
        } else {
            None
        };
        let medication = if flags & 0x10 != 0 {
            let id = MedicationId::from_u8(r.u8()?);
            let unit = if flags & 0x20 != 0 {
                MedicationUnit::Litres
            } else {
                MedicationUnit::Kilograms
            };
            Some(Medication {
                id,
                unit,
                value: r.sfloat()?,
            })
        } else {
            None
        };
        let hba1c = if flags & 0x40 != 0 {
            Some(r.sfloat()?)
        } else {
            None
        };
        r.finish()?;
        Ok(GlucoseMeasurementContext {
            sequence_number,
            extended_flags,
            carbohydrate,
            meal,
            tester_health,
            exercise,
            medication,
            hba1c,
        })
    }

    fn encoded_len(&self) -> usize {
        3 + self.extended_flags.map_or(0, |_| 1)
            + self.carbohydrate.map_or(0, |_| 3)
            + self.meal.map_or(0, |_| 1)
            + self.tester_health.map_or(0, |_| 1)
            + self.exercise.map_or(0, |_| 3)
            + self.medication.map_or(0, |_| 3)
            + self.hba1c.map_or(0, |_| 2)
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out, self.encoded_len())?;
        let litres = self
            .medication
            .is_some_and(|m| m.unit == MedicationUnit::Litres);
        let flags = self.carbohydrate.is_some() as u8
            | (self.meal.is_some() as u8) << 1
            | (self.tester_health.is_some() as u8) << 2
            | (self.exercise.is_some() as u8) << 3
            | (self.medication.is_some() as u8) << 4
            | (litres as u8) << 5
            | (self.hba1c.is_some() as u8) << 6
            | (self.extended_flags.is_some() as u8) << 7;
        w.u8(flags)?;
        w.u16(self.sequence_number)?;
        if let Some(x) = self.extended_flags {
            w.u8(x)?;
        }
        if let Some(c) = self.carbohydrate {
            w.u8(c.id.to_u8())?;
            w.sfloat(c.kg, "carbohydrate")?;
        }
        if let Some(m) = self.meal {
            w.u8(m.to_u8())?;
        }
        if let Some(th) = self.tester_health {
            w.u8(nibbles(
                th.tester.to_u8(),
                th.health.to_u8(),
                "tester",
                "health",
            )?)?;
        }
        if let Some(e) = self.exercise {
            w.u16(e.duration_s)?;
            w.u8(e.intensity_percent)?;
        }
        if let Some(m) = self.medication {
            w.u8(m.id.to_u8())?;
            w.sfloat(m.value, "medication")?;
        }
        if let Some(h) = self.hba1c {
            w.sfloat(h, "HbA1c")?;
        }
        Ok(w.len())
    }
}
