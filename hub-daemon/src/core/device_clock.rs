//! A device whose clock is wrong: its readings arrive "stale" one after another, so no value rule ever fires on them
//! (invariant: stale data never alarms) and the device is silently switched off as far as alerting goes (hazard H05,
//! found by the simulated cohort: a cuff running 6 h slow). This raises a technical alert instead.
//!
//! Told apart from a phone or a board that syncs late: a wrong clock gives the same delay every time and readings
//! arrive as spread out as they were taken; a backlog arrives in a burst (and, from a sparse device, with delays from
//! minutes to hours).

use std::collections::VecDeque;

use hearth_protocol::json::Severity;

use super::Core;
use crate::clock::{Clock, Millis};
use crate::model::{AlertKind, AlertState, Reading, TimeSource};
use crate::store::WriteBatch;

/// Consecutive stale arrivals needed before the clock is suspected.
const RUN: usize = 5;
/// Their delays agree within this: a clock offset, not a backlog.
const SPREAD_MS: Millis = 10 * 60_000;

/// A device's last readings as (device time, arrival time), newest last.
#[derive(Debug, Default)]
pub(super) struct Delays(VecDeque<(Millis, Millis)>);

impl Delays {
    /// Records a reading; returns whether the one before it arrived stale (or there was none, as after a restart).
    fn push(&mut self, observed_at: Millis, received_at: Millis, stale_ms: Millis) -> bool {
        let was_late = self.0.back().is_none_or(|p| delay(p) > stale_ms);
        if self.0.len() == RUN {
            self.0.pop_front();
        }
        self.0.push_back((observed_at, received_at));
        was_late
    }

    /// The typical delay if the last `RUN` readings all arrived stale, with about the same delay, and spread out in
    /// arrival as they were in device time (a backlog arrives in a burst, however regular its delays look).
    fn offset(&self, stale_ms: Millis) -> Option<Millis> {
        if self.0.len() < RUN || self.0.iter().any(|p| delay(p) <= stale_ms) {
            return None;
        }
        let spread = self.0.iter().map(delay).max()? - self.0.iter().map(delay).min()?;
        let (first, last) = (self.0.front()?, self.0.back()?);
        let (observed, arrived) = (last.0 - first.0, last.1 - first.1);
        (spread <= SPREAD_MS && observed > 0 && 2 * arrived >= observed)
            .then(|| delay(&self.0[RUN / 2]))
    }
}

/// Arrival time minus device time.
fn delay((observed_at, received_at): &(Millis, Millis)) -> Millis {
    received_at - observed_at
}

impl<C: Clock> Core<C> {
    /// After each reading with a device time: raises `device_clock` when the device's clock looks wrong, resolves it
    /// when a reading arrives on time again.
    pub(super) fn device_clock_check(&mut self, r: &Reading, now: Millis, batch: &mut WriteBatch) {
        if r.time_source != TimeSource::Device {
            return;
        }
        let stale_ms = (self.cfg.alerting.stale_after_s as Millis) * 1000;
        let delays = self.delays.entry(r.device.clone()).or_default();
        let was_late = delays.push(r.observed_at, r.received_at, stale_ms);
        let offset = delays.offset(stale_ms);
        let on_time = r.received_at - r.observed_at <= stale_ms;
        // An open alert is resolved by the first reading on time after late ones; a device on time throughout has
        // nothing to check (the common case, on the hot path).
        if offset.is_none() && !(on_time && was_late) {
            return;
        }
        let key = (
            self.patient_or_home(&r.device),
            format!("technical:device_clock:{}", r.device),
        );
        let open = self.open.contains_key(&key);
        match offset {
            Some(off) if !open => {
                let message = format!(
                    "device {}: its last {RUN} readings arrived about {} min after their device time — its clock is \
                     probably wrong; they are stored but no value rule fires on them. Set the device's clock.",
                    r.device,
                    off / 60_000
                );
                self.raise(
                    &key.0,
                    &key.1,
                    AlertKind::Technical,
                    "device_clock",
                    Severity::Medium,
                    None,
                    message,
                    now,
                    batch,
                );
            }
            None if open && on_time => {
                let message = format!("device {}: readings arrive on time again", r.device);
                self.set_state(&key, AlertState::Resolved, message, now, batch);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Millis = 60_000;

    #[test]
    fn a_steady_large_delay_is_a_clock_offset_and_a_backlog_is_not() {
        let stale = 15 * MIN;
        let t0 = 1_000 * MIN;
        // A cuff 6 h slow, a reading every 30 min.
        let mut slow = Delays::default();
        for i in 0..RUN as i64 {
            assert_eq!(slow.offset(stale), None, "not before {RUN} readings");
            let arrived = t0 + i * 30 * MIN;
            slow.push(arrived - 360 * MIN - i * MIN, arrived, stale);
        }
        assert_eq!(slow.offset(stale), Some(362 * MIN));
        // Four hours of sparse readings delivered at once: delays from 4 h down to 40 min.
        let mut sparse = Delays::default();
        for i in 0..RUN as i64 {
            sparse.push(t0 - 240 * MIN + i * 50 * MIN, t0 + i * 100, stale);
        }
        assert_eq!(sparse.offset(stale), None);
        // An oximeter every 30 s, flushed after an hour offline: regular delays, but all arriving in a burst.
        let mut burst = Delays::default();
        for i in 0..RUN as i64 {
            burst.push(t0 - 60 * MIN + i * 30_000, t0 + i * 50, stale);
        }
        assert_eq!(burst.offset(stale), None);
        let now = t0 + 200 * MIN;
        assert!(slow.push(now - MIN, now, stale), "after late ones");
        assert_eq!(slow.offset(stale), None, "one reading on time clears it");
        assert!(!slow.push(now, now + MIN, stale), "on time after on time");
    }
}
