//! Synthesised sensor traces with known answers, for host tests and on-target tests (feature `synth`).
//!
//! Deterministic: noise comes from a fixed-seed linear congruential generator, so a test's numbers are the same on
//! every run and on the board.

use crate::drivers::lis3dh::MilliG;
use crate::drivers::max30102::PpgSample;

/// Deterministic noise: Numerical Recipes' 32-bit LCG.
#[derive(Clone, Copy, Debug)]
pub struct Lcg(pub u32);

impl Lcg {
    pub fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        self.0
    }

    /// Uniform in [−1, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 / (1u32 << 23) as f32 - 1.0
    }

    /// Approximately normal, mean 0, standard deviation 1 (sum of four uniforms, scaled).
    pub fn gauss(&mut self) -> f32 {
        let s = self.uniform() + self.uniform() + self.uniform() + self.uniform();
        // Each uniform has variance 1/3; four of them 4/3.
        s * 0.866_025_4
    }
}

/// A PPG recording to synthesise.
#[derive(Clone, Copy, Debug)]
pub struct PpgSpec {
    pub sample_rate_hz: u16,
    pub bpm: f32,
    /// The ratio of ratios the signal is built with: red AC/DC = `r` × IR AC/DC.
    pub r: f32,
    pub dc_red: f32,
    pub dc_ir: f32,
    /// IR peak-to-peak AC / DC of the pulse shape.
    pub perfusion: f32,
    /// Sensor noise, standard deviation as a fraction of DC.
    pub noise: f32,
    /// Respiration: baseline modulation depth (fraction of DC) at 0.25 Hz.
    pub respiration: f32,
    /// Add motion artefact (baseline jumps and 2–4 Hz shaking, in both channels, proportional to DC).
    pub motion: bool,
    pub seed: u32,
}

impl PpgSpec {
    /// A clean finger PPG at `bpm` built with ratio `r`: 25 samples/s, 1 % perfusion, 0.02 % noise, respiration.
    pub const fn clean(bpm: f32, r: f32) -> Self {
        PpgSpec {
            sample_rate_hz: 25,
            bpm,
            r,
            dc_red: 90_000.0,
            dc_ir: 110_000.0,
            perfusion: 0.01,
            noise: 0.0002,
            respiration: 0.002,
            motion: false,
            seed: 1,
        }
    }

    /// SpO2 this spec should give under the `110 − 25·R` calibration.
    pub fn expected_spo2(&self) -> f32 {
        110.0 - 25.0 * self.r
    }
}

/// One beat's shape over phase 0..1: a systolic wave and a smaller dicrotic wave; 0 at diastole, 1 at the peak.
pub fn pulse_shape(phase: f32) -> f32 {
    let g = |mu: f32, sigma: f32| {
        let d = (phase - mu) / sigma;
        libm::expf(-0.5 * d * d)
    };
    // Normalised so that the maximum (at the systolic peak) is ≈ 1.
    (g(0.18, 0.07) + 0.35 * g(0.45, 0.08)) / 1.0035
}

/// Fills `out` with the recording described by `spec` (MAX30102 counts, clamped to 18 bits).
pub fn ppg(spec: &PpgSpec, out: &mut [PpgSample]) {
    let mut rng = Lcg(spec.seed);
    let fs = spec.sample_rate_hz.max(1) as f32;
    let beat_hz = spec.bpm / 60.0;
    let mut jump = 0f32;
    for (i, s) in out.iter_mut().enumerate() {
        let t = i as f32 / fs;
        let phase = libm::fmodf(t * beat_hz, 1.0);
        let pulse = pulse_shape(phase);
        let resp = spec.respiration * libm::sinf(2.0 * core::f32::consts::PI * 0.25 * t);
        let mut motion = 0.0;
        if spec.motion {
            // A new baseline jump about every 0.6 s, up to ±6× the pulse amplitude, plus shaking.
            if rng.next_u32().is_multiple_of(15) {
                jump = rng.uniform() * 6.0 * spec.perfusion;
            }
            let shake_hz = 2.0 + 2.0 * libm::fabsf(libm::sinf(0.3 * t));
            motion = jump
                + 2.0 * spec.perfusion * libm::sinf(2.0 * core::f32::consts::PI * shake_hz * t);
        }
        let ir = spec.dc_ir * (1.0 - spec.perfusion * pulse + resp + motion)
            + spec.dc_ir * spec.noise * rng.gauss();
        let red = spec.dc_red * (1.0 - spec.r * spec.perfusion * pulse + resp + motion)
            + spec.dc_red * spec.noise * rng.gauss();
        *s = PpgSample {
            red: red.clamp(0.0, 262_143.0) as u32,
            ir: ir.clamp(0.0, 262_143.0) as u32,
        };
    }
}

/// An accelerometer trace: a list of segments, each `ms` long at a constant acceleration (plus small noise).
#[derive(Clone, Copy, Debug)]
pub struct Segment {
    pub ms: u32,
    pub a: MilliG,
}

const fn seg(ms: u32, x: i32, y: i32, z: i32) -> Segment {
    Segment {
        ms,
        a: MilliG { x, y, z },
    }
}

/// A fall: standing (1 g on z), 300 ms of free fall (0.15 g), a 40 ms impact at 3.2 g and a rebound, then lying on
/// the side (1 g on x) for 3 s.
pub const FALL: &[Segment] = &[
    seg(1000, 0, 0, 1000),
    seg(300, 50, 40, 130),
    seg(40, 1800, 900, 2500),
    seg(60, 600, 200, 400),
    seg(30, 1400, 300, 900),
    seg(3000, 1000, 0, 60),
];

/// Sitting down hard: a dip to 0.65 g for 250 ms, a landing at 1.8 g, then sitting still.
pub const SIT_DOWN: &[Segment] = &[
    seg(1000, 0, 0, 1000),
    seg(250, 0, 100, 640),
    seg(60, 300, 200, 1750),
    seg(3000, 150, 0, 990),
];

/// A trip caught in time: 50 ms of free fall (too short), a 3 g stamp, then walking on.
pub const STUMBLE: &[Segment] = &[
    seg(1000, 0, 0, 1000),
    seg(50, 0, 0, 200),
    seg(40, 500, 300, 2950),
    seg(1000, 300, 200, 1300),
    seg(1000, 0, 300, 700),
    seg(1000, 300, 200, 1300),
];

/// A fall after which the person gets straight up and walks (no stillness).
pub const FALL_AND_GET_UP: &[Segment] = &[
    seg(1000, 0, 0, 1000),
    seg(300, 50, 40, 130),
    seg(40, 1800, 900, 2500),
    seg(500, 0, 400, 1500),
    seg(500, 0, 300, 500),
    seg(500, 0, 400, 1500),
    seg(500, 0, 300, 500),
    seg(500, 0, 400, 1500),
    seg(500, 0, 300, 500),
];

/// Calls `f` for every sample of `trace` at `period_ms`, with ±20 mg noise.
pub fn accel(trace: &[Segment], period_ms: u32, seed: u32, mut f: impl FnMut(MilliG)) {
    let mut rng = Lcg(seed);
    for s in trace {
        for _ in 0..s.ms / period_ms.max(1) {
            let mut n = || (rng.uniform() * 20.0) as i32;
            f(MilliG {
                x: s.a.x + n(),
                y: s.a.y + n(),
                z: s.a.z + n(),
            });
        }
    }
}

/// A person of `grams` stepping onto a scale at 10 samples/s: 1 s empty, a ramp with a decaying ±2 kg sway over
/// 2 s, `hold_s` seconds settled (±20 g noise), then stepping off for 1 s.
pub fn weighing(grams: i32, hold_s: u32, seed: u32, mut f: impl FnMut(i32)) {
    let mut rng = Lcg(seed);
    for _ in 0..10 {
        f((rng.uniform() * 20.0) as i32);
    }
    for i in 0..20 {
        let t = i as f32 / 10.0;
        let ramp = (t / 0.5).min(1.0);
        let sway =
            2000.0 * libm::expf(-1.5 * t) * libm::sinf(2.0 * core::f32::consts::PI * 1.5 * t);
        f((grams as f32 * ramp + sway) as i32);
    }
    for _ in 0..hold_s * 10 {
        f(grams + (rng.uniform() * 20.0) as i32);
    }
    for _ in 0..10 {
        f((rng.uniform() * 20.0) as i32);
    }
}
