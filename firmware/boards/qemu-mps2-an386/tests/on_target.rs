//! On-target tests: run under QEMU (`cargo test`, the runner in `.cargo/config.toml`), report each test over
//! semihosting, print a plain `N passed, N failed` line and exit 0 only if every test passed.
//!
//! They check what the host tests cannot: the real I2C traffic to QEMU's TMP105 through the SBCon bit-bang driver,
//! the DSP's float maths on the Cortex-M4F FPU, HMAC-SHA256 framing on the target, and the no-init sequence store.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;
use embedded_hal::i2c::I2c;
use hearth_board_qemu_mps2_an386::sbcon::{self, SBCON3_BASE, SbconI2c};
use hearth_board_qemu_mps2_an386::{NoInitSeqStore, TEST_KEY, exit};
use hearth_firmware::drivers::max30102::PpgSample;
use hearth_firmware::drivers::tmp1xx::{self, Resolution, Tmp1xx, Variant};
use hearth_firmware::dsp::fall::{FallConfig, FallDetector};
use hearth_firmware::dsp::ppg::{PpgConfig, PpgWindow};
use hearth_firmware::dsp::weight::{SettleConfig, WeightSettler};
use hearth_firmware::store::{FrameQueue, SeqCounter, SeqStore};
use hearth_firmware::synth::{self, PpgSpec};
use hearth_firmware::uplink;
use hearth_protocol::frame::{self, AckFrame, ClockStatus, DeviceKey, DeviceTime};
use hearth_protocol::{Code, Invalid, Observation, Quantity, Value};

type TestResult = Result<(), &'static str>;
type Test = (&'static str, fn() -> TestResult);

fn check(cond: bool, what: &'static str) -> TestResult {
    if cond { Ok(()) } else { Err(what) }
}

fn tmp105_config_round_trips_over_sbcon_i2c() -> TestResult {
    // SAFETY: each test takes the controller in turn; none keeps it.
    let i2c = unsafe { SbconI2c::new(SBCON3_BASE, || {}) };
    let mut t = Tmp1xx::new(i2c, tmp1xx::DEFAULT_ADDRESS, Variant::Tmp105);
    t.configure(tmp1xx::Config::default())
        .map_err(|_| "configure")?;
    check(
        t.read_config() == Ok(0x60),
        "12-bit config reads back as 0x60",
    )?;
    t.configure(tmp1xx::Config {
        resolution: Resolution::Bits9,
        shutdown: false,
    })
    .map_err(|_| "configure 9 bit")?;
    check(
        t.read_config() == Ok(0x00),
        "9-bit config reads back as 0x00",
    )?;
    t.configure(tmp1xx::Config::default())
        .map_err(|_| "configure")?;
    // QEMU's TMP105 powers up at 0 °C unless the host set it.
    let temp = t.read_temperature().map_err(|_| "read temperature")?;
    check(
        (-400..=800).contains(&temp.sixteenths),
        "temperature in -25..50 °C",
    )
}

fn absent_device_is_an_address_nack() -> TestResult {
    // SAFETY: as above.
    let mut i2c = unsafe { SbconI2c::new(SBCON3_BASE, || {}) };
    let mut b = [0u8; 1];
    let r = i2c.write_read(0x49, &[0], &mut b);
    check(
        r == Err(sbcon::Error::Nack(
            embedded_hal::i2c::NoAcknowledgeSource::Address,
        )),
        "address NACK",
    )
}

fn ppg(spec: &PpgSpec) -> hearth_firmware::dsp::ppg::PpgReport {
    let mut samples = [PpgSample::default(); 200];
    synth::ppg(spec, &mut samples);
    let mut w = PpgWindow::<200>::new();
    for s in samples {
        w.push(s);
    }
    w.analyze(&PpgConfig::new(25), false)
}

fn ppg_72_bpm_on_the_fpu() -> TestResult {
    let r = ppg(&PpgSpec::clean(72.0, 0.5));
    check(
        matches!(r.heart_rate, Value::Number(q) if (71..=73).contains(&q.mantissa)),
        "HR 72",
    )?;
    check(
        matches!(r.spo2, Value::Number(q) if (97..=98).contains(&q.mantissa)),
        "SpO2 97-98",
    )
}

fn ppg_120_bpm_on_the_fpu() -> TestResult {
    let r = ppg(&PpgSpec::clean(120.0, 0.8));
    check(
        matches!(r.heart_rate, Value::Number(q) if (118..=122).contains(&q.mantissa)),
        "HR 120",
    )?;
    check(
        matches!(r.spo2, Value::Number(q) if (89..=91).contains(&q.mantissa)),
        "SpO2 90",
    )
}

fn motion_ppg_is_never_a_number() -> TestResult {
    let r = ppg(&PpgSpec {
        motion: true,
        ..PpgSpec::clean(72.0, 0.5)
    });
    check(
        r.heart_rate == Value::Invalid(Invalid::MotionArtefact)
            && r.spo2 == Value::Invalid(Invalid::MotionArtefact),
        "motion artefact",
    )
}

fn fall_detected_sit_down_not() -> TestResult {
    let count = |trace| {
        let mut d = FallDetector::new(FallConfig::default());
        let mut n = 0;
        synth::accel(trace, 10, 3, |a| n += d.push(a).is_some() as u32);
        n
    };
    check(count(synth::FALL) == 1, "one fall")?;
    check(count(synth::SIT_DOWN) == 0, "sit-down is not a fall")
}

fn weight_settles_once() -> TestResult {
    let mut s = WeightSettler::<32>::new(SettleConfig::default());
    let mut got = 0;
    let mut value = None;
    synth::weighing(72_400, 5, 7, |g| {
        if let Some(o) = s.push(g) {
            got += 1;
            value = Some(o);
        }
    });
    check(got == 1, "one reading")?;
    check(
        value == Some(Observation::number(Code::Weight, Quantity::new(7240, -2))),
        "72.40 kg",
    )
}

fn frames_encode_decode_and_ack_on_target() -> TestResult {
    let key = DeviceKey::new(TEST_KEY);
    let id = frame::device_id("qemu-test").ok_or("id")?;
    let mut q = FrameQueue::<4>::new();
    let mut seq =
        SeqCounter::new(hearth_firmware::store::RamSeqStore::default()).map_err(|_| "seq")?;
    let t = DeviceTime {
        millis: 1234,
        clock: ClockStatus::SinceBoot,
    };
    let obs = [Observation::number(Code::Temp, Quantity::new(385, -1))];
    for _ in 0..3 {
        uplink::queue_observations(&mut q, &mut seq, &key, &id, t, &obs).map_err(|_| "queue")?;
    }
    let (s, bytes) = q.oldest().ok_or("oldest")?;
    let f = frame::decode_frame(bytes, &key, None).map_err(|_| "decode")?;
    check(
        s == 1 && f.seq == 1 && f.observations.as_slice() == obs,
        "frame 1 content",
    )?;
    let mut ack = [0u8; frame::MAX_ENCODED_ACK_LEN];
    let n = frame::encode_ack(
        &AckFrame {
            device_id: id.clone(),
            seq: 2,
        },
        &key,
        &mut ack,
    )
    .map_err(|_| "encode ack")?;
    let released = q
        .on_ack_frame(ack.get(..n).ok_or("ack len")?, &key, "qemu-test")
        .map_err(|_| "ack")?;
    check(
        released == 2 && q.len() == 1,
        "ack of 2 releases two frames",
    )
}

fn no_init_seq_store_keeps_the_bound() -> TestResult {
    let mut store = NoInitSeqStore::take().ok_or("store taken twice")?;
    store.erase();
    check(store.load() == Ok(None), "erased store is empty")?;
    let mut c = SeqCounter::new(store).map_err(|_| "counter")?;
    for expected in 1..=70 {
        check(c.next_seq() == Ok(expected), "counts from 1")?;
    }
    // "Reset": a new counter over the same RAM words resumes above everything handed out.
    let mut c = SeqCounter::new(c.destroy()).map_err(|_| "counter")?;
    check(c.next_seq() == Ok(129), "resumes at the reserved bound")
}

/// Stack measured below the entry frame: painted before the tests, scanned after.
const PAINT_BYTES: usize = 32 * 1024;
const PAINT: u32 = 0xDEAD_BEEF;

/// Paints the free stack below the current stack pointer (leaving 256 bytes for this call's own frame).
fn paint_stack() -> usize {
    let sp = cortex_m::register::msp::read() as usize - 256;
    let lo = sp - PAINT_BYTES;
    let mut p = lo;
    while p < sp {
        // SAFETY: below the stack pointer, inside the 4 MiB RAM region, unused until the tests run.
        unsafe { core::ptr::write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
    sp
}

/// Bytes of the painted region that the tests used.
fn stack_used(top: usize) -> usize {
    let lo = top - PAINT_BYTES;
    let mut p = lo;
    // SAFETY: the region painted by `paint_stack`.
    while p < top && unsafe { core::ptr::read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    top - p
}

#[entry]
fn main() -> ! {
    let top = paint_stack();
    let tests: [Test; 9] = [
        (
            "tmp105_config_round_trips_over_sbcon_i2c",
            tmp105_config_round_trips_over_sbcon_i2c,
        ),
        (
            "absent_device_is_an_address_nack",
            absent_device_is_an_address_nack,
        ),
        ("ppg_72_bpm_on_the_fpu", ppg_72_bpm_on_the_fpu),
        ("ppg_120_bpm_on_the_fpu", ppg_120_bpm_on_the_fpu),
        ("motion_ppg_is_never_a_number", motion_ppg_is_never_a_number),
        ("fall_detected_sit_down_not", fall_detected_sit_down_not),
        ("weight_settles_once", weight_settles_once),
        (
            "frames_encode_decode_and_ack_on_target",
            frames_encode_decode_and_ack_on_target,
        ),
        (
            "no_init_seq_store_keeps_the_bound",
            no_init_seq_store_keeps_the_bound,
        ),
    ];
    let (mut passed, mut failed) = (0u32, 0u32);
    for (name, test) in tests {
        match test() {
            Ok(()) => {
                passed += 1;
                hprintln!("test {} ... ok", name);
            }
            Err(why) => {
                failed += 1;
                hprintln!("test {} ... FAILED: {}", name, why);
            }
        }
    }
    hprintln!("stack high-water: {} bytes", stack_used(top));
    hprintln!("{} passed, {} failed", passed, failed);
    exit(failed == 0)
}
