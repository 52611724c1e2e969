//! Alerting rules: synchronous functions of (state, reading, now). No clock reads, no I/O.

pub mod confirm;
pub mod flap;
pub mod news2;
pub mod sbard;
pub mod schedule;
pub mod threshold;
pub mod trend;
