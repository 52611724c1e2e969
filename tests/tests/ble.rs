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
    let mut stranger = None;
    let toml = format!("{FAST_BLE}{}", ble_device("hrm-1", HRM, "heart_rate", "p1"));
    let rig = BleRig::start(
        async |sim| {
            strap = Some(sim.add(profiles::heart_rate_strap(HRM, now)).await);
            // A neighbour's strap, not enrolled: heard, never connected.
            stranger = Some(
                sim.add(profiles::heart_rate_strap("C0:FF:EE:00:00:99", now))
                    .await,
            );
        },
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
    assert_eq!(ble["devices"].as_array().map(Vec::len), Some(1));
    assert_eq!(stranger.unwrap().connects(), 0);
}

fn minutes(n: i64) -> time::Duration {
    time::Duration::minutes(n)
}

/// RFC 3339 → unix ms.
fn ms(s: &str) -> i64 {
    let t = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{s}: {e}"));
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

const CUFF: &str = "C0:FF:EE:00:00:02";

/// A cuff shared by two residents: a NaN error reading is stored as invalid (never "systolic 2047") and raises
/// nothing; the second user's reading alerts for the second patient, at the device's time corrected by the clock
/// offset; a reading with an unmapped user id is held with its original time, never guessed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_cuff_error_reading_second_user_and_held_reading() {
    let now = OffsetDateTime::now_utc();
    // The cuff's clock runs 5 minutes slow.
    let device_now = now - minutes(5);
    let mut cuff = None;
    let toml = format!(
        "{FAST_BLE}\n[[ble.devices]]\nid = \"cuff-1\"\naddress = \"{CUFF}\"\nprofile = \"blood_pressure\"\nusers = {{ 1 = \"p1\", 2 = \"p2\" }}\n"
    );
    let rig = BleRig::start(
        async |sim| cuff = Some(sim.add(profiles::cuff(CUFF, device_now)).await),
        &toml,
        |c| {
            c.patient("p1", &[])
                .patient("p2", &[])
                .rule(Rule::above("bp_sys", 160.0, "high"))
        },
    )
    .await;
    let cuff = cuff.unwrap();
    cuff.wait_subscribed(profiles::BLOOD_PRESSURE, BLE_TIMEOUT)
        .await;
    let taken = device_now - minutes(1);
    for v in [
        profiles::blood_pressure(None, 80, 70, Some(1), taken),
        profiles::blood_pressure(
            Some(185),
            95,
            88,
            Some(2),
            taken + time::Duration::seconds(30),
        ),
        profiles::blood_pressure(
            Some(120),
            80,
            60,
            Some(3),
            taken + time::Duration::seconds(40),
        ),
    ] {
        assert!(cuff.notify(profiles::BLOOD_PRESSURE, &v).await);
    }
    let alert = rig
        .receiver
        .wait_for_alert(BLE_TIMEOUT, |a| a.code.as_deref() == Some("bp_sys"))
        .await;
    assert_eq!(alert.patient, "p2");
    assert_eq!(alert.device.as_deref(), Some("cuff-1.u2"));
    assert_eq!(alert.value_f64(), Some(185.0));
    assert_eq!(alert.time_source.as_deref(), Some("device"));
    // Device time 5 min slow: the reading happened 30 s after (now − 1 min) on the hub's clock.
    let expected = unix_ms(now - minutes(1) + time::Duration::seconds(30));
    let observed = ms(alert.observed_at.as_deref().unwrap());
    assert!(
        (observed - expected).abs() < 5_000,
        "observed {observed}, expected ≈{expected}"
    );

    let mut db = hearth_tests::db::HubDb::open(&rig.hub.db_path()).await;
    let obs = db.readings_of("cuff-1.u1").await.remove(0).2;
    assert!(obs.contains(r#""bp_sys":{"invalid":"nan"}"#), "{obs}");
    assert!(!obs.contains("2047"), "{obs}");
    let (reason, detail): (String, String) =
        sqlx::query_as("SELECT reason, detail FROM quarantine WHERE device = 'cuff-1'")
            .fetch_one(db.conn())
            .await
            .unwrap();
    assert_eq!(reason, "held_for_confirmation");
    assert!(detail.contains("user id 3"), "{detail}");
    // The original time, corrected by the offset, is kept with the held reading.
    let held_at = detail
        .split("observed ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("no original time in {detail}"));
    let expected = unix_ms(now - minutes(1) + time::Duration::seconds(40));
    assert!((ms(held_at) - expected).abs() < 5_000, "{detail}");
    assert_eq!(rig.metric("hearth_ble_readings_held_total", &[]).await, 1.0);
    let ble = rig.api("/api/ble").await;
    let offset = ble["devices"][0]["clock_offset_ms"].as_i64().unwrap();
    assert!((offset - 300_000).abs() < 2_000, "{ble}");
    let devices = rig.api("/api/devices").await;
    let u2 = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "cuff-1.u2")
        .unwrap_or_else(|| panic!("{devices}"));
    assert_eq!(u2["patient"], "p2");
    assert_eq!(
        rig.receiver
            .alerts()
            .iter()
            .filter(|a| a.code.as_deref() == Some("bp_sys"))
            .count(),
        1,
        "{}",
        rig.receiver.dump()
    );
}

const PLX: &str = "C0:FF:EE:00:00:03";

/// An oximeter whose clock reset to 2021 and which flags "device clock not set": the hub sets its clock, and the
/// reading keeps the hub's receive time (time_source hub), counted — never the 2021 stamp.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oximeter_with_clock_not_set_gets_hub_time_and_its_clock_set() {
    let reset = OffsetDateTime::new_utc(
        time::Date::from_calendar_date(2021, time::Month::January, 1).unwrap(),
        time::Time::MIDNIGHT,
    );
    let mut plx = None;
    let toml = format!(
        "{FAST_BLE}{}",
        ble_device("plx-1", PLX, "pulse_oximeter", "p1")
    );
    let rig = BleRig::start(
        async |sim| plx = Some(sim.add(profiles::oximeter(PLX, reset)).await),
        &toml,
        |c| c.patient("p1", &[]).rule(Rule::below("spo2", 90.0, "high")),
    )
    .await;
    let plx = plx.unwrap();
    plx.wait_subscribed(profiles::PLX_SPOT_CHECK, BLE_TIMEOUT)
        .await;
    // The hub wrote its time into the reset clock.
    let ct = plx.value(profiles::CURRENT_TIME);
    let year = u16::from_le_bytes([ct[0], ct[1]]);
    assert_eq!(
        year as i32,
        OffsetDateTime::now_utc().year(),
        "clock not set: {ct:?}"
    );
    let before = unix_ms(OffsetDateTime::now_utc());
    assert!(
        plx.notify(
            profiles::PLX_SPOT_CHECK,
            &profiles::plx_spot_check(86, 101, reset + minutes(3), true)
        )
        .await
    );
    let alert = rig
        .receiver
        .wait_for_alert(BLE_TIMEOUT, |a| a.code.as_deref() == Some("spo2"))
        .await;
    assert_eq!(alert.value_f64(), Some(86.0));
    assert_eq!(alert.time_source.as_deref(), Some("hub"));
    assert!(ms(alert.observed_at.as_deref().unwrap()) >= before - 1000);
    assert_eq!(
        rig.metric(
            "hearth_ble_untrusted_time_total",
            &[("reason", "clock_not_set")]
        )
        .await,
        1.0
    );
    let ble = rig.api("/api/ble").await;
    assert_eq!(ble["devices"][0]["clock_set_by_hub"], true, "{ble}");
}

const SCALE: &str = "C0:FF:EE:00:00:04";

/// A scale's 0xFFFF ("measurement unsuccessful") is stored as invalid and never scored; the next weighing alerts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_unsuccessful_measurement_is_never_a_number() {
    let now = OffsetDateTime::now_utc();
    let mut scale = None;
    let toml = format!(
        "{FAST_BLE}{}",
        ble_device("scale-1", SCALE, "weight_scale", "p1")
    );
    let rig = BleRig::start(
        async |sim| scale = Some(sim.add(profiles::scale(SCALE, now)).await),
        &toml,
        |c| {
            c.patient("p1", &[])
                .rule(Rule::below("weight", 50.0, "low"))
        },
    )
    .await;
    let scale = scale.unwrap();
    scale.wait_subscribed(profiles::WEIGHT, BLE_TIMEOUT).await;
    assert!(
        scale
            .notify(
                profiles::WEIGHT,
                &profiles::weight_raw(0xFFFF, None, now - minutes(2))
            )
            .await
    );
    assert!(
        scale
            .notify(
                profiles::WEIGHT,
                &profiles::weight_raw(9000, None, now - minutes(1))
            )
            .await
    );
    let alert = rig
        .receiver
        .wait_for_alert(BLE_TIMEOUT, |a| a.code.as_deref() == Some("weight"))
        .await;
    assert_eq!(alert.value_f64(), Some(45.0));
    let mut db = hearth_tests::db::HubDb::open(&rig.hub.db_path()).await;
    let rows: Vec<String> = db
        .readings_of("scale-1")
        .await
        .into_iter()
        .map(|r| r.2)
        .collect();
    assert!(
        rows.iter().any(|o| o.contains(r#""weight":{"invalid""#)),
        "{rows:?}"
    );
    assert!(
        !rows
            .iter()
            .any(|o| o.contains("65535") || o.contains("32767")),
        "{rows:?}"
    );
}

const THERMO: &str = "C0:FF:EE:00:00:05";

/// A thermometer reporting in °F: 102.2 °F arrives as 39.0 °C and alerts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thermometer_in_fahrenheit_alerts_in_celsius() {
    let now = OffsetDateTime::now_utc();
    let mut thermo = None;
    let toml = format!(
        "{FAST_BLE}{}",
        ble_device("thermo-1", THERMO, "thermometer", "p1")
    );
    let rig = BleRig::start(
        async |sim| thermo = Some(sim.add(profiles::thermometer(THERMO, now)).await),
        &toml,
        |c| {
            c.patient("p1", &[])
                .rule(Rule::above("temp", 38.5, "medium"))
        },
    )
    .await;
    let thermo = thermo.unwrap();
    thermo
        .wait_subscribed(profiles::TEMPERATURE, BLE_TIMEOUT)
        .await;
    assert!(
        thermo
            .notify(profiles::TEMPERATURE, &profiles::temperature_f(1022, now))
            .await
    );
    let alert = rig
        .receiver
        .wait_for_alert(BLE_TIMEOUT, |a| a.code.as_deref() == Some("temp"))
        .await;
    let v = alert.value_f64().unwrap();
    assert!((v - 39.0).abs() < 0.05, "{v}");
    assert_eq!(alert.unit.as_deref(), Some("Cel"));
}

const GLUCOSE_METER: &str = "C0:FF:EE:00:00:06";

fn glucose_toml() -> String {
    format!(
        "{FAST_BLE}{}",
        ble_device("glu-1", GLUCOSE_METER, "glucose", "p1")
    )
}

/// 500 stored records, and the meter drops the connection after 200 of them: the hub resumes from the last
/// committed sequence number, and ends with records 1..=500 exactly once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glucose_meter_500_records_with_a_disconnect_mid_download() {
    let now = OffsetDateTime::now_utc();
    let mut meter = None;
    let mut store = None;
    let rig = BleRig::start(
        async |sim| {
            let m = sim.add(profiles::glucose_meter(GLUCOSE_METER, now)).await;
            let s = profiles::GlucoseStore::serve(&m);
            for seq in 1..=500u16 {
                let value = if seq == 500 { 30 } else { 60 };
                s.push(
                    seq,
                    profiles::glucose(seq, value, now - minutes(500 - seq as i64)),
                );
            }
            *s.disconnect_after.lock().unwrap() = Some(200);
            meter = Some(m);
            store = Some(s);
        },
        &glucose_toml(),
        |c| {
            c.patient("p1", &[])
                .rule(Rule::below("glucose", 3.5, "high"))
        },
    )
    .await;
    let (meter, store) = (meter.unwrap(), store.unwrap());
    let alert = rig
        .receiver
        .wait_for_alert(BLE_TIMEOUT, |a| a.code.as_deref() == Some("glucose"))
        .await;
    assert_eq!(alert.seq, Some(500));
    assert_eq!(alert.value_f64(), Some(3.0));
    let mut db = hearth_tests::db::HubDb::open(&rig.hub.db_path()).await;
    let (n, distinct, lo, hi): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT seq), MIN(seq), MAX(seq) FROM readings WHERE device = 'glu-1'",
    )
    .fetch_one(db.conn())
    .await
    .unwrap();
    assert_eq!(
        (n, distinct, lo, hi),
        (500, 500, 1, 500),
        "no gap, no duplicate"
    );
    // A figure for docs/bluetooth.md, not an assertion.
    let span: i64 = sqlx::query_scalar(
        "SELECT MAX(received_at) - MIN(received_at) FROM readings WHERE device = 'glu-1'",
    )
    .fetch_one(db.conn())
    .await
    .unwrap();
    eprintln!("500 glucose records (with a reconnect) received over {span} ms");
    assert_eq!(db.scalar("SELECT COUNT(*) FROM quarantine").await, 0);
    let requests = store.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0], (0x01, None), "first download: all records");
    let resumed = requests[1].1.expect("second download by sequence number");
    assert!((2..=201).contains(&resumed), "resumed from {resumed}");
    assert!(meter.connects() >= 2);
    let ble = rig.api("/api/ble").await;
    assert_eq!(ble["devices"][0]["reconnects"], 1, "{ble}");
}

/// The meter walks out of range, stores two readings while away, and comes back: the hub reconnects when it hears
/// it again, downloads exactly the records it missed, and the ten-minute gap is visible in the readings' times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_out_of_range_and_back_has_its_stored_readings_fetched() {
    let now = OffsetDateTime::now_utc();
    let mut meter = None;
    let mut store = None;
    let rig = BleRig::start(
        async |sim| {
            let m = sim.add(profiles::glucose_meter(GLUCOSE_METER, now)).await;
            let s = profiles::GlucoseStore::serve(&m);
            for (seq, ago) in [(1u16, 25i64), (2, 24), (3, 23)] {
                s.push(seq, profiles::glucose(seq, 60, now - minutes(ago)));
            }
            meter = Some(m);
            store = Some(s);
        },
        &glucose_toml(),
        |c| {
            c.patient("p1", &[])
                .rule(Rule::below("glucose", 3.5, "high"))
        },
    )
    .await;
    let (meter, store) = (meter.unwrap(), store.unwrap());
    rig.wait_metric("hearth_ble_records_downloaded_total", &[], |v| v >= 3.0)
        .await;
    meter.set_in_range(false).await;
    hearth_tests::wait::poll_until("hub sees the meter gone", BLE_TIMEOUT, || async {
        let v = hearth_tests::http::get_json(rig.hub.http_addr(), "/api/ble").await?;
        if v["devices"][0]["connected"] == false {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;
    // Away: two readings stored, the first ten minutes after the last one the hub has.
    store.push(4, profiles::glucose(4, 60, now - minutes(13)));
    store.push(5, profiles::glucose(5, 30, now - minutes(1)));
    let away_connects = meter.connects();
    meter.set_in_range(true).await;
    let alert = rig
        .receiver
        .wait_for_alert(BLE_TIMEOUT, |a| a.code.as_deref() == Some("glucose"))
        .await;
    assert_eq!(alert.seq, Some(5));
    assert_eq!(meter.connects(), away_connects + 1);
    let requests = store.requests.lock().unwrap().clone();
    assert_eq!(requests.last(), Some(&(0x03, Some(4))), "{requests:?}");
    let mut db = hearth_tests::db::HubDb::open(&rig.hub.db_path()).await;
    let rows: Vec<(i64, i64, String)> = sqlx::query_as(
        "SELECT seq, observed_at, time_source FROM readings WHERE device = 'glu-1' ORDER BY seq",
    )
    .fetch_all(db.conn())
    .await
    .unwrap();
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert!(rows.iter().all(|r| r.2 == "device"));
    let gap_ms = rows[3].1 - rows[2].1;
    assert!(gap_ms >= 10 * 60_000, "gap {gap_ms} ms");
    let ble = rig.api("/api/ble").await;
    assert_eq!(ble["devices"][0]["reconnects"], 1, "{ble}");
    assert!(
        ble["devices"][0]["last_disconnected_at"].is_number(),
        "{ble}"
    );
}

const HRM2: &str = "C0:FF:EE:00:00:07";

/// The adapter wedges (connections drop, discovery answers InProgress, nothing is heard): the watchdog power-cycles
/// it, the strap is reconnected and its readings alert again — without a restart of the daemon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wedged_adapter_recovers_without_a_restart() {
    let now = OffsetDateTime::now_utc();
    let mut strap = None;
    let toml = format!(
        "{}{}",
        FAST_BLE.replace("watchdog_silence_s = 0", "watchdog_silence_s = 1"),
        ble_device("hrm-2", HRM2, "heart_rate", "p1")
    );
    let mut rig = BleRig::start(
        async |sim| strap = Some(sim.add(profiles::heart_rate_strap(HRM2, now)).await),
        &toml,
        |c| {
            c.patient("p1", &[])
                .rule(Rule::above("heart_rate", 120.0, "high"))
        },
    )
    .await;
    let strap = strap.unwrap();
    strap.wait_subscribed(HEART_RATE, BLE_TIMEOUT).await;
    assert!(strap.notify(HEART_RATE, &profiles::heart_rate(80)).await);
    rig.sim.wedge().await;
    assert!(rig.sim.is_wedged());
    strap.wait_subscribed(HEART_RATE, BLE_TIMEOUT).await;
    assert!(!rig.sim.is_wedged());
    assert!(rig.sim.power_cycles() >= 1);
    assert!(strap.notify(HEART_RATE, &profiles::heart_rate(140)).await);
    let alert = rig
        .receiver
        .wait_for_alert(BLE_TIMEOUT, |a| a.code.as_deref() == Some("heart_rate"))
        .await;
    assert_eq!(alert.value_f64(), Some(140.0));
    assert!(rig.metric("hearth_ble_adapter_recoveries_total", &[]).await >= 1.0);
    let ble = rig.api("/api/ble").await;
    assert!(ble["adapter"]["recoveries"].as_u64() >= Some(1), "{ble}");
    assert_eq!(ble["devices"][0]["reconnects"], 1, "{ble}");
    assert_eq!(rig.hub.starts(), 1);
    assert!(rig.hub.is_running());
}

const MOTION: &str = "54:48:E6:8F:80:A5";
const MOTION_KEY: &str = "231d39c1d7cc1ab1aee224cd096db932";

fn motion_advert(counter: Option<u32>, on: bool) -> Vec<u8> {
    use hearth_protocol::bthome::{self, Advert, Binary, Object};
    let mut objects = heapless::Vec::new();
    objects
        .push(Object::Binary {
            kind: Binary::Motion,
            on,
        })
        .unwrap();
    let advert = Advert {
        encrypted: counter.is_some(),
        trigger_based: true,
        counter,
        packet_id: None,
        objects,
    };
    let key: [u8; 16] = hex::decode(MOTION_KEY).unwrap().try_into().unwrap();
    let mut out = [0u8; 64];
    let n = bthome::encode(
        &advert,
        [0x54, 0x48, 0xE6, 0x8F, 0x80, 0xA5],
        counter.map(|_| &key),
        &mut out,
    )
    .unwrap();
    out[..n].to_vec()
}

/// An encrypted BTHome motion sensor: its activity reaches the core as the patient's readings (and alerts through a
/// rule); a replayed packet and a plaintext (downgraded) one are rejected, quarantined and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_bthome_motion_and_a_replayed_packet() {
    let mut sensor = None;
    let toml = format!(
        "{FAST_BLE}{}bthome_key = \"{MOTION_KEY}\"\n",
        ble_device("kitchen-motion", MOTION, "bthome", "p1")
    );
    let rig = BleRig::start(
        async |sim| sensor = Some(sim.add(profiles::bthome_sensor(MOTION)).await),
        &toml,
        |c| c.patient("p1", &[]).rule(Rule::above("motion", 0.5, "low")),
    )
    .await;
    let sensor = sensor.unwrap();
    hearth_tests::wait::poll_until("hub hears the sensor", BLE_TIMEOUT, || async {
        let v = hearth_tests::http::get_json(rig.hub.http_addr(), "/api/ble").await?;
        if v["devices"][0]["last_seen_at"].is_number() {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;
    let first = motion_advert(Some(5), true);
    sensor.advertise_service_data(0xFCD2, &first).await;
    let alert = rig
        .receiver
        .wait_for_alert(BLE_TIMEOUT, |a| a.code.as_deref() == Some("motion"))
        .await;
    assert_eq!(alert.patient, "p1");
    assert_eq!(alert.device.as_deref(), Some("kitchen-motion"));
    sensor
        .advertise_service_data(0xFCD2, &motion_advert(Some(6), false))
        .await;
    rig.wait_metric("hearth_readings_committed_total", &[], |v| v >= 2.0)
        .await;
    sensor.advertise_service_data(0xFCD2, &first).await;
    rig.wait_metric(
        "hearth_ble_bthome_rejected_total",
        &[("reason", "replay")],
        |v| v >= 1.0,
    )
    .await;
    sensor
        .advertise_service_data(0xFCD2, &motion_advert(None, true))
        .await;
    rig.wait_metric(
        "hearth_ble_bthome_rejected_total",
        &[("reason", "downgrade")],
        |v| v >= 1.0,
    )
    .await;
    // BlueZ keeps repeating the last advert: each rejection is counted once, not once per repeat.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(
        rig.metric("hearth_ble_bthome_rejected_total", &[("reason", "replay")])
            .await,
        1.0
    );
    let mut db = hearth_tests::db::HubDb::open(&rig.hub.db_path()).await;
    let rows = db.readings_of("kitchen-motion").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        (rows[0].0, rows[1].0),
        (5, 6),
        "the encryption counter is the sequence"
    );
    assert!(rows.iter().all(|r| r.1 == "p1" && r.2.contains("motion")));
    let reasons: Vec<String> = sqlx::query_scalar(
        "SELECT reason FROM quarantine WHERE device = 'kitchen-motion' ORDER BY id",
    )
    .fetch_all(db.conn())
    .await
    .unwrap();
    assert_eq!(reasons, vec!["replayed_sequence", "bad_mac"]);
}

const HRM3: &str = "C0:FF:EE:00:00:08";

/// BlueZ is not on the bus when the hub starts (bluetoothd late or restarting): the hub starts anyway, keeps
/// looking, and connects the strap once BlueZ appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bluez_appearing_after_the_hub_is_picked_up() {
    use hearth_tests::bluez::{DbusDaemon, SimBluez};
    use hearth_tests::hub::{Hub, HubConfig};
    let bus = DbusDaemon::start();
    let upstream = hearth_tests::mosquitto::Mosquitto::start();
    let receiver = hearth_tests::upstream::Receiver::start(upstream.port()).await;
    let hub = Hub::start(
        HubConfig::new(upstream.port())
            .patient("p1", &[])
            .rule(Rule::above("heart_rate", 120.0, "high"))
            .extra_toml(&format!(
                "{FAST_BLE}{}",
                ble_device("hrm-3", HRM3, "heart_rate", "p1")
            ))
            .env("DBUS_SYSTEM_BUS_ADDRESS", bus.address()),
    )
    .await;
    hearth_tests::wait::poll_until("hub notices BlueZ is missing", BLE_TIMEOUT, || async {
        let s = hearth_tests::http::metrics(hub.http_addr()).await?;
        match hearth_tests::http::metric(&s, "hearth_ble_adapter_unavailable_total", &[]) {
            Some(v) if v >= 1.0 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let sim = SimBluez::start_on(bus).await;
    let strap = sim
        .add(profiles::heart_rate_strap(HRM3, OffsetDateTime::now_utc()))
        .await;
    strap.wait_subscribed(HEART_RATE, BLE_TIMEOUT).await;
    assert!(strap.notify(HEART_RATE, &profiles::heart_rate(150)).await);
    let alert = receiver
        .wait_for_alert(BLE_TIMEOUT, |a| a.code.as_deref() == Some("heart_rate"))
        .await;
    assert_eq!(alert.value_f64(), Some(150.0));
    assert_eq!(hub.starts(), 1);
}

const HRM4: &str = "C0:FF:EE:00:00:09";

/// Connects keep failing with `org.bluez.Error.InProgress`: after three in a row the adapter is power-cycled (cause
/// `in_progress`), and the strap is connected once BlueZ answers again; each failure is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_in_progress_connects_power_cycle_the_adapter() {
    let now = OffsetDateTime::now_utc();
    let mut strap = None;
    let toml = format!(
        "{FAST_BLE}{}",
        ble_device("hrm-4", HRM4, "heart_rate", "p1")
    );
    let rig = BleRig::start(
        async |sim| {
            let s = sim.add(profiles::heart_rate_strap(HRM4, now)).await;
            for _ in 0..3 {
                s.fail_next_connect("InProgress");
            }
            strap = Some(s);
        },
        &toml,
        |c| c.patient("p1", &[]),
    )
    .await;
    let strap = strap.unwrap();
    strap.wait_subscribed(HEART_RATE, BLE_TIMEOUT).await;
    rig.wait_metric(
        "hearth_ble_adapter_recoveries_total",
        &[("cause", "in_progress")],
        |v| v == 1.0,
    )
    .await;
    assert!(rig.sim.power_cycles() >= 1);
    assert_eq!(
        rig.metric("hearth_ble_connect_failures_total", &[("device", "hrm-4")])
            .await,
        3.0
    );
}
