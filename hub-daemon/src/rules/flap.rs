//! Flap detection: a value hovering at a threshold raises and resolves the same alert again and again — the alarm
//! fatigue nurses complain of most. An episode group raised `count` times within `window` is flapping: its alert is
//! held open through recoveries and resolves only after a quiet period.

use std::collections::VecDeque;

use crate::clock::Millis;

#[derive(Debug, Clone, Default)]
pub struct Flap {
    raises: VecDeque<Millis>,
    /// Since when the value has been recovered while the alert was held open.
    pub held_since: Option<Millis>,
}

impl Flap {
    /// Records a raise (or a new breach of a held alert) at `now`.
    pub fn note_raise(&mut self, now: Millis, window_ms: Millis) {
        self.raises.push_back(now);
        self.held_since = None;
        while self.raises.front().is_some_and(|t| *t < now - window_ms) {
            self.raises.pop_front();
        }
    }

    /// Raised at least `count` times within the window ending `now`.
    pub fn flapping(&self, now: Millis, window_ms: Millis, count: u32) -> bool {
        self.raises
            .iter()
            .filter(|t| **t >= now - window_ms)
            .count()
            >= count as usize
    }

    /// Raises within the window ending `now`.
    pub fn raises(&self, now: Millis, window_ms: Millis) -> usize {
        self.raises
            .iter()
            .filter(|t| **t >= now - window_ms)
            .count()
    }

    /// Held and quiet for `quiet_ms`: time to resolve.
    pub fn quiet(&self, now: Millis, quiet_ms: Millis) -> bool {
        self.held_since.is_some_and(|t| now - t >= quiet_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Millis = 60_000;

    #[test]
    fn three_raises_in_an_hour_is_flapping_and_old_ones_age_out() {
        let mut f = Flap::default();
        for t in [0, 10 * MIN, 20 * MIN] {
            f.note_raise(t, 60 * MIN);
        }
        assert!(f.flapping(20 * MIN, 60 * MIN, 3));
        assert!(
            !f.flapping(70 * MIN, 60 * MIN, 3),
            "the first raise is over an hour old"
        );
        f.held_since = Some(20 * MIN);
        assert!(!f.quiet(49 * MIN, 30 * MIN));
        assert!(f.quiet(50 * MIN, 30 * MIN));
        f.note_raise(55 * MIN, 60 * MIN);
        assert_eq!(f.held_since, None, "a new breach ends the quiet period");
    }
}
