//! Sensor drivers, generic over embedded-hal 1.0 traits.
//!
//! Conventions (after eldruin/max3010x-rs): `new()` takes the bus and does no I/O; every fallible method returns the
//! driver's `Error<E>` wrapping the bus error `E`; readings go into buffers the caller owns; `destroy()` hands the bus
//! (or pins) back. Register addresses and bit positions cite the device datasheet.

pub mod hx711;
pub mod lis3dh;
pub mod max30102;
pub mod tmp1xx;
