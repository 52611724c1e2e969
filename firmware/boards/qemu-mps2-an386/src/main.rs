//! Hearth's sensor-board application on QEMU mps2-an386.
//!
//! Prints `READY hearth-board <device id>` on UART0, then reads text commands from UART0 (one per line) and sends
//! every reading as a board frame (COBS, each preceded by a `0x00`) on UART0:
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
    let queue = cortex_m::singleton!(: FrameQueue<QUEUE_SLOTS> = FrameQueue::new())
        .unwrap_or_else(|| exit(false));
    let ppg =
        cortex_m::singleton!(: PpgWindow<PPG_N> = PpgWindow::new()).unwrap_or_else(|| exit(false));
    let mut ppg_moving = false;
    let mut fall = FallDetector::new(FallConfig::default());
    let mut scale = WeightSettler::<32>::new(SettleConfig::default());

    let _ = writeln!(
        uart,
        "READY hearth-board {DEVICE_ID} thermometer={}",
        if thermometer_ok { "ok" } else { "missing" }
    );

    let mut line = [0u8; 256];
    loop {
        let len = read_line(&mut uart, &mut line);
        let text = core::str::from_utf8(line.get(..len).unwrap_or(&[])).unwrap_or("");
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
                if let Some(n) = words.next().and_then(|h| unhex(h, &mut ack)) {
                    let _ = queue.on_ack_frame(ack.get(..n).unwrap_or(&[]), &key, DEVICE_ID);
                }
            }
            "R" => {
                queue.rewind();
                let _ = uplink::send_pending(queue, &mut uart);
            }
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
            let _ = uplink::send_pending(queue, &mut uart);
        }
    }
}

/// Reads one line (without `\r`/`\n`) into `buf`; an over-long line is truncated.
fn read_line(uart: &mut Uart0, buf: &mut [u8]) -> usize {
    let mut n = 0;
    loop {
        match uart.read_byte() {
            b'\n' => return n,
            b'\r' => {}
            b => {
                if let Some(slot) = buf.get_mut(n) {
                    *slot = b;
                    n += 1;
                }
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
