//! Weight settling: turns a stream of load-cell readings into one weight per weighing.
//!
//! Someone stepping on a scale rocks it for a second or two. A reading is emitted once the last
//! [`SettleConfig::window`] samples all lie within ±[`SettleConfig::tolerance_g`] of their mean, the mean being at
//! least [`SettleConfig::min_load_g`]; then nothing more until the load drops below `min_load_g` (the person stepped
//! off) — one weighing, one reading. The weight is the window mean, rounded to 10 g, in kg with two decimals
//! (the Weight Scale Service's 0.005 kg resolution is finer than a household load cell can settle).

use hearth_protocol::{Code, Observation, Quantity};

/// Counts-to-grams calibration of one load cell: `grams = (raw − offset) × num / den`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Calibration {
    /// Raw reading with nothing on the scale (tare).
    pub offset: i32,
    pub num: i32,
    pub den: i32,
}

impl Calibration {
    pub fn grams(&self, raw: i32) -> i32 {
        let g = (raw as i64 - self.offset as i64) * self.num as i64 / (self.den as i64).max(1);
        g.clamp(i32::MIN as i64, i32::MAX as i64) as i32
    }
}

/// Settling parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SettleConfig {
    /// Samples that must agree (HX711 at 10 samples/s: 20 = 2 s).
    pub window: usize,
    pub tolerance_g: i32,
    pub min_load_g: i32,
}

impl Default for SettleConfig {
    /// 20 samples within ±50 g, at least 2 kg (the plausible minimum for [`Code::Weight`]).
    fn default() -> Self {
        SettleConfig {
            window: 20,
            tolerance_g: 50,
            min_load_g: 2000,
        }
    }
}

/// The settling state machine over a ring of up to `N` gram readings (`N ≥ window`).
#[derive(Clone, Debug)]
pub struct WeightSettler<const N: usize> {
    config: SettleConfig,
    ring: [i32; N],
    next: usize,
    filled: usize,
    reported: bool,
}

impl<const N: usize> WeightSettler<N> {
    /// `config.window` is capped at `N`.
    pub fn new(mut config: SettleConfig) -> Self {
        config.window = config.window.clamp(1, N.max(1));
        WeightSettler {
            config,
            ring: [0; N],
            next: 0,
            filled: 0,
            reported: false,
        }
    }

    /// Feeds one reading in grams; returns the settled weight once per weighing.
    pub fn push(&mut self, grams: i32) -> Option<Observation> {
        let c = self.config;
        if grams < c.min_load_g {
            // Off the scale (or not yet on): the next weighing may report again.
            self.reported = false;
            self.filled = 0;
            return None;
        }
        if let Some(slot) = self.ring.get_mut(self.next) {
            *slot = grams;
        }
        self.next = (self.next + 1) % N.max(1);
        self.filled = (self.filled + 1).min(N);
        if self.reported || self.filled < c.window {
            return None;
        }
        // The last `window` readings, newest backwards.
        let last = |k: usize| {
            self.ring
                .get((self.next + N - 1 - k) % N)
                .copied()
                .unwrap_or(0)
        };
        let sum: i64 = (0..c.window).map(|k| last(k) as i64).sum();
        let mean = sum / c.window as i64;
        let settled = (0..c.window).all(|k| (last(k) as i64 - mean).abs() <= c.tolerance_g as i64);
        if !settled || mean < c.min_load_g as i64 {
            return None;
        }
        self.reported = true;
        // Round to 10 g: kg with two decimals.
        let centi_kg = (mean + 5).div_euclid(10);
        Some(Observation::number(
            Code::Weight,
            Quantity::new(centi_kg as i32, -2),
        ))
    }
}
