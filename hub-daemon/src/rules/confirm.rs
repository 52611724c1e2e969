//! Confirmation of a NEWS2 parameter before its new value enters the score.
//!
//! A home device's single reading is often wrong in a way the device cannot flag: an oximeter on a moving hand reads
//! 84 %, a thermometer under a tongue that just drank reads 35.4 °C, a breath count is miscounted. Scored at once,
//! each is a NEWS2 alert (a single 3 is `low-medium`) and a "NEWS2 rising" alert, both false. Ward practice is to
//! re-measure an unexpected value; the hub does the same: a value that would *change* its parameter's subscore is
//! held until a second reading of that parameter, at least `after` later, changes it the same way. A reading that
//! agrees with the current subscore refutes the held one. The home display is asked for the repeat reading, so a
//! true change is confirmed within minutes when someone is there to take it; otherwise by the next scheduled
//! reading (within `within`), or by the next readings of a continuous device.
//!
//! Measured on the simulated cohort (`tests/tests/cohort.rs`, docs/clinical-rules.md): see the figures there.

use crate::clock::Millis;

use super::news2::Observed;

/// `[clinical.news2_confirm]` in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confirm {
    /// A confirming reading must be at least this much later than the held one (0: no confirmation).
    pub after_ms: Millis,
    /// A held value older than this confirms nothing; a current subscore older than this no longer counts.
    pub within_ms: Millis,
}

/// A value with the subscore it alone would get.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub value: Observed<f64>,
    pub score: u8,
}

/// What to do with a new reading of a parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Same subscore as the current value (or confirmation off): it replaces the current value now. `refuted` is the
    /// held value this reading contradicted, if any.
    Accept { refuted: Option<Scored> },
    /// It changes the subscore: held. `first` when nothing was held in that direction before (ask for a repeat).
    Hold { first: bool },
    /// It confirms the held change: it replaces the current value now.
    Confirmed { held: Scored },
}

/// The subscore `new` is measured from: the current value's, or normal (0) when there is no current value within
/// `within`.
pub fn base(cfg: &Confirm, current: Option<Scored>, new: Scored) -> u8 {
    current
        .filter(|c| new.value.at - c.value.at <= cfg.within_ms)
        .map_or(0, |c| c.score)
}

/// Judges `new` against the parameter's `current` (scored) value and its `held` one. Returns the verdict and what is
/// held afterwards.
pub fn judge(
    cfg: &Confirm,
    current: Option<Scored>,
    held: Option<Scored>,
    new: Scored,
) -> (Verdict, Option<Scored>) {
    if cfg.after_ms == 0 {
        return (Verdict::Accept { refuted: None }, None);
    }
    let base = base(cfg, current, new);
    if new.score == base {
        return (Verdict::Accept { refuted: held }, None);
    }
    let rising = new.score > base;
    let same_way = held.filter(|h| {
        (h.score > base) == rising
            && h.score != base
            && new.value.at >= h.value.at
            && new.value.at - h.value.at <= cfg.within_ms
    });
    match same_way {
        Some(h) if new.value.at - h.value.at >= cfg.after_ms => {
            (Verdict::Confirmed { held: h }, None)
        }
        // Too soon to confirm: the first held value stays (a run of readings confirms once it has lasted `after`).
        Some(h) => (Verdict::Hold { first: false }, Some(h)),
        None => (Verdict::Hold { first: true }, Some(new)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Millis = 60_000;
    const HOUR: Millis = 60 * MIN;
    const CFG: Confirm = Confirm {
        after_ms: 10 * MIN,
        within_ms: 36 * HOUR,
    };

    fn s(at: Millis, value: f64, score: u8) -> Scored {
        Scored {
            value: Observed::new(value, at),
            score,
        }
    }

    #[test]
    fn a_reading_with_the_current_subscore_is_accepted_at_once() {
        let (v, held) = judge(&CFG, Some(s(0, 97.0, 0)), None, s(MIN, 96.0, 0));
        assert_eq!(v, Verdict::Accept { refuted: None });
        assert_eq!(held, None);
    }

    #[test]
    fn a_single_low_reading_is_held_and_the_next_normal_one_refutes_it() {
        let (v, held) = judge(&CFG, Some(s(0, 97.0, 0)), None, s(5 * MIN, 84.0, 3));
        assert_eq!(v, Verdict::Hold { first: true });
        let (v, held) = judge(&CFG, Some(s(0, 97.0, 0)), held, s(10 * MIN, 96.0, 0));
        assert_eq!(
            v,
            Verdict::Accept {
                refuted: Some(s(5 * MIN, 84.0, 3))
            }
        );
        assert_eq!(held, None);
    }

    #[test]
    fn a_low_run_is_confirmed_once_it_has_lasted_the_delay() {
        let cur = Some(s(0, 97.0, 0));
        let (_, held) = judge(&CFG, cur, None, s(5 * MIN, 91.0, 3));
        let (v, held) = judge(&CFG, cur, held, s(10 * MIN, 90.0, 3));
        assert_eq!(v, Verdict::Hold { first: false }, "5 min is too soon");
        assert_eq!(
            held,
            Some(s(5 * MIN, 91.0, 3)),
            "the first held value stays"
        );
        let (v, held) = judge(&CFG, cur, held, s(15 * MIN, 92.0, 2));
        assert_eq!(
            v,
            Verdict::Confirmed {
                held: s(5 * MIN, 91.0, 3)
            },
            "any worse subscore confirms a worsening"
        );
        assert_eq!(held, None);
    }

    #[test]
    fn twice_daily_spot_checks_confirm_with_the_next_check() {
        let cur = Some(s(0, 37.0, 0));
        let (_, held) = judge(&CFG, cur, None, s(12 * HOUR, 38.6, 1));
        let (v, _) = judge(&CFG, cur, held, s(24 * HOUR, 38.4, 1));
        assert!(matches!(v, Verdict::Confirmed { .. }));
    }

    #[test]
    fn an_improvement_is_held_too_and_a_change_the_other_way_starts_over() {
        let cur = Some(s(0, 88.0, 3));
        let (v, held) = judge(&CFG, cur, None, s(MIN, 97.0, 0));
        assert_eq!(
            v,
            Verdict::Hold { first: true },
            "one good reading resolves nothing"
        );
        // From 3: a 2 is better, the earlier 0 too: the same way, confirmed.
        let (v, _) = judge(&CFG, cur, held, s(20 * MIN, 93.0, 2));
        assert!(matches!(v, Verdict::Confirmed { .. }));
        // A worse reading after a better one held: held anew.
        let cur = Some(s(0, 95.0, 1));
        let (_, held) = judge(&CFG, cur, None, s(MIN, 97.0, 0));
        let (v, held) = judge(&CFG, cur, held, s(20 * MIN, 88.0, 3));
        assert_eq!(v, Verdict::Hold { first: true });
        assert_eq!(held, Some(s(20 * MIN, 88.0, 3)));
    }

    #[test]
    fn old_values_confirm_nothing() {
        let (_, held) = judge(&CFG, Some(s(0, 97.0, 0)), None, s(HOUR, 84.0, 3));
        let (v, _) = judge(&CFG, Some(s(0, 97.0, 0)), held, s(40 * HOUR, 85.0, 3));
        assert_eq!(
            v,
            Verdict::Hold { first: true },
            "held 39 h before: starts over"
        );
        // No current value within the window: measured from normal, so a normal reading is accepted.
        let (v, _) = judge(&CFG, Some(s(0, 85.0, 3)), None, s(40 * HOUR, 97.0, 0));
        assert_eq!(v, Verdict::Accept { refuted: None });
    }

    #[test]
    fn no_delay_means_no_confirmation() {
        let off = Confirm { after_ms: 0, ..CFG };
        let (v, held) = judge(&off, Some(s(0, 97.0, 0)), None, s(MIN, 84.0, 3));
        assert_eq!(v, Verdict::Accept { refuted: None });
        assert_eq!(held, None);
    }
}
