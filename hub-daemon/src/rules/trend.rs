//! Trends: what no single reading shows — a heart-failure patient gaining fluid over days, a NEWS2 creeping up, a
//! pulse that stays fast for an hour, a temperature climbing. Pure functions of a series and `now`.
//!
//! Each detector takes `active` (is its alert open?) and applies a looser test when it is, so a value hovering at
//! the limit does not raise and resolve over and over (hysteresis). Sustained detectors need the window covered by
//! data (three quarters of it), so a few readings cannot stand for an hour, and stale data never fires one.

use std::collections::VecDeque;

use crate::clock::Millis;
use crate::config::Trends;

/// One patient's recent values of one code, in observation-time order, at most one per `bucket_ms` (the latest),
/// kept for `keep_ms` — so a continuous oximeter costs at most a point a minute.
#[derive(Debug, Clone)]
pub struct Series {
    points: VecDeque<(Millis, f64)>,
    keep_ms: Millis,
    bucket_ms: Millis,
}

impl Series {
    pub fn new(keep_ms: Millis, bucket_ms: Millis) -> Series {
        Series {
            points: VecDeque::new(),
            keep_ms,
            bucket_ms: bucket_ms.max(1),
        }
    }

    /// Adds a value observed at `at`; a late value goes into its place.
    pub fn push(&mut self, at: Millis, v: f64) {
        let bucket = at.div_euclid(self.bucket_ms);
        let pos = self.points.partition_point(|(t, _)| *t <= at);
        if pos > 0 && self.points[pos - 1].0.div_euclid(self.bucket_ms) == bucket {
            self.points[pos - 1] = (at, v);
        } else {
            self.points.insert(pos, (at, v));
        }
        let newest = self.points.back().map_or(at, |p| p.0);
        while self
            .points
            .front()
            .is_some_and(|(t, _)| *t < newest - self.keep_ms)
        {
            self.points.pop_front();
        }
    }

    pub fn latest(&self) -> Option<(Millis, f64)> {
        self.points.back().copied()
    }

    /// Points observed in `[from, to]`.
    pub fn between(&self, from: Millis, to: Millis) -> impl Iterator<Item = (Millis, f64)> + '_ {
        self.points
            .iter()
            .copied()
            .filter(move |(t, _)| *t >= from && *t <= to)
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// Weight gain: the latest weight minus the lowest in the window before it. `Some(gain)` when it exceeds the limit
/// (by more than limit − 0.5 kg while the alert is open).
pub fn weight_gain(s: &Series, now: Millis, cfg: &Trends, active: bool) -> Option<Gain> {
    let (at, latest) = s.latest().filter(|(t, _)| *t <= now)?;
    let window = cfg.weight_gain_window_s as Millis * 1000;
    let (from_at, lowest) = s
        .between(at - window, at - 1)
        .min_by(|a, b| a.1.total_cmp(&b.1))?;
    let gain = latest - lowest;
    let limit = if active {
        cfg.weight_gain_kg - 0.5
    } else {
        cfg.weight_gain_kg
    };
    (gain > limit).then_some(Gain {
        from: lowest,
        to: latest,
        from_at,
        to_at: at,
    })
}

/// A rise from `from` (observed at `from_at`) to `to` (at `to_at`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gain {
    pub from: f64,
    pub to: f64,
    pub from_at: Millis,
    pub to_at: Millis,
}

impl Gain {
    pub fn delta(&self) -> f64 {
        self.to - self.from
    }
}

/// A value beyond a limit for most of a window ending now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sustained {
    /// Share of the window's points beyond the limit.
    pub fraction: f64,
    pub points: usize,
    pub limit: f64,
}

/// At least `fraction` of the points in `(now − window, now]` are beyond `limit` (above when `above`), the points
/// cover three quarters of the window, and there are at least four. While the alert is open, half the points do.
pub fn sustained(
    s: &Series,
    now: Millis,
    window_ms: Millis,
    limit: f64,
    above: bool,
    fraction: f64,
    active: bool,
) -> Option<Sustained> {
    let pts: Vec<(Millis, f64)> = s.between(now - window_ms + 1, now).collect();
    let (first, last) = (pts.first()?.0, pts.last()?.0);
    if pts.len() < 4 || last - first < window_ms * 3 / 4 {
        return None;
    }
    let beyond = pts
        .iter()
        .filter(|(_, v)| if above { *v > limit } else { *v < limit })
        .count();
    let share = beyond as f64 / pts.len() as f64;
    let need = if active { 0.5 } else { fraction };
    (share >= need).then_some(Sustained {
        fraction: share,
        points: pts.len(),
        limit,
    })
}

/// Temperature rising: the latest is at least `temp_rise_c` above the lowest in the window and at least
/// `temp_rise_min_c` (0.3 °C less of each while the alert is open).
pub fn temperature_rising(s: &Series, now: Millis, cfg: &Trends, active: bool) -> Option<Gain> {
    let (at, latest) = s.latest().filter(|(t, _)| *t <= now)?;
    let window = cfg.temp_rise_window_s as Millis * 1000;
    let (from_at, lowest) = s
        .between(at - window, at - 1)
        .min_by(|a, b| a.1.total_cmp(&b.1))?;
    let slack = if active { 0.3 } else { 0.0 };
    let rising = latest - lowest >= cfg.temp_rise_c - slack - 1e-9
        && latest >= cfg.temp_rise_min_c - slack - 1e-9;
    rising.then_some(Gain {
        from: lowest,
        to: latest,
        from_at,
        to_at: at,
    })
}

/// One NEWS2 score for the trend: its time and each parameter's subscore in chart order (`None`: not scored).
pub type ScoredAt = (Millis, [Option<u8>; 7]);

/// NEWS2 rising: compared like for like — on the parameters scored both then and now — the latest score is at
/// least `news2_rise` above an earlier one in the window (one less while the alert is open), so a parameter scored
/// for the first time, or one gone stale, is not a rise or a fall. Returns the largest such rise.
pub fn news2_rising(history: &VecDeque<ScoredAt>, cfg: &Trends, active: bool) -> Option<Gain> {
    let &(at, latest) = history.back()?;
    let window = cfg.news2_rise_window_s as Millis * 1000;
    let need = if active {
        cfg.news2_rise.saturating_sub(1).max(1)
    } else {
        cfg.news2_rise
    };
    history
        .iter()
        .filter(|(t, _)| *t >= at - window && *t < at)
        .filter_map(|(t, earlier)| {
            let common = latest
                .iter()
                .zip(earlier)
                .filter_map(|(l, e)| Some((u32::from((*l)?), u32::from((*e)?))));
            let (now_sum, then_sum, n) =
                common.fold((0, 0, 0), |(a, b, n), (l, e)| (a + l, b + e, n + 1));
            (n > 0).then_some((*t, then_sum, now_sum))
        })
        .filter(|(_, then_sum, now_sum)| *now_sum >= then_sum + u32::from(need))
        .max_by_key(|(t, then_sum, now_sum)| (now_sum - then_sum, -*t))
        .map(|(from_at, from, to)| Gain {
            from: from as f64,
            to: to as f64,
            from_at,
            to_at: at,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Millis = 60_000;
    const HOUR: Millis = 60 * MIN;
    const DAY: Millis = 24 * HOUR;

    fn series(points: &[(Millis, f64)]) -> Series {
        let mut s = Series::new(4 * DAY, MIN);
        for &(t, v) in points {
            s.push(t, v);
        }
        s
    }

    #[test]
    fn weight_gain_over_three_days_needs_more_than_two_kilograms() {
        let cfg = Trends::default();
        let s = series(&[(0, 80.0), (DAY, 80.6), (2 * DAY, 81.4), (3 * DAY, 82.0)]);
        assert_eq!(
            weight_gain(&s, 3 * DAY, &cfg, false),
            None,
            "2.0 kg is not more than 2"
        );
        let s = series(&[(0, 80.0), (DAY, 80.6), (2 * DAY, 81.4), (3 * DAY, 82.1)]);
        let g = weight_gain(&s, 3 * DAY, &cfg, false).unwrap();
        assert!((g.delta() - 2.1).abs() < 1e-9);
        assert_eq!(g.from_at, 0);
        // Older than the window does not count: 4 days ago was lighter, but 3 days is the window.
        let s = series(&[(0, 78.0), (DAY + 1, 80.5), (4 * DAY, 82.1)]);
        assert_eq!(weight_gain(&s, 4 * DAY, &cfg, false), None);
        // Hysteresis: an open alert stays while the gain is above 1.5 kg.
        let s = series(&[(0, 80.0), (DAY, 81.7)]);
        assert!(weight_gain(&s, DAY, &cfg, true).is_some());
        assert!(weight_gain(&s, DAY, &cfg, false).is_none());
    }

    #[test]
    fn series_keeps_one_point_per_bucket_in_time_order_and_forgets_old_ones() {
        let mut s = Series::new(HOUR, MIN);
        s.push(10_000, 1.0);
        s.push(20_000, 2.0); // same minute: replaces
        s.push(5 * MIN, 5.0);
        s.push(3 * MIN, 3.0); // late: goes into its place
        let pts: Vec<_> = s.between(0, HOUR).collect();
        assert_eq!(pts, vec![(20_000, 2.0), (3 * MIN, 3.0), (5 * MIN, 5.0)]);
        s.push(2 * HOUR, 9.0);
        assert_eq!(
            s.len(),
            1,
            "points more than keep_ms older than the newest are gone"
        );
    }

    #[test]
    fn sustained_tachycardia_needs_most_of_a_covered_window() {
        let minutes =
            |f: &dyn Fn(i64) -> f64| series(&(0..=60).map(|m| (m * MIN, f(m))).collect::<Vec<_>>());
        let fast = minutes(&|m| if m % 10 == 0 { 95.0 } else { 112.0 });
        let r = sustained(&fast, 60 * MIN, HOUR, 100.0, true, 0.8, false).unwrap();
        assert!(r.fraction > 0.8);
        let bursts = minutes(&|m| if m % 3 == 0 { 115.0 } else { 92.0 });
        assert_eq!(
            sustained(&bursts, 60 * MIN, HOUR, 100.0, true, 0.8, false),
            None
        );
        // Three readings in the last ten minutes cannot stand for an hour.
        let few = series(&[(50 * MIN, 120.0), (55 * MIN, 121.0), (60 * MIN, 122.0)]);
        assert_eq!(
            sustained(&few, 60 * MIN, HOUR, 100.0, true, 0.8, false),
            None
        );
        // Stale: an hour of tachycardia that ended two hours ago fires nothing now.
        assert_eq!(
            sustained(&fast, 3 * HOUR, HOUR, 100.0, true, 0.8, false),
            None
        );
        // Desaturation is the same test, below.
        let low = minutes(&|_| 91.0);
        assert!(sustained(&low, 60 * MIN, HOUR, 94.0, false, 0.8, false).is_some());
    }

    #[test]
    fn temperature_rising_needs_a_rise_and_a_raised_value() {
        let cfg = Trends::default();
        let s = series(&[(0, 36.6), (6 * HOUR, 37.1), (12 * HOUR, 37.7)]);
        assert!(temperature_rising(&s, 12 * HOUR, &cfg, false).is_some());
        let cold = series(&[(0, 35.6), (12 * HOUR, 36.7)]);
        assert_eq!(
            temperature_rising(&cold, 12 * HOUR, &cfg, false),
            None,
            "a rise to normal"
        );
    }

    #[test]
    fn news2_rise_of_two_within_a_day() {
        let cfg = Trends::default();
        let all = |v: u8| {
            [
                Some(v),
                Some(0),
                Some(0),
                Some(0),
                Some(0),
                Some(0),
                Some(0),
            ]
        };
        let h: VecDeque<ScoredAt> = [(0, all(1)), (6 * HOUR, all(2)), (12 * HOUR, all(3))].into();
        let g = news2_rising(&h, &cfg, false).unwrap();
        assert_eq!((g.from, g.to), (1.0, 3.0));
        let h: VecDeque<ScoredAt> = [(0, all(1)), (25 * HOUR, all(3))].into();
        assert_eq!(
            news2_rising(&h, &cfg, false),
            None,
            "the low was more than 24 h before"
        );
        // Consciousness (3) scored only now: not a rise; respiration went 0 → 2 on both: a rise of 2.
        let then = [Some(0), Some(1), None, Some(0), Some(0), None, Some(0)];
        let now = [Some(2), Some(1), None, Some(0), Some(0), Some(3), Some(0)];
        let h: VecDeque<ScoredAt> = [(0, then), (HOUR, now)].into();
        let g = news2_rising(&h, &cfg, false).unwrap();
        assert_eq!(
            (g.from, g.to),
            (1.0, 3.0),
            "like for like: consciousness left out"
        );
        let h: VecDeque<ScoredAt> = [(0, all(2)), (HOUR, all(3))].into();
        assert_eq!(news2_rising(&h, &cfg, false), None);
        assert!(
            news2_rising(&h, &cfg, true).is_some(),
            "an open alert holds at a rise of 1"
        );
    }
}
