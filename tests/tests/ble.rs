//! Bluetooth LE end to end: simulated peripherals on a simulated BlueZ (zbus, private dbus-daemon) → the real
//! `hearthd` through btleplug → alerts at the simulated community hub.

use hearth_tests::ble_rig::{BLE_TIMEOUT, BleRig, FAST_BLE, ble_device};
use hearth_tests::bluez::profiles::{self, HEART_RATE};
use hearth_tests::hub::Rule;
use time::OffsetDateTime;

const HRM: &str = "C0:FF:EE:00:00:01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heart_rate_strap_streams_to_an_alert() {
    let now = OffsetDateTime::now_utc();
    let mut strap = None;
    let toml = format!("{FAST_BLE}{}", ble_device("hrm-1", HRM, "heart_rate", "p1"));
    let rig = BleRig::start(
        async |sim| strap = Some(sim.add(profiles::heart_rate_strap(HRM, now)).await),
        &toml,
        |c| {
            c.patient("p1", &[])
                .rule(Rule::above("heart_rate", 120.0, "high"))
        },
    )
    .await;
    let strap = strap.unwrap();
    strap.wait_subscribed(HEART_RATE, BLE_TIMEOUT).await;
    for bpm in [72, 80, 135] {
        assert!(strap.notify(HEART_RATE, &profiles::heart_rate(bpm)).await);
    }
    let alert = rig
        .receiver
        .wait_for_alert(BLE_TIMEOUT, |a| a.code.as_deref() == Some("heart_rate"))
        .await;
    assert_eq!(alert.patient, "p1");
    assert_eq!(alert.device.as_deref(), Some("hrm-1"));
    assert_eq!(alert.value_f64(), Some(135.0));
    assert_eq!(alert.time_source.as_deref(), Some("hub"));
    let ble = rig.api("/api/ble").await;
    let d = &ble["devices"][0];
    assert_eq!(d["id"], "hrm-1");
    assert_eq!(d["connected"], true);
    assert_eq!(d["battery"], 87);
    assert_eq!(d["firmware_revision"], "2.4.1");
}
