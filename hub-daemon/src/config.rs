//! Configuration: TOML into typed structs, validated before anything starts.
//!
//! Every error names the file, the line and the key, and says what was expected — a technician fixing a home over
//! the phone has nothing else to go on. The shape of `[home]`, `[sensors]`, `[upstream]`, `[storage]`,
//! `[[patients]]` and `[[rules]]` is a public contract: extend it, never rename it.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hearth_protocol::Code;
use hearth_protocol::json::Severity;
use serde::Deserialize;

mod clinical;
pub use clinical::{Clinical, Schedule, Trends};

/// The configuration the demo and `print-default-config` start from.
pub const DEFAULT_CONFIG: &str = include_str!("../hearthd.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub home: Home,
    #[serde(default)]
    pub sensors: Sensors,
    #[serde(default)]
    pub upstream: Upstream,
    #[serde(default)]
    pub storage: Storage,
    #[serde(default)]
    pub http: Http,
    #[serde(default)]
    pub alerting: Alerting,
    #[serde(default)]
    pub clinical: Clinical,
    #[serde(default)]
    pub devices: Vec<Device>,
    #[serde(default)]
    pub patients: Vec<Patient>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Bluetooth LE devices and the source's settings.
    #[serde(default)]
    pub ble: crate::sources::ble::config::BleConfig,
    /// Boards on serial lines (`[[serial]]`, see [`crate::sources::serial`]).
    #[serde(default)]
    pub serial: Vec<crate::sources::serial::SerialPortConfig>,
    /// The text it was parsed from (its hash goes into the audit chain).
    #[serde(skip)]
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Home {
    pub id: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sensors {
    /// `"embedded"` (an in-process broker) or `"mqtt://host:port"`.
    pub broker: String,
    pub topic_prefix: String,
    /// Where the embedded broker listens; loopback by default, port 0 picks a free port.
    pub listen: SocketAddr,
    /// Most unacknowledged readings the broker may hand the hub at once (back-pressure window).
    pub max_inflight: u16,
    /// TLS (and the hub's client certificate) for an external `mqtts://` sensors broker.
    pub tls: Option<Tls>,
    /// Device credentials for the embedded endpoint (`crate::device_auth`).
    pub auth: Option<crate::device_auth::SensorsAuth>,
}

impl Default for Sensors {
    fn default() -> Self {
        Sensors {
            broker: "embedded".into(),
            topic_prefix: "hub".into(),
            listen: "127.0.0.1:1884".parse().expect("static address"),
            max_inflight: 1000,
            tls: None,
            auth: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Upstream {
    pub broker: String,
    pub topic_prefix: String,
    pub resend_after_s: u64,
    pub heartbeat_s: u64,
    pub unreachable_alert_after_s: u64,
    /// Most alert messages in flight at once (one per patient; this caps the patients served concurrently).
    pub max_in_flight: usize,
    pub tls: Option<Tls>,
}

impl Default for Upstream {
    fn default() -> Self {
        Upstream {
            broker: "mqtt://127.0.0.1:1883".into(),
            topic_prefix: "care".into(),
            resend_after_s: 10,
            heartbeat_s: 30,
            unreachable_alert_after_s: 120,
            max_in_flight: 256,
            tls: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub ca_file: PathBuf,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    pub path: PathBuf,
    /// Size budget for the database; readings beyond it are evicted oldest first, alerts never.
    pub budget_mb: u64,
    /// Most readings committed in one transaction (group commit).
    pub max_batch: usize,
    /// How long the core waits for more readings before committing a small batch (fewer fsyncs at low rates).
    pub gather_ms: u64,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            path: "hearth.db".into(),
            budget_mb: 400,
            max_batch: 512,
            gather_ms: 2,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    pub listen: SocketAddr,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            listen: "127.0.0.1:8080".parse().expect("static address"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Alerting {
    /// Score NEWS2 (RCP 2017) from each patient's latest values and alert by its response band.
    pub news2: bool,
    /// A value observed longer ago than this never fires a value rule.
    pub stale_after_s: u64,
    /// An open high or medium clinical alert nobody acknowledged within this is escalated (and again each time).
    pub escalate_after_s: u64,
    /// The same for low-priority clinical alerts (soft signs, a missed reading): slower, so they do not page
    /// anyone every quarter of an hour.
    pub escalate_low_after_s: u64,
    pub battery_low_pct: f64,
    /// How often timers (silence, escalation, retention) are evaluated.
    pub tick_ms: u64,
}

impl Default for Alerting {
    fn default() -> Self {
        Alerting {
            news2: true,
            stale_after_s: 900,
            escalate_after_s: 900,
            escalate_low_after_s: 4 * 3600,
            battery_low_pct: 15.0,
            tick_ms: 1000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    pub id: String,
    /// 32-byte HMAC key for board frames, hex.
    pub frame_key: Option<String>,
    /// Expected reading cadence; silent after three missed intervals.
    pub expected_every_s: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patient {
    pub id: String,
    #[serde(default)]
    pub devices: Vec<String>,
    /// Per-patient overrides: replace the default rule with the same code and direction.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// NEWS2 settings agreed by a clinician (scale 2 only for patients put on it, recorded with who, when, why).
    pub news2: Option<News2Patient>,
    /// A short clinical background for the SBARD handover ("heart failure, lives alone, daughter visits daily").
    pub background: Option<String>,
    /// Readings expected by local times; missing ones remind the patient, then alert the team.
    #[serde(default)]
    pub schedules: Vec<Schedule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct News2Patient {
    /// SpO2 scale: 1, or 2 for hypercapnic respiratory failure with a target of 88–92 % (RCP NEWS2 2017).
    pub scale: u8,
    pub agreed_by: Option<String>,
    pub agreed_at: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub code: String,
    pub below: Option<f64>,
    pub above: Option<f64>,
    pub severity: Severity,
    #[serde(default)]
    pub for_s: u64,
    #[serde(default)]
    pub hysteresis: f64,
    pub name: Option<String>,
    /// A personal baseline (`[[patients.rules]]`) is agreed by a named clinician, with when and why; required there.
    pub agreed_by: Option<String>,
    pub agreed_at: Option<String>,
    pub reason: Option<String>,
    /// A personal baseline stops applying after this (RFC 3339); the default rule applies again and the team is told.
    pub until: Option<String>,
}

/// A configuration error, located in its file.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": key `{}`: {}", self.key, self.message)
        }
    }
}

impl Config {
    /// Reads, parses and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let raw = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            line: None,
            key: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Config::parse(&raw, path)
    }

    /// Parses and validates text; `file` is only used in error messages.
    pub fn parse(raw: &str, file: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(raw).map_err(|e| {
            let line = e.span().map(|s| line_of(raw, s.start));
            ConfigError {
                file: file.to_owned(),
                line,
                key: String::new(),
                message: e.message().trim().to_string(),
            }
        })?;
        config.validate().map_err(|(key, message)| ConfigError {
            file: file.to_owned(),
            line: locate(raw, &key),
            key,
            message,
        })?;
        config.text = raw.to_string();
        Ok(config)
    }

    /// Semantic checks serde cannot express. Returns (key path, what is expected).
    fn validate(&self) -> Result<(), (String, String)> {
        let err = |k: &str, m: &str| Err((k.to_string(), m.to_string()));
        if self.home.id.is_empty() || !is_topic_safe(&self.home.id) {
            return err(
                "home.id",
                "expected a non-empty id without '/', '+', '#' or spaces",
            );
        }
        if self.sensors.broker != "embedded" {
            broker_addr(&self.sensors.broker).map_err(|m| ("sensors.broker".to_string(), m))?;
        }
        crate::device_auth::validate(&self.sensors)?;
        broker_addr(&self.upstream.broker).map_err(|m| ("upstream.broker".to_string(), m))?;
        if self.upstream.broker.starts_with("mqtts://") && self.upstream.tls.is_none() {
            return err(
                "upstream.tls",
                "mqtts:// needs [upstream.tls] with ca_file (and cert_file/key_file)",
            );
        }
        for (k, p) in [
            ("sensors.topic_prefix", &self.sensors.topic_prefix),
            ("upstream.topic_prefix", &self.upstream.topic_prefix),
        ] {
            if p.is_empty() || !is_topic_safe(p) {
                return err(k, "expected a non-empty topic level without '/', '+', '#'");
            }
        }
        if self.upstream.resend_after_s == 0 || self.upstream.heartbeat_s == 0 {
            return err(
                "upstream.resend_after_s",
                "expected a number of seconds > 0",
            );
        }
        if self.upstream.max_in_flight == 0 {
            return err("upstream.max_in_flight", "expected at least 1");
        }
        if self.storage.max_batch == 0 || self.storage.budget_mb == 0 {
            return err("storage.max_batch", "expected budget_mb and max_batch > 0");
        }
        if self.alerting.tick_ms == 0 {
            return err("alerting.tick_ms", "expected a number of milliseconds > 0");
        }
        for (i, p) in self.serial.iter().enumerate() {
            p.validate().map_err(|m| (format!("serial[{i}].path"), m))?;
        }
        let mut device_ids = HashSet::new();
        for (i, d) in self.devices.iter().enumerate() {
            if d.id.is_empty() || !is_topic_safe(&d.id) {
                return err(
                    &format!("devices[{i}].id"),
                    "expected a non-empty id without '/', '+', '#'",
                );
            }
            if !device_ids.insert(d.id.as_str()) {
                return err(&format!("devices[{i}].id"), "device listed twice");
            }
            if let Some(key) = &d.frame_key
                && parse_key(key).is_none()
            {
                return err(
                    &format!("devices[{i}].frame_key"),
                    "expected 64 hex characters (a 32-byte key)",
                );
            }
            if d.expected_every_s == Some(0) {
                return err(
                    &format!("devices[{i}].expected_every_s"),
                    "expected a number of seconds > 0",
                );
            }
        }
        let mut patient_ids = HashSet::new();
        let mut bound = HashSet::new();
        for (i, p) in self.patients.iter().enumerate() {
            if p.id.is_empty() || !is_topic_safe(&p.id) {
                return err(
                    &format!("patients[{i}].id"),
                    "expected a non-empty id without '/', '+', '#'",
                );
            }
            if !patient_ids.insert(p.id.as_str()) {
                return err(&format!("patients[{i}].id"), "patient listed twice");
            }
            for (j, d) in p.devices.iter().enumerate() {
                if d.is_empty() || !is_topic_safe(d) {
                    return err(
                        &format!("patients[{i}].devices[{j}]"),
                        "expected a device id without '/', '+', '#'",
                    );
                }
                if !bound.insert(d.as_str()) {
                    return err(
                        &format!("patients[{i}].devices[{j}]"),
                        "device is bound to more than one patient",
                    );
                }
            }
            if let Some(n) = &p.news2 {
                let key = format!("patients[{i}].news2");
                match n.scale {
                    1 => {}
                    2 if n.agreed_by.as_deref().is_some_and(|s| !s.trim().is_empty())
                        && n.reason.as_deref().is_some_and(|s| !s.trim().is_empty())
                        && n.agreed_at.is_some() =>
                    {
                        if let Some(at) = &n.agreed_at
                            && hearth_protocol::json::parse_rfc3339_millis(at).is_err()
                        {
                            return err(
                                &format!("{key}.agreed_at"),
                                "expected an RFC 3339 date-time",
                            );
                        }
                    }
                    2 => {
                        return err(
                            &format!("{key}.scale"),
                            "SpO2 scale 2 needs agreed_by (the clinician), agreed_at and reason",
                        );
                    }
                    _ => return err(&format!("{key}.scale"), "expected 1 or 2"),
                }
            }
            for (j, r) in p.rules.iter().enumerate() {
                r.validate()
                    .and_then(|()| {
                        clinical::validate_agreement(
                            r.agreed_by.as_deref(),
                            r.agreed_at.as_deref(),
                            r.reason.as_deref(),
                            r.until.as_deref(),
                        )
                    })
                    .map_err(|(k, m)| (format!("patients[{i}].rules[{j}].{k}"), m))?;
            }
            let mut names = HashSet::new();
            for (j, s) in p.schedules.iter().enumerate() {
                s.validate()
                    .map_err(|(k, m)| (format!("patients[{i}].schedules[{j}].{k}"), m))?;
                if !names.insert(s.name.as_str()) {
                    return err(
                        &format!("patients[{i}].schedules[{j}].name"),
                        "schedule name used twice for this patient",
                    );
                }
            }
        }
        crate::pseudonym::validate(&self.patients)?;
        for (i, r) in self.rules.iter().enumerate() {
            r.validate()
                .map_err(|(k, m)| (format!("rules[{i}].{k}"), m))?;
            if r.until.is_some() {
                return err(
                    &format!("rules[{i}].until"),
                    "only a personal baseline ([[patients.rules]]) can expire",
                );
            }
        }
        self.ble.validate(&patient_ids)?;
        if jiff::tz::TimeZone::get(&self.clinical.timezone).is_err() {
            return err(
                "clinical.timezone",
                "expected an IANA time zone such as \"Europe/London\"",
            );
        }
        if self.clinical.flap_count < 2 || self.clinical.flap_window_s == 0 {
            return err(
                "clinical.flap_count",
                "expected flap_count >= 2 and flap_window_s > 0",
            );
        }
        self.clinical.trends.validate()?;
        self.clinical.news2_freshness.validate()?;
        self.clinical.news2_confirm.validate()?;
        Ok(())
    }

    /// The patient a device is bound to, if any.
    pub fn patient_of(&self, device: &str) -> Option<&str> {
        self.patients
            .iter()
            .find(|p| p.devices.iter().any(|d| d == device))
            .map(|p| p.id.as_str())
            .or_else(|| {
                self.ble.devices.iter().find_map(|d| {
                    let b = d.bindings();
                    let p = b.iter().find(|(id, _)| id == device)?;
                    self.patients
                        .iter()
                        .find(|q| q.id == p.1)
                        .map(|q| q.id.as_str())
                })
            })
    }

    /// The home's time zone (validated at load).
    pub fn timezone(&self) -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::get(&self.clinical.timezone).unwrap_or(jiff::tz::TimeZone::UTC)
    }

    pub fn patient(&self, id: &str) -> Option<&Patient> {
        self.patients.iter().find(|p| p.id == id)
    }

    pub fn device(&self, id: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.id == id)
    }
}

impl Rule {
    fn validate(&self) -> Result<(), (String, String)> {
        let code = Code::from_name(&self.code).ok_or_else(|| {
            (
                "code".to_string(),
                format!(
                    "unknown observation code {:?}; expected one of: {}",
                    self.code,
                    code_names()
                ),
            )
        })?;
        match (self.below, self.above) {
            (Some(_), Some(_)) | (None, None) => {
                return Err((
                    "below".into(),
                    "expected exactly one of `below` or `above`".into(),
                ));
            }
            (Some(t), None) | (None, Some(t)) => {
                if !t.is_finite() || !code.is_plausible(t) {
                    let (lo, hi) = code.plausible();
                    let key = if self.below.is_some() {
                        "below"
                    } else {
                        "above"
                    };
                    return Err((
                        key.into(),
                        format!("expected a threshold within {lo}..={hi} {}", code.unit()),
                    ));
                }
            }
        }
        if !self.hysteresis.is_finite() || self.hysteresis < 0.0 {
            return Err(("hysteresis".into(), "expected a number >= 0".into()));
        }
        Ok(())
    }

    pub fn code(&self) -> Code {
        Code::from_name(&self.code).expect("validated")
    }

    pub fn threshold(&self) -> f64 {
        self.below.or(self.above).expect("validated")
    }

    pub fn is_below(&self) -> bool {
        self.below.is_some()
    }

    /// The rule's name in alerts: configured, or `{code}_{below|above}_{threshold}`.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            format!(
                "{}_{}_{}",
                self.code,
                if self.is_below() { "below" } else { "above" },
                self.threshold()
            )
        })
    }
}

/// `mqtt://host:port` or `mqtts://host:port` → (host, port, tls).
pub fn broker_addr(url: &str) -> Result<(String, u16, bool), String> {
    let (rest, tls) = if let Some(r) = url.strip_prefix("mqtt://") {
        (r, false)
    } else if let Some(r) = url.strip_prefix("mqtts://") {
        (r, true)
    } else {
        return Err(format!(
            "expected \"mqtt://host:port\" or \"mqtts://host:port\", got {url:?}"
        ));
    };
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("expected host:port in {url:?}"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("expected a port number in {url:?}"))?;
    if host.is_empty() {
        return Err(format!("expected a host in {url:?}"));
    }
    Ok((host.to_string(), port, tls))
}

pub fn parse_key(hex_key: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(hex_key).ok()?;
    bytes.try_into().ok()
}

fn is_topic_safe(s: &str) -> bool {
    !s.chars()
        .any(|c| matches!(c, '/' | '+' | '#') || c.is_whitespace() || c.is_control())
}

fn code_names() -> String {
    Code::ALL
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn line_of(raw: &str, offset: usize) -> usize {
    raw[..offset.min(raw.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

/// Finds the line of a key path like `patients[1].rules[0].below`, for semantic errors.
fn locate(raw: &str, path: &str) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(raw).ok()?;
    let mut table = doc.get_ref();
    let mut span = None;
    let mut segments = path.split('.').peekable();
    while let Some(seg) = segments.next() {
        let (name, index) = match seg.split_once('[') {
            Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        let (key, value) = table.get_key_value(name)?;
        span = Some(key.span());
        let mut value = value;
        if let Some(i) = index {
            match value.get_ref() {
                DeValue::Array(items) => {
                    value = items.get(i)?;
                    span = Some(value.span());
                }
                _ => return span.map(|s| line_of(raw, s.start)),
            }
        }
        match value.get_ref() {
            DeValue::Table(t) if segments.peek().is_some() => table = t,
            _ => break,
        }
    }
    span.map(|s| line_of(raw, s.start))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Config, ConfigError> {
        Config::parse(raw, Path::new("t.toml"))
    }

    #[test]
    fn default_config_is_valid() {
        let c = parse(DEFAULT_CONFIG).expect("default config");
        assert_eq!(c.sensors.broker, "embedded");
        assert!(!c.rules.is_empty());
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let e = parse("[home]\nid = \"h\"\n[storage]\npaht = \"x.db\"\n").unwrap_err();
        assert_eq!(e.line, Some(4));
        assert!(e.to_string().starts_with("t.toml:4"), "{e}");
        assert!(e.message.contains("paht"), "{e}");
    }

    #[test]
    fn semantic_error_names_line_and_key() {
        let raw = "[home]\nid = \"h\"\n\n[[rules]]\ncode = \"spo2\"\nbelow = 92\n\n[[rules]]\ncode = \"sats\"\nbelow = 92\nseverity = \"high\"\n";
        // the first rule lacks severity: a serde error; fix it and the second has an unknown code
        let e = parse(raw).unwrap_err();
        assert!(e.to_string().contains("severity"), "{e}");
        let raw = raw.replace("below = 92\n\n", "below = 92\nseverity = \"low\"\n\n");
        let e = parse(&raw).unwrap_err();
        assert_eq!(e.key, "rules[1].code");
        assert_eq!(e.line, Some(10), "{e}");
        assert!(e.message.contains("unknown observation code"), "{e}");
    }

    #[test]
    fn rule_needs_exactly_one_direction_and_plausible_threshold() {
        let base = "[home]\nid = \"h\"\n[[rules]]\ncode = \"spo2\"\nseverity = \"high\"\n";
        assert_eq!(parse(base).unwrap_err().key, "rules[0].below");
        let e = parse(&format!("{base}below = 920\n")).unwrap_err();
        assert!(e.message.contains("within"), "{e}");
        assert!(parse(&format!("{base}below = 92\n")).is_ok());
    }

    #[test]
    fn device_bound_twice_is_refused() {
        let raw = "[home]\nid = \"h\"\n[[patients]]\nid = \"a\"\ndevices = [\"d\"]\n[[patients]]\nid = \"b\"\ndevices = [\"d\"]\n";
        let e = parse(raw).unwrap_err();
        assert_eq!(e.key, "patients[1].devices[0]");
        assert_eq!(e.line, Some(8));
    }

    #[test]
    fn broker_urls() {
        assert_eq!(
            broker_addr("mqtt://127.0.0.1:1883").unwrap(),
            ("127.0.0.1".into(), 1883, false)
        );
        assert!(broker_addr("mqtts://hub.example:8883").unwrap().2);
        assert!(broker_addr("tcp://x:1").is_err());
        assert!(broker_addr("mqtt://x").is_err());
    }
}
