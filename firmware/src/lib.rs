//! Hearth's sensor-board firmware library: everything between a sensor's bus and the uplink, with no heap and no
//! board in sight.
//!
//! ```text
//! drivers ──samples──► dsp ──Observation──► Frame (seq, MAC) ──► store::FrameQueue ──► uplink (serial / BLE GATT)
//!   ▲ embedded-hal 1.0 I2C / pins + DelayNs                        ▲ hub's ack frame releases frames
//! ```
//!
//! - [`drivers`]: TMP102/TMP105 thermometer, MAX30102 PPG front end, HX711 load-cell ADC, LIS3DH accelerometer. Each
//!   driver owns its bus (given back by `destroy()`), wraps bus errors in its own `Error<E>` and reads into buffers
//!   the caller owns — the shape of eldruin/max3010x-rs.
//! - [`dsp`]: heart rate, SpO2 and a signal-quality index from red/IR PPG; fall detection from acceleration; weight
//!   settling. Each turns raw samples into [`hearth_protocol::Observation`]s, and a measurement it cannot trust
//!   becomes [`hearth_protocol::Invalid`], never a number.
//! - [`store`]: a bounded ring of encoded frames kept until the hub acknowledges them, and a sequence counter that
//!   survives reset through a [`store::SeqStore`].
//! - [`uplink`]: frames over a serial line ([`embedded_io::Write`]), and Bluetooth SIG characteristic values for a
//!   BLE board.
//! - `synth` (feature `synth`): synthesised signals with known answers, for host and on-target tests.
//!
//! Boards live in `firmware/boards/` as separate crates outside the host workspace. See `docs/firmware.md`.
#![no_std]

pub mod drivers;
pub mod dsp;
pub mod store;
#[cfg(feature = "synth")]
pub mod synth;
pub mod uplink;

pub use hearth_protocol;
