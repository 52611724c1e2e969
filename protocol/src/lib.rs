//! Hearth's shared wire formats, used by the sensor-board firmware (`no_std`, no heap) and the hub (std).
//!
//! - [`vocab`]: observation codes with their UCUM unit, LOINC code and plausible range; [`vocab::Value`] is a number
//!   with the precision the device sent, or an explicit reason why it is not one — never a sentinel number.
//! - [`ieee11073`]: SFLOAT/FLOAT, whose special values (NaN, NRes, ±INF) become [`vocab::Invalid`].
//! - [`gatt`]: Bluetooth SIG health characteristics, decode and encode, explicit little-endian.
//! - [`frame`]: the compact authenticated board frame (postcard + COBS + truncated HMAC) and the hub's ack frame.
//! - [`bthome`]: BTHome v2 advertisements, including AES-CCM encrypted ones.
//! - [`json`] (feature `alloc`): the MQTT JSON interop format for readings and alerts.
//!
//! Every decoder takes a byte slice and returns a typed error with the offending byte offset; none panics.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod bthome;
pub mod frame;
pub mod gatt;
pub mod ieee11073;
#[cfg(feature = "alloc")]
pub mod json;
pub mod vocab;

pub use vocab::{Code, Invalid, Observation, Quantity, Value};
