//! Heart rate, SpO2 and a signal-quality index from a window of red/IR PPG samples (MAX30102 counts).
//!
//! Method, per window (typically 8 s at 25 samples/s):
//! 1. **DC**: the mean of each channel. Below [`PpgConfig::min_dc`] nothing is reflected: no finger →
//!    [`Invalid::SensorDisplaced`].
//! 2. **Pulsatile signal**: a short moving average (≈ fs/8) smooths noise, a centred 1 s moving average is the
//!    baseline; pulsatile = baseline − smoothed, so systole (more blood, more absorption, fewer counts) is positive.
//!    Samples within half a baseline window of either end are not analysed (their baseline is truncated).
//! 3. **Heart rate** from systolic peaks on IR: the maximum of each excursion above `0.5 × RMS` that ends with a
//!    return below the baseline (hysteresis, so a dicrotic notch is not a second beat), at least 60/220 s apart.
//!    HR = 60 × (beats − 1) / (time from first to last peak).
//! 4. **SpO2** by the ratio of ratios `R = (AC_red/DC_red) / (AC_ir/DC_ir)`, AC being the RMS of the pulsatile
//!    signal (the same linear filter on both channels, so their ratio is kept), and the linear calibration
//!    `SpO2 ≈ 110 − 25·R`, a widely quoted linear approximation of the empirical calibration curve. The method and
//!    why each sensor needs its own curve (measured against a CO-oximeter) are in Webster (ed.), *Design of Pulse
//!    Oximeters*, 1997; the coefficients are therefore [`PpgConfig`] fields. R below 0.4 gives 100 %; R above 2.4 (below 50 %)
//!    is outside any calibration → [`Invalid::LowSignalQuality`].
//! 5. **Signal quality**: each criterion below is a ratio to its limit; the signal-quality index is
//!    `SQI = 100 × (1 − worst/2)` clamped to 0..=100, so 100 is perfect, 50 is exactly at a limit, and every value
//!    is reported only with SQI ≥ 50:
//!    - perfusion index `PI = 2√2·RMS_ir / DC_ir` (peak-to-peak AC of a sinusoid over DC) below
//!      [`PpgConfig::min_perfusion`] → [`Invalid::LowSignalQuality`] (poor perfusion or a loose sensor);
//!    - fewer than [`PpgConfig::min_beats`] beats → [`Invalid::LowSignalQuality`] (a gate: SQI 0);
//!    - coefficient of variation of beat intervals above [`PpgConfig::max_interval_cv`], of beat amplitudes above
//!      [`PpgConfig::max_amplitude_cv`], or baseline excursion (max − min of the 1 s baseline) above
//!      [`PpgConfig::max_drift`] × the mean beat amplitude → [`Invalid::MotionArtefact`];
//!    - correlation of the red and IR pulsatile signals below [`PpgConfig::min_correlation`] →
//!      [`Invalid::LowSignalQuality`] (a real pulse moves both channels together; noise does not);
//!    - a motion flag from the accelerometer (the caller's) → [`Invalid::MotionArtefact`] whatever the PPG says.
//!
//! Limits: an irregular rhythm (atrial fibrillation) also has a high interval CV and is reported as motion artefact
//! rather than a number; a slow drift in both channels that looks like a pulse is not detected. The validation
//! figures on synthesised waveforms are in `docs/firmware.md` and `firmware/tests/ppg.rs`.

use hearth_protocol::{Code, Invalid, Observation, Quantity, Value};

use crate::drivers::max30102::PpgSample;

/// Thresholds and calibration. [`PpgConfig::new`] gives the defaults documented in `docs/firmware.md`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PpgConfig {
    pub sample_rate_hz: u16,
    /// Mean counts below which no finger is on the sensor.
    pub min_dc: u32,
    /// Lowest perfusion index (peak-to-peak AC / DC of IR, as a fraction: 0.001 = 0.1 %).
    pub min_perfusion: f32,
    pub min_beats: u8,
    pub max_interval_cv: f32,
    pub max_amplitude_cv: f32,
    /// Largest baseline excursion, in mean beat amplitudes.
    pub max_drift: f32,
    pub min_correlation: f32,
    /// SpO2 = `spo2_a − spo2_b · R`.
    pub spo2_a: f32,
    pub spo2_b: f32,
}

impl PpgConfig {
    /// Defaults for `sample_rate_hz` samples per second.
    pub const fn new(sample_rate_hz: u16) -> Self {
        PpgConfig {
            sample_rate_hz,
            min_dc: 20_000,
            min_perfusion: 0.001,
            min_beats: 4,
            max_interval_cv: 0.15,
            max_amplitude_cv: 0.35,
            max_drift: 3.0,
            min_correlation: 0.8,
            spo2_a: 110.0,
            spo2_b: 25.0,
        }
    }
}

/// The figures behind a result, for logs and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PpgQuality {
    /// 0..=100; values are reported only at ≥ 50.
    pub sqi: u8,
    pub beats: u8,
    pub perfusion_index: f32,
    pub ratio_r: f32,
    pub interval_cv: f32,
    pub amplitude_cv: f32,
    pub drift: f32,
    pub correlation: f32,
    /// Heart rate before rounding, /min (0 if fewer than two beats).
    pub heart_rate: f32,
}

/// Heart rate and SpO2 of one window, each a number or the reason it is not one.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PpgReport {
    pub heart_rate: Value,
    pub spo2: Value,
    pub quality: PpgQuality,
}

impl PpgReport {
    fn invalid(why: Invalid, quality: PpgQuality) -> Self {
        PpgReport {
            heart_rate: Value::Invalid(why),
            spo2: Value::Invalid(why),
            quality,
        }
    }

    /// Heart rate (/min) and SpO2 (%) observations.
    pub fn observations(&self) -> [Observation; 2] {
        [
            Observation {
                code: Code::HeartRate,
                value: self.heart_rate,
            },
            Observation {
                code: Code::Spo2,
                value: self.spo2,
            },
        ]
    }
}

/// A tumbling window of `N` samples.
#[derive(Clone, Debug)]
pub struct PpgWindow<const N: usize> {
    red: [u32; N],
    ir: [u32; N],
    len: usize,
}

impl<const N: usize> Default for PpgWindow<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> PpgWindow<N> {
    pub const fn new() -> Self {
        PpgWindow {
            red: [0; N],
            ir: [0; N],
            len: 0,
        }
    }

    /// Adds a sample; returns `true` when the window is full (further samples are ignored until
    /// [`PpgWindow::clear`]).
    pub fn push(&mut self, s: PpgSample) -> bool {
        if let (Some(r), Some(i)) = (self.red.get_mut(self.len), self.ir.get_mut(self.len)) {
            *r = s.red;
            *i = s.ir;
            self.len += 1;
        }
        self.len == N
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Analyses the samples so far, with two `N`-sample `f32` scratch buffers on the stack.
    pub fn analyze(&self, config: &PpgConfig, motion: bool) -> PpgReport {
        let mut sr = [0f32; N];
        let mut si = [0f32; N];
        let n = self.len;
        analyze(
            &self.red[..n],
            &self.ir[..n],
            config,
            motion,
            &mut sr,
            &mut si,
        )
    }
}

/// Analyses one window. `scratch_red` and `scratch_ir` must be at least as long as the shorter of `red` and `ir`
/// (only that many samples are used); `motion` is the caller's accelerometer verdict for the same window.
pub fn analyze(
    red: &[u32],
    ir: &[u32],
    config: &PpgConfig,
    motion: bool,
    scratch_red: &mut [f32],
    scratch_ir: &mut [f32],
) -> PpgReport {
    let mut q = PpgQuality::default();
    let n = red
        .len()
        .min(ir.len())
        .min(scratch_red.len())
        .min(scratch_ir.len());
    let (red, ir) = (&red[..n], &ir[..n]);
    let fs = config.sample_rate_hz.max(1) as usize;
    let base_w = fs | 1;
    let half = base_w / 2;
    // At least two baseline windows analysed, or there is nothing to say.
    if n < 3 * base_w {
        return PpgReport::invalid(Invalid::LowSignalQuality, q);
    }
    let dc_red = mean(red);
    let dc_ir = mean(ir);
    if dc_red < config.min_dc as f32 || dc_ir < config.min_dc as f32 {
        return PpgReport::invalid(Invalid::SensorDisplaced, q);
    }

    let smooth_w = (fs / 8) | 1;
    let drift_red = pulsatile(red, smooth_w, base_w, &mut scratch_red[..n]);
    let drift_ir = pulsatile(ir, smooth_w, base_w, &mut scratch_ir[..n]);
    let pr = &scratch_red[half..n - half];
    let pi = &scratch_ir[half..n - half];

    let rms_red = rms(pr);
    let rms_ir = rms(pi);
    q.perfusion_index = 2.0 * core::f32::consts::SQRT_2 * rms_ir / dc_ir;
    q.ratio_r = if rms_ir > 0.0 {
        (rms_red / dc_red) / (rms_ir / dc_ir)
    } else {
        0.0
    };
    q.correlation = correlation(pr, pi);

    let beats = find_beats(pi, rms_ir * 0.5, fs * 60 / 220);
    q.beats = beats.count.min(u8::MAX as usize) as u8;
    if beats.count >= 2 {
        q.heart_rate = 60.0 * fs as f32 * (beats.count - 1) as f32 / beats.span as f32;
    }
    q.interval_cv = beats.interval_cv;
    q.amplitude_cv = beats.amplitude_cv;
    q.drift = if beats.mean_amplitude > 0.0 {
        drift_ir.max(drift_red * dc_ir / dc_red) / beats.mean_amplitude
    } else {
        f32::INFINITY
    };

    // Each criterion as a ratio to its limit (> 1 fails), with the reason it gives.
    let criteria = [
        (
            config.min_perfusion / q.perfusion_index.max(f32::MIN_POSITIVE),
            Invalid::LowSignalQuality,
        ),
        // A gate rather than a grade: eight beats are not "better" than five.
        (
            if q.beats < config.min_beats { 2.0 } else { 0.0 },
            Invalid::LowSignalQuality,
        ),
        (
            q.interval_cv / config.max_interval_cv,
            Invalid::MotionArtefact,
        ),
        (
            q.amplitude_cv / config.max_amplitude_cv,
            Invalid::MotionArtefact,
        ),
        (q.drift / config.max_drift, Invalid::MotionArtefact),
        (
            (1.0 - q.correlation) / (1.0 - config.min_correlation),
            Invalid::LowSignalQuality,
        ),
    ];
    let worst = criteria.iter().fold(0f32, |m, c| m.max(c.0));
    q.sqi = (100.0 * (1.0 - worst / 2.0)).clamp(0.0, 100.0) as u8;

    if motion {
        return PpgReport::invalid(Invalid::MotionArtefact, q);
    }
    // Perfusion first: with no pulse the beat statistics are noise, and "low signal" is the truer reason.
    if let Some((_, why)) = criteria.first().filter(|c| c.0 > 1.0) {
        return PpgReport::invalid(*why, q);
    }
    if let Some((_, why)) = criteria.iter().find(|c| c.0 > 1.0) {
        return PpgReport::invalid(*why, q);
    }

    let spo2 = config.spo2_a - config.spo2_b * q.ratio_r;
    let spo2 = if spo2 < 50.0 || !spo2.is_finite() {
        Value::Invalid(Invalid::LowSignalQuality)
    } else {
        Value::Number(Quantity::new(round(spo2.min(100.0)), 0))
    };
    let hr = if Code::HeartRate.is_plausible(q.heart_rate as f64) {
        Value::Number(Quantity::new(round(q.heart_rate), 0))
    } else {
        Value::Invalid(Invalid::LowSignalQuality)
    };
    PpgReport {
        heart_rate: hr,
        spo2,
        quality: q,
    }
}

fn round(x: f32) -> i32 {
    libm::roundf(x) as i32
}

fn mean(x: &[u32]) -> f32 {
    let sum: u64 = x.iter().map(|&v| v as u64).sum();
    (sum as f64 / x.len().max(1) as f64) as f32
}

/// Mean of `x[i - w/2 ..= i + w/2]`, truncated at the ends; exact integer sum.
fn centred_mean(x: &[u32], i: usize, w: usize) -> f32 {
    let lo = i.saturating_sub(w / 2);
    let hi = (i + w / 2 + 1).min(x.len());
    let s = x.get(lo..hi).unwrap_or(&[]);
    let sum: u64 = s.iter().map(|&v| v as u64).sum();
    (sum as f64 / s.len().max(1) as f64) as f32
}

/// Writes baseline − smoothed into `out`; returns the baseline's excursion (max − min) over the analysed part.
fn pulsatile(x: &[u32], smooth_w: usize, base_w: usize, out: &mut [f32]) -> f32 {
    let half = base_w / 2;
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for (i, o) in out.iter_mut().enumerate() {
        let base = centred_mean(x, i, base_w);
        *o = base - centred_mean(x, i, smooth_w);
        if i >= half && i + half < x.len() {
            lo = lo.min(base);
            hi = hi.max(base);
        }
    }
    if hi >= lo { hi - lo } else { 0.0 }
}

fn rms(x: &[f32]) -> f32 {
    let ss: f32 = x.iter().map(|v| v * v).sum();
    libm::sqrtf(ss / x.len().max(1) as f32)
}

/// Pearson correlation of two zero-mean-ish signals (means are removed here anyway).
fn correlation(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len()).max(1) as f32;
    let ma = a.iter().sum::<f32>() / n;
    let mb = b.iter().sum::<f32>() / n;
    let (mut sab, mut saa, mut sbb) = (0f32, 0f32, 0f32);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (x - ma, y - mb);
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    let d = libm::sqrtf(saa * sbb);
    if d > 0.0 { sab / d } else { 0.0 }
}

/// What the beat detector found.
struct Beats {
    count: usize,
    /// Samples from the first peak to the last.
    span: usize,
    interval_cv: f32,
    amplitude_cv: f32,
    mean_amplitude: f32,
}

/// Running mean and variance (Welford), for the interval and amplitude statistics without a buffer.
#[derive(Default)]
struct Stats {
    n: u32,
    mean: f32,
    m2: f32,
}

impl Stats {
    fn add(&mut self, x: f32) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f32;
        self.m2 += d * (x - self.mean);
    }

    fn cv(&self) -> f32 {
        if self.n < 2 || self.mean <= 0.0 {
            return f32::INFINITY;
        }
        libm::sqrtf(self.m2 / (self.n - 1) as f32) / self.mean
    }
}

/// Systolic peaks: the maximum of each excursion above `threshold` that later returns below 0; one closer than
/// `refractory` samples to the previous peak is ignored. Beat amplitude = peak − the lowest point of
/// the trough that follows it.
fn find_beats(p: &[f32], threshold: f32, refractory: usize) -> Beats {
    let mut count = 0usize;
    let (mut first, mut last) = (0usize, 0usize);
    let mut intervals = Stats::default();
    let mut amplitudes = Stats::default();
    // Excursion in progress: (index, height) of its maximum.
    let mut candidate: Option<(usize, f32)> = None;
    // Last committed peak's height, and the trough minimum since.
    let mut pending_amp: Option<(f32, f32)> = None;
    let mut armed = false;
    for (i, &v) in p.iter().enumerate() {
        if v < 0.0 {
            if let Some((idx, h)) = candidate.take() {
                let too_close = count > 0 && idx - last < refractory;
                if !too_close {
                    if let Some((ph, trough)) = pending_amp.take() {
                        amplitudes.add(ph - trough);
                    }
                    if count == 0 {
                        first = idx;
                    } else {
                        intervals.add((idx - last) as f32);
                    }
                    count += 1;
                    last = idx;
                    pending_amp = Some((h, v));
                }
            }
            armed = true;
            if let Some((_, trough)) = pending_amp.as_mut() {
                *trough = trough.min(v);
            }
        } else if armed && v > threshold {
            match candidate {
                Some((_, h)) if h >= v => {}
                _ => candidate = Some((i, v)),
            }
        }
    }
    Beats {
        count,
        span: last - first,
        interval_cv: intervals.cv(),
        amplitude_cv: amplitudes.cv(),
        mean_amplitude: amplitudes.mean,
    }
}
