//! `hearthd decode …`: technician decoding of GATT characteristic values, board frames and BTHome adverts, as JSON.
//!
//! Each `decode_*` function is pure (hex strings in, a JSON value or a one-line error out) and uses the same protocol
//! decoders as the daemon, so what a technician sees is what the hub would make of the bytes. [`run`] only prints.
//! Every kind of output carries `observations` in one shape: `{code, value, unit, valid, reason | plausible}`, where
//! a value the device marked invalid has `"value": null` and a reason — never its sentinel number. See
//! `docs/decode.md`.

use std::io::Write;
use std::process::ExitCode;

use clap::Subcommand;
use hearth_protocol::bthome::{self, BthomeError, Object};
use hearth_protocol::frame::{self, ClockStatus, DeviceKey, FrameError};
use hearth_protocol::gatt::{self, DateTime};
use hearth_protocol::json::format_rfc3339_millis;
use hearth_protocol::{Observation, Quantity, Value};
use serde::Serialize;
use serde_json::{Value as Json, json};

#[derive(Subcommand)]
pub enum DecodeCommand {
    /// A Bluetooth SIG characteristic value: `decode gatt 2a35 00ff0750005d00`.
    Gatt {
        /// 16-bit characteristic UUID in hex (`2a35`, `0x2A35`, or the full `00002a35-0000-1000-8000-00805f9b34fb`).
        uuid: String,
        /// The characteristic value in hex, flags byte first (spaces allowed).
        payload: String,
    },
    /// A board frame as received: COBS-encoded, hex, trailing `00` optional. Unverified unless `--key` is given.
    Frame {
        /// The frame bytes in hex, as read from serial or MQTT (spaces allowed).
        hex: String,
        /// The device's 32-byte frame key (64 hex digits): check the key id and MAC.
        #[arg(long)]
        key: Option<String>,
    },
    /// BTHome v2 service data (the bytes after the `D2 FC` UUID), hex.
    Bthome {
        /// The service data in hex, starting with the device information byte (spaces allowed).
        hex: String,
        /// The advertiser's address, `AA:BB:CC:DD:EE:FF` (part of the nonce of encrypted adverts).
        #[arg(long)]
        mac: Option<String>,
        /// The device's 16-byte bind key (32 hex digits), for encrypted adverts.
        #[arg(long)]
        key: Option<String>,
    },
}

/// Prints the decoded JSON on stdout (exit 0), or one line on stderr (exit 1).
pub fn run(cmd: DecodeCommand) -> ExitCode {
    let result = match &cmd {
        DecodeCommand::Gatt { uuid, payload } => decode_gatt(uuid, payload),
        DecodeCommand::Frame { hex, key } => decode_frame(hex, key.as_deref()),
        DecodeCommand::Bthome { hex, mac, key } => {
            decode_bthome(hex, mac.as_deref(), key.as_deref())
        }
    };
    match result.and_then(|v| serde_json::to_string_pretty(&v).map_err(|e| e.to_string())) {
        Ok(text) => {
            // A closed pipe (`| head`) is not worth a panic.
            let _ = writeln!(std::io::stdout(), "{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", e.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

/// Decodes characteristic `uuid`'s value: the full decoded struct, observations, device time and clock status.
pub fn decode_gatt(uuid: &str, hex: &str) -> Result<Json, String> {
    let uuid = parse_uuid(uuid)?;
    let bytes = parse_hex("payload", hex)?;
    let d = gatt::decode(uuid, &bytes).map_err(|e| match e {
        gatt::DecodeError::UnknownUuid(_) => format!("{e}; supported: {}", supported_uuids()),
        _ => format!("gatt 0x{uuid:04X}: {e}"),
    })?;
    // `{"characteristic": "blood_pressure", "value": {...}}` (the protocol crate's serde form).
    let mut decoded = to_json(&d)?;
    Ok(json!({
        "uuid": format!("0x{uuid:04X}"),
        "characteristic": decoded["characteristic"].take(),
        "value": decoded["value"].take(),
        "observations": observations_json(&d.observations()),
        "device_time": d.timestamp().map(format_date_time),
        "clock_not_set": d.clock_not_set(),
    }))
}

/// Decodes a board frame; verifies its key id and MAC when `key` (64 hex digits) is given.
pub fn decode_frame(hex: &str, key: Option<&str>) -> Result<Json, String> {
    let bytes = parse_hex("frame", hex)?;
    let (decoded, mac) = match key {
        None => (frame::decode_unverified(&bytes), "unverified"),
        Some(k) => {
            let key = DeviceKey::new(parse_array("--key", k)?);
            (frame::decode_frame(&bytes, &key, None), "verified")
        }
    };
    let f = decoded.map_err(frame_error)?;
    let utc = f.time.clock == ClockStatus::Utc;
    Ok(json!({
        "mac": mac,
        "device_id": f.device_id.as_str(),
        "seq": f.seq,
        "device_time": {
            "millis": f.time.millis,
            "clock": f.time.clock,
            "utc": utc.then(|| format_rfc3339_millis(f.time.millis)),
        },
        "clock_not_set": !utc,
        "observations": observations_json(&f.observations),
    }))
}

/// Decodes BTHome v2 service data; an encrypted advert needs `key` (32 hex digits) and `mac`.
pub fn decode_bthome(hex: &str, mac: Option<&str>, key: Option<&str>) -> Result<Json, String> {
    let bytes = parse_hex("service data", hex)?;
    let key: Option<[u8; 16]> = key.map(|k| parse_array("--key", k)).transpose()?;
    let mac = match mac {
        Some(m) => parse_array("--mac", &m.replace([':', '-'], ""))?,
        // With a key only encrypted adverts decode, and their nonce starts with the address.
        None if key.is_some() => return Err("--key needs --mac (the advertiser's address)".into()),
        None => [0; 6],
    };
    let a = bthome::decode(&bytes, mac, key.as_ref(), None).map_err(|e| match e {
        BthomeError::MissingKey => format!("bthome: {e}: give --key and --mac"),
        BthomeError::BadMic => format!("bthome: {e}: wrong --key or --mac, or altered data"),
        _ => format!("bthome: {e}"),
    })?;
    let objects = a
        .objects
        .iter()
        .map(object_json)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({
        "encrypted": a.encrypted,
        "trigger_based": a.trigger_based,
        "counter": a.counter,
        "packet_id": a.packet_id,
        "objects": objects,
        "observations": observations_json(&a.observations()),
    }))
}

/// One observation: a number with `plausible`, or `"value": null` with the device's reason.
fn observation_json(o: &Observation) -> Json {
    let (code, unit) = (o.code.as_str(), o.code.unit());
    match o.value {
        Value::Number(q) => json!({
            "code": code,
            "value": quantity_json(q),
            "unit": unit,
            "valid": true,
            "plausible": o.code.is_plausible(q.to_f64()),
        }),
        Value::Invalid(why) => json!({
            "code": code,
            "value": null,
            "unit": unit,
            "valid": false,
            "reason": why.as_str(),
        }),
    }
}

fn observations_json(obs: &[Observation]) -> Json {
    obs.iter().map(observation_json).collect()
}

/// An integer when the device sent one (`120`, not `120.0`), otherwise the nearest float.
fn quantity_json(q: Quantity) -> Json {
    let v = q.to_f64();
    if q.exponent >= 0 && v.abs() < 9.0e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

/// A BTHome object as serialized by the protocol crate, with its id and, for sensors, the scaled value and unit.
fn object_json(o: &Object) -> Result<Json, String> {
    let mut j = json!({ "id": format!("0x{:02x}", o.id()), "object": to_json(o)? });
    match o {
        Object::Sensor { kind, .. } => {
            j["property"] = kind.property().into();
            j["value"] = o.quantity().map_or(Json::Null, quantity_json);
            j["unit"] = kind.unit().into();
        }
        Object::Binary { kind, .. } => j["property"] = kind.property().into(),
        _ => {}
    }
    Ok(j)
}

/// Frame offsets (other than COBS ones) count in the decoded frame, which the technician does not see.
fn frame_error(e: FrameError) -> String {
    match e {
        FrameError::Malformed { .. }
        | FrameError::BadDeviceId { .. }
        | FrameError::UnknownCode { .. }
        | FrameError::UnknownInvalid { .. } => {
            format!("frame: {e} (offset in the COBS-decoded frame)")
        }
        _ => format!("frame: {e}"),
    }
}

/// Device-local calendar time (no time zone), ISO 8601.
fn format_date_time(t: DateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hours, t.minutes, t.seconds
    )
}

fn supported_uuids() -> String {
    let all: Vec<String> = gatt::SUPPORTED_UUIDS
        .iter()
        .map(|u| format!("{u:04x}"))
        .collect();
    all.join(", ")
}

fn to_json<T: Serialize>(v: &T) -> Result<Json, String> {
    serde_json::to_value(v).map_err(|e| format!("cannot serialize: {e}"))
}

/// Hex to bytes. Whitespace and a leading `0x` are ignored; errors name the byte, counting from 0.
fn parse_hex(what: &str, s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    let digits: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
    digits
        .chunks(2)
        .enumerate()
        .map(|(i, pair)| match *pair {
            [hi, lo] => match (hi.to_digit(16), lo.to_digit(16)) {
                (Some(h), Some(l)) => Ok((h * 16 + l) as u8),
                (None, _) => Err(format!("{what}: invalid hex digit {hi:?} at byte {i}")),
                (_, None) => Err(format!("{what}: invalid hex digit {lo:?} at byte {i}")),
            },
            _ => Err(format!(
                "{what}: odd number of hex digits (byte {i} has only one)"
            )),
        })
        .collect()
}

/// Exactly `N` bytes of hex (keys, addresses). The error never echoes the value: it may be a secret.
fn parse_array<const N: usize>(what: &str, s: &str) -> Result<[u8; N], String> {
    let bytes = parse_hex(what, s)?;
    let len = bytes.len();
    bytes.try_into().map_err(|_| {
        format!(
            "{what}: expected {N} bytes ({} hex digits), got {len}",
            2 * N
        )
    })
}

/// `2a35`, `0x2A35`, or the 128-bit form on the Bluetooth base UUID (Core Specification Vol 3 Part B §2.5.1).
fn parse_uuid(s: &str) -> Result<u16, String> {
    let lower = s.trim().to_ascii_lowercase();
    let short = lower.strip_prefix("0x").unwrap_or(&lower);
    let short = short
        .strip_suffix("-0000-1000-8000-00805f9b34fb")
        .and_then(|p| p.strip_prefix("0000"))
        .unwrap_or(short);
    if short.len() != 4 || !short.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "uuid: expected a 16-bit UUID as 4 hex digits (e.g. 2a35), got {s:?}"
        ));
    }
    u16::from_str_radix(short, 16).map_err(|e| format!("uuid: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_protocol::frame::{DeviceTime, Frame, MAX_ENCODED_LEN, device_id, encode_frame};
    use hearth_protocol::{Code, Invalid};

    #[test]
    fn hex_accepts_spaces_and_prefix_and_names_the_bad_byte() {
        assert_eq!(parse_hex("p", " 0x00 ff\t7a ").unwrap(), [0x00, 0xFF, 0x7A]);
        assert_eq!(parse_hex("p", "").unwrap(), Vec::<u8>::new());
        assert_eq!(
            parse_hex("p", "00ff0g").unwrap_err(),
            "p: invalid hex digit 'g' at byte 2"
        );
        assert_eq!(
            parse_hex("p", "00f").unwrap_err(),
            "p: odd number of hex digits (byte 1 has only one)"
        );
        assert!(parse_hex("p", "é0").unwrap_err().contains("at byte 0"));
    }

    #[test]
    fn uuid_forms() {
        assert_eq!(parse_uuid("2a35"), Ok(0x2A35));
        assert_eq!(parse_uuid("0x2A35"), Ok(0x2A35));
        assert_eq!(
            parse_uuid("00002A35-0000-1000-8000-00805F9B34FB"),
            Ok(0x2A35)
        );
        assert!(parse_uuid("2a3").is_err());
        assert!(parse_uuid("+2a3").is_err());
        assert!(parse_uuid("12345678-0000-1000-8000-00805f9b34fb").is_err());
    }

    #[test]
    fn keys_and_addresses_need_their_exact_length() {
        assert_eq!(
            parse_array::<6>("--mac", "5448E68F80A5"),
            Ok([0x54, 0x48, 0xE6, 0x8F, 0x80, 0xA5])
        );
        assert_eq!(
            parse_array::<16>("--key", "00112233").unwrap_err(),
            "--key: expected 16 bytes (32 hex digits), got 4"
        );
    }

    #[test]
    fn gatt_nan_systolic_is_null_with_a_reason() {
        // Blood Pressure Measurement, mmHg: systolic NaN (0x07FF), diastolic 80, MAP 93.
        let j = decode_gatt("2a35", "00 ff07 5000 5d00").unwrap();
        assert_eq!(j["characteristic"], "blood_pressure");
        assert_eq!(j["uuid"], "0x2A35");
        assert_eq!(
            j["observations"][0],
            json!({"code": "bp_sys", "value": null, "unit": "mm[Hg]", "valid": false, "reason": "nan"})
        );
        assert_eq!(
            j["observations"][1],
            json!({"code": "bp_dia", "value": 80, "unit": "mm[Hg]", "valid": true, "plausible": true})
        );
        assert_eq!(j["device_time"], Json::Null);
        assert_eq!(j["clock_not_set"], false);
    }

    #[test]
    fn gatt_errors_are_one_line_with_the_offset() {
        assert_eq!(
            decode_gatt("2a35", "00ff07").unwrap_err(),
            "gatt 0x2A35: truncated at byte 3: need 2 more bytes"
        );
        let e = decode_gatt("2a00", "00").unwrap_err();
        assert!(e.starts_with("unknown characteristic 0x2A00; supported: 2a37, "));
    }

    #[test]
    fn observation_json_never_shows_a_sentinel() {
        let o = Observation::invalid(Code::Weight, Invalid::MeasurementUnsuccessful);
        assert_eq!(observation_json(&o)["value"], Json::Null);
        let o = Observation::number(Code::Temp, Quantity::new(366, -1));
        assert_eq!(observation_json(&o)["value"], json!(36.6));
        let o = Observation::number(Code::BpSys, Quantity::new(2047, 0));
        assert_eq!(observation_json(&o)["plausible"], false);
    }

    fn encoded_frame(key: &DeviceKey) -> String {
        let f = Frame {
            device_id: device_id("dev-7").unwrap(),
            seq: 5,
            time: DeviceTime {
                millis: 90_000,
                clock: ClockStatus::SinceBoot,
            },
            observations: [Observation::number(Code::Spo2, Quantity::new(95, 0))]
                .into_iter()
                .collect(),
        };
        let mut out = [0u8; MAX_ENCODED_LEN];
        let n = encode_frame(&f, key, &mut out).unwrap();
        hex::encode(&out[..n])
    }

    #[test]
    fn frame_unverified_verified_and_forged() {
        let key = DeviceKey::new([7; 32]);
        let hex = encoded_frame(&key);
        let j = decode_frame(&hex, None).unwrap();
        assert_eq!(j["mac"], "unverified");
        assert_eq!(j["device_id"], "dev-7");
        assert_eq!(j["device_time"]["clock"], "since_boot");
        assert_eq!(j["device_time"]["utc"], Json::Null);
        assert_eq!(j["clock_not_set"], true);
        let good = "07".repeat(32);
        assert_eq!(decode_frame(&hex, Some(&good)).unwrap()["mac"], "verified");
        let wrong = "08".repeat(32);
        assert!(
            decode_frame(&hex, Some(&wrong))
                .unwrap_err()
                .contains("key")
        );
    }

    #[test]
    fn bthome_key_without_mac_is_refused() {
        let e = decode_bthome(
            "41e445f3c9962b332211006c7c4519",
            None,
            Some(&"00".repeat(16)),
        );
        assert_eq!(
            e.unwrap_err(),
            "--key needs --mac (the advertiser's address)"
        );
        let j = decode_bthome("40 0161 1a01", None, None).unwrap();
        assert_eq!(j["objects"][0]["value"], 97);
        assert_eq!(j["observations"][1]["code"], "door");
    }
}
