//! Fall detection from 3-axis acceleration: free fall, then impact, then stillness.
//!
//! The three-phase structure is the classic threshold method (Analog Devices application note AN-1023, N. Jia,
//! "Fall Detection Application by Using 3-Axis Accelerometer ADXL345", 2009: weightlessness, impact, motionless
//! after impact; Bourke, O'Brien and Lyons, "Evaluation of a threshold-based tri-axial accelerometer fall detection
//! algorithm", Gait & Posture 26(2), 2007, for impact thresholds in the 2–3 g range). Hearth's defaults
//! ([`FallConfig::default`]) are design parameters inside those ranges, not clinically validated values:
//!
//! | phase | condition | default |
//! |---|---|---|
//! | free fall | `|a| <` [`FallConfig::free_fall_mg`] for at least [`FallConfig::free_fall_min_ms`] | 0.4 g, 80 ms |
//! | impact | `|a| >` [`FallConfig::impact_mg`] within [`FallConfig::impact_window_ms`] of the free fall's end | 2.5 g, 1 s |
//! | stillness | `||a| − 1 g| ≤` [`FallConfig::still_tolerance_mg`] continuously for [`FallConfig::still_ms`], starting within [`FallConfig::settle_ms`] of the impact | 0.25 g, 2 s, 2 s |
//!
//! Sitting down hard dips to ≈ 0.6–0.8 g and lands below 2 g, so it fails the first two phases; a fall after which
//! the person gets straight up fails the last (and is not reported by this detector). Magnitudes are compared
//! squared, in integer milli-g, so no square root or float is needed.

use hearth_protocol::{Code, Observation, Quantity};

use crate::drivers::lis3dh::MilliG;

/// Thresholds and the sample period. All times in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FallConfig {
    pub sample_period_ms: u32,
    pub free_fall_mg: u32,
    pub free_fall_min_ms: u32,
    pub impact_mg: u32,
    pub impact_window_ms: u32,
    pub still_tolerance_mg: u32,
    pub still_ms: u32,
    pub settle_ms: u32,
}

impl Default for FallConfig {
    /// The thresholds in the module table, at 100 samples per second.
    fn default() -> Self {
        FallConfig {
            sample_period_ms: 10,
            free_fall_mg: 400,
            free_fall_min_ms: 80,
            impact_mg: 2500,
            impact_window_ms: 1000,
            still_tolerance_mg: 250,
            still_ms: 2000,
            settle_ms: 2000,
        }
    }
}

/// Where the detector is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FallState {
    Idle,
    /// Below the free-fall threshold for `ms`.
    FreeFall {
        ms: u32,
    },
    /// Free fall over; waiting `ms` so far for an impact.
    AwaitImpact {
        ms: u32,
    },
    /// Impact seen `since_impact_ms` ago; still for `still_ms`.
    AwaitStill {
        since_impact_ms: u32,
        still_ms: u32,
    },
}

/// A confirmed fall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FallEvent {
    /// Peak acceleration at impact, milli-g.
    pub impact_mg: u32,
    /// Free-fall duration, ms.
    pub free_fall_ms: u32,
}

impl FallEvent {
    /// The [`Code::Fall`] event observation (1 = fall detected).
    pub const fn observation(&self) -> Observation {
        Observation::number(Code::Fall, Quantity::new(1, 0))
    }
}

/// The fall-detection state machine; feed it every accelerometer sample.
#[derive(Clone, Debug)]
pub struct FallDetector {
    config: FallConfig,
    state: FallState,
    free_fall_ms: u32,
    peak_sq: u64,
}

fn sq(mg: u32) -> u64 {
    mg as u64 * mg as u64
}

fn magnitude_sq(a: MilliG) -> u64 {
    let s = |v: i32| (v as i64 * v as i64) as u64;
    s(a.x) + s(a.y) + s(a.z)
}

impl FallDetector {
    pub fn new(config: FallConfig) -> Self {
        FallDetector {
            config,
            state: FallState::Idle,
            free_fall_ms: 0,
            peak_sq: 0,
        }
    }

    pub fn state(&self) -> FallState {
        self.state
    }

    /// Feeds one sample; returns the fall when this sample completes the stillness phase.
    pub fn push(&mut self, a: MilliG) -> Option<FallEvent> {
        let c = self.config;
        let dt = c.sample_period_ms;
        let m2 = magnitude_sq(a);
        let free = m2 < sq(c.free_fall_mg);
        let impact = m2 > sq(c.impact_mg);
        let still = m2 >= sq(1000u32.saturating_sub(c.still_tolerance_mg))
            && m2 <= sq(1000 + c.still_tolerance_mg);
        self.state = match self.state {
            FallState::Idle if free => FallState::FreeFall { ms: dt },
            FallState::Idle => FallState::Idle,
            FallState::FreeFall { ms } if free => FallState::FreeFall { ms: ms + dt },
            FallState::FreeFall { ms } if ms >= c.free_fall_min_ms => {
                self.free_fall_ms = ms;
                if impact {
                    self.peak_sq = m2;
                    FallState::AwaitStill {
                        since_impact_ms: 0,
                        still_ms: 0,
                    }
                } else {
                    FallState::AwaitImpact { ms: dt }
                }
            }
            FallState::FreeFall { .. } => FallState::Idle,
            FallState::AwaitImpact { .. } if impact => {
                self.peak_sq = m2;
                FallState::AwaitStill {
                    since_impact_ms: 0,
                    still_ms: 0,
                }
            }
            FallState::AwaitImpact { ms } if ms + dt > c.impact_window_ms => FallState::Idle,
            FallState::AwaitImpact { ms } => FallState::AwaitImpact { ms: ms + dt },
            FallState::AwaitStill {
                since_impact_ms,
                still_ms,
            } => {
                self.peak_sq = self.peak_sq.max(m2);
                let since = since_impact_ms + dt;
                let still_ms = if still { still_ms + dt } else { 0 };
                if still_ms >= c.still_ms {
                    self.state = FallState::Idle;
                    return Some(FallEvent {
                        impact_mg: isqrt(self.peak_sq),
                        free_fall_ms: self.free_fall_ms,
                    });
                }
                // Stillness must have begun by `settle_ms` after the impact.
                if still_ms == 0 && since > c.settle_ms {
                    FallState::Idle
                } else {
                    FallState::AwaitStill {
                        since_impact_ms: since,
                        still_ms,
                    }
                }
            }
        };
        None
    }
}

/// Integer square root (floor), for reporting the impact peak in milli-g.
fn isqrt(v: u64) -> u32 {
    let mut x = libm::sqrt(v as f64) as u64;
    while x * x > v {
        x -= 1;
    }
    while (x + 1) * (x + 1) <= v {
        x += 1;
    }
    x.min(u32::MAX as u64) as u32
}
