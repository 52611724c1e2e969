//! Per-device and adapter health for the technician: last seen, RSSI, battery, clock offset, firmware revision,
//! reconnects, adapter recoveries. Kept in memory (it describes the radio now, not the patient), served at
//! `GET /api/ble` and mirrored in metrics labelled by device id (never a patient id).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::clock::Millis;

pub const ADAPTER_UNAVAILABLE: &str = "hearth_ble_adapter_unavailable_total";
pub const RECONNECTS: &str = "hearth_ble_reconnects_total";
pub const CONNECT_FAILURES: &str = "hearth_ble_connect_failures_total";
pub const ADAPTER_RECOVERIES: &str = "hearth_ble_adapter_recoveries_total";
pub const RECORDS_DOWNLOADED: &str = "hearth_ble_records_downloaded_total";
pub const UNTRUSTED_TIME: &str = "hearth_ble_untrusted_time_total";
pub const HELD: &str = "hearth_ble_readings_held_total";
pub const BTHOME_REJECTED: &str = "hearth_ble_bthome_rejected_total";
pub const BTHOME_REPEATED: &str = "hearth_ble_bthome_repeated_total";
pub const DEVICE_RSSI: &str = "hearth_ble_device_rssi_dbm";
pub const DEVICE_BATTERY: &str = "hearth_ble_device_battery_percent";
pub const DEVICE_CLOCK_OFFSET: &str = "hearth_ble_device_clock_offset_seconds";
pub const DEVICE_LAST_SEEN: &str = "hearth_ble_device_last_seen_timestamp_seconds";
pub const DEVICE_CONNECTED: &str = "hearth_ble_device_connected";

/// One enrolled device's radio health.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeviceHealth {
    pub id: String,
    pub address: String,
    pub profile: &'static str,
    pub connected: bool,
    pub last_seen_at: Option<Millis>,
    pub last_connected_at: Option<Millis>,
    pub last_disconnected_at: Option<Millis>,
    pub rssi: Option<i16>,
    pub battery: Option<u8>,
    /// hub time − device time at the last coincident timestamp.
    pub clock_offset_ms: Option<i64>,
    pub clock_set_by_hub: bool,
    pub firmware_revision: Option<String>,
    pub reconnects: u64,
    pub connect_failures: u64,
    pub records_downloaded: u64,
    pub last_error: Option<String>,
}

/// The adapter's health.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AdapterHealth {
    pub scanning: bool,
    pub recoveries: u64,
    pub last_recovery_at: Option<Millis>,
    pub last_recovery_cause: Option<&'static str>,
    pub last_event_at: Option<Millis>,
}

#[derive(Debug, Default, Serialize)]
pub struct Snapshot {
    pub adapter: AdapterHealth,
    pub devices: Vec<DeviceHealth>,
}

/// Shared between the Bluetooth tasks (writers) and HTTP (reader).
#[derive(Debug, Default)]
pub struct BleHealth {
    inner: Mutex<(AdapterHealth, BTreeMap<String, DeviceHealth>)>,
    /// Bumped whenever the radio delivers anything (advert or notification): the watchdog's sign of life.
    heard: AtomicU64,
}

impl BleHealth {
    pub fn new(devices: impl IntoIterator<Item = (String, String, &'static str)>) -> BleHealth {
        let map = devices
            .into_iter()
            .map(|(id, address, profile)| {
                let h = DeviceHealth {
                    id: id.clone(),
                    address,
                    profile,
                    ..Default::default()
                };
                (id, h)
            })
            .collect();
        BleHealth {
            inner: Mutex::new((AdapterHealth::default(), map)),
            heard: AtomicU64::new(0),
        }
    }

    /// The radio delivered something.
    pub fn heard(&self) {
        self.heard.fetch_add(1, Ordering::Relaxed);
    }

    /// Changes whenever [`BleHealth::heard`] is called.
    pub fn heard_count(&self) -> u64 {
        self.heard.load(Ordering::Relaxed)
    }

    /// Whether any enrolled device is connected now (a connected device does not advertise: silence is normal).
    pub fn any_connected(&self) -> bool {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.1.values().any(|d| d.connected)
    }

    /// Updates device `id` (if enrolled) and refreshes its gauges.
    pub fn device(&self, id: &str, f: impl FnOnce(&mut DeviceHealth)) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = g.1.get_mut(id) {
            f(d);
            let label = d.id.clone();
            if let Some(r) = d.rssi {
                metrics::gauge!(DEVICE_RSSI, "device" => label.clone()).set(r as f64);
            }
            if let Some(b) = d.battery {
                metrics::gauge!(DEVICE_BATTERY, "device" => label.clone()).set(b as f64);
            }
            if let Some(o) = d.clock_offset_ms {
                metrics::gauge!(DEVICE_CLOCK_OFFSET, "device" => label.clone())
                    .set(o as f64 / 1000.0);
            }
            if let Some(t) = d.last_seen_at {
                metrics::gauge!(DEVICE_LAST_SEEN, "device" => label.clone()).set(t as f64 / 1000.0);
            }
            metrics::gauge!(DEVICE_CONNECTED, "device" => label).set(if d.connected {
                1.0
            } else {
                0.0
            });
        }
    }

    pub fn adapter(&self, f: impl FnOnce(&mut AdapterHealth)) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g.0);
    }

    pub fn snapshot(&self) -> Snapshot {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        Snapshot {
            adapter: g.0.clone(),
            devices: g.1.values().cloned().collect(),
        }
    }
}
