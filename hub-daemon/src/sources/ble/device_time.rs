//! Device time (HL7 FHIR Personal Health Device IG): on connect the hub reads the device's Current Time and its own
//! clock together (the coincident timestamp), keeps the offset, and corrects every timestamp the device sends by it.
//! A time the device itself flags (PLX "clock not set", glucose "time fault"), or one from a clock that reads before
//! `min_plausible_year` (a cuff that reset to 2021), is not trusted: the reading keeps the hub's receive time,
//! marked as such (`time_source = hub`), and the untrusted timestamp goes into the counter — never an invented time.
//!
//! Device times carry no zone; they are read as if UTC, and the offset absorbs both drift and the zone.

use hearth_protocol::gatt::{CurrentTime, DateTime, DayOfWeek};
use time::PrimitiveDateTime;

use crate::clock::Millis;

/// What the hub knows of one device's clock during a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceClock {
    /// hub time − device time, when a coincident timestamp was taken.
    pub offset_ms: Option<Millis>,
    /// The device's clock read before the plausible year (reset); its timestamps are untrusted until it is set.
    pub reset: bool,
    pub min_year: u16,
}

/// Why a reading's own time is not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Untrusted {
    /// The device flags its clock (PLX "device clock not set", glucose "time fault").
    ClockNotSet,
    /// The timestamp, or the device's clock, is before the plausible year.
    Implausible,
}

impl Untrusted {
    pub fn as_str(self) -> &'static str {
        match self {
            Untrusted::ClockNotSet => "clock_not_set",
            Untrusted::Implausible => "implausible",
        }
    }
}

/// A reading's time as the hub will record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadingTime {
    /// The device's timestamp corrected to UTC.
    Device(Millis),
    /// The device sent no timestamp (a live measurement): the hub's receive time.
    None,
    /// The device sent one that cannot be trusted (see [`Untrusted`]): the hub's receive time, counted.
    Untrusted(Untrusted),
}

impl ReadingTime {
    pub fn observed_at(self) -> Option<Millis> {
        match self {
            ReadingTime::Device(t) => Some(t),
            _ => None,
        }
    }
}

/// A device time read as UTC, in ms; `None` for an unknown or impossible date.
pub fn device_ms(t: &DateTime) -> Option<Millis> {
    let p: PrimitiveDateTime = t.to_primitive()?;
    Some((p.assume_utc().unix_timestamp_nanos() / 1_000_000) as Millis)
}

/// The Current Time value that sets a device's clock to `now` (UTC).
pub fn current_time_at(now: Millis) -> Option<CurrentTime> {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(now as i128 * 1_000_000).ok()?;
    let date_time = DateTime::from_primitive(PrimitiveDateTime::new(t.date(), t.time()))?;
    Some(CurrentTime {
        date_time,
        day_of_week: DayOfWeek::from_u8(t.weekday().number_from_monday()),
        fractions256: ((t.millisecond() as u32 * 256) / 1000) as u8,
        adjust_reason: hearth_protocol::gatt::AdjustReason {
            manual_time_update: true,
            ..Default::default()
        },
    })
}

impl DeviceClock {
    /// No Current Time: timestamps are used as the device sends them (if plausible), uncorrected.
    pub fn unknown(min_year: u16) -> DeviceClock {
        DeviceClock {
            offset_ms: None,
            reset: false,
            min_year,
        }
    }

    /// From the device's Current Time read at hub time `hub_now`.
    pub fn coincident(ct: &CurrentTime, hub_now: Millis, min_year: u16) -> DeviceClock {
        let reset = ct.date_time.year < min_year;
        let offset_ms = device_ms(&ct.date_time)
            .filter(|_| !reset)
            .map(|d| hub_now - d - (ct.fractions256 as Millis * 1000 / 256));
        DeviceClock {
            offset_ms,
            reset,
            min_year,
        }
    }

    /// After the hub set the device's clock to its own time.
    pub fn set_by_hub(min_year: u16) -> DeviceClock {
        DeviceClock {
            offset_ms: Some(0),
            reset: false,
            min_year,
        }
    }

    /// The time to record for a reading stamped `stamp` (None: no timestamp), `flagged` if the device says its clock
    /// is not set.
    pub fn correct(&self, stamp: Option<&DateTime>, flagged: bool) -> ReadingTime {
        if flagged {
            return ReadingTime::Untrusted(Untrusted::ClockNotSet);
        }
        let Some(stamp) = stamp else {
            return ReadingTime::None;
        };
        if self.reset || stamp.year < self.min_year {
            return ReadingTime::Untrusted(Untrusted::Implausible);
        }
        match device_ms(stamp) {
            Some(t) => ReadingTime::Device(t + self.offset_ms.unwrap_or(0)),
            None => ReadingTime::Untrusted(Untrusted::Implausible),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(year: u16, h: u8, m: u8) -> DateTime {
        DateTime {
            year,
            month: 11,
            day: 23,
            hours: h,
            minutes: m,
            seconds: 0,
        }
    }

    #[test]
    fn offset_corrects_a_slow_clock() {
        let hub_now = device_ms(&dt(2026, 10, 0)).unwrap();
        // The device's clock is 90 s behind.
        let ct = CurrentTime {
            date_time: DateTime {
                seconds: 0,
                ..dt(2026, 9, 58)
            },
            ..current_time_at(0).unwrap()
        };
        let ct = CurrentTime {
            date_time: DateTime {
                seconds: 30,
                ..ct.date_time
            },
            fractions256: 0,
            ..ct
        };
        let c = DeviceClock::coincident(&ct, hub_now, 2024);
        assert_eq!(c.offset_ms, Some(90_000));
        // A reading the device stamped 09:50:00 happened at 09:51:30 hub time.
        assert_eq!(
            c.correct(Some(&dt(2026, 9, 50)), false),
            ReadingTime::Device(device_ms(&dt(2026, 9, 51)).unwrap() + 30_000)
        );
    }

    #[test]
    fn a_reset_clock_and_a_flagged_one_are_untrusted_not_invented() {
        let hub_now = device_ms(&dt(2026, 10, 0)).unwrap();
        let ct = current_time_at(device_ms(&dt(2021, 1, 0)).unwrap()).unwrap();
        let c = DeviceClock::coincident(&ct, hub_now, 2024);
        assert!(c.reset);
        assert_eq!(
            c.correct(Some(&dt(2021, 0, 59)), false),
            ReadingTime::Untrusted(Untrusted::Implausible)
        );
        let ok = DeviceClock::set_by_hub(2024);
        assert_eq!(
            ok.correct(Some(&dt(2026, 9, 0)), true),
            ReadingTime::Untrusted(Untrusted::ClockNotSet)
        );
        assert_eq!(ok.correct(None, false), ReadingTime::None);
        // Still untrusted after the clock is set: a record stamped before the set came from the reset clock.
        assert_eq!(
            ok.correct(Some(&dt(2021, 0, 59)), false),
            ReadingTime::Untrusted(Untrusted::Implausible)
        );
    }

    #[test]
    fn current_time_for_setting_round_trips() {
        let now = device_ms(&dt(2026, 12, 34)).unwrap() + 500;
        let ct = current_time_at(now).unwrap();
        assert_eq!(ct.date_time, dt(2026, 12, 34));
        assert_eq!(ct.fractions256, 128);
        assert_eq!(ct.day_of_week, DayOfWeek::from_u8(1)); // 2026-11-23 is a Monday
    }
}
