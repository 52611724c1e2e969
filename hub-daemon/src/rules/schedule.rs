//! Missing readings as a clinical signal: "weight by 10:00", "oximetry twice daily". A schedule's due times are in
//! the home's local time (a patient weighs at 10:00 in summer and in winter).
//!
//! A slot is due at a local time and opens at the previous due time of the same day, or at local midnight: a weight
//! "by 10:00" is one taken between midnight and 10:00 (or later — a late reading still satisfies it).

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::clock::Millis;

/// One due time of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub due_at: Millis,
    pub opens_at: Millis,
    /// The local due time, `HH:MM`.
    pub label: String,
}

/// The latest slot due at or before `now`. `minutes` are minutes after local midnight, increasing.
pub fn current_slot(minutes: &[u32], now: Millis, tz: &TimeZone) -> Option<Slot> {
    let today = Timestamp::from_millisecond(now)
        .ok()?
        .to_zoned(tz.clone())
        .date();
    for day in [Some(today), today.yesterday().ok()].into_iter().flatten() {
        let midnight = at(day, 0, tz)?;
        for (i, &m) in minutes.iter().enumerate().rev() {
            let due_at = at(day, m, tz)?;
            if due_at <= now {
                let opens_at = match i {
                    0 => midnight,
                    _ => at(day, minutes[i - 1], tz)?,
                };
                return Some(Slot {
                    due_at,
                    opens_at,
                    label: format!("{:02}:{:02}", m / 60, m % 60),
                });
            }
        }
    }
    None
}

/// `minutes` after midnight of local `day` as UTC ms (a time in a DST gap moves forward, as clocks do).
fn at(day: Date, minutes: u32, tz: &TimeZone) -> Option<Millis> {
    let dt = day.at((minutes / 60) as i8, (minutes % 60) as i8, 0, 0);
    Some(dt.to_zoned(tz.clone()).ok()?.timestamp().as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> Millis {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn a_morning_weight_slot_opens_at_local_midnight_in_winter_and_in_summer() {
        let london = TimeZone::get("Europe/London").unwrap();
        let winter = current_slot(&[600], ms("2026-01-15T10:30:00Z"), &london).unwrap();
        assert_eq!(winter.due_at, ms("2026-01-15T10:00:00Z"));
        assert_eq!(winter.opens_at, ms("2026-01-15T00:00:00Z"));
        // BST: 10:00 local is 09:00 UTC.
        let summer = current_slot(&[600], ms("2026-07-15T09:30:00Z"), &london).unwrap();
        assert_eq!(summer.due_at, ms("2026-07-15T09:00:00Z"));
        assert_eq!(summer.opens_at, ms("2026-07-14T23:00:00Z"));
        assert_eq!(summer.label, "10:00");
        // Before today's due time, yesterday's slot is the current one.
        let early = current_slot(&[600], ms("2026-01-15T08:00:00Z"), &london).unwrap();
        assert_eq!(early.due_at, ms("2026-01-14T10:00:00Z"));
    }

    #[test]
    fn twice_daily_slots_open_at_the_previous_due_time() {
        let utc = TimeZone::UTC;
        let s = current_slot(&[9 * 60, 18 * 60], ms("2026-03-02T19:00:00Z"), &utc).unwrap();
        assert_eq!(s.due_at, ms("2026-03-02T18:00:00Z"));
        assert_eq!(s.opens_at, ms("2026-03-02T09:00:00Z"));
        let s = current_slot(&[9 * 60, 18 * 60], ms("2026-03-02T12:00:00Z"), &utc).unwrap();
        assert_eq!(s.opens_at, ms("2026-03-02T00:00:00Z"));
    }
}
