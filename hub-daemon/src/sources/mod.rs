//! Sources turn what devices send into [`crate::core::Inbound`] messages: parsed, not yet gated. Each is a plain
//! async task that awaits a bounded send into the core — that await is the back-pressure.

pub mod frames;
pub mod json;
pub mod mqtt;
