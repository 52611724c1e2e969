//! Hearth's sensor-board application on QEMU mps2-an386.
//!
//! Prints `READY hearth-board <device id> thermometer=ok seq=<next> queued=<n> restored=<yes|no>` on UART0, then
//! reads text commands from UART0 (one per line) and the hub's ack frames (`0x00 <COBS> 0x00`, as hearthd's serial
//! source writes them), and sends every reading as a board frame (COBS, each preceded by a `0x00`) on UART0.
//! Console lines (READY, STATUS) end with `\n` and a `0x00`, so a hub reading frames sees a complete chunk at once.
//!
//! Store and forward: frames stay in a queue in retained RAM (it survives a reset, see `retained.rs`) until an ack
//! covers them. An ack is cumulative ("everything up to seq"), so a newer frame must never reach the hub before an
//! older one it missed: new frames are sent only when nothing is in flight (the next ack sends them otherwise), and
//! when frames in flight get no ack within `RESEND_MS` (the hub is away, or the line dropped them) the whole queue
//! is sent again from the oldest. After a reset, whatever the last boot left unacknowledged is sent first.
//!
//! | command | effect |
//! |---|---|
//! | `T` | read the TMP105 over I2C → temperature frame |
//! | `P <red> <ir>` | one PPG sample (25 samples/s); every 200 samples → heart-rate + SpO2 frame |
//! | `A <x> <y> <z>` | one acceleration sample in milli-g (100 samples/s) → fall frame when a fall is confirmed; also marks the current PPG window as moving |
//! | `W <grams>` | one load-cell reading → weight frame once settled |
//! | `K <hex>` | the hub's ack frame, hex → releases acknowledged frames |
//! | `R` | send every unacknowledged frame again |
//! | `X` | exit QEMU (semihosting, code 0) |
//!
//! No QEMU device is a PPG sensor or an accelerometer, so those samples come from the host; the thermometer is the
//! emulated TMP105, whose temperature the host sets over QMP.
#![no_std]
#![no_main]

use core::fmt::Write as _;

use cortex_m_rt::entry;
use hearth_board_qemu_mps2_an386::retained::Retained;
use hearth_board_qemu_mps2_an386::sbcon::{SBCON3_BASE, SbconI2c};
use hearth_board_qemu_mps2_an386::uart::Uart0;
use hearth_board_qemu_mps2_an386::{DEVICE_ID, NoInitSeqStore, TEST_KEY, clock, exit};
use hearth_firmware::drivers::lis3dh::MilliG;
use hearth_firmware::drivers::max30102::PpgSample;
use hearth_firmware::drivers::tmp1xx::{self, Tmp1xx, Variant};
use hearth_firmware::dsp::fall::{FallConfig, FallDetector};
use hearth_firmware::dsp::ppg::{PpgConfig, PpgWindow};
use hearth_firmware::dsp::weight::{SettleConfig, WeightSettler};
use hearth_firmware::store::{FrameQueue, SeqCounter};
use hearth_firmware::uplink;
use hearth_protocol::frame::{self, ClockStatus, DeviceKey, DeviceTime, MAX_ENCODED_ACK_LEN};
use hearth_protocol::{Code, Invalid, Observation};

/// 8 s of PPG at 25 samples/s.
const PPG_N: usize = 200;
const PPG_RATE: u16 = 25;
/// Frames kept until acknowledged.
const QUEUE_SLOTS: usize = 16;
/// An acceleration this far from 1 g during a PPG window means the hand moved.
const MOTION_MG: i32 = 300;
/// Sent frames with no ack for this long are all sent again (the hub is away, or an ack was lost).
const RESEND_MS: u32 = 1000;
/// Stillness that confirms a fall. The library default (2 s) would put the alert more than 2 s after the impact;
/// 1 s keeps the three-phase check (free fall, impact, stillness) and lets the alert reach the hub within 2 s of
/// the impact. A design parameter like the others, not clinically validated.
const FALL_STILL_MS: u32 = 1000;

#[entry]
fn main() -> ! {
    let cp = cortex_m::Peripherals::take().unwrap_or_else(|| exit(false));
    clock::start(cp.SYST);
    // SAFETY: the only UART0 and the only SBCon3 owner.
    let mut uart = unsafe { Uart0::new() };
    let i2c = unsafe { SbconI2c::new(SBCON3_BASE, || {}) };
    let mut thermometer = Tmp1xx::new(i2c, tmp1xx::DEFAULT_ADDRESS, Variant::Tmp105);
    let thermometer_ok = thermometer.configure(tmp1xx::Config::default()).is_ok();

    let key = DeviceKey::new(TEST_KEY);
    let id = frame::device_id(DEVICE_ID).unwrap_or_else(|| exit(false));
    let store = NoInitSeqStore::take().unwrap_or_else(|| exit(false));
    let Ok(mut seq) = SeqCounter::new(store) else {
        exit(false)
    };
    let next_seq = seq.peek();
    // SAFETY: once per boot; FrameQueue is plain data (arrays and integers).
    let (mut retained, restored) = unsafe { Retained::restore(FrameQueue::<QUEUE_SLOTS>::new) };
    let ppg =
        cortex_m::singleton!(: PpgWindow<PPG_N> = PpgWindow::new()).unwrap_or_else(|| exit(false));
    let mut ppg_moving = false;
    let mut fall = FallDetector::new(FallConfig {
        still_ms: FALL_STILL_MS,
        ..FallConfig::default()
    });
    let mut auto_resend = true;
    // When frames went out with no ack since (None: nothing is waiting for an ack).
    let mut waiting_since: Option<u32> = None;
    let mut scale = WeightSettler::<32>::new(SettleConfig::default());

    let _ = write!(
        uart,
        "READY hearth-board {DEVICE_ID} thermometer={} seq={next_seq} queued={} restored={}\n\0",
        if thermometer_ok { "ok" } else { "missing" },
        retained.get().len(),
        if restored { "yes" } else { "no" },
    );
    // Whatever the last boot left unacknowledged goes out first, oldest first.
    retained.get().rewind();
    if uplink::send_pending(retained.get(), &mut uart).unwrap_or(0) > 0 {
        waiting_since = Some(clock::millis());
    }
    retained.seal();

    let mut input = Input::new();
    loop {
        let Some(b) = uart.try_read_byte() else {
            if auto_resend
                && retained.get().in_flight() > 0
                && let Some(since) = waiting_since
                && clock::millis().wrapping_sub(since) >= RESEND_MS
            {
                let queue = retained.get();
                queue.rewind();
                let _ = uplink::send_pending(queue, &mut uart);
                retained.seal();
                waiting_since = Some(clock::millis());
            }
            continue;
        };
        let text = match input.push(b) {
            None => continue,
            Some(Chunk::Frame(bytes)) => {
                let queue = retained.get();
                if queue.on_ack_frame(bytes, &key, DEVICE_ID).is_ok() {
                    // All in flight acknowledged: what queued up meanwhile goes now.
                    if queue.in_flight() == 0 {
                        let _ = uplink::send_pending(queue, &mut uart);
                    }
                    waiting_since = (queue.in_flight() > 0).then(clock::millis);
                    retained.seal();
                }
                continue;
            }
            Some(Chunk::Line(bytes)) => core::str::from_utf8(bytes).unwrap_or(""),
        };
        let queue = retained.get();
        let mut words = text.split_ascii_whitespace();
        let cmd = words.next().unwrap_or("");
        let mut num = || words.next().and_then(|w| w.parse::<i32>().ok());
        let mut readings: heapless::Vec<Observation, 2> = heapless::Vec::new();
        match cmd {
            "T" => {
                let value = match thermometer.read_temperature() {
                    Ok(t) => Observation::number(Code::Temp, t.celsius()),
                    Err(_) => Observation::invalid(Code::Temp, Invalid::DeviceFault),
                };
                let _ = readings.push(value);
            }
            "P" => {
                if let (Some(red), Some(ir)) = (num(), num()) {
                    let s = PpgSample {
                        red: red.max(0) as u32,
                        ir: ir.max(0) as u32,
                    };
                    if ppg.push(s) {
                        let report = ppg.analyze(&PpgConfig::new(PPG_RATE), ppg_moving);
                        for o in report.observations() {
                            let _ = readings.push(o);
                        }
                        ppg.clear();
                        ppg_moving = false;
                    }
                }
            }
            "A" => {
                if let (Some(x), Some(y), Some(z)) = (num(), num(), num()) {
                    let a = MilliG { x, y, z };
                    let m2 = x as i64 * x as i64 + y as i64 * y as i64 + z as i64 * z as i64;
                    let (lo, hi) = ((1000 - MOTION_MG) as i64, (1000 + MOTION_MG) as i64);
                    if !ppg.is_empty() && (m2 < lo * lo || m2 > hi * hi) {
                        ppg_moving = true;
                    }
                    if let Some(event) = fall.push(a) {
                        let _ = readings.push(event.observation());
                    }
                }
            }
            "W" => {
                if let Some(g) = num()
                    && let Some(o) = scale.push(g)
                {
                    let _ = readings.push(o);
                }
            }
            "K" => {
                let mut ack = [0u8; MAX_ENCODED_ACK_LEN];
                if let Some(n) = words.next().and_then(|h| unhex(h, &mut ack))
                    && queue
                        .on_ack_frame(ack.get(..n).unwrap_or(&[]), &key, DEVICE_ID)
                        .is_ok()
                {
                    waiting_since = (queue.in_flight() > 0).then(clock::millis);
                }
            }
            "R" => {
                queue.rewind();
                let _ = uplink::send_pending(queue, &mut uart);
            }
            "N" => auto_resend = false,
            "S" => {
                let _ = write!(
                    uart,
                    "STATUS seq={} queued={} dropped={} acked={}\n\0",
                    seq.peek(),
                    queue.len(),
                    queue.dropped(),
                    queue.acked().unwrap_or(0)
                );
            }
            // The queue was sealed after the last change, so it survives the reset as it is.
            "B" => cortex_m::peripheral::SCB::sys_reset(),
            "X" => exit(true),
            _ => {}
        }
        if !readings.is_empty() {
            let time = DeviceTime {
                millis: clock::millis() as i64,
                clock: ClockStatus::SinceBoot,
            };
            // A full queue drops (and counts) its oldest frame; a frame that cannot be built is a bug.
            if uplink::queue_observations(queue, &mut seq, &key, &id, time, &readings).is_err() {
                exit(false);
            }
            // With frames in flight, the new one waits for their ack (or their resend), never overtaking them. A
            // scripted test without automatic resend (`N`) gets every frame at once, as before.
            if (!auto_resend || queue.in_flight() == 0)
                && uplink::send_pending(queue, &mut uart).unwrap_or(0) > 0
                && waiting_since.is_none()
            {
                waiting_since = Some(clock::millis());
            }
        }
        retained.seal();
    }
}

/// What the UART brought: a text command line, or a `0x00`-delimited frame (the hub's ack).
enum Chunk<'a> {
    Line(&'a [u8]),
    Frame(&'a [u8]),
}

/// Splits UART input into text lines and `0x00`-delimited frames. A `0x00` ends a frame if bytes came before it,
/// else starts one; inside a frame a newline is data. An over-long line or frame is truncated (and then fails to
/// parse or verify).
struct Input {
    buf: [u8; 256],
    len: usize,
    in_frame: bool,
}

impl Input {
    const fn new() -> Self {
        Input {
            buf: [0; 256],
            len: 0,
            in_frame: false,
        }
    }

    fn push(&mut self, b: u8) -> Option<Chunk<'_>> {
        match b {
            0 if self.len > 0 => {
                let n = core::mem::take(&mut self.len);
                self.in_frame = false;
                self.buf.get(..n).map(Chunk::Frame)
            }
            0 => {
                self.in_frame = true;
                None
            }
            b'\n' if !self.in_frame => {
                let n = core::mem::take(&mut self.len);
                self.buf.get(..n).map(Chunk::Line)
            }
            b'\r' if !self.in_frame => None,
            b => {
                if let Some(slot) = self.buf.get_mut(self.len) {
                    *slot = b;
                    self.len += 1;
                }
                None
            }
        }
    }
}

/// Hex → bytes into `out`; `None` on a bad digit, odd length or overflow.
fn unhex(h: &str, out: &mut [u8]) -> Option<usize> {
    let b = h.as_bytes();
    if !b.len().is_multiple_of(2) || b.len() / 2 > out.len() {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o = digit(*pair.first()?)? << 4 | digit(*pair.get(1)?)?;
    }
    Some(b.len() / 2)
}
