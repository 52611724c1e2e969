//! Hearth's community hub: receives alerts and heartbeats from every home over MQTT, stores them (SQLite by default,
//! PostgreSQL for a whole county), acknowledges each alert end to end only after its commit, notices homes that go
//! silent, and serves the nurse dashboard (caseload queue, actions that flow back to the homes, patient trends, the
//! technicians' homes page, a FHIR R4 export).
//!
//! - [`config`]: TOML configuration.
//! - [`store`]: the database (sqlx `Any`: one set of queries, per-backend migrations).
//! - [`receiver`]: MQTT shared subscription → batch commit → end-to-end acks.
//! - [`resend`]: nurses' actions resent until the home has applied them.
//! - [`silence`]: "home silent" detection on an injected clock.
//! - [`web`]: the dashboard (axum, server-rendered HTML, SSE), accounts and CSRF.
//! - [`fhir`]: FHIR R4 Bundles following the HL7 PHD IG conventions.
//! - [`service`]: all of the above started together; [`cli`]: the binary's commands.

pub mod accounts;
pub mod cli;
pub mod clock;
pub mod config;
pub mod fhir;
pub mod live;
pub mod receiver;
pub mod resend;
pub mod service;
pub mod silence;
pub mod store;
pub mod web;
