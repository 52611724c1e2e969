//! Alerting rules: synchronous functions of (state, reading, now). No clock reads, no I/O.

pub mod news2;
pub mod threshold;
