//! `hearthd decode …` run as the real binary: golden payloads written by hand from the specification layouts
//! (docs/protocol/gatt.md, bthome.io), board frames made with the protocol crate's encoder, and malformed input.

use std::process::{Command, Output};

use hearth_protocol::frame::{
    ClockStatus, DeviceKey, DeviceTime, Frame, MAX_ENCODED_LEN, device_id, encode_frame,
};
use hearth_protocol::vocab::{Code, Invalid, Observation, Quantity};
use serde_json::{Value as Json, json};

fn hearthd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearthd"))
        .arg("decode")
        .args(args)
        .output()
        .expect("run hearthd")
}

/// Runs a decode that must succeed and returns its JSON.
fn decodes(args: &[&str]) -> Json {
    let out = hearthd(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    assert!(stderr.is_empty(), "unexpected stderr: {stderr}");
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// Runs a decode that must fail: exit code 1, nothing on stdout, exactly one line on stderr (returned).
fn fails(args: &[&str]) -> String {
    let out = hearthd(args);
    assert_eq!(out.status.code(), Some(1), "{args:?} should exit 1");
    assert!(out.stdout.is_empty(), "stdout: {:?}", out.stdout);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    assert!(stderr.ends_with('\n'));
    stderr.trim_end().to_owned()
}

fn obs(j: &Json, i: usize) -> &Json {
    &j["observations"][i]
}

// ---------------------------------------------------------------------------------------------------------------
// GATT

#[test]
fn blood_pressure_nan_systolic_is_null_never_2047() {
    // flags 0x00 (mmHg, nothing optional) | systolic SFLOAT 0x07FF = NaN | diastolic 80 | MAP 93.
    let out = hearthd(&["gatt", "2a35", "00ff0750005d00"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains("2047"),
        "the NaN pattern leaked as a number: {text}"
    );
    let j: Json = serde_json::from_str(&text).unwrap();
    assert_eq!(j["uuid"], "0x2A35");
    assert_eq!(j["characteristic"], "blood_pressure");
    assert_eq!(
        *obs(&j, 0),
        json!({"code": "bp_sys", "value": null, "unit": "mm[Hg]", "valid": false, "reason": "nan"})
    );
    assert_eq!(
        *obs(&j, 1),
        json!({"code": "bp_dia", "value": 80, "unit": "mm[Hg]", "valid": true, "plausible": true})
    );
    assert_eq!(obs(&j, 2)["code"], "bp_map");
    assert_eq!(obs(&j, 2)["value"], 93);
    assert_eq!(j["observations"].as_array().unwrap().len(), 3);
    // The full decoded struct is there too, with the special value named.
    assert_eq!(j["value"]["unit"], "MmHg");
    assert_eq!(j["value"]["systolic"], json!({"Invalid": "NaN"}));
    assert_eq!(j["value"]["pulse_rate"], Json::Null);
}

#[test]
fn thermometer_in_fahrenheit_is_converted_to_celsius() {
    let j = decodes(&[
        "gatt",
        "0x2A1C",
        // flags 0x03: Fahrenheit, timestamp | FLOAT 986 × 10⁻¹ = 98.6 °F | 2024-03-15 08:30:05.
        "03 DA0300FF E807030F081E05",
    ]);
    assert_eq!(j["characteristic"], "temperature");
    assert_eq!(
        *obs(&j, 0),
        json!({"code": "temp", "value": 37.0, "unit": "Cel", "valid": true, "plausible": true})
    );
    assert_eq!(j["value"]["unit"], "Fahrenheit");
    assert_eq!(j["device_time"], "2024-03-15T08:30:05");
    assert_eq!(j["clock_not_set"], false);
}

#[test]
fn weight_ffff_is_measurement_unsuccessful() {
    for flags in ["00", "01"] {
        // SI and imperial: 0xFFFF means "measurement unsuccessful" in both.
        let j = decodes(&["gatt", "2a9d", &format!("{flags}ffff")]);
        assert_eq!(
            *obs(&j, 0),
            json!({"code": "weight", "value": null, "unit": "kg", "valid": false,
                   "reason": "measurement_unsuccessful"})
        );
    }
}

#[test]
fn plx_spot_check_with_clock_not_set_has_no_device_time() {
    // flags 0x11: timestamp, device clock not set | SpO2 97 | PR 72 | 2024-03-15 08:30:05.
    let j = decodes(&["gatt", "2a5e", "11 6100 4800 E807030F081E05"]);
    assert_eq!(j["characteristic"], "plx_spot_check");
    assert_eq!(j["clock_not_set"], true);
    assert_eq!(
        j["device_time"],
        Json::Null,
        "an unset clock's time is not a time"
    );
    assert_eq!(j["value"]["device_clock_not_set"], true);
    assert_eq!(j["value"]["timestamp"]["year"], 2024);
    assert_eq!(
        *obs(&j, 0),
        json!({"code": "spo2", "value": 97, "unit": "%", "valid": true, "plausible": true})
    );
    assert_eq!(obs(&j, 1)["code"], "heart_rate");
    assert_eq!(obs(&j, 1)["value"], 72);
}

#[test]
fn full_bluetooth_base_uuid_is_accepted() {
    let j = decodes(&["gatt", "00002a19-0000-1000-8000-00805f9b34fb", "5a"]);
    assert_eq!(j["characteristic"], "battery_level");
    assert_eq!(obs(&j, 0)["value"], 90);
}

#[test]
fn truncated_gatt_payload_names_the_byte() {
    // Diastolic starts at byte 3 and has only one of its two bytes.
    let e = fails(&["gatt", "2a35", "00ff0750"]);
    assert_eq!(
        e,
        "error: gatt 0x2A35: truncated at byte 3: need 1 more byte"
    );
}

#[test]
fn trailing_and_out_of_range_bytes_name_the_byte() {
    let e = fails(&["gatt", "2a19", "5a00"]);
    assert_eq!(e, "error: gatt 0x2A19: unexpected bytes from byte 1 on");
    let e = fails(&["gatt", "2a19", "65"]); // battery 101 %
    assert!(e.contains("at byte 0"), "{e}");
}

#[test]
fn malformed_hex_names_the_byte() {
    let e = fails(&["gatt", "2a35", "00ff07zz"]);
    assert_eq!(e, "error: payload: invalid hex digit 'z' at byte 3");
    let e = fails(&["gatt", "2a35", "00ff0"]);
    assert_eq!(
        e,
        "error: payload: odd number of hex digits (byte 2 has only one)"
    );
}

#[test]
fn unknown_or_malformed_uuid_fails() {
    let e = fails(&["gatt", "2a00", "00"]);
    assert!(
        e.starts_with("error: unknown characteristic 0x2A00; supported: "),
        "{e}"
    );
    let e = fails(&["gatt", "2a3", "00"]);
    assert!(e.starts_with("error: uuid: "), "{e}");
}

// ---------------------------------------------------------------------------------------------------------------
// Board frames

/// Key 00 01 … 1f, as in protocol/tests/frame.rs.
fn key_bytes() -> [u8; 32] {
    core::array::from_fn(|i| i as u8)
}

fn key_hex() -> String {
    hex::encode(key_bytes())
}

/// The golden frame of docs/protocol/frame.md, encoded (COBS + delimiter), as hex.
fn frame_hex() -> String {
    let frame = Frame {
        device_id: device_id("dev-0001").unwrap(),
        seq: 300,
        time: DeviceTime {
            millis: 1_700_000_000_000,
            clock: ClockStatus::Utc,
        },
        observations: [
            Observation::number(Code::Spo2, Quantity::new(97, 0)),
            Observation::number(Code::Temp, Quantity::new(366, -1)),
            Observation::invalid(Code::HeartRate, Invalid::SensorDisplaced),
        ]
        .into_iter()
        .collect(),
    };
    let mut out = [0u8; MAX_ENCODED_LEN];
    let n = encode_frame(&frame, &DeviceKey::new(key_bytes()), &mut out).unwrap();
    hex::encode(&out[..n])
}

#[test]
fn board_frame_decodes_unverified_without_a_key() {
    let j = decodes(&["frame", &frame_hex()]);
    assert_eq!(j["mac"], "unverified");
    assert_eq!(j["device_id"], "dev-0001");
    assert_eq!(j["seq"], 300);
    assert_eq!(
        j["device_time"],
        json!({"millis": 1_700_000_000_000i64, "clock": "utc", "utc": "2023-11-14T22:13:20.000Z"})
    );
    assert_eq!(j["clock_not_set"], false);
    assert_eq!(
        j["observations"],
        json!([
            {"code": "spo2", "value": 97, "unit": "%", "valid": true, "plausible": true},
            {"code": "temp", "value": 36.6, "unit": "Cel", "valid": true, "plausible": true},
            {"code": "heart_rate", "value": null, "unit": "/min", "valid": false, "reason": "sensor_displaced"},
        ])
    );
}

#[test]
fn board_frame_verifies_with_its_key() {
    let j = decodes(&["frame", &frame_hex(), "--key", &key_hex()]);
    assert_eq!(j["mac"], "verified");
    assert_eq!(j["device_id"], "dev-0001");
    assert_eq!(j["observations"][1]["value"], 36.6);
}

#[test]
fn forged_board_frame_fails_with_key() {
    // Same key id, device id changed to dev-0002: in COBS these ASCII bytes are plain data, so the framing stays
    // valid and only the MAC can tell.
    let forged = frame_hex().replacen(&hex::encode("dev-0001"), &hex::encode("dev-0002"), 1);
    assert_ne!(forged, frame_hex());
    // Without a key it decodes (that is what "unverified" means)…
    assert_eq!(decodes(&["frame", &forged])["device_id"], "dev-0002");
    // …with the key it is refused.
    let e = fails(&["frame", &forged, "--key", &key_hex()]);
    assert_eq!(e, "error: frame: MAC mismatch (forged or corrupted)");
    // A different key is reported as a key mismatch, not a forgery.
    let e = fails(&["frame", &frame_hex(), "--key", &"a5".repeat(32)]);
    assert!(
        e.starts_with("error: frame: frame made with key 630dcd29"),
        "{e}"
    );
}

#[test]
fn malformed_frames_fail_on_one_line() {
    // Truncated: cut the golden frame in half (still valid COBS up to there, but far too short).
    let hex = frame_hex();
    let e = fails(&["frame", &hex[..20]]);
    assert!(e.contains("byte"), "{e}");
    let e = fails(&["frame", "01x1"]);
    assert_eq!(e, "error: frame: invalid hex digit 'x' at byte 1");
    let e = fails(&["frame", &hex, "--key", "0011"]);
    assert_eq!(e, "error: --key: expected 32 bytes (64 hex digits), got 2");
}

// ---------------------------------------------------------------------------------------------------------------
// BTHome

/// bthome.io/encryption example (also in protocol/tests/bthome.rs).
const SPEC_ENCRYPTED: &str = "41e445f3c9962b332211006c7c4519";
const SPEC_MAC: &str = "54:48:E6:8F:80:A5";
const SPEC_KEY: &str = "231d39c1d7cc1ab1aee224cd096db932";

#[test]
fn bthome_spec_encrypted_example_decodes() {
    let j = decodes(&[
        "bthome",
        SPEC_ENCRYPTED,
        "--mac",
        SPEC_MAC,
        "--key",
        SPEC_KEY,
    ]);
    assert_eq!(j["encrypted"], true);
    assert_eq!(j["counter"], 1_122_867);
    assert_eq!(j["packet_id"], Json::Null);
    assert_eq!(
        j["objects"],
        json!([
            {"id": "0x02", "property": "temperature", "value": 25.06, "unit": "Cel",
             "object": {"sensor": {"kind": "temperature", "raw": 2506}}},
            {"id": "0x03", "property": "humidity", "value": 50.55, "unit": "%",
             "object": {"sensor": {"kind": "humidity", "raw": 5055}}},
        ])
    );
    // Room temperature and humidity are not patient vitals.
    assert_eq!(j["observations"], json!([]));
}

#[test]
fn bthome_plain_advert_maps_activity_to_observations() {
    // info 0x44 (v2, trigger-based) | packet id 9 | battery 97 % | door open | button press.
    let j = decodes(&["bthome", "44 0009 0161 1A01 3A01"]);
    assert_eq!(j["encrypted"], false);
    assert_eq!(j["trigger_based"], true);
    assert_eq!(j["packet_id"], 9);
    assert_eq!(
        j["observations"],
        json!([
            {"code": "battery", "value": 97, "unit": "%", "valid": true, "plausible": true},
            {"code": "door", "value": 1, "unit": "{event}", "valid": true, "plausible": true},
            {"code": "button", "value": 1, "unit": "{event}", "valid": true, "plausible": true},
        ])
    );
}

#[test]
fn bthome_encrypted_needs_the_right_key_and_mac() {
    let e = fails(&["bthome", SPEC_ENCRYPTED]);
    assert_eq!(
        e,
        "error: bthome: encrypted advert and no key for the device: give --key and --mac"
    );
    let e = fails(&["bthome", SPEC_ENCRYPTED, "--key", SPEC_KEY]);
    assert_eq!(e, "error: --key needs --mac (the advertiser's address)");
    let e = fails(&[
        "bthome",
        SPEC_ENCRYPTED,
        "--mac",
        "54:48:E6:8F:80:A6",
        "--key",
        SPEC_KEY,
    ]);
    assert_eq!(
        e,
        "error: bthome: AES-CCM MIC mismatch: wrong --key or --mac, or altered data"
    );
}

#[test]
fn truncated_bthome_names_the_byte() {
    // Temperature (0x02, at byte 1) needs two value bytes; the data runs out at byte 3, which BTHome reports.
    let e = fails(&["bthome", "4002c4"]);
    assert_eq!(e, "error: bthome: truncated at byte 3");
}
