//! Date Time (0x2A08) and Current Time (0x2A2B, Exact Time 256 + Adjust Reason).

use super::cursor::{Reader, Writer};
use super::{Characteristic, DecodeError, EncodeError};

/// Date Time (GSS): a device-local calendar time, no time zone. `year`, `month` and `day` 0 mean "not known".
///
/// Layout: `year` uint16 (1582..=9999 or 0), `month` uint8 (1..=12 or 0), `day` uint8 (1..=31 or 0), `hours` uint8
/// (0..=23), `minutes` uint8 (0..=59), `seconds` uint8 (0..=59). Values outside these ranges are rejected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DateTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hours: u8,
    pub minutes: u8,
    pub seconds: u8,
}

impl DateTime {
    /// Encoded size.
    pub const LEN: usize = 7;

    /// Whether year, month and day are all known (non-zero).
    pub fn is_date_known(&self) -> bool {
        self.year != 0 && self.month != 0 && self.day != 0
    }

    /// As a `time` calendar value; `None` if the date is not known or does not exist (e.g. 30 February).
    pub fn to_primitive(&self) -> Option<time::PrimitiveDateTime> {
        let month = time::Month::try_from(self.month).ok()?;
        let date = time::Date::from_calendar_date(self.year as i32, month, self.day).ok()?;
        let t = time::Time::from_hms(self.hours, self.minutes, self.seconds).ok()?;
        Some(time::PrimitiveDateTime::new(date, t))
    }

    /// From a `time` calendar value; `None` for a year the characteristic cannot carry (before 1582 or after 9999).
    pub fn from_primitive(t: time::PrimitiveDateTime) -> Option<Self> {
        let year = u16::try_from(t.year())
            .ok()
            .filter(|y| (1582..=9999).contains(y))?;
        Some(DateTime {
            year,
            month: t.month() as u8,
            day: t.day(),
            hours: t.hour(),
            minutes: t.minute(),
            seconds: t.second(),
        })
    }

    /// Reads the 7-byte field, checking every range.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let at = r.offset();
        let year = r.u16()?;
        let [month, day, hours, minutes, seconds] = r.take::<5>()?;
        let t = DateTime {
            year,
            month,
            day,
            hours,
            minutes,
            seconds,
        };
        match t.invalid_field() {
            None => Ok(t),
            Some((rel, field)) => Err(DecodeError::InvalidField {
                offset: at + rel,
                field,
            }),
        }
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        if let Some((_, field)) = self.invalid_field() {
            return Err(EncodeError::OutOfRange { field });
        }
        w.u16(self.year)?;
        w.put(&[self.month, self.day, self.hours, self.minutes, self.seconds])
    }

    /// The first field outside its range: (offset within the 7 bytes, name).
    fn invalid_field(&self) -> Option<(usize, &'static str)> {
        if self.year != 0 && !(1582..=9999).contains(&self.year) {
            Some((0, "year"))
        } else if self.month > 12 {
            Some((2, "month"))
        } else if self.day > 31 {
            Some((3, "day"))
        } else if self.hours > 23 {
            Some((4, "hours"))
        } else if self.minutes > 59 {
            Some((5, "minutes"))
        } else if self.seconds > 59 {
            Some((6, "seconds"))
        } else {
            None
        }
    }
}

impl Characteristic for DateTime {
    const UUID: u16 = 0x2A08;
    const MIN_LEN: usize = 7;
    const MAX_LEN: usize = 7;

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let t = DateTime::read(&mut r)?;
        r.finish()?;
        Ok(t)
    }

    fn encoded_len(&self) -> usize {
        Self::LEN
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out, self.encoded_len())?;
        self.write(&mut w)?;
        Ok(w.len())
    }
}

code_enum! {
    /// Day of Week (GSS).
    pub enum DayOfWeek {
        Unknown = 0,
        Monday = 1,
        Tuesday = 2,
        Wednesday = 3,
        Thursday = 4,
        Friday = 5,
        Saturday = 6,
        Sunday = 7,
    }
}

flag_struct! {
    /// Adjust Reason (GSS): why the device's time last changed.
    pub struct AdjustReason: u8 {
        manual_time_update = 0,
        external_reference_time_update = 1,
        change_of_time_zone = 2,
        change_of_dst = 3,
    }
}

/// Current Time (0x2A2B, Current Time Service): Exact Time 256 (Day Date Time + Fractions256) and Adjust Reason.
///
/// Layout (10 bytes): Date Time (7), Day of Week uint8, Fractions256 uint8 (1/256 s), Adjust Reason 8bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CurrentTime {
    pub date_time: DateTime,
    pub day_of_week: DayOfWeek,
    /// Fractions of a second, in 1/256 s.
    pub fractions256: u8,
    pub adjust_reason: AdjustReason,
}

impl Characteristic for CurrentTime {
    const UUID: u16 = 0x2A2B;
    const MIN_LEN: usize = 10;
    const MAX_LEN: usize = 10;

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let date_time = DateTime::read(&mut r)?;
        let day_of_week = DayOfWeek::from_u8(r.u8()?);
        let fractions256 = r.u8()?;
        let adjust_reason = AdjustReason::from_bits(r.u8()?);
        r.finish()?;
        Ok(CurrentTime {
            date_time,
            day_of_week,
            fractions256,
            adjust_reason,
        })
    }

    fn encoded_len(&self) -> usize {
        10
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out, self.encoded_len())?;
        self.date_time.write(&mut w)?;
        w.u8(self.day_of_week.to_u8())?;
        w.u8(self.fractions256)?;
        w.u8(self.adjust_reason.bits())?;
        Ok(w.len())
    }
}
