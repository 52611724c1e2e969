//! `[ble]` and `[[ble.devices]]`: the Bluetooth source's settings and its enrolled devices.
//!
//! ```toml
//! [ble]
//! enabled = true
//!
//! [[ble.devices]]
//! id = "cuff-1"                      # the device id readings carry
//! address = "C0:FF:EE:00:00:01"
//! profile = "blood_pressure"
//! users = { 1 = "p-ann", 2 = "p-bob" }   # a shared device: its user ids → patients
//!
//! [[ble.devices]]
//! id = "kitchen-motion"
//! address = "54:48:E6:8F:80:A5"
//! profile = "bthome"
//! patient = "p-ann"
//! bthome_key = "231d39c1d7cc1ab1aee224cd096db932"
//! ```
//!
//! A device with one `patient` sends readings as `id`; a shared device (`users`) sends them as `id.uN` for user N,
//! each bound to its patient, and a reading with no or an unknown user id is held, never guessed.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

/// What kind of device an enrolled address is, and so which GATT service (or advert format) is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    HeartRate,
    Thermometer,
    BloodPressure,
    PulseOximeter,
    WeightScale,
    Glucose,
    /// BTHome v2 adverts (motion, door, button…): never connected, read passively.
    Bthome,
}

impl Profile {
    pub const ALL: [Profile; 7] = [
        Profile::HeartRate,
        Profile::Thermometer,
        Profile::BloodPressure,
        Profile::PulseOximeter,
        Profile::WeightScale,
        Profile::Glucose,
        Profile::Bthome,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::HeartRate => "heart_rate",
            Profile::Thermometer => "thermometer",
            Profile::BloodPressure => "blood_pressure",
            Profile::PulseOximeter => "pulse_oximeter",
            Profile::WeightScale => "weight_scale",
            Profile::Glucose => "glucose",
            Profile::Bthome => "bthome",
        }
    }

    pub fn from_name(s: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The 16-bit service UUID advertised (the scan filter).
    pub fn service(self) -> u16 {
        match self {
            Profile::HeartRate => 0x180D,
            Profile::Thermometer => 0x1809,
            Profile::BloodPressure => 0x1810,
            Profile::PulseOximeter => 0x1822,
            Profile::WeightScale => 0x181D,
            Profile::Glucose => 0x1808,
            Profile::Bthome => hearth_protocol::bthome::SERVICE_UUID,
        }
    }

    /// The profile whose service is `uuid` (for `ble scan`).
    pub fn of_service(uuid: u16) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.service() == uuid)
    }

    /// The measurement characteristics subscribed to.
    pub fn measurements(self) -> &'static [u16] {
        match self {
            Profile::HeartRate => &[0x2A37],
            Profile::Thermometer => &[0x2A1C],
            Profile::BloodPressure => &[0x2A35],
            Profile::PulseOximeter => &[0x2A5E, 0x2A5F],
            Profile::WeightScale => &[0x2A9D],
            Profile::Glucose => &[0x2A18],
            Profile::Bthome => &[],
        }
    }

    /// Whether stored records are downloaded through the Record Access Control Point.
    pub fn has_records(self) -> bool {
        self == Profile::Glucose
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BleConfig {
    /// Run the Bluetooth source (needs BlueZ on the system bus); by default it runs when devices are enrolled.
    pub enabled: Option<bool>,
    /// First reconnection delay after a failure; doubles up to `reconnect_max_ms`, with ±25 % jitter.
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
    /// No advert for this long while devices are enrolled: restart discovery, then power-cycle the adapter
    /// (0 = never).
    pub watchdog_silence_s: u64,
    /// This many `InProgress` errors in a row: power-cycle the adapter.
    pub watchdog_in_progress: u32,
    /// A GATT operation (connect, read, write, a record download step) taking longer fails the session.
    pub op_timeout_ms: u64,
    /// Device clocks earlier than this year are taken as reset, and their times untrusted.
    pub min_plausible_year: u16,
    pub devices: Vec<BleDevice>,
}

impl Default for BleConfig {
    fn default() -> Self {
        BleConfig {
            enabled: None,
            reconnect_min_ms: 1000,
            reconnect_max_ms: 120_000,
            watchdog_silence_s: 600,
            watchdog_in_progress: 3,
            op_timeout_ms: 10_000,
            min_plausible_year: 2024,
            devices: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BleDevice {
    pub id: String,
    /// `AA:BB:CC:DD:EE:FF`.
    pub address: String,
    pub profile: Profile,
    /// The patient every reading belongs to (a personal device).
    pub patient: Option<String>,
    /// A shared device: user id (as the device numbers its users) → patient.
    #[serde(default)]
    pub users: BTreeMap<String, String>,
    /// BTHome bind key, 32 hex characters; a device with a key must advertise encrypted.
    pub bthome_key: Option<String>,
}

impl BleDevice {
    /// The device id a user's readings carry.
    pub fn user_device_id(&self, user: u8) -> String {
        format!("{}.u{user}", self.id)
    }

    /// (device id, patient) pairs this device's readings are bound to.
    pub fn bindings(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .users
            .iter()
            .filter_map(|(u, p)| Some((self.user_device_id(u.parse().ok()?), p.clone())))
            .collect();
        if let Some(p) = &self.patient {
            out.push((self.id.clone(), p.clone()));
        }
        out
    }

    /// The patient for a user id, when the device is shared.
    pub fn patient_of_user(&self, user: u8) -> Option<&str> {
        self.users.get(&user.to_string()).map(String::as_str)
    }

    pub fn key(&self) -> Option<[u8; 16]> {
        let bytes = hex::decode(self.bthome_key.as_deref()?).ok()?;
        bytes.try_into().ok()
    }
}

/// Normalises `aa:bb:cc:dd:ee:ff` to upper case; `None` if it is not six hex octets.
pub fn parse_address(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.split(':').collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    ok.then(|| s.to_ascii_uppercase())
}

/// The six octets of an address, as BTHome's nonce writes them.
pub fn address_bytes(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    for (o, p) in out.iter_mut().zip(parts) {
        *o = u8::from_str_radix(p, 16).ok()?;
    }
    Some(out)
}

impl BleConfig {
    /// Whether the daemon starts the source.
    pub fn runs(&self) -> bool {
        self.enabled.unwrap_or(!self.devices.is_empty())
    }

    /// The device bound to this address.
    pub fn by_address(&self, address: &str) -> Option<&BleDevice> {
        self.devices
            .iter()
            .find(|d| d.address.eq_ignore_ascii_case(address))
    }

    /// Checks what serde cannot; `patients` are the configured patient ids. (A `[[devices]]` entry may share a
    /// Bluetooth device's id to give it an `expected_every_s`.)
    pub fn validate(&self, patients: &HashSet<&str>) -> Result<(), (String, String)> {
        let err = |k: String, m: &str| Err((k, m.to_string()));
        if self.reconnect_min_ms == 0 || self.reconnect_max_ms < self.reconnect_min_ms {
            return err(
                "ble.reconnect_min_ms".into(),
                "expected 0 < reconnect_min_ms <= reconnect_max_ms",
            );
        }
        if self.op_timeout_ms == 0 {
            return err("ble.op_timeout_ms".into(), "expected milliseconds > 0");
        }
        let mut ids = HashSet::new();
        let mut addresses = HashSet::new();
        for (i, d) in self.devices.iter().enumerate() {
            let k = |f: &str| format!("ble.devices[{i}].{f}");
            if d.id.is_empty()
                || d.id.contains(['/', '+', '#', '.'])
                || d.id.chars().any(char::is_whitespace)
            {
                return err(
                    k("id"),
                    "expected a non-empty id without '/', '+', '#', '.' or spaces",
                );
            }
            if !ids.insert(d.id.as_str()) {
                return err(k("id"), "device listed twice");
            }
            let Some(addr) = parse_address(&d.address) else {
                return err(k("address"), "expected AA:BB:CC:DD:EE:FF");
            };
            if !addresses.insert(addr) {
                return err(k("address"), "address enrolled twice");
            }
            if d.patient.is_none() && d.users.is_empty() {
                return err(
                    k("patient"),
                    "expected `patient`, or `users` for a shared device",
                );
            }
            for p in d.patient.iter().chain(d.users.values()) {
                if !patients.contains(p.as_str()) {
                    return err(k("patient"), "no [[patients]] entry with this id");
                }
            }
            for u in d.users.keys() {
                if u.parse::<u8>().map_or(true, |n| n == 0xFF) {
                    return err(
                        k("users"),
                        "expected user ids 0..=254 (255 means \"unknown user\")",
                    );
                }
            }
            if !d.users.is_empty()
                && !matches!(d.profile, Profile::BloodPressure | Profile::WeightScale)
            {
                return err(
                    k("users"),
                    "only blood_pressure and weight_scale measurements carry a user id",
                );
            }
            match (&d.bthome_key, d.profile) {
                (Some(_), Profile::Bthome) if d.key().is_none() => {
                    return err(
                        k("bthome_key"),
                        "expected 32 hex characters (a 16-byte key)",
                    );
                }
                (Some(_), p) if p != Profile::Bthome => {
                    return err(k("bthome_key"), "only bthome devices have a bind key");
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(profile: Profile) -> BleDevice {
        BleDevice {
            id: "d".into(),
            address: "aa:bb:cc:dd:ee:ff".into(),
            profile,
            patient: Some("p".into()),
            users: BTreeMap::new(),
            bthome_key: None,
        }
    }

    fn check(d: BleDevice) -> Result<(), (String, String)> {
        let cfg = BleConfig {
            devices: vec![d],
            ..Default::default()
        };
        cfg.validate(&HashSet::from(["p", "q"]))
    }

    #[test]
    fn shared_device_binds_each_user() {
        let mut d = dev(Profile::BloodPressure);
        d.patient = None;
        d.users = BTreeMap::from([("1".into(), "p".into()), ("2".into(), "q".into())]);
        assert!(check(d.clone()).is_ok());
        assert_eq!(
            d.bindings(),
            vec![("d.u1".into(), "p".into()), ("d.u2".into(), "q".into())]
        );
        assert_eq!(d.patient_of_user(2), Some("q"));
        assert_eq!(d.patient_of_user(3), None);
    }

    #[test]
    fn bad_entries_are_named() {
        let mut d = dev(Profile::HeartRate);
        d.address = "aa:bb".into();
        assert_eq!(check(d).unwrap_err().0, "ble.devices[0].address");
        let mut d = dev(Profile::HeartRate);
        d.patient = Some("nobody".into());
        assert_eq!(check(d).unwrap_err().0, "ble.devices[0].patient");
        let mut d = dev(Profile::Bthome);
        d.bthome_key = Some("abcd".into());
        assert_eq!(check(d).unwrap_err().0, "ble.devices[0].bthome_key");
        let mut d = dev(Profile::HeartRate);
        d.users = BTreeMap::from([("1".into(), "p".into())]);
        assert_eq!(check(d).unwrap_err().0, "ble.devices[0].users");
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address("54:48:e6:8f:80:a5").as_deref(),
            Some("54:48:E6:8F:80:A5")
        );
        assert_eq!(
            address_bytes("54:48:E6:8F:80:A5"),
            Some([0x54, 0x48, 0xE6, 0x8F, 0x80, 0xA5])
        );
        assert!(parse_address("54:48:e6:8f:80").is_none());
    }
}
