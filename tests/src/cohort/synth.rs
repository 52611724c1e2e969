//! The cohort generator: patients, their home readings over weeks and labelled deterioration episodes.
//!
//! Deterministic: everything comes from one seed, each patient from its own stream derived from it, so the same
//! [`Spec`] always gives the same readings. Physiology is a patient's baseline plus a small diurnal swing plus the
//! effect of any episode; measurement adds noise and the failures home devices really have (motion artefacts, cuff
//! errors, infrared thermometers reading low, miscounted breaths, late syncing, a device clock set wrong, a removed
//! oximeter, missed weigh-ins). Every reading that carries an injected fault is tagged with it ([`Noise`]) so a
//! report can say which fault caused which false alert.
//!
//! The rates and shapes are modelling assumptions, written as constants next to where they are used; they are
//! listed with their reasoning in `docs/clinical-rules.md` ("Simulated cohort").

use std::collections::HashMap;

use hearth_protocol::Code;
use hearth_protocol::json::{Consciousness, SoftSign};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Milliseconds since the Unix epoch, UTC (as the hub's clock).
pub type Millis = i64;
pub const MIN: Millis = 60_000;
pub const HOUR: Millis = 60 * MIN;
pub const DAY: Millis = 24 * HOUR;
/// Midnight UTC, 2026-11-17: the cohort's first day (times of day below are UTC, as if the homes were in the UK).
pub const START: Millis = 20_776 * DAY;

/// What to simulate.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub patients: usize,
    pub days: i64,
    pub seed: u64,
}

impl Spec {
    /// The cohort the issue asks for: 50 patients × 30 days.
    pub const FULL: Spec = Spec {
        patients: 50,
        days: 30,
        seed: 0x4845_4152_5448,
    };
}

/// Why a patient is monitored; decides devices, schedule and which episodes can happen to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// COPD with hypercapnic respiratory failure: NEWS2 scale 2, lives at SpO2 88–92 %, continuous oximetry.
    CopdScale2,
    /// Virtual-ward respiratory patient (e.g. after pneumonia) with continuous oximetry.
    Respiratory,
    /// Heart failure: spot checks twice a day and a morning weight.
    HeartFailure,
    /// Frail older person: spot checks three times a day by a carer.
    Frail,
}

/// One set of vital signs (canonical units).
#[derive(Debug, Clone, Copy, Default)]
pub struct Vitals {
    pub spo2: f64,
    pub hr: f64,
    pub rr: f64,
    pub sys: f64,
    pub temp: f64,
    pub weight: f64,
}

impl Vitals {
    fn add(self, d: Vitals) -> Vitals {
        Vitals {
            spo2: self.spo2 + d.spo2,
            hr: self.hr + d.hr,
            rr: self.rr + d.rr,
            sys: self.sys + d.sys,
            temp: self.temp + d.temp,
            weight: self.weight + d.weight,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Patient {
    pub id: String,
    pub profile: Profile,
    pub base: Vitals,
    /// Continuous oximeter (a reading every 5 min) rather than spot checks of SpO2.
    pub continuous: bool,
    /// The thermometer and the carer's app sync late (a backlog every few hours).
    pub late_sync: bool,
    /// The BP cuff's clock is set 6 h slow from day 12 (a time-zone or battery-change error).
    pub cuff_clock_error: bool,
}

impl Patient {
    pub fn oximeter(&self) -> String {
        format!("ox-{}", self.id)
    }
    pub fn devices(&self) -> [String; 5] {
        let id = &self.id;
        [
            self.oximeter(),
            format!("cuff-{id}"),
            format!("thermo-{id}"),
            format!("app-{id}"),
            format!("scale-{id}"),
        ]
    }
    /// The fixed limits on the patient's card: what a patient is told to re-check, and what the naive baseline
    /// alerts on. (code, below?, limit).
    pub fn limits(&self) -> Vec<(Code, bool, f64)> {
        let spo2 = if self.profile == Profile::CopdScale2 {
            86.0
        } else {
            94.0
        };
        vec![
            (Code::Spo2, true, spo2),
            (Code::HeartRate, false, 110.0),
            (Code::HeartRate, true, 40.0),
            (Code::BpSys, true, 90.0),
            (Code::Temp, false, 38.0),
            (Code::RespRate, false, 24.0),
            (Code::Weight, false, self.base.weight + 2.0),
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EpisodeKind {
    /// Chest infection heading for sepsis: fever, tachycardia, tachypnoea, falling SpO2 over a day.
    Infection,
    /// Urinary infection: modest fever and tachycardia, hardly any desaturation.
    MildInfection,
    /// Heart-failure decompensation: weight gain over days, then breathlessness and desaturation.
    HeartFailure,
    /// Hypotension / sepsis: systolic falling over hours with tachycardia.
    Hypotension,
    /// Slow SpO2 drift over a week (e.g. progressive interstitial disease).
    Spo2Drift,
    /// Slow heart-rate drift over a week (e.g. new atrial fibrillation, anaemia).
    HeartRateDrift,
    /// COPD exacerbation in the scale-2 patient.
    CopdExacerbation,
}

impl EpisodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EpisodeKind::Infection => "infection",
            EpisodeKind::MildInfection => "mild infection",
            EpisodeKind::HeartFailure => "heart-failure decompensation",
            EpisodeKind::Hypotension => "hypotension/sepsis",
            EpisodeKind::Spo2Drift => "slow SpO2 drift",
            EpisodeKind::HeartRateDrift => "slow heart-rate drift",
            EpisodeKind::CopdExacerbation => "COPD exacerbation (scale 2)",
        }
    }
}

/// One parameter's change during an episode: linear from `start` over `ramp` to `peak`.
#[derive(Debug, Clone, Copy)]
struct Effect {
    param: Param,
    peak: f64,
    start: Millis,
    ramp: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Param {
    Spo2,
    Hr,
    Rr,
    Sys,
    Temp,
    Weight,
}

/// A labelled deterioration: from `onset` (the first physiological change) to `end` (back to baseline).
#[derive(Debug, Clone)]
pub struct Episode {
    pub patient: usize,
    pub kind: EpisodeKind,
    pub onset: Millis,
    pub end: Millis,
    /// Treatment starts here; every effect then recovers linearly until `end`.
    recover_from: Millis,
    effects: Vec<Effect>,
}

impl Episode {
    pub fn active(&self, t: Millis) -> bool {
        self.onset <= t && t <= self.end
    }

    /// How far the deterioration has gone at `t`, 0 (baseline) to 1 (worst).
    pub fn progress(&self, t: Millis) -> f64 {
        if !self.active(t) {
            return 0.0;
        }
        let recovery = if t <= self.recover_from {
            1.0
        } else {
            1.0 - (t - self.recover_from) as f64 / (self.end - self.recover_from) as f64
        };
        self.effects
            .iter()
            .map(|e| ((t - e.start) as f64 / e.ramp as f64).clamp(0.0, 1.0))
            .fold(0.0, f64::max)
            * recovery
    }

    fn delta(&self, t: Millis) -> Vitals {
        let mut d = Vitals::default();
        if !self.active(t) {
            return d;
        }
        let recovery = if t <= self.recover_from {
            1.0
        } else {
            1.0 - (t - self.recover_from) as f64 / (self.end - self.recover_from) as f64
        };
        for e in &self.effects {
            let f = ((t - e.start) as f64 / e.ramp as f64).clamp(0.0, 1.0) * recovery;
            let v = e.peak * f;
            match e.param {
                Param::Spo2 => d.spo2 += v,
                Param::Hr => d.hr += v,
                Param::Rr => d.rr += v,
                Param::Sys => d.sys += v,
                Param::Temp => d.temp += v,
                Param::Weight => d.weight += v,
            }
        }
        d
    }
}

/// A fault injected into a reading (none on most).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Noise {
    /// Oximeter motion artefact reported as a low number.
    MotionArtefact,
    /// Oximeter motion artefact the device flagged (value invalid).
    MotionInvalid,
    /// Cuff error sent as IEEE 11073 NaN.
    CuffError,
    /// A loose cuff or a moving arm: a plausible but false low systolic.
    CuffArtefact,
    /// Infrared thermometer reading low (cold forehead, taken outdoors).
    ThermometerLow,
    /// Hot drink before an oral temperature.
    ThermometerHigh,
    /// Pulse taken straight after climbing the stairs.
    Exertion,
    /// A carer miscounting breaths.
    RespMiscount,
    /// Weighed in clothes and shoes.
    Clothing,
    /// Delivered hours after it was taken (device syncs late).
    LateSync,
    /// Device clock set wrong: the reading carries a false time.
    ClockError,
}

impl Noise {
    pub fn as_str(self) -> &'static str {
        match self {
            Noise::MotionArtefact => "oximeter motion artefact (low number)",
            Noise::MotionInvalid => "oximeter motion artefact (flagged invalid)",
            Noise::CuffError => "cuff error (NaN)",
            Noise::CuffArtefact => "cuff artefact (false low systolic)",
            Noise::ThermometerLow => "thermometer reading low",
            Noise::ThermometerHigh => "thermometer reading high",
            Noise::Exertion => "pulse after exertion",
            Noise::RespMiscount => "breaths miscounted",
            Noise::Clothing => "weighed in clothes",
            Noise::LateSync => "late sync",
            Noise::ClockError => "device clock wrong",
        }
    }
}

/// One observation's value as the device sent it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sample {
    /// A number and how many decimals the device shows.
    Number(f64, u8),
    /// The device said "not a number" (IEEE 11073 NaN).
    Invalid,
}

/// One reading as a device sends it.
#[derive(Debug, Clone)]
pub struct Sent {
    pub patient: usize,
    pub device: String,
    /// Assigned in observation order per device once everything is generated.
    pub seq: u32,
    /// When it reaches the hub.
    pub delivered: Millis,
    /// When it was really taken.
    pub taken: Millis,
    /// The time the device puts on it (differs from `taken` when its clock is wrong).
    pub device_time: Millis,
    pub obs: Vec<(Code, Sample)>,
    pub noise: Option<Noise>,
}

/// A check-in with a spot set: a carer (frail patients) records consciousness, air or oxygen and RESTORE2 soft
/// signs; other patients answer the app's questions about oxygen and soft signs themselves.
#[derive(Debug, Clone)]
pub struct Checkin {
    pub patient: usize,
    pub id: String,
    pub by_carer: bool,
    pub taken: Millis,
    pub delivered: Millis,
    /// `None` when the patient reports for themselves (ACVPU is a carer's or a clinician's observation).
    pub consciousness: Option<Consciousness>,
    pub soft_signs: Vec<SoftSign>,
    /// A soft sign reported when nothing was wrong (a bad night, a sore knee).
    pub spurious: bool,
}

/// A generated cohort: patients, everything their devices send and the check-ins (each in delivery order) and the
/// labelled episodes.
#[derive(Debug, Clone)]
pub struct Cohort {
    pub spec: Spec,
    pub patients: Vec<Patient>,
    pub sent: Vec<Sent>,
    pub checkins: Vec<Checkin>,
    pub episodes: Vec<Episode>,
}

impl Cohort {
    /// The labelled episode of `patient` active at `t`, if any.
    pub fn episode_at(&self, patient: usize, t: Millis) -> Option<usize> {
        self.episodes
            .iter()
            .position(|e| e.patient == patient && e.active(t))
    }
}

/// Standard normal deviate by Box–Muller (hand-written: two lines, instead of adding `rand_distr` for one function).
fn normal(rng: &mut StdRng, sd: f64) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn chance(rng: &mut StdRng, p: f64) -> bool {
    rng.random::<f64>() < p
}

fn between(rng: &mut StdRng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

fn hours(rng: &mut StdRng, lo: f64, hi: f64) -> Millis {
    (between(rng, lo, hi) * HOUR as f64) as Millis
}

/// Profiles of a cohort of `n`: one COPD patient on scale 2, a tenth respiratory with continuous oximetry, a quarter
/// heart failure, the rest frail older people.
fn profile(i: usize, n: usize) -> Profile {
    let resp = (n / 10).max(1);
    let hf = (n / 4).max(1);
    if i == 0 {
        Profile::CopdScale2
    } else if i <= resp {
        Profile::Respiratory
    } else if i <= resp + hf {
        Profile::HeartFailure
    } else {
        Profile::Frail
    }
}

fn make_patient(i: usize, n: usize, rng: &mut StdRng) -> Patient {
    let profile = profile(i, n);
    let base = Vitals {
        spo2: match profile {
            Profile::CopdScale2 => 90.0,
            Profile::Respiratory => between(rng, 96.0, 97.5),
            _ => between(rng, 95.5, 98.0),
        },
        hr: between(rng, 62.0, 84.0),
        rr: between(rng, 13.0, 18.0),
        sys: match profile {
            Profile::HeartFailure => between(rng, 108.0, 132.0),
            _ => between(rng, 115.0, 150.0),
        },
        temp: between(rng, 36.3, 36.9),
        weight: between(rng, 55.0, 95.0),
    };
    Patient {
        id: format!("p{i:02}"),
        profile,
        base,
        continuous: matches!(profile, Profile::CopdScale2 | Profile::Respiratory),
        // Three frail patients whose carer's phone syncs late, one whose cuff clock goes wrong.
        late_sync: profile == Profile::Frail && i % 11 == 4,
        cuff_clock_error: profile == Profile::Frail && i % 23 == 7,
    }
}

/// The episodes: their kinds and how many, for a cohort of 50 (fewer in a smaller cohort, never none of a kind that
/// has an eligible patient).
const PLAN: [(EpisodeKind, usize); 7] = [
    (EpisodeKind::CopdExacerbation, 1),
    (EpisodeKind::Infection, 6),
    (EpisodeKind::MildInfection, 2),
    (EpisodeKind::HeartFailure, 4),
    (EpisodeKind::Hypotension, 3),
    (EpisodeKind::Spo2Drift, 1),
    (EpisodeKind::HeartRateDrift, 1),
];

fn eligible(kind: EpisodeKind, p: Profile) -> bool {
    match kind {
        EpisodeKind::CopdExacerbation => p == Profile::CopdScale2,
        EpisodeKind::Infection => matches!(p, Profile::Respiratory | Profile::Frail),
        EpisodeKind::MildInfection | EpisodeKind::Spo2Drift => p == Profile::Frail,
        EpisodeKind::HeartFailure | EpisodeKind::HeartRateDrift => p == Profile::HeartFailure,
        EpisodeKind::Hypotension => matches!(p, Profile::Frail | Profile::HeartFailure),
    }
}

/// Builds one episode starting at `onset`; returns it with its physiology.
fn make_episode(
    patient: usize,
    base: &Vitals,
    kind: EpisodeKind,
    onset: Millis,
    rng: &mut StdRng,
) -> Episode {
    let eff = |param, peak, start: Millis, ramp: Millis| Effect {
        param,
        peak,
        start,
        ramp,
    };
    let (effects, recover_from, recover): (Vec<Effect>, Millis, Millis) = match kind {
        EpisodeKind::Infection => {
            let ramp = hours(rng, 18.0, 30.0);
            let plateau = hours(rng, 24.0, 48.0);
            (
                vec![
                    eff(Param::Temp, between(rng, 1.7, 2.5), onset, ramp),
                    eff(Param::Hr, between(rng, 25.0, 40.0), onset, ramp),
                    eff(Param::Rr, between(rng, 6.0, 10.0), onset + ramp / 4, ramp),
                    eff(Param::Spo2, -between(rng, 3.0, 6.0), onset + ramp / 3, ramp),
                    eff(Param::Sys, -between(rng, 5.0, 15.0), onset + ramp / 2, ramp),
                ],
                onset + ramp + plateau,
                36 * HOUR,
            )
        }
        EpisodeKind::MildInfection => {
            let ramp = hours(rng, 12.0, 24.0);
            (
                vec![
                    eff(Param::Temp, between(rng, 1.6, 1.9), onset, ramp),
                    eff(Param::Hr, between(rng, 18.0, 25.0), onset, ramp),
                    eff(Param::Rr, between(rng, 4.0, 6.0), onset, ramp),
                    eff(Param::Spo2, -between(rng, 1.0, 2.0), onset, ramp),
                ],
                onset + ramp + hours(rng, 24.0, 36.0),
                36 * HOUR,
            )
        }
        EpisodeKind::HeartFailure => {
            let days = between(rng, 4.0, 6.0);
            let ramp = (days * DAY as f64) as Millis;
            let lungs = onset + ramp - 36 * HOUR;
            (
                vec![
                    eff(Param::Weight, between(rng, 0.6, 1.0) * days, onset, ramp),
                    eff(Param::Spo2, -between(rng, 4.0, 6.0), lungs, 36 * HOUR),
                    eff(Param::Rr, between(rng, 6.0, 9.0), lungs, 36 * HOUR),
                    eff(Param::Hr, between(rng, 15.0, 25.0), lungs, 36 * HOUR),
                ],
                onset + ramp + 12 * HOUR,
                72 * HOUR,
            )
        }
        EpisodeKind::Hypotension => {
            let ramp = hours(rng, 8.0, 12.0);
            let fever = if chance(rng, 0.5) { 1.8 } else { -1.4 };
            (
                vec![
                    eff(Param::Sys, -between(rng, 40.0, 55.0), onset, ramp),
                    eff(Param::Hr, between(rng, 35.0, 45.0), onset, ramp),
                    eff(Param::Rr, between(rng, 7.0, 10.0), onset + ramp / 3, ramp),
                    eff(Param::Temp, fever, onset, ramp),
                ],
                onset + ramp + 6 * HOUR,
                24 * HOUR,
            )
        }
        EpisodeKind::Spo2Drift => {
            let ramp = hours(rng, 6.0 * 24.0, 7.0 * 24.0);
            (
                // Down to 89.5–91 % whatever the baseline: a drift that matters, not one lost in the noise.
                vec![eff(
                    Param::Spo2,
                    between(rng, 89.5, 91.0) - base.spo2,
                    onset,
                    ramp,
                )],
                onset + ramp + DAY,
                2 * DAY,
            )
        }
        EpisodeKind::HeartRateDrift => {
            let ramp = hours(rng, 6.0 * 24.0, 7.0 * 24.0);
            (
                // Up to 116–124 /min whatever the baseline.
                vec![eff(
                    Param::Hr,
                    between(rng, 116.0, 124.0) - base.hr,
                    onset,
                    ramp,
                )],
                onset + ramp + DAY,
                2 * DAY,
            )
        }
        EpisodeKind::CopdExacerbation => {
            let ramp = 24 * HOUR;
            (
                vec![
                    eff(Param::Spo2, -between(rng, 5.0, 6.0), onset, ramp),
                    eff(Param::Rr, between(rng, 7.0, 9.0), onset, ramp),
                    eff(Param::Hr, between(rng, 18.0, 25.0), onset, ramp),
                ],
                onset + ramp + 24 * HOUR,
                48 * HOUR,
            )
        }
    };
    Episode {
        patient,
        kind,
        onset,
        end: recover_from + recover,
        recover_from,
        effects,
    }
}

/// Longest an episode of `kind` can last (for placing it inside the simulated days).
fn longest(kind: EpisodeKind) -> Millis {
    match kind {
        EpisodeKind::Infection => 30 * HOUR + 48 * HOUR + 36 * HOUR,
        EpisodeKind::MildInfection => 24 * HOUR + 36 * HOUR + 36 * HOUR,
        EpisodeKind::HeartFailure => 6 * DAY + 12 * HOUR + 72 * HOUR,
        EpisodeKind::Hypotension => 12 * HOUR + 6 * HOUR + 24 * HOUR,
        EpisodeKind::Spo2Drift | EpisodeKind::HeartRateDrift => 7 * DAY + 3 * DAY,
        EpisodeKind::CopdExacerbation => 96 * HOUR,
    }
}

fn plan_episodes(spec: &Spec, patients: &[Patient], rng: &mut StdRng) -> Vec<Episode> {
    let mut free: Vec<usize> = (0..patients.len()).collect();
    let mut out = Vec::new();
    for (kind, per_50) in PLAN {
        let want = (per_50 * spec.patients).div_ceil(50).max(1);
        for _ in 0..want {
            let pool: Vec<usize> = free
                .iter()
                .copied()
                .filter(|&i| eligible(kind, patients[i].profile) && !patients[i].cuff_clock_error)
                .collect();
            if pool.is_empty() {
                break;
            }
            let p = pool[rng.random_range(0..pool.len())];
            free.retain(|&i| i != p);
            let latest = spec.days * DAY - longest(kind) - 6 * HOUR;
            let earliest = 2 * DAY;
            let onset = START + rng.random_range(earliest..latest.max(earliest + 1));
            out.push(make_episode(p, &patients[p].base, kind, onset, rng));
        }
    }
    out
}

/// The patient's true physiology at `t`.
fn truth(p: &Patient, episodes: &[&Episode], t: Millis) -> Vitals {
    let hour = ((t - START).rem_euclid(DAY) / HOUR) as u32;
    let night = hour < 6;
    let mut v = p.base;
    // Diurnal swing: a slower heart and a lower SpO2 at night, lying down (more so in COPD).
    if night {
        v.hr -= 4.0;
        v.spo2 -= if p.profile == Profile::CopdScale2 {
            1.5
        } else {
            0.8
        };
    }
    for e in episodes {
        v = v.add(e.delta(t));
    }
    v
}

/// Generates the whole cohort.
pub fn generate(spec: Spec) -> Cohort {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let patients: Vec<Patient> = (0..spec.patients)
        .map(|i| {
            let mut r = StdRng::seed_from_u64(
                spec.seed ^ (0x9E37_79B9_7F4A_7C15u64.wrapping_mul(i as u64 + 1)),
            );
            make_patient(i, spec.patients, &mut r)
        })
        .collect();
    let episodes = plan_episodes(&spec, &patients, &mut rng);
    let mut sent = Vec::new();
    let mut checkins = Vec::new();
    for (i, p) in patients.iter().enumerate() {
        let mut r = StdRng::seed_from_u64(spec.seed.rotate_left(17) ^ (i as u64 + 1));
        let eps: Vec<&Episode> = episodes.iter().filter(|e| e.patient == i).collect();
        PatientSim {
            i,
            p,
            eps: &eps,
            rng: &mut r,
            out: &mut sent,
            checkins: &mut checkins,
        }
        .run(spec.days);
    }
    number_and_order(&mut sent);
    checkins.sort_by_key(|c| (c.delivered, c.patient));
    Cohort {
        spec,
        patients,
        sent,
        checkins,
        episodes,
    }
}

/// Sequence numbers in each device's own order, then everything in delivery order. A device delivers first in,
/// first out: a reading never overtakes an older one still waiting in a late device's backlog.
fn number_and_order(sent: &mut [Sent]) {
    sent.sort_by_key(|s| (s.taken, s.delivered));
    let mut last: HashMap<String, (u32, Millis)> = HashMap::new();
    for s in sent.iter_mut() {
        let (n, delivered) = last.entry(s.device.clone()).or_insert((0, 0));
        *n += 1;
        s.seq = *n;
        *delivered = (*delivered).max(s.delivered);
        s.delivered = *delivered;
    }
    sent.sort_by(|a, b| (a.delivered, &a.device, a.seq).cmp(&(b.delivered, &b.device, b.seq)));
}

/// What one device reading measured, and the fault injected into it (if any).
type Measured = (Vec<(Code, Sample)>, Option<Noise>);

/// One patient's month.
struct PatientSim<'a> {
    i: usize,
    p: &'a Patient,
    eps: &'a [&'a Episode],
    rng: &'a mut StdRng,
    out: &'a mut Vec<Sent>,
    checkins: &'a mut Vec<Checkin>,
}

/// Continuous oximeters report every 5 min (a summary of their 1 Hz samples).
const CONTINUOUS_EVERY: Millis = 5 * MIN;

impl PatientSim<'_> {
    fn run(&mut self, days: i64) {
        if self.p.continuous {
            self.continuous(days);
        }
        for d in 0..days {
            let day = START + d * DAY;
            if self.p.profile == Profile::HeartFailure {
                let t = day + 7 * HOUR + hours(self.rng, 0.0, 2.0);
                self.weigh(t);
            }
            let sets: &[f64] = match self.p.profile {
                Profile::Frail => &[8.5, 13.5, 19.5],
                Profile::HeartFailure => &[9.5, 19.0],
                Profile::Respiratory | Profile::CopdScale2 => &[9.0, 18.0],
            };
            for &h in sets {
                // A set is missed 5 % of the time (carer late, patient out).
                if chance(self.rng, 0.05) {
                    continue;
                }
                let t = day + ((h + between(self.rng, -0.75, 0.75)) * HOUR as f64) as Millis;
                self.spot_set(t);
            }
        }
    }

    fn truth(&self, t: Millis) -> Vitals {
        truth(self.p, self.eps, t)
    }

    fn breaches(&self, obs: &[(Code, Sample)]) -> bool {
        let limits = self.p.limits();
        obs.iter().any(|(code, s)| match s {
            Sample::Number(v, _) => limits
                .iter()
                .any(|(c, below, l)| c == code && if *below { v < l } else { v > l }),
            Sample::Invalid => false,
        })
    }

    /// Pushes a reading; on the patient's card an abnormal value is re-checked after about five minutes (the
    /// instruction home-monitoring patients are given), so a spot reading outside the limits is followed by a repeat.
    fn spot(&mut self, device: String, t: Millis, make: fn(&mut Self, Millis) -> Measured) {
        let (obs, noise) = make(self, t);
        let abnormal = self.breaches(&obs);
        self.push(device.clone(), t, obs, noise);
        if abnormal {
            let t2 = t + 4 * MIN + hours(self.rng, 0.0, 2.0 / 60.0);
            let (obs, noise) = make(self, t2);
            self.push(device, t2, obs, noise);
        }
    }

    fn push(
        &mut self,
        device: String,
        taken: Millis,
        obs: Vec<(Code, Sample)>,
        mut noise: Option<Noise>,
    ) {
        let mut delivered = taken + 5_000;
        let mut device_time = taken;
        let kind = device.split('-').next().unwrap_or_default();
        if self.p.late_sync && matches!(kind, "thermo" | "app") && chance(self.rng, 0.3) {
            // The phone syncs at the next 4-hourly background refresh.
            let next = (taken - START).div_euclid(4 * HOUR) * 4 * HOUR + 4 * HOUR + START;
            delivered = next + 30_000;
            noise = noise.or(Some(Noise::LateSync));
        }
        if self.p.cuff_clock_error && kind == "cuff" && taken >= START + 12 * DAY {
            device_time = taken - 6 * HOUR;
            noise = noise.or(Some(Noise::ClockError));
        }
        self.out.push(Sent {
            patient: self.i,
            device,
            seq: 0,
            delivered,
            taken,
            device_time,
            obs,
            noise,
        });
    }

    fn spot_set(&mut self, t: Millis) {
        let id = &self.p.id;
        if !self.p.continuous {
            self.spot(format!("ox-{id}"), t, Self::oximeter_spot);
        }
        self.spot(format!("cuff-{id}"), t + 2 * MIN, Self::cuff);
        self.spot(format!("thermo-{id}"), t + 4 * MIN, Self::thermometer);
        self.spot(format!("app-{id}"), t + 5 * MIN, Self::breaths);
        self.checkin(t + 6 * MIN);
    }

    /// Soft signs are noticed once a deterioration is well under way (RESTORE2: carers see them before the numbers
    /// move, but not always); new confusion comes late in sepsis. Outside episodes, 1 check-in in 100 reports a
    /// soft sign anyway.
    fn checkin(&mut self, t: Millis) {
        let by_carer = self.p.profile == Profile::Frail;
        let ep = self.eps.iter().find(|e| e.active(t));
        let progress = ep.map_or(0.0, |e| e.progress(t));
        let mut signs = Vec::new();
        let mut confusion = false;
        let mut spurious = false;
        if let Some(e) = ep {
            if progress >= 0.4 && chance(self.rng, 0.6) {
                signs.push(SoftSign::NotUsualSelf);
                signs.push(match e.kind {
                    EpisodeKind::Infection | EpisodeKind::MildInfection => {
                        SoftSign::EatingDrinkingLess
                    }
                    EpisodeKind::Hypotension => SoftSign::SkinChanged,
                    EpisodeKind::HeartFailure
                    | EpisodeKind::CopdExacerbation
                    | EpisodeKind::Spo2Drift => SoftSign::BreathingChanged,
                    EpisodeKind::HeartRateDrift => SoftSign::LessMobile,
                });
            }
            confusion = matches!(e.kind, EpisodeKind::Infection | EpisodeKind::Hypotension)
                && progress >= 0.7
                && chance(self.rng, 0.4);
        } else if chance(self.rng, 0.01) {
            signs.push(if chance(self.rng, 0.5) {
                SoftSign::LessMobile
            } else {
                SoftSign::NewPain
            });
            spurious = true;
        }
        let consciousness = by_carer.then_some(if confusion {
            Consciousness::Confusion
        } else {
            Consciousness::Alert
        });
        let mut delivered = t + 5_000;
        if self.p.late_sync && chance(self.rng, 0.3) {
            delivered = (t - START).div_euclid(4 * HOUR) * 4 * HOUR + 4 * HOUR + START + 30_000;
        }
        self.checkins.push(Checkin {
            patient: self.i,
            id: format!("c-{}-{t}", self.p.id),
            by_carer,
            taken: t,
            delivered,
            consciousness,
            soft_signs: signs,
            spurious,
        });
    }

    fn oximeter_spot(&mut self, t: Millis) -> Measured {
        let v = self.truth(t);
        let mut spo2 = v.spo2 + normal(self.rng, 0.8);
        let mut hr = v.hr + normal(self.rng, 3.0);
        let mut noise = None;
        // Motion artefact on 4 % of spot readings: half flagged by the device (invalid), half a plain low number.
        if chance(self.rng, 0.04) {
            if chance(self.rng, 0.5) {
                let obs = vec![
                    (Code::Spo2, Sample::Invalid),
                    (Code::HeartRate, Sample::Invalid),
                ];
                return (obs, Some(Noise::MotionInvalid));
            }
            spo2 = between(self.rng, 80.0, 91.0);
            hr += normal(self.rng, 15.0);
            noise = Some(Noise::MotionArtefact);
        } else if chance(self.rng, 0.03) {
            hr += between(self.rng, 28.0, 40.0);
            noise = Some(Noise::Exertion);
        }
        (
            vec![
                (Code::Spo2, int(spo2.min(100.0))),
                (Code::HeartRate, int(hr)),
            ],
            noise,
        )
    }

    fn cuff(&mut self, t: Millis) -> Measured {
        let v = self.truth(t);
        // 3 % cuff errors sent as NaN; 1 % a false low from a loose cuff.
        if chance(self.rng, 0.03) {
            let obs = vec![
                (Code::BpSys, Sample::Invalid),
                (Code::BpDia, Sample::Invalid),
                (Code::HeartRate, Sample::Invalid),
            ];
            return (obs, Some(Noise::CuffError));
        }
        let mut sys = v.sys + normal(self.rng, 7.0);
        let mut noise = None;
        if chance(self.rng, 0.01) {
            sys = between(self.rng, 72.0, 89.0);
            noise = Some(Noise::CuffArtefact);
        }
        let dia = sys * 0.6 + normal(self.rng, 4.0);
        let hr = v.hr + normal(self.rng, 3.0);
        (
            vec![
                (Code::BpSys, int(sys)),
                (Code::BpDia, int(dia)),
                (Code::HeartRate, int(hr)),
            ],
            noise,
        )
    }

    fn thermometer(&mut self, t: Millis) -> Measured {
        let v = self.truth(t);
        let mut temp = v.temp + normal(self.rng, 0.15);
        let mut noise = None;
        if chance(self.rng, 0.02) {
            temp -= between(self.rng, 1.3, 2.0);
            noise = Some(Noise::ThermometerLow);
        } else if chance(self.rng, 0.005) {
            temp += between(self.rng, 1.2, 1.6);
            noise = Some(Noise::ThermometerHigh);
        }
        (
            vec![(Code::Temp, Sample::Number(round_to(temp, 1), 1))],
            noise,
        )
    }

    fn breaths(&mut self, t: Millis) -> Measured {
        let v = self.truth(t);
        let mut rr = v.rr + normal(self.rng, 1.2);
        let mut noise = None;
        if chance(self.rng, 0.03) {
            rr += between(self.rng, 7.0, 10.0);
            noise = Some(Noise::RespMiscount);
        }
        (vec![(Code::RespRate, int(rr.max(4.0)))], noise)
    }

    fn weigh(&mut self, t: Millis) {
        // Missed weigh-in on 10 % of mornings.
        if chance(self.rng, 0.10) {
            return;
        }
        let v = self.truth(t);
        let mut w = v.weight + normal(self.rng, 0.3);
        let mut noise = None;
        if chance(self.rng, 0.03) {
            w += between(self.rng, 1.5, 2.5);
            noise = Some(Noise::Clothing);
        }
        // Weight Measurement resolution 0.005 kg; scales display 0.05 kg.
        let obs = vec![(Code::Weight, Sample::Number(round_to(w * 2.0, 1) / 2.0, 2))];
        let device = format!("scale-{}", self.p.id);
        self.push(device, t, obs, noise);
    }

    /// A continuous oximeter: a reading every 5 min, except while it is off the finger.
    fn continuous(&mut self, days: i64) {
        let device = self.p.oximeter();
        // Off for a wash each morning (20–40 min), and off all night on three nights of the month.
        let mut off: Vec<(Millis, Millis)> = (0..days)
            .map(|d| {
                let s = START + d * DAY + 7 * HOUR + hours(self.rng, 0.0, 2.0);
                (s, s + hours(self.rng, 20.0 / 60.0, 40.0 / 60.0))
            })
            .collect();
        for _ in 0..3 {
            let d = self.rng.random_range(0..days);
            let s = START + d * DAY - 2 * HOUR;
            off.push((s, s + 9 * HOUR));
        }
        let mut t = START;
        let mut dip_left = 0;
        while t < START + days * DAY {
            t += CONTINUOUS_EVERY;
            if off.iter().any(|(a, b)| *a <= t && t < *b) {
                continue;
            }
            let v = self.truth(t);
            let mut spo2 = v.spo2 + normal(self.rng, 0.7);
            let mut hr = v.hr + normal(self.rng, 2.5);
            let mut noise = None;
            // 1.5 % of readings flagged invalid (poor signal); artefact dips start on 0.7 % and each goes on to the
            // next 5-minute summary with probability 0.2 (a fidgeting hand, a cold finger).
            if dip_left == 0 && chance(self.rng, 0.015) {
                let obs = vec![
                    (Code::Spo2, Sample::Invalid),
                    (Code::HeartRate, Sample::Invalid),
                ];
                self.push(device.clone(), t, obs, Some(Noise::MotionInvalid));
                continue;
            }
            if dip_left == 0 && chance(self.rng, 0.007) {
                dip_left = 1;
                while chance(self.rng, 0.2) {
                    dip_left += 1;
                }
            }
            if dip_left > 0 {
                dip_left -= 1;
                spo2 = v.spo2 - between(self.rng, 5.0, 10.0);
                hr += normal(self.rng, 12.0);
                noise = Some(Noise::MotionArtefact);
            }
            let obs = vec![
                (Code::Spo2, int(spo2.min(100.0))),
                (Code::HeartRate, int(hr)),
            ];
            self.push(device.clone(), t, obs, noise);
        }
    }
}

fn int(v: f64) -> Sample {
    Sample::Number(v.round(), 0)
}

fn round_to(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}
