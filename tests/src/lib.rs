//! Fixtures for Hearth's end-to-end tests: everything a test needs to run the real `hearthd` binary against real
//! brokers on loopback, with nothing fixed (ports, databases and brokers are private to each test).
//!
//! - [`browser`]: headless Chromium over the DevTools protocol, for the dashboard's browser test.
//! - [`ports`]: a free loopback port.
//! - [`power_cut`]: power cuts that lose unsynced writes (an `LD_PRELOAD` shim under the real daemon).
//! - [`proxy`]: a TCP fault proxy (seeded closes, resets and stalls) for flaky-link tests.
//! - [`mosquitto`]: a private Mosquitto broker that can be stopped and started again on the same port.
//! - [`fhir`]: structural checks of FHIR R4 JSON Bundles and Observations.
//! - [`hub`]: the `hearthd` child process ([`hub::Hub`]) and the builder of its TOML configuration
//!   ([`hub::HubConfig`]).
//! - [`upstream`]: a simulated community hub that records every alert and sends end-to-end acks.
//! - [`sensors`]: a simulated device publishing JSON readings and recording which ones the broker PubAcked.
//! - [`http`]: a minimal HTTP GET client for the hub's API and a Prometheus text reader.
//! - [`db`]: read-only access to the hub's SQLite database.
//! - [`frames`]: authentic board frames.
//! - [`pki`]: a CA, certificates (valid, expired, revoked by a CRL) made at test time, and TLS MQTT clients.
//! - [`load`]: continuous reading load from several simulated devices.
//! - [`community`]: the community hub (in-process) and simulated homes that talk to it over a broker.
//! - [`postgres`]: a private PostgreSQL server for the community hub's tests.
//! - [`rig`]: the usual wiring of all of the above for one scenario.
//! - [`cohort`]: a simulated cohort of patients' home readings, driven through the real core loop (issue 5).
//! - [`check`]: delivery checks (outbox vs receiver) shared by the fault tests.
//! - [`survival`]: the full after-the-faults verdict (nothing committed or raised lost, audit chain intact).
//! - [`web`]: an HTTP client with a cookie jar for the community hub's dashboard.
//! - [`wait`]: bounded waiting helpers; every wait in these tests has a timeout.
//! - [`bluez`]: a simulated BlueZ (zbus) on a private `dbus-daemon`, with scriptable health devices and BTHome
//!   sensors; [`ble_rig`]: one Bluetooth scenario's wiring (simulated BlueZ, hub pointed at it, upstream receiver).
//!
//! Every wait awaits an event (a channel, a PubAck, a file) with a timeout. Only fixtures poll, and only where there
//! is no event to await (a TCP port opening, a file appearing, an HTTP view changing), always in a bounded loop.

pub mod ble_rig;
pub mod bluez;
pub mod browser;
pub mod check;
pub mod cohort;
pub mod community;
pub mod db;
pub mod fhir;
pub mod frames;
pub mod http;
pub mod hub;
pub mod load;
pub mod mosquitto;
pub mod pki;
pub mod ports;
pub mod postgres;
pub mod power_cut;
pub mod proxy;
pub mod rig;
pub mod sensors;
pub mod survival;
pub mod time_fmt;
pub mod upstream;
pub mod wait;
pub mod web;
