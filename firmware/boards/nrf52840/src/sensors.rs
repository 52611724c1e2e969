//! The sampling task: the firmware library's drivers on the board's buses, its DSP, and its GATT encoders.
//!
//! One loop at 25 Hz (the PPG rate): PPG samples every tick into an 8 s window, the load cell every 4th tick
//! (10 samples/s, the HX711's rate at RATE = low), the thermometer every 30 s, the battery every 5 minutes. Each
//! finished reading becomes a characteristic value and goes to the BLE side. Sensors that do not answer at start
//! are skipped, with a log line: a thermometer-only kit still works.

use core::cell::RefCell;

use defmt::{info, warn};
use embassy_nrf::gpio::{Input, Level, Output, OutputDrive, Pull};
use embassy_nrf::peripherals::{P0_03, P0_04, P0_26, P0_27, SAADC, TWISPI0};
use embassy_nrf::{Peri, saadc, twim};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::channel::Sender;
use embassy_time::{Delay, Duration, Ticker};
use embedded_hal_bus::i2c::RefCellDevice;
use hearth_firmware::drivers::hx711::{Gain, Hx711};
use hearth_firmware::drivers::max30102::{
    self, AdcRange, Max30102, Mode, PpgSample, PulseWidth, SampleAveraging, SampleRate, SpO2Config,
};
use hearth_firmware::drivers::tmp1xx::{self, Tmp1xx, Variant};
use hearth_firmware::dsp::ppg::{PpgConfig, PpgWindow};
use hearth_firmware::dsp::weight::{Calibration, SettleConfig, WeightSettler};
use hearth_firmware::uplink;
use hearth_protocol::{Code, Invalid, Observation};

use super::{Irqs, Value};

/// 8 s of PPG at 25 samples/s (the library's validated window).
const PPG_N: usize = 200;
const TICK_HZ: u64 = 25;
const TEMP_EVERY_TICKS: u32 = 30 * TICK_HZ as u32;
const BATTERY_EVERY_TICKS: u32 = 300 * TICK_HZ as u32;
/// Load-cell calibration: per-unit values from the technician's calibration (docs/firmware.md); these suit a
/// typical 4 × 50 kg half-bridge scale and are refined on the bench.
const SCALE: Calibration = Calibration {
    offset: 0,
    num: 1,
    den: 22,
};

/// What the sampling task hands to the BLE side.
pub enum Reading {
    Temperature(Value),
    SpotCheck(Value),
    Weight(Value),
    Battery(u8),
}

pub struct Hardware {
    pub twim: Peri<'static, TWISPI0>,
    pub sda: Peri<'static, P0_26>,
    pub scl: Peri<'static, P0_27>,
    pub hx_dout: Peri<'static, P0_03>,
    pub hx_sck: Peri<'static, P0_04>,
    pub saadc: Peri<'static, SAADC>,
}

fn value(v: &uplink::GattValue) -> Value {
    let mut out = Value::new();
    let _ = out.extend_from_slice(v.as_bytes());
    out
}

#[embassy_executor::task]
pub async fn task(hw: Hardware, out: Sender<'static, NoopRawMutex, Reading, 8>) {
    let mut tx_buf = [0u8; 16];
    let bus = RefCell::new(twim::Twim::new(
        hw.twim,
        Irqs,
        hw.sda,
        hw.scl,
        twim::Config::default(),
        &mut tx_buf,
    ));
    let mut thermometer = Tmp1xx::new(
        RefCellDevice::new(&bus),
        tmp1xx::DEFAULT_ADDRESS,
        Variant::Tmp102,
    );
    let thermometer_ok = thermometer.configure(tmp1xx::Config::default()).is_ok();
    let mut oximeter = Max30102::new(RefCellDevice::new(&bus));
    let oximeter_ok = setup_oximeter(&mut oximeter).is_ok();
    let scale = Hx711::new(
        Output::new(hw.hx_sck, Level::Low, OutputDrive::Standard),
        Input::new(hw.hx_dout, Pull::None),
        Delay,
        Gain::A128,
    );
    let mut scale = scale.ok();
    let mut adc = saadc::Saadc::new(
        hw.saadc,
        Irqs,
        saadc::Config::default(),
        [saadc::ChannelConfig::single_ended(saadc::VddInput)],
    );
    adc.calibrate().await;
    info!(
        "sensors: thermometer {}, oximeter {}, load cell {}",
        thermometer_ok,
        oximeter_ok,
        scale.is_some()
    );

    let mut window: PpgWindow<PPG_N> = PpgWindow::new();
    let mut fifo = [PpgSample::default(); 32];
    let mut settler = WeightSettler::<32>::new(SettleConfig::default());
    let mut ticker = Ticker::every(Duration::from_hz(TICK_HZ));
    let mut tick: u32 = 0;
    loop {
        ticker.next().await;
        if thermometer_ok && tick.is_multiple_of(TEMP_EVERY_TICKS) {
            let o = match thermometer.read_temperature() {
                Ok(t) => Observation::number(Code::Temp, t.celsius()),
                Err(_) => Observation::invalid(Code::Temp, Invalid::DeviceFault),
            };
            if let Ok(v) = uplink::characteristic(&o) {
                let _ = out.try_send(Reading::Temperature(value(&v)));
            }
        }
        if oximeter_ok && let Ok(n) = oximeter.read_fifo(&mut fifo) {
            for s in fifo.iter().take(n) {
                if window.push(*s) {
                    let [hr, spo2] = window
                        .analyze(&PpgConfig::new(TICK_HZ as u16), false)
                        .observations();
                    window.clear();
                    if let Ok(v) = uplink::plx_spot_check(spo2.value, hr.value) {
                        let _ = out.try_send(Reading::SpotCheck(value(&v)));
                    }
                }
            }
        }
        if tick.is_multiple_of(4)
            && let Some(hx) = scale.as_mut()
            && let Ok(raw) = hx.read()
            && let Some(o) = settler.push(SCALE.grams(raw))
            && let Ok(v) = uplink::characteristic(&o)
        {
            let _ = out.try_send(Reading::Weight(value(&v)));
        }
        if tick.is_multiple_of(BATTERY_EVERY_TICKS) {
            let mut buf = [0i16; 1];
            adc.sample(&mut buf).await;
            let _ = out.try_send(Reading::Battery(battery_percent(buf[0])));
        }
        tick = tick.wrapping_add(1);
        if tick == 0 {
            warn!("tick counter wrapped");
        }
    }
}

fn setup_oximeter<I: embedded_hal::i2c::I2c>(
    m: &mut Max30102<I>,
) -> Result<(), max30102::Error<I::Error>> {
    m.check_part_id()?;
    m.reset()?;
    // 50 samples/s averaged in pairs: 25 samples/s into the FIFO, the rate the PPG analysis is validated at.
    m.set_fifo_config(SampleAveraging::Two, true, 0)?;
    m.set_spo2_config(SpO2Config {
        range: AdcRange::Na4096,
        rate: SampleRate::Hz50,
        pulse_width: PulseWidth::Us411,
    })?;
    m.set_led_currents(0x24, 0x24)?;
    m.clear_fifo()?;
    m.set_mode(Mode::SpO2)
}

/// VDD (12-bit, gain 1/6, 0.6 V reference: 3.6 V full scale) as a percentage of a 2.0–3.0 V range (two alkaline
/// cells or a coin cell, roughly linear over their useful life).
fn battery_percent(raw: i16) -> u8 {
    let mv = raw.max(0) as i32 * 3600 / 4096;
    ((mv - 2000).clamp(0, 1000) / 10) as u8
}
