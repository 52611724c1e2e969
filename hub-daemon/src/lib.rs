//! `hearthd`, the Hearth hub daemon that runs in a patient's home.
//!
//! ```text
//! sources (mqtt, …) ──bounded──► core loop (one task) ──one transaction──► store (SQLite)
//!   parse, never await the DB     gate → rules → alerts                    readings, quarantine, alerts,
//!                                 acks sources after commit                 audit events, outbox
//! upstream publisher ◄── outbox (read) ── reports delivery to the core ◄── community hub acks
//! http: health, metrics, technician API (reads the store)
//! ```
//!
//! - [`config`]: TOML, validated before anything starts.
//! - [`gate`]: the validity gate; [`rules`]: synchronous alerting rules; [`core`]: the single owner of clinical state.
//! - [`store`]: SQLite via sqlx; [`sources`]: MQTT (JSON and board frames); [`broker`]: the embedded broker.
//! - [`upstream`]: the durable outbox publisher; [`http`]: local HTTP; [`daemon`]: wiring and shutdown.
//! - [`cli`]: the `hearthd` command line; [`demo`]: the README's demo.
//! - [`hil`]: the hardware-in-loop harness (`hearthd hil run`).
//! - [`device_auth`]: who may connect and publish on the sensors side; [`tls`]: TLS for the MQTT clients;
//!   [`pseudonym`]: patient ids are enrolment pseudonyms (docs/security.md).

pub mod broker;
pub mod cli;
mod cli_views;
pub mod clock;
pub mod config;
pub mod core;
pub mod daemon;
pub mod decode;
pub mod demo;
pub mod device_auth;
pub mod failpoints;
pub mod gate;
pub mod hil;
pub mod http;
pub mod model;
pub mod news2_cmd;
pub mod pseudonym;
pub mod rules;
pub mod sources;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod upstream;
