//! The wiring of one Bluetooth scenario: a simulated BlueZ on its own bus, the real `hearthd` pointed at it with
//! `DBUS_SYSTEM_BUS_ADDRESS` (a process of its own, so the bus is private to the scenario), a private upstream
//! Mosquitto and the simulated community hub.

use std::time::Duration;

use crate::bluez::SimBluez;
use crate::hub::{Hub, HubConfig};
use crate::mosquitto::Mosquitto;
use crate::upstream::Receiver;

/// Patience for one expected event over the radio (connect, discovery and backoff included).
pub const BLE_TIMEOUT: Duration = Duration::from_secs(20);

pub struct BleRig {
    pub sim: SimBluez,
    pub upstream: Mosquitto,
    pub receiver: Receiver,
    pub hub: Hub,
}

/// Fast reconnects and a quiet watchdog unless a test turns it on.
pub const FAST_BLE: &str = "\n[ble]\nenabled = true\nreconnect_min_ms = 200\nreconnect_max_ms = 1000\nwatchdog_silence_s = 0\nop_timeout_ms = 5000\n";

/// One `[[ble.devices]]` entry.
pub fn ble_device(id: &str, address: &str, profile: &str, patient: &str) -> String {
    format!(
        "\n[[ble.devices]]\nid = \"{id}\"\naddress = \"{address}\"\nprofile = \"{profile}\"\npatient = \"{patient}\"\n"
    )
}

impl BleRig {
    /// Starts the simulated BlueZ (peripherals are added by `add` before the hub starts), the upstream side, and the
    /// hub configured by `configure` with `ble_toml` appended.
    pub async fn start(
        add: impl AsyncFnOnce(&SimBluez),
        ble_toml: &str,
        configure: impl FnOnce(HubConfig) -> HubConfig,
    ) -> BleRig {
        let sim = SimBluez::start().await;
        add(&sim).await;
        let upstream = Mosquitto::start();
        let receiver = Receiver::start(upstream.port()).await;
        let cfg = configure(HubConfig::new(upstream.port()))
            .extra_toml(ble_toml)
            .env("DBUS_SYSTEM_BUS_ADDRESS", sim.bus_address());
        let hub = Hub::start(cfg).await;
        BleRig {
            sim,
            upstream,
            receiver,
            hub,
        }
    }

    pub async fn api(&self, path: &str) -> serde_json::Value {
        crate::http::get_json(self.hub.http_addr(), path)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let samples = crate::http::metrics(self.hub.http_addr())
            .await
            .unwrap_or_else(|e| panic!("GET /metrics: {e}"));
        crate::http::metric(&samples, name, labels).unwrap_or(0.0)
    }

    /// Waits until `name{labels}` satisfies `pred`.
    pub async fn wait_metric(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        pred: impl Fn(f64) -> bool,
    ) -> f64 {
        let addr = self.hub.http_addr();
        crate::wait::poll_until(&format!("metric {name}{labels:?}"), BLE_TIMEOUT, || async {
            let samples = crate::http::metrics(addr).await?;
            let v = crate::http::metric(&samples, name, labels).unwrap_or(0.0);
            if pred(v) { Ok(v) } else { Err(format!("{v}")) }
        })
        .await
    }
}
