//! Signal processing: raw samples in, [`hearth_protocol::Observation`]s out.
//!
//! Every stage is a synchronous, allocation-free function or state machine driven by the caller's samples; none
//! reads a clock (time is the sample index × the sample period the caller configures), so the same code runs on the
//! host against synthesised traces and on the board. A measurement the stage cannot trust becomes a
//! [`hearth_protocol::Invalid`] reason — a motion-corrupted PPG is never reported as a number.

pub mod fall;
pub mod ppg;
pub mod weight;
