//! `hearthd ble scan` and `hearthd ble enroll` against the simulated BlueZ.

use std::process::Command;

use hearth_tests::bluez::{SimBluez, profiles};
use hearth_tests::hub::{Hub, HubConfig};
use time::OffsetDateTime;

const CUFF: &str = "C0:FF:EE:00:00:21";
const MOTION: &str = "54:48:E6:8F:80:A5";

async fn sim_with_devices() -> SimBluez {
    let sim = SimBluez::start().await;
    sim.add(profiles::cuff(CUFF, OffsetDateTime::now_utc()))
        .await;
    let motion = sim.add(profiles::bthome_sensor(MOTION)).await;
    // Plain BTHome: temperature 22.50 °C (0x02, 0x08CA) and motion detected (0x21, 1).
    motion
        .advertise_service_data(0xFCD2, &[0x40, 0x02, 0xCA, 0x08, 0x21, 0x01])
        .await;
    sim
}

fn hearthd(sim: &SimBluez) -> Command {
    let mut c = Command::new(Hub::binary());
    c.env("DBUS_SYSTEM_BUS_ADDRESS", sim.bus_address());
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_lists_nearby_devices_with_services_rssi_and_decoded_adverts() {
    let sim = sim_with_devices().await;
    let out = tokio::task::spawn_blocking({
        let mut c = hearthd(&sim);
        move || {
            c.args(["ble", "scan", "--duration-s", "2"])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let cuff = lines
        .iter()
        .find(|d| d["address"] == CUFF)
        .expect("cuff listed");
    assert_eq!(cuff["services"][0]["profile"], "blood_pressure", "{cuff}");
    assert!(
        cuff["rssi"]
            .as_i64()
            .is_some_and(|r| (-62..=-58).contains(&r)),
        "{cuff}"
    );
    assert_eq!(cuff["name"], "BPM");
    let motion = lines
        .iter()
        .find(|d| d["address"] == MOTION)
        .expect("sensor listed");
    let objects = &motion["adverts"][0]["bthome"]["objects"];
    assert!(objects.to_string().contains("motion"), "{motion}");
    assert!(objects.to_string().contains("temperature"), "{motion}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_writes_the_binding_and_audits_it() {
    let sim = sim_with_devices().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hearthd.toml");
    let toml = HubConfig::new(1883)
        .patient("p1", &[])
        .to_toml(&dir.path().join("hearth.db"));
    std::fs::write(&config, toml).unwrap();
    let out = tokio::task::spawn_blocking({
        let mut c = hearthd(&sim);
        let config = config.clone();
        move || {
            c.args(["ble", "enroll", CUFF, "--patient", "p1", "--config"])
                .arg(&config)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The profile came from the services the cuff advertises.
    assert_eq!(result["profile"], "blood_pressure");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains(&format!("address = \"{CUFF}\"")), "{text}");
    assert!(text.contains("patient = \"p1\""), "{text}");
    let check = Command::new(Hub::binary())
        .args(["check-config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let mut db = hearth_tests::db::HubDb::open(&dir.path().join("hearth.db")).await;
    let detail: String =
        sqlx::query_scalar("SELECT detail FROM alert_events WHERE event = 'ble_enrolled'")
            .fetch_one(db.conn())
            .await
            .unwrap();
    assert!(
        detail.contains(CUFF) && detail.contains("profile=blood_pressure"),
        "{detail}"
    );
    let verify = Command::new(Hub::binary())
        .args(["audit-verify", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    // Enrolling the same address again is refused, and the file is left alone.
    let again = hearthd(&sim)
        .args([
            "ble",
            "enroll",
            CUFF,
            "--patient",
            "p1",
            "--profile",
            "blood_pressure",
            "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);
}
